"""The MLP space: depth decides how many widths and dropouts exist."""

from __future__ import annotations

import optuna

from gic_models.mlp import ACTIVATIONS, MLPSpec
from spaces.common import TrialConfig, suggest_training
from spaces.priors import Budget, Prior, training_priors

__all__ = ["MODEL", "SEED_DESIGNS", "priors", "suggest"]

MODEL = "mlp"
MAX_LAYERS = 4


def suggest(trial: optuna.Trial) -> TrialConfig:
    n_layers = trial.suggest_int("n_layers", 1, MAX_LAYERS)
    arch = MLPSpec(
        units=tuple(trial.suggest_int(f"units_l{i}", 16, 2048, log=True) for i in range(n_layers)),
        dropout=tuple(trial.suggest_float(f"dropout_l{i}", 0.0, 0.6) for i in range(n_layers)),
        activation=trial.suggest_categorical("activation", list(ACTIVATIONS)),
        norm=trial.suggest_categorical("norm", [False, True]),
    )
    return TrialConfig(MODEL, arch, suggest_training(trial))


# Seed 003's MLP: flatten, dense 24, dense 48, dropout, dense 100 (softmax). The report does not
# give the dropout rate or the hidden activation; 0.5 and ReLU are the Keras tutorials' usual ones.
# Training as its grid's best corner for SGD: rate 0.01, batch 32 (Keras' default), its augmentation
# (flips and shifts). At 64px and 100 classes: 12288*24+24 + 24*48+48 + 48*100+100 = 301,036 parameters.
SEED003 = {
    "n_layers": 2, "units_l0": 24, "units_l1": 48, "dropout_l0": 0.0, "dropout_l1": 0.5,
    "activation": "relu", "norm": False,
    "optimizer": "sgd", "lr": 1e-2, "momentum": 0.8, "nesterov": False, "weight_decay": 1e-6,
    "batch_size": 32, "schedule": "constant", "label_smoothing": 0.0,
    "mix": "none", "flip": True, "translate": 4, "cutout": 0, "jitter": 0.0, "ema": False, "tta": False,
}

SEED_DESIGNS = {"seed003-mlp": SEED003}


def priors(budget: Budget) -> dict[str, Prior]:
    """An MLP on pixels: two wide normalised layers, light dropout. Pixels carry no translation
    invariance for an MLP, so shifts hurt it less than they help a CNN: kept small."""
    layers = {}
    for i in range(MAX_LAYERS):
        layers[f"units_l{i}"] = Prior(512, (256, 1024), "wide enough to hold many classes' templates")
        layers[f"dropout_l{i}"] = Prior(0.1, (0.0, 0.2) if budget.short else (0.1, 0.4), "an MLP overfits fast")
    train = training_priors(budget)
    train["lr"] = Prior(0.03, (0.01, 0.08), "an MLP with BN takes a lower SGD rate than a CNN")
    train["translate"] = Prior(1, (0, 2), "small shifts only")
    return {
        "n_layers": Prior(2, (1, 3), "depth beyond 2-3 layers adds little to an MLP on pixels"),
        **layers,
        "activation": Prior("relu", ("relu", "gelu"), "either"),
        "norm": Prior(True, (True,), "BN lets the high rate train"),
        **train,
    }
