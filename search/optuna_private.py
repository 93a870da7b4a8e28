"""Every use of Optuna's private API, in one place. The project is tested against Optuna 5.0 only
(pyproject.toml pins ``optuna>=5.0,<5.1``): any of these may change in a minor release, and this is
the one file to check when it does. For each: why it is needed, and what public API would replace it.
"""

from __future__ import annotations

import abc

import optuna

# BaseHeartbeat: the interface Optuna's optimize loop looks for to beat and to fail stale trials.
# Needed because JournalStorage has no heartbeat of its own (search/journal.py gives it one).
# Public replacement: none; a heartbeat on JournalStorage in Optuna itself would retire journal.py's.
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled

# get_lock_file: the journal file's lock as a context manager, so search/journal.py can check the file
# and append under the same lock Optuna's own append takes. Public replacement: none (the backend's
# append takes the lock itself and cannot be wrapped from outside without it).
from optuna.storages.journal._file import get_lock_file

__all__ = [
    "OPTIMIZE_LOGGER", "Heartbeat", "heartbeat_interval", "heartbeats_on", "journal_lock", "stale_trial_ids",
    "study_id", "study_storage", "trial_id",
]

# The logger Optuna reports a trial's end on (with a traceback for an exception); search/workers/worker.py
# filters it for ends that are not errors. Public replacement: none; optuna.logging sets levels only.
OPTIMIZE_LOGGER = "optuna.study._optimize"


def study_storage(study: optuna.Study) -> optuna.storages.BaseStorage:
    """The storage a study is open on: artifacts are uploaded with it, the dashboard serves it, a
    trial is read back by id from it. Public replacement: none on Study; keeping the storage object
    that opened the study (search.workers.storage.open_storage) and passing it along would do."""
    return study._storage


def study_id(study: optuna.Study) -> int:
    """The storage's id of a study: the dashboard's URLs and its artifact keys use it. Public
    replacement: ``storage.get_study_id_from_name(study.study_name)``, one more storage query."""
    return study._study_id


def trial_id(trial: optuna.Trial | optuna.trial.FrozenTrial) -> int:
    """The storage's id of a trial (not its number): trial system attributes, the artifact keys and
    a stale trial's verdict are addressed by it. Public replacement:
    ``storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)``, one more query."""
    return trial._trial_id


def heartbeats_on(study: optuna.Study) -> bool:
    """Whether the study's storage beats for running trials (so a dead worker's trial is failed and
    retried). Public replacement: none; ``optuna.storages.fail_stale_trials`` assumes heartbeats on."""
    return is_heartbeat_enabled(study_storage(study))


def heartbeat_interval(study: optuna.Study) -> int | None:
    """Seconds between a running trial's heartbeats, None with heartbeats off: the line a waiting worker
    prints says when a dead worker's trial frees up. Public replacement: none (the storage's
    ``get_heartbeat_interval`` belongs to the private BaseHeartbeat interface)."""
    storage = study_storage(study)
    return storage.get_heartbeat_interval() if is_heartbeat_enabled(storage) else None


def stale_trial_ids(study: optuna.Study) -> list[int]:
    """The ids of the study's RUNNING trials whose heartbeats have lapsed: the trials
    ``optuna.storages.fail_stale_trials`` is about to fail. Needed because that function records no
    reason and a failed trial takes no attribute, so the reason is written on these just before.
    Public replacement: none; a reason (or a callback before the failing) in ``fail_stale_trials``."""
    return study_storage(study)._get_stale_trial_ids(study_id(study))


def journal_lock(backend: optuna.storages.journal.JournalFileBackend):
    """The lock a journal file's appends take, held around a check and an append of our own."""
    return get_lock_file(backend._lock)


class Heartbeat(BaseHeartbeat):
    """Optuna's heartbeat interface with its one private hook made public: Optuna asks a storage for
    its stale trials through ``_get_stale_trial_ids``, which a storage of ours answers with
    ``stale_trial_ids``. Public replacement: none (RDBStorage answers it from its own table)."""

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        return self.stale_trial_ids(study_id)

    @abc.abstractmethod
    def stale_trial_ids(self, study_id: int) -> list[int]:
        """The ids of this study's RUNNING trials whose process has stopped beating."""
