"""The speed harness: every item of the speed benchmark in one script, every figure in one table.

    python bench/speed.py [ITEM ...] [--repeats 3] [--data DIR] [--out FILE]

Items (default: all that apply to the device):
  epoch        1+2. seed 000's CNN: the engine's epoch against the textbook pipeline, and utilisation
  pruning      3.   a 30-trial study with the preset's pruner and without, same seed
  concurrency  4.   trials per hour with 1, 2, 4, 8 trials sharing one GPU (GPU only)
  compile      5.   torch.compile and CUDA graphs on and off over a study's trials, compile time included
  study        the preset's whole study against the clock, and its best trial against the seed design

On a GPU each item uses the full benchmark (100 classes, 64px, 13,000 images) and the full preset;
on a CPU the quick preset's sizes, so the harness finishes on a laptop. Every figure is the median
of --repeats runs; the table says how many and their range. bench/RESULTS.md keeps the tables.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shlex
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import compile_payback  # noqa: E402
import concurrency  # noqa: E402
import epoch_speed  # noqa: E402
import full_study  # noqa: E402
import pruning  # noqa: E402
from harness import table  # noqa: E402

ITEMS = ("epoch", "pruning", "concurrency", "compile", "study")


def plan(items: list[str], gpu: bool, data: Path | None, repeats: int, logs: Path | None):
    """(item, thunk) pairs with each item's settings for this kind of device."""
    workers = min(8, os.cpu_count() or 1)
    if gpu:
        yield "epoch", lambda: epoch_speed.measure(data, [256, 1024], 4, repeats, workers,
                                                   ["default", "reduce-overhead"])
        yield "pruning", lambda: pruning.measure(data, 30, None, repeats, [], logs)
        yield "concurrency", lambda: concurrency.measure(data, 16, 3, [1, 2, 4, 8], repeats, [], logs)
        yield "compile", lambda: compile_payback.measure(data, 8, 10, ["off", "default", "reduce-overhead"],
                                                         repeats, [], logs)
        yield "study", lambda: full_study.measure(data, repeats, ["--trials-per-gpu", "4"], logs)
        return
    # A CPU: the quick preset's sizes (its [cpu] table), two cores' worth of work.
    yield "epoch", lambda: epoch_speed.measure(data, [32, 256], 3, repeats, 2, [])
    yield "pruning", lambda: pruning.measure(data, 30, None, repeats, [], logs)
    yield "compile", lambda: compile_payback.measure(data, 6, 3, ["off", "default"], repeats, [], logs)
    yield "study", lambda: full_study.measure(data, repeats, [], logs)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("items", nargs="*", metavar="ITEM", help=f"what to measure: {', '.join(ITEMS)} (default: all)")
    p.add_argument("--repeats", type=int, default=3, help="runs per figure; the table gives their median")
    p.add_argument("--data", type=Path, help="dataset (default: the preset's synthetic benchmark)")
    p.add_argument("--out", type=Path, help="also write the table, with its header, to this file")
    p.add_argument("--logs", type=Path, help="keep every study's output here")
    args = p.parse_args()
    unknown = set(args.items) - set(ITEMS)
    if unknown:
        p.error(f"unknown item {sorted(unknown)[0]!r}; known: {', '.join(ITEMS)}")
    gpu = torch.cuda.is_available()
    wanted = args.items or list(ITEMS)
    if not gpu and "concurrency" in wanted and args.items:
        sys.exit("concurrency: several trials share one GPU; this machine has none")
    device = torch.cuda.get_device_name(0) if gpu else f"CPU ({platform.machine()}), {os.cpu_count()} cores"
    header = (f"{device}, torch {torch.__version__}, {datetime.date.today()}: "
              f"`python bench/speed.py {shlex.join(sys.argv[1:])}`")
    rows = []
    for item, thunk in plan(wanted, gpu, args.data, args.repeats, args.logs):
        if item in wanted:
            print(f"{item} ...", file=sys.stderr, flush=True)
            rows += thunk()
            if args.out:  # after every item: a later item's failure keeps what was measured
                args.out.write_text(f"{header}\n\n{table(rows)}\n")
    print(f"{header}\n\n{table(rows)}")


if __name__ == "__main__":
    main()
