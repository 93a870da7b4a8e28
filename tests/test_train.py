"""The training loop, its batched augmentations and metrics, and how the objective reports failures."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch
from sklearn.metrics import f1_score

from gic_common.configs import AugmentConfig, TrainConfig
from search.trial import objective as objective_module
from search.trial.augment import augment_batch, colour_jitter, cutout, flip, mix, translate
from search.trial.budget import rejected
from search.trial.metrics import confusion_update, scores
from search.trial.objective import Objective, TrialSettings
from search.trial.train import DeviceDataset, Diverged, continued_hold, fit, held_position
from spaces import get_space
from spaces.cnn import SEED000


def blobs(n=256, classes=4, side=16, seed=0) -> DeviceDataset:
    """Classes told apart by which quadrant is bright: learnable in a few epochs on the CPU."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    x = torch.randint(0, 60, (n, 3, side, side), generator=g, dtype=torch.uint8)
    h = side // 2
    for c in range(classes):
        r, col = divmod(c, 2)
        x[y == c, :, r * h : (r + 1) * h, col * h : (col + 1) * h] += 150
    half = n // 2
    return DeviceDataset(x[:half], y[:half], x[half:], y[half:], torch.full((3,), 0.4), torch.full((3,), 0.3), classes)


def small_cnn():
    from gic_models import create_model
    from gic_models.cnn import CNNSpec, ConvLayer

    torch.manual_seed(0)  # the same initial weights whichever tests ran before
    return create_model("cnn", CNNSpec(convs=(ConvLayer(8), ConvLayer(16)), head="avg"), 4, (3, 16, 16))


def test_fit_learns_and_reports_every_epoch():
    seen = []
    history = fit(small_cnn(), blobs(), TrainConfig(lr=1e-2, batch_size=32), epochs=8, on_epoch=seen.append)
    assert [r.epoch for r in seen] == list(range(1, 9)) and seen == history
    assert history[-1].train_loss < history[0].train_loss
    assert history[-1].accuracy > 0.8


def test_fit_scores_validation_only_every_few_epochs_and_after_the_last_when_asked():
    history = fit(small_cnn(), blobs(), TrainConfig(lr=1e-2, batch_size=32), epochs=7, evaluate_every=3)
    assert [r.epoch for r in history if r.accuracy is not None] == [3, 6, 7]
    assert all(r.eval_seconds == 0.0 and r.val_loss is None for r in history if r.epoch not in (3, 6, 7))


def test_a_curve_without_flips_scores_only_the_last_epoch_with_them(monkeypatch):
    from search.trial import train as train_module

    flips, real = [], train_module.evaluate

    def watched(model, data, tta=False, **kw):
        flips.append(tta)
        return real(model, data, tta=tta, **kw)

    monkeypatch.setattr(train_module, "evaluate", watched)
    cfg = TrainConfig(lr=1e-2, batch_size=32, tta=True)
    history = fit(small_cnn(), blobs(), cfg, epochs=4, curve_tta=False)
    assert flips == [False, False, False, True] and all(r.accuracy is not None for r in history)
    flips.clear()
    fit(small_cnn(), blobs(), cfg, epochs=2)  # by default every scored epoch has the design's flips
    assert flips == [True, True]


def test_with_a_clock_the_schedule_follows_the_time_and_training_stops_when_it_is_up():
    ticks = []

    def clock() -> float:  # one tick a step: the run's time is up after ten steps
        ticks.append(1)
        return len(ticks) / 10

    cfg = TrainConfig(lr=0.1, batch_size=32, schedule="onecycle", optimizer="sgd", momentum=0.9)
    history = fit(small_cnn(), blobs(), cfg, epochs=100, clock=clock)  # 4 steps an epoch, 400 planned
    assert len(ticks) == 10 and [r.epoch for r in history] == [1, 2, 3]  # the third epoch cut after 2 steps
    assert history[-1].accuracy is not None  # the epoch the time ended is scored
    # by the steps, 8 of 400 would still be warming up; by the clock, 8 of 10 are well into the decay
    assert history[2].lr < history[1].lr


def test_a_trial_holds_its_peak_for_a_longer_run_to_continue_and_comes_down_for_its_verdict():
    cfg = TrainConfig(lr=0.1, batch_size=32, schedule="onecycle", optimizer="sgd", momentum=0.9)
    whole = [r.lr for r in fit(small_cnn(), blobs(), cfg, epochs=10)]  # each epoch's first rate, 4 steps an epoch
    kept = []
    model = small_cnn()
    trial = fit(model, blobs(), cfg, epochs=6, decay_from=4,
                on_decay=lambda: kept.append({k: v.clone() for k, v in model.state_dict().items()}))
    rates = [r.lr for r in trial]
    assert rates[0] == pytest.approx(whole[0])  # the same warm-up (the peak is at 0.3 of the schedule)...
    assert rates[2:4] == pytest.approx([0.1, 0.1], rel=0.01)  # ...then the top rate to the end of epoch 4...
    assert rates[5] < 0.07 and trial[-1].accuracy > 0.8  # ...then down over the last two: a finished miniature
    # the weights at the peak were kept once, and the descent went on training after them
    assert len(kept) == 1 and any(not torch.equal(kept[0][k], v) for k, v in model.state_dict().items())
    assert held_position(cfg, 4, 6) == pytest.approx(0.3)  # where its weights at the peak stand in the schedule
    rest = [r.lr for r in fit(small_cnn(), blobs(), cfg, epochs=7, start_at=0.3)]
    assert rest[0] == pytest.approx(0.1, rel=0.01)  # a longer run continues from the peak, not a warm-up's floor
    assert all(a > b for a, b in zip(rest, rest[1:], strict=False)) and rest[-1] < 0.02  # and only comes down
    # the rest of one schedule: the continued run's epochs stand where the 10-epoch run's last 7 do
    assert rest[1:] == pytest.approx(whole[4:], rel=0.15)
    # a final run much longer than the trial first holds the peak, so the whole run peaks where a
    # plain one-cycle run of all its epochs would (0.3 of 24 epochs: 7.2, of which the trial had 4)
    hold = continued_hold(0.3, 4, 20)
    assert hold == pytest.approx((0.3 * 24 - 4) / 20)
    held = [r.lr for r in fit(small_cnn(), blobs(), cfg, epochs=20, start_at=0.3, hold=hold)]
    assert len(set(held[:4])) == 1 and held[0] == pytest.approx(0.1, rel=0.01)  # 3.2 epochs at the top rate...
    assert held[4] < held[3]  # ...then down
    assert all(a > b for a, b in zip(held[4:], held[5:], strict=False)) and held[-1] < 0.01  # then down to the end
    unheld = [r.lr for r in fit(small_cnn(), blobs(), cfg, epochs=20, start_at=0.3)]
    assert held[10] > 1.2 * unheld[10]  # mid-run it still trains near the top rate, where the unheld run is coming down
    assert continued_hold(0.3, 4, 3) == 0.0 and continued_hold(0.0, 0, 50) == 0.0  # short runs, no warm-up: none


def test_prediction_builds_no_graph_and_scores_alike_at_any_batch():
    from search.trial.train import predict_logits

    data, model = blobs(), small_cnn()
    whole = predict_logits(model, data.val_x, data.mean, data.std, batch=1024)
    assert not whole.requires_grad  # no autograd graph kept for images only scored
    assert torch.allclose(whole, predict_logits(model, data.val_x, data.mean, data.std), atol=1e-5)  # the CPU's 64


def test_fit_is_reproducible_on_the_cpu():
    aug = AugmentConfig(flip=True, translate=2, cutout=4, jitter=0.2, mix="cutmix")
    cfg = TrainConfig(lr=3e-3, batch_size=32, augment=aug)
    runs = []
    for _ in range(2):
        torch.manual_seed(1)
        runs.append([r.train_loss for r in fit(small_cnn(), blobs(), cfg, epochs=2, seed=7)])
    assert runs[0] == runs[1]


def test_non_finite_loss_raises_diverged():
    model = small_cnn()
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with pytest.raises(Diverged, match="training loss became nan in epoch 1"):
        fit(model, blobs(), TrainConfig(), epochs=3)


@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_outputs_gone_non_finite_after_the_last_step_raise_diverged(task):
    # The last updates of an epoch can leave NaN weights behind a finite training loss: binary scoring
    # raised scikit-learn's "Input contains NaN" and stopped the study; multiclass scored NaN logits.
    from dataclasses import replace

    from gic_models import create_model
    from gic_models.cnn import CNNSpec, ConvLayer
    from search.trial.train import evaluate

    data = replace(blobs(classes=2), task=task, num_classes=1 if task == "binary" else 2)
    model = create_model("cnn", CNNSpec(convs=(ConvLayer(8),), head="avg"), data.num_classes, (3, 16, 16))
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    with pytest.raises(Diverged, match="validation loss became nan"):
        evaluate(model, data)


@pytest.mark.parametrize("schedule", ["constant", "cosine", "onecycle", "exp_decay"])
@pytest.mark.parametrize("optimizer", ["adam", "adamw", "sgd", "rmsprop"])
def test_every_optimizer_and_schedule_trains(optimizer, schedule):
    cfg = TrainConfig(optimizer=optimizer, schedule=schedule, lr=1e-2, batch_size=64, warmup=0.1)
    history = fit(small_cnn(), blobs(n=128), cfg, epochs=1)
    assert np.isfinite(history[0].train_loss)


def test_augmentations_keep_shape_and_range():
    x = torch.rand(8, 3, 16, 16)
    for out in (flip(x), translate(x, 3), cutout(x, 6), colour_jitter(x, 0.4),
                augment_batch(x, AugmentConfig(flip=True, translate=2, cutout=4, jitter=0.3))):
        assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1


def test_flip_mirrors_each_image_or_leaves_it():
    x = torch.rand(64, 3, 8, 8)
    out = flip(x)
    mirrored = (out == x.flip(3)).flatten(1).all(1)
    kept = (out == x).flatten(1).all(1)
    assert (mirrored | kept).all() and mirrored.any() and kept.any()


def test_translate_moves_content_and_cutout_zeroes_a_square():
    x = torch.rand(16, 3, 12, 12)
    out = translate(x, 2)
    assert not torch.equal(out, x)
    assert torch.equal(translate(x, 0), x)  # no shift allowed: every image unchanged
    zeroed = (cutout(torch.ones(32, 1, 12, 12), 4) == 0).flatten(1).sum(1)
    assert zeroed.max() <= 16 and zeroed.float().mean() > 4


def test_translate_larger_than_the_image_is_cut_to_fit():
    # Reflection padding refuses a pad as large as the side: the space's 6px shift of a 6px-high
    # (or 4px) image failed the trial with a RuntimeError.
    for shape in ((8, 3, 6, 64), (8, 3, 4, 4), (8, 1, 1, 9)):
        x = torch.rand(*shape)
        out = translate(x, 6)
        assert out.shape == x.shape and out.min() >= 0 and out.max() <= 1


def test_mixing_weights():
    rng = np.random.default_rng(0)
    x = torch.rand(8, 3, 16, 16)
    mixed, perm, lam = mix(x, "mixup", 1.0, rng)
    assert torch.allclose(mixed, lam * x + (1 - lam) * x[perm])
    pasted, perm, lam = mix(x, "cutmix", 1.0, rng)
    from_x = (pasted == x).flatten(1).float().mean().item()
    assert abs(from_x - lam) < 0.1  # lam is the share of each image that is still its own


def test_scores_match_scikit_learn():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 6, (500,), generator=g)
    pred = torch.where(torch.rand(500, generator=g) < 0.6, y, torch.randint(0, 5, (500,), generator=g))
    confusion = torch.zeros(6, 6, dtype=torch.long)
    confusion_update(confusion, y, pred)
    s = scores(confusion)
    assert s["accuracy"] == pytest.approx((y == pred).float().mean().item())
    assert s["macro_f1"] == pytest.approx(f1_score(y, pred, average="macro"))


def _study_with(monkeypatch, fake_fit, max_mflops=None):
    monkeypatch.setattr(objective_module, "fit", fake_fit)
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial(SEED000)
    settings = TrialSettings(get_space("cnn"), (3, 64, 64), epochs=3, metric="accuracy", seed=0, max_mflops=max_mflops)
    return study, Objective(settings, blobs(side=64))


def test_objective_prunes_a_diverged_trial_with_its_reason(monkeypatch):
    def diverge(*args, **kwargs):
        raise Diverged("training loss became nan in epoch 2 (lr 0.1)")

    study, objective = _study_with(monkeypatch, diverge)
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert "nan in epoch 2" in trial.user_attrs["pruned_reason"]


def test_objective_rejects_a_network_over_the_cost_ceiling_untrained(monkeypatch):
    fail = lambda *a, **k: pytest.fail("a rejected trial was trained")
    study, objective = _study_with(monkeypatch, fail, max_mflops=1)  # seed 000's CNN: about 107 MFLOP at 64px
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert "over the preset's max_mflops 1" in trial.user_attrs["pruned_reason"]
    assert rejected(trial)  # so it takes no budget (search/trial/budget.py)


def test_colour_jitter_builds_no_tensor_from_a_list_each_batch(monkeypatch):
    # The luma weights were a torch.tensor([...]) every batch: a host-to-device copy in the hot loop.
    x = torch.rand(4, 3, 8, 8)
    colour_jitter(x, 0.2)  # the first batch on a device may make them

    def refuse(*args, **kwargs):
        raise AssertionError("torch.tensor called in a batch after the first")

    monkeypatch.setattr(torch, "tensor", refuse)
    assert colour_jitter(x, 0.2).shape == x.shape
