"""Side-by-side benchmark on one preprocessed IMDb corpus and one vocabulary, in one run.

    python scripts/benchmark.py            # all 100,000 reviews, 5 epochs, every word2vec mode -- the README's table
    python scripts/benchmark.py --modes sgns  # part 1 alone, SGNS only (modes: sgns, cbow-negative, skipgram-hs, cbow-hs)
    python scripts/benchmark.py --quick    # 20,000 reviews, 1 epoch: about half an hour
    python scripts/benchmark.py --quality  # full-softmax vectors after the same epochs (5,000 reviews, 1 epoch)
    python scripts/benchmark.py --full-softmax  # part 2 alone

Part 1, word2vec's modes: w2v's Skip-gram and CBOW with negative sampling and with hierarchical
softmax (model=skipgram|cbow model/output=negative|hierarchical) against gensim's Word2Vec in the
same mode (sg=1|0, negative=5 or hs=1), with the same hyperparameters (dimension 100, window 5,
5 negatives, subsampling 1e-3, linear learning-rate decay from 0.025, the same epochs, 2 threads),
on the same token stream (word2vec vocabulary: min_count 5, other words dropped).
Part 2, full softmax (the notebooks' setting: 10,000 words + <PAD>/<UNK>, window 4, and their model:
embeddings renormalised to norm 1, CBOW's context summed): w2v's CBOW and Skip-gram, with adam
(Adam's results, as the notebooks; Skip-gram's idle embedding rows deferred),
with lazy_adam (Adam on the batch's rows of the input embedding), with adam under bfloat16
autocast (trainer.precision=bf16-mixed) and with w2v's defaults: adam on batches of 4,096
centers from lr 0.03 decaying linearly (as many centers in all as the notebooks' batches), against
the notebooks' loop (scripts/notebook_loop.py: float32, materialized examples in a DataLoader,
nn.Embedding + nn.Linear, cross-entropy, Adam), for a fixed number of batches, and each one's
FLOP/s against a measured 2048x2048 matrix-product peak: torch.mm's in the precision of its
products, and in float32 also oneDNN's (faster on some CPUs, and used for some of the step's
products); the contenders, the matrix products among them, take turns (--repeats runs each) and
each one's fastest run is compared.
Part 3 (--quality, on its own): the same contenders trained for the same epochs on
the same reviews, their input vectors scored on WordSim-353, SimLex-999 and the analogies.

Each contender runs in its own process, so its peak memory (maximum resident set size) is its own.
Words/second count corpus tokens (after the vocabulary) times epochs over training wall time,
preprocessing and evaluation excluded.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

THREADS = 2


def compose_config(overrides: list[str]):
    """w2v's configuration (conf/), with the given Hydra overrides."""
    from w2v.api import compose_config

    return compose_config(*overrides)


def load_corpus(max_docs: int | None, vocab: str):
    from hydra.utils import instantiate
    from omegaconf import open_dict

    cfg = compose_config([f"data/vocab={vocab}"] + (["data.tokenizer.lemmatize=true"] if vocab == "notebook" else []))
    with open_dict(cfg):
        cfg.data.max_docs = max_docs
        cfg.paths.cache_dir = os.environ.get("W2V_CACHE_DIR", "cache")
    dm = instantiate(cfg.data)
    dm.prepare_data()
    dm.setup("fit")
    return dm


def scores(vectors) -> dict:
    from w2v.evaluation import evaluate_all

    m = evaluate_all(vectors)
    return {"wordsim353": m["wordsim353_spearman"], "simlex999": m["simlex999_spearman"], "analogies": m["analogy_3cosadd"]}


def peak_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


# -- workers (each in its own process) ------------------------------------------------------------

# word2vec's modes: name -> (architecture, output layer)
MODES = {"sgns": ("skipgram", "negative"), "cbow-negative": ("cbow", "negative"),
         "skipgram-hs": ("skipgram", "hierarchical"), "cbow-hs": ("cbow", "hierarchical")}


def worker_w2v_mode(max_docs, epochs, mode, overrides=()) -> dict:
    import lightning as L
    import torch

    from w2v.api import build_model

    torch.set_num_threads(THREADS)
    dm = load_corpus(max_docs, "word2vec")
    L.seed_everything(1, verbose=False)
    arch, output = MODES[mode]
    model = build_model(dm.vocab, f"model={arch}", f"model/output={output}", *overrides)  # the output layer's word2vec settings
    trainer = L.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)
    start = time.perf_counter()
    trainer.fit(model, datamodule=dm)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "words_per_sec": len(dm.corpus) * epochs / seconds, "peak_gib": peak_gib(),
            **scores(model.word_vectors())}


def worker_gensim_mode(max_docs, epochs, mode) -> dict:
    from gensim.models import Word2Vec

    from w2v.vectors import WordVectors

    dm = load_corpus(max_docs, "word2vec")
    words = dm.vocab.words
    ids, offsets = dm.corpus.all_ids()
    sentences = [[words[i] for i in ids[offsets[d]:offsets[d + 1]]] for d in range(len(offsets) - 1)]
    arch, output = MODES[mode]
    model = Word2Vec(vector_size=100, window=5, negative=5 if output == "negative" else 0, sample=1e-3, min_count=1,
                     sg=int(arch == "skipgram"), hs=int(output == "hierarchical"), alpha=0.025, min_alpha=0.0001,
                     workers=THREADS, seed=1)
    model.build_vocab(sentences)
    start = time.perf_counter()
    model.train(sentences, total_examples=len(sentences), epochs=epochs)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "words_per_sec": len(dm.corpus) * epochs / seconds, "peak_gib": peak_gib(),
            **scores(WordVectors(model.wv.index_to_key, model.wv.vectors))}


def _full_softmax_batches(dm, window, batch_size, n_batches, epoch=0):
    from w2v.data.datamodule import EpochBatches
    from w2v.data.sampling import SamplerSettings, WindowSampler

    sampler = WindowSampler(dm.vocab.counts, SamplerSettings(window=window, shrink_window=False))
    batches = []
    # positions shuffled over the block: what data.shuffle_unit=auto gives the full softmax's Adam
    stream = EpochBatches(dm.corpus, sampler, batch_size, True, 0, progress=lambda: (epoch, 0), shuffle_unit="position")
    for i, batch in enumerate(stream):
        if i == n_batches:
            break
        batches.append(batch)
    return batches


def worker_w2v_full(max_docs, arch, n_batches, epochs=1, evaluate=False, optimizer="adam", precision="32-true",
                    batch_size=None) -> dict:
    """w2v's CBOW / Skip-gram training steps (hand-written gradients, w2v's adam or lazy_adam) on pre-drawn
    batches (n_batches None: whole epochs); precision "bf16-mixed" runs them under bfloat16 autocast, as
    trainer.precision=bf16-mixed does; batch_size centers a batch (default: the notebooks' batches and
    model, as the loop's: embeddings renormalised to norm 1, the output weight in ±0.5/D, CBOW's
    context summed, Adam at a constant lr 0.001; otherwise w2v's default model, learning rate and
    schedule, the schedule's decay spread over the run's batches)."""
    import torch

    from w2v.api import build_model

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    dm = load_corpus(max_docs, "notebook")
    # The notebooks' model and optimizer (as the loop's and conf/experiment/notebook_<arch>.yaml), or w2v's
    # defaults (conf/model/<arch>.yaml)
    notebooks = ["model/scheduler=constant", "model.optimizer.lr=0.001", "model.max_norm=1.0", "model.out_init=uniform"]
    settings = [] if batch_size is not None else notebooks + (["model.cbow_mean=false"] if arch == "cbow" else [])
    model = build_model(dm.vocab, f"model={arch}", "model.embedding_dim=100", "model.window=4",
                        "model.shrink_window=false", f"model/optimizer={optimizer}", *settings)
    # CBOW: 256 centers a batch; Skip-gram: 64 centers of window 4 = 512 pairs, as the notebooks' batches.
    epoch_batches = [_full_softmax_batches(dm, 4, batch_size or NOTEBOOK_BATCH[arch], n_batches, epoch)
                     for epoch in range(epochs)]
    model.total_training_steps = lambda: sum(map(len, epoch_batches))  # no Lightning trainer to estimate them
    optimizer = model.configure_optimizers()  # w2v's own optimizer, and its schedule if it has one
    optimizer, schedule = ((optimizer["optimizer"], optimizer["lr_scheduler"]["scheduler"])
                           if isinstance(optimizer, dict) else (optimizer, None))
    examples = softmax_rows = 0
    seconds = 0.0
    for batches in epoch_batches:
        start = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16-mixed"):
            for batch in batches:  # w2v's training step, without Lightning around it
                examples += int((model.backward_by_hand(batch)[1] > 0).sum())  # the pairs that count
                optimizer.step()
                if schedule is not None:
                    schedule.step()
        seconds += time.perf_counter() - start
        # the softmax rows computed: one per center in CBOW, one per distinct center in Skip-gram
        softmax_rows += sum(len(b["centers"]) if arch == "cbow" else len(torch.unique(b["centers"])) for b in batches)
    flop = 6 * 100 * len(dm.vocab) * softmax_rows
    result = {"seconds": seconds, "examples_per_sec": examples / seconds, "gflops": flop / seconds / 1e9,
              "peak_gib": peak_gib()}
    if evaluate:
        result.update(scores(model.word_vectors()))
    return result


def worker_notebook_full(max_docs, arch, n_batches, epochs=1, evaluate=False) -> dict:
    """The notebooks' loop (notebook_loop.py: materialized examples, a shuffled DataLoader, Embedding +
    Linear, Adam), n_batches an epoch (None: whole epochs)."""
    import torch

    import notebook_loop

    torch.set_num_threads(THREADS)
    dm = load_corpus(max_docs, "notebook")
    ids, _ = dm.corpus.all_ids()
    epochs_done = []
    model = notebook_loop.train(ids, dm.vocab.counts, arch, epochs, on_epoch=lambda e, r, m: epochs_done.append(r),
                                max_steps=n_batches)
    seconds, examples = sum(r.seconds for r in epochs_done), sum(r.examples for r in epochs_done)
    flop = 6 * 100 * len(dm.vocab) * examples
    result = {"seconds": seconds, "examples_per_sec": examples / seconds, "gflops": flop / seconds / 1e9,
              "peak_gib": peak_gib()}
    if evaluate:
        from w2v.vectors import WordVectors

        used = np.flatnonzero(dm.vocab.counts > 0)
        result.update(scores(WordVectors([dm.vocab.words[i] for i in used], model.embed.weight.detach().numpy()[used])))
    return result


def worker_matmul_peak() -> dict:
    """GFLOP/s of a 2048x2048 matrix product by `torch.mm` in float32 and in bfloat16 (the products
    of bf16-mixed), and in float32 by oneDNN (`w2v.kernels.onednn`, which some of the step's products
    go through; None where this PyTorch lacks it)."""
    import torch

    from w2v.kernels import onednn

    torch.set_num_threads(THREADS)
    result = {}
    for name, dtype, product in (("float32", torch.float32, torch.mm), ("bfloat16", torch.bfloat16, torch.mm),
                                 ("float32 oneDNN", torch.float32, lambda a, b: onednn.linear(a, b.t()))):
        a, b = torch.randn(2048, 2048, dtype=dtype), torch.randn(2048, 2048, dtype=dtype)
        if product is not torch.mm and not onednn.usable(a):
            result[name] = None
            continue
        for _ in range(3):
            product(a, b)
        best = 0.0
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(10):
                product(a, b)
            best = max(best, 10 * 2 * 2048**3 / (time.perf_counter() - start) / 1e9)
        result[name] = best
    return result


# (name, worker, then worker_w2v_full's optimizer, precision and batch_size where not their defaults):
# the notebooks' loop, in float32, last
NOTEBOOK_BATCH = {"cbow": 256, "skipgram": 64}  # centers a batch
DEFAULT_BATCH = 4096  # conf/data's batch_size
FULL_SOFTMAX_CONTENDERS = [("w2v adam", "w2v_full", "adam"), ("w2v lazy_adam", "w2v_full", "lazy_adam"),
                           ("w2v adam bf16-mixed", "w2v_full", "adam", "bf16-mixed"),
                           ("w2v adam, default batches and lr", "w2v_full", "adam", "32-true", DEFAULT_BATCH),
                           ("notebook loop", "notebook_full")]

WORKERS = {"w2v_mode": worker_w2v_mode, "gensim_mode": worker_gensim_mode, "w2v_full": worker_w2v_full,
           "notebook_full": worker_notebook_full, "matmul_peak": worker_matmul_peak}


def run_worker(name: str, *args) -> dict:
    cmd = [sys.executable, __file__, "--worker", name, json.dumps(args)]
    result = subprocess.run(cmd, check=False, capture_output=True, text=True)  # its stderr is shown below
    if result.returncode != 0:
        sys.exit(f"{name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def quality(max_docs: int, epochs: int) -> None:
    """Part 3: the full-softmax models' scores after the same epochs on the same data, notebooks' setting."""
    print(f"## Full softmax after {epochs} epoch(s), first {max_docs:,} reviews, notebooks' setting\n")
    print("| | examples/s | WordSim-353 | SimLex-999 | analogies |")
    print("|---|---|---|---|---|")
    for arch in ("cbow", "skipgram"):
        for name, worker, *settings in FULL_SOFTMAX_CONTENDERS:
            r = run_worker(worker, max_docs, arch, None, epochs, True, *settings)
            print(f"| {name} {arch} | {r['examples_per_sec']:,.0f} | {r['wordsim353']:.3f} | {r['simlex999']:.3f} | "
                  f"{r['analogies']:.1%} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="20,000 reviews, 1 epoch, fewer full-softmax batches")
    parser.add_argument("--epochs", type=int, help="part 1's epochs (default 5, or 1 with --quick)")
    parser.add_argument("--max-docs", type=int, help="part 1's reviews (default all, or 20,000 with --quick)")
    parser.add_argument("--modes", help=f"part 1 alone, these of its modes ({', '.join(MODES)}; default all, then part 2)")
    parser.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                        help="part 1: a Hydra override of w2v's model, e.g. model.update_rule=damped (repeatable)")
    parser.add_argument("--quality", action="store_true",
                        help="only part 3: full-softmax vectors after the same epochs, w2v against the notebooks' loop")
    parser.add_argument("--full-softmax", action="store_true", help="only part 2: full softmax against the notebooks' loop")
    parser.add_argument("--quality-docs", type=int, default=5_000, help="reviews for --quality (default 5,000)")
    parser.add_argument("--quality-epochs", type=int, default=1, help="epochs for --quality (default 1)")
    parser.add_argument("--repeats", type=int, default=3,
                        help="alternating runs of each contender for each full-softmax model (default 3)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("args", nargs="?", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(WORKERS[args.worker](*json.loads(args.args))))
        return
    if args.quality:
        quality(args.quality_docs, args.quality_epochs)
        return
    epochs = args.epochs or (1 if args.quick else 5)
    max_docs = args.max_docs or (20_000 if args.quick else None)
    n_batches = 300 if args.quick else 1000

    modes = args.modes.split(",") if args.modes else list(MODES)
    unknown = sorted(set(modes) - set(MODES))
    if unknown:
        parser.error(f"--modes: {unknown[0]} is unknown; use any of {', '.join(MODES)}")
    if not args.full_softmax:
        word2vec_modes(max_docs, epochs, modes, args.override)
        if args.modes:  # part 1 alone
            return
    full_softmax(n_batches, args.repeats)


def word2vec_modes(max_docs: int | None, epochs: int, modes: list[str], overrides: list[str]) -> None:
    """Part 1: each of word2vec's modes, w2v's (with `overrides` of its model) against gensim's, side by side."""
    print(f"## word2vec's modes, {'first ' + format(max_docs, ',') if max_docs else 'all'} IMDb reviews, "
          f"{epochs} epoch(s), {THREADS} threads{', w2v with ' + ' '.join(overrides) if overrides else ''}\n")
    print("| | words/s | wall s | peak GiB | WordSim-353 | SimLex-999 | analogies |")
    print("|---|---|---|---|---|---|---|")
    for mode in modes:
        ours = run_worker("w2v_mode", max_docs, epochs, mode, overrides)
        theirs = run_worker("gensim_mode", max_docs, epochs, mode)
        for name, r in ((f"w2v {mode}", ours), (f"gensim {mode}", theirs)):
            print(f"| {name} | {r['words_per_sec']:,.0f} | {r['seconds']:.0f} | {r['peak_gib']:.2f} | "
                  f"{r['wordsim353']:.3f} | {r['simlex999']:.3f} | {r['analogies']:.1%} |")
        print(f"| **w2v / gensim, {mode}** | **{ours['words_per_sec'] / theirs['words_per_sec']:.2f}x** | | | "
              f"{ours['wordsim353'] - theirs['wordsim353']:+.3f} | {ours['simlex999'] - theirs['simlex999']:+.3f} | "
              f"{(ours['analogies'] - theirs['analogies']) * 100:+.1f} pt |", flush=True)
    print()


def full_softmax(n_batches: int, repeats: int) -> None:
    """Part 2: w2v's CBOW and Skip-gram against the notebooks' loop, contenders taking turns."""
    print(f"## Full softmax, notebooks' setting (first 10,000 reviews, 10,002 words), {n_batches} batches\n")
    print(f"Best of {repeats} alternating runs of each (this machine's rates move by tens of percent between"
          " runs); the last column gives all of them. The 2048x2048 matrix product takes its turn in every"
          " round too, and each contender's share is of its best rate in the precision of its products.\n")
    for arch, unit in (("cbow", "centers"), ("skipgram", "pairs")):
        runs = {contender: [] for contender in FULL_SOFTMAX_CONTENDERS}
        peaks = []
        for _ in range(repeats):
            peaks.append(run_worker("matmul_peak"))
            for (name, worker, *settings), results in runs.items():
                # as many centers as the notebooks' batches: fewer batches where they are larger
                batch_size = settings[2] if len(settings) > 2 else NOTEBOOK_BATCH[arch]
                batches = n_batches * NOTEBOOK_BATCH[arch] // batch_size
                results.append(run_worker(worker, 10_000, arch, batches, 1, False, *settings))
        peak = {kind: max(p[kind] or 0.0 for p in peaks) for kind in peaks[0]}
        rounds = {kind: ", ".join(format(p[kind] or 0.0, ".0f") for p in peaks) for kind in peaks[0]}
        print(f"{arch}: 2048x2048 matrix product by torch.mm at {peak['float32']:.0f} GFLOP/s in float32 (rounds: "
              f"{rounds['float32']}), {peak['bfloat16']:.0f} in bfloat16 (rounds: {rounds['bfloat16']}); by oneDNN in "
              f"float32 at {peak['float32 oneDNN']:.0f} (rounds: {rounds['float32 oneDNN']}).\n")
        print("| | examples/s | GFLOP/s | share of torch.mm's peak | share of oneDNN's float32 peak | peak GiB "
              "| every run, examples/s |")
        print("|---|---|---|---|---|---|---|")
        best = {contender[0]: max(results, key=lambda r: r["examples_per_sec"]) for contender, results in runs.items()}
        for (name, *_), results in runs.items():
            r, every = best[name], ", ".join(f"{x['examples_per_sec']:,.0f}" for x in results)
            share = r["gflops"] / peak["bfloat16" if "bf16" in name else "float32"]
            onednn_share = "" if "bf16" in name or not peak["float32 oneDNN"] else \
                format(r["gflops"] / peak["float32 oneDNN"], ".0%")
            print(f"| {name} {arch} ({unit}) | {r['examples_per_sec']:,.0f} | {r['gflops']:.0f} | {share:.0%} | "
                  f"{onednn_share} | {r['peak_gib']:.2f} | {every} |")
        loop = best["notebook loop"]["examples_per_sec"]
        ratios = ", ".join(f"{name}: {best[name]['examples_per_sec'] / loop:.1f}x" for name, *_ in FULL_SOFTMAX_CONTENDERS[:-1])
        print(f"| w2v / notebook loop | {ratios} | | | | | |\n", flush=True)


if __name__ == "__main__":
    main()
