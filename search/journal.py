"""A journal-file storage with heartbeats: many workers on one machine (or a shared file system)
with no database server, and a killed worker's trial still failed and retried.

Optuna's JournalStorage has no heartbeat of its own (only RDBStorage does), so this one adds
Optuna's heartbeat interface on top of it: each running trial's process writes the time into a
system attribute every ``heartbeat_interval`` seconds, and a RUNNING trial whose last beat is
older than ``grace_period`` is stale. Optuna's own optimize loop then fails it and calls the
stale-trial callback (RetryHeartbeatStaleTrialCallback queues the same parameters again), exactly
as it does for an RDB storage. The beat is wall-clock time: machines sharing one journal file over
a network file system need clocks that agree to well within the grace period (NTP does).

The file is Optuna's JSON-lines journal, checked on the way: a line that is not a record (a write cut
short by a killed process, a stray ``echo >>``) stops every command with a line naming the file and
line, and nothing is ever appended behind it (Optuna reads past a bad last line, so it would append,
and the next read would fail on the buried line). A file that is no journal at all (a SQLite
database named by mistake) is refused as such: deleting its "bad line" would destroy it.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import optuna
from optuna.storages.journal import JournalFileBackend, JournalStorage
from optuna.trial import FrozenTrial, TrialState

from gic_common.errors import UserError
from gic_common.knobs import GRACE_BEATS
from search.console import log
from search.optuna_private import Heartbeat, journal_lock, trial_id

__all__ = ["HEARTBEAT_ATTR", "CheckedJournalFile", "HeartbeatJournalStorage", "journal_path"]

HEARTBEAT_ATTR = "gic:heartbeat"
PREFIX = "journal://"
SQLITE_HEADER = b"SQLite format 3\0"


def journal_path(url: str) -> Path | None:
    """The file a journal URL names, or None when ``url`` is not one.

    ``journal:///abs/path.log`` and ``journal://relative/path.log`` name a journal file, and so does
    a bare path ending in ``.log`` (the form optuna-dashboard accepts too)."""
    if url.startswith(PREFIX):
        return Path(url[len(PREFIX):])
    if "://" not in url and url.endswith(".log"):
        return Path(url)
    return None


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as e:
        return e.start > len(head) - 4  # a character cut by the 256-byte read is still text
    return True


class CheckedJournalFile(JournalFileBackend):
    """Optuna's journal file backend that refuses to read or append past a line that is not a record."""

    def __init__(self, path: Path):
        super().__init__(str(path))
        self._path = path
        self._good_bytes = 0  # the file's first bytes already checked, and how many lines they hold
        self._good_lines = 0

    def _check(self, writing: bool) -> None:
        with open(self._path, "rb") as f:
            if self._good_bytes == 0:
                self._refuse_foreign(f.read(256))
            f.seek(self._good_bytes)
            for line in f:
                if not line.endswith(b"\n"):
                    if writing:  # under the lock no other writer is midway: this write never finished
                        self._refuse("cut short (a write that never finished)")
                    return  # another process may be writing it right now; it is checked once complete
                try:
                    record = json.loads(line)
                except ValueError:
                    record = None
                if not (isinstance(record, dict) and "op_code" in record):
                    self._refuse(f"not a journal record: {line[:40]!r}")
                self._good_bytes += len(line)
                self._good_lines += 1

    def _refuse_foreign(self, head: bytes) -> None:
        """Every journal begins with a JSON record; a file that does not is not one damaged journal line
        but another file altogether, so the line-deleting recovery must not be offered for it."""
        if not head or head.startswith(b"{") and b"\0" not in head:
            return
        if head.startswith(SQLITE_HEADER):
            what = f"but a SQLite database; open it with --storage sqlite:///{self._path.resolve()}"
        elif b"\0" in head or not _is_text(head):
            what = "(it holds binary data); check that --storage names the study's journal"
        else:
            first = head.splitlines()[0][:40].decode(errors="replace")
            what = f"(its first line, {first!r}, is no journal record); check that --storage names the journal"
        raise UserError(f"{self._path}: not a journal file {what} (nothing was read from it or written to it)")

    def _refuse(self, what: str) -> None:
        line = self._good_lines + 1
        raise UserError(
            f"{self._path}, line {line}: {what}; the study cannot be read past it and nothing was written "
            f"behind it. To recover, delete that line (the lines before it are intact), keeping a copy: "
            f"sed -i.bak '{line}d' {self._path}"
        )

    def read_logs(self, log_number_from: int):
        self._check(writing=False)
        return super().read_logs(log_number_from)

    def append_logs(self, logs: list[dict]) -> None:
        # Optuna's append, with the check inside its lock (the lock is not re-entrant, so super()'s
        # append cannot be called from here).
        with journal_lock(self):
            self._check(writing=True)
            text = "\n".join(json.dumps(log, separators=(",", ":")) for log in logs) + "\n"
            with open(self._path, "ab") as f:
                f.write(text.encode("utf-8"))
                f.flush()
                os.fsync(f.fileno())


class HeartbeatJournalStorage(JournalStorage, Heartbeat):
    def __init__(
        self,
        path: Path,
        heartbeat_interval: int | None = None,
        grace_period: int | None = None,
        stale_trial_callback: Callable[[optuna.Study, FrozenTrial], None] | None = None,
    ):
        path.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(CheckedJournalFile(path))
        self._interval = heartbeat_interval
        self._grace = grace_period if grace_period is not None else GRACE_BEATS * (heartbeat_interval or 0)
        self._callback = stale_trial_callback
        self._beats_failed = False  # a damaged file stopped the beats, and a line has said so

    def record_heartbeat(self, trial_id: int) -> None:
        try:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())
        except optuna.exceptions.UpdateFinishedTrialError:
            pass  # finished (or failed as stale by another worker) between two beats: nothing to keep alive
        except UserError as e:  # a damaged file: the trial's next write stops the worker, maybe an epoch later
            if not self._beats_failed:  # until then, other workers may fail its trial as stale: say why, once
                self._beats_failed = True
                log(f"warning: this worker's heartbeats stopped: {e}")

    def stale_trial_ids(self, study_id: int) -> list[int]:
        now = time.time()
        stale = []
        for trial in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,)):
            # A retried trial inherits its predecessor's old beat; its own start time counts too. The
            # journal stores that start in UTC and hands it back naive in this machine's local time, so
            # timestamp() gives the true instant whatever time zone the worker that wrote it was in.
            started = trial.datetime_start.timestamp() if trial.datetime_start else 0.0
            last = max(float(trial.system_attrs.get(HEARTBEAT_ATTR, 0.0)), started)
            if now - last > self._grace:
                stale.append(trial_id(trial))
        return stale

    def get_heartbeat_interval(self) -> int | None:
        return self._interval

    def get_heartbeat_stale_trial_callback(self) -> Callable[[optuna.Study, FrozenTrial], None] | None:
        return self._callback
