"""The training loop: device tensors in, metrics per epoch out, a callback for whoever listens.

This module knows neither Optuna nor any search space. Speed rules (docs/speed.md): the whole split is
a uint8 tensor on the device, batches are indexed with a device-side permutation, augmentation is
batched tensor ops, and the loss and confusion matrix are accumulated on the device and read once
per epoch. On CUDA: bf16 autocast, channels_last.

Over 300 lines on purpose: the loop, its evaluation and the helpers both share (normalising,
prediction in batches, the loss per task) must change together, and split apart they would import
each other.
"""

from __future__ import annotations

import itertools
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gic_common.configs import OPTIMIZERS, SCHEDULES, TrainConfig
from gic_common.knobs import EVAL_BATCH, EVAL_BATCH_DEFAULT, PROBE_STEPS
from search.trial.augment import augment_batch, mix
from search.trial.device import autocast
from search.trial.metrics import (
    binary_scores,
    confusion_update,
    cross_fitted_scores,
    multilabel_scores,
    scores,
    tune_thresholds,
)

__all__ = ["Diverged", "EpochResult", "DeviceDataset", "eval_batch", "evaluate", "fit", "held_position", "peak_at",
           "make_criterion", "predict_logits", "predict_scores"]

@dataclass
class DeviceDataset:
    """One dataset on the device: uint8 images (N, C, H, W), train-split statistics, and labels:
    int64 (N,) classes for multiclass and binary, uint8 (N, L) multi-hot rows for multilabel.
    ``num_classes`` is the model's output width (1 for binary)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor | None
    val_y: torch.Tensor | None
    mean: torch.Tensor  # (C,) in [0, 1] units
    std: torch.Tensor
    num_classes: int
    task: str = "multiclass"


@dataclass(frozen=True)
class EpochResult:
    epoch: int  # 1-based
    train_loss: float
    seconds: float  # training time of this epoch, evaluation excluded
    lr: float
    val_loss: float | None = None
    accuracy: float | None = None
    macro_f1: float | None = None
    per_class_f1: list[float] | None = None  # per label for multilabel
    micro_f1: float | None = None  # multilabel
    samples_f1: float | None = None  # multilabel
    roc_auc: float | None = None  # binary
    thresholds: list[float] | None = None  # multilabel: per-label cuts tuned on validation
    confusion: list[list[int]] | None = None  # multiclass and binary: rows true class, columns predicted
    eval_seconds: float = 0.0  # evaluating the validation split after this epoch


class Diverged(RuntimeError):
    """The training loss stopped being a finite number."""


def _normalise(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    return (x - mean.view(1, -1, 1, 1)) / std.view(1, -1, 1, 1)


def _as_float(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = x.float().div_(255)
    return x.contiguous(memory_format=torch.channels_last) if device.type == "cuda" else x


def make_optimizer(model: nn.Module, cfg: TrainConfig) -> torch.optim.Optimizer:
    params = list(model.parameters())
    # Fused kernels update every parameter in one launch: small models are launch-bound on a GPU.
    fused = params[0].is_cuda
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(params, cfg.lr, weight_decay=cfg.weight_decay, fused=fused)
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(
            params, cfg.lr, momentum=cfg.momentum, nesterov=cfg.nesterov and cfg.momentum > 0,
            weight_decay=cfg.weight_decay, fused=fused,
        )
    if cfg.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    raise ValueError(f"unknown optimizer {cfg.optimizer!r}; known: {', '.join(OPTIMIZERS)}")


ONE_CYCLE_RISE = 0.3  # torch's default share of a one-cycle schedule spent warming up
MAX_HOLD = 0.5  # a continued run holds its peak for at most this share of it: the rest comes down


def peak_at(cfg: TrainConfig) -> float:
    """Where in ``cfg``'s schedule (0: its start, 1: its end) the rate reaches its peak and starts to
    come down: the end of its warm-up (0 for a schedule with none)."""
    if cfg.schedule == "onecycle":
        return ONE_CYCLE_RISE
    return cfg.warmup if cfg.schedule == "cosine" else 0.0


def held_position(cfg: TrainConfig, decay_from: int | None, epochs: int) -> float:
    """Where in ``cfg``'s schedule a run that holds its peak to the end of epoch ``decay_from`` of
    ``epochs`` stands when it starts to come down (``fit``): its peak, or short of it if the warm-up
    had not ended by then; 0 when it never holds."""
    if not decay_from:
        return 0.0
    return min(peak_at(cfg), decay_from / epochs)


def continued_hold(peak: float, before: int, epochs: int) -> float:
    """The share of a continued run's ``epochs`` to hold at the ``peak`` its schedule starts at (``fit``'s
    ``start_at``), after ``before`` epochs of its trial: the model's whole schedule then peaks where a
    plain run of all ``before + epochs`` epochs peaks (``peak`` of its length) and comes down over the
    same share. Without the hold a long final run continued from a short trial's peak comes down over
    nearly all its epochs, where a plain one-cycle run of the same length reaches its top rate only
    ``ONE_CYCLE_RISE`` of the way in (bench/RESULTS.md, "Where real-late's margin goes")."""
    if peak <= 0 or epochs <= 0:
        return 0.0
    return min(MAX_HOLD, max(0.0, (peak * (before + epochs) - before) / epochs))


def make_schedule(opt: torch.optim.Optimizer, cfg: TrainConfig, steps_per_epoch: int, epochs: int):
    total = steps_per_epoch * epochs
    if cfg.schedule == "onecycle":
        return torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=total, pct_start=ONE_CYCLE_RISE)
    warmup = int(cfg.warmup * total)

    def factor(step: int) -> float:
        if cfg.schedule == "exp_decay":
            return 0.9 ** (step / 10_000)
        if step < warmup:
            return (step + 1) / warmup
        if cfg.schedule == "cosine":
            return 0.5 * (1 + math.cos(math.pi * (step - warmup) / max(1, total - warmup)))
        return 1.0

    if cfg.schedule not in SCHEDULES:
        raise ValueError(f"unknown schedule {cfg.schedule!r}; known: {', '.join(SCHEDULES)}")
    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


def eval_batch(device: torch.device) -> int:
    """Images a forward pass when scoring: a GPU is fed whole batches; on a CPU a large batch's
    activations outgrow the caches, and 1,024 images scored at half the speed of 64 (bench/RESULTS.md)."""
    return EVAL_BATCH.get(device.type, EVAL_BATCH_DEFAULT)


@torch.no_grad()
def predict_logits(
    model: nn.Module, x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor, batch: int | None = None,
    tta: bool = False,
) -> torch.Tensor:
    """Logits (float32, on x's device) for uint8 images ``x``, in eval mode; with ``tta`` the mean of
    each image's and its mirror image's logits. ``batch``: images a pass (default ``eval_batch``)."""
    batch = batch or eval_batch(x.device)
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, x.shape[0], batch):
        xb = _normalise(_as_float(x[start : start + batch], x.device), mean, std)
        with autocast(x.device):
            logits = model(xb).float()
            if tta:
                logits = (logits + model(xb.flip(3)).float()) / 2
        out.append(logits)
    model.train(was_training)
    return torch.cat(out)


def predict_scores(model, x, mean, std, task: str, batch: int | None = None, tta: bool = False) -> torch.Tensor:
    """Class probabilities (multiclass, rows sum to 1) or independent sigmoid probabilities
    (binary: (N,) of the second class; multilabel: (N, L))."""
    logits = predict_logits(model, x, mean, std, batch, tta)
    if task == "multiclass":
        return logits.softmax(1)
    return logits.sigmoid().squeeze(1) if task == "binary" else logits.sigmoid()


def make_criterion(task: str, label_smoothing: float, pos_weight: torch.Tensor | None = None):
    """``loss(logits, y, perm, lam)``, chosen once per fit so the batch loop never branches on the task.
    ``perm``/``lam`` are mixup/cutmix's pairing and weight (None/1 when not mixing)."""
    if task == "multiclass":

        def cross_entropy(logits, y, perm, lam):
            loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing)
            if perm is not None:
                loss = lam * loss + (1 - lam) * F.cross_entropy(logits, y[perm], label_smoothing=label_smoothing)
            return loss

        return cross_entropy

    def bce(logits, y, perm, lam):
        if task == "binary":
            logits = logits.squeeze(1)
        target = y.float()
        if perm is not None:  # mixed images get mixed targets: each label as much as its share of pixels
            target = lam * target + (1 - lam) * target[perm]
        if label_smoothing:
            target = target * (1 - label_smoothing) + 0.5 * label_smoothing
        return F.binary_cross_entropy_with_logits(logits, target, pos_weight=pos_weight)

    return bce


def _label_pos_weight(y: torch.Tensor) -> torch.Tensor:
    """negatives/positives per label on the training split (a label with no positive gets 1)."""
    y = y.float().reshape(len(y), -1)
    positives = y.sum(0)
    return torch.where(positives > 0, (len(y) - positives) / positives.clamp(min=1), torch.ones_like(positives))


def _finite(val_loss: float) -> float:
    # The epoch's last updates can leave the weights NaN while its training loss, summed before them,
    # is still finite: binary scoring (scikit-learn's ROC AUC) then raised a ValueError that stopped the
    # study, and multiclass scored NaN logits as if they were predictions.
    if not math.isfinite(val_loss):
        raise Diverged(f"validation loss became {val_loss}: the model's outputs are no longer finite numbers")
    return val_loss


@torch.no_grad()
def evaluate(model: nn.Module, data: DeviceDataset, batch: int | None = None,
             thresholds: list[float] | None = None, tta: bool = False) -> dict:
    """Validation loss, accuracy, macro-F1, per-class F1 and the confusion matrix (as lists) for
    multiclass; the task's own metrics otherwise (see ``_evaluate_sigmoid``). Multilabel
    ``thresholds`` given are used as they are instead of being tuned on ``data.val_*`` (to score
    a held-out part with the cuts tuned on validation). ``tta``: see ``predict_logits``."""
    if data.task != "multiclass":
        return _evaluate_sigmoid(model, data, batch, thresholds, tta)
    batch = batch or eval_batch(data.val_x.device)
    n = data.num_classes
    confusion = torch.zeros(n, n, dtype=torch.long, device=data.val_x.device)
    loss = torch.zeros((), device=data.val_x.device)
    for start in range(0, data.val_x.shape[0], batch):
        logits = predict_logits(model, data.val_x[start : start + batch], data.mean, data.std, batch, tta)
        y = data.val_y[start : start + batch]
        loss += F.cross_entropy(logits, y, reduction="sum")
        confusion_update(confusion, y, logits.argmax(1))
    val_loss = _finite(loss.item() / data.val_x.shape[0])
    result = scores(confusion)
    result["val_loss"] = val_loss
    result["confusion"] = confusion.tolist()
    return result


@torch.no_grad()
def _evaluate_sigmoid(model: nn.Module, data: DeviceDataset, batch: int | None, thresholds: list[float] | None,
                      tta: bool) -> dict:
    """Binary: accuracy, ROC AUC, F1 per class. Multilabel: micro/macro/samples F1 cross-fitted (each
    half of these images at cuts tuned on the other), and the per-label thresholds tuned on all of
    them, which a final model keeps. The logits stay on the device until one read."""
    logits = predict_logits(model, data.val_x, data.mean, data.std, batch, tta)
    if data.task == "binary":
        logits = logits.squeeze(1)
    target = data.val_y.float()
    loss = _finite(F.binary_cross_entropy_with_logits(logits, target).item())
    if data.task == "binary":
        result = binary_scores(logits, data.val_y)
    else:
        probs = logits.sigmoid()
        if thresholds is None:  # the objective: never scored at cuts tuned on the same images
            cuts = tune_thresholds(probs, data.val_y)  # all of validation: the cuts a final model keeps
            result = cross_fitted_scores(probs, data.val_y)
        else:
            cuts = probs.new_tensor(thresholds)
            result = multilabel_scores(probs, data.val_y, cuts)
        result["thresholds"] = [round(v, 6) for v in cuts.tolist()]
    result["val_loss"] = loss
    return result


def fit(
    model: nn.Module,
    data: DeviceDataset,
    cfg: TrainConfig,
    *,
    epochs: int,
    seed: int = 0,
    on_epoch: Callable[[EpochResult], None] | None = None,
    compile: str | None = None,
    on_probe: Callable[[float], None] | None = None,
    evaluate_every: int | None = 1,
    clock: Callable[[], float] | None = None,
    decay_from: int | None = None,
    on_decay: Callable[[], None] | None = None,
    start_at: float = 0.0,
    hold: float = 0.0,
    curve_tta: bool = True,
) -> list[EpochResult]:
    """Trains ``model`` in place on ``data`` (already on the device) and returns every epoch's result.

    ``on_epoch`` is called after each epoch; an exception it raises (a pruner's verdict, say) stops
    training and propagates. A non-finite training loss raises ``Diverged``. ``compile`` is a
    torch.compile mode ("default", "reduce-overhead": CUDA graphs, "max-autotune") for the training
    step's forward pass; its compile time is counted in the first epoch's seconds. ``on_probe`` is
    called once, a few steps into the first epoch, with the measured seconds a training image takes
    (the first step, which pays for allocations and compilation, left out); raising there stops
    training before it costs more, as a budget that the run cannot fit into should.
    ``evaluate_every``: score the validation split after every this many epochs and after the last
    (a long final run needs a few points of its curve, not one an epoch; None: after the last only);
    other epochs' results carry no validation figures.
    ``clock``: the share of the run's time spent so far (0 at its start, 1 at its end). The schedule
    then follows that share instead of the steps taken, and training stops once it reaches 1, mid-epoch
    if need be (that last epoch is scored); ``epochs`` is only the plan that sets the schedule's
    resolution and how often a run is scored. A run under a deadline whose epochs speed up or slow
    down still ends its schedule, and the time, together (a final run under the user's deadline).
    ``decay_from``: the schedule warms up, holds its peak rate (``peak_at``) to the end of this epoch,
    and only then comes down, over the epochs left, so that the run is scored as a finished miniature
    while its weights at the peak (``on_decay`` is called there, before the rate comes down) can be
    taken further by a longer run (a trial under `run --time`, which its final run continues:
    ``held_position``). ``start_at``: the run is the rest of a schedule another run followed up to
    there: the rate starts where it stopped, with no second warm-up. ``hold``: with ``start_at``, the
    share of this run that stays at that rate before coming down (``continued_hold``).
    ``curve_tta``: False scores the epochs before the last without the design's test-time flips, in
    about half the time (a trial's curve feeds only the pruners, which compare one epoch with other
    trials' same epoch, and the progress line); the last epoch, the run's value, always has them.
    """
    device = data.train_x.device
    torch.manual_seed(seed)
    host_rng = np.random.default_rng(seed)  # mixing weights: drawn on the host, no device sync
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    n = data.train_x.shape[0]
    batch = min(cfg.batch_size, n)
    steps = n // batch  # drop the ragged tail: fixed shapes, and no batch-norm on a 1-image batch
    if compile:
        # A study compiles a new architecture every trial; without a reset the compiled code of earlier
        # trials piles up until torch's recompile limit quietly sends later trials back to eager.
        torch.compiler.reset()
    forward = torch.compile(model, mode=compile) if compile else model
    opt = make_optimizer(model, cfg)
    schedule = make_schedule(opt, cfg, steps, epochs)
    pos_weight = _label_pos_weight(data.train_y) if cfg.pos_weight and data.task != "multiclass" else None
    criterion = make_criterion(data.task, cfg.label_smoothing, pos_weight)
    ema = _ema(model, steps * epochs) if cfg.ema else None
    probe_at = min(PROBE_STEPS + 1, steps) if on_probe is not None else 0  # steps done when the probe is read
    probe_start = 0.0
    history = []
    total = steps * epochs
    held = steps * decay_from if decay_from else 0  # steps at the peak's end: the descent starts there
    resume = held_position(cfg, decay_from, epochs) if held else 0.0

    def position(share: float) -> float:  # in the schedule, after ``share`` of this run
        if not held:
            if share < hold:
                return start_at
            return start_at + (1 - start_at) * (share - hold) / (1 - hold)
        if share * total <= held:
            return min(resume, share)
        return resume + (1 - resume) * (share * total - held) / max(1, total - held)

    placed = clock is not None or held or start_at > 0  # else torch's schedules count the steps

    def place(share: float) -> None:
        schedule.last_epoch = min(total, int(position(share) * total)) - 1  # torch's schedules read it there
        schedule.step()

    if start_at > 0:  # the first step's rate too: the schedule's own start would be a warm-up's floor
        with warnings.catch_warnings():  # torch warns of a step before the optimiser's; this one only places it
            warnings.simplefilter("ignore", UserWarning)
            place(0.0)
    taken = 0
    for epoch in itertools.count(1) if clock is not None else range(1, epochs + 1):
        model.train()
        start = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        order = torch.randperm(n, device=device)
        lr = opt.param_groups[0]["lr"]
        done = steps
        for step in range(steps):
            idx = order[step * batch : (step + 1) * batch]
            x = augment_batch(_as_float(data.train_x[idx], device), cfg.augment)
            y = data.train_y[idx]
            perm, lam = None, 1.0
            if cfg.augment.mix != "none":
                x, perm, lam = mix(x, cfg.augment.mix, cfg.augment.mix_alpha, host_rng)
            x = _normalise(x, data.mean, data.std)
            with autocast(device):
                logits = forward(x)
            loss = criterion(logits.float(), y, perm, lam)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            taken += 1
            spent = clock() if clock is not None else 0.0
            if placed:
                place(spent if clock is not None else taken / total)
            else:
                schedule.step()
            if ema is not None:
                ema.update_parameters(model)
            loss_sum += loss.detach()
            if epoch == 1 and probe_at and step + 1 in (1, probe_at):
                probe_start = _probe(on_probe, step + 1, probe_at, probe_start if step else start, batch, device)
            if spent >= 1:
                done = step + 1
                break
        train_loss = loss_sum.item() / done  # the epoch's one host sync
        seconds = time.perf_counter() - start
        if not math.isfinite(train_loss):
            raise Diverged(f"training loss became {train_loss} in epoch {epoch} (lr {cfg.lr:.3g})")
        result = EpochResult(epoch, train_loss, seconds, lr)
        last = spent >= 1 if clock is not None else epoch == epochs
        if data.val_x is not None and (last or (evaluate_every is not None and epoch % evaluate_every == 0)):
            ev = evaluate(model if ema is None else ema.module, data, tta=cfg.tta and (last or curve_tta))
            result = EpochResult(
                epoch, train_loss, seconds, lr, ev["val_loss"], ev.get("accuracy"), ev["macro_f1"],
                ev["per_class_f1"], micro_f1=ev.get("micro_f1"), samples_f1=ev.get("samples_f1"),
                roc_auc=ev.get("roc_auc"), thresholds=ev.get("thresholds"), confusion=ev.get("confusion"),
                eval_seconds=time.perf_counter() - start - seconds,
            )
        history.append(result)
        if on_decay is not None and epoch == decay_from:
            on_decay()
        if on_epoch is not None:
            on_epoch(result)
        if last:
            break
    if ema is not None:  # the averaged weights are the ones evaluated, so they are the ones kept
        model.load_state_dict(ema.module.state_dict())
    return history


def _probe(on_probe, done: int, probe_at: int, since: float, batch: int, device: torch.device) -> float:
    """After the first step: the time the timed steps start. At ``probe_at``: reports seconds an image."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)  # twice a trial: the only host syncs in the loop
    now = time.perf_counter()
    if done == probe_at:
        timed = max(1, probe_at - 1)  # a one-step epoch has only its first step to time
        on_probe((now - since) / (timed * batch))
    return now


def _ema(model: nn.Module, total_steps: int) -> torch.optim.swa_utils.AveragedModel:
    half_life = max(1.0, 0.1 * total_steps)
    decay = 0.5 ** (1 / half_life)
    return torch.optim.swa_utils.AveragedModel(
        model, multi_avg_fn=torch.optim.swa_utils.get_ema_multi_avg_fn(decay), use_buffers=True)
