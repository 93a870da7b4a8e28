"""Residual networks for small images: the family of seed 000's ResNet10 and seed 003's scaled ResNet34.

``stem -> stages of residual blocks -> pooled head``. The stem is one kxk convolution (stride 1 or 2,
'same' or seed 000's unpadded 'valid') with batch norm and ReLU, optionally followed by a 3x3/2
max-pool as in ImageNet ResNets (seed 003). The first stage keeps the resolution, each later one
halves it in its first block. Blocks are basic (two 3x3) or bottleneck (1x1 -> 3x3 -> 1x1 at a
quarter of the width), post-activation (He et al. 2015) or pre-activation (He et al. 2016). A 1x1
strided projection joins the skip path wherever the shape changes. The head pools to a 1x1 grid
(global average) or to 2x2 and flattens (seed 000's 8x8 pooling of a 16x16 map), then an optional
hidden dense layer (seed 003's FC 32), dropout and the classifier.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from gic_models.registry import register_model

__all__ = ["ResNetSpec", "build_resnet"]


@dataclass(frozen=True)
class ResNetSpec:
    widths: tuple[int, ...]  # output channels of each stage
    blocks: tuple[int, ...]  # residual blocks in each stage
    stem_width: int = 64
    stem_kernel: int = 3
    stem_stride: int = 1
    stem_padding: str = "same"  # "valid": seed 000's unpadded Keras stem
    stem_pool: bool = False  # 3x3/2 max-pool after the stem (ImageNet ResNets, seed 003)
    block: str = "basic"  # or "bottleneck"
    preact: bool = False  # BN-ReLU before each conv, identity skip paths kept clean
    pool_grid: int = 1  # 1: global average pooling; 2: pool to 2x2 and flatten (seed 000)
    fc_units: int = 0  # a hidden dense layer before the classifier (seed 003: 32); 0 = none
    dropout: float = 0.0  # before the classifier

    def __post_init__(self):
        if len(self.widths) != len(self.blocks) or not self.widths:
            raise ValueError(f"widths {self.widths} and blocks {self.blocks} must be non-empty and of equal length")


def _bn_relu(channels: int) -> list[nn.Module]:
    return [nn.BatchNorm2d(channels), nn.ReLU(inplace=True)]


class Block(nn.Module):
    def __init__(self, in_ch: int, out_ch: int, stride: int, kind: str, preact: bool):
        super().__init__()
        if kind == "basic":
            convs = [nn.Conv2d(in_ch, out_ch, 3, stride, 1, bias=False), nn.Conv2d(out_ch, out_ch, 3, 1, 1, bias=False)]
        elif kind == "bottleneck":
            mid = max(8, out_ch // 4)
            convs = [
                nn.Conv2d(in_ch, mid, 1, bias=False),
                nn.Conv2d(mid, mid, 3, stride, 1, bias=False),
                nn.Conv2d(mid, out_ch, 1, bias=False),
            ]
        else:
            raise ValueError(f"unknown block {kind!r}; known: basic, bottleneck")
        layers: list[nn.Module] = []
        for i, conv in enumerate(convs):
            if preact:
                layers += [*_bn_relu(conv.in_channels), conv]
            else:
                layers += [conv, nn.BatchNorm2d(conv.out_channels)]
                if i < len(convs) - 1:  # the last ReLU comes after the addition
                    layers.append(nn.ReLU(inplace=True))
        self.body = nn.Sequential(*layers)
        self.preact = preact
        self.skip: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            proj: list[nn.Module] = [nn.Conv2d(in_ch, out_ch, 1, stride, bias=False)]
            self.skip = nn.Sequential(*proj) if preact else nn.Sequential(*proj, nn.BatchNorm2d(out_ch))
        self.out = nn.Identity() if preact else nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.body(x) + self.skip(x))


def build_resnet(spec: ResNetSpec, num_classes: int, in_shape: tuple[int, int, int]) -> nn.Module:
    channels = in_shape[0]
    # As the cnn's convs do, an unpadded stem wider than the image pads to 'same' rather than fail the trial.
    valid = spec.stem_padding == "valid" and min(in_shape[1:]) >= spec.stem_kernel
    pad = 0 if valid else spec.stem_kernel // 2
    stem = nn.Conv2d(channels, spec.stem_width, spec.stem_kernel, spec.stem_stride, pad, bias=False)
    layers: list[nn.Module] = [stem]
    layers += _bn_relu(spec.stem_width)
    if spec.stem_pool:
        layers.append(nn.MaxPool2d(3, 2, 1))
    in_ch = spec.stem_width
    for stage, (width, n_blocks) in enumerate(zip(spec.widths, spec.blocks, strict=True)):
        for b in range(n_blocks):
            stride = 2 if stage > 0 and b == 0 else 1
            layers.append(Block(in_ch, width, stride, spec.block, spec.preact))
            in_ch = width
    if spec.preact:  # a pre-activation stack ends un-normalised: one last BN-ReLU before pooling
        layers += _bn_relu(in_ch)
    # Adaptive pooling gives seed 000's 8x8 pooling of its 16x16 map at 64px and stays valid at 32px.
    layers += [nn.AdaptiveAvgPool2d(spec.pool_grid), nn.Flatten()]
    features = in_ch * spec.pool_grid**2
    if spec.fc_units:
        layers += [nn.Linear(features, spec.fc_units), nn.ReLU(inplace=True)]
        features = spec.fc_units
    if spec.dropout:
        layers.append(nn.Dropout(spec.dropout))
    layers.append(nn.Linear(features, num_classes))
    return nn.Sequential(*layers)


register_model("resnet")(build_resnet)
