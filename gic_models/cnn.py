"""A configurable plain CNN: the family of seed 000's 4-conv network and seed 002's 1x1-reduced one.

Each conv block is ``[1x1 reduction] -> kxk conv -> norm/activation -> [2x2 max-pool] -> [more kxk
convs of the same width, optionally residual] -> dropout``.
Two block orders are offered because the seeds used both: the usual ``conv-bn-act-pool`` and seed
000's Keras order ``conv-act-pool-bn``. The head flattens (seed 000, 002) or global-average-pools,
then runs a stack of dense layers with the same norm/dropout pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gic_models.registry import register_model

__all__ = ["CNNSpec", "ConvLayer", "DenseLayer", "build_cnn"]

ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU}


@dataclass(frozen=True)
class ConvLayer:
    filters: int
    kernel: int = 3
    reduce: int = 0  # channels of a 1x1 reduction conv before this one (seed 002); 0 = none
    pool: bool = True
    dropout: float = 0.0


@dataclass(frozen=True)
class DenseLayer:
    units: int
    dropout: float = 0.0


@dataclass(frozen=True)
class CNNSpec:
    convs: tuple[ConvLayer, ...]
    dense: tuple[DenseLayer, ...] = ()
    padding: str = "same"  # "valid" shrinks every map by kernel-1, as Keras' default did in seed 000
    norm: str = "bn"  # "bn": conv-bn-act-pool; "bn_after_pool": conv-act-pool-bn (seed 000); "none"
    activation: str = "relu"
    head: str = "flatten"  # or "avg": global average pooling, which makes the head size-independent
    # convs per block: the ones after the first keep its width and map size (airbench's blocks have 2)
    block_convs: int = 1
    residual: bool = False  # the extra convs of a block add their input back (a ResNet's identity skip)


def _conv_block(layer: ConvLayer, in_ch: int, side: int, spec: CNNSpec) -> tuple[nn.Sequential, int]:
    """Returns the block and the side of its output map.

    Deep stacks of valid convolutions and pools can shrink a small image to nothing; rather than
    fail a trial over it, a conv whose kernel no longer fits pads to 'same' and pooling stops at 1px.
    """
    act = ACTIVATIONS[spec.activation]
    mods: list[nn.Module] = []
    if layer.reduce:
        mods += [nn.Conv2d(in_ch, layer.reduce, 1), act()]
        in_ch = layer.reduce
    valid = spec.padding == "valid" and side >= layer.kernel
    use_bn = spec.norm != "none"
    # A conv followed directly by batch norm needs no bias of its own.
    bias = not (use_bn and spec.norm == "bn")
    mods.append(nn.Conv2d(in_ch, layer.filters, layer.kernel, padding=0 if valid else "same", bias=bias))
    side = side - layer.kernel + 1 if valid else side
    pool = layer.pool and side >= 2
    if spec.norm == "bn":
        mods += [nn.BatchNorm2d(layer.filters), act()]
        if pool:
            mods.append(nn.MaxPool2d(2))
    else:
        mods.append(act())
        if pool:
            mods.append(nn.MaxPool2d(2))
        if use_bn:
            mods.append(nn.BatchNorm2d(layer.filters))
    side = side // 2 if pool else side
    for _ in range(spec.block_convs - 1):
        extra = _same_conv(layer, spec)
        mods.append(Residual(extra) if spec.residual else extra)
    if layer.dropout:
        mods.append(nn.Dropout(layer.dropout))
    return nn.Sequential(*mods), side


class Residual(nn.Module):
    def __init__(self, body: nn.Module):
        super().__init__()
        self.body = body

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


def _same_conv(layer: ConvLayer, spec: CNNSpec) -> nn.Sequential:
    """A block's extra kxk conv: same width, same map, then the block's own norm/activation order."""
    act = ACTIVATIONS[spec.activation]
    conv = nn.Conv2d(layer.filters, layer.filters, layer.kernel, padding="same", bias=spec.norm != "bn")
    if spec.norm == "bn":
        return nn.Sequential(conv, nn.BatchNorm2d(layer.filters), act())
    if spec.norm == "none":
        return nn.Sequential(conv, act())
    return nn.Sequential(conv, act(), nn.BatchNorm2d(layer.filters))


def build_cnn(spec: CNNSpec, num_classes: int, in_shape: tuple[int, int, int]) -> nn.Module:
    channels, height, width = in_shape
    side = min(height, width)
    blocks = []
    for layer in spec.convs:
        block, side = _conv_block(layer, channels, side, spec)
        blocks.append(block)
        channels = layer.filters
    features = nn.Sequential(*blocks)
    if spec.head == "avg":
        head: list[nn.Module] = [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        width_in = channels
    else:
        head = [nn.Flatten()]
        with torch.no_grad():  # the flattened size, measured rather than derived by hand
            width_in = features.eval()(torch.zeros(1, *in_shape)).numel()
        features.train()
    act = ACTIVATIONS[spec.activation]
    for dense in spec.dense:
        head += [nn.Linear(width_in, dense.units), act()]
        if spec.norm != "none":
            head.append(nn.BatchNorm1d(dense.units))
        if dense.dropout:
            head.append(nn.Dropout(dense.dropout))
        width_in = dense.units
    head.append(nn.Linear(width_in, num_classes))
    return nn.Sequential(features, *head)


register_model("cnn")(build_cnn)
