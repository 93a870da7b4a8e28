"""The plain-CNN space: depth decides how many per-layer widths exist (optuna-examples style)."""

from __future__ import annotations

import optuna

from gic_models.cnn import CNNSpec, ConvLayer, DenseLayer
from spaces.common import TrialConfig, suggest_training
from spaces.priors import Budget, Prior, training_priors

__all__ = ["MODEL", "SEED_DESIGNS", "priors", "suggest"]

MODEL = "cnn"
MAX_CONV, MAX_DENSE = 6, 3
MAX_FILTERS = 256


def suggest(trial: optuna.Trial) -> TrialConfig:
    n_conv = trial.suggest_int("n_conv", 2, MAX_CONV)
    convs, in_ch = [], 3
    for i in range(n_conv):
        filters = trial.suggest_int(f"filters_l{i}", 16, MAX_FILTERS, log=True)
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
    block_convs = trial.suggest_int("block_convs", 1, 2)
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
        block_convs=block_convs,
        residual=trial.suggest_categorical("residual", [False, True]) if block_convs > 1 else False,
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
    "padding": "valid", "norm": "bn_after_pool", "activation": "relu", "head": "flatten", "block_convs": 1,
    "optimizer": "adam", "lr": 1e-3, "weight_decay": 1e-6, "batch_size": 32,
    "schedule": "exp_decay", "label_smoothing": 0.0,
    "mix": "none", "flip": False, "translate": 0, "cutout": 0, "jitter": 0.0, "ema": False, "tta": False,
}

SEED_DESIGNS = {"seed000-cnn": SEED000}


# Widths of the recommended design's blocks: each halving of the map doubles the channels, as in
# VGG and ResNets. Two CPU cores afford about seed 000's cost (50 MFLOP an image at 48px), a GPU 4x.
CPU_WIDTHS, GPU_WIDTHS = (32, 64, 128, 256, 256, 256), (64, 128, 256, 256, 256, 256)


def priors(budget: Budget) -> dict[str, Prior]:
    """A modern small-image CNN: conv-BN-activation blocks with same padding, max-pooling between
    them, a global-average-pool head straight to the classes, trained with the speed-run recipe."""
    short = budget.short
    widths = GPU_WIDTHS if budget.gpu else CPU_WIDTHS
    per_layer = {}
    for i, width in enumerate(widths[:MAX_CONV]):
        per_layer[f"filters_l{i}"] = Prior(width, (width * 3 // 4, min(MAX_FILTERS, width * 3 // 2)),
                                          "double as the map halves")
        per_layer[f"kernel_l{i}"] = Prior(3, (3,), "stacked 3x3 convs see as far as a 5x5 for less")
        per_layer[f"reduce_l{i}"] = Prior(0.0, (0.0,), "a 1x1 bottleneck pays off only in wide, deep nets")
        per_layer[f"dropout_l{i}"] = Prior(0.0, (0.0, 0.1) if short else (0.0, 0.25),
                                           "BN regularises already; dropout slows the first epochs")
    for i in range(MAX_DENSE):
        per_layer[f"dense_units_l{i}"] = Prior(256, (128, 512), "a modest hidden layer when there is one")
        per_layer[f"dense_dropout_l{i}"] = Prior(0.2, (0.0, 0.3), "light dropout before the classifier")
    return {
        # Three poolings take 48-64px images to 6-8px maps, where a global pool loses little.
        "n_conv": Prior(3, (3, 4), "three or four blocks: each halves the map"),
        **per_layer,
        "block_convs": Prior(2, (1, 2), "a second conv a block, as airbench's: it paid in 3 CPU epochs"),
        "residual": Prior(True, (False, True), "identity skips make the extra convs easy to train"),
        "n_dense": Prior(0, (0, 1), "a global-pool head needs no dense stack"),
        "padding": Prior("same", ("same",), "keeps the map's border: small images have little to lose"),
        "norm": Prior("bn", ("bn",), "BN after every conv is what lets a high learning rate train"),
        "activation": Prior("relu", ("relu", "gelu"), "ReLU is fastest; GELU is airbench's"),
        "head": Prior("avg", ("avg",), "global average pooling: few parameters, any image size"),
        **training_priors(budget),
    }
