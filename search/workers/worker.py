"""One worker's loop: run trials until the study's budget is met, with any number of other workers
on the same storage, and stop cleanly on Ctrl-C or SIGTERM.

Optuna's own ``MaxTrialsCallback`` looks only after a trial ends, so K workers overshoot a budget
by up to K-1 trials. Here a worker looks before it starts one too: it starts a trial only while
finished + running trials are fewer than the budget, and once its trial exists it gives way if
finished trials and lower-numbered running or queued ones already fill the budget. While the last trials
run elsewhere it waits rather than leaves: if one of their workers dies, heartbeats fail that
trial, queue its parameters again, and a waiting worker runs them.

A trial whose objective raises (a bug, a CUDA fault) is failed with its traceback kept on the trial;
a few such crashes in a row stop the worker with one line, since the next trials would crash alike.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
import traceback
from collections.abc import Callable, Iterator, Sequence

import optuna
from optuna.trial import TrialState

from gic_common.errors import UserError
from gic_common.knobs import GRACE_BEATS, MAX_CRASHES, MAX_REJECTIONS_PER_TRIAL, TRACEBACK_CHARS
from search.console import log
from search.optuna_private import (
    OPTIMIZE_LOGGER,
    heartbeat_interval,
    heartbeats_on,
    stale_trial_ids,
    study_storage,
    trial_id,
)
from search.trial.budget import FINISHED, budget_counts, takes_budget
from search.workers.storage import RetryStale

__all__ = ["LAUNCHER_PID", "Crashing", "Interrupted", "requeue", "stop_signals", "work"]

TRACEBACK_ATTR = "traceback"
# Set by `run --workers K` for the workers it starts: the process that forwards their stops.
LAUNCHER_PID = "GIC_LAUNCHER_PID"


class Interrupted(Exception):
    """SIGINT or SIGTERM arrived; ``signum`` says which (the exit status is 128 + signum), ``requeued``
    the number of the trial it stopped and queued again (None: it came between trials)."""

    def __init__(self, signum: int, requeued: int | None = None):
        super().__init__(signal.Signals(signum).name)
        self.signum, self.requeued = signum, requeued


class Crashing(UserError):
    """MAX_CRASHES trials in a row raised: the worker stops (the CLI's one line, a non-zero exit)."""


class _Surplus(Exception):
    """This worker's new trial is beyond the budget: workers that asked earlier fill it."""


@contextlib.contextmanager
def stop_signals() -> Iterator[list[int]]:
    """SIGTERM behaves as Ctrl-C does (a KeyboardInterrupt in the main thread), so a scheduler's
    stop, a preemption or ``kill`` leaves the study as tidy as Ctrl-C. Yields the list the signal
    number is appended to."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():
        yield received
        return

    def handler(signum, frame):
        received.append(signum)
        if len(received) == 1:  # a second signal (Ctrl-C reaches a launcher's workers twice) must
            raise KeyboardInterrupt  # not cut short the clean-up the first one started

    old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield received
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _counted_before(study: optuna.Study, number: int) -> int:
    """Trials that take budget before trial ``number``: finished ones, and running or queued ones with
    lower numbers. A queued one counts although it waits: a worker may pop it after this trial
    began, and that worker does not count this later-numbered trial."""
    trials = study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING, TrialState.WAITING))
    return sum(takes_budget(t) or (t.state not in FINISHED and t.number < number) for t in trials)


# Optuna calls its heartbeat retry only for a trial whose beats lapsed; a trial stopped by Ctrl-C or withdrawn, here.
requeue = RetryStale(max_retry=None)  # requeue(study, trial): its parameters (and fixed_params) queued again, no limit


def _fail_stale(study: optuna.Study) -> None:
    """Fails (and so retries) the trials whose heartbeats lapsed, each with its ``fail_reason`` as an
    interrupted one has: a failed trial takes no attribute, so the reason goes on just before.

    It fails exactly the trials it wrote the reason on, as ``optuna.storages.fail_stale_trials`` does
    (state FAIL, then the storage's stale-trial callback), rather than calling that function: it
    asks the storage again, and a trial that crossed the grace period in between was failed
    with no reason (seen once in CI on SQLite, whose clock ticks in whole seconds)."""
    if not heartbeats_on(study):
        return
    storage = study_storage(study)
    reason = (f"no heartbeat for over {GRACE_BEATS * heartbeat_interval(study)} s: its worker died "
              f"(killed, or its machine stopped)")
    failed = []
    for stale in stale_trial_ids(study):
        # Another worker may have failed it first. One that beats again in the moment before the
        # failing below (a worker stalled for 3 beats) keeps running with this reason: rare, and a
        # completed trial's lines never show a fail_reason.
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            storage.set_trial_user_attr(stale, "fail_reason", reason)
            if storage.set_trial_state_values(stale, state=TrialState.FAIL):
                failed.append(stale)
    retry = storage.get_heartbeat_stale_trial_callback()
    for stale in failed if retry is not None else ():
        retry(study, storage.get_trial(stale))


class _Guarded:
    """The objective, behind the budget check that runs once the trial exists."""

    def __init__(self, objective: Callable[[optuna.Trial], float], budget: int | None):
        self.objective, self.budget = objective, budget
        self.current: int | None = None  # the trial id this process runs now
        self.withdrawn = False
        self.interrupted = False
        self.crash: str | None = None  # "Type: message" of the exception the running trial raised

    def __call__(self, trial: optuna.Trial) -> float:
        self.current, self.withdrawn = trial_id(trial), False
        if self.budget is not None and _counted_before(trial.study, trial.number) >= self.budget:
            trial.set_user_attr("fail_reason", "withdrawn: other workers' trials fill the budget")
            self.withdrawn = True
            raise _Surplus
        try:
            return self.objective(trial)
        except KeyboardInterrupt:
            self.interrupted = True
            trial.set_user_attr("fail_reason", "interrupted (Ctrl-C or SIGTERM); queued again")
            raise
        except (optuna.TrialPruned, optuna.exceptions.UpdateFinishedTrialError, UserError):
            raise  # a verdict, another worker's heartbeat check, or the user's to fix: no crash
        except Exception as e:
            self.crash = f"{type(e).__name__}: {e}".splitlines()[0]
            trial.set_user_attr("fail_reason", f"crashed: {self.crash}")
            trial.set_user_attr(TRACEBACK_ATTR, traceback.format_exc()[-TRACEBACK_CHARS:])
            raise


def work(
    study: optuna.Study,
    objective: Callable[[optuna.Trial], float],
    budget: int | None,
    timeout: float | None = None,
    callbacks: Sequence[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = (),
    catch: tuple[type[Exception], ...] = (),
    poll: float = 1.0,
    closed: Callable[[], bool | str | None] | None = None,
) -> None:
    """Runs trials until ``budget`` finished trials exist in the study (all workers together), or
    ``timeout`` seconds pass, or ``closed()`` says no trial can fit the time left (True) or why the
    search should stop (a line to print). Raises Interrupted on
    SIGINT/SIGTERM after failing the running trial and queueing its parameters again, so rerunning
    continues where it stopped."""
    deadline = None if timeout is None else time.monotonic() + timeout
    guarded = _Guarded(objective, budget)
    waits = heartbeats_on(study)  # without heartbeats a dead peer's trial never frees up
    crashes = 0  # consecutive trials that raised
    said_wait = False  # the line about the current wait is out: a poll every few seconds must not repeat it
    with stop_signals() as received, _quiet_expected_ends(guarded):
        try:
            while deadline is None or time.monotonic() < deadline:
                if _launcher_gone():
                    with contextlib.suppress(OSError):  # its pipe, our stdout, may have closed with it
                        log("the `run` that started this worker is gone; stopping (rerun `run` to go on)")
                    return
                why = closed() if closed is not None else None
                if why:
                    log(why if isinstance(why, str) else
                        "no trial of the study so far would fit the time left; stopping")
                    return
                _fail_stale(study)
                finished, rejected, running = budget_counts(study)
                if budget is not None and finished >= budget:
                    return
                if budget is not None and rejected >= MAX_REJECTIONS_PER_TRIAL * budget:
                    log(f"{rejected} trials were rejected before training, {MAX_REJECTIONS_PER_TRIAL}x --trials: "
                        f"the space's draws hardly fit its cost limit; stopping")
                    return
                if budget is not None and finished + len(running) >= budget:
                    if not waits:
                        return
                    if not said_wait:
                        _say_wait(study, running)
                        said_wait = True
                    time.sleep(poll)  # polling the storage is all Optuna offers; no event to wait on
                    continue
                said_wait = False
                guarded.current, guarded.withdrawn, guarded.crash = None, False, None
                crashes = crashes + 1 if _run_one(study, guarded, callbacks, catch) else 0
                if crashes >= MAX_CRASHES:
                    raise Crashing(f"{crashes} trials in a row crashed, the last with {guarded.crash}; stopping "
                                   f"this worker (each trial's {TRACEBACK_ATTR!r} attribute has its traceback)")
                if guarded.withdrawn:
                    _give_back(study, _trial(study, guarded.current))
                guarded.current = None  # a Ctrl-C from here on interrupts no trial
        except KeyboardInterrupt:
            trial = _trial(study, guarded.current)
            stopped = trial is not None and trial.state == TrialState.FAIL
            if stopped:
                requeue(study, trial)
            raise Interrupted(received[-1] if received else signal.SIGINT,
                              trial.number if stopped else None) from None


def _say_wait(study: optuna.Study, running: list[int]) -> None:
    """Why a worker with nothing to run does not leave: a rerun after a kill -9 otherwise sits silent
    for the grace period (GRACE_BEATS heartbeats) waiting on its own dead trial."""
    beat = heartbeat_interval(study)
    which = f"trial{'s' if len(running) > 1 else ''} {', '.join(map(str, running))}"
    log(f"waiting for running {which} (another worker's, or one whose worker died): a trial silent for "
        f"{GRACE_BEATS} heartbeats ({GRACE_BEATS} x {beat} s) is failed and run again, so a dead worker's "
        f"trial frees up within about {GRACE_BEATS * beat} s")


def _launcher_gone() -> bool:
    """Whether this worker was started by `run --workers` and that process has died: nothing would
    forward a Ctrl-C to it any more (its orphan is re-parented, so the parent id changes)."""
    launcher = os.environ.get(LAUNCHER_PID)
    return launcher is not None and os.getppid() != int(launcher)


def _run_one(study: optuna.Study, guarded: _Guarded, callbacks: Sequence, catch: tuple[type[Exception], ...]) -> bool:
    """Runs one trial; True when its objective crashed (Optuna has failed it; one line says so)."""
    try:
        study.optimize(guarded, n_trials=1, callbacks=list(callbacks), catch=(*catch, _Surplus))
    except Exception as e:
        if guarded.crash is not None:
            log(f"trial {_trial(study, guarded.current).number} crashed: {guarded.crash} (failed; its "
                f"traceback is kept as its {TRACEBACK_ATTR!r} attribute)")
            return True
        if not isinstance(e, (ValueError, RuntimeError, AssertionError)):
            raise
        # This process was too slow to beat (a starved host) and another worker failed the trial as
        # stale and queued it again: that retry runs it; carry on. Optuna reports the late result as
        # UpdateFinishedTrialError (a RuntimeError), which its own clean-up turns into an
        # AssertionError when the objective had returned.
        trial = _trial(study, guarded.current)
        if trial is None or trial.state != TrialState.FAIL:
            raise
        log(f"trial {trial.number} was failed by another worker's heartbeat check; it runs again")
    return False


def _trial(study: optuna.Study, storage_id: int | None) -> optuna.trial.FrozenTrial | None:
    return None if storage_id is None else study_storage(study).get_trial(storage_id)


def _give_back(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """A withdrawn trial is no error: one line says so. One that carried parameters (a seed design,
    a warm start, a retry) is queued again, so the race that withdrew it loses no configuration."""
    queued = bool(trial.params or trial.system_attrs.get("fixed_params"))
    if queued:
        requeue(study, trial)
    log(f"trial {trial.number} withdrawn: other workers' trials fill the budget{'; queued again' if queued else ''}")


@contextlib.contextmanager
def _quiet_expected_ends(guarded: _Guarded) -> Iterator[None]:
    """Optuna logs a trial that ends in an exception as a warning with a traceback. Neither a
    withdrawn trial nor an interrupted one is an error: their records give way to the one line
    ``_give_back`` or ``run`` prints (a Ctrl-C must not answer with a screen of traceback); a crashed
    one's, to ``_run_one``'s line."""
    logger = optuna.logging.get_logger(OPTIMIZE_LOGGER)  # where Optuna reports a trial's end

    def keep(record) -> bool:  # a crash's traceback is kept on its trial, and _run_one says it in one line
        return not (guarded.withdrawn or guarded.interrupted or guarded.crash)

    logger.addFilter(keep)
    try:
        yield
    finally:
        logger.removeFilter(keep)
