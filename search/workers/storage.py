"""Opening storages and studies: SQLite, PostgreSQL or a journal file, with heartbeats for the
processes that run trials."""

from __future__ import annotations

import copy
import importlib.util
import sys
import time
import warnings
from pathlib import Path

import optuna
import sqlalchemy.exc

from gic_common.errors import UserError
from gic_common.knobs import GRACE_BEATS, STALE_RETRIES
from search.journal import HeartbeatJournalStorage, journal_path

__all__ = ["VERDICT_ATTRS", "RetryStale", "load_study", "missing_file", "open_storage", "open_study", "study_id"]

# A failed or pruned trial's verdict: a retry of it (queued again, or by the heartbeat check) runs
# afresh, and would otherwise show the old trial's reason on its own line and in the dashboard.
VERDICT_ATTRS = ("fail_reason", "pruned_reason")


class RetryStale(optuna.storages.RetryHeartbeatStaleTrialCallback):
    """Optuna's heartbeat retry (same parameters, attributes, history, max_retry), without the
    failed trial's verdict: Optuna copies all user attributes, so the retry would carry the stale
    trial's ``fail_reason``."""

    def __init__(self, max_retry: int | None) -> None:
        with warnings.catch_warnings():  # experimental since 2.8, and exactly what we need
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            super().__init__(max_retry=max_retry)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        trial = copy.deepcopy(trial)  # the caller's keeps its reason (and Optuna appends to its retry history)
        trial.user_attrs = {k: v for k, v in trial.user_attrs.items() if k not in VERDICT_ATTRS}
        super().__call__(study, trial)


def open_storage(url: str, heartbeat: int | None = None, max_retry: int = STALE_RETRIES) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``; an unreachable or malformed one is one clear line.

    ``heartbeat`` (seconds) turns heartbeats on, for processes that run trials: a trial whose
    process stops beating for GRACE_BEATS intervals is failed and queued again with the same
    parameters, at most ``max_retry`` times (a configuration that kills its worker every time
    must not loop forever). A journal file (``journal://PATH`` or ``PATH.log``) gets the same."""
    retry = RetryStale(max_retry=max_retry) if heartbeat else None
    beats = {"heartbeat_interval": heartbeat, "grace_period": GRACE_BEATS * heartbeat,
             "heartbeat_stale_trial_callback": retry} if heartbeat else {}
    try:
        journal = journal_path(url)
        if journal is not None:
            return HeartbeatJournalStorage(journal, heartbeat or None, GRACE_BEATS * (heartbeat or 0), retry)
        if url.startswith(("sqlite", "postgresql", "mysql")):
            _make_sqlite_folder(url)
            return _rdb_storage(_postgres_driver(url), beats)
        return optuna.storages.get_storage(url)
    except (sqlalchemy.exc.SQLAlchemyError, ValueError, ImportError, OSError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot open storage {url}: {reason}") from None


# What a database says when another process created the same table or row a moment before: SQLite,
# then PostgreSQL (a table, or the row of its type).
_CREATED_MEANWHILE = ("already exists", "UNIQUE constraint failed", "duplicate key value")


def _rdb_storage(url: str, beats: dict, tries: int = 4) -> optuna.storages.RDBStorage:
    """Optuna's RDBStorage. Two processes opening a new database at once both create its tables, and
    the later one's CREATE fails ("table study_directions already exists": two jobs started on one
    new SQLite file). The tables are there by then, so it opens the database again."""

    def opened() -> optuna.storages.RDBStorage:
        with warnings.catch_warnings():  # heartbeat arguments are marked experimental
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(url, **beats)

    for attempt in range(tries - 1):
        try:
            return opened()
        except sqlalchemy.exc.SQLAlchemyError as e:
            if not any(said in str(e) for said in _CREATED_MEANWHILE):
                raise
            time.sleep(0.1 * (attempt + 1))  # the other process's creation is a transaction away from done
    return opened()


def _make_sqlite_folder(url: str) -> None:
    """Creates the folder a SQLite file is named in, as a journal file's is: `--storage
    sqlite:///studies/x.db` in a fresh folder otherwise fails with SQLite's "unable to open database
    file"."""
    if url.startswith("sqlite"):
        database = sqlalchemy.engine.make_url(url).database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)


def _postgres_driver(url: str) -> str:
    """SQLAlchemy 2.1 reads a bare ``postgresql://`` as psycopg 3; the test extras (and most
    servers' docs) have psycopg2. Use whichever driver is installed."""
    if not url.startswith("postgresql://") or importlib.util.find_spec("psycopg") is not None:
        return url
    if importlib.util.find_spec("psycopg2") is not None:
        return "postgresql+psycopg2://" + url[len("postgresql://"):]
    return url  # SQLAlchemy's own ImportError then names the missing driver


def missing_file(url: str) -> str | None:
    """The kind of file ``url`` names ("SQLite", "journal") when it does not exist (opening creates it), else None."""
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        return "SQLite"
    journal = journal_path(url)
    return "journal" if journal is not None and not journal.is_file() else None


def study_id(storage: optuna.storages.BaseStorage | None, name: str) -> int | None:
    """Study ``name``'s id in ``storage``; None when there is no such study (or no storage yet)."""
    try:
        return None if storage is None else storage.get_study_id_from_name(name)
    except KeyError:
        return None


def open_study(name: str, storage: optuna.storages.BaseStorage, sampler: optuna.samplers.BaseSampler,
               pruner: optuna.pruners.BasePruner, directions: list[str]) -> optuna.Study:
    """Study ``name``, made if new; one direction is a single-objective study that keeps it (a minimised cost too)."""
    return optuna.create_study(study_name=name, storage=storage, sampler=sampler, pruner=pruner,
                               directions=directions, load_if_exists=True)


def load_study(name: str | None, storage: str, opened: optuna.storages.BaseStorage | None = None) -> optuna.Study:
    """An existing study; with no name, the one whose latest trial started last (the study just run),
    named on stderr: with several studies in a storage, the user must see which one a command took."""
    missing = missing_file(storage)
    if missing:  # `best` and a typo must not create one
        raise UserError(f"{storage}: no such {missing} file; `run` creates it")
    store = opened or open_storage(storage)  # opened: the caller's handle on that storage, not opened again
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
