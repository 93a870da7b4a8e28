"""The user's question: "I have T seconds on this machine: give me the best model." One arm a process.

    python bench/user_question.py ARM --data DIR --seconds T [--seed S] [--out FILE]

ARM is one of:
- ``engine``: the whole job as a user types it, `python -m search run cnn --data DIR --time T`
  (search, the winner's final run, the submission), scored on the test answers;
- ``seed``: seed 000's CNN trained plainly, as its report did (Adam 1e-3, batch 32, no augmentation,
  an exponential decay that does not depend on the run's length): epochs until the next one would
  overrun T, the epoch with the best validation accuracy kept (a user watching the curve);
- ``recommended``: the cnn space's recommended design trained plainly once for T: a few timed steps
  plan its epochs (as the engine's own probe does), then one run whose one-cycle schedule follows the
  clock to T (as the engine's final run does: a plan from a probe left up to a fifth of T unused),
  scored every epoch as a user watching it would, the last epoch kept;
- ``recommended-tv``: the same, trained on the training and validation images together (as the
  engine's final run is by default): nothing left to watch, so only the last epoch is scored. Beside
  the engine it says how much of the engine's margin is the larger training set.
Every arm counts its time from its process's start (reading the data included) and scores the
test images against DIR-answers.csv. Pin arms to cores to run two at once on equal terms:
`taskset -c 0 python bench/user_question.py ...`; bench/search_quality.py --user-question does.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import re
import shlex
import subprocess
import sys
import time
from pathlib import Path

START = time.perf_counter()
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


SCORING_SECONDS = 8.0  # kept from a plain arm's T for its last validation pass and the test images


class _Enough(Exception):
    """The next epoch would overrun the arm's time."""


def answers_of(data: Path) -> Path:
    return data.parent / f"{data.name}-answers.csv"


def score(labels: list[str], data: Path) -> float:
    with answers_of(data).open() as f:
        truth = [row["Class"] for row in csv.DictReader(f)]
    return sum(a == b for a, b in zip(labels, truth, strict=True)) / len(truth)


def engine(data: Path, seconds: float, seed: int, storage: str, flags: list[str] = ()) -> dict:
    name = f"question-{data.name}-{seed}-{int(time.time())}"
    done = subprocess.run([sys.executable, "-m", "search", "--debug", "run", "cnn", "--data", str(data),
                           "--time", f"{seconds:g}", "--seed", str(seed), "--study", name, "--storage", storage,
                           "--no-progress", *flags], capture_output=True, text=True, cwd=ROOT)
    ended = time.perf_counter() - START  # the user's wait: reading the answers and the study below is the bench's
    log = ROOT / "runs" / f"{name}.log"  # what the job said, phase by phase, for a reader of the figures
    log.parent.mkdir(exist_ok=True)
    log.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"the engine's job failed:\n{(done.stdout + done.stderr)[-3000:]}")
    wrote = re.search(r"wrote (\S+\.csv)", done.stdout)
    with open(wrote.group(1)) as f:
        labels = [row["Class"] for row in csv.DictReader(f)]
    import optuna

    from search.trial.budget import takes_budget

    study = optuna.load_study(study_name=name, storage=storage)
    model = json.loads((Path(study.user_attrs["model_dir"]) / "model.json").read_text())
    why = re.search(r"^(no trial of the study so far.*|every design so far.*|the search's share.*|"
                      r"no new best.*|the design a draw must beat.*|timeout of .*)$", done.stderr, re.M)
    chosen = next(t for t in study.trials if t.number == model["trial"])
    # the job's own clock, phase by phase: which phase ran long when the bench's clock says T was not kept
    phases = re.search(r"^the whole job took .*\((.*)\)$", done.stdout, re.M)
    return {"accuracy": score(labels, data), "final trial": model["trial"], "final design":
            chosen.user_attrs.get("design", "found"), "its trial's value": chosen.value,
            "epochs in all": model["epochs"], "continued after": model.get("continued_after_epochs"),
            "trials trained": sum(takes_budget(t) for t in study.trials), "search ended": why and why.group(1),
            "study": name, "job's phases": phases and phases.group(1), "seconds": round(ended, 1)}


def plain(data: Path, design: str, seconds: float, seed: int) -> dict:
    import optuna
    import torch

    from search.data.options import DataOptions
    from search.trial.device import resolve_device, setup
    from search.trial.inputs import load_data, seeded_model, to_device
    from search.trial.time_budget import predict_seconds
    from search.trial.train import fit, predict_scores
    from spaces import get_space, recommended_design
    from spaces.priors import Budget

    device = resolve_device("auto")  # the engine's own device: the arms differ only in what they train
    setup(device)
    ds = load_data(data, DataOptions())
    on_val_too = design == "recommended-tv"
    tensors = to_device(ds, device, train_on="train+val" if on_val_too else "train")
    space = get_space("cnn")

    def config(epochs: int):
        params = space.SEED000 if design == "seed" else recommended_design(space, Budget(epochs, device.type))
        return space.suggest(optuna.trial.FixedTrial(params))

    epochs, best, kept = 10_000, {"accuracy": -1.0}, {}
    if design != "seed":  # its schedule needs the run's length: a few timed steps say it
        cfg = config(30)

        def probe(per_image: float) -> None:
            per_epoch = predict_seconds(per_image, len(tensors.train_x), 0 if on_val_too else len(ds.val_x), 1,
                                        cfg.train.tta)
            kept["epochs"] = max(1, math.floor(0.95 * (seconds - (time.perf_counter() - START)) / per_epoch))
            raise _Enough

        try:
            fit(seeded_model(cfg, seed, ds.num_outputs, ds.in_shape), tensors, cfg.train, epochs=1, seed=seed,
                on_probe=probe)
        except _Enough:
            epochs = kept["epochs"]
    cfg = config(epochs)
    model = seeded_model(cfg, seed, ds.num_outputs, ds.in_shape)
    ends: list[float] = []

    def watch(result) -> None:
        ends.append(time.perf_counter() - START)
        if design == "seed" and result.accuracy > best["accuracy"]:
            best.update(accuracy=result.accuracy, epoch=result.epoch,
                        state={k: v.clone() for k, v in model.state_dict().items()})
        pace = (ends[-1] - began) / len(ends)
        if design == "seed" and ends[-1] + pace > seconds:
            raise _Enough

    began = time.perf_counter() - START
    ends_at = seconds - SCORING_SECONDS

    def clock() -> float:  # the share of the run's time spent: the recommended design's schedule follows it
        return (time.perf_counter() - START - began) / max(1e-6, ends_at - began)

    try:
        fit(model, tensors, cfg.train, epochs=epochs, seed=seed, on_epoch=watch,
            clock=clock if design != "seed" else None, evaluate_every=None if on_val_too else 1)
    except _Enough:
        pass
    if "state" in best:
        model.load_state_dict(best["state"])
    test_x = torch.from_numpy(ds.test_x).to(device)
    probs = predict_scores(model, test_x, tensors.mean, tensors.std, ds.task, tta=cfg.train.tta)
    labels = [ds.class_names[i] for i in probs.argmax(1).tolist()]
    return {"accuracy": score(labels, data), "epochs trained": len(ends),
            "epochs planned": None if epochs == 10_000 else epochs, "kept epoch": best.get("epoch", len(ends))}


ARMS = ("engine", "seed", "recommended")
OTHER_ARMS = ("recommended-tv",)  # run on request only: not one of the two fixed designs


def ask(datasets: list[Path], seeds: list[int], seconds: float, slots: int = 1, out: Path | None = None,
        arms: tuple[str, ...] = ARMS, engine_flags: list[str] = ()) -> list[dict]:
    """Each of ``arms`` on every benchmark and seed, ``slots`` processes at once (2: each pinned to its
    own core with one thread, so two arms run on equal terms side by side); rows as `main` prints them,
    plus one row a benchmark and seed with the engine's margins over the fixed designs (where all three
    ran). ``engine_flags``: more `run` flags for the engine's arm (its row names them)."""
    import os
    import tempfile

    jobs = [(data.resolve(), seed, arm) for seed in seeds for data in datasets for arm in arms]
    rows: list[dict] = []
    running: dict[int, tuple[subprocess.Popen, tuple]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        while jobs or running:
            for core in range(slots):
                if core in running or not jobs:
                    continue
                data, seed, arm = job = jobs.pop(0)
                pin = ["taskset", "-c", str(core)] if slots > 1 else []
                env = {**os.environ, **({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"} if slots > 1 else {})}
                cmd = [*pin, sys.executable, __file__, arm, "--data", str(data), "--seconds", f"{seconds:g}",
                       "--seed", str(seed), "--storage", f"sqlite:///{Path(tmp) / f'slot{core}.db'}",
                       *([f"--engine-flags={shlex.join(engine_flags)}"] if arm == "engine" and engine_flags else [])]
                running[core] = (subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                                                  env=env, cwd=ROOT), job)
            time.sleep(1)
            for core, (proc, job) in list(running.items()):
                if proc.poll() is None:
                    continue
                del running[core]
                text = proc.stdout.read().strip().splitlines()
                row = json.loads(text[-1]) if proc.returncode == 0 and text else {
                    "data": job[0].name, "seed": job[1], "arm": job[2], "failed": proc.returncode}
                row["arm"] = f"{row['arm']} in {seconds:g}s" + (" (1 core)" if slots > 1 else "")
                rows.append(row)
                print(json.dumps(row), file=sys.stderr, flush=True)
                if out:
                    with out.open("a") as f:
                        f.write(json.dumps(row) + "\n")
    return rows + margins(rows)


def margins(rows: list[dict]) -> list[dict]:
    """Per benchmark and seed: the engine minus the better fixed design, and minus each, in points."""
    by: dict[tuple, dict[str, float]] = {}
    for r in rows:
        if "accuracy" in r:
            by.setdefault((r["data"], r["seed"]), {})[r["arm"].split()[0]] = r["accuracy"]
    out = []
    for (data, seed), acc in by.items():
        if set(ARMS) <= set(acc):
            fixed = max(acc["seed"], acc["recommended"])
            out.append({"data": data, "seed": seed, "arm": "engine margin",
                        "engine minus better fixed, points": 100 * (acc["engine"] - fixed),
                        "engine minus seed, points": 100 * (acc["engine"] - acc["seed"]),
                        "engine minus recommended, points": 100 * (acc["engine"] - acc["recommended"])})
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("arm", choices=ARMS + OTHER_ARMS)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--seconds", type=float, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--storage", default=f"sqlite:///{ROOT / 'studies' / 'question.db'}")
    p.add_argument("--out", type=Path, help="append the result as one JSON line here")
    p.add_argument("--engine-flags", type=shlex.split, default=[], help="more `run` flags for the engine arm")
    args = p.parse_args()
    data = args.data.resolve()
    if args.arm == "engine":
        result = engine(data, args.seconds, args.seed, args.storage, args.engine_flags)
        if args.engine_flags:
            result["flags"] = shlex.join(args.engine_flags)
    else:
        result = plain(data, args.arm, args.seconds, args.seed)
    # An arm's seconds: until its model's test predictions exist (the engine's: until its job's process ended)
    row = {"data": data.name, "arm": args.arm, "seed": args.seed, "seconds": round(time.perf_counter() - START, 1),
           "limit": args.seconds, "test accuracy": result["accuracy"], **result}
    print(json.dumps(row), flush=True)
    if args.out:
        with args.out.open("a") as f:
            f.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
