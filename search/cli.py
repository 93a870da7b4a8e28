"""`python -m search ...`: the command line. Each subcommand is a thin layer over one module."""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

from search.errors import TrialVerdict, UserError

__all__ = ["main"]


def _bounded(name: str, kind: type, ok: Callable[[Any], bool], message: str) -> Callable[[str], Any]:
    """An argparse ``type``: ``kind(text)`` refused with ``message`` (formatted with ``value`` and
    ``text``) unless ``ok(value)``. ``name`` is what argparse calls it when ``kind`` itself refuses."""

    def parse(text: str):
        value = kind(text)
        if not ok(value):
            raise argparse.ArgumentTypeError(message.format(value=value, text=text))
        return value

    parse.__name__ = name
    return parse


_positive_int = _bounded("_positive_int", int, lambda v: v >= 1, "must be at least 1, got {value}")
_count = _bounded("_count", int, lambda v: v >= 0, "must be 0 or more, got {value}")
_fraction = _bounded("_fraction", float, lambda v: 0 <= v < 1, "must be in [0, 1), got {value}")
_seconds = _bounded("_seconds", float, lambda v: v > 0, "must be more than 0 seconds, got {text}")  # NaN too
# the socket's own refusal of a port out of range is an OverflowError with a traceback
_port = _bounded("_port", int, lambda v: 0 <= v <= 65535, "must be a port number from 0 to 65535, got {value}")


def _image_size(text: str) -> tuple[int, int]:
    from search.data.prepare import parse_image_size

    try:
        return parse_image_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", help="study name (default: the study run last, whose latest trial started last; "
                                   "its name goes to stderr)")
    p.add_argument("--storage", help="Optuna storage URL (default: SQLite under studies/)")


def build_parser() -> argparse.ArgumentParser:
    # The choices come from the registries themselves (imported here, not at the top, so that an
    # error in `python -m search` before this point stays quick).
    from search.data.dataset import TASKS
    from search.data.loader import LAYOUTS
    from search.registry import either
    from search.trial.metrics import METRICS
    from search.trial.train import COMPILE_MODES
    from search.workers.samplers import PRUNERS, SAMPLERS
    from spaces import SPACES

    parser = argparse.ArgumentParser(prog="python -m search", description=__doc__)
    parser.add_argument("--debug", action="store_true", help="show tracebacks instead of one-line errors")
    sub = parser.add_subparsers(dest="command", required=True)

    data = sub.add_parser("data", help="dataset tools").add_subparsers(dest="data_command", required=True)
    synth = data.add_parser("synth", help="write the synthetic benchmark in the GIC layout")
    synth.add_argument("--out", type=Path, required=True, help="folder to create (must not exist)")
    synth.add_argument("--classes", type=_positive_int, default=100, help="number of classes")
    synth.add_argument("--size", type=_positive_int, default=64, help="image side in pixels")
    synth.add_argument("--train", type=_positive_int, default=13000, help="training images")
    synth.add_argument("--val", type=_positive_int, default=2000, help="validation images")
    synth.add_argument("--test", type=_positive_int, default=5000, help="test images")
    synth.add_argument("--seed", type=int, default=0, help="random seed (same seed, same files)")

    run = sub.add_parser("run", help="search a space on a dataset (continues the study if it exists)")
    run.add_argument("space", help=f"search space: {either(SPACES)}")
    run.add_argument("--data", type=Path, help="dataset folder (default: the embedded synthetic benchmark)")
    _study_args(run)
    run.add_argument("--preset", help="study preset in studies/ (default: the space's name)")
    run.add_argument("--for", dest="variant", choices=["cpu", "gpu"],
                     help="the preset's variant: cpu (its quick [cpu] study) or gpu (the full one); default: "
                          "this machine's device, or gpu with --workers 0 (the workers run elsewhere)")
    run.add_argument("--trials", type=_positive_int,
                     help="finished trials the study should have in all (trials rejected untrained take none)")
    run.add_argument("--timeout", type=_seconds, help="stop starting trials after this many seconds")
    run.add_argument("--epochs", type=_positive_int, help="epochs per trial (the most a trial may train)")
    run.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    run.add_argument("--seed", type=int, help="study seed: the sampler's and, with trial numbers, each trial's")
    run.add_argument("--metric", choices=["auto", *METRICS],
                     help="validation metric to maximise (auto: accuracy, or micro_f1 for multilabel); "
                          "multiclass: accuracy, macro_f1; binary: accuracy, roc_auc; "
                          "multilabel: micro_f1, macro_f1, samples_f1")
    run.add_argument("--task", choices=["auto", *TASKS],
                     help="auto (default): multilabel for the Helsinki layout, binary for 2 classes, else multiclass")
    run.add_argument("--layout", choices=["auto", *LAYOUTS],
                     help="dataset layout (default: detected from the files)")
    run.add_argument("--image-size", type=_image_size, metavar="N|WxH",
                     help="resize every image to N x N or W x H pixels, stretching (no crop) when the aspect "
                          "ratio differs (default: the data's own size, which must then be uniform)")
    run.add_argument("--val-fraction", type=_fraction,
                     help="share of train split off (stratified, seeded) as validation when the data has "
                          "no validation split (default 0.1)")
    run.add_argument("--test-fraction", type=_fraction,
                     help="share of train kept as a labelled held-out test part, scored only by retrain "
                          "(default 0; seed 004's 90/5/5 is --val-fraction 0.05 --test-fraction 0.05)")
    run.add_argument("--no-progress", action="store_true", help="no progress bar (the per-trial lines stay)")
    run.add_argument("--workers", type=_count,
                     help="local worker processes sharing the study (default 1; with --gpus: GPUs x --trials-per-gpu; "
                          "0: only create the study, for `worker` processes elsewhere)")
    run.add_argument("--gpus", help="GPU numbers for the workers, e.g. 0,1,2,3 (each worker sees one)")
    run.add_argument("--trials-per-gpu", type=_positive_int, help="workers (trials at once) per GPU (default 1)")
    _heartbeat_arg(run)
    run.add_argument("--sampler", help=f"{either(SAMPLERS)} (default: the preset's; "
                     "its [sampler] settings apply only to the sampler it names)")
    run.add_argument("--pruner", help=f"{either(PRUNERS)} "
                     "(default: the preset's)")
    run.add_argument("--objectives", help="multi-objective: a metric then costs, e.g. accuracy,params or "
                     "accuracy,latency (latency: inference images/s)")
    run.add_argument("--compile", choices=["off", *COMPILE_MODES],
                     help="torch.compile each trial's network (reduce-overhead: with CUDA graphs); costs seconds "
                          "a trial, repaid only by long trials (bench/RESULTS.md); default: the preset's, else off")
    run.add_argument("--prior", choices=["on", "off"],
                     help="on (default): start-up trials drawn from the space's priors, its recommended design "
                          "queued beside the seed designs; off: uniform start-up draws, for comparison")
    run.add_argument("--from-study", help="warm start: first run the best configurations of this study "
                     "(same storage and space)")
    run.add_argument("--warm-start", type=_positive_int, help="how many configurations --from-study takes "
                     "(default 5)")

    best = sub.add_parser("best", help="print the best trial: value, parameters, attributes")
    _study_args(best)

    retrain = sub.add_parser("retrain", help="train the best (or --trial) configuration and save it")
    _study_args(retrain)
    retrain.add_argument("--trial", type=int, help="trial number (default: the best trial)")
    retrain.add_argument("--train-on", choices=["train", "train+val"], default="train",
                         help="training data (train+val leaves no held-out validation)")
    retrain.add_argument("--out", type=Path,
                         help="model folder (default: runs/STUDY/trial-N, or trial-N-trainval with train+val)")
    retrain.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    retrain.add_argument("--seeds", type=_positive_int, default=1,
                         help="train N times (the trial's seed, then the next) and report mean and spread")
    length = retrain.add_mutually_exclusive_group()
    length.add_argument("--epochs", type=_positive_int, help="epochs (default: the study's epochs a trial)")
    length.add_argument("--time", type=_seconds, metavar="SEC",
                        help="train for as many epochs as fit in SEC seconds, at the pace the trial ran "
                             "(a short search, then a long retrain of its winner)")

    export = sub.add_parser("export", help="write the submission CSV from a retrained model")
    _study_args(export)
    export.add_argument("--model", type=Path, help="model folder (default: the study's last retrain)")
    export.add_argument("--data", type=Path, help="dataset with test.csv (default: the model's own)")
    export.add_argument("--out", type=Path, help="submission file (default: submissions/STUDY.csv)")
    export.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    export.add_argument("--ensemble", type=_positive_int, metavar="K",
                        help="average the probabilities of the top K trials (retrained now if not saved yet)")
    export.add_argument("--train-on", choices=["train", "train+val"], default="train",
                        help="with --ensemble: the data members are retrained on")
    export.add_argument("--tta", action="store_true", help="also average each model over the mirrored image")

    dash = sub.add_parser("dashboard", help="serve optuna-dashboard on the study, with its artifacts")
    _study_args(dash)
    dash.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    dash.add_argument("--port", type=_port, default=8080, help="port (0: any free one)")

    report = sub.add_parser("report", help="write one self-contained HTML report of the study and final model")
    _study_args(report)
    report.add_argument("--out", type=Path, help="HTML file (default: runs/STUDY/report.html)")
    report.add_argument("--model", type=Path, help="model folder (default: the study's last retrain)")
    report.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")

    worker = sub.add_parser("worker", help="join a study from any machine; run trials until its budget is met")
    worker.add_argument("--study", required=True, help="study name")
    worker.add_argument("--storage", required=True, help="the study's storage: postgresql://... or journal://PATH")
    worker.add_argument("--trials", type=_positive_int, help="finished trials for the whole study (default: its own)")
    worker.add_argument("--timeout", type=_seconds, help="stop starting trials after this many seconds")
    worker.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    worker.add_argument("--no-progress", action="store_true", help="no progress bar (the per-trial lines stay)")
    _heartbeat_arg(worker)

    rerun = sub.add_parser("rerun", help="train one trial again and compare its learning curve with the stored one")
    _study_args(rerun)
    rerun.add_argument("--trial", type=int, required=True, help="trial number")
    rerun.add_argument("--device", default="cpu", help="cpu (default: reproduces exactly), cuda, cuda:N or mps")
    return parser


def _heartbeat_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--heartbeat", type=_count, metavar="SECONDS",
                   help="heartbeat interval (default 30; 0: off); a trial silent for 3 intervals is retried")


def cmd_data(args) -> None:
    from search.console import count_progress
    from search.data.synth import answers_path, generate

    if args.out.exists() and not args.out.is_dir():
        raise UserError(f"{args.out}: is a file, not a folder; choose another --out")
    if args.out.exists() and any(args.out.iterdir()):
        raise UserError(f"{args.out}: already exists and is not empty; choose another --out")
    try:
        generate(args.out, classes=args.classes, size=args.size, train=args.train, val=args.val,
                 test=args.test, seed=args.seed, progress=count_progress("generating images"))
    except ValueError as e:
        raise UserError(str(e)) from None
    except OSError as e:  # generate's own refusal has a message; the system's (a parent that is a file,
        # no permission, a full disk) has only its strerror
        raise UserError(str(e) if e.strerror is None else
                        f"{args.out}: cannot write the dataset there ({e.strerror})") from None
    print(f"wrote {args.out} (test answers: {answers_path(args.out)})")


def cmd_run(args) -> None:
    from search.config import load_preset
    from search.workers.run import run_study
    from spaces import get_space

    get_space(args.space)  # an unknown space fails here, with the list, before anything else
    if args.warm_start is not None and args.from_study is None:  # else it would be ignored in silence
        raise UserError("--warm-start K takes the best K configurations of --from-study NAME; name that study")
    variant = args.variant or _variant_here(args)
    cfg = load_preset(args.preset or args.space, variant)
    overrides = {k: getattr(args, k) for k in ("data", "study", "storage", "trials", "timeout", "epochs",
                                                "device", "seed", "metric", "task", "layout", "image_size",
                                                "val_fraction", "test_fraction", "prior")
                 if getattr(args, k) is not None}
    overrides.update({k: v for k, v in (("objectives", args.objectives), ("from_study", args.from_study),
                                        ("warm_start", args.warm_start)) if v is not None})
    if args.metric is not None:  # the user's own choice: one the task lacks is an error, not replaced
        overrides["metric_from_preset"] = False
    for kind in ("sampler", "pruner"):
        name = getattr(args, kind)
        if name is not None and name != getattr(cfg, kind).get("name"):
            # The preset's options belong to the sampler it names; another one starts from its defaults.
            # Pinned parameters are about the space, not the sampler, so they stay.
            fixed = {"fixed": cfg.sampler["fixed"]} if kind == "sampler" and "fixed" in cfg.sampler else {}
            overrides[kind] = {"name": name, **fixed}
    # What the command line names; a continued study keeps its own value of the rest. A preset or
    # variant asked for by name is asked for with all its settings.
    given = set(overrides) | {k for k in ("sampler", "pruner", "compile") if getattr(args, k) is not None}
    if args.preset is not None or args.variant is not None:
        given |= set(cfg.__dataclass_fields__)
    cfg = replace(cfg, space=args.space, **overrides, given=frozenset(given))
    if args.heartbeat is not None:
        cfg = replace(cfg, heartbeat=args.heartbeat or None)
    if args.compile is not None:
        cfg = replace(cfg, compile=None if args.compile == "off" else args.compile)
    if args.workers is None and args.gpus is None and args.trials_per_gpu is None:
        study = run_study(cfg, progress=not args.no_progress)
        _print_best(study)
        return
    _run_workers(args, cfg, variant)


def _variant_here(args) -> str:
    """The preset variant for trials run by this command: that of the device they run on. With
    --workers 0 they run elsewhere and this machine (often a cluster's login node, with no GPU) says
    nothing about theirs; the batch workers of deploy/ have GPUs, so the full study."""
    from search.trial.device import resolve_device

    if args.workers == 0:
        return "gpu"
    return "cpu" if resolve_device(args.device or "auto").type == "cpu" else "gpu"


def _run_workers(args, cfg, variant: str) -> None:
    from search.config import PRESETS, StudyConfig
    from search.console import log
    from search.workers.launch import check_storage, launch_workers, placements
    from search.workers.run import run_study

    places = placements(args.workers, args.gpus, args.trials_per_gpu)
    if not places:  # --workers 0: the study is made ready here and its trials run elsewhere
        if cfg.storage is None:
            raise UserError("--workers 0 leaves the trials to workers elsewhere: give them a shared --storage")
        study = run_study(cfg, progress=False, launch=lambda study: study)
        other, kept = "gpu" if variant == "cpu" else "cpu", StudyConfig.of_study(study)  # a continued study's own
        log(f"recorded the {variant} variant of preset {kept.preset!r}: {kept.epochs} epochs a trial, "
            f"{kept.pruner.get('name')} pruner, {kept.trials} trials (`--for {other}` records the other)")
        print(f"study {study.study_name!r} is ready; start workers with: "
              f"python -m search worker --study {study.study_name} --storage {cfg.storage}")
        return
    if cfg.storage is None and len(places) > 1:  # the default SQLite file takes one writer only
        cfg = replace(cfg, storage=f"journal://{PRESETS / 'search.log'}")
        log(f"{len(places)} workers share the journal file {cfg.storage}: "
            f"pass `--storage {cfg.storage}` to best, retrain, export and the dashboard")
    check_storage(cfg.storage_url(), len(places))
    device = "cpu" if cfg.device == "cpu" else (args.device or "auto")
    codes = []
    study = run_study(cfg, progress=False, launch=lambda study: codes.append(
        launch_workers(study, cfg.storage_url(), places, device, cfg.heartbeat, cfg.timeout,
                       trials=cfg.trials, progress=not args.no_progress)) or study)
    _print_best(study)
    if codes and codes[0] != 0:
        raise SystemExit(codes[0])


def cmd_worker(args) -> None:
    from search.config import StudyConfig
    from search.workers.run import run_study
    from search.workers.storage import load_study

    study = load_study(args.study, args.storage)
    overrides = {"storage": args.storage, "timeout": args.timeout, "device": args.device or "auto"}
    if args.trials is not None:
        overrides["trials"] = args.trials
    if args.heartbeat is not None:
        overrides["heartbeat"] = args.heartbeat or None
    study = run_study(StudyConfig.of_study(study, **overrides), progress=not args.no_progress, join=True)
    _print_best(study)


def cmd_rerun(args) -> None:
    from search.after.rerun import rerun_trial
    from search.config import default_storage
    from search.workers.storage import load_study

    study = load_study(args.study, args.storage or default_storage())
    result = rerun_trial(study, args.trial, args.device)
    if result.identical:
        print(f"trial {result.trial}: the learning curve is reproduced exactly ({len(result.again)} epochs)")
    else:
        print(f"trial {result.trial}: the learning curve differs by up to {result.max_difference:.6f} in "
              f"{result.metric} (expected on a GPU; on the CPU it means the data or code changed)")


def _print_best(study) -> None:
    if len(study.directions) > 1:
        _print_front(study)
        return
    try:
        best = study.best_trial
    except ValueError:
        print(f"study {study.study_name!r}: no completed trial yet")
        return
    metric = study.user_attrs.get("metric", "value")
    design = best.user_attrs.get("design", "")
    print(f"best: trial {best.number}{f' ({design})' if design else ''}, {metric} {best.value:.4f}")


def _print_front(study) -> None:
    from search.trial.pareto import UNITS, front

    members = front(study)
    if not members:
        print(f"study {study.study_name!r}: no completed trial yet")
        return
    names = (study.user_attrs.get("objectives") or "").split(",")
    print(f"Pareto front of {study.study_name!r}: {len(members)} trials (retrain/export --trial N)")
    for t in members:
        design = t.user_attrs.get("design", "")
        costs = ", ".join(f"{v:,.0f} {UNITS.get(n, n)}" for n, v in zip(names[1:], t.values[1:], strict=False))
        print(f"  trial {t.number:>4}: {names[0] or 'value'} {t.values[0]:.4f}, {costs}"
              f"{f'  ({design})' if design else ''}")


def cmd_best(args) -> None:
    from search.config import default_storage
    from search.workers.storage import load_study

    study = load_study(args.study, args.storage or default_storage())
    _print_best(study)
    if len(study.directions) > 1:
        return
    try:
        best = study.best_trial
    except ValueError:  # nothing completed: _print_best has said so
        return
    print(json.dumps({"params": best.params, "user_attrs": {
        k: v for k, v in best.user_attrs.items() if k not in ("per_class_f1", "train_loss", "val_loss")
    }}, indent=1))


def cmd_retrain(args) -> None:
    from search.after.retrain import retrain
    from search.config import default_storage
    from search.trial.metrics import TASK_METRICS
    from search.workers.storage import load_study

    storage = args.storage or default_storage()
    study = load_study(args.study, storage)
    out, metrics = retrain(study, args.trial, args.train_on, args.out, args.device, seeds=args.seeds,
                           storage_url=storage, epochs=args.epochs, seconds=args.time)
    note = "" if metrics["held_out"] else " (not held out: trained on train+val)"
    names = TASK_METRICS[study.user_attrs.get("task", "multiclass")]
    if args.seeds == 1:
        values = ", ".join(f"{m} {metrics[m]:.4f}" for m in names)
    else:
        values = ", ".join(f"{m} {metrics[m]:.4f} ± {metrics[m + '_std']:.4f}" for m in names)
        values += f" (mean ± sample std of {args.seeds} seeds)"
    holdout = metrics.get("holdout")
    held = "" if holdout is None else "; held-out test " + ", ".join(f"{m} {holdout[m]:.4f}" for m in names)
    print(f"saved {out}: validation {values}{note}{held}")


def cmd_export(args) -> None:
    from search.after.ensemble import model_meta
    from search.after.export import export
    from search.after.top_ensemble import ensemble_top
    from search.config import PROJECT_ROOT, default_storage
    from search.workers.storage import load_study

    if args.ensemble and args.model:
        raise UserError("--ensemble picks its own models; give --ensemble or --model, not both")
    model_dir, study, storage = args.model, None, None
    # A --model folder is enough by itself: a study is opened only to find the model or to attach
    # the submission to its trials when --study or --storage names one.
    if model_dir is None or args.storage or args.study:
        storage = args.storage or default_storage()
        study = load_study(args.study, storage)
        if args.ensemble:
            model_dir = ensemble_top(study, args.ensemble, args.train_on, args.device, storage)
        elif model_dir is None:
            if "model_dir" not in study.user_attrs:
                raise UserError(f"study {study.study_name!r} has no retrained model; run `retrain` first")
            model_dir = Path(study.user_attrs["model_dir"])
    name = study.study_name if study is not None else model_meta(model_dir).get("study", model_dir.name)
    out = args.out or PROJECT_ROOT / "submissions" / f"{name}.csv"
    path = export(model_dir, out, args.data, args.device, tta=args.tta, study=study, storage_url=storage)
    print(f"wrote {path}")


def cmd_dashboard(args) -> None:
    from search.config import default_storage
    from search.shown.dashboard import serve

    serve(args.storage or default_storage(), args.study, args.host, args.port)


def cmd_report(args) -> None:
    from search.config import PROJECT_ROOT, default_storage
    from search.shown.report import write_report
    from search.workers.storage import load_study

    storage = args.storage or default_storage()
    study = load_study(args.study, storage)
    out = args.out or PROJECT_ROOT / "runs" / study.study_name / "report.html"
    path = write_report(study, out, model_dir=args.model, device_name=args.device, storage_url=storage)
    print(f"wrote {path}")


COMMANDS = {"data": cmd_data, "run": cmd_run, "best": cmd_best, "retrain": cmd_retrain, "export": cmd_export,
            "dashboard": cmd_dashboard, "report": cmd_report, "worker": cmd_worker, "rerun": cmd_rerun}


# Commands that handle Ctrl-C and SIGTERM themselves: run and worker fail and queue again the trial
# they were running, dashboard stops its server.
_OWN_STOP = ("run", "worker", "dashboard")


def main(argv: list[str] | None = None) -> int:
    try:
        code = _main(argv)
        sys.stdout.flush()  # output still buffered meets a closed pipe here, inside the try
        return code
    except BrokenPipeError:  # the reader (`| head -1`) has all it wanted: stop quietly, as `cat` would
        # The interpreter flushes stdout again on its way out; into /dev/null that says nothing.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 128 + signal.SIGPIPE


def _main(argv: list[str] | None) -> int:
    args = build_parser().parse_args(argv)
    import optuna

    from search.workers.worker import stop_signals

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say what matters
    try:
        if args.command in _OWN_STOP:
            COMMANDS[args.command](args)
            return 0
        with stop_signals() as received:  # SIGTERM too: a stop the clean-up sees, not a silent death
            try:
                COMMANDS[args.command](args)
            except KeyboardInterrupt:
                if args.debug:
                    raise
                signum = received[-1] if received else signal.SIGINT
                print(f"interrupted ({signal.Signals(signum).name}): what it was writing is not saved; files "
                      f"from before are as they were", file=sys.stderr)
                return 128 + signum
    except (UserError, TrialVerdict) as e:  # a verdict here: retraining a trial the search rejected
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
