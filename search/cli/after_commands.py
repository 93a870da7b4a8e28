"""The commands for after the search: `retrain`, `export`, `rerun`, `report`, `dashboard`."""

from __future__ import annotations

from pathlib import Path

from gic_common.errors import UserError

__all__ = ["cmd_dashboard", "cmd_export", "cmd_report", "cmd_rerun", "cmd_retrain"]


def cmd_retrain(args) -> None:
    from search.after.retrain import retrain
    from search.config import default_storage
    from search.trial.choices import TASK_METRICS
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
    from search.config import default_storage
    from search.places import submission_file
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
    out = args.out or submission_file(str(name))
    path = export(model_dir, out, args.data, args.device, tta=args.tta, study=study, storage_url=storage)
    print(f"wrote {path}")


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


def cmd_report(args) -> None:
    from search.config import default_storage
    from search.places import runs_dir
    from search.shown.report import write_report
    from search.workers.storage import load_study

    storage = args.storage or default_storage()
    study = load_study(args.study, storage)
    out = args.out or runs_dir(study.study_name) / "report.html"
    path = write_report(study, out, model_dir=args.model, device_name=args.device, storage_url=storage)
    print(f"wrote {path}")


def cmd_dashboard(args) -> None:
    from search.config import default_storage
    from search.shown.dashboard import serve

    serve(args.storage or default_storage(), args.study, args.host, args.port)
