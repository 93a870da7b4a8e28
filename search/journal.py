"""A journal-file storage with heartbeats: many workers on one machine (or a shared file system)
with no database server, and a killed worker's trial still failed and retried.

Optuna's JournalStorage has no heartbeat of its own (only RDBStorage does), so this one adds
Optuna's heartbeat interface on top of it: each running trial's process writes the time into a
system attribute every ``heartbeat_interval`` seconds, and a RUNNING trial whose last beat is
older than ``grace_period`` is stale. Optuna's own optimize loop then fails it and calls the
stale-trial callback (RetryHeartbeatStaleTrialCallback queues the same parameters again), exactly
as it does for an RDB storage. The beat is wall-clock time: machines sharing one journal file over
a network file system need clocks that agree to well within the grace period (NTP does).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.storages._heartbeat import BaseHeartbeat
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState

__all__ = ["HEARTBEAT_ATTR", "HeartbeatJournalStorage", "journal_path"]

HEARTBEAT_ATTR = "gic:heartbeat"
PREFIX = "journal://"


def journal_path(url: str) -> Path | None:
    """The file a journal URL names, or None when ``url`` is not one.

    ``journal:///abs/path.log`` and ``journal://relative/path.log`` name a journal file, and so does
    a bare path ending in ``.log`` (the form optuna-dashboard accepts too)."""
    if url.startswith(PREFIX):
        return Path(url[len(PREFIX):])
    if "://" not in url and url.endswith(".log"):
        return Path(url)
    return None


class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
    def __init__(
        self,
        path: Path,
        heartbeat_interval: int | None = None,
        grace_period: int | None = None,
        stale_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(JournalFileBackend(str(path)))
        self._interval = heartbeat_interval
        self._grace = grace_period if grace_period is not None else 3 * (heartbeat_interval or 0)
        self._callback = stale_trial_callback

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # finished (or failed as stale by another worker) between two beats: nothing to keep alive

    def _get_stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            # A retried trial inherits its predecessor's old beat; its own start time counts too. The
            # journal stores that start in UTC and hands it back naive in this machine's local time, so
            # timestamp() gives the true instant whatever time zone the worker that wrote it was in.
            started = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
            last = max(float(trial.system_attrs.get(HEARTBEAT_ATTR, 0.0)), started)
            if now - last > self._grace:
                stale.append(trial._trial_id)
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self._callback
