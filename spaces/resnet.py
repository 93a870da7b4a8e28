"""The residual-network space: the number of stages decides how many widths and block counts exist."""

from __future__ import annotations

import optuna

from gic_models.resnet import ResNetSpec
from spaces.common import TrialConfig, suggest_training
from spaces.priors import Budget, Prior, training_priors

__all__ = ["MODEL", "SEED_DESIGNS", "priors", "suggest"]

MODEL = "resnet"
MAX_STAGES = 4


def suggest(trial: optuna.Trial) -> TrialConfig:
    n_stages = trial.suggest_int("n_stages", 2, MAX_STAGES)
    arch = ResNetSpec(
        stem_kernel=trial.suggest_categorical("stem_kernel", [3, 5, 7]),
        stem_stride=trial.suggest_categorical("stem_stride", [1, 2]),
        stem_padding=trial.suggest_categorical("stem_padding", ["same", "valid"]),
        stem_pool=trial.suggest_categorical("stem_pool", [False, True]),
        stem_width=trial.suggest_int("stem_width", 16, 128, log=True),
        widths=tuple(trial.suggest_int(f"width_s{i}", 16, 512, log=True) for i in range(n_stages)),
        blocks=tuple(trial.suggest_int(f"blocks_s{i}", 1, 4) for i in range(n_stages)),
        block=trial.suggest_categorical("block", ["basic", "bottleneck"]),
        preact=trial.suggest_categorical("preact", [False, True]),
        pool_grid=trial.suggest_categorical("pool_grid", [1, 2]),
        fc_units=trial.suggest_categorical("fc_units", [0, 32, 128, 512]),
        dropout=trial.suggest_float("dropout", 0.0, 0.5),
    )
    return TrialConfig(MODEL, arch, suggest_training(trial))


def _stages(widths, blocks) -> dict:
    return {
        "n_stages": len(widths),
        **{f"width_s{i}": w for i, w in enumerate(widths)},
        **{f"blocks_s{i}": b for i, b in enumerate(blocks)},
    }


NO_AUGMENT = {"mix": "none", "flip": False, "translate": 0, "cutout": 0, "jitter": 0.0, "ema": False, "tta": False}

# Seed 000's ResNet10 (docs/seed-designs.md): an unpadded 3x3 stem of 64, six basic blocks of
# 64, 64, 128/2, 128, 256/2, 256, 8x8 average pooling of the 16x16 map (pool_grid 2 at 64px),
# dense 100; Adam at Keras' default rate, batch 32, no schedule, no augmentation. ~2.9M parameters.
SEED000 = {
    "stem_kernel": 3, "stem_stride": 1, "stem_padding": "valid", "stem_pool": False, "stem_width": 64,
    **_stages((64, 128, 256), (2, 2, 2)),
    "block": "basic", "preact": False, "pool_grid": 2, "fc_units": 0, "dropout": 0.0,
    "optimizer": "adam", "lr": 1e-3, "weight_decay": 1e-6, "batch_size": 32,
    "schedule": "constant", "label_smoothing": 0.0, **NO_AUGMENT,
}

# Seed 003's scaled-down ResNet34: a 7x7/2 stem with BN, ReLU and 3x3/2 max-pooling, stages of 64,
# 128, 256 with two basic blocks each, a dense layer of 32, dropout 0.5, the classifier. Its report
# settled on SGD (the steadiest of its grid) at the grid's largest rate, 0.01; Keras' SGD has no
# momentum, 0.8 is this space's floor. Its augmentation (rotate, shift, zoom, flip) maps to flips
# and 4px shifts. The report's first block of each stage always had a 1x1 skip; here the 64-wide
# first one is an identity (4k parameters, 0.15% of the total, fewer).
SEED003 = {
    "stem_kernel": 7, "stem_stride": 2, "stem_padding": "same", "stem_pool": True, "stem_width": 64,
    **_stages((64, 128, 256), (2, 2, 2)),
    "block": "basic", "preact": False, "pool_grid": 1, "fc_units": 32, "dropout": 0.5,
    "optimizer": "sgd", "lr": 1e-2, "momentum": 0.8, "nesterov": False, "weight_decay": 1e-6,
    "batch_size": 32, "schedule": "constant", "label_smoothing": 0.0,
    **NO_AUGMENT, "flip": True, "translate": 4,
}

SEED_DESIGNS = {"seed000-resnet10": SEED000, "seed003-resnet34s": SEED003}


def priors(budget: Budget) -> dict[str, Prior]:
    """A small-image ResNet (as for CIFAR): a 3x3 stride-1 stem without pooling, basic blocks,
    widths doubling by stage, a global pool straight to the classes."""
    base = 64 if budget.gpu else 32  # two CPU cores afford a quarter of a GPU's cost an image
    stages = {}
    for i in range(MAX_STAGES):
        width = min(base * 2**i, 512)
        stages[f"width_s{i}"] = Prior(width, (width * 3 // 4, min(512, width * 3 // 2)),
                                         "double the width as the map halves")
        stages[f"blocks_s{i}"] = Prior(1 if not budget.gpu else 2, (1, 2), "ResNet18 has 2; 1 for a CPU's budget")
    return {
        "n_stages": Prior(3, (3, 4), "three stages take 32-64px images to 8-16px maps"),
        "stem_kernel": Prior(3, (3,), "a small image has no pixels to spare for a 7x7 stride-2 stem"),
        "stem_stride": Prior(1, (1,), "as above: the ImageNet stem throws away 3/4 of a 64px image"),
        "stem_padding": Prior("same", ("same",), "keeps the border"),
        "stem_pool": Prior(False, (False,), "as the stride: no early downsampling"),
        "stem_width": Prior(base, (base * 3 // 4, base * 3 // 2), "the first stage's width"),
        **stages,
        "block": Prior("basic", ("basic",), "bottlenecks pay off from ResNet50's depth up"),
        "preact": Prior(False, (False, True), "either trains at these depths"),
        "pool_grid": Prior(1, (1,), "a global pool"),
        "fc_units": Prior(0, (0,), "the pooled features go straight to the classes"),
        "dropout": Prior(0.0, (0.0, 0.1) if budget.short else (0.0, 0.3), "BN regularises; dropout slows early epochs"),
        **training_priors(budget),
    }
