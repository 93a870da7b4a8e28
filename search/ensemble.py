"""Predictions from several saved models at once, with optional horizontal-flip test-time augmentation.

An ensemble is a folder holding ``ensemble.json`` (its members' model folders); a plain model
folder is an ensemble of one. Members are averaged in probability space, each with its own
normalisation statistics, so models retrained on different splits (train, train+val) still mix.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from search.errors import UserError
from search.train import predict_scores

__all__ = ["Member", "member_dirs", "predict", "write_ensemble"]


@dataclass
class Member:
    model: nn.Module
    mean: torch.Tensor
    std: torch.Tensor


def member_dirs(model_dir: Path) -> list[Path]:
    """The model folders a folder stands for: those listed in its ensemble.json, or itself."""
    listing = model_dir / "ensemble.json"
    if not listing.is_file():
        return [model_dir]
    try:
        members = json.loads(listing.read_text())["members"]
    except (ValueError, KeyError, TypeError) as e:
        raise UserError(f"{listing}: not an ensemble listing ({e})") from None
    # Relative entries are relative to the listing, so a copied folder keeps working.
    return [(model_dir / m).resolve() for m in members]


def write_ensemble(out: Path, members: list[Path], info: dict) -> Path:
    from search.finalize import write_atomic  # finalize imports this module

    listing = out / "ensemble.json"
    entries = [str(m.resolve()) for m in members]
    write_atomic(listing, lambda p: p.write_text(json.dumps({"members": entries, **info}, indent=1)))
    return listing


@torch.no_grad()
def predict(
    members: list[Member], x: torch.Tensor, tta: bool = False, batch: int = 1024, task: str = "multiclass"
) -> torch.Tensor:
    """Mean probabilities over ``members`` for uint8 images ``x`` (N, C, H, W): softmax rows for
    multiclass, independent sigmoids for binary and multilabel (train.predict_scores).

    With ``tta`` every member also sees the mirror image and its two answers are averaged first:
    a horizontal flip is the one augmentation every trial of our spaces trained with or could have,
    and it never moves an object out of the frame.
    """
    if not members:
        raise ValueError("an ensemble needs at least one member")
    total = None
    for m in members:
        p = predict_scores(m.model, x, m.mean, m.std, task, batch)
        if tta:
            p = (p + predict_scores(m.model, x.flip(-1), m.mean, m.std, task, batch)) / 2
        total = p if total is None else total + p
    return total / len(members)
