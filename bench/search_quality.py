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

``--user-question SEC`` asks the question a user comes with, on every benchmark that has test
answers beside it (DIR-answers.csv): given SEC seconds of wall time, does `run` (half of it, as
--timeout) then `retrain --time` (what is left) then `export` beat seed 000's CNN trained plainly
(Adam 1e-3, batch 32, no augmentation, as its report did) for the same wall time? Both are scored
on the held-out test images. Every figure is the median over seeds, with the range beside it.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from harness import ROOT, run_study
from scipy.stats import spearmanr

from search.trial.budget import takes_budget

optuna.logging.set_verbosity(optuna.logging.WARNING)
SEED_DESIGN = "seed000-cnn"


def study_figures(study: optuna.Study, timeout: float | None, verdict_epoch: int = 1) -> dict:
    trials = study.get_trials(deepcopy=False)
    trained = [t for t in trials if takes_budget(t)]
    seed = next(t for t in trials if t.user_attrs.get("design") == SEED_DESIGN)
    seed_value = seed.value if seed.value is not None else max(seed.intermediate_values.values(), default=0.0)
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


def score_submission(submission: Path, answers: Path) -> float:
    with answers.open() as f:
        truth = {row["Image"]: row["Class"] for row in csv.DictReader(f)}
    with submission.open() as f:
        rows = list(csv.DictReader(f))
    return sum(truth[r["Image"]] == r["Class"] for r in rows) / len(truth)


def cli(*args: str) -> None:
    done = subprocess.run([sys.executable, "-m", "search", *args], capture_output=True, text=True, cwd=ROOT)
    if done.returncode != 0:
        raise RuntimeError(f"search {' '.join(args)} failed:\n{(done.stdout + done.stderr)[-2000:]}")


def engine_answer(data: Path, answers: Path, seconds: float, seed: int, storage: str, out: Path) -> dict:
    """`run` for half the time, `retrain --time` for what is left, `export`: the user's own commands."""
    name = f"question-{data.name}-{seed}"
    start = time.perf_counter()
    run_study("cnn", storage, name, "--data", str(data), "--seed", str(seed), "--timeout", str(seconds / 2))
    left = seconds - (time.perf_counter() - start)
    cli("retrain", "--study", name, "--storage", storage, "--time", f"{max(1.0, left * 0.9):.0f}",
        "--out", str(out / name))
    cli("export", "--study", name, "--storage", storage, "--model", str(out / name), "--out", str(out / f"{name}.csv"))
    return {"seconds": time.perf_counter() - start, "accuracy": score_submission(out / f"{name}.csv", answers)}


def plain_answer(data: Path, answers: Path, seconds: float, seed: int) -> dict:
    """Seed 000's CNN trained as its report did, epoch after epoch until the next would overrun."""
    import optuna as _optuna
    import torch

    from gic_models import create_model
    from search.data.prepare import DataOptions
    from search.trial.inputs import load_data, to_device
    from search.trial.train import fit, predict_scores
    from spaces import get_space

    start = time.perf_counter()
    ds = load_data(data, DataOptions())
    tensors = to_device(ds, torch.device("cpu"))
    space = get_space("cnn")
    cfg = space.suggest(_optuna.trial.FixedTrial(space.SEED000))
    torch.manual_seed(seed)
    model = create_model(cfg.model, cfg.arch, ds.num_outputs, ds.in_shape)
    epochs = []

    class Enough(Exception):
        pass

    def stop_in_time(result) -> None:
        epochs.append(time.perf_counter())
        per_epoch = (epochs[-1] - start) / len(epochs)
        if epochs[-1] - start + per_epoch > seconds:
            raise Enough

    try:  # exp_decay does not depend on the epoch count, so stopping early trains exactly as planned
        fit(model, tensors, cfg.train, epochs=10_000, seed=seed, on_epoch=stop_in_time)
    except Enough:
        pass
    probs = predict_scores(model, torch.from_numpy(ds.test_x), tensors.mean, tensors.std, ds.task)
    names = [ds.class_names[i] for i in probs.argmax(1).tolist()]
    with answers.open() as f:
        truth = [row["Class"] for row in csv.DictReader(f)]
    accuracy = sum(a == b for a, b in zip(names, truth, strict=True)) / len(truth)
    return {"seconds": time.perf_counter() - start, "accuracy": accuracy, "epochs": len(epochs)}


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
    p.add_argument("--user-question", type=float, metavar="SEC", help="also ask the user's question in SEC s")
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
            for data in args.data:
                answers = Path(data).parent / f"{Path(data).name}-answers.csv"
                if args.user_question and data != "synth" and answers.is_file():
                    engine = engine_answer(Path(data), answers, args.user_question, seed, storage, Path(tmp))
                    plain = plain_answer(Path(data), answers, engine["seconds"], seed)
                    keep({"data": Path(data).name, "arm": f"user question {args.user_question:.0f}s",
                          "seed": seed, "engine held-out accuracy": engine["accuracy"],
                          "engine seconds": engine["seconds"], "plain seed 000 held-out accuracy": plain["accuracy"],
                          "plain epochs": plain["epochs"],
                          "engine minus plain, points": 100 * (engine["accuracy"] - plain["accuracy"])})
    keys = ["gain points", "near chance share", "near chance, prior draws", "near chance, sampler draws",
            "sampler draws", "seconds to beat seed", "share of budget to beat seed",
            "trials trained", "rejected untrained", "first-verdict rank correlation", "best", "seed design", "wall",
            "engine held-out accuracy", "plain seed 000 held-out accuracy", "engine minus plain, points",
            "plain epochs", "engine seconds"]
    print(summary(rows, keys))


def _preset_timeout() -> float | None:
    from search.config import load_preset

    return load_preset("cnn", "cpu").timeout


def _first_verdict_epoch() -> int:
    """The first epoch the preset's pruner may stop a trial at (epochs are steps 1, 2, ...)."""
    from search.config import load_preset

    return max(1, int(load_preset("cnn", "cpu").pruner.get("n_warmup_steps", 1)))


if __name__ == "__main__":
    main()
