"""What `--trials` counts: trials turned away untrained take no budget (search/trial/budget.py). Driven
with `work()` and objectives that train nothing, so each test takes well under a second."""

from __future__ import annotations

import optuna

from gic_common.knobs import MAX_REJECTIONS_PER_TRIAL
from search.trial.budget import counted, reject, rejected, takes_budget
from search.workers.worker import work


def _study() -> optuna.Study:
    return optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))


def test_rejected_trials_do_not_use_up_the_budget():
    def every_other(trial: optuna.Trial) -> float:
        x = trial.suggest_float("x", 0, 1)
        if trial.number % 2:
            raise reject(trial, "rejected before training: over the cost ceiling")
        return x

    study = _study()
    work(study, every_other, budget=4)
    assert counted(study) == (4, 3)  # trials 0, 2, 4, 6 trained; 1, 3, 5 rejected
    assert [takes_budget(t) for t in study.trials] == [True, False] * 3 + [True]
    assert all(rejected(t) == (t.state == optuna.trial.TrialState.PRUNED) for t in study.trials)


def test_a_pruned_trial_that_trained_takes_budget():
    def pruned_after_training(trial: optuna.Trial) -> float:
        trial.report(0.1, 1)
        raise optuna.TrialPruned("pruned after epoch 1")

    study = _study()
    work(study, pruned_after_training, budget=2)
    assert len(study.trials) == 2 and counted(study) == (2, 0)


def test_a_space_that_rejects_every_draw_still_ends(capsys):
    def never_fits(trial: optuna.Trial) -> float:
        trial.suggest_float("x", 0, 1)
        raise reject(trial, "rejected before training: over the cost ceiling")

    study = _study()
    work(study, never_fits, budget=2)
    assert counted(study) == (0, MAX_REJECTIONS_PER_TRIAL * 2)
    assert "rejected before training" in capsys.readouterr().err
