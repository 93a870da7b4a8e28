"""A multi-layer perceptron on the flattened image: seed 003's baseline (24, 48, dropout, 100).

It exists to show, as seed 003 did, how far below a CNN a network without convolutions lands; its
search space is the honest version of seed 003's grid search over it.
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from gic_models.registry import register_model

__all__ = ["MLPSpec", "build_mlp"]

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}


@dataclass(frozen=True)
class MLPSpec:
    units: tuple[int, ...]  # hidden layer widths, input side first
    dropout: tuple[float, ...]  # after each hidden layer (seed 003: only after the last)
    activation: str = "relu"
    norm: bool = False  # batch norm after each hidden layer's activation

    def __post_init__(self):
        if len(self.units) != len(self.dropout):
            raise ValueError(f"units {self.units} and dropout {self.dropout} must have equal length")


def build_mlp(spec: MLPSpec, num_classes: int, in_shape: tuple[int, int, int]) -> nn.Module:
    width = in_shape[0] * in_shape[1] * in_shape[2]
    layers: list[nn.Module] = [nn.Flatten()]
    for units, dropout in zip(spec.units, spec.dropout, strict=True):
        layers += [nn.Linear(width, units), ACTIVATIONS[spec.activation]()]
        if spec.norm:
            layers.append(nn.BatchNorm1d(units))
        if dropout:
            layers.append(nn.Dropout(dropout))
        width = units
    layers.append(nn.Linear(width, num_classes))
    return nn.Sequential(*layers)


register_model("mlp")(build_mlp)
