"""Samplers and pruners by name, and the default pruner driven with ask/report and no training."""

from __future__ import annotations

import optuna
import pytest

from gic_common.errors import UserError
from search.config import load_preset
from search.workers.samplers import make_pruner, make_sampler


def test_unknown_names_fail_with_the_known_ones():
    with pytest.raises(UserError, match="known samplers"):
        make_sampler({"name": "nope"}, 0)
    with pytest.raises(UserError, match="known pruners"):
        make_pruner({"name": "nope"})


@pytest.mark.parametrize("device_type", ["cpu", "cuda"])
def test_default_pruner_stops_a_clearly_bad_trial(device_type):
    cfg = load_preset("cnn", device_type)
    # Hyperband puts a trial in a bracket by a hash of the study's name and the trial's number: a
    # fixed name makes the brackets, and so this test, the same on every run (a random name left
    # about one run in 15 with too few bad trials in the brackets that stop early)
    study = optuna.create_study(direction="maximize", pruner=make_pruner(cfg.pruner),
                                sampler=make_sampler(cfg.sampler, 0), study_name="default-pruner")
    curve = [0.2 + 0.5 * (1 - 0.7**e) for e in range(1, cfg.epochs + 1)]
    for _ in range(12):  # healthy trials fill every bracket's rungs
        trial = study.ask()
        for epoch, value in enumerate(curve, start=1):
            trial.report(value, epoch)
            assert not trial.should_prune()  # as the objective asks: this records the rung values
        study.tell(trial, curve[-1])
    pruned_at = []
    for _ in range(6):
        trial = study.ask()
        for epoch in range(1, cfg.epochs + 1):
            trial.report(0.01, epoch)  # chance level: far below every healthy trial
            if trial.should_prune():
                pruned_at.append(epoch)
                study.tell(trial, state=optuna.trial.TrialState.PRUNED)
                break
        else:
            study.tell(trial, 0.01)
    assert len(pruned_at) >= 5, pruned_at
    assert sum(e < cfg.epochs for e in pruned_at) >= 4  # most stopped before the full budget was spent


def test_cpu_preset_is_the_quick_study():
    quick, full = load_preset("cnn", "cpu"), load_preset("cnn", "cuda")
    assert quick.epochs < full.epochs and quick.trials < full.trials
    assert quick.synth["size"] == 48 and full.synth["size"] == 64
    assert quick.sampler["name"] == full.sampler["name"] == "tpe"
    assert quick.study_name() != full.study_name()  # the two benchmarks never share a study
