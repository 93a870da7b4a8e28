"""The commands that make and run a study: `data synth`, `run`, `worker`, `best`."""

from __future__ import annotations

import json
from dataclasses import replace

from gic_common.errors import UserError
from search.trial.choices import UNITS

__all__ = ["cmd_best", "cmd_data", "cmd_run", "cmd_worker"]


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
    from search.data.options import DATA_SETTINGS
    from search.workers.run import run_study
    from spaces import get_space

    get_space(args.space)  # an unknown space fails here, with the list, before anything else
    if args.warm_start is not None and args.from_study is None:  # else it would be ignored in silence
        raise UserError("--warm-start K takes the best K configurations of --from-study NAME; name that study")
    variant = args.variant or _variant_here(args)
    settings = load_preset(args.preset or args.space, variant)
    overrides = {k: getattr(args, k) for k in ("data", "study", "storage", "trials", "timeout", "epochs",
                                                "device", "seed", "metric", "prior", "final_on")
                 if getattr(args, k) is not None}
    data = {k: getattr(args, k) for k in DATA_SETTINGS if getattr(args, k) is not None}
    overrides.update({k: v for k, v in (("objectives", args.objectives), ("from_study", args.from_study),
                                        ("warm_start", args.warm_start)) if v is not None})
    if args.metric is not None:  # the user's own choice: one the task lacks is an error, not replaced
        overrides["metric_from_preset"] = False
    for kind in ("sampler", "pruner"):
        name = getattr(args, kind)
        if name is not None and name != getattr(settings, kind).get("name"):
            # The preset's options belong to the sampler it names; another one starts from its defaults.
            # Pinned parameters are about the space, not the sampler, so they stay.
            fixed = {"fixed": settings.sampler["fixed"]} if kind == "sampler" and "fixed" in settings.sampler else {}
            overrides[kind] = {"name": name, **fixed}
    # What the command line names; a continued study keeps its own value of the rest. A preset or
    # variant asked for by name is asked for with all its settings.
    given = set(overrides) | set(data) | {k for k in ("sampler", "pruner", "compile") if getattr(args, k) is not None}
    if args.preset is not None or args.variant is not None:
        given |= {*settings.__dataclass_fields__, *DATA_SETTINGS}
    settings = replace(settings, space=args.space, data_options=replace(settings.data_options, **data), **overrides,
                       given=frozenset(given))
    if args.heartbeat is not None:
        settings = replace(settings, heartbeat=args.heartbeat or None)
    if args.compile is not None:
        settings = replace(settings, compile=None if args.compile == "off" else args.compile)
    if args.time is not None:
        _run_job(args, settings)
        return
    if args.workers is None and args.gpus is None and args.trials_per_gpu is None:
        study = run_study(settings, progress=not args.no_progress)
        _print_best(study)
        return
    _run_workers(args, settings, variant)


def _run_job(args, settings) -> None:
    """`run --time`: search, final run, submission and report in the user's time (search/job/)."""
    import signal
    import sys
    import time

    from search.job.plan import JobPlan
    from search.job.whole import run_job
    from search.workers.worker import stop_signals

    if args.workers is not None or args.gpus is not None or args.trials_per_gpu is not None:
        raise UserError("--time runs the whole job in this process; without --workers, --gpus and --trials-per-gpu")
    if args.objectives:
        raise UserError("--time ends on one final model; a multi-objective study ends on a front: use --timeout, "
                        "then retrain --trial N")
    plan = JobPlan(args.time, share=settings.search_share, patience=settings.search_patience,
                   start=args.started)  # the clock started with the command: reading the data counts
    plan.mark("start")  # the interpreter, the imports and the flags, before any of the job's own work
    with stop_signals() as received:
        try:
            result = run_job(settings, args.time, plan, progress=not args.no_progress)
        except KeyboardInterrupt:  # the search phase handles its own; this is the final run or the export
            signum = received[-1] if received else signal.SIGINT
            print(f"interrupted ({signal.Signals(signum).name}) after the search: the study is saved, a model "
                  f"folder from before is as it was; `python -m search retrain --time SEC` trains the winner",
                  file=sys.stderr)
            raise SystemExit(128 + signum) from None
    _print_best(result.study)
    metric = result.study.user_attrs.get("metric", "accuracy")
    value = result.metrics.get(metric, float("nan"))
    print(f"final model {result.model_dir}: validation {metric} {value:.4f}" if result.metrics.get("held_out", True)
          else f"final model {result.model_dir}: trained on train+val, so it has no held-out score (the images "
               f"it trained on are not scored); its trial scored {result.verdict:.4f} held out")
    if result.submission is not None:
        print(f"wrote {result.submission}")
    if result.report is not None:
        print(f"wrote {result.report}")
    print(f"the whole job took {time.monotonic() - plan.start:.0f}s of {args.time:.0f}s ({plan.spent()})")


def _variant_here(args) -> str:
    """The preset variant for trials run by this command: that of the device they run on. With
    --workers 0 they run elsewhere and this machine (often a cluster's login node, with no GPU) says
    nothing about theirs; the batch workers of deploy/ have GPUs, so the full study."""
    from search.trial.device import resolve_device

    if args.workers == 0:
        return "gpu"
    return "cpu" if resolve_device(args.device or "auto").type == "cpu" else "gpu"


def _run_workers(args, settings, variant: str) -> None:
    from search.config import StudyConfig
    from search.console import log
    from search.places import studies_dir
    from search.workers.launch import check_storage, launch_workers, placements
    from search.workers.run import prepare_study

    places = placements(args.workers, args.gpus, args.trials_per_gpu)
    if not places:  # --workers 0: the study is made ready here and its trials run elsewhere
        if settings.storage is None:
            raise UserError("--workers 0 leaves the trials to workers elsewhere: give them a shared --storage")
        study = prepare_study(settings).study
        other, kept = "gpu" if variant == "cpu" else "cpu", StudyConfig.of_study(study)  # a continued study's own
        log(f"recorded the {variant} variant of preset {kept.preset!r}: {kept.epochs} epochs a trial, "
            f"{kept.pruner.get('name')} pruner, {kept.trials} trials (`--for {other}` records the other)")
        print(f"study {study.study_name!r} is ready; start workers with: "
              f"python -m search worker --study {study.study_name} --storage {settings.storage}")
        return
    if settings.storage is None and len(places) > 1:  # the default SQLite file takes one writer only
        settings = replace(settings, storage=f"journal://{studies_dir() / 'search.log'}")
        log(f"{len(places)} workers share the journal file {settings.storage}: "
            f"pass `--storage {settings.storage}` to best, retrain, export and the dashboard")
    check_storage(settings.storage_url(), len(places))
    device = "cpu" if settings.device == "cpu" else (args.device or "auto")
    study = prepare_study(settings).study  # the workers open it again, each in its own process
    code = launch_workers(study, settings.storage_url(), places, device, settings.heartbeat, settings.timeout,
                          trials=settings.trials, progress=not args.no_progress)
    _print_best(study)
    if code != 0:
        raise SystemExit(code)


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
    members = sorted(study.best_trials, key=lambda t: t.values[0], reverse=True)  # pareto.front imports torch
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
