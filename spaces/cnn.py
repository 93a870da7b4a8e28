"""The plain-CNN space: depth decides how many per-layer widths exist (optuna-examples style)."""

from __future__ import annotations

import optuna

from gic_models.cnn import CNNSpec, ConvLayer, DenseLayer
from spaces.common import TrialConfig, suggest_training

__all__ = ["MODEL", "SEED_DESIGNS", "suggest"]

MODEL = "cnn"
MAX_CONV, MAX_DENSE = 6, 3


def suggest(trial: optuna.Trial) -> TrialConfig:
    n_conv = trial.suggest_int("n_conv", 2, MAX_CONV)
    convs, in_ch = [], 3
    for i in range(n_conv):
        filters = trial.suggest_int(f"filters_l{i}", 16, 256, log=True)
        # A 1x1 reduction to a fraction of the incoming channels before the conv (seed 002).
        reduce = trial.suggest_categorical(f"reduce_l{i}", [0.0, 0.25, 0.5]) if i > 0 else 0.0
        convs.append(
            ConvLayer(
                filters=filters,
                kernel=trial.suggest_categorical(f"kernel_l{i}", [3, 5, 7]),
                reduce=max(8, round(in_ch * reduce)) if reduce else 0,
                dropout=trial.suggest_float(f"dropout_l{i}", 0.0, 0.5),
            )
        )
        in_ch = filters
    n_dense = trial.suggest_int("n_dense", 0, MAX_DENSE)
    dense = tuple(
        DenseLayer(
            trial.suggest_int(f"dense_units_l{i}", 64, 2048, log=True),
            trial.suggest_float(f"dense_dropout_l{i}", 0.0, 0.6),
        )
        for i in range(n_dense)
    )
    arch = CNNSpec(
        convs=tuple(convs),
        dense=dense,
        padding=trial.suggest_categorical("padding", ["same", "valid"]),
        norm=trial.suggest_categorical("norm", ["bn", "bn_after_pool", "none"]),
        activation=trial.suggest_categorical("activation", ["relu", "gelu", "silu"]),
        head=trial.suggest_categorical("head", ["flatten", "avg"]),
    )
    return TrialConfig(MODEL, arch, suggest_training(trial))


# Seed 000's hand-tuned CNN and its training, as this space's parameters: enqueued first in every
# new cnn study so the study shows what the search gains over it.
SEED000 = {
    "n_conv": 4,
    **{f"filters_l{i}": f for i, f in enumerate((64, 64, 128, 256))},
    **{f"kernel_l{i}": 3 for i in range(4)},
    **{f"reduce_l{i}": 0.0 for i in range(1, 4)},
    **{f"dropout_l{i}": d for i, d in enumerate((0.25, 0.35, 0.45, 0.45))},
    "n_dense": 2,
    "dense_units_l0": 256, "dense_dropout_l0": 0.35,
    "dense_units_l1": 256, "dense_dropout_l1": 0.45,
    "padding": "valid", "norm": "bn_after_pool", "activation": "relu", "head": "flatten",
    "optimizer": "adam", "lr": 1e-3, "weight_decay": 1e-6, "batch_size": 32,
    "schedule": "exp_decay", "label_smoothing": 0.0,
    "mix": "none", "flip": False, "translate": 0, "cutout": 0, "jitter": 0.0,
}

SEED_DESIGNS = {"seed000-cnn": SEED000}
