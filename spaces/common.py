"""What every space returns, and the training settings all families search the same way."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import optuna

from gic_common.configs import OPTIMIZERS, SCHEDULES, AugmentConfig, TrainConfig

__all__ = ["TrialConfig", "suggest_augment", "suggest_training"]


@dataclass(frozen=True)
class TrialConfig:
    """A space's answer: which registered model, its architecture, and how to train it."""

    model: str
    arch: Any
    train: TrainConfig


def suggest_augment(trial: optuna.Trial) -> AugmentConfig:
    mix = trial.suggest_categorical("mix", ["none", "mixup", "cutmix"])
    return AugmentConfig(
        flip=trial.suggest_categorical("flip", [False, True]),
        translate=trial.suggest_int("translate", 0, 6),
        cutout=trial.suggest_int("cutout", 0, 20, step=4),
        jitter=trial.suggest_float("jitter", 0.0, 0.4),
        mix=mix,
        mix_alpha=trial.suggest_float("mix_alpha", 0.1, 1.0) if mix != "none" else 1.0,
    )


def suggest_training(trial: optuna.Trial) -> TrainConfig:
    optimizer = trial.suggest_categorical("optimizer", list(OPTIMIZERS))
    schedule = trial.suggest_categorical("schedule", list(SCHEDULES))
    return TrainConfig(
        optimizer=optimizer,
        # One range for all optimizers keeps the space static for the multivariate TPE; a rate too
        # high for Adam diverges, is pruned with its reason, and TPE learns the joint boundary.
        lr=trial.suggest_float("lr", 1e-4, 1e-1, log=True),
        # 1e-6 is the floor standing for "none": a log scale cannot hold zero. The ceiling is 1e-3
        # because Adam's and RMSprop's decay is L2 added to the gradient: at 1e-2 it swamped the
        # data term and every such trial of a first GPU study stayed near chance.
        weight_decay=trial.suggest_float("weight_decay", 1e-6, 1e-3, log=True),
        momentum=trial.suggest_float("momentum", 0.8, 0.99) if optimizer in ("sgd", "rmsprop") else 0.9,
        nesterov=trial.suggest_categorical("nesterov", [False, True]) if optimizer == "sgd" else False,
        # Big batches keep a big GPU busy: seed 000's CNN trained 7x the images/s at 256 as at 32 (H100).
        batch_size=trial.suggest_categorical("batch_size", [32, 64, 128, 256, 512]),
        schedule=schedule,
        warmup=trial.suggest_float("warmup", 0.0, 0.2) if schedule == "cosine" else 0.0,
        label_smoothing=trial.suggest_float("label_smoothing", 0.0, 0.2),
        augment=suggest_augment(trial),
        ema=trial.suggest_categorical("ema", [False, True]),
        tta=trial.suggest_categorical("tta", [False, True]),
    )
