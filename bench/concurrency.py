"""Item 4: study throughput with 1, 2, 4, 8 trials sharing one GPU: trained trials per hour
(a draw rejected untrained is not one).

    python bench/concurrency.py [--data DIR] [--trials 16] [--epochs 3] [--per-gpu 1 2 4 8] [--repeats 3]

Each setting runs the same budget as a fresh study through `run --trials-per-gpu M`
(worker processes on a journal file, 1 per GPU included), sampler `random` and no pruner, so every
setting trains trials drawn from the same distribution for the same epochs. Each worker's sampler
draws its own seed (so that workers never propose the same trial), so settings train different
networks from that distribution: the repeats' median smooths that out. Process start-up is counted:
it is part of what a user waits. The speed-up is taken within each repeat.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from harness import Row, StudyRun, run_study, study_parser, table


def one_setting(data: Path | None, trials: int, epochs: int, per_gpu: int, rep: int, flags: list[str], tmp: Path,
                logs: Path | None = None) -> StudyRun:
    """One fresh study of ``trials`` random trials with ``per_gpu`` of them at once, storage in ``tmp``."""
    name = f"conc-{per_gpu}-{rep}"
    return run_study("cnn", f"journal://{tmp / f'{name}.log'}", name, *(["--data", str(data)] if data else []),
                     "--trials", str(trials), "--epochs", str(epochs), "--sampler", "random", "--pruner", "none",
                     *flags, "--seed", str(rep), "--trials-per-gpu", str(per_gpu),
                     log=logs / f"{name}.log" if logs else None)


def measure(data: Path | None, trials: int, epochs: int, per_gpu: list[int], repeats: int, flags: list[str],
            logs: Path | None = None) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(repeats):
            base = None
            for m in per_gpu:
                r = one_setting(data, trials, epochs, m, rep, flags, Path(tmp), logs)
                rate = r.trained / r.wall * 3600  # trials that trained: rejected draws cost a second, no epoch
                base = base or rate
                print(f"  repeat {rep}, {m} per GPU: {r.wall:.0f}s, {rate:.0f} trials/h", file=sys.stderr, flush=True)
                setting = f"{trials} trials of {epochs} epochs, {m} per GPU"
                rows += [Row("concurrency", setting, "wall s", [r.wall], "{:.0f}"),
                         Row("concurrency", setting, "trials/hour", [rate], "{:.0f}"),
                         Row("concurrency", setting, "speed-up over 1 per GPU", [rate / base], "{:.2f}x")]
    return rows


def main() -> None:
    p = study_parser(__doc__)
    p.add_argument("--trials", type=int, default=16)
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--per-gpu", type=int, nargs="+", default=[1, 2, 4, 8])
    args = p.parse_args()
    print(table(measure(args.data, args.trials, args.epochs, args.per_gpu, args.repeats, args.flags,
                        args.logs)))


if __name__ == "__main__":
    main()
