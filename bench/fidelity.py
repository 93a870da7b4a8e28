"""Which cheap verdict ranks designs the way a long final run does: rank correlations per benchmark.

    python bench/fidelity.py run --data DIR [--draws 3] [--short 6] [--long 16] [--seed 0]
                                 [--threads 1] --out ROWS.jsonl
    python bench/fidelity.py table ROWS.jsonl [MORE.jsonl ...]

A study judges a design after a few epochs and hands the winner a long final run. Whether that
verdict can be trusted shows only by giving every design the long run too. ``run`` trains each of a
benchmark's designs (seed 000's CNN, the cnn space's recommended design, and ``--draws`` start-up
draws from the space's priors, as a quick study's first trials take them) twice, by the engine's own
loop (search.trial.train.fit):
- a *short* run of ``--short`` epochs whose schedule ends there: a trial as the quick study runs it;
- a *long* run of ``--long`` epochs, the final run's length: its last epoch is the truth every
  verdict is scored against.
``table`` then scores each verdict (fidelity) against the long runs' last epoch:
- ``trial at epoch 3`` and ``trial at epoch S``: the short run (the median pruner's first verdict, and
  the study's value);
- ``rung at epoch r``: the long run's own epoch r, which is what a Hyperband or ASHA rung sees when its
  top rung is the final run (the schedule spans the long run, and a promoted design continues the
  same run rather than restarting);
- ``extrapolated from epoch S``: a saturating power law fitted to the long run's first S epochs and read
  at the last epoch (learning-curve extrapolation);
- ``the 2 best trials, promoted``: the better final of the two designs the short runs rank first,
  what promoting the few best to long runs before choosing would give.
For each: Spearman's rank correlation with the long runs' final values (over the designs), and the
regret: the best final value minus the final value of the design that verdict would choose.
One JSON row an epoch of each run, appended as it comes (a run cut short keeps its epochs).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
import warnings
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def designs(draws: int, short: int, seed: int) -> dict[str, dict]:
    """The designs a quick study of ``short``-epoch trials starts from: its two queued designs, then
    ``draws`` start-up draws from the priors (search.workers.prior_sampler, the study's own sampler)."""
    import optuna

    from search.workers.prior_sampler import PriorSampler
    from spaces import cnn, recommended_design
    from spaces.priors import Budget

    budget = Budget(short, "cpu")
    out = {"seed": dict(cnn.SEED000), "recommended": recommended_design(cnn, budget)}
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = PriorSampler(optuna.samplers.RandomSampler(seed=seed), cnn.priors(budget), n_startup=10**6, seed=seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for i in range(draws):
        trial = study.ask()
        cnn.suggest(trial)
        out[f"draw{i + 1}"] = dict(trial.params)
        study.tell(trial, 0.0)
    return out


def train(data, params: dict, epochs: int, seed: int, emit) -> None:
    import optuna
    import torch

    from search.trial.inputs import seeded_model, to_device
    from search.trial.train import fit
    from spaces import cnn

    cfg = cnn.suggest(optuna.trial.FixedTrial(params))
    model = seeded_model(cfg, seed, data.num_outputs, data.in_shape)
    start = time.perf_counter()
    fit(model, to_device(data, torch.device("cpu")), cfg.train, epochs=epochs, seed=seed,
        on_epoch=lambda r: emit(r.epoch, r.accuracy, time.perf_counter() - start))


def run(args: argparse.Namespace) -> None:
    import torch

    from search.data.options import DataOptions
    from search.trial.inputs import load_data

    torch.set_num_threads(args.threads)
    data = load_data(args.data, DataOptions(), quiet=True)
    for name, params in designs(args.draws, args.short, args.seed).items():
        for kind, epochs in (("short", args.short), ("long", args.long)):
            def emit(epoch: int, accuracy: float, seconds: float, name=name, kind=kind, epochs=epochs,
                     params=params) -> None:
                row = {"data": args.data.name, "seed": args.seed, "design": name, "run": kind, "epochs": epochs,
                       "epoch": epoch, "accuracy": round(accuracy, 4), "chance": round(1 / data.num_classes, 4),
                       "seconds": round(seconds, 1)}
                if epoch == 1:
                    row["params"] = params
                print(json.dumps({k: v for k, v in row.items() if k != "params"}), flush=True)
                with args.out.open("a") as f:
                    f.write(json.dumps(row) + "\n")
            train(data, params, epochs, args.seed, emit)


def extrapolate(curve: list[float], at: int) -> float:
    """A saturating power law, a - b * epoch^-c, fitted to ``curve`` (epochs 1..n) and read at ``at``;
    a straight line in log(epoch) where the fit fails. Clipped to [0, 1]."""
    import numpy as np
    from scipy.optimize import OptimizeWarning, curve_fit

    x = np.arange(1, len(curve) + 1, dtype=float)
    y = np.asarray(curve, dtype=float)
    try:
        with warnings.catch_warnings():  # a flat curve near chance leaves the fit's covariance undefined
            warnings.simplefilter("ignore", OptimizeWarning)
            (a, b, c), _ = curve_fit(lambda e, a, b, c: a - b * e ** -c, x, y, p0=(y[-1], y[-1] - y[0], 0.5),
                                     bounds=([0, -1, 0.01], [1, 2, 3]), maxfev=5000)
        guess = a - b * at ** -c
    except (RuntimeError, ValueError):
        slope, icpt = np.polyfit(np.log(x), y, 1)
        guess = icpt + slope * math.log(at)
    return float(min(1.0, max(0.0, guess)))


def verdicts(curves: dict[tuple[str, str], list[float]], short: int, long: int) -> dict[str, dict[str, float]]:
    """Each fidelity's value per design, from the designs' (design, run) -> accuracy per epoch."""
    names = sorted({d for d, _ in curves if (d, "short") in curves and (d, "long") in curves
                    and len(curves[d, "short"]) >= short and len(curves[d, "long"]) >= long})
    out = {"trial at epoch 3": {d: curves[d, "short"][2] for d in names},
           f"trial at epoch {short}": {d: curves[d, "short"][short - 1] for d in names}}
    for r in sorted({2, short, long // 2}):
        out[f"rung at epoch {r} of the long run"] = {d: curves[d, "long"][r - 1] for d in names}
    out[f"extrapolated from epoch {short}"] = {d: extrapolate(curves[d, "long"][:short], long) for d in names}
    return out


def table(files: list[Path]) -> None:
    from scipy.stats import spearmanr

    runs: dict[tuple, dict[tuple[str, str], list[float]]] = defaultdict(dict)
    shape: dict[tuple, tuple[int, int]] = {}
    for path in files:
        for n, line in enumerate(path.read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
                key, run, epoch, accuracy, epochs = ((r["data"], r["seed"]), (r["design"], r["run"]), r["epoch"],
                                                     float(r["accuracy"]), r["epochs"])
            except (json.JSONDecodeError, KeyError, TypeError, ValueError) as e:
                raise SystemExit(f"{path}:{n}: not a row of `bench/fidelity.py run` ({e!r})") from None
            curve = runs[key].setdefault(run, [])
            if epoch == 1:
                curve.clear()  # a rerun replaces the run before it
            curve.append(accuracy)
            s, lg = shape.get(key, (0, 0))
            shape[key] = (epochs, lg) if run[1] == "short" else (s, epochs)
    print("| benchmark | seed | designs | fidelity | Spearman with the final | regret (points) |")
    print("|---|---|---|---|---|---|")
    for key, curves in sorted(runs.items()):
        short, long = shape[key]
        scored = verdicts(curves, short, long)
        names = sorted(scored["trial at epoch 3"])
        if len(names) < 3:
            continue
        final = {d: curves[d, "long"][long - 1] for d in names}
        best = max(final.values())
        finals = ", ".join(f"{d} {100 * final[d]:.1f}" for d in sorted(names, key=final.get, reverse=True))
        print(f"| {key[0]} | {key[1]} | {len(names)} | final at epoch {long} | {finals} | |")
        for fidelity, value in scored.items():
            a, b = [value[d] for d in names], [final[d] for d in names]
            rho = "n/a (ties)" if len(set(a)) < 2 or len(set(b)) < 2 else f"{spearmanr(a, b).statistic:+.2f}"
            pick = max(names, key=value.get)
            print(f"| | | | {fidelity} | {rho} | {100 * (best - final[pick]):.1f} ({pick}) |")
        trial = scored[f"trial at epoch {short}"]
        two = sorted(names, key=trial.get, reverse=True)[:2]
        kept = max(two, key=final.get)
        print(f"| | | | the 2 best trials at epoch {short}, promoted | | {100 * (best - final[kept]):.1f} "
              f"({' and '.join(two)}) |")


def main_args(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="train every design short and long, one JSON row an epoch")
    r.add_argument("--data", type=Path, required=True)
    r.add_argument("--draws", type=int, default=3)
    r.add_argument("--short", type=int, default=6)
    r.add_argument("--long", type=int, default=16)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--threads", type=int, default=1)
    r.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("table", help="rank correlations and regrets from the rows")
    t.add_argument("rows", type=Path, nargs="+")
    args = p.parse_args(argv)
    if args.command == "run":
        if args.short < 3:  # the first verdict scored is epoch 3, the median pruner's
            p.error(f"--short {args.short}: must be at least 3")
        if args.long < args.short:
            p.error(f"--long {args.long}: must be at least --short ({args.short})")
        if not args.data.is_dir():
            p.error(f"--data {args.data}: no such folder")
    elif missing := [str(f) for f in args.rows if not f.is_file()]:
        p.error(f"no such rows file: {', '.join(missing)}")
    run(args) if args.command == "run" else table(args.rows)


if __name__ == "__main__":
    main_args()
