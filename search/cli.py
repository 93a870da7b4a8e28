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
    run.add_argument("space", help="search space: cnn, resnet, mlp or timm")
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
    run.add_argument("--sampler", help="tpe, random, cmaes, gp, qmc, grid, nsga2 or nsga3 (default: the preset's; "
                     "its [sampler] settings apply only to the sampler it names)")
    run.add_argument("--pruner", help="median, percentile, asha, hyperband, patient, wilcoxon or none "
                     "(default: the preset's)")
    run.add_argument("--objectives", help="multi-objective: a metric then costs, e.g. accuracy,params or "
                     "accuracy,latency (latency: inference images/s)")
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
    retrain.add_argument("--out", type=Path, help="model folder (default: runs/STUDY/trial-N)")
    retrain.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")

    export = sub.add_parser("export", help="write the submission CSV from a retrained model")
    _study_args(export)
    export.add_argument("--model", type=Path, help="model folder (default: the study's last retrain)")
    export.add_argument("--data", type=Path, help="dataset with test.csv (default: the model's own)")
    export.add_argument("--out", type=Path, help="submission file (default: submissions/STUDY.csv)")
    export.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    return parser


def cmd_data(args) -> None:
    from search.data.synth import answers_path, generate

    if args.out.exists() and any(args.out.iterdir()):
        raise UserError(f"{args.out}: already exists and is not empty; choose another --out")
    try:
        generate(args.out, classes=args.classes, size=args.size, train=args.train, val=args.val,
                 test=args.test, seed=args.seed)
    except (ValueError, FileExistsError) as e:
        raise UserError(str(e)) from None
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
    overrides.update({k: v for k, v in (("objectives", args.objectives), ("from_study", args.from_study),
                                        ("warm_start", args.warm_start)) if v is not None})
    for kind in ("sampler", "pruner"):
        name = getattr(args, kind)
        if name is not None and name != getattr(cfg, kind).get("name"):
            # The preset's options belong to the sampler it names; another one starts from its defaults.
            # Pinned parameters are about the space, not the sampler, so they stay.
            fixed = {"fixed": cfg.sampler["fixed"]} if kind == "sampler" and "fixed" in cfg.sampler else {}
            overrides[kind] = {"name": name, **fixed}
    cfg = replace(cfg, space=args.space, **overrides)
    study = run_study(cfg, progress=not args.no_progress)
    _print_best(study)


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
    from search.pareto import UNITS, front

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
    from search.study import load_study

    study = load_study(args.study, args.storage or default_storage())
    _print_best(study)
    if len(study.directions) > 1:
        return
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


COMMANDS = {"data": cmd_data, "run": cmd_run, "best": cmd_best, "retrain": cmd_retrain, "export": cmd_export}


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
