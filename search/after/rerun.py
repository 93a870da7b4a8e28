"""`rerun --trial N`: train one trial again from its parameters and seed, and compare the learning
curve with the one the study stored. On the CPU the two are identical, number for number: the
trial's seed fixes the initial weights, the batch order and every augmentation draw, and the
thread count the trial ran with is restored (a reduction split over other threads rounds
differently). On a GPU, cuDNN's kernel choice makes small differences normal.
"""

from __future__ import annotations

from dataclasses import dataclass

import optuna
import torch

from gic_common.errors import UserError
from search.after.rebuild import rebuild_trial
from search.console import log
from search.trial.device import describe
from search.trial.objective import stored_curve
from search.trial.train import Diverged, EpochResult, fit

__all__ = ["Rerun", "rerun_trial"]


@dataclass(frozen=True)
class Rerun:
    trial: int
    metric: str
    stored: list[float]  # the study's stored curve, epoch by epoch
    again: list[float]  # the same metric from this run
    stored_loss: list[float]  # the stored training loss (rounded as stored)
    again_loss: list[float]

    @property
    def identical(self) -> bool:
        return self.stored == self.again and self.stored_loss == self.again_loss

    @property
    def max_difference(self) -> float:
        pairs = list(zip(self.stored, self.again, strict=True))
        return max((abs(a - b) for a, b in pairs), default=0.0)


class _Done(Exception):
    """The rerun reached the last epoch the trial reported."""


def rerun_trial(study: optuna.Study, number: int, device_name: str = "cpu", show=log) -> Rerun:
    def reproducible(trial: optuna.trial.FrozenTrial) -> None:
        if "seed" not in trial.user_attrs:
            raise UserError(f"trial {number} of {study.study_name!r} has no recorded seed; "
                            f"only trials run by this engine can be rerun")
        if not stored_curve(trial):
            raise UserError(f"trial {number} ({trial.state.name.lower()}) reported no epoch; nothing to compare")

    again = rebuild_trial(study, number, device_name, check=reproducible)
    trial, stored, device = again.trial, stored_curve(again.trial), again.device
    threads = trial.user_attrs.get("threads")  # recorded by the objective for a trial on the CPU
    if device.type == "cpu" and threads is not None:
        torch.set_num_threads(int(threads))
    tensors = again.tensors()
    metric = again.settings.metric
    model = again.model()  # as the objective does: the initial weights come from the trial's seed
    log(f"rerunning trial {number} of {study.study_name!r} ({len(stored)} epochs, seed {again.seed}) "
        f"on {describe(device)}")

    history: list[EpochResult] = []

    def line(r: EpochResult) -> None:
        history.append(r)
        before = stored[r.epoch - 1]
        value = getattr(r, metric)
        mark = "same" if value == before else f"stored {before:.6f}"
        show(f"  epoch {r.epoch:>3}: {metric} {value:.6f} ({mark}), loss {r.train_loss:.5f}")
        if r.epoch == len(stored):
            raise _Done

    # The trial planned the study's full epochs (its learning-rate schedule depends on that total)
    # and the pruner may have stopped it early: plan the same, stop at the same epoch.
    try:
        # compiled as the trial was, so the rerun runs the very kernels the trial ran
        fit(model, tensors, again.config.train, epochs=again.epochs, seed=again.seed, on_epoch=line,
            compile=again.settings.compile, curve_tta=False)
    except _Done:
        pass
    except Diverged as e:  # the stored trial got further: on this device or build it does not reproduce
        raise UserError(f"trial {number} diverged in this rerun after {len(history)} of its {len(stored)} "
                        f"stored epochs ({e}): not reproduced here") from None
    return Rerun(
        trial=number, metric=metric, stored=stored, again=[getattr(r, metric) for r in history],
        stored_loss=list(trial.user_attrs.get("train_loss", [])),
        again_loss=[round(r.train_loss, 5) for r in history],
    )
