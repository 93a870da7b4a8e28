"""`run`: data ready and on the device, the study opened, the seed designs queued, trials run."""

from __future__ import annotations

import hashlib
import json
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, replace

import optuna
import torch

from gic_common.errors import UserError
from search.config import StudyConfig
from search.console import count_progress, log
from search.data import Dataset
from search.data.synth import generate
from search.trial.budget import counted
from search.trial.choices import TASK_METRICS, default_metric
from search.trial.device import describe, resolve_device, setup
from search.trial.inputs import load_data, to_device
from search.trial.metrics import check_measurable
from search.trial.objective import Objective, TrialSettings
from search.trial.pareto import FrontRules, MultiObjective, directions, parse_objectives
from search.trial.time_budget import TimeBudget
from search.workers.prior_sampler import PriorSampler
from search.workers.progress import Progress
from search.workers.resume import keep_recorded
from search.workers.samplers import make_pruner, make_sampler
from search.workers.storage import missing_file, open_storage, open_study, study_id
from search.workers.warmstart import warm_start
from search.workers.worker import Interrupted, work
from spaces import get_space, recommended_design
from spaces.priors import Budget

__all__ = ["PreparedStudy", "SearchPhase", "ensure_synth", "prepare_study", "resolve_metric", "run_study", "run_trials"]


def ensure_synth(settings: StudyConfig) -> None:
    root = settings.data_dir()
    if settings.data is not None or (root / "train.csv").exists():
        return
    s = settings.synth
    log(f"generating the synthetic benchmark ({s['classes']} classes, {s['size']}px) into {root} ...")
    start = time.perf_counter()
    generate(root, **s, progress=count_progress("generating images"))
    log(f"  done in {time.perf_counter() - start:.0f}s")


def sampler_seed(settings: StudyConfig, storage: optuna.storages.BaseStorage | None, copied: int = 0) -> int:
    """The study's seed for a new study (and a QMC one: it keeps its place in the study). With trials in the
    study (``copied``: a new one's warm-start history), that seed again would replay the first run's random
    start-up draws, so the study would train the configurations it already has; a seed that moves with the
    trial count keeps a rerun reproducible and new."""
    found = study_id(storage, settings.study_name())
    trials = (0 if found is None else storage.get_n_trials(found)) or copied
    if not trials or settings.sampler.get("name") == "qmc":
        return settings.seed
    digest = hashlib.blake2b(f"sampler:{settings.seed}:{trials}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


def resolve_metric(requested: str, task: str, preset: str | None = None) -> str:
    """``auto`` is the task's default metric; a named one must make sense for the task. ``preset``
    names the preset ``requested`` came from when the user named none: a preset is written for one
    kind of data (mlp's macro_f1 is seed 003's contest score), so a metric of its that the task lacks
    gives way to the task's default, with a line saying so, rather than stopping on a word the user
    never typed."""
    if requested == "auto":
        return default_metric(task)
    if requested not in TASK_METRICS[task] and preset is not None:
        metric = default_metric(task)
        log(f"preset {preset!r} maximises {requested}, which a {task} task does not have; "
            f"using {metric} (the task's default)")
        return metric
    if requested not in TASK_METRICS[task]:
        raise UserError(f"metric {requested!r} does not apply to a {task} task; choose one of "
                        f"{', '.join(TASK_METRICS[task])}")
    return requested


def _check_same_study(study: optuna.Study, settings: StudyConfig, task: str) -> None:
    """A continued study must be the same study: settings that make it what it is may not change."""
    attrs = study.user_attrs
    wanted = json.loads(json.dumps(settings.to_attrs(task)))  # as the storage returns it
    for key in ("space", "data", "metric", "task", "data_options", "objectives"):
        if key in attrs and attrs[key] != wanted[key]:
            raise UserError(
                f"study {study.study_name!r} was made with {key} {attrs[key]!r}, not {wanted[key]!r}; "
                f"use --study to name a new one"
            )


def make_study_sampler(settings: StudyConfig, space, device: torch.device, seed: int | None):
    """The preset's sampler, its start-up draws taken from the space's priors unless ``prior`` is off.
    A grid is its own design: nothing to start it from."""
    base = make_sampler(settings.sampler, seed)
    if settings.prior == "off" or settings.sampler.get("name") == "grid" or not hasattr(space, "priors"):
        return base
    n_startup = int(settings.sampler.get("n_startup_trials", 10))
    return PriorSampler(base, space.priors(Budget(settings.epochs, device.type)), n_startup, seed)


@dataclass(frozen=True)
class PreparedStudy:
    """A study made ready to run trials: opened, its settings recorded, its first designs queued,
    its data read. ``run_trials`` runs them here; `run --workers` hands ``study`` to processes."""

    study: optuna.Study
    settings: StudyConfig  # checked, its metric resolved for the data
    device: torch.device
    data: Dataset
    trial: TrialSettings  # what each trial is given; a multi-objective study's objectives: trial.rules


def run_study(settings: StudyConfig, progress: bool = True, join: bool = False) -> optuna.Study:
    """Prepares the study and runs its trials in this process (see prepare_study and run_trials)."""
    return run_trials(prepare_study(settings, join), progress)


def prepare_study(settings: StudyConfig, join: bool = False) -> PreparedStudy:
    """Checks the settings, reads the data, opens the study and, unless ``join``, records its
    settings and queues its first designs. ``join``: a worker joining a study another command
    created (its settings come from the study; its sampler gets its own random seed so that workers
    never draw the same parameters)."""
    url = settings.storage_url()
    # One handle throughout; a new storage file is made with the study, once settings and data pass their checks.
    storage = None if missing_file(url) else open_storage(url, settings.heartbeat)
    if not join:  # a continued study keeps what its command line does not change
        settings = keep_recorded(settings, storage)
    costs: tuple[str, ...] = ()
    if settings.objectives:  # the first objective is the metric the trials report; the rest are costs
        names = parse_objectives(settings.objectives)
        costs = names[1:]
        settings = replace(settings, metric=names[0], objectives=",".join(names) if costs else None,
                           metric_from_preset=False)
    settings = settings.checked()
    space = get_space(settings.space)
    device = resolve_device(settings.device)
    pruner = make_pruner(settings.pruner)
    rules = None
    if costs:  # checked now, before anything is made; the metric is known once the data is read
        try:
            rules = FrontRules(("accuracy", *costs), **settings.front)
        except TypeError as e:
            raise UserError(f"bad setting in the preset's [front] table ({e})") from None
    data_dir = settings.data_dir().resolve()
    warm = (warm_start(settings.from_study, url, settings.space, settings.warm_start, storage)
            if settings.from_study else None)
    ensure_synth(settings)
    options = settings.data_options
    ds = load_data(data_dir, options)  # bad data fails here, before a study is created for it
    metric = resolve_metric(settings.metric, ds.task, settings.preset if settings.metric_from_preset else None)
    settings = replace(settings, metric=metric, metric_from_preset=False)  # resolved for the data: what is recorded
    if ds.val_y is not None:  # before a study is made for a metric these data cannot measure
        check_measurable(metric, ds.task, torch.from_numpy(ds.val_y), "validation", ds.class_names)
    objectives = (metric, *costs)
    copied = len(warm.history(settings.to_attrs(ds.task))) if warm is not None else 0
    sampler = make_study_sampler(settings, space, device, None if join else sampler_seed(settings, storage, copied))
    study = open_study(settings.study_name(), storage or open_storage(url, settings.heartbeat), sampler, pruner,
                       directions=directions(objectives))
    _check_same_study(study, settings, ds.task)
    if len(study.directions) != len(objectives):  # Optuna loads a study whatever directions it is asked for
        raise UserError(f"study {study.study_name!r} has {len(study.directions)} objective(s), not "
                        f"{len(objectives)} ({', '.join(objectives)}); use --study to name a new one")
    if not join:
        for key, value in settings.to_attrs(ds.task).items():
            study.set_user_attr(key, value)
        if study.metric_names is None:  # else the dashboard says "Objective 0"
            with warnings.catch_warnings():  # experimental in Optuna; it labels the dashboard's and report's axes
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                study.set_metric_names(list(objectives))
        if not study.trials:
            # A warm start first, then the recommended design, then the seed designs: where the time
            # holds one design only (a slow machine, a short --time), it is the priors' bet. A grid is
            # its own design, and a design off the grid would be a trial the grid sampler cannot place.
            if warm is not None:
                warm.begin(study)
            if settings.sampler.get("name") != "grid":
                if settings.prior == "on" and hasattr(space, "priors"):
                    study.enqueue_trial(recommended_design(space, Budget(settings.epochs, device.type)),
                                        user_attrs={"design": "recommended"}, skip_if_exists=True)
                for name, params in space.SEED_DESIGNS.items():
                    study.enqueue_trial(params, user_attrs={"design": name}, skip_if_exists=True)
    return PreparedStudy(study, settings, device, ds, TrialSettings(
        space, ds.in_shape, settings.epochs, metric, settings.seed, settings.max_mflops, settings.compile, url,
        ds.class_names, settings.trials, rules and replace(rules, objectives=objectives)))


@dataclass(frozen=True)
class SearchPhase:
    """The search as the first phase of `run --time`'s whole job (search/job/)."""

    stop: Callable[[optuna.Study], str | None]  # a reason to end the search early (search/job/plan.py)
    on_complete: Callable  # the objective's hook for each completed trial and its trained network
    job_ends: float  # monotonic: when the whole job ends, shown beside the bar's own time left
    # monotonic: a queued design may run until then, past the search's own share: the seed and recommended
    # designs are the final run's fallback, and one of them must be trained whatever the share
    designs_until: float


def run_trials(prepared: PreparedStudy, progress: bool = True, phase: SearchPhase | None = None) -> optuna.Study:
    """Runs the prepared study's trials in this process until its budget or its time is spent, or
    ``phase.stop`` gives a reason to end the search."""
    study, settings, device, trial = prepared.study, prepared.settings, prepared.device, prepared.trial
    setup(device)
    tensors = to_device(prepared.data, device)
    finished, rejected = counted(study)
    remaining = None if settings.trials is None else settings.trials - finished
    log(
        f"study {study.study_name!r} in {settings.storage_url()}: {finished} trials finished"
        f"{f' (and {rejected} rejected untrained, which take no budget)' if rejected else ''}, "
        f"{'no limit' if remaining is None else remaining} to go, {settings.epochs} epochs each, "
        f"on {describe(device)}"
    )
    if remaining is not None and remaining <= 0:
        log(f"the study already has {finished} finished trials; raise --trials to run more")
        return study
    if trial.rules is not None:
        log(f"objectives {', '.join(trial.rules.objectives)}: Optuna prunes no multi-objective study; the "
            f"front's rules do (search/trial/pareto.py)")
    budget = replace(TimeBudget.from_timeout(settings.timeout), designs_until=phase and phase.designs_until)
    objective = (MultiObjective if trial.rules else Objective)(trial, tensors, budget, phase and phase.on_complete,
                                                               for_final_run=phase is not None)
    bar = Progress(remaining, settings.metric, enabled=progress, done=finished, timeout=settings.timeout,
                   job_ends=phase and phase.job_ends)

    share_ends = None if settings.timeout is None else time.monotonic() + settings.timeout

    def designs_waiting() -> bool:
        # `run --time`: every queued design gets its trial while the job's time holds it, past the search's
        # share: were the share to hold one, the final run would go to whichever design was queued first,
        # and on a set where the other one wins that costs tens of points (bench/RESULTS.md)
        if phase is None or time.monotonic() >= phase.designs_until:
            return False
        waiting = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.WAITING,))
        return any("design" in t.user_attrs for t in waiting)

    def closed() -> bool | str | None:
        if designs_waiting():
            return None
        if phase is not None and share_ends is not None and time.monotonic() >= share_ends:
            return "the search's share of the job is spent"
        return budget.closed() or (phase.stop(study) if phase is not None else None)

    try:
        # Never more than --trials finished trials, however many workers share the study. In a job the
        # search's share is ended by closed(), so that a queued design may still start after it.
        work(study, objective, settings.trials, None if phase is not None else settings.timeout, callbacks=[bar],
             poll=min(5.0, float(settings.heartbeat or 1)), closed=closed)
    except Interrupted as stop:
        bar.close()
        what = ("no trial was running" if stop.requeued is None
                else f"trial {stop.requeued} is marked failed and queued again")
        log(f"interrupted ({stop}): {what}; rerun the same command to continue")
        raise SystemExit(128 + stop.signum) from None
    except UserError:  # repeated crashes, a damaged storage: the bar ends before the error's line
        bar.close()
        raise
    bar.close(study)
    done = counted(study)[0]
    if settings.timeout is not None and settings.trials is not None and done < settings.trials and phase is None:
        log(f"timeout of {settings.timeout:g}s reached: {done} of {settings.trials} trials finished; "
            f"rerun the same command to continue")
    return study
