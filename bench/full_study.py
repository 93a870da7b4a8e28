"""The study target: a whole `run cnn` with its preset (pruner, epochs, trials) against the clock,
and how far its best trial beats the enqueued seed 000 design.

    python bench/full_study.py [--data DIR] [--repeats 3] [--flags "--trials-per-gpu 4"]

On a GPU the preset is the full study (100 trials on the 100-class 64px benchmark); on a CPU its
quick one. Each repeat is a fresh study with its own seed.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from harness import Row, run_study, study_parser, table


def measure(data: Path | None, repeats: int, flags: list[str], logs: Path | None = None) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory() as tmp:
        for rep in range(repeats):
            name = f"full-{rep}"
            r = run_study("cnn", f"journal://{Path(tmp) / f'{name}.log'}", name,
                          *(["--data", str(data)] if data else []), "--seed", str(rep), *flags,
                          log=logs / f"{name}.log" if logs else None, preset_timeout=True)
            seed = r.design_value("seed000-cnn")
            print(f"  repeat {rep}: {r.trained} trials (and {r.rejected} rejected untrained) in {r.wall:.0f}s, "
                  f"best {r.best:.4f}, seed design "
                  f"{seed:.4f}", file=sys.stderr, flush=True)
            setting = f"run cnn {' '.join(flags)}".strip()
            rows += [Row("study", setting, "wall s", [r.wall], "{:.0f}"),
                     Row("study", setting, "trials finished (the budget)", [r.trained], "{:.0f}"),
                     Row("study", setting, "rejected untrained (cost ceiling)", [r.rejected], "{:.0f}"),
                     Row("study", setting, "epochs trained", [r.epochs], "{:.0f}"),
                     Row("study", setting, "best value", [r.best], "{:.4f}"),
                     Row("study", setting, "seed 000 design's value", [seed], "{:.4f}"),
                     Row("study", setting, "best minus seed design, points", [100 * (r.best - seed)], "{:+.1f}")]
    return rows


def main() -> None:
    p = study_parser(__doc__)
    args = p.parse_args()
    print(table(measure(args.data, args.repeats, args.flags, args.logs)))


if __name__ == "__main__":
    main()
