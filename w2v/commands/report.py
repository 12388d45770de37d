"""`w2v report MULTIRUN_DIR`: compare the runs of a sweep in a table (Markdown, CSV) and plots (PNG)."""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from pathlib import Path

import yaml

from w2v.errors import ConfigError
from w2v.fileio import atomic_write
from w2v.runs import tensorboard_dir

COLUMNS = ("train/loss_epoch", "eval/wordsim353_spearman", "eval/simlex999_spearman", "eval/analogy_3cosadd",
           "eval/analogy_3cosmul", "train/epoch_words_per_sec", "wall_seconds")


def collect_runs(sweep_dir: Path) -> tuple[list[dict], list[str]]:
    """One row per run directory (overrides, then final metrics) and the parameters that were swept."""
    rows, params = [], []
    for overrides_file in sorted(sweep_dir.glob("*/.hydra/overrides.yaml"), key=lambda p: _run_order(p.parent.parent)):
        run = overrides_file.parent.parent
        row: dict = {"run": run.name}
        for item in yaml.safe_load(overrides_file.read_text()) or []:
            key, _, value = item.partition("=")
            key = key.lstrip("+~")
            row[key] = value
            if key not in params:
                params.append(key)
        metrics_file = run / "metrics.json"
        row.update(json.loads(metrics_file.read_text()) if metrics_file.is_file() else {"status": "unfinished"})
        rows.append(row)
    if not rows:
        raise ConfigError(f"{sweep_dir} holds no runs (*/.hydra/overrides.yaml); pass a multirun directory")
    swept = [p for p in params if len({str(r.get(p)) for r in rows}) > 1] or params
    return rows, swept


def _run_order(path: Path):
    return (0, int(path.name), "") if path.name.isdigit() else (1, 0, path.name)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4f}"
    return "" if value is None else str(value)


def markdown(rows: list[dict], columns: list[str]) -> str:
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_fmt(row.get(c)) for c in columns) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def read_curves(sweep_dir: Path, rows: list[dict], swept: list[str], tags: list[str]) -> dict:
    """{run label: {tag: [(step, value)]}} from each run's TensorBoard events."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    curves = {}
    for row in rows:
        events = EventAccumulator(str(tensorboard_dir(sweep_dir / row["run"]))).Reload()
        available = set(events.Tags().get("scalars", []))
        label = f"{row['run']}: " + ",".join(f"{p}={row.get(p)}" for p in swept)
        curves[label] = {t: [(e.step, e.value) for e in events.Scalars(t)] for t in tags if t in available}
    return curves


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("sweep_dir", help="a multirun directory, e.g. outputs/train/multiruns/<date>")
    parser.add_argument("--metric", default="eval/wordsim353_spearman",
                        help="metric to plot against the parameter (default eval/wordsim353_spearman)")
    parser.add_argument("--param", help="swept parameter on the x axis (default: the first swept one)")
    parser.add_argument("--by", help="one line per value of this parameter (default: the second swept one)")
    parser.add_argument("-o", "--output", help="folder for report.md, report.csv and the PNGs (default: the sweep directory)")
    parser.add_argument("--json", action="store_true", help="print the table's rows as JSON instead of Markdown")


def run(args: argparse.Namespace) -> int:
    sweep_dir = Path(args.sweep_dir)
    if not sweep_dir.is_dir():
        raise ConfigError(f"{sweep_dir} is not a directory; pass a multirun directory")
    out = Path(args.output) if args.output else sweep_dir
    rows, swept = collect_runs(sweep_dir)
    for option, key in (("--param", args.param), ("--by", args.by)):  # before anything is written
        if key is not None and not any(key in row for row in rows):
            raise ConfigError(f"{option} {key} is not a parameter of these runs; choose one of "
                              f"{', '.join(swept) or 'the overrides in their .hydra/overrides.yaml'}")
    param = args.param or (swept[0] if swept else None)
    by = args.by or (swept[1] if len(swept) > 1 and swept[1] != param else None)
    columns = ["run", *swept, *[c for c in COLUMNS if any(c in r for r in rows)]]
    if any("status" in r for r in rows):
        columns.append("status")
    table = markdown(rows, columns)
    with atomic_write(out / "report.md") as handle:
        handle.write(table)
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    with atomic_write(out / "report.csv") as handle:
        handle.write(buffer.getvalue())
    print(json.dumps([{c: row.get(c) for c in columns} for row in rows], indent=1) if args.json else table)
    written = sys.stderr if args.json else sys.stdout  # stdout keeps only the JSON

    from w2v.plots import curves_plot, save_figure, sweep_plot

    figure = sweep_plot(rows, args.metric, param, by) if param else None
    if figure:
        print(save_figure(figure, out / "metric.png"), file=written)
    else:
        print(f"no run has {args.metric}: no metric.png" if param else "the runs have no overrides to compare: no "
              "metric.png", file=written)
    tags = ["train/loss_step", "eval/wordsim353_spearman", "eval/analogy_3cosadd"]
    figure = curves_plot(read_curves(sweep_dir, rows, swept, tags), tags)
    print(save_figure(figure, out / "curves.png") if figure else f"no run logged {', '.join(tags)}: no curves.png",
          file=written)
    return 0
