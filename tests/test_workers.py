"""Many worker processes on one study, against a real PostgreSQL server and a journal file: the
budget is met exactly, a SIGKILLed worker's trial is retried with its parameters, SIGTERM leaves a
study that the next worker continues, and the study stays readable while they write."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import optuna
import pytest

from search.config import StudyConfig
from search.workers.run import prepare_study
from search.workers.storage import load_study
from search.workers.worker import FINISHED

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
WAIT = 120  # seconds a worker may take at most; the tests finish far sooner
# Short, so a killed worker's trial is retried within seconds; not 1, which a starved test machine
# can miss three times in a row (a live trial failed as stale is survived, but muddles the tests).
HEARTBEAT = 2


@pytest.fixture(params=["journal", pytest.param("postgres", marks=pytest.mark.postgres)])
def storage(request, tmp_path) -> str:
    if request.param == "journal":
        return f"journal://{tmp_path / 'study.log'}"
    return request.getfixturevalue("postgres_url")


def create(name: str, storage: str, data: Path, trials: int, epochs: int = 1) -> StudyConfig:
    """Creates the study (settings, seed design queued) as `run` does, without running a trial."""
    cfg = StudyConfig(space="cnn", data=data, study=name, storage=storage, trials=trials, epochs=epochs,
                      device="cpu", pruner={"name": "none"}, sampler={"name": "tpe", "n_startup_trials": 3},
                      heartbeat=HEARTBEAT)
    prepare_study(cfg)
    return cfg


def start_worker(cfg: StudyConfig) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")  # 3 workers share 2 busy cores
    return subprocess.Popen(
        [sys.executable, "-m", "search", "worker", "--study", cfg.study, "--storage", cfg.storage,
         "--device", "cpu", "--heartbeat", str(HEARTBEAT), "--no-progress"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )


def study_of(cfg: StudyConfig) -> optuna.Study:
    return load_study(cfg.study, cfg.storage)


def finished(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return [t for t in study.get_trials(deepcopy=False) if t.state in FINISHED]


def param_key(trial: optuna.trial.FrozenTrial) -> str:
    return json.dumps(trial.params, sort_keys=True)


def wait_all(procs: list[subprocess.Popen]) -> list[str]:
    outs = [p.communicate(timeout=WAIT)[0] for p in procs]
    for p, out in zip(procs, outs, strict=True):
        assert p.returncode == 0, out
    return outs


def running_trial_of(study: optuna.Study, pid: int, after_epoch: int) -> optuna.trial.FrozenTrial | None:
    for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        if t.user_attrs.get("worker", "").endswith(f":{pid}") and len(t.intermediate_values) >= after_epoch:
            return t
    return None


def test_three_workers_finish_exactly_n_trials(storage, small_data):
    cfg = create("three", storage, small_data, trials=7)
    procs = [start_worker(cfg) for _ in range(3)]
    seen = 0
    while any(p.poll() is None for p in procs):
        # Another process reads the study while three write to it: always consistent, never over.
        done = len(finished(study_of(cfg)))
        assert seen <= done <= 7
        seen = done
        time.sleep(0.5)  # observing, not synchronising: the loop ends when the processes do
    wait_all(procs)
    study = study_of(cfg)
    trials = study.get_trials(deepcopy=False)
    done = finished(study)
    assert len(done) == 7  # the whole study's budget, not 7 per worker
    assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING]
    assert len({param_key(t) for t in done}) == 7  # no two workers trained the same configuration
    assert [t.user_attrs.get("design") for t in trials].count("seed000-cnn") == 1
    assert len({t.user_attrs["worker"] for t in done}) >= 2  # the work was shared


def test_killed_worker_trial_is_retried_by_another(storage, small_data):
    # The victim starts alone, and its peers only once it is dead: with all three running from the
    # start, tiny trials could let the victim's share of the budget end before it is caught mid-trial.
    cfg = create("killed", storage, small_data, trials=5, epochs=3)
    victim, trial = start_worker(cfg), None
    deadline = time.monotonic() + WAIT
    while trial is None:  # wait until the victim is past its trial's first epoch, two still to go
        assert time.monotonic() < deadline and victim.poll() is None, "the worker never ran a trial"
        trial = running_trial_of(study_of(cfg), victim.pid, after_epoch=1)
        time.sleep(0.1)  # observing: a busy loop would starve the workers of CPU
    victim.send_signal(signal.SIGKILL)
    victim.communicate(timeout=WAIT)
    wait_all([start_worker(cfg) for _ in range(2)])

    study = study_of(cfg)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    killed = trials[trial.number]
    assert killed.state == optuna.trial.TrialState.FAIL  # failed by the others' heartbeat check
    retries = [t for t in trials.values() if t.system_attrs.get("failed_trial") == killed.number]
    assert len(retries) == 1
    retry = retries[0]
    assert retry.state in FINISHED and retry.params == killed.params
    assert retry.user_attrs["seed"] == killed.user_attrs["seed"]  # it trains as the original would have
    assert not retry.user_attrs["worker"].endswith(f":{victim.pid}")
    assert len(finished(study)) == 5


def test_sigterm_stops_cleanly_and_the_next_worker_continues(tmp_path, small_data):
    cfg = create("stopped", f"journal://{tmp_path / 'study.log'}", small_data, trials=3, epochs=3)
    proc = start_worker(cfg)
    trial = None
    deadline = time.monotonic() + WAIT
    while trial is None:
        assert time.monotonic() < deadline and proc.poll() is None, "the worker never ran a trial"
        trial = running_trial_of(study_of(cfg), proc.pid, after_epoch=1)
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    out = proc.communicate(timeout=WAIT)[0]
    assert proc.returncode == 128 + signal.SIGTERM, out
    assert "interrupted" in out

    study = study_of(cfg)
    trials = {t.number: t for t in study.get_trials(deepcopy=False)}
    stopped = trials[trial.number]
    assert stopped.state == optuna.trial.TrialState.FAIL  # not left RUNNING for anyone to wait on
    assert "interrupted" in stopped.user_attrs["fail_reason"]
    waiting = [t for t in trials.values() if t.state == optuna.trial.TrialState.WAITING]
    requeued = [t for t in waiting if t.system_attrs.get("failed_trial") == trial.number]
    assert [t.params for t in requeued] == [stopped.params]  # queued again, once, as it was

    wait_all([start_worker(replace(cfg))])  # the same command again continues the study
    study = study_of(cfg)
    assert len(finished(study)) == 3
    retry = next(t for t in study.get_trials(deepcopy=False) if t.system_attrs.get("failed_trial") == trial.number)
    assert retry.state in FINISHED and retry.user_attrs["seed"] == stopped.user_attrs["seed"]


def test_run_with_local_workers(tmp_path, small_data, monkeypatch, capfd):
    from search.cli import main

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    url = f"journal://{tmp_path / 'local.log'}"
    common = ["run", "cnn", "--data", str(small_data), "--storage", url, "--study", "local", "--epochs", "1",
              "--device", "cpu", "--heartbeat", str(HEARTBEAT), "--trials", "4"]
    assert main([*common, "--workers", "0"]) == 0  # ready for workers elsewhere, no trial run
    assert "start workers with: python -m search worker --study local" in capfd.readouterr().out
    study = load_study("local", url)
    # The seed design and the recommended design, queued for the workers; nothing run.
    assert [t.state for t in study.trials] == [optuna.trial.TrialState.WAITING] * 2
    assert [t.user_attrs.get("design") for t in study.trials] == ["recommended", "seed000-cnn"]
    assert main([*common, "--workers", "2"]) == 0
    err = capfd.readouterr().err
    assert "[worker 0]" in err and "[worker 1]" in err
    assert len(finished(load_study("local", url))) == 4
    assert main(["run", "cnn", "--data", str(small_data), "--storage", f"sqlite:///{tmp_path / 's.db'}",
                 "--workers", "2", "--device", "cpu"]) == 2
    assert "one SQLite file cannot take 2 concurrent workers" in capfd.readouterr().err


def test_launcher_shows_one_bar_over_the_whole_study(tmp_path, small_data, monkeypatch, capfd):
    from search.cli import main

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    common = ["run", "cnn", "--data", str(small_data), "--storage", f"journal://{tmp_path / 'bar.log'}",
              "--study", "bar", "--epochs", "1", "--device", "cpu", "--heartbeat", str(HEARTBEAT), "--workers", "2"]
    assert main([*common, "--trials", "2", "--no-progress"]) == 0
    err = capfd.readouterr().err
    assert "[worker 0]" in err and "[worker 1]" in err  # the lines still come
    assert "trial/s" not in err and "%|" not in err  # but no bar

    assert main([*common, "--trials", "5"]) == 0  # the same study, 3 more trials
    pieces = [p for p in re.split(r"[\r\n]", capfd.readouterr().err) if p.strip()]
    # The bar counts the trials still needed, not each worker's share, and ends full with the best.
    assert "3/3" in pieces[-1] and re.search(r"best accuracy \d\.\d{4} \(trial \d+\)", pieces[-1]), pieces[-1]
    # The workers' lines are written above the bar, never into it.
    relayed = [p for p in pieces if "[worker" in p]
    assert relayed and all(p.startswith("[worker") for p in relayed), relayed
