"""Which challenger rule keeps the draws that win and stops the rest: `run --time`'s own pruner replayed
on recorded curves, at several leads.

    python bench/challenger_rules.py ROWS.jsonl [MORE.jsonl ...] [--leads 1 0.5 0 -0.5] [--data-root data]

ROWS are bench/fidelity.py's rows: each design's 6-epoch trial (``short``) and its 16-epoch run
(``long``, the truth). Every design but the recommended one is replayed as a challenger to the
recommended design's trial, epoch by epoch, through search/job/challenge.py's ``ChallengerPruner``
with ``CHALLENGE_LEAD`` set to each lead; one that is never stopped is then put to
search/job/plan.py's ``final_choice`` beside the recommended design's trial, at equal seconds, as the
job would. For each benchmark and lead the table gives the epoch each challenger stopped at ("-":
never), the seconds of trial the challengers took in all (in the recommended design's epochs: what the
final run loses), and the final run's choice with its 16-epoch lead over the recommended design.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import optuna  # noqa: E402
from optuna.distributions import FloatDistribution  # noqa: E402
from optuna.trial import TrialState, create_trial  # noqa: E402

import search.job.challenge as challenge  # noqa: E402
from search.job.plan import final_choice  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
SPACE = {"x": FloatDistribution(0, 1)}


def curves(files: list[Path]) -> tuple[dict, dict, dict]:
    """(data, run, design) -> {epoch: accuracy} and -> {epoch: seconds since the run began}; data -> chance."""
    acc, sec, chance = defaultdict(dict), defaultdict(dict), {}
    for f in files:
        for line in f.read_text().splitlines():
            r = json.loads(line)
            acc[(r["data"], r["run"], r["design"])][r["epoch"]] = r["accuracy"]
            sec[(r["data"], r["run"], r["design"])][r["epoch"]] = r["seconds"]
            chance[r["data"]] = r["chance"]
    return acc, sec, chance


def frozen(number: int, curve: dict, seconds: float, design: str, state=TrialState.COMPLETE):
    epochs = max(curve)
    t = create_trial(params={"x": 0.5}, distributions=SPACE, state=state,
                     value=curve[epochs] if state == TrialState.COMPLETE else None,
                     intermediate_values=dict(curve),
                     user_attrs={"design": design, "epoch_seconds": seconds / epochs})
    t.number = number
    return t


def validation_images(root: Path, data: str) -> int:
    """The set's validation images: the standard errors are counted on them."""
    listing = root / data / "val.csv"
    if not listing.is_file():
        sys.exit(f"error: {listing} is missing: build the set first (bench/real_sets.py, bench/photo_patches.py)")
    return sum(1 for _ in listing.open()) - 1


def replay(acc, sec, chance: float, data: str, lead: float, n: int) -> tuple[dict, float, str]:
    challenge.CHALLENGE_LEAD = lead
    short = lambda d: acc[(data, "short", d)]  # noqa: E731
    rec_curve, rec_seconds = short("recommended"), max(sec[(data, "short", "recommended")].values())
    recommended = frozen(0, rec_curve, rec_seconds, "recommended")
    study = optuna.create_study(direction="maximize")
    study.add_trial(recommended)
    pruner = challenge.ChallengerPruner(optuna.pruners.NopPruner(), n, chance)
    stopped, cost, survivors = {}, 0.0, [recommended]
    rec_epoch = rec_seconds / max(rec_curve)
    challengers = sorted({d for (s, run, d) in acc if s == data and run == "short" and d != "recommended"})
    for i, design in enumerate(challengers, start=1):
        curve, seconds = short(design), max(sec[(data, "short", design)].values())
        stop = next((e for e in sorted(curve) if pruner.prune(
            study, frozen(i, {k: v for k, v in curve.items() if k <= e}, seconds, design, TrialState.RUNNING))), None)
        stopped[design] = stop
        cost += (stop or max(curve)) * seconds / max(curve) / rec_epoch
        if stop is None:
            survivors.append(frozen(i, curve, seconds, design))
    chosen = final_choice(survivors, n).user_attrs["design"]
    last = lambda d: acc[(data, "long", d)][max(acc[(data, "long", d)])]  # noqa: E731
    gain = last(chosen) - last("recommended")
    return stopped, cost, f"{chosen} ({100 * gain:+.1f})"


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("rows", type=Path, nargs="+")
    p.add_argument("--leads", type=float, nargs="+", default=[1.0, 0.5, 0.0, -0.5])
    p.add_argument("--data-root", type=Path, default=ROOT / "data", help="where the sets' folders are")
    args = p.parse_args(argv)
    acc, sec, chance = curves(args.rows)
    sets = sorted({s for (s, _, _) in acc})
    print("| benchmark | lead (s.e.) | stopped at epoch | challengers' epochs | final run (long-run lead) |")
    print("|---|---|---|---|---|")
    landed = challenge.CHALLENGE_LEAD  # each replay sets the knob; the caller gets it back as it was
    try:
        for data in sets:
            images = validation_images(args.data_root, data)
            for lead in args.leads:
                stopped, cost, chosen = replay(acc, sec, chance[data], data, lead, images)
                where = ", ".join(f"{d} {e or '-'}" for d, e in stopped.items())
                print(f"| {data} | {lead:g} | {where} | {cost:.1f} | {chosen} |")
    finally:
        challenge.CHALLENGE_LEAD = landed


if __name__ == "__main__":
    main()
