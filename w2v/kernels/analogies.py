"""The analogy benchmark's answers in one pass (Numba): 3CosAdd and 3CosMul for every question.

Both methods score every candidate word u by its cosines to the question's words a, b, c. Those
cosines come from one matrix product: the few hundred distinct question words against the
vocabulary, `sims` (W, n). A question's scores are then sums and products of three rows of
`sims`, computed on the fly with the running best kept, so no (questions, n) matrix of scores is
ever written: the work is a pass over three rows per question, in parallel over questions.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True, nogil=True)
def best_answers(sims: np.ndarray, rows: np.ndarray, exclude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - compiled
    """sims (W, n) float32 cosines of the question words to the candidates; rows (Q, 3) the rows of
    a, b, c in `sims`; exclude (Q, 3) their candidate ids (never an answer, -1: none).
    Returns each question's best candidate by 3CosAdd, cos(u,b) - cos(u,a) + cos(u,c), and by
    3CosMul, c(u,b)·c(u,c) / (c(u,a) + 0.001) with c = (cos + 1)/2; the first one on a tie."""
    questions, n = rows.shape[0], sims.shape[1]
    add_best = np.full(questions, -1, np.int64)
    mul_best = np.full(questions, -1, np.int64)
    for q in prange(questions):
        sa, sb, sc = sims[rows[q, 0]], sims[rows[q, 1]], sims[rows[q, 2]]
        ea, eb, ec = exclude[q, 0], exclude[q, 1], exclude[q, 2]
        top_add = -np.inf
        top_num, top_den = np.float32(-1.0), np.float32(1.0)  # 3CosMul's best as a fraction: no division a word
        for u in range(n):
            a, b, c = sa[u], sb[u], sc[u]
            add = b - a + c
            num = ((b + 1) * np.float32(0.5)) * ((c + 1) * np.float32(0.5))
            den = (a + 1) * np.float32(0.5) + np.float32(1e-3)  # > 0
            # the question's own words are excluded only where they would win: a rare branch
            if add > top_add and u != ea and u != eb and u != ec:
                top_add, add_best[q] = add, u
            if num * top_den > top_num * den and u != ea and u != eb and u != ec:
                top_num, top_den, mul_best[q] = num, den, u
    return add_best, mul_best
