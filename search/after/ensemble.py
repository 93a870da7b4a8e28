"""Predictions from several saved models at once, with optional horizontal-flip test-time augmentation.

An ensemble is a folder holding ``ensemble.json`` (its members' model folders); a plain model
folder is an ensemble of one. Members are averaged in probability space, each with its own
normalisation statistics, so models retrained on different splits (train, train+val) still mix.
Multilabel cuts belong to the probabilities they were tuned on: a saved model's cuts fit only that
model's own answers, so an average (of members, or of an image and its mirror) gets cuts of its own.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gic_common.errors import UserError
from search.after.model_files import META, load_model, read_meta
from search.after.saving import settle_folder, write_atomic
from search.trial.metrics import tune_thresholds
from search.trial.train import predict_scores

__all__ = ["Member", "decide", "load_members", "member_dirs", "model_meta", "needs_own_cuts", "own_cuts", "predict",
           "write_ensemble"]


@dataclass
class Member:
    model: nn.Module
    mean: torch.Tensor
    std: torch.Tensor
    tta: bool = False  # trained to be judged with mirror TTA (its trial's `tta`): predicted that way always


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
    listing = out / "ensemble.json"
    # A member inside the listing's folder is listed relative to it, so the folder can be built under a
    # temporary name and renamed into place whole (and copied or moved later) without breaking it.
    entries = [str(m.relative_to(out) if m.is_relative_to(out) else m.resolve()) for m in members]
    write_atomic(listing, lambda p: p.write_text(json.dumps({"members": entries, **info}, indent=1)))
    return listing


def model_meta(model_dir: Path) -> dict:
    """The model.json of the model a folder stands for (an ensemble's first member's)."""
    settle_folder(model_dir)
    return read_meta(member_dirs(model_dir)[0] / META)


def load_members(model_dir: Path, device: torch.device) -> tuple[list[Member], list[dict]]:
    """The models a folder stands for (itself, or its ensemble.json's members) and their metadata."""
    members, metas = [], []
    settle_folder(model_dir)  # a retrain killed while replacing the folder: its new model, or the old
    for folder in member_dirs(model_dir):
        model, meta = load_model(folder, device)
        if metas and meta["class_names"] != metas[0]["class_names"]:
            raise UserError(f"{folder}: its classes differ from {member_dirs(model_dir)[0]}'s; cannot average them")
        mean = torch.tensor(meta["mean"], device=device)
        std = torch.tensor(meta["std"], device=device)
        members.append(Member(model, mean, std, tta=bool(meta["params"].get("tta", False))))
        metas.append(meta)
    return members, metas


@torch.no_grad()
def predict(
    members: list[Member], x: torch.Tensor, tta: bool = False, batch: int | None = None, task: str = "multiclass"
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
        if tta or m.tta:
            p = (p + predict_scores(m.model, x.flip(-1), m.mean, m.std, task, batch)) / 2
        total = p if total is None else total + p
    return total / len(members)


def decide(probs: torch.Tensor, task: str, cuts: torch.Tensor | list[float] | None = None) -> torch.Tensor:
    """Predicted labels from probabilities, as a submission states them: the likeliest class, a
    binary model's second class above 0.5, or each label at or above its cut (0.5 where none)."""
    if task == "multiclass":
        return probs.argmax(1)
    if task == "binary":
        return (probs > 0.5).long()
    if cuts is None or len(cuts) == 0:
        cuts = [0.5] * probs.shape[1]
    return (probs >= (cuts if isinstance(cuts, torch.Tensor) else probs.new_tensor(cuts))).long()


def needs_own_cuts(members: list[Member], tta: bool) -> bool:
    """Whether multilabel predictions need cuts tuned for them rather than their first model's saved
    ones. A model's saved cuts were tuned on exactly the probabilities it gives alone and without TTA;
    any average has other probabilities (a confident member and a timid one average to neither's
    scale, and a mirror image is usually answered less surely)."""
    return len(members) > 1 or tta


def own_cuts(members: list[Member], val_x: torch.Tensor, val_y: torch.Tensor, tta: bool = False) -> torch.Tensor:
    """Per-label cuts tuned on the validation images for the probabilities ``predict`` gives with
    these members and this ``tta``: the same combination that the cuts will then be applied to."""
    return tune_thresholds(predict(members, val_x, tta=tta, task="multilabel"), val_y)
