"""Study throughput with 1 and M trials sharing one GPU: finished trials per hour, in one run.

    python bench/concurrency.py --data DIR [--trials 16] [--epochs 3] [--per-gpu 1 4]

Each setting runs the same budget as a fresh study through `run --gpus 0 --trials-per-gpu M`
(worker processes on a journal file), sampler `random` with the same seed, so both see trials
drawn from the same distribution. Process start-up is counted: it is part of what a user waits.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--trials", type=int, default=16)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--per-gpu", type=int, nargs="+", default=[1, 4])
    p.add_argument("--log-dir", type=Path, help="keep each study's output here")
    args = p.parse_args()
    print("| trials per GPU | wall s | trials/hour | speed-up |")
    print("|---|---|---|---|")
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for m in args.per_gpu:
            cmd = [sys.executable, "-m", "search", "run", "cnn", "--data", str(args.data), "--study", f"conc-{m}",
                   "--storage", f"journal://{Path(tmp) / f'conc-{m}.log'}", "--trials", str(args.trials),
                   "--epochs", str(args.epochs), "--sampler", "random", "--no-progress",
                   "--gpus", "0", "--trials-per-gpu", str(m)]
            start = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, text=True)
            wall = time.perf_counter() - start
            if args.log_dir:
                args.log_dir.mkdir(parents=True, exist_ok=True)
                (args.log_dir / f"conc-{m}.log").write_text(done.stdout + done.stderr)
            if done.returncode != 0:
                print(f"| {m} | failed (exit {done.returncode}) | | |", flush=True)
                continue
            rate = args.trials / wall * 3600
            base = base or rate
            print(f"| {m} | {wall:.0f} | {rate:.0f} | {rate / base:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
