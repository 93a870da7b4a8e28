"""The study's budget in seconds: the probe's verdict, the bar's time left, a retrain paced by time."""

from __future__ import annotations

import datetime
import time
from dataclasses import replace

import optuna
import pytest
import torch

from gic_common.configs import TrainConfig
from search.after.retrain import epochs_in, eval_share, evaluate_every, fitted_epochs
from search.data.loader import load_dataset
from search.data.options import DataOptions
from search.data.prepare import prepare
from search.trial.budget import rejected
from search.trial.inputs import to_device
from search.trial.objective import Objective, TrialSettings
from search.trial.time_budget import TimeBudget, predict_seconds
from search.trial.train import evaluate, fit, predict_logits
from search.workers.progress import Progress
from spaces import get_space


def test_a_trial_that_cannot_fit_the_time_left_is_refused_and_a_design_only_by_the_deadline():
    def budget():
        return TimeBudget(deadline=time.monotonic() + 100, share=3.0)

    assert budget().verdict(150, trials_left=5) .startswith("predicted 150s, but the study has")
    assert "over 3x its share" in budget().verdict(70, trials_left=5)  # 100 s / 5 trials = 20 s a trial
    assert budget().verdict(50, trials_left=5) is None
    assert budget().verdict(70, trials_left=5, design=True) is None  # the hand design is the baseline
    assert TimeBudget().verdict(1e9, trials_left=1) is None  # no timeout: no limit


def test_a_study_its_timeout_ends_early_shares_the_time_by_the_trials_that_fit():
    budget = TimeBudget(deadline=time.monotonic() + 100, share=3.0)
    for cost in (40, 50, 60):  # the typical trial takes 50 s: two more fit, not the 30 still counted
        budget.predictions.append(cost)
    assert budget.verdict(90, trials_left=30) is None  # 3x of 100 s over 2 trials, not of 100 s over 30
    assert "over 3x its share of the time left (100s for 30 trials)" in TimeBudget(
        deadline=time.monotonic() + 100).verdict(90, trials_left=30)  # nothing known yet: the count stands


def test_the_study_closes_once_most_draws_could_not_fit():
    budget = TimeBudget(deadline=time.monotonic() + 30)
    budget.predictions += [20, 25]
    assert not budget.closed()  # the cheapest (20 s) still fits
    budget.predictions += [40, 50, 60, 80, 90, 100]
    assert budget.closed()  # three draws in four take over 30 s: probing more only burns the rest
    assert not TimeBudget().closed()  # no timeout: never


def test_predicted_seconds_count_training_and_evaluation():
    # 1,000 training images and 300 validation ones (a third of the cost each, twice with TTA), 2 epochs
    assert predict_seconds(0.01, 1000, 300, 2, tta=False) == pytest.approx(2 * 0.01 * 1100)
    # the flips (twice the images) only at the last epoch: the earlier ones feed the pruners alone
    assert predict_seconds(0.01, 1000, 300, 2, tta=True) == pytest.approx(0.01 * (2 * 1000 + 3 * 100))


@pytest.fixture(scope="module")
def tensors(tiny_data):
    ds = prepare(load_dataset(tiny_data), DataOptions())
    return to_device(ds, torch.device("cpu")), ds.in_shape


@pytest.mark.slow
def test_the_probe_rejects_a_trial_the_study_cannot_fit_untrained(tensors):
    data, in_shape = tensors
    settings = TrialSettings(get_space("cnn"), in_shape, epochs=50, metric="accuracy", seed=0, trials=10)
    study = optuna.create_study(direction="maximize")
    study.optimize(Objective(settings, data, TimeBudget.from_timeout(2.0)), n_trials=1)
    trial = study.trials[0]
    assert rejected(trial) and "rejected after a timed probe: predicted" in trial.user_attrs["pruned_reason"]
    assert trial.user_attrs["predicted_seconds"] > 2.0
    assert "epochs" not in trial.user_attrs  # not one epoch was trained
    study.enqueue_trial(trial.params)  # no timeout: the same draw trains
    study.optimize(Objective(replace(settings, epochs=1), data), n_trials=1)
    assert study.trials[1].state == optuna.trial.TrialState.COMPLETE


def test_the_bars_time_left_honours_the_timeout():
    progress = Progress(20, "accuracy", enabled=True, timeout=60)
    progress.bar.start_t -= 1000  # one trial took 1,000 s: 19 more would take over 5 hours
    progress.bar.update(1)
    left = progress.bar.format_dict["left"]
    minutes, seconds = (int(x) for x in left.split(":"))
    assert minutes * 60 + seconds <= 60, left
    progress.close()
    free = Progress(20, "accuracy", enabled=True)  # without a timeout the estimate stands
    free.bar.start_t -= 1000
    free.bar.update(1)
    assert free.bar.format_dict["left"].count(":") == 2  # hours:minutes:seconds
    free.close()


def test_a_timed_retrain_fits_its_epochs_into_the_seconds_given():
    start = datetime.datetime(2026, 1, 1)
    trial = optuna.trial.create_trial(
        params={}, distributions={}, value=0.5, user_attrs={"epochs": 3},
        state=optuna.trial.TrialState.COMPLETE)
    trial.datetime_start, trial.datetime_complete = start, start + datetime.timedelta(seconds=30)
    assert fitted_epochs(trial, 300) == 30  # 10 s an epoch
    assert fitted_epochs(trial, 300, scale=1.5) == 20  # train+val: half as many images again
    assert fitted_epochs(trial, 1) == 1  # at least one
    # with its median training epoch measured, the pace is that, plus the evaluation's modelled share
    # for each of the retrain's validation passes: the wall time of a short trial also spreads its
    # building and probe over its few epochs
    trial.set_user_attr("epoch_seconds", 6.0)
    # 6 s an epoch and ten passes of 1.2 s: (300 - 12) / 6
    assert fitted_epochs(trial, 300, eval_share=eval_share(1000, 300, tta=True)) == 48
    assert fitted_epochs(trial, 300) == 30  # the wall time's pace where the sizes are not known
    trial.set_user_attr("eval_seconds", 1.5)  # measured evaluation seconds come before the model of them
    assert fitted_epochs(trial, 300, eval_share=eval_share(1000, 300, tta=True)) == 47  # (300 - 15) / 6
    assert evaluate_every(47) == 5  # ten passes, the last epoch's included
    # a run too short for ten sparse passes is scored every epoch: 60 s at 7.5 s an epoch
    assert fitted_epochs(trial, 60) == 8 and evaluate_every(8) == 1
    assert epochs_in(trial, 5) == 0 and fitted_epochs(trial, 5) == 1
    # a run on train+val pays only the passes it makes at its end: the job's unscored final run none,
    # a scored retrain two (its last epoch's and its metrics'): 6 s epochs, 1.5 s passes
    assert [epochs_in(trial, 61.5, end_passes=n) for n in (0, 1, 2)] == [10, 10, 9]
    assert epochs_in(trial, 60, end_passes=0) == 10 and epochs_in(trial, 60, end_passes=1) == 9


@pytest.mark.slow
def test_ema_keeps_the_averaged_weights_it_was_judged_by_and_tta_averages_the_mirror(tensors):
    data, in_shape = tensors
    cfg = get_space("cnn").suggest(optuna.trial.FixedTrial({
        **get_space("cnn").SEED000, "n_conv": 2, "filters_l0": 16, "filters_l1": 16, "n_dense": 0,
        "head": "avg", "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "ema": True}))
    torch.manual_seed(0)
    from gic_models import create_model

    model = create_model(cfg.model, cfg.arch, data.num_classes, in_shape)
    history = fit(model, data, cfg.train, epochs=2, seed=0)
    assert evaluate(model, data)["accuracy"] == history[-1].accuracy  # the kept model is the judged one
    plain = predict_logits(model, data.val_x, data.mean, data.std)
    mirrored = predict_logits(model, data.val_x.flip(3), data.mean, data.std)
    both = predict_logits(model, data.val_x, data.mean, data.std, tta=True)
    assert torch.allclose(both, (plain + mirrored) / 2, atol=1e-5)
    assert TrainConfig().ema is False and TrainConfig().tta is False


def test_the_study_closes_once_even_its_cheapest_trial_cannot_fit():
    budget = TimeBudget(deadline=time.monotonic() + 30)
    assert not budget.closed()  # nothing measured yet
    assert budget.verdict(10, trials_left=2) is None
    assert not budget.closed()
    budget.deadline = time.monotonic() + 5  # time passes: 5 s left, the cheapest trial seen takes 10
    assert budget.verdict(40, trials_left=1) is not None and budget.closed()
    assert not TimeBudget().closed()  # no timeout, never closed
