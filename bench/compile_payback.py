"""Item 5: does torch.compile (and CUDA graphs, its reduce-overhead mode) pay for itself in a study?

    python bench/compile_payback.py [--data DIR] [--trials 12] [--epochs E] [--modes off default ...]

Each mode runs the same study: the random sampler with one seed and no pruner, so every arm trains
the very same trials for the same epochs, and compilation is the only difference. Reported per
mode: the study's wall time (compile time included), its median epoch time, the median compile
cost per trial (first epoch minus the median epoch), and per trial the epochs after which the
compiled network has saved its own compile time (break-even; "never" when it is not faster).
"""

from __future__ import annotations

import math
import statistics
import sys
import tempfile
from pathlib import Path

from harness import Row, run_study, study_parser, table


def measure(data: Path | None, trials: int, epochs: int | None, modes: list[str], repeats: int,
            flags: list[str], logs: Path | None = None) -> list[Row]:
    rows: list[Row] = []
    common = [*(["--data", str(data)] if data else []), "--trials", str(trials),
              *(["--epochs", str(epochs)] if epochs else []), "--sampler", "random", "--pruner", "none", *flags]
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(repeats):
            runs = {}
            for mode in modes:
                name = f"compile-{mode}-{rep}"
                runs[mode] = r = run_study("cnn", f"sqlite:///{Path(tmp) / f'{name}.db'}", name, *common,
                                           "--seed", str(rep), "--compile", mode,
                                           log=logs / f"{name}.log" if logs else None)
                trained = [t for t in r.finished if t.user_attrs.get("epochs")]
                epoch = statistics.median(t.user_attrs["epoch_seconds"] for t in trained)
                overhead = statistics.median(t.user_attrs["first_epoch_seconds"] - t.user_attrs["epoch_seconds"]
                                             for t in trained)
                print(f"  repeat {rep} compile {mode}: {r.wall:.0f}s, median epoch {epoch:.3f}s, "
                      f"first-epoch overhead {overhead:.1f}s", file=sys.stderr, flush=True)
                setting = f"{trials} trials, compile {mode}"
                rows += [Row("compile", setting, "wall s", [r.wall], "{:.0f}"),
                         Row("compile", setting, "trials/hour", [r.trained / r.wall * 3600], "{:.0f}"),
                         Row("compile", setting, "median epoch s", [epoch], "{:.3f}"),
                         Row("compile", setting, "first epoch minus median, s", [overhead], "{:.2f}")]
            base = runs[modes[0]]
            for mode in modes[1:]:
                r = runs[mode]
                rows.append(Row("compile", f"{mode} / {modes[0]}", "wall time", [r.wall / base.wall], "{:.2f}"))
                rows.append(Row("compile", f"{mode} vs {modes[0]}", "break-even epochs (median trial)",
                                [_break_even(base, r)], "{:.1f}"))
    return rows


def _break_even(eager, compiled) -> float:
    """Per trial trained in both arms: extra first-epoch seconds over seconds saved per epoch."""
    before = {t.number: t.user_attrs for t in eager.finished if t.user_attrs.get("epochs")}
    ratios = []
    for t in compiled.finished:
        a, b = before.get(t.number), t.user_attrs
        if a is None or not b.get("epochs"):
            continue
        cost = (b["first_epoch_seconds"] - b["epoch_seconds"]) - (a["first_epoch_seconds"] - a["epoch_seconds"])
        saved = a["epoch_seconds"] - b["epoch_seconds"]
        ratios.append(cost / saved if saved > 0 else math.inf)
    return statistics.median(ratios) if ratios else math.nan


def main() -> None:
    p = study_parser(__doc__)
    p.add_argument("--trials", type=int, default=12)
    p.add_argument("--epochs", type=int, help="epochs every trial trains (default: the preset's)")
    p.add_argument("--modes", nargs="+", default=["off", "default", "reduce-overhead"],
                   help="compile modes; the first is the baseline")
    args = p.parse_args()
    print(table(measure(args.data, args.trials, args.epochs, args.modes, args.repeats, args.flags,
                        args.logs)))


if __name__ == "__main__":
    main()
