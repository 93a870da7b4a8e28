"""Search spaces, one module per model family: ``suggest(trial) -> TrialConfig``.

A space never builds a module; it only turns an Optuna trial into frozen config dataclasses, so the
best trial can be rebuilt with no study at all: ``suggest(optuna.trial.FixedTrial(best.params))``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

import optuna

from gic_common.errors import UserError
from gic_common.registry import Registry
from spaces.priors import Budget, recommended

__all__ = ["SPACES", "get_space", "rebuild", "recommended_design"]

# Space name -> its module, imported on first use (timm's pulls in the timm package).
SPACES: Registry[str] = Registry("space", {name: f"spaces.{name}" for name in ("cnn", "resnet", "mlp", "timm")})


def get_space(name: str) -> ModuleType:
    return importlib.import_module(SPACES[name])


def rebuild(space: ModuleType, params: dict, what: str):
    """The configuration a finished trial's ``params`` describe (``what`` names it in errors).

    Refuses, rather than quietly building something else, when the space no longer takes every
    stored parameter (a choice the space makes from this machine's files, such as timm weights
    that are not here) or asks for one that was not stored (the space changed since)."""
    fixed = optuna.trial.FixedTrial(params)
    try:
        config = space.suggest(fixed)
    except ValueError as e:  # FixedTrial's word for a parameter it was not given
        raise UserError(f"{what} cannot be rebuilt: {e}") from None
    unused = sorted(set(params) - set(fixed.params))
    if unused:
        name = unused[0]
        raise UserError(f"{what} cannot be rebuilt as it was: its parameter {name}={params[name]!r} does not apply "
                        f"on this machine (for timm's pretrained: the weights file is missing here)")
    return config


def recommended_design(space: ModuleType, budget: Budget) -> dict:
    """The parameters of the space's recommended design (every prior's value) that the space asks for."""
    fixed = optuna.trial.FixedTrial(recommended(space.priors(budget)))
    space.suggest(fixed)
    return fixed.params
