"""Item 3: what pruning buys. The same study with the preset's pruner and with none, same seed.

    python bench/pruning.py [--data DIR] [--trials 30] [--epochs E] [--repeats 3] [--flags "..."]

Each repeat runs both arms with one study seed (the repeat's number), so the enqueued seed design
and the random start-up trials are the same in both; after that each sampler follows its own
results. Reported per arm: wall time, epochs trained over all trials, trials pruned, best value;
and, within each repeat, how much less time and how many fewer epochs the pruned study took.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import optuna
from harness import Row, run_study, study_parser, table

PRUNED = optuna.trial.TrialState.PRUNED


def measure(data: Path | None, trials: int, epochs: int | None, repeats: int, flags: list[str],
            logs: Path | None = None) -> list[Row]:
    rows: list[Row] = []
    common = [*(["--data", str(data)] if data else []), "--trials", str(trials),
              *(["--epochs", str(epochs)] if epochs else []), *flags]
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(repeats):
            runs = {}
            for arm, extra in (("preset pruner", []), ("no pruner", ["--pruner", "none"])):
                name = f"prune-{'none' if extra else 'preset'}-{rep}"
                runs[arm] = run_study("cnn", f"sqlite:///{Path(tmp) / f'{name}.db'}", name, *common,
                                      "--seed", str(rep), *extra, log=logs / f"{name}.log" if logs else None)
                r = runs[arm]
                print(f"  repeat {rep} {arm}: {r.wall:.0f}s, {r.epochs} epochs, best {r.best:.4f}",
                      file=sys.stderr, flush=True)
                setting = f"{trials} trials, {arm}"
                rows += [Row("pruning", setting, "wall s", [r.wall], "{:.0f}"),
                         Row("pruning", setting, "epochs trained", [r.epochs], "{:.0f}"),
                         Row("pruning", setting, "trials pruned while training", [r.stopped], "{:.0f}"),
                         Row("pruning", setting, "rejected untrained (cost ceiling)", [r.rejected], "{:.0f}"),
                         Row("pruning", setting, "best value", [r.best], "{:.4f}")]
            pruned, full = runs["preset pruner"], runs["no pruner"]
            rows += [Row("pruning", "pruned / unpruned", "wall time", [pruned.wall / full.wall], "{:.2f}"),
                     Row("pruning", "pruned / unpruned", "epochs", [pruned.epochs / full.epochs], "{:.2f}"),
                     Row("pruning", "pruned - unpruned", "best value", [pruned.best - full.best], "{:+.4f}")]
    return rows


def main() -> None:
    p = study_parser(__doc__)
    p.add_argument("--trials", type=int, default=30)
    p.add_argument("--epochs", type=int, help="epochs a trial may train (default: the preset's)")
    args = p.parse_args()
    print(table(measure(args.data, args.trials, args.epochs, args.repeats, args.flags, args.logs)))


if __name__ == "__main__":
    main()
