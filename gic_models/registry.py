"""Model builders by name, after timm's ``register_model`` and torchvision's ``get_model``.

A builder takes ``(config, num_classes, in_shape)`` and returns an ``nn.Module``. Registering a
name twice is refused so that two families can never shadow each other silently.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from search.errors import TrialVerdict

__all__ = ["InputTooSmall", "create_model", "list_models", "register_model"]


class InputTooSmall(TrialVerdict):
    """The network cannot take images this small: its downsampling leaves nothing to convolve. A
    search prunes such a trial with this reason; it is a verdict on the configuration, not a crash."""


Builder = Callable[[Any, int, tuple[int, int, int]], nn.Module]
_BUILDERS: dict[str, Builder] = {}


def register_model(name: str) -> Callable[[Builder], Builder]:
    def decorate(builder: Builder) -> Builder:
        if name in _BUILDERS:
            raise ValueError(f"model {name!r} is already registered (by {_BUILDERS[name].__module__})")
        _BUILDERS[name] = builder
        return builder

    return decorate


def list_models() -> list[str]:
    return sorted(_BUILDERS)


def create_model(name: str, config: Any, num_classes: int, in_shape: tuple[int, int, int]) -> nn.Module:
    """Builds model ``name``; ``in_shape`` is (channels, height, width) of one input image."""
    try:
        builder = _BUILDERS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None
    return builder(config, num_classes, in_shape)
