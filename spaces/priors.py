"""Priors: where each parameter of a space should start, and why.

A space says what *can* be tried; its priors say what a practitioner would try first. Each
parameter gets a recommended value (together they make the space's *recommended design*, enqueued
beside the seed designs) and a prior region inside the space's range (the start-up trials draw
uniformly there, on the parameter's own scale, instead of over the whole range). After the
start-up trials the study's sampler sees the whole space again, so a study leaves the prior region
wherever the results say it should (search/workers/prior_sampler.py).

Priors depend on the study's budget: what pays off over 50 epochs (mixup, heavy dropout) only
costs accuracy in 3, and the batch a GPU wants is not the one two CPU cores want.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gic_common.knobs import SHORT_RUN_EPOCHS

__all__ = ["Budget", "Prior", "recommended", "training_priors"]


@dataclass(frozen=True)
class Prior:
    """``value``: the recommended value. ``region``: (low, high) for a number, inside the space's
    range (log-scaled when the space's parameter is); for a choice, the choices start-up draws take."""

    value: Any
    region: tuple
    why: str = ""


@dataclass(frozen=True)
class Budget:
    """What the priors depend on: how long each trial trains, and on what."""

    epochs: int
    device: str = "cpu"  # a torch device type: "cpu", "cuda", "mps"

    @property
    def short(self) -> bool:
        return self.epochs < SHORT_RUN_EPOCHS

    @property
    def gpu(self) -> bool:
        return self.device != "cpu"


def training_priors(budget: Budget) -> dict[str, Prior]:
    """The training recipe of speed-run trainers (airbench, the fast CIFAR-10 runs): Nesterov SGD
    with a one-cycle schedule, label smoothing, flips and small translations, mirror TTA."""
    short = budget.short
    return {
        "optimizer": Prior("sgd", ("sgd",), "Nesterov SGD with BN trains fastest and steadiest at a high rate"),
        "lr": Prior(0.08, (0.03, 0.1), "a one-cycle peak for SGD with BN; below 0.02 it learns too slowly"),
        "weight_decay": Prior(5e-4, (2e-4, 1e-3), "the usual coupled L2 of SGD on small-image CNNs"),
        "momentum": Prior(0.9, (0.85, 0.95), "standard for Nesterov SGD"),
        "nesterov": Prior(True, (True,), "a free improvement over plain momentum"),
        # On a GPU big batches are what keep it busy; on a CPU time per image barely depends on the
        # batch, so small batches give more updates in the same time, which few epochs need.
        "batch_size": Prior(256, (128, 256, 512), "GPU throughput") if budget.gpu
        else Prior(32, (32, 64), "more steps per second of CPU time (bench/RESULTS.md)"),
        "schedule": Prior("onecycle", ("onecycle", "cosine"), "warm-up then annealing: best in few epochs"),
        "warmup": Prior(0.1, (0.05, 0.2), "a short warm-up keeps the high rate from blowing up early"),
        "label_smoothing": Prior(0.1, (0.05, 0.2), "calibrates and regularises at no cost"),
        "mix": Prior("none", ("none",) if short else ("none", "mixup", "cutmix"),
                     "mixing slows early learning; only long runs earn it back"),
        "mix_alpha": Prior(0.3, (0.1, 0.5), "mild mixing when mixing at all"),
        "flip": Prior(True, (True,), "mirror images are as real as the originals for most photographs"),
        "translate": Prior(2, (1, 3) if short else (2, 4), "small shifts: airbench's 2px"),
        "cutout": Prior(0, (0,) if short else (0, 8), "a regulariser for long runs"),
        "jitter": Prior(0.0, (0.0, 0.05) if short else (0.0, 0.2), "colour changes matter less than shape"),
        "ema": Prior(False, (False,) if short else (False, True), "weight averaging pays off late in long runs"),
        "tta": Prior(True, (True,), "averaging the mirrored image's prediction is nearly free accuracy"),
    }


def recommended(priors: dict[str, Prior]) -> dict[str, Any]:
    """The recommended design: every parameter at its recommended value (a space asks for the ones
    that apply, so values of layers beyond the design's depth are simply not used)."""
    return {name: prior.value for name, prior in priors.items()}
