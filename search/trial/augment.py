"""Data augmentation on whole batches, on the device, as tensor ops (after airbench).

Every function takes a float batch ``x`` in [0, 1], shape (B, C, H, W), on any device, and draws
its randomness from torch's generator on that device: no per-sample Python, no host round trip.
"""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F

from gic_common.configs import AugmentConfig

__all__ = ["augment_batch", "colour_jitter", "cutout", "flip", "mix", "translate"]


def flip(x: torch.Tensor) -> torch.Tensor:
    mask = torch.rand(x.shape[0], 1, 1, 1, device=x.device) < 0.5
    return torch.where(mask, x.flip(3), x)


def translate(x: torch.Tensor, pixels: int) -> torch.Tensor:
    b, _, h, w = x.shape
    # Reflection cannot pad by the image's own side or more: a shift that large is cut to fit (a 6px
    # shift of a 6px-high image failed the trial).
    pixels = min(pixels, h - 1, w - 1)
    if pixels <= 0:
        return x
    padded = F.pad(x, (pixels,) * 4, mode="reflect")
    dy = torch.randint(0, 2 * pixels + 1, (b, 1), device=x.device)
    dx = torch.randint(0, 2 * pixels + 1, (b, 1), device=x.device)
    rows = (torch.arange(h, device=x.device) + dy)[:, :, None]  # (B, H, 1)
    cols = (torch.arange(w, device=x.device) + dx)[:, None, :]  # (B, 1, W)
    batch = torch.arange(b, device=x.device)[:, None, None]
    # Advanced indexing gathers each image's own crop: (B, H, W, C) -> (B, C, H, W).
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, size: int) -> torch.Tensor:
    b, _, h, w = x.shape
    cy = torch.randint(0, h, (b, 1, 1), device=x.device)
    cx = torch.randint(0, w, (b, 1, 1), device=x.device)
    ys = torch.arange(h, device=x.device)[None, :, None]
    xs = torch.arange(w, device=x.device)[None, None, :]
    inside = ((ys - cy).abs() * 2 < size) & ((xs - cx).abs() * 2 < size)
    return x * (~inside)[:, None].to(x.dtype)


@functools.cache
def _luma_weights(device: torch.device) -> torch.Tensor:
    """The ITU-R 601 luma weights as a (1, 3, 1, 1) tensor on ``device``, made once per device: built
    from a Python list each batch, they were a host-to-device copy in the training loop."""
    return torch.tensor([0.299, 0.587, 0.114], device=device).view(1, 3, 1, 1)


def colour_jitter(x: torch.Tensor, strength: float) -> torch.Tensor:
    b = x.shape[0]

    def factor() -> torch.Tensor:
        return 1 + (torch.rand(b, 1, 1, 1, device=x.device) * 2 - 1) * strength

    x = x * factor()  # brightness
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    x = (x - mean) * factor() + mean  # contrast
    if x.shape[1] == 3:
        grey = (x * _luma_weights(x.device)).sum(1, True)
        x = (x - grey) * factor() + grey  # saturation
    return x.clamp(0, 1)


def mix(
    x: torch.Tensor, mode: str, alpha: float, rng: np.random.Generator
) -> tuple[torch.Tensor, torch.Tensor, float]:
    """Mixes the batch with a permutation of itself; returns (x, permutation, weight of x's labels).

    The weight is drawn on the host (numpy) so that cutmix's box size needs no device sync.
    """
    lam = float(rng.beta(alpha, alpha))
    perm = torch.randperm(x.shape[0], device=x.device)
    if mode == "mixup":
        return lam * x + (1 - lam) * x[perm], perm, lam
    h, w = x.shape[2:]
    cut_h, cut_w = int(h * np.sqrt(1 - lam)), int(w * np.sqrt(1 - lam))
    top, left = int(rng.integers(0, h - cut_h + 1)), int(rng.integers(0, w - cut_w + 1))
    x = x.clone()
    x[:, :, top : top + cut_h, left : left + cut_w] = x[perm, :, top : top + cut_h, left : left + cut_w]
    return x, perm, 1 - cut_h * cut_w / (h * w)  # the exact pasted area, not the drawn one


def augment_batch(x: torch.Tensor, cfg: AugmentConfig) -> torch.Tensor:
    """The label-preserving augmentations, in the order a camera would apply them."""
    if cfg.flip:
        x = flip(x)
    if cfg.translate:
        x = translate(x, cfg.translate)
    if cfg.jitter:
        x = colour_jitter(x, cfg.jitter)
    if cfg.cutout:
        x = cutout(x, cfg.cutout)
    return x
