"""Search spaces, one module per model family: ``suggest(trial) -> TrialConfig``.

A space never builds a module; it only turns an Optuna trial into frozen config dataclasses, so the
best trial can be rebuilt with no study at all: ``suggest(optuna.trial.FixedTrial(best.params))``.
"""

from __future__ import annotations

import importlib
from types import ModuleType

from search.errors import UserError

__all__ = ["SPACES", "get_space"]

SPACES = ("cnn", "resnet", "mlp", "timm")


def get_space(name: str) -> ModuleType:
    if name not in SPACES:
        raise UserError(f"unknown space {name!r}; known spaces: {', '.join(SPACES)}")
    return importlib.import_module(f"spaces.{name}")
