"""Does the search earn its keep? Several studies of a space on each benchmark, priors on and off.

    python bench/search_quality.py --data DIR [DIR ...] [--seeds 0 1 2] [--prior on off]
                                   [--flags "..."] [--user-question SEC] [--out FILE]

For each benchmark (``synth`` names the preset's own synthetic benchmark), prior setting and seed, a
fresh study runs through `python -m search run` as a user types it, with the preset's budget (on a
CPU its quick variant's timeout). From each study's storage:
- best minus the seed design, in points (the seed design's value: its last epoch if it was pruned);
- the share of trained trials near chance (best epoch under twice chance);
- the wall time until a trial first beat the seed design, and that as a share of the timeout;
- trials trained and rejected untrained;
- the pruner's premise: Spearman's rank correlation, over the completed trials, between the metric
  at the pruner's first verdict (the preset's pruner's `n_warmup_steps`: epoch 3 on the quick
  preset) and the final metric.

- the recommended design's own value beside the seed design's, and what the search adds: best minus
  the better of the two (both are queued designs, not found ones).

``--user-question SEC`` asks the question a user comes with, on every benchmark that has test
answers beside it (DIR-answers.csv): given SEC seconds of wall time on the same device, does the
whole job (`run --time SEC`) beat seed 000's CNN and the space's recommended design, each trained
plainly for SEC? (bench/user_question.py: one arm a process; ``--slots 2`` runs two at once, each
pinned to its own core.) All are scored on the test images. Every figure is the median over
seeds, with the range beside it.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
import statistics
import sys
import tempfile
from pathlib import Path

import optuna
from harness import run_study
from scipy.stats import spearmanr

from search.trial.budget import takes_budget

optuna.logging.set_verbosity(optuna.logging.WARNING)
SEED_DESIGN = "seed000-cnn"
RECOMMENDED = "recommended"


def design_value(trials: list, name: str) -> float | None:
    """A queued design's value: its last epoch's metric whether it completed or was pruned (as
    bench/harness.py counts it); None when the study did not queue it."""
    found = next((t for t in trials if t.user_attrs.get("design") == name), None)
    if found is None:
        return None
    return found.value if found.value is not None else (
        found.intermediate_values[max(found.intermediate_values)] if found.intermediate_values else 0.0)


def study_figures(study: optuna.Study, timeout: float | None, verdict_epoch: int = 1) -> dict:
    trials = study.get_trials(deepcopy=False)
    trained = [t for t in trials if takes_budget(t)]
    seed = next(t for t in trials if t.user_attrs.get("design") == SEED_DESIGN)
    seed_value = design_value(trials, SEED_DESIGN)
    recommended = design_value(trials, RECOMMENDED)
    fixed = max(seed_value, recommended if recommended is not None else seed_value)
    classes = len(seed.user_attrs.get("per_class_f1") or [0, 0])
    chance = 1 / classes
    best_epochs = [max(t.intermediate_values.values(), default=0.0) for t in trained]
    complete = [t for t in trained if t.state == optuna.trial.TrialState.COMPLETE]
    start = min(t.datetime_start for t in trials if t.datetime_start)
    beaten = [(t.datetime_complete - start).total_seconds() for t in complete if t.value > seed_value]
    first, final = [], []
    for t in complete:
        if verdict_epoch in t.intermediate_values:
            first.append(t.intermediate_values[verdict_epoch])
            final.append(t.value)
    rho = spearmanr(first, final).statistic if len(first) >= 4 else float("nan")
    best = max((t.value for t in complete), default=seed_value)
    by_drawer = {who: [t for t in trained if t.user_attrs.get("drawn_from") == who] for who in ("prior", "sampler")}
    time_to_beat = min(beaten) if beaten else float("nan")
    return {
        "best": best, "seed design": seed_value, "gain points": 100 * (best - seed_value),
        "recommended design": float("nan") if recommended is None else recommended,
        "search adds, points": 100 * (best - fixed),
        "near chance share": sum(v < 2 * chance for v in best_epochs) / max(1, len(trained)),
        # Which draws stay near chance: the prior's (start-up and its decaying share) or the wrapped sampler's.
        **{f"near chance, {who} draws": _near_chance_share(drawn, chance) for who, drawn in by_drawer.items()},
        "sampler draws": len(by_drawer["sampler"]),
        "seconds to beat seed": time_to_beat,
        "share of budget to beat seed": time_to_beat / timeout if timeout else float("nan"),
        "trials trained": len(trained), "rejected untrained": len(trials) - len(trained),
        "first-verdict rank correlation": rho,
    }


def _near_chance_share(trials: list, chance: float) -> float:
    best_epochs = [max(t.intermediate_values.values(), default=0.0) for t in trials]
    return sum(v < 2 * chance for v in best_epochs) / len(trials) if trials else float("nan")


def summary(rows: list[dict], keys: list[str]) -> str:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["data"], r["arm"]), []).append(r)
    lines = ["| benchmark | arm | measure | median | range | runs |", "|---|---|---|---|---|---|"]
    for (data, arm), runs in groups.items():
        for key in keys:
            if not any(key in r for r in runs):
                continue
            values = [r[key] for r in runs if key in r and not math.isnan(r[key])]
            if not values:  # never happened in any run (the seed design was never beaten, say), or not defined
                what = "never" if "beat" in key else "n/a"
                lines.append(f"| {data} | {arm} | {key} | {what} | | {len(runs)} |")
                continue
            fmt = "{:+.1f}" if "points" in key else "{:.2f}" if abs(statistics.median(values)) < 10 else "{:.0f}"
            lines.append(f"| {data} | {arm} | {key} | {fmt.format(statistics.median(values))} | "
                         f"{fmt.format(min(values))} - {fmt.format(max(values))} | {len(values)} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", nargs="+", default=["synth"], help="benchmark folders; `synth`: the preset's own")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--prior", nargs="*", choices=["on", "off"], default=["on", "off"],
                   help="arms to run (none: only the user question)")
    p.add_argument("--flags", type=shlex.split, default=[], help="more `run` flags for every study")
    p.add_argument("--timeout", type=float, help="the study's timeout (default: the preset's)")
    p.add_argument("--user-question", type=float, metavar="SEC",
                   help="also ask the user's question in SEC s (bench/user_question.py's three arms)")
    p.add_argument("--question-arms", nargs="+", choices=["engine", "seed", "recommended"],
                   default=["engine", "seed", "recommended"],
                   help="user question: the arms to run (a change to the engine leaves the plain arms as they were)")
    p.add_argument("--question-flags", type=shlex.split, default=[],
                   help="user question: more `run` flags for the engine's arm")
    p.add_argument("--slots", type=int, default=1, choices=[1, 2],
                   help="user question: arms at once; 2 pins each to one of two cores (equal terms)")
    p.add_argument("--storage", help="keep the studies in this storage URL (default: a temporary SQLite file)")
    p.add_argument("--out", type=Path, help="append each result as a JSON line here (a cut run keeps its rows)")
    args = p.parse_args()
    rows: list[dict] = []

    def keep(row: dict) -> None:
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        if args.out:
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")

    with tempfile.TemporaryDirectory() as tmp:
        storage = args.storage or f"sqlite:///{Path(tmp) / 'quality.db'}"
        # Seeds outermost: a run cut short still has every benchmark and arm at its first seeds.
        for seed in args.seeds:
            for data in args.data:
                where = [] if data == "synth" else ["--data", data]
                timeout = ["--timeout", str(args.timeout)] if args.timeout else []
                for prior in args.prior:
                    name = f"quality-{Path(data).name}-{prior}-{seed}"
                    run = run_study("cnn", storage, name, *where, "--seed", str(seed), "--prior", prior,
                                    *timeout, *args.flags, preset_timeout=True)
                    keep({"data": Path(data).name, "arm": f"prior {prior}", "seed": seed, "wall": run.wall,
                          **study_figures(run.study, args.timeout or _preset_timeout(), _first_verdict_epoch())})
    if args.user_question:
        from user_question import ask

        rows += ask([Path(d) for d in args.data if d != "synth"], args.seeds, args.user_question, args.slots, args.out,
                    tuple(args.question_arms), args.question_flags)
    keys = ["search adds, points", "gain points", "recommended design",
            "near chance share", "near chance, prior draws", "near chance, sampler draws",
            "sampler draws", "seconds to beat seed", "share of budget to beat seed",
            "trials trained", "rejected untrained", "first-verdict rank correlation", "best", "seed design", "wall",
            "test accuracy", "seconds", "engine minus better fixed, points", "engine minus seed, points",
            "engine minus recommended, points"]
    print(summary(rows, keys))


def _variant() -> str:
    """The preset variant `run` takes on this machine's device: its timeout and pruner are the study's."""
    from search.trial.device import resolve_device

    return "cpu" if resolve_device("auto").type == "cpu" else "gpu"


def _preset_timeout() -> float | None:
    from search.config import load_preset

    return load_preset("cnn", _variant()).timeout


def _first_verdict_epoch() -> int:
    """The first epoch the preset's pruner may stop a trial at (epochs are steps 1, 2, ...): the median
    rule's n_warmup_steps, or Hyperband's and ASHA's min_resource."""
    from search.config import load_preset

    pruner = load_preset("cnn", _variant()).pruner
    return max(1, int(pruner.get("n_warmup_steps", pruner.get("min_resource", 1))))


if __name__ == "__main__":
    main()
