"""Model families for small images, behind one registry: ``create_model(name, config, ...)``."""

from gic_models import cnn, mlp, resnet, timm  # noqa: F401  (each registers its name)
from gic_models.registry import InputTooSmall, create_model, list_models, register_model

__all__ = ["InputTooSmall", "create_model", "list_models", "register_model"]
