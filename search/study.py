"""Opening storages and studies, and making samplers and pruners from their names and settings."""

from __future__ import annotations

import importlib.util
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc

from search.errors import UserError
from search.journal import HeartbeatJournalStorage, journal_path
from search.registry import Registry

__all__ = [
    "GRACE_BEATS", "PRUNERS", "SAMPLERS", "load_study", "make_pruner", "make_sampler", "open_storage", "open_study",
]

# A trial is stale after this many missed heartbeats: one late beat (a busy host, a slow database)
# must not fail a live trial, and a killed worker's trial should still be retried within minutes.
GRACE_BEATS = 3


# Samplers by name. Each builder takes the study seed and the preset's settings for it (the
# [sampler] table less `name` and `fixed`); a setting the sampler does not know is one clear line.
def _tpe(seed: int, **options) -> optuna.samplers.BaseSampler:
    # Multivariate TPE models the joint effect of depth, width and learning rate; `group` handles
    # the conditional parameters (filters_l5 exists only when n_conv > 5). Optuna 5.0's TPE is a
    # constant liar by default, which is what parallel workers need.
    options = {"multivariate": True, "group": True, **options}
    return optuna.samplers.TPESampler(seed=seed, **options)


def _grid(seed: int, search_space: dict[str, list] | None = None, **options) -> optuna.samplers.BaseSampler:
    if not search_space:
        raise UserError("sampler grid needs a [sampler.search_space] table: parameter = [values, ...]")
    return optuna.samplers.GridSampler(search_space, seed=seed, **options)


# Model-based samplers fall back to random sampling for parameters outside their joint space
# (conditional ones such as filters_l5); that is expected here, so their warning is turned off.
SAMPLERS: Registry[Callable[..., optuna.samplers.BaseSampler]] = Registry("sampler", {
    "tpe": _tpe,
    "random": lambda seed, **o: optuna.samplers.RandomSampler(seed=seed, **o),
    "cmaes": lambda seed, **o: optuna.samplers.CmaEsSampler(seed=seed, **{"warn_independent_sampling": False, **o}),
    "gp": lambda seed, **o: optuna.samplers.GPSampler(seed=seed, **{"warn_independent_sampling": False, **o}),
    "qmc": lambda seed, **o: optuna.samplers.QMCSampler(seed=seed, **{"warn_independent_sampling": False, **o}),
    "grid": _grid,
    "nsga2": lambda seed, **o: optuna.samplers.NSGAIISampler(seed=seed, **o),
    "nsga3": lambda seed, **o: optuna.samplers.NSGAIIISampler(seed=seed, **o),
})


def _build(kind: str, table: dict, name: str, factory: Callable[..., Any], *args, **options) -> Any:
    try:
        with warnings.catch_warnings():  # several options are marked experimental; we use them knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return factory(*args, **options)
    except TypeError as e:  # an option the constructor does not take
        raise UserError(f"{kind} {name!r}: bad setting in the preset's [{table}] table ({e})") from None
    except ValueError as e:
        raise UserError(f"{kind} {name!r}: {e}") from None


def make_sampler(settings: dict[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    """The sampler ``settings["name"]`` with the other settings as its options.

    ``fixed`` (a table parameter = value) pins parameters for any sampler (Optuna's
    PartialFixedSampler): the grid preset uses it to hold everything but its grid constant, since a
    grid must name every parameter the space suggests.
    """
    options = {k: v for k, v in settings.items() if k not in ("name", "fixed")}
    name = settings.get("name", "tpe")
    sampler = _build("sampler", "sampler", name, SAMPLERS[name], seed, **options)
    if settings.get("fixed"):
        sampler = _build("sampler", "sampler.fixed", name, optuna.samplers.PartialFixedSampler,
                         dict(settings["fixed"]), sampler)
    return sampler


def _patient(wrapped: dict[str, Any] | str | None = None, patience: int = 2, **options) -> optuna.pruners.BasePruner:
    # Patience on top of another pruner (or alone): a trial is stopped only after `patience` epochs
    # without improvement, which spares slow starters such as heavily regularised networks.
    if isinstance(wrapped, str):
        wrapped = {"name": wrapped}
    inner = None if wrapped is None or wrapped.get("name") == "none" else make_pruner(wrapped)
    return optuna.pruners.PatientPruner(inner, patience=patience, **options)


PRUNERS: Registry[Callable[..., optuna.pruners.BasePruner]] = Registry("pruner", {
    # Hyperband with TPE did best in Optuna's own benchmarks, and it needs no hand-set warm-up:
    # its brackets both stop weak trials after one epoch and let slow starters run longer.
    "hyperband": optuna.pruners.HyperbandPruner,
    "median": optuna.pruners.MedianPruner,
    # The median is the 50th percentile; 25 keeps more trials (only the bottom quarter is cut).
    "percentile": lambda percentile=25.0, **o: optuna.pruners.PercentilePruner(percentile, **o),
    "asha": optuna.pruners.SuccessiveHalvingPruner,
    "patient": _patient,
    # Wilcoxon compares a trial's per-epoch values with the best trial's, paired by epoch: it stops
    # a trial whose curve is significantly below the best one's, not one that is merely behind once.
    "wilcoxon": optuna.pruners.WilcoxonPruner,
    "none": lambda: optuna.pruners.NopPruner(),
})


def make_pruner(settings: dict[str, Any]) -> optuna.pruners.BasePruner:
    options = {k: v for k, v in settings.items() if k != "name"}
    name = settings.get("name", "hyperband")
    return _build("pruner", "pruner", name, PRUNERS[name], **options)


def open_storage(url: str, heartbeat: int | None = None, max_retry: int = 2) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``; an unreachable or malformed one is one clear line.

    ``heartbeat`` (seconds) turns heartbeats on, for processes that run trials: a trial whose
    process stops beating for GRACE_BEATS intervals is failed and queued again with the same
    parameters, at most ``max_retry`` times (a configuration that kills its worker every time
    must not loop forever). A journal file (``journal://PATH`` or ``PATH.log``) gets the same."""
    retry = None
    if heartbeat:
        with warnings.catch_warnings():  # experimental since 2.8, and exactly what we need
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            retry = optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    beats = {"heartbeat_interval": heartbeat, "grace_period": GRACE_BEATS * heartbeat,
             "heartbeat_stale_trial_callback": retry} if heartbeat else {}
    try:
        journal = journal_path(url)
        if journal is not None:
            return HeartbeatJournalStorage(journal, heartbeat or None, GRACE_BEATS * (heartbeat or 0), retry)
        if url.startswith(("sqlite", "postgresql", "mysql")):
            with warnings.catch_warnings():  # heartbeat arguments are marked experimental
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(_postgres_driver(url), **beats)
        return optuna.storages.get_storage(url)
    except (sqlalchemy.exc.SQLAlchemyError, ValueError, ImportError, OSError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot open storage {url}: {reason}") from None


def _postgres_driver(url: str) -> str:
    """SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3; the test extras (and most
    servers' docs) have psycopg2. Use whichever driver is installed."""
    if not url.startswith("postgresql://") or importlib.util.find_spec("psycopg") is not None:
        return url
    if importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url  # SQLAlchemy's own ImportError then names the missing driver


def open_study(
    name: str, storage: str, sampler: optuna.samplers.BaseSampler, pruner: optuna.pruners.BasePruner,
    direction: str = "maximize", directions: list[str] | None = None, heartbeat: int | None = None,
) -> optuna.Study:
    # Optuna takes either one `direction` or a list of `directions`; a one-element list is the
    # single-objective case and must keep its own direction (a minimised metric stays minimised).
    if directions is not None and len(directions) == 1:
        direction, directions = directions[0], None
    elif directions is not None:
        direction = None
    study = optuna.create_study(
        study_name=name, storage=open_storage(storage, heartbeat), sampler=sampler, pruner=pruner,
        direction=direction, directions=directions, load_if_exists=True,
    )
    return study


def load_study(name: str | None, storage: str, heartbeat: int | None = None) -> optuna.Study:
    """An existing study; with no name, the one whose latest trial started last (the study just run),
    named on stderr: with several studies in a storage, the user must see which one a command took."""
    if storage.startswith("sqlite:///") and not Path(storage.removeprefix("sqlite:///")).is_file():
        raise UserError(f"{storage}: no such SQLite file; `run` creates it")  # and `best` must not
    journal = journal_path(storage)
    if journal is not None and not journal.is_file():  # opening one creates it: a typo must not
        raise UserError(f"{storage}: no such journal file; `run` creates it")
    store = open_storage(storage, heartbeat)
    summaries = optuna.get_all_study_summaries(store, include_best_trial=False)
    names = [s.study_name for s in summaries]
    if name is None:
        started = [s for s in summaries if s.datetime_start is not None]
        if not started:
            raise UserError(f"{storage} holds no study with trials yet; run one first")
        name = max(started, key=lambda s: _last_start(store, s.study_name)).study_name
        print(f"study {name!r} (the one run last in {storage})", file=sys.stderr, flush=True)
    if name not in names:
        raise UserError(f"no study {name!r} in {storage}; studies there: {', '.join(names) or 'none'}")
    return optuna.load_study(study_name=name, storage=store)


def _last_start(storage: optuna.storages.BaseStorage, name: str):
    study_id = storage.get_study_id_from_name(name)
    starts = [t.datetime_start for t in storage.get_all_trials(study_id, deepcopy=False) if t.datetime_start]
    return max(starts)
