"""Opening storages and studies, and making samplers and pruners from their names and settings."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc

from search.errors import UserError
from search.journal import HeartbeatJournalStorage, journal_path

__all__ = ["GRACE_BEATS", "load_study", "make_pruner", "make_sampler", "open_storage", "open_study"]

# A trial is stale after this many missed heartbeats: one late beat (a busy host, a slow database)
# must not fail a live trial, and a killed worker's trial should still be retried within minutes.
GRACE_BEATS = 3


def make_sampler(settings: dict[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    options = {k: v for k, v in settings.items() if k != "name"}
    name = settings.get("name", "tpe")
    if name == "tpe":
        # Multivariate TPE models the joint effect of depth, width and learning rate; `group`
        # handles the conditional parameters (filters_l5 exists only when n_conv > 5).
        options = {"multivariate": True, "group": True, **options}
        with warnings.catch_warnings():  # `group` is marked experimental; we rely on it knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, **options)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed, **options)
    raise UserError(f"unknown sampler {name!r}; known samplers: random, tpe")


def make_pruner(settings: dict[str, Any]) -> optuna.pruners.BasePruner:
    options = {k: v for k, v in settings.items() if k != "name"}
    name = settings.get("name", "hyperband")
    if name == "hyperband":
        # Hyperband with TPE did best in Optuna's own benchmarks, and it needs no hand-set warm-up:
        # its brackets both stop weak trials after one epoch and let slow starters run longer.
        return optuna.pruners.HyperbandPruner(**options)
    if name == "median":
        return optuna.pruners.MedianPruner(**options)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise UserError(f"unknown pruner {name!r}; known pruners: hyperband, median, none")


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
    direction: str = "maximize", heartbeat: int | None = None,
) -> optuna.Study:
    return optuna.create_study(
        study_name=name, storage=open_storage(storage, heartbeat), sampler=sampler, pruner=pruner,
        direction=direction, load_if_exists=True,
    )


def load_study(name: str | None, storage: str, heartbeat: int | None = None) -> optuna.Study:
    """An existing study; with no name, the one whose latest trial started last (the study just run)."""
    if storage.startswith("sqlite:///") and not Path(storage.removeprefix("sqlite:///")).is_file():
        raise UserError(f"{storage}: no such SQLite file; `run` creates it")  # and `best` must not
    store = open_storage(storage, heartbeat)
    summaries = optuna.get_all_study_summaries(store, include_best_trial=False)
    names = [s.study_name for s in summaries]
    if name is None:
        started = [s for s in summaries if s.datetime_start is not None]
        if not started:
            raise UserError(f"{storage} holds no study with trials yet; run one first")
        name = max(started, key=lambda s: _last_start(store, s.study_name)).study_name
    if name not in names:
        raise UserError(f"no study {name!r} in {storage}; studies there: {', '.join(names) or 'none'}")
    return optuna.load_study(study_name=name, storage=store)


def _last_start(storage: optuna.storages.BaseStorage, name: str):
    study_id = storage.get_study_id_from_name(name)
    starts = [t.datetime_start for t in storage.get_all_trials(study_id, deepcopy=False) if t.datetime_start]
    return max(starts)
