"""The only place that joins a space, a model, the data and the training loop to an Optuna trial."""

from __future__ import annotations

import gc
import hashlib
import math
import os
import socket
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType
from typing import TYPE_CHECKING

import optuna
import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from gic_common.errors import TrialVerdict
from gic_common.knobs import TRIAL_DECAY
from search.artifacts import attach_json
from search.optuna_private import trial_id
from search.trial.budget import counted, reject
from search.trial.device import describe
from search.trial.inputs import seeded_model
from search.trial.oom import oom_verdict
from search.trial.time_budget import TimeBudget, predict_seconds
from search.trial.train import DeviceDataset, Diverged, EpochResult, fit, held_position

if TYPE_CHECKING:
    from search.trial.pareto import FrontRules

__all__ = ["Objective", "TrialSettings", "count_flops", "origin_number", "stored_curve", "trial_seed"]


def trial_seed(study_seed: int, trial_number: int) -> int:
    """A trial's seed from the study's seed and its number: reruns reproduce it, trials differ."""
    digest = hashlib.blake2b(f"{study_seed}:{trial_number}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "little") & 0x7FFFFFFF


def count_flops(model: nn.Module, in_shape: tuple[int, int, int]) -> int:
    """Forward FLOPs for one image (a multiply-add counts 2), as torch's own counter sees them."""
    was_training = model.training
    model.eval()
    try:
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            model(torch.zeros(1, *in_shape))
    finally:
        model.train(was_training)
    return int(counter.get_total_flops())


def origin_number(trial: optuna.Trial) -> int:
    """The number a trial's seed comes from: its own, or for a retry (a killed or interrupted
    worker's trial queued again) the original trial's, so a retry trains exactly as it would have."""
    system_attrs = trial.storage.get_trial_system_attrs(trial_id(trial))
    return int(system_attrs.get("failed_trial", trial.number))


def stored_curve(trial: optuna.trial.FrozenTrial) -> list[float]:
    """The trial's metric at epochs 1, 2, ... as the study stored it: the values reported to the
    pruner, or for a multi-objective study (Optuna takes no report there) the ``curve`` attribute
    search/trial/pareto.py keeps instead."""
    if trial.intermediate_values:
        return [trial.intermediate_values[e] for e in sorted(trial.intermediate_values)]
    return list(trial.user_attrs.get("curve", []))


@dataclass(frozen=True)
class TrialSettings:
    """What every trial of a study is given, fixed for the study (search/workers/run.py builds it)."""

    space: ModuleType
    in_shape: tuple[int, int, int]
    epochs: int
    metric: str  # an EpochResult field (accuracy, macro_f1)
    seed: int
    max_mflops: float | None = None  # a preset's cost ceiling: what its time budget can afford
    compile: str | None = None  # a torch.compile mode, or None for eager
    storage_url: str | None = None  # where artifacts go (search/artifacts.py); None: no artifacts
    class_names: list[str] | None = None
    trials: int | None = None  # the study's --trials, over which a drawn trial's fair share of time is counted
    rules: FrontRules | None = None  # a multi-objective study's (search/trial/pareto.py MultiObjective)


class Objective:
    """Builds, trains and reports one trial. ``time_budget``: the study's clock (a trial that cannot fit the
    time left is rejected after a few timed steps: search/trial/time_budget.py). ``on_complete``: called with
    each completed trial and its trained network (`run --time` keeps the best one's weights for its final run).
    ``for_final_run``: each trial holds its peak rate until its last third, then comes down for its verdict
    (search/trial/train.py fit's ``decay_from``), and ``on_complete`` gets its weights at the peak, so that
    `run --time`'s final run brings the rate down from there: one schedule, as a plain run has. A trial
    that had come down and was warmed up again lost 1.6 points; one that held its peak to its end was
    scored at that rate, a verdict that handed real-gray's final run to the wrong design (bench/RESULTS.md)."""

    def __init__(self, settings: TrialSettings, data: DeviceDataset, time_budget: TimeBudget | None = None,
                 on_complete: Callable[[optuna.Trial, dict, float, dict | None], None] | None = None,
                 for_final_run: bool = False):
        self.settings, self.data = settings, data
        self.time_budget, self.on_complete = time_budget or TimeBudget(), on_complete
        self.for_final_run = for_final_run

    def __call__(self, trial: optuna.Trial) -> float | tuple[float, ...]:
        config = self.settings.space.suggest(trial)
        drawn_from = getattr(trial.study.sampler, "drawn_from", lambda number: None)(trial.number)
        if drawn_from is not None:  # the prior or the sampler: the dashboard and bench/ tell them apart by this
            trial.set_user_attr("drawn_from", drawn_from)
        seed = trial_seed(self.settings.seed, origin_number(trial))
        try:  # the initial weights belong to the trial's seed too
            model = seeded_model(config, seed, self.data.num_classes, self.settings.in_shape)
        except TrialVerdict as e:  # a verdict on the configuration at this image size, as the sampler should learn
            trial.set_user_attr("pruned_reason", str(e))
            raise reject(trial, str(e)) from None  # untrained: it takes no budget (search/trial/budget.py)
        device = self.data.train_x.device
        trial.set_user_attr("seed", seed)
        trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
        trial.set_user_attr("device", describe(device))
        if device.type == "cpu":  # a reduction split over other threads rounds differently: rerun restores it
            trial.set_user_attr("threads", torch.get_num_threads())
        trial.set_user_attr("params", sum(p.numel() for p in model.parameters()))
        trial.set_user_attr("flops_per_image", count_flops(model, self.settings.in_shape))
        history: list[EpochResult] = []

        def report(result: EpochResult) -> None:
            history.append(result)
            self.on_epoch(trial, result, history)

        epochs = self.settings.epochs
        decay_from = epochs - max(1, round(epochs * TRIAL_DECAY)) if self.for_final_run else None
        at_peak: dict = {}

        def keep_peak(net: nn.Module = model) -> None:  # what the final run continues: it brings the rate down
            at_peak.update({k: v.detach().to("cpu", copy=True) for k, v in net.state_dict().items()})
            trial.set_user_attr("held_at", held_position(config.train, decay_from, epochs))
            trial.set_user_attr("held_epochs", decay_from)

        try:
            self.before_fit(trial, model)
            fit(model, self.data, config.train, epochs=self.settings.epochs, seed=seed, compile=self.settings.compile,
                on_epoch=report, decay_from=decay_from, on_decay=keep_peak, curve_tta=False,
                on_probe=lambda per_image: self.check_time(trial, config.train.tta, per_image))
        except Diverged as e:
            trial.set_user_attr("pruned_reason", str(e))
            raise optuna.TrialPruned(str(e)) from None
        except optuna.TrialPruned as e:
            trial.set_user_attr("pruned_reason", str(e))
            raise
        except torch.OutOfMemoryError as e:
            raise oom_verdict(trial, e) from None  # pruned + infeasible: search/trial/oom.py says why
        else:
            values = self.values(trial, history)
            if self.on_complete is not None and not isinstance(values, tuple):
                self.on_complete(trial, model.state_dict(), values, at_peak or None)
        finally:
            self._record(trial, history)
            del model
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
        return values

    # Three hooks a subclass may replace (search/trial/pareto.py's multi-objective one does).
    def before_fit(self, trial: optuna.Trial, model: nn.Module) -> None:
        """Runs once the model is built, before training; raising TrialPruned rejects the trial."""
        mflops = trial.user_attrs["flops_per_image"] / 1e6
        if self.settings.max_mflops and mflops > self.settings.max_mflops:
            raise reject(trial, f"rejected before training: {mflops:.0f} MFLOP an image, over the preset's "
                                f"max_mflops {self.settings.max_mflops:g}")

    def check_time(self, trial: optuna.Trial, tta: bool, per_image: float) -> None:
        """The probe's verdict: rejects the trial (untrained, no budget) when it cannot fit the study's time."""
        n_train, n_val = self.data.train_x.shape[0], self.data.val_x.shape[0]
        predicted = predict_seconds(per_image, n_train, n_val, self.settings.epochs, tta)
        trial.set_user_attr("predicted_seconds", round(predicted, 2))
        if self.time_budget.deadline is None:
            return
        trials_left = None if self.settings.trials is None else max(1, self.settings.trials - counted(trial.study)[0])
        why = self.time_budget.verdict(predicted, trials_left, design="design" in trial.user_attrs)
        if why is not None:
            raise reject(trial, f"rejected after a timed probe: {why}")

    def on_epoch(self, trial: optuna.Trial, result: EpochResult, history: list[EpochResult]) -> None:
        """Reports an epoch to the pruner; raises TrialPruned when it says stop."""
        value = getattr(result, self.settings.metric)
        trial.report(value, result.epoch)
        if trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {result.epoch}: {self.settings.metric} {value:.4f}")

    def values(self, trial: optuna.Trial, history: list[EpochResult]) -> float | tuple[float, ...]:
        """The trial's objective value(s) once training has finished."""
        return getattr(history[-1], self.settings.metric)

    def _record(self, trial: optuna.Trial, history: list[EpochResult]) -> None:
        if not history:
            return
        trial.set_user_attr("epochs", len(history))
        trial.set_user_attr("epoch_seconds", round(statistics.median(r.seconds for r in history), 4))
        trial.set_user_attr("eval_seconds", round(statistics.median(r.eval_seconds for r in history), 4))
        # the first epoch carries start-up costs (compilation, cuDNN's algorithm search): kept apart
        trial.set_user_attr("first_epoch_seconds", round(history[0].seconds, 4))
        best = max(history, key=lambda r: getattr(r, self.settings.metric))
        trial.set_user_attr("best_epoch", best.epoch)
        trial.set_user_attr("best_value", getattr(best, self.settings.metric))
        last = history[-1]
        trial.set_user_attr("accuracy", last.accuracy)
        trial.set_user_attr("macro_f1", last.macro_f1)
        trial.set_user_attr("per_class_f1", last.per_class_f1)
        for key in ("micro_f1", "samples_f1", "roc_auc", "thresholds"):  # binary and multilabel tasks
            value = getattr(last, key)
            # a NaN AUC (one class in validation) is no measurement: the dashboard shows none, not NaN
            if value is not None and not (isinstance(value, float) and math.isnan(value)):
                trial.set_user_attr(key, value)
        trial.set_user_attr("train_loss", [round(r.train_loss, 5) for r in history])
        trial.set_user_attr("val_loss", [round(r.val_loss, 5) for r in history])
        if self.settings.storage_url is not None:
            self._attach(trial, history)

    def _attach(self, trial: optuna.Trial, history: list[EpochResult]) -> None:
        """The learning curve and the last epoch's confusion matrix (none for multilabel: no single
        one exists) as files on the trial, where the dashboard's trial page lists them."""
        curve = {"metric": self.settings.metric, "epochs": [
            {"epoch": r.epoch, self.settings.metric: getattr(r, self.settings.metric), "train_loss": r.train_loss,
             "val_loss": r.val_loss, "lr": r.lr, "seconds": round(r.seconds, 4)} for r in history]}
        files = [("learning_curve.json", curve)]
        if history[-1].confusion is not None:
            files.append(("confusion_matrix.json", {"epoch": history[-1].epoch, "classes": self.settings.class_names,
                                                    "rows": "true class", "columns": "predicted class",
                                                    "matrix": history[-1].confusion}))
        try:
            for name, content in files:
                attach_json(trial, name, content, self.settings.storage_url)
        except OSError as e:  # a full or unwritable artifact folder must not cost the trial its verdict
            print(f"trial {trial.number}: artifacts not saved ({e.strerror or e})", file=sys.stderr, flush=True)
