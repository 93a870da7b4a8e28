"""`python -m search ...`: the command line. Each subcommand is a thin layer over one module."""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from search.errors import UserError

__all__ = ["main"]


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _count(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def _study_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--study", help="study name (default: the storage's only study)")
    p.add_argument("--storage", help="Optuna storage URL (default: SQLite under studies/)")


def build_parser() -> argparse.ArgumentParser:
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
    run.add_argument("space", help="search space: cnn")
    run.add_argument("--data", type=Path, help="dataset folder (default: the embedded synthetic benchmark)")
    _study_args(run)
    run.add_argument("--preset", help="study preset in studies/ (default: the space's name)")
    run.add_argument("--trials", type=_positive_int, help="finished trials the study should have in all")
    run.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    run.add_argument("--epochs", type=_positive_int, help="epochs per trial (the most a trial may train)")
    run.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    run.add_argument("--seed", type=int, help="study seed: the sampler's and, with trial numbers, each trial's")
    run.add_argument("--metric", choices=["accuracy", "macro_f1"], help="validation metric to maximise")
    run.add_argument("--no-progress", action="store_true", help="no progress bar (the per-trial lines stay)")
    run.add_argument("--workers", type=_count,
                     help="local worker processes sharing the study (default 1; with --gpus: GPUs x --trials-per-gpu; "
                          "0: only create the study, for `worker` processes elsewhere)")
    run.add_argument("--gpus", help="GPU numbers for the workers, e.g. 0,1,2,3 (each worker sees one)")
    run.add_argument("--trials-per-gpu", type=_positive_int, help="workers (trials at once) per GPU (default 1)")
    _heartbeat_arg(run)

    best = sub.add_parser("best", help="print the best trial: value, parameters, attributes")
    _study_args(best)

    retrain = sub.add_parser("retrain", help="train the best (or --trial) configuration and save it")
    _study_args(retrain)
    retrain.add_argument("--trial", type=int, help="trial number (default: the best trial)")
    retrain.add_argument("--train-on", choices=["train", "train+val"], default="train",
                         help="training data (train+val leaves no held-out validation)")
    retrain.add_argument("--out", type=Path, help="model folder (default: runs/STUDY/trial-N)")
    retrain.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")

    export = sub.add_parser("export", help="write the submission CSV from a retrained model")
    _study_args(export)
    export.add_argument("--model", type=Path, help="model folder (default: the study's last retrain)")
    export.add_argument("--data", type=Path, help="dataset with test.csv (default: the model's own)")
    export.add_argument("--out", type=Path, help="submission file (default: submissions/STUDY.csv)")
    export.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")

    worker = sub.add_parser("worker", help="join a study from any machine; run trials until its budget is met")
    worker.add_argument("--study", required=True, help="study name")
    worker.add_argument("--storage", required=True, help="the study's storage: postgresql://... or journal://PATH")
    worker.add_argument("--trials", type=_positive_int, help="finished trials for the whole study (default: its own)")
    worker.add_argument("--timeout", type=float, help="stop starting trials after this many seconds")
    worker.add_argument("--device", default=None, help="auto (default), cpu, cuda, cuda:N or mps")
    worker.add_argument("--no-progress", action="store_true", help="no progress bar (the per-trial lines stay)")
    _heartbeat_arg(worker)

    rerun = sub.add_parser("rerun", help="train one trial again and compare its learning curve with the stored one")
    _study_args(rerun)
    rerun.add_argument("--trial", type=int, required=True, help="trial number")
    rerun.add_argument("--device", default="cpu", help="cpu (default: reproduces exactly), cuda, cuda:N or mps")
    return parser


def _heartbeat_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--heartbeat", type=int, metavar="SECONDS",
                   help="heartbeat interval (default 30; 0: off); a trial silent for 3 intervals is retried")


def cmd_data(args) -> None:
    from search.data.synth import answers_path, generate

    if args.out.exists() and any(args.out.iterdir()):
        raise UserError(f"{args.out}: already exists and is not empty; choose another --out")
    generate(args.out, classes=args.classes, size=args.size, train=args.train, val=args.val,
             test=args.test, seed=args.seed)
    print(f"wrote {args.out} (test answers: {answers_path(args.out)})")


def cmd_run(args) -> None:
    from search.config import load_preset
    from search.device import resolve_device
    from search.run import run_study
    from spaces import get_space

    get_space(args.space)  # an unknown space fails here, with the list, before anything else
    device = resolve_device(args.device or "auto")
    cfg = load_preset(args.preset or args.space, device.type)
    overrides = {k: getattr(args, k) for k in ("data", "study", "storage", "trials", "timeout", "epochs",
                                                "device", "seed", "metric") if getattr(args, k) is not None}
    cfg = replace(cfg, space=args.space, **overrides)
    if args.heartbeat is not None:
        cfg = replace(cfg, heartbeat=args.heartbeat or None)
    if args.workers is None and args.gpus is None and args.trials_per_gpu is None:
        study = run_study(cfg, progress=not args.no_progress)
        _print_best(study)
        return
    _run_workers(args, cfg)


def _run_workers(args, cfg) -> None:
    from search.config import PRESETS
    from search.launch import check_storage, launch_workers, placements
    from search.run import log, run_study

    places = placements(args.workers, args.gpus, args.trials_per_gpu)
    if not places:  # --workers 0: the study is made ready here and its trials run elsewhere
        if cfg.storage is None:
            raise UserError("--workers 0 leaves the trials to workers elsewhere: give them a shared --storage")
        study = run_study(cfg, progress=False, launch=lambda study: study)
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
        launch_workers(study, cfg.storage_url(), places, device, cfg.heartbeat, cfg.timeout)) or study)
    _print_best(study)
    if codes and codes[0] != 0:
        raise SystemExit(codes[0])


def cmd_worker(args) -> None:
    from search.config import StudyConfig
    from search.run import run_study
    from search.study import load_study

    attrs = load_study(args.study, args.storage).user_attrs
    if "space" not in attrs:
        raise UserError(f"study {args.study!r} was not made by `run` (it records no space); start it with `run`")
    cfg = StudyConfig(
        space=attrs["space"], data=Path(attrs["data"]), study=args.study, storage=args.storage,
        trials=args.trials or attrs.get("trials"), timeout=args.timeout, epochs=int(attrs["epochs"]),
        device=args.device or "auto", seed=int(attrs["seed"]), metric=attrs["metric"],
        sampler=attrs.get("sampler", {"name": "tpe"}), pruner=attrs.get("pruner", {"name": "hyperband"}),
        preset=attrs.get("preset", ""),
        heartbeat=StudyConfig.heartbeat if args.heartbeat is None else (args.heartbeat or None),
    )
    study = run_study(cfg, progress=not args.no_progress, join=True)
    _print_best(study)


def cmd_rerun(args) -> None:
    from search.config import default_storage
    from search.rerun import rerun_trial
    from search.study import load_study

    study = load_study(args.study, args.storage or default_storage())
    result = rerun_trial(study, args.trial, args.device)
    if result.identical:
        print(f"trial {result.trial}: the learning curve is reproduced exactly ({len(result.again)} epochs)")
    else:
        print(f"trial {result.trial}: the learning curve differs by up to {result.max_difference:.6f} in "
              f"{result.metric} (expected on a GPU; on the CPU it means the data or code changed)")


def _print_best(study) -> None:
    try:
        best = study.best_trial
    except ValueError:
        print(f"study {study.study_name!r}: no completed trial yet")
        return
    metric = study.user_attrs.get("metric", "value")
    design = best.user_attrs.get("design", "")
    print(f"best: trial {best.number}{f' ({design})' if design else ''}, {metric} {best.value:.4f}")


def cmd_best(args) -> None:
    from search.config import default_storage
    from search.study import load_study

    study = load_study(args.study, args.storage or default_storage())
    _print_best(study)
    best = study.best_trial
    print(json.dumps({"params": best.params, "user_attrs": {
        k: v for k, v in best.user_attrs.items() if k not in ("per_class_f1", "train_loss", "val_loss")
    }}, indent=1))


def cmd_retrain(args) -> None:
    from search.config import default_storage
    from search.finalize import retrain
    from search.study import load_study

    study = load_study(args.study, args.storage or default_storage())
    out, metrics = retrain(study, args.trial, args.train_on, args.out, args.device)
    note = "" if metrics["held_out"] else " (not held out: trained on train+val)"
    print(f"saved {out}: validation accuracy {metrics['accuracy']:.4f}, macro-F1 {metrics['macro_f1']:.4f}{note}")


def cmd_export(args) -> None:
    from search.config import PROJECT_ROOT, default_storage
    from search.finalize import export
    from search.study import load_study

    model_dir, out = args.model, args.out
    if model_dir is None or out is None:
        study = load_study(args.study, args.storage or default_storage())
        if model_dir is None:
            if "model_dir" not in study.user_attrs:
                raise UserError(f"study {study.study_name!r} has no retrained model; run `retrain` first")
            model_dir = Path(study.user_attrs["model_dir"])
        out = out or PROJECT_ROOT / "submissions" / f"{study.study_name}.csv"
    path = export(model_dir, out, args.data, args.device)
    print(f"wrote {path}")


COMMANDS = {"data": cmd_data, "run": cmd_run, "best": cmd_best, "retrain": cmd_retrain, "export": cmd_export,
            "worker": cmd_worker, "rerun": cmd_rerun}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)  # our own lines say what matters
    try:
        COMMANDS[args.command](args)
    except UserError as e:
        if args.debug:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
