"""What a running study prints: a bar over trials (best so far, time left) and one line a trial.

On a terminal the bar redraws itself in place. Into a file or a pipe (a batch job's log, `| tee`)
those redraws would be carriage returns piled on one line, so there the bar's state is written as
one plain line each time a trial finishes, in tqdm's own format (count, elapsed, time left, best).
"""

from __future__ import annotations

import contextlib
import io
import sys
import threading
import time
from collections.abc import Iterator

import optuna
from tqdm.auto import tqdm

from search.trial.budget import counted

__all__ = ["Progress", "trial_line", "watching"]


def trial_line(trial: optuna.trial.FrozenTrial, metric: str) -> str:
    attrs = trial.user_attrs
    secs = (trial.duration.total_seconds() if trial.duration else 0.0)
    head = f"trial {trial.number:>3} {trial.state.name.lower():<8}"
    epochs = f"{attrs.get('epochs', 0)} ep, {secs:.0f}s"
    if trial.state == optuna.trial.TrialState.COMPLETE:
        return f"{head} {metric} {trial.values[0]:.4f}  ({epochs}, {attrs.get('params', 0) / 1e6:.2f}M params)"
    reason = attrs.get("pruned_reason") or attrs.get("fail_reason") or ""
    return f"{head} {reason}  ({epochs})"


class _Bar(tqdm):
    """tqdm's bar whose time left is also capped by the study's timeout: a study that stops starting
    trials in 9 minutes must not promise 50 minutes because its trials so far were slow."""

    deadline: float | None = None

    @property
    def format_dict(self) -> dict:
        d = super().format_dict
        estimate = None
        if d["total"] and d["n"] and d["elapsed"]:
            estimate = (d["total"] - d["n"]) * d["elapsed"] / d["n"]
        if self.deadline is not None:
            cap = max(0.0, self.deadline - time.monotonic())
            estimate = cap if estimate is None else min(estimate, cap)
        d["left"] = "?" if estimate is None else tqdm.format_interval(estimate)
        return d


WITH_TOTAL = "{l_bar}{bar}| {n_fmt}/{total_fmt} [{elapsed}<{left}, {rate_fmt}{postfix}]"
NO_TOTAL = "{n_fmt} trials [{elapsed}<{left}, {rate_fmt}{postfix}]"


class Progress:
    """An Optuna callback. ``total`` trials are still to finish in the study (None: until timeout),
    ``done`` had finished when it started. The bar counts the study's finished trials, whichever
    worker ran them: with K workers this process runs only about 1/K of them, and a bar of its own
    would stop short of the total and predict K times the time left."""

    def __init__(self, total: int | None, metric: str, enabled: bool = True, done: int = 0,
                 timeout: float | None = None, job_ends: float | None = None):
        self.metric, self.done = metric, done
        # `run --time`: the bar's own time left is the search's; the whole job's is shown beside it
        self.job_ends = job_ends
        self.plain = enabled and not sys.stderr.isatty()  # a log, not a terminal: lines, no redraws
        self.bar = _Bar(total=total, unit="trial", dynamic_ncols=not self.plain, disable=not enabled,
                        file=io.StringIO() if self.plain else None,  # plain: tqdm keeps count, we print
                        bar_format=WITH_TOTAL if total else NO_TOTAL)
        self.bar.deadline = None if timeout is None else time.monotonic() + timeout
        self.shown = False  # plain: the bar's latest state is the last line written
        self.lagging = False  # a poll failed to read the study, and a line has said so

    @classmethod
    def of_study(cls, study: optuna.Study, trials: int | None, enabled: bool = True,
                 timeout: float | None = None) -> Progress:
        """A bar over what ``study`` still needs to reach ``trials`` finished trials (None: no count)."""
        done = counted(study)[0]
        total = None if trials is None else max(0, trials - done)
        return cls(total, study.user_attrs.get("metric", "value"), enabled=enabled, done=done, timeout=timeout)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.write(trial_line(trial, self.metric))
        self.show_best(study)
        if self.sync(study):
            self._print_state()

    def write(self, line: str) -> None:
        """``line`` on stderr above the bar, which tqdm clears first and draws again below it."""
        if self.plain:
            print(line, file=sys.stderr, flush=True)
            self.shown = False
        else:
            self.bar.write(line, file=sys.stderr)

    def _print_state(self) -> None:
        if self.plain:
            print(tqdm.format_meter(**self.bar.format_dict), file=sys.stderr, flush=True)
            self.shown = True

    def show_best(self, study: optuna.Study) -> None:
        if len(study.directions) > 1:
            self.bar.set_postfix_str(f"Pareto front: {len(study.best_trials)} trials")
            return
        try:
            best = study.best_trial
        except ValueError:  # no completed trial yet
            return
        job = ""
        if self.job_ends is not None:
            job = f"; search phase, whole job {tqdm.format_interval(max(0.0, self.job_ends - time.monotonic()))} left"
        self.bar.set_postfix_str(f"best {self.metric} {best.value:.4f} (trial {best.number}){job}")

    def sync(self, study: optuna.Study) -> bool:
        """Moves the bar to the study's finished trials (a failed one, withdrawn or failed as stale,
        is no verdict and takes no budget: no step); says whether it moved."""
        finished = counted(study)[0] - self.done
        if finished > self.bar.n:  # update(0) would redraw the bar: a line a poll in a piped log
            self.bar.update(finished - self.bar.n)
            return True
        return False

    def poll(self, study: optuna.Study) -> None:
        """``sync`` for a process that runs no trial itself. The best can change only when a trial
        finishes, so it is looked up only when the count moved: most polls cost one query."""
        if self.sync(study):
            self.show_best(study)
            self._print_state()

    def close(self, study: optuna.Study | None = None) -> None:
        """``study``: first count the trials other workers finished after this process's last one."""
        if study is not None:
            self.poll(study)
        if self.plain and not self.shown and self.bar.n:  # the log ends on the study's state
            self._print_state()
        self.bar.close()


@contextlib.contextmanager
def watching(study: optuna.Study, progress: Progress, every: float = 1.0) -> Iterator[Progress]:
    """Keeps ``progress`` level with ``study`` while other processes run its trials (`run --workers`).
    They tell this one nothing: the storage is all they share, and Optuna has no event to wait on,
    so a thread polls it every ``every`` seconds; the main thread is busy waiting on the workers.
    On leaving, the bar takes the study's last count (unless an error is on its way) and closes."""
    stop = threading.Event()
    poller = threading.Thread(target=_poll, args=(study, progress, stop, every), daemon=True)
    if not progress.bar.disable:
        progress.show_best(study)  # a resumed study has a best already
        poller.start()
    ended = False
    try:
        yield progress
        ended = True
    finally:
        stop.set()
        if poller.is_alive():
            poller.join()
        if ended and not progress.bar.disable:
            _poll_once(study, progress)
        progress.close()


def _poll(study: optuna.Study, progress: Progress, stop: threading.Event, every: float) -> None:
    while not stop.wait(every):
        _poll_once(study, progress)


def _poll_once(study: optuna.Study, progress: Progress) -> None:
    try:
        progress.poll(study)
    except Exception as e:  # a storage hiccup costs one update, never the workers' exit status; they report real faults
        if not progress.lagging:  # once: a storage that stays away would say it every second
            progress.lagging = True
            why = (str(e).strip() or type(e).__name__).splitlines()[0]
            progress.write(f"warning: the bar could not read the study ({why}); it may lag behind the workers")
