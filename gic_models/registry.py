"""Model builders by name, after timm's ``register_model`` and torchvision's ``get_model``.

A builder takes ``(config, num_classes, in_shape)`` and returns an ``nn.Module``. Registering a
name twice is refused so that two families can never shadow each other silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from gic_common.errors import TrialVerdict
from gic_common.registry import Registry

__all__ = ["MODELS", "InputTooSmall", "create_model", "list_models", "register_model"]


class InputTooSmall(TrialVerdict):
    """The network cannot take images this small: its downsampling leaves nothing to convolve. A
    search prunes such a trial with this reason; it is a verdict on the configuration, not a crash."""


Builder = Callable[[Any, int, tuple[int, int, int]], nn.Module]
# A model named nowhere but in code (a space's MODEL) is a bug, not the user's to fix: a KeyError.
MODELS: Registry[Builder] = Registry("model", error=KeyError, sort_names=True)


def register_model(name: str) -> Callable[[Builder], Builder]:
    return MODELS.register(name)


def list_models() -> list[str]:
    return sorted(MODELS)


def create_model(name: str, config: Any, num_classes: int, in_shape: tuple[int, int, int]) -> nn.Module:
    """Builds model ``name``; ``in_shape`` is (channels, height, width) of one input image."""
    return MODELS[name](config, num_classes, in_shape)
