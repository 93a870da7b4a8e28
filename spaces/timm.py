"""The timm space: an architecture from a curated list, its stem, and the regularisers timm exposes."""

from __future__ import annotations

import optuna

from gic_models.timm import CURATED, TimmSpec, weights_file
from spaces.common import TrialConfig, suggest_training
from spaces.priors import Budget, Prior, training_priors

__all__ = ["MODEL", "SEED_DESIGNS", "priors", "suggest"]

MODEL = "timm"


def suggest(trial: optuna.Trial) -> TrialConfig:
    name = trial.suggest_categorical("timm_model", list(CURATED))
    # Pretraining is searched only for a model whose weights file is on disk; for any other the
    # parameter does not exist (a conditional parameter, as momentum is for SGD alone), so no trial
    # can ask for weights that are missing. Its distribution is the same whenever it exists, as
    # Optuna requires; pruning the trials that drew missing weights instead would waste them and
    # teach the sampler that those models train badly.
    pretrained = trial.suggest_categorical("pretrained", [False, True]) if weights_file(name).is_file() else False
    arch = TimmSpec(
        name=name,
        small_stem=trial.suggest_categorical("small_stem", [True, False]),
        drop_rate=trial.suggest_float("drop_rate", 0.0, 0.5),
        drop_path=trial.suggest_float("drop_path", 0.0, 0.3),
        pretrained=pretrained,
    )
    return TrialConfig(MODEL, arch, suggest_training(trial))


# No seed used timm; its ResNet18 with a small-image stem, trained the usual way for small images
# (SGD with Nesterov momentum, cosine schedule, flips and shifts), is the reference to start from.
RESNET18 = {
    "timm_model": "resnet18", "small_stem": True, "drop_rate": 0.0, "drop_path": 0.05,
    "optimizer": "sgd", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4,
    "batch_size": 128, "schedule": "cosine", "warmup": 0.05, "label_smoothing": 0.1,
    "mix": "none", "flip": True, "translate": 4, "cutout": 0, "jitter": 0.0, "ema": False, "tta": False,
}

SEED_DESIGNS = {"resnet18-small-stem": RESNET18}


def priors(budget: Budget) -> dict[str, Prior]:
    """ResNet-family networks with the small-image stem first; the rest of the list after them."""
    small = [m for m in CURATED if m.startswith("resnet")] or list(CURATED)
    return {
        "timm_model": Prior(small[0], tuple(small), "ResNets train fast and steadily from scratch"),
        "pretrained": Prior(True, (True,), "pretrained weights, where their file is here, start far ahead"),
        "small_stem": Prior(True, (True,), "the ImageNet stem throws away 15/16 of a small image"),
        "drop_rate": Prior(0.0, (0.0, 0.2), "light dropout before the classifier"),
        "drop_path": Prior(0.05, (0.0, 0.1), "stochastic depth helps deeper nets a little"),
        **training_priors(budget),
    }
