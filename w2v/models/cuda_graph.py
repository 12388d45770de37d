"""A training step's device work captured once as a CUDA graph and replayed at every step after.

A GPU step of the full softmax launches a few dozen kernels, most of them small; the host's time to
launch them one by one, step after step, can bound a step whose products are cheap. A graph
launches them all at once. The captured function must read everything that changes from step to
step from tensors that keep their addresses (the parameters, updated in place; a (1,) tensor of
the step's first chunk), must not wait for the device (the padded fused step does not), and its
outputs are the tensors it returned at capture, rewritten in place by each replay.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

from w2v.errors import ConfigError


class StepGraph:
    """`fn` captured as a CUDA graph; calling the object replays it and returns `fn`'s outputs.

    Capturing runs nothing on the device. The caller runs the step eagerly first, so that Triton
    has compiled its kernels for these shapes (a compile during the capture would break it).
    Tensors that `fn` allocates come from the graph's own memory pool, which lives as long as the
    graph or its outputs.
    """

    def __init__(self, fn: Callable[[], Any]):
        self.replays = 0
        self._graph = torch.cuda.CUDAGraph()
        try:
            # thread_local: calls that would break the capture raise only in this thread; the data
            # loader's threads may go on with theirs
            with torch.cuda.graph(self._graph, capture_error_mode="thread_local"):
                self.outputs = fn()
        except torch.OutOfMemoryError:
            raise
        except RuntimeError as error:  # something in the step waits for the device, or is not capturable
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise ConfigError(f"model.cuda_graph=true: the step could not be captured as a CUDA graph "
                              f"({first_line}); use model.cuda_graph=false") from error

    def __call__(self) -> Any:
        self._graph.replay()
        self.replays += 1
        return self.outputs
