"""The GPU check: the study, the epoch and trials per GPU, prepared so that a short GPU session
spends its minutes on measuring. Parts, in order of priority:

  study        `python -m search run cnn --timeout 420` as a user types it, then `retrain`; read back
               from the study's storage (as bench/search_quality.py reads it): trials trained, best minus
               the seed design in points, seconds until a trial first beat the seed design, the
               rank correlation at the preset's first pruning verdict, the retrained best's
               validation accuracy
  epoch        seed 000's CNN, eager and compiled, at each --batch: seconds an epoch against the
               textbook pipeline (bench/epoch_speed.py) and against bench/floor.py's memory floor at
               the bandwidth a big device-to-device copy measures on this card
  concurrency  trials per hour with 1, 4, 8 and 2 trials sharing the GPU (bench/concurrency.py)

Each part runs in its own process group under its own time limit (--study-limit, ...), writes its
table to OUT/PART.md after every figure and is printed when it ends, so a part cut short (or one
that fails) still returns what it finished, and the next part still runs.

On the GPU machine, from the repository root, in two runs. `.whl/` holds the Python 3.12 x86-64
wheels that machine lacks (optuna, alembic, Mako, sqlalchemy, greenlet, colorlog, optuna-dashboard,
bottle, plotly: `pip download --no-deps --only-binary=:all: --python-version 3.12 ...`) and travels
with the run (carry: .whl). The project is imported from this checkout, nothing installed in
editable mode: the script puts the repository root on every child process's PYTHONPATH.

  run 1, the study (about 8 minutes: 7 of search, then the retrain; timeout_s 600):
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site \
      .whl/*.whl && export PYTHONPATH=/tmp/site && python3 bench/gpu_check.py study --out $OUT
  run 2, the epoch then trials per GPU (at most 6 minutes; timeout_s 400):
    (the same install and export) && python3 bench/gpu_check.py epoch concurrency --out $OUT

Run 1 leaves OUT/study.md, the study's journal file OUT/study.log and both commands' output in
OUT/study-output.log; run 2 leaves OUT/epoch.md and OUT/concurrency.md.
On a CPU every size is a flag; tests/test_bench.py runs all three parts on tiny data.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import concurrency  # noqa: E402
import epoch_speed  # noqa: E402
import search_quality  # noqa: E402
from floor import memory_floor_s, seed_cnn  # noqa: E402
from harness import ROOT, Row, run_study, table  # noqa: E402

PARTS = ("study", "epoch", "concurrency")
STUDY = "gpu-check-cnn"
# The quick benchmark that bench/RESULTS.md's first trials-per-GPU figures (1.82x at 4) came from:
# trials on it are short, so a few minutes hold every setting.
QUICK_SYNTH = {"classes": 20, "size": 48, "train": 3000, "val": 600, "test": 1000, "seed": 0}

Save = Callable[[list[Row]], None]


def study_part(args, out: Path, save: Save) -> None:
    storage = f"journal://{(out / 'study.log').resolve()}"
    (out / "study.log").unlink(missing_ok=True)  # the same name would continue an old study, not time a new one
    flags = [*(["--data", str(args.data)] if args.data else []), "--timeout", str(args.study_timeout),
             *args.study_flags]
    setting = f"run cnn --timeout {args.study_timeout:g} {shlex.join(args.study_flags)}".strip()
    log = out / "study-output.log"
    r = run_study("cnn", storage, STUDY, *flags, log=log, preset_timeout=True)
    # read as bench/search_quality.py reads every study: one definition of the gain and the time to beat
    verdict = first_verdict_epoch(args.study_flags)
    f = search_quality.study_figures(r.study, args.study_timeout, verdict_epoch=verdict)
    rows = [Row("study", setting, "wall s, launch to exit", [r.wall], "{:.0f}"),
            Row("study", setting, "trials trained (the budget)", [f["trials trained"]], "{:.0f}"),
            Row("study", setting, "rejected untrained", [f["rejected untrained"]], "{:.0f}"),
            Row("study", setting, "pruned while training", [r.stopped], "{:.0f}"),
            Row("study", setting, "epochs trained", [r.epochs], "{:.0f}"),
            Row("study", setting, "seed 000 design's value", [f["seed design"]], "{:.4f}"),
            Row("study", setting, "best value", [f["best"]], "{:.4f}"),
            Row("study", setting, "best minus seed design, points", [f["gain points"]], "{:+.1f}"),
            # from the first trial's start; nan: no trial beat it
            Row("study", setting, "s until a trial first beat the seed design", [f["seconds to beat seed"]], "{:.0f}"),
            Row("study", setting, "share of trained trials near chance", [f["near chance share"]], "{:.2f}"),
            # the pruner's premise: nan under 4 completed trials
            Row("study", setting, f"first-verdict rank correlation (epoch {verdict})",
                [f["first-verdict rank correlation"]], "{:.2f}")]
    save(rows)
    with tempfile.TemporaryDirectory() as tmp:  # the weights stay behind: the table holds their score
        start = time.perf_counter()
        cmd = [sys.executable, "-m", "search", "retrain", "--study", STUDY, "--storage", storage,
               "--out", str(Path(tmp) / "model")]
        done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
        wall = time.perf_counter() - start
        with log.open("a") as f:
            f.write(done.stdout + done.stderr)
        if done.returncode != 0:
            raise RuntimeError(f"{shlex.join(cmd)} failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
        from search.workers.storage import load_study

        model_dir = Path(load_study(STUDY, storage).user_attrs["model_dir"])  # where retrain recorded it
        meta = json.loads((model_dir / "model.json").read_text())
    rows += [Row("study", "retrain the best", "wall s", [wall], "{:.0f}"),
             Row("study", "retrain the best", "trial retrained", [meta["trial"]], "{:.0f}"),
             Row("study", "retrain the best", "epochs", [meta["epochs"]], "{:.0f}"),
             Row("study", "retrain the best", "validation accuracy", [meta["metrics"]["accuracy"]], "{:.4f}")]
    save(rows)


def epoch_part(args, out: Path, save: Save) -> None:
    from search.data import load_dataset
    from search.trial.device import resolve_device, setup

    device = resolve_device(args.device)
    setup(device)
    bandwidth = epoch_speed.copy_bandwidth(device, args.copy_mib) / 1e12
    root = epoch_speed.benchmark_root(args.data, device)
    ds = load_dataset(root)
    images = min(args.limit or len(ds.train_y), len(ds.train_y))
    floor = memory_floor_s(seed_cnn(ds.in_shape, ds.num_classes), ds.in_shape, images, bandwidth)
    shape = "x".join(map(str, ds.in_shape[1:]))
    rows = [Row("epoch", f"{args.copy_mib} MiB copy", "bandwidth TB/s, read + written", [bandwidth], "{:.3g}"),
            Row("epoch", f"seed CNN, {images} images of {shape}", "memory floor s/epoch at that bandwidth", [floor],
                "{:.3g}")]
    save(rows)
    for batch in args.batch:  # one batch size at a time, so a part cut short keeps the batches it finished
        for row in epoch_speed.measure(root, [batch], args.epochs, args.epoch_repeats, args.workers, args.compile,
                                       args.limit, args.device):
            rows.append(row)
            if row.measure == "s/epoch":
                rows.append(Row("epoch", row.setting, "x memory floor", [v / floor for v in row.values], "{:.3g}x"))
        save(rows)


def concurrency_part(args, out: Path, save: Save) -> None:
    data = args.conc_data
    if data is None:
        from search.data.synth import generate
        from search.places import synth_dir

        data = synth_dir(QUICK_SYNTH)
        if not (data / "train.csv").exists():
            generate(data, **QUICK_SYNTH)
    rows: list[Row] = []
    base = None
    with tempfile.TemporaryDirectory() as tmp:
        for m in args.per_gpu:
            r = concurrency.one_setting(data, args.conc_trials, args.conc_epochs, m, 0, args.conc_flags, Path(tmp))
            rate = r.trained / r.wall * 3600  # trials that trained: rejected draws cost a second, no epoch
            base = rate if m == 1 else base
            setting = f"{args.conc_trials} trials of {args.conc_epochs} epochs, {m} per GPU"
            rows += [Row("concurrency", setting, "wall s", [r.wall], "{:.0f}"),
                     Row("concurrency", setting, "trials/hour", [rate], "{:.0f}")]
            if base:
                rows.append(Row("concurrency", setting, "speed-up over 1 per GPU", [rate / base], "{:.2f}x"))
            save(rows)


def first_verdict_epoch(study_flags: list[str]) -> int:
    """The first epoch the study's pruner may stop a trial at, from the preset `run cnn` takes with
    these flags: a number written here goes stale when the preset changes, or differs between its
    variants (the quick one judges later)."""
    from search.config import load_preset
    from search.trial.device import resolve_device

    p = argparse.ArgumentParser(add_help=False)
    for flag in ("--preset", "--for", "--device", "--pruner"):
        p.add_argument(flag)
    given, _ = p.parse_known_args(study_flags)
    # the engine's rule (search/cli): --for, else the device the trials run on
    variant = given.__dict__["for"] or ("cpu" if resolve_device(given.device or "auto").type == "cpu" else "gpu")
    pruner = load_preset(given.preset or "cnn", variant).pruner
    if given.pruner and given.pruner != pruner.get("name"):
        pruner = {"name": given.pruner}  # as in `run`: another pruner starts from its own defaults
    # Epochs are steps 1, 2, ...; Optuna first judges at n_warmup_steps (median, percentile) or at
    # min_resource (hyperband, asha). Their defaults ("auto", 0) may judge after the first epoch.
    first = pruner.get("n_warmup_steps", pruner.get("min_resource"))
    return max(1, first) if isinstance(first, int) else 1


RUN = {"study": study_part, "epoch": epoch_part, "concurrency": concurrency_part}


def header(part: str) -> str:
    device = (torch.cuda.get_device_name(0) if torch.cuda.is_available()
              else f"CPU ({platform.machine()}), {os.cpu_count()} cores")
    argv = sys.argv[1:]
    if argv[-2:] == ["--part", part]:  # what supervise() added: the table shows the command as typed
        argv = argv[:-2]
    return (f"{part}: {device}, torch {torch.__version__}, {datetime.date.today()}: "
            f"`python bench/gpu_check.py {shlex.join(argv)}`")


def run_part(part: str, args) -> None:
    """In the part's own process: measures, rewriting OUT/PART.md after every figure."""
    os.environ.setdefault("GIC_ARTIFACTS", tempfile.mkdtemp(prefix="gic-check-artifacts-"))  # out of OUT
    path = args.out / f"{part}.md"
    top = header(part)
    RUN[part](args, args.out, lambda rows: path.write_text(f"{top}\n\n{table(rows)}\n"))


def supervise(part: str, limit: float, args) -> bool:
    """Runs one part in a child process group and stops the whole group (the study's `search run`
    and its workers too) at ``limit`` seconds; prints the part's table. True if it finished."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)}
    print(f"== {part} (at most {limit:.0f} s)", file=sys.stderr, flush=True)
    proc = subprocess.Popen([sys.executable, str(Path(__file__).resolve()), *sys.argv[1:], "--part", part],
                            cwd=ROOT, env=env, start_new_session=True)
    try:
        code = proc.wait(timeout=limit)
        note = "" if code == 0 else f"**The {part} part failed (exit {code}); above is what it finished.**"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGTERM)  # a trial interrupted so is failed and queued again, not lost
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        note = f"**The {part} part was cut short at its {limit:.0f} s limit; above is what it finished.**"
    path = args.out / f"{part}.md"
    text = path.read_text() if path.exists() else f"{header(part)}\n\n(no figure finished)\n"
    if note:
        text += f"\n{note}\n"
        path.write_text(text)
    print(text, flush=True)
    return not note


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("parts", nargs="*", metavar="PART", help=f"{', '.join(PARTS)} (default: all)")
    p.add_argument("--out", type=Path, required=True, help="folder for the tables (and the study's storage)")
    p.add_argument("--data", type=Path, help="study and epoch dataset (default: the preset's synthetic benchmark)")
    p.add_argument("--part", choices=PARTS, help=argparse.SUPPRESS)  # set by supervise() for the child
    s = p.add_argument_group("study")
    s.add_argument("--study-limit", type=float, default=540, help="seconds, search and retrain together")
    s.add_argument("--study-timeout", type=float, default=420, help="run's --timeout, seconds of search")
    s.add_argument("--study-flags", type=shlex.split, default=[], help='more `run` flags, e.g. "--trials-per-gpu 4"')
    e = p.add_argument_group("epoch")
    e.add_argument("--epoch-limit", type=float, default=150, help="seconds")
    e.add_argument("--batch", type=int, nargs="+", default=[256, 1024])
    e.add_argument("--epochs", type=int, default=4, help="epochs a run; the first (warm-up, compiling) is not timed")
    e.add_argument("--epoch-repeats", type=int, default=1, help="runs of each; the table gives their median")
    e.add_argument("--compile", nargs="*", default=["reduce-overhead"], help="torch.compile modes beside eager")
    e.add_argument("--limit", type=int, help="only the first N training images")
    e.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="textbook DataLoader workers")
    e.add_argument("--copy-mib", type=int, default=4096, help="size of the bandwidth copy; several times the L2")
    e.add_argument("--device", default="auto")
    c = p.add_argument_group("concurrency")
    c.add_argument("--concurrency-limit", type=float, default=210, help="seconds")
    # 1 first (every speed-up is over it), 2 last: a part cut short keeps the settings that decide the target
    c.add_argument("--per-gpu", type=int, nargs="+", default=[1, 4, 8, 2])
    c.add_argument("--conc-data", type=Path, help="dataset (default: the quick 20-class 48px benchmark, 3,000 images)")
    c.add_argument("--conc-trials", type=int, default=16)
    c.add_argument("--conc-epochs", type=int, default=3)
    c.add_argument("--conc-flags", type=shlex.split, default=[], help="more `run` flags for every setting")
    return p


def main() -> None:
    p = parser()
    args = p.parse_args()
    unknown = set(args.parts) - set(PARTS)
    if unknown:
        p.error(f"unknown part {sorted(unknown)[0]!r}; known: {', '.join(PARTS)}")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.part:
        run_part(args.part, args)
        return
    done = [supervise(part, getattr(args, f"{part}_limit"), args) for part in args.parts or PARTS]
    sys.exit(0 if all(done) else 1)


if __name__ == "__main__":
    main()
