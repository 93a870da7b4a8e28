"""Faults in one process: CUDA out-of-memory (simulated), memory across 50 trials, exact reruns,
heartbeats on a journal file, and the budget check that keeps concurrent workers from overshooting."""

from __future__ import annotations

import io
import logging
import os
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path

import optuna
import pytest
import sqlalchemy.exc
import torch

import search.after.rerun
import search.cli
import search.journal
import search.trial.objective
import search.workers.launch
import search.workers.worker
from gic_common.errors import UserError
from search.after.rerun import rerun_trial
from search.config import StudyConfig
from search.trial.inputs import load_data, to_device
from search.trial.oom import OOM_CONSTRAINT, oom_verdict
from search.trial.train import Diverged, EpochResult
from search.workers.launch import check_storage, launch_workers, placements
from search.workers.run import run_study
from search.workers.storage import open_storage
from search.workers.worker import LAUNCHER_PID, _Guarded, _Surplus, work
from spaces import cnn

# A small fixed cnn configuration (about 0.2M parameters with Adam's state): big enough that
# keeping every trial's model alive would show in the process's memory, small enough to be quick.
SMALL = {
    **cnn.SEED000, "n_conv": 2, "filters_l0": 32, "filters_l1": 64, "padding": "same", "n_dense": 1,
    "dense_units_l0": 128, "batch_size": 32, "lr": 3e-3,
}
for key in ("filters_l2", "filters_l3", "kernel_l2", "kernel_l3", "reduce_l2", "reduce_l3",
            "dropout_l2", "dropout_l3", "dense_units_l1", "dense_dropout_l1"):
    SMALL.pop(key)


@pytest.fixture
def one_thread():
    """One torch thread: on a shared 2-core machine two threads spin against each other (10x slower)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def objective_on(data: Path, epochs: int = 1) -> search.trial.objective.Objective:
    ds = load_data(data)
    settings = search.trial.objective.TrialSettings(cnn, ds.in_shape, epochs, "accuracy", 0)
    return search.trial.objective.Objective(settings, to_device(ds, torch.device("cpu")))


# --- CUDA out of memory -------------------------------------------------------------------------

def test_oom_trial_is_pruned_infeasible_and_the_study_goes_on(small_data, monkeypatch, one_thread):
    objective = objective_on(small_data)
    real_fit = search.trial.objective.fit
    calls = []

    def fit_that_runs_out_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB (GPU 0; 7.9 GiB total)")
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(search.trial.objective, "fit", fit_that_runs_out_once)
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial(SMALL)
    study.enqueue_trial(SMALL)
    work(study, objective, budget=2)
    oom, ok = study.trials
    assert oom.state == optuna.trial.TrialState.PRUNED
    assert oom.constraints[OOM_CONSTRAINT] > 0  # the sampler sees it as infeasible, not as missing
    assert oom.user_attrs["oom"] and "Tried to allocate 8.00 GiB" in oom.user_attrs["pruned_reason"]
    assert ok.state == optuna.trial.TrialState.COMPLETE and ok.constraints == {}
    assert study.best_trial.number == ok.number


def _oom_proposals(as_constraint: bool) -> int:
    """TPE on a one-parameter space whose upper 40% does not fit: the value rises towards the
    edge, so a sampler that cannot see the failures keeps walking into them (optuna#3472)."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.TPESampler(seed=0, n_startup_trials=5))
    ooms = []

    def objective(trial):
        width = trial.suggest_float("width", 0.0, 1.0)
        if width > 0.6:
            ooms.append(width)
            error = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
            raise oom_verdict(trial, error) if as_constraint else error
        return width

    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)  # 40 "trial failed" warnings say nothing here
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            study.optimize(objective, n_trials=40, catch=(torch.OutOfMemoryError,))
    finally:
        optuna.logging.set_verbosity(verbosity)
    return len(ooms)


def test_the_sampler_learns_from_oom_constraints_and_not_from_failures():
    failed, constrained = _oom_proposals(as_constraint=False), _oom_proposals(as_constraint=True)
    assert failed > 30  # FAIL: nearly every proposal after the start-up trials runs out of memory
    assert constrained < failed / 1.5


# --- memory across trials -----------------------------------------------------------------------

@pytest.mark.slow
def test_no_memory_growth_across_50_trials(small_data, one_thread):
    objective = objective_on(small_data)
    study = optuna.create_study(direction="maximize", pruner=optuna.pruners.NopPruner())
    for _ in range(50):
        study.enqueue_trial(SMALL)
    rss: dict[int, float] = {}

    def measure(study, trial):  # the objective has collected the trial's garbage already
        rss[trial.number] = rss_mb()

    work(study, objective, budget=50, callbacks=[measure])
    assert len(rss) == 50 and all(t.state == optuna.trial.TrialState.COMPLETE for t in study.trials)
    growth = rss[49] - rss[9]  # after the allocator and the caches have warmed up
    print(f"RSS after trial 10: {rss[9]:.1f} MB, after trial 50: {rss[49]:.1f} MB, growth {growth:+.1f} MB")
    # One leaked model with its optimizer state is about 1.5 MB here: 40 of them would be 60 MB.
    assert growth < 15, rss


# --- reproducibility ----------------------------------------------------------------------------

@pytest.mark.slow
def test_rerun_reproduces_a_learning_curve_exactly(small_data, tmp_path, one_thread, capsys):
    cfg = StudyConfig(space="cnn", data=small_data, study="rerun", storage=f"sqlite:///{tmp_path / 's.db'}",
                      trials=2, epochs=2, device="cpu", pruner={"name": "none"}, heartbeat=None)
    study = run_study(cfg, progress=False)
    torch.set_num_threads(2)  # the rerun restores the thread count the trial recorded
    for trial in study.trials:
        result = rerun_trial(study, trial.number, "cpu", show=lambda line: None)
        assert len(result.stored) == 2
        assert result.identical, (result.stored, result.again, result.stored_loss, result.again_loss)
        assert torch.get_num_threads() == 1
    from search.cli import main

    assert main(["rerun", "--storage", cfg.storage, "--study", "rerun", "--trial", "1"]) == 0
    assert "reproduced exactly (2 epochs)" in capsys.readouterr().out


def test_rerun_restores_the_recorded_thread_count_not_one_read_from_the_device_text(small_data, monkeypatch):
    # The count was parsed back out of the device description ("cpu (N threads)") with a regex; the
    # objective now records it as a number of its own.
    study = optuna.create_study(direction="maximize")
    for key, value in (("space", "cnn"), ("data", str(small_data)), ("epochs", 1), ("metric", "accuracy")):
        study.set_user_attr(key, value)
    study.enqueue_trial(SMALL)

    def untrained(trial):  # a finished trial with the stored attributes a rerun reads, and no training
        cnn.suggest(trial)
        trial.report(0.5, 1)
        for key, value in (("seed", 1), ("device", "a CPU described otherwise"), ("threads", 1),
                           ("train_loss", [1.0])):
            trial.set_user_attr(key, value)
        return 0.5

    study.optimize(untrained, n_trials=1)
    seen = []
    monkeypatch.setattr(search.after.rerun, "fit", lambda *args, **kwargs: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        rerun_trial(study, 0, "cpu", show=lambda line: None)
    finally:
        torch.set_num_threads(before)
    assert seen == [1]


@pytest.mark.slow
def test_rerun_of_a_multi_objective_trial_compares_its_stored_curve(small_data, tmp_path, one_thread):
    # Optuna takes no intermediate values from a multi-objective trial; its curve is a user attribute.
    cfg = StudyConfig(space="cnn", data=small_data, study="rerun-mo", storage=f"sqlite:///{tmp_path / 's.db'}",
                      trials=1, epochs=2, device="cpu", objectives="accuracy,params", heartbeat=None)
    study = run_study(cfg, progress=False)
    result = rerun_trial(study, 0, "cpu", show=lambda line: None)
    assert len(result.stored) == 2 and result.identical, (result.stored, result.again)


def test_rerun_that_diverges_where_the_trial_did_not_is_one_line(small_data, tmp_path, one_thread, monkeypatch):
    cfg = StudyConfig(space="cnn", data=small_data, study="rerun-nan", storage=f"sqlite:///{tmp_path / 's.db'}",
                      trials=1, epochs=2, device="cpu", heartbeat=None)
    study = run_study(cfg, progress=False)

    def diverges_in_epoch_2(model, data, train_cfg, *, on_epoch, **kwargs):  # as on another device
        on_epoch(EpochResult(1, 1.0, 0.1, 1e-3, accuracy=0.0, macro_f1=0.0))
        raise Diverged("training loss became nan in epoch 2 (lr 0.001)")

    monkeypatch.setattr(search.after.rerun, "fit", diverges_in_epoch_2)
    with pytest.raises(UserError, match=r"trial 0 diverged in this rerun after 1 of its 2 stored epochs .*"
                                        r"not reproduced here"):
        rerun_trial(study, 0, "cpu", show=lambda line: None)


def test_retried_trial_keeps_the_seed_of_the_trial_it_retries():
    study = optuna.create_study()
    first = study.ask()
    first.suggest_float("x", 0, 1)
    study.tell(first, state=optuna.trial.TrialState.FAIL)
    from search.workers.worker import requeue

    requeue(study, study.trials[0])
    retry = study.ask()
    assert retry.number == 1 and search.trial.objective.origin_number(retry) == 0
    assert search.trial.objective.origin_number(first) == 0


# --- heartbeats on a journal file ---------------------------------------------------------------

def test_journal_heartbeat_fails_and_requeues_a_silent_trial(tmp_path, monkeypatch):
    url = f"journal://{tmp_path / 'hb.log'}"
    study = optuna.create_study(storage=open_storage(url, heartbeat=2), study_name="hb")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ask() outside optimize() warns that heartbeats need optimize()
        trial = study.ask()
        trial.suggest_int("width", 1, 100)
        study._storage.record_heartbeat(trial._trial_id)
        optuna.storages.fail_stale_trials(study)
        assert study.trials[0].state == optuna.trial.TrialState.RUNNING  # beating: alive
        now = search.journal.time.time()
        monkeypatch.setattr(search.journal.time, "time", lambda: now + 7)  # > 3 missed beats later
        optuna.storages.fail_stale_trials(study)
    reopened = optuna.load_study(study_name="hb", storage=open_storage(url))  # what another process sees
    dead, retry = reopened.trials
    assert dead.state == optuna.trial.TrialState.FAIL
    assert retry.state == optuna.trial.TrialState.WAITING and retry.params == dead.params
    assert retry.system_attrs["failed_trial"] == dead.number


@pytest.mark.parametrize("store", ["journal", "sqlite"])
def test_a_wait_for_a_dead_runs_trial_says_so_once_and_its_failure_records_why(store, tmp_path, capfd):
    # A `run` killed with SIGKILL left trial 0 RUNNING; the rerun has nothing else to do (budget 1), so
    # it waits for that trial's heartbeats to lapse (3 beats of 1 s here), fails it and runs its retry.
    url = f"journal://{tmp_path / 'hb.log'}" if store == "journal" else f"sqlite:///{tmp_path / 'hb.db'}"
    study = optuna.create_study(storage=open_storage(url, heartbeat=1), study_name="hb")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ask() outside optimize() warns that heartbeats need optimize()
        dead = study.ask()
        dead.suggest_float("x", 0, 1)
        dead.set_user_attr("design", "seed000-cnn")
        study._storage.record_heartbeat(dead._trial_id)  # its last beat: the killed process beats no more
    work(study, lambda t: t.suggest_float("x", 0, 1), budget=1, timeout=30, poll=0.1)
    err = capfd.readouterr().err
    waits = [line for line in err.splitlines() if line.startswith("waiting")]
    assert len(waits) == 1, err  # once for the wait, not once for each of its ~30 polls
    assert "trial 0" in waits[0] and "3 heartbeats" in waits[0], waits[0]
    failed, retry = study.get_trials(deepcopy=False)
    assert failed.state == optuna.trial.TrialState.FAIL
    assert failed.user_attrs["fail_reason"].startswith("no heartbeat for "), failed.user_attrs
    assert "its worker died" in failed.user_attrs["fail_reason"]
    assert retry.state == optuna.trial.TrialState.COMPLETE and retry.params == failed.params
    assert retry.system_attrs["failed_trial"] == 0
    assert retry.user_attrs == {"design": "seed000-cnn"}  # the retry keeps its attributes, not the verdict


def test_a_trial_that_goes_stale_between_the_check_and_the_failing_still_gets_its_reason(tmp_path, monkeypatch):
    # The race CI met once on SQLite: the storage answered "nothing stale" when the reason was
    # written, and "trial 0 stale" when it was asked again to fail the trials a moment later. Here the
    # storage flips between those answers on every question, so only one question per check is safe.
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'race.db'}", heartbeat=1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ask() outside optimize() warns that heartbeats need optimize()
        dead = study.ask()
        dead.suggest_float("x", 0, 1)
    storage, answers = study._storage, iter([[], [dead._trial_id]] * 50)
    monkeypatch.setattr(storage, "_get_stale_trial_ids", lambda study_id: next(answers))
    work(study, lambda t: t.suggest_float("x", 0, 1), budget=1, timeout=30, poll=0.01)
    failed, retry = study.get_trials(deepcopy=False)
    assert failed.state == optuna.trial.TrialState.FAIL
    assert failed.user_attrs.get("fail_reason", "").startswith("no heartbeat for "), failed.user_attrs
    assert retry.state == optuna.trial.TrialState.COMPLETE and retry.params == failed.params


def test_a_heartbeat_retry_does_not_carry_the_failed_trials_verdict(tmp_path):
    # Optuna's RetryHeartbeatStaleTrialCallback copies the failed trial's user attributes to the retry;
    # a retry is no failure (requeue() drops the verdict too).
    study = optuna.create_study(storage=open_storage(f"sqlite:///{tmp_path / 'r.db'}", heartbeat=1))
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.FAIL, params={"x": 0.5},
        distributions={"x": optuna.distributions.FloatDistribution(0, 1)},
        user_attrs={"design": "seed000-cnn", "fail_reason": "no heartbeat for 3 s: its worker died"},
    ))
    study._storage.get_heartbeat_stale_trial_callback()(study, study.trials[0])
    retry = study.trials[1]
    assert retry.state == optuna.trial.TrialState.WAITING and retry.params == {"x": 0.5}
    assert retry.user_attrs == {"design": "seed000-cnn"}
    assert retry.system_attrs["failed_trial"] == 0 and retry.system_attrs["retry_history"] == [0]


def test_storage_forms():
    assert search.journal.journal_path("journal:///abs/s.log") == Path("/abs/s.log")
    assert search.journal.journal_path("runs/s.log") == Path("runs/s.log")
    assert search.journal.journal_path("sqlite:///s.db") is None
    with pytest.raises(UserError, match="SQLite file cannot take 3 concurrent workers"):
        check_storage("sqlite:///studies/search.db", 3)
    check_storage("journal:///tmp/s.log", 3)
    check_storage("postgresql://u@db/optuna", 8)
    with pytest.raises(UserError, match="cannot open storage"):
        open_storage("journal:///proc/no/such/folder/s.log")


def test_a_sqlite_file_in_a_folder_not_yet_made_gets_its_folder(tmp_path):
    url = f"sqlite:///{tmp_path / 'new' / 'studies' / 's.db'}"
    optuna.create_study(study_name="s", storage=open_storage(url))  # SQLite alone: "unable to open database file"
    assert [s.study_name for s in optuna.get_all_study_summaries(url)] == ["s"]
    with pytest.raises(UserError, match="cannot open storage"):  # a folder that cannot be made is still one line
        open_storage("sqlite:////proc/no/such/folder/s.db")


def test_a_new_database_opened_by_another_process_at_the_same_moment_is_opened_again(tmp_path, monkeypatch):
    # Two bench jobs started on one new SQLite file: the later one's CREATE TABLE failed with "table
    # study_directions already exists" and the job died. Here the first open meets that error.
    url = f"sqlite:///{tmp_path / 's.db'}"
    opens, error = [], "table study_directions already exists"

    class Racing(optuna.storages.RDBStorage):
        def __init__(self, *args, **kwargs):
            opens.append(1)
            super().__init__(*args, **kwargs)  # the first time, as the other process: it makes the tables
            if len(opens) == 1 or error != "table study_directions already exists":
                raise sqlalchemy.exc.OperationalError("CREATE TABLE study_directions", {}, Exception(error))

    monkeypatch.setattr(optuna.storages, "RDBStorage", Racing)
    optuna.create_study(study_name="s", storage=open_storage(url))
    assert len(opens) == 2 and [s.study_name for s in optuna.get_all_study_summaries(url)] == ["s"]
    opens.clear()
    error = "disk I/O error"
    with pytest.raises(UserError, match="disk I/O error"):  # any other error is not retried: one line
        open_storage(url)
    assert len(opens) == 1


def test_processes_opening_one_new_sqlite_file_at_once_all_open_it(tmp_path):
    # Each process imports first, then all open the file at one agreed instant, as two jobs started together do.
    url = f"sqlite:///{tmp_path / 'together.db'}"
    opener = ("import sys, time; from search.workers.storage import open_storage; import optuna\n"
              "while time.time() < float(sys.argv[3]): pass\n"
              "optuna.create_study(study_name=sys.argv[1], storage=open_storage(sys.argv[2], heartbeat=1))")
    at = str(time.time() + 4)
    runs = [subprocess.Popen([sys.executable, "-c", opener, f"s{i}", url, at], stderr=subprocess.PIPE, text=True)
            for i in range(4)]
    for run in runs:
        assert run.wait(timeout=120) == 0, run.stderr.read()
    assert sorted(s.study_name for s in optuna.get_all_study_summaries(url)) == ["s0", "s1", "s2", "s3"]


# --- the budget across workers ------------------------------------------------------------------

def test_a_worker_starts_nothing_when_running_trials_fill_the_budget():
    study = optuna.create_study()
    study.tell(study.ask(), 1.0)
    others = [study.ask(), study.ask()]  # two other workers' running trials
    work(study, lambda t: 0.0, budget=3)  # no heartbeats: nothing to wait for, so it leaves
    assert len(study.trials) == 3
    # A worker that lost the race (asked after the others) withdraws its trial instead of running it.
    late = study.ask()
    with pytest.raises(_Surplus):
        _Guarded(lambda t: 0.0, budget=3)(late)
    assert others[0].number < others[1].number < late.number
    # While one of the earlier ones is still short of the budget, the same check lets it run.
    assert _Guarded(lambda t: 0.5, budget=3)(others[1]) == 0.5


@pytest.mark.parametrize("ends", ["returns", "is pruned"])
def test_a_trial_failed_by_another_workers_heartbeat_check_does_not_stop_this_worker(ends, capfd):
    study = optuna.create_study()

    def starved(trial):
        if trial.number > 0:
            return 0.5
        # Another worker judged this trial stale meanwhile: it failed it (and would queue a retry).
        study._storage.set_trial_state_values(trial._trial_id, optuna.trial.TrialState.FAIL)
        if ends == "is pruned":
            raise optuna.TrialPruned("late verdict")
        return 1.0

    work(study, starved, budget=1)  # carries on to a second trial, which finishes the budget
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.COMPLETE]
    assert "was failed by another worker's heartbeat check" in capfd.readouterr().err


def test_crashing_trials_are_failed_with_their_traceback_and_three_in_a_row_stop_the_worker(capfd):
    # The crash was taken for another worker's heartbeat check: one worker failed 419 trials in 2 s.
    verbosity, optuna_log = optuna.logging.get_verbosity(), logging.StreamHandler(io.StringIO())
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # as the CLI runs: Optuna's warnings show
    logging.getLogger("optuna").addHandler(optuna_log)
    study = optuna.create_study()

    fault = "CUDA error: an illegal memory access was encountered"

    def buggy(trial):
        trial.suggest_float("x", 0, 1)
        raise RuntimeError(fault)

    try:
        with pytest.raises(search.workers.worker.Crashing,
                           match="3 trials in a row crashed, the last with RuntimeError: "
                                 "CUDA error: an illegal memory access"):
            work(study, buggy, budget=10, timeout=5)
    finally:
        optuna.logging.set_verbosity(verbosity)
        logging.getLogger("optuna").removeHandler(optuna_log)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL] * 3
    for trial in study.trials:
        assert trial.user_attrs["fail_reason"] == f"crashed: RuntimeError: {fault}"
        assert trial.user_attrs["traceback"].startswith("Traceback") and "in buggy" in trial.user_attrs["traceback"]
    err = optuna_log.stream.getvalue() + capfd.readouterr().err
    assert "heartbeat" not in err and "Traceback" not in err, err
    assert err.count("crashed: RuntimeError") == 3, err  # one line a trial


def test_a_crash_now_and_then_does_not_stop_the_worker(capfd):
    study = optuna.create_study()

    def flaky(trial):
        if trial.number % 3 == 2:
            raise ValueError("a configuration the code mishandles")
        return trial.suggest_float("x", 0, 1)

    work(study, flaky, budget=6, timeout=30)
    states = [t.state for t in study.trials]
    assert states.count(optuna.trial.TrialState.COMPLETE) == 6 and states.count(optuna.trial.TrialState.FAIL) == 2


def test_a_worker_stopped_by_crashes_is_one_line_and_a_non_zero_exit(small_data, tmp_path, monkeypatch, capfd):
    def broken(self, trial):
        raise AssertionError("a bug")

    monkeypatch.setattr(search.trial.objective.Objective, "__call__", broken)
    code = search.cli.main(["run", "cnn", "--data", str(small_data), "--storage", f"sqlite:///{tmp_path / 's.db'}",
                            "--trials", "5", "--epochs", "1", "--device", "cpu", "--no-progress", "--timeout", "60"])
    err = capfd.readouterr().err
    assert code == 2 and err.splitlines()[-1].startswith("error: 3 trials in a row crashed"), err
    assert "Traceback" not in err, err


def finish_elsewhere_during_the_check(monkeypatch):
    """Another worker's trial finishes between this worker's look at the budget and its trial's own
    check: the race that makes a worker withdraw the trial it just began."""
    check = search.workers.worker._counted_before

    def racing(study, number):
        monkeypatch.setattr(search.workers.worker, "_counted_before", check)  # once
        study.add_trial(optuna.trial.create_trial(state=optuna.trial.TrialState.COMPLETE, value=1.0))
        return check(study, number)

    monkeypatch.setattr(search.workers.worker, "_counted_before", racing)


@pytest.mark.parametrize("queued_as", ["seed design", "retry"])
def test_a_withdrawn_queued_trial_is_queued_again_as_it_was(queued_as, monkeypatch, capfd):
    verbosity, optuna_log = optuna.logging.get_verbosity(), logging.StreamHandler(io.StringIO())
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # as the CLI runs: Optuna's warnings show
    logging.getLogger("optuna").addHandler(optuna_log)  # what Optuna's own handler would print
    study = optuna.create_study()
    other = study.ask()  # another worker's running trial
    if queued_as == "seed design":
        study.enqueue_trial({"x": 0.25}, user_attrs={"design": "seed"})
    else:
        study.add_trial(optuna.trial.create_trial(
            state=optuna.trial.TrialState.FAIL, params={"x": 0.25},
            distributions={"x": optuna.distributions.FloatDistribution(0, 1)}, user_attrs={"design": "seed"}))
        search.workers.worker.requeue(study, study.trials[-1])
    finish_elsewhere_during_the_check(monkeypatch)
    try:
        work(study, lambda t: t.suggest_float("x", 0, 1), budget=2)
    finally:
        optuna.logging.set_verbosity(verbosity)
        logging.getLogger("optuna").removeHandler(optuna_log)
        logging.getLogger("optuna").removeHandler(optuna_log)
    withdrawn = study.trials[-3]  # then the race's finished trial, then the trial queued again
    assert withdrawn.user_attrs["fail_reason"].startswith("withdrawn")
    err = optuna_log.stream.getvalue() + capfd.readouterr().err
    assert "Traceback" not in err and "_Surplus" not in err, err  # a withdrawal is no error
    assert err.count("withdrawn") == 1, err

    study.tell(other, 0.5)
    work(study, lambda t: t.suggest_float("x", 0, 1), budget=3)  # runs the queued trial
    again = study.trials[-1]
    assert again.state == optuna.trial.TrialState.COMPLETE and again.system_attrs["failed_trial"] >= 1
    assert again.params == {"x": 0.25} and again.user_attrs["design"] == "seed"  # not a random x under its name


def test_an_interrupted_trial_is_one_line_not_a_traceback(capfd):
    verbosity, optuna_log = optuna.logging.get_verbosity(), logging.StreamHandler(io.StringIO())
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # as the CLI runs: Optuna's warnings show
    logging.getLogger("optuna").addHandler(optuna_log)  # what Optuna's own handler would print
    study = optuna.create_study()

    def pressed_ctrl_c(trial):
        trial.suggest_float("x", 0, 1)
        raise KeyboardInterrupt

    try:
        with pytest.raises(search.workers.worker.Interrupted) as stop:
            work(study, pressed_ctrl_c, budget=2)
    finally:
        optuna.logging.set_verbosity(verbosity)
        logging.getLogger("optuna").removeHandler(optuna_log)
    err = optuna_log.stream.getvalue() + capfd.readouterr().err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.FAIL, optuna.trial.TrialState.WAITING]
    assert stop.value.requeued == 0


def test_a_stop_between_trials_requeues_nothing_and_says_so():
    # `run` said "the running trial is marked failed and queued again" even when none was running.
    def pressed_ctrl_c(study, trial):  # as the trial has just ended
        raise KeyboardInterrupt

    study = optuna.create_study()
    with pytest.raises(search.workers.worker.Interrupted) as stop:
        work(study, lambda t: t.suggest_float("x", 0, 1), budget=3, callbacks=[pressed_ctrl_c])
    assert stop.value.requeued is None
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE]


def test_a_trial_queued_earlier_but_popped_later_counts_before_a_new_one():
    study = optuna.create_study()
    study.tell(study.ask(), 1.0)
    study.enqueue_trial({"x": 0.5})  # trial 1: queued, not yet popped
    late = optuna.Trial(study, study._storage.create_new_trial(study._study_id))  # trial 2: a new one, begun first
    with pytest.raises(_Surplus):  # trial 1 is another worker's to pop, and that worker won't count trial 2
        _Guarded(lambda t: 0.0, budget=2)(late)
    assert _Guarded(lambda t: 0.0, budget=2)(study.ask()) == 0.0  # the queued one, popped now, runs


def test_gpu_placement():
    assert [p.gpu for p in placements(None, "0,1", 2)] == ["0", "0", "1", "1"]
    assert [p.gpu for p in placements(3, None, None)] == [None, None, None]
    with pytest.raises(UserError, match="does not match"):
        placements(3, "0,1", 2)
    with pytest.raises(UserError, match="distinct GPU numbers"):
        placements(None, "0,0", None)



def sleepers(monkeypatch, before_start) -> list[subprocess.Popen]:
    """Workers that only sleep, each started after ``before_start(the ones started so far)``."""
    started, spawn = [], subprocess.Popen

    def popen(cmd, **kwargs):
        before_start(started)
        started.append(spawn(["sleep", "60"], **kwargs))
        return started[-1]

    monkeypatch.setattr(search.workers.launch.subprocess, "Popen", popen)
    return started


def test_a_worker_that_fails_to_start_stops_those_started(monkeypatch):
    def fail_second(started):
        if started:
            raise OSError("Resource temporarily unavailable")

    started = sleepers(monkeypatch, fail_second)
    try:
        with pytest.raises(OSError):
            launch_workers(optuna.create_study(), "journal:///s.log", placements(3, None, None), "cpu", None)
        assert len(started) == 1 and started[0].returncode == -signal.SIGTERM
    finally:
        for proc in started:
            proc.kill()


def test_a_stop_while_workers_start_reaches_those_started_and_starts_no_more(monkeypatch):
    def stop_after_first(started):
        if started:  # a scheduler stops the job just as the first worker started, before forward() knows it
            os.kill(os.getpid(), signal.SIGTERM)

    def unforwarded(signum, frame):
        raise AssertionError("SIGTERM came to the launcher before it forwards signals")

    started = sleepers(monkeypatch, stop_after_first)
    before = signal.signal(signal.SIGTERM, unforwarded)
    try:
        code = launch_workers(optuna.create_study(), "journal:///s.log", placements(3, None, None), "cpu", None)
    finally:
        signal.signal(signal.SIGTERM, before)
        for proc in started:
            proc.kill()
    assert len(started) == 2 and code == 128 + signal.SIGTERM  # as a shell reports a process a signal ended
    assert [proc.returncode for proc in started] == [-signal.SIGTERM, -signal.SIGTERM]


def test_a_worker_killed_outright_is_named_and_the_launcher_exits_as_a_shell_would(monkeypatch, capfd):
    suicide = "import os, signal, time; time.sleep(0.2 * int(os.environ['N'])); os.kill(os.getpid(), signal.SIGKILL)"
    numbers, spawn = iter(range(2)), subprocess.Popen

    def popen(cmd, **kwargs):  # worker 0 is killed, worker 1 too, a moment later
        kwargs["env"] = {**kwargs["env"], "N": str(next(numbers))}
        return spawn([sys.executable, "-c", suicide], **kwargs)

    monkeypatch.setattr(search.workers.launch.subprocess, "Popen", popen)
    code = launch_workers(optuna.create_study(), "journal:///s.log", placements(2, None, None), "cpu", None)
    assert code == 128 + signal.SIGKILL  # 137, not Python's -9 (which `raise SystemExit` turns into 247)
    err = capfd.readouterr().err
    assert "[worker 0] killed by SIGKILL" in err and "[worker 1] killed by SIGKILL" in err


def test_a_worker_whose_launcher_is_gone_stops_after_its_trial(monkeypatch, capfd):
    # A killed `run --workers 3` left its workers training on, unsupervised, until the budget was met.
    study = optuna.create_study()

    def objective(trial):
        monkeypatch.setenv(LAUNCHER_PID, str(os.getppid() + 1))  # the launcher dies during this trial
        return 0.0

    monkeypatch.setenv(LAUNCHER_PID, str(os.getppid()))
    work(study, objective, budget=5)
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.COMPLETE]  # finished, then stopped
    assert "the `run` that started this worker is gone" in capfd.readouterr().err
