"""What a space's random draws learn: the share of random configurations that stay near chance,
and which parameter values send them there.

    python bench/space_draws.py [--space cnn] [--data DIR] [--trials 40] [--epochs 2] [--chance 0.05]
                                [--repeats 1] [--flags "..."]

TPE's first trials are random draws (the preset's n_startup_trials), and a pruner judges every
later trial against them. If most draws learn nothing in a few epochs, the sampler has little to
model and the study's budget goes to configurations no one would try by hand. This runs the space
with the random sampler and no pruner (the seed design enqueued first, as in every study), then
breaks the trials' values down by each parameter: per choice for a categorical, below and above
the drawn median for a number, over the draws of every repeat. "Near chance" is under twice chance
accuracy. The draws are uniform (`--prior off`); `--flags "--prior on"` draws every trial from the
space's priors instead (the sampler's start-up count, 10 for `random`, covers them with
`--flags "--prior on --trials 10"`).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

import optuna
from harness import Row, run_study, study_parser, table

COMPLETE = optuna.trial.TrialState.COMPLETE


def groups(trials: list[optuna.trial.FrozenTrial], name: str) -> dict[str, list[float]]:
    """Each trial's value under a label for its value of parameter ``name``: the choice for a
    categorical, below or above the drawn median for a number."""
    drawn = [t for t in trials if name in t.params]
    dist = drawn[0].distributions[name]
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        label = str
    else:
        cut = statistics.median(t.params[name] for t in drawn)
        label = lambda v: f"< {cut:.3g}" if v < cut else f">= {cut:.3g}"  # noqa: E731
    out: dict[str, list[float]] = {}
    for t in drawn:
        out.setdefault(label(t.params[name]), []).append(t.value)
    return dict(sorted(out.items()))


def breakdown(trials: list[optuna.trial.FrozenTrial], near: float, top: int) -> str:
    """The ``top`` parameters whose values split the draws most: the widest gap in the share near
    chance between two of a parameter's groups (each of at least 3 draws)."""
    def share(values: list[float]) -> float:
        return sum(v < near for v in values) / len(values)

    ranked = []
    for name in sorted({k for t in trials for k in t.params}):
        g = {k: v for k, v in groups(trials, name).items() if len(v) >= 3}
        if len(g) >= 2:
            shares = [share(v) for v in g.values()]
            ranked.append((max(shares) - min(shares), name, g))
    ranked.sort(key=lambda r: -r[0])
    lines = ["| parameter | value | draws | median value | share near chance |", "|---|---|---|---|---|"]
    for _, name, g in ranked[:top]:
        lines += [f"| {name} | {label} | {len(v)} | {statistics.median(v):.3f} | {share(v):.2f} |"
                  for label, v in g.items()]
    return "\n".join(lines)


def measure(space: str, data: Path | None, trials: int, epochs: int, chance: float, repeats: int,
            flags: list[str], logs: Path | None = None) -> tuple[list[Row], list[optuna.trial.FrozenTrial]]:
    """Rows per repeat (each a fresh study with its own seed), and every repeat's random draws."""
    rows, pooled = [], []
    setting = f"{space}, random, {epochs} epochs"
    for rep in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            r = run_study(space, f"sqlite:///{Path(tmp) / 'draws.db'}", "draws",
                          *(["--data", str(data)] if data else []), "--trials", str(trials), "--epochs",
                          str(epochs), "--sampler", "random", "--pruner", "none", "--seed", str(rep), "--prior", "off",
                          *flags,
                          log=logs / f"draws-{rep}.log" if logs else None)
        done = [t for t in r.finished if t.state == COMPLETE and t.user_attrs.get("design") is None]
        designs = [t.user_attrs["design"] for t in r.finished if t.user_attrs.get("design")]
        print(f"  repeat {rep}: {len(done)} random draws trained, {r.rejected} rejected untrained, "
              f"{r.wall:.0f}s", file=sys.stderr, flush=True)
        pooled += done
        values = [t.value for t in done] or [float("nan")]
        rows += [Row("draws", setting, "random draws trained", [len(done)], "{:.0f}"),
                 Row("draws", setting, "rejected untrained (cost ceiling)", [r.rejected], "{:.0f}"),
                 Row("draws", setting, "median draw's value", [statistics.median(values)], "{:.3f}"),
                 Row("draws", setting, "best draw's value", [max(values)], "{:.3f}"),
                 Row("draws", setting, f"share near chance (< {2 * chance:.3g})",
                     [sum(v < 2 * chance for v in values) / max(len(done), 1)], "{:.2f}")]
        if designs:
            rows.append(Row("draws", setting, f"{designs[0]} design's value", [r.design_value(designs[0])],
                            "{:.3f}"))
    return rows, pooled


def main() -> None:
    p = study_parser(__doc__)
    p.add_argument("--space", default="cnn")
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--chance", type=float, default=0.05, help="chance accuracy (default 1/20: the quick benchmark)")
    p.add_argument("--top", type=int, default=8, help="parameters shown in the breakdown")
    p.set_defaults(repeats=1)  # one run of many draws; more repeats pool more draws
    args = p.parse_args()
    rows, done = measure(args.space, args.data, args.trials, args.epochs, args.chance, args.repeats, args.flags,
                         args.logs)
    print(table(rows), "", breakdown(done, 2 * args.chance, args.top), sep="\n")


if __name__ == "__main__":
    main()
