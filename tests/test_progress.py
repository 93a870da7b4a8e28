"""The progress bar of a process that shares its study with other workers counts the whole study."""

from __future__ import annotations

import threading
import time

import optuna
from optuna.trial import TrialState, create_trial

from search.workers.progress import Progress, watching


def _finished(study: optuna.Study, value: float, state: TrialState = TrialState.COMPLETE) -> optuna.trial.FrozenTrial:
    study.add_trial(create_trial(state=state, value=value if state == TrialState.COMPLETE else None,
                                 intermediate_values={1: value}))
    return study.trials[-1]


def test_bar_counts_trials_finished_by_other_workers():
    study = optuna.create_study(direction="maximize")
    _finished(study, 0.1)  # finished before this process started
    bar = Progress(total=5, metric="accuracy", enabled=True, done=1)
    _finished(study, 0.2)  # two by another worker
    _finished(study, 0.3, TrialState.PRUNED)
    bar(study, _finished(study, 0.4))  # and one by this process
    assert bar.bar.n == 3  # the study's progress, not this process's one trial
    bar(study, _finished(study, 0.0, TrialState.FAIL))  # a withdrawn trial is no step
    assert bar.bar.n == 3
    _finished(study, 0.5)  # another worker's last trial ends after this process's last one
    bar.close(study)
    assert bar.bar.n == 4


def test_a_launcher_bar_follows_the_study_from_the_storage():
    study = optuna.create_study(direction="maximize")
    study.set_user_attr("metric", "accuracy")
    _finished(study, 0.1)  # from an earlier run: no step, but already the best
    with watching(study, Progress.of_study(study, trials=4), every=0.01) as bar:
        assert bar.bar.total == 3 and "best accuracy 0.1000 (trial 0)" in str(bar.bar)
        _finished(study, 0.6)  # the workers' trials, which this process only reads
        _finished(study, 0.3, TrialState.PRUNED)
        deadline = time.monotonic() + 10
        while bar.bar.n < 2 and time.monotonic() < deadline:
            time.sleep(0.01)  # observing the polling thread
        assert bar.bar.n == 2 and "best accuracy 0.6000 (trial 1)" in str(bar.bar)
        _finished(study, 0.9)  # the last one ends just before the workers do
    assert bar.bar.n == 3 and "best accuracy 0.9000 (trial 3)" in str(bar.bar)  # counted on leaving


def test_into_a_log_the_bar_is_one_plain_line_a_finished_trial(capsys):
    study = optuna.create_study(direction="maximize")
    bar = Progress(total=3, metric="accuracy", enabled=True)  # pytest's stderr is no terminal
    bar(study, _finished(study, 0.2))
    bar(study, _finished(study, 0.0, TrialState.FAIL))  # no step, no line
    bar(study, _finished(study, 0.5))
    bar.write("[worker 1] trial 9 complete")
    bar.close(study)
    out, err = capsys.readouterr()
    assert out == ""  # stdout is for a command's answer; a trial's line is for the person watching
    assert "\r" not in err  # no redraws piled on one line
    lines = err.splitlines()
    assert len(lines) == 7, lines
    assert lines[0].startswith("trial   0 complete accuracy 0.2000")
    assert "1/3" in lines[1] and "best accuracy 0.2000 (trial 0)" in lines[1]
    assert lines[2].startswith("trial   1 fail") and lines[3].startswith("trial   2 complete")
    assert "2/3" in lines[4] and "best accuracy 0.5000 (trial 2)" in lines[4]
    assert lines[5] == "[worker 1] trial 9 complete"
    assert "2/3" in lines[6]  # the log ends on the study's state, after the last relayed line


def test_a_study_the_bar_cannot_read_is_one_warning_not_silence(capsys):
    study = optuna.create_study(direction="maximize")
    _finished(study, 0.1)

    polls = []
    many = threading.Event()

    def unreadable(*args, **kwargs):
        polls.append(1)
        if len(polls) >= 5:
            many.set()
        raise OSError("journal file on a lost mount\nsecond line")

    study.get_trials = unreadable  # what a storage gone away answers to every poll
    with watching(study, Progress(total=3, metric="accuracy", enabled=True), every=0.01):
        assert many.wait(timeout=30)  # several failed polls, however slow the machine
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: the bar could not read the study (journal file on a lost mount); "
                        "it may lag behind the workers"]
