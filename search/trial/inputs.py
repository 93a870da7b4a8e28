"""One trial's inputs: the data as the search splits it, on the device, and the network with the
initial weights of the trial's seed. The objective, `run`, and every rebuild after the search use
these, so a trial trains on the same data and weights wherever it is trained again."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from gic_common.errors import UserError
from gic_models import create_model
from search.console import log
from search.data import Dataset, load_dataset
from search.data.options import DataOptions
from search.data.prepare import prepare
from search.trial.train import DeviceDataset

__all__ = ["load_data", "seeded_model", "to_device"]


def load_data(root: Path, options: DataOptions | None = None, quiet: bool = False) -> Dataset:
    """The dataset read (or taken from the cache), its task decided and its splits made, exactly as
    the search made them from the same ``options``. ``quiet``: no progress and no summary line."""
    options = options or DataOptions()
    start = time.perf_counter()
    decoded = []

    def progress(done: int, total: int) -> None:
        decoded.append(done)
        print(f"\rdecoding images {done}/{total}", end="", file=sys.stderr, flush=True)

    ds = load_dataset(root, options.layout, progress=None if quiet else progress, image_size=options.image_size)
    if decoded:
        print(file=sys.stderr)
    ds = prepare(ds, options)
    if quiet:
        return ds
    held_out = "" if ds.holdout_x is None else f", {len(ds.holdout_x)} held out"
    log(
        f"data {root}: {len(ds.train_x)} train, {0 if ds.val_x is None else len(ds.val_x)} val{held_out}, "
        f"{0 if ds.test_x is None else len(ds.test_x)} test, {ds.task} with {ds.num_classes} "
        f"{'labels' if ds.task == 'multilabel' else 'classes'}, "
        f"{ds.in_shape[2]}x{ds.in_shape[1]} ({time.perf_counter() - start:.1f}s)"
    )
    return ds


def to_device(ds: Dataset, device: torch.device, train_on: str = "train") -> DeviceDataset:
    """The dataset as device tensors; ``train+val`` folds the validation split into training."""
    mean, std = ds.stats()
    train_x, train_y = ds.train_x, ds.train_y
    val_x, val_y = ds.val_x, ds.val_y
    if train_on == "train+val" and val_x is not None:
        train_x, train_y = np.concatenate([train_x, val_x]), np.concatenate([train_y, val_y])
    if val_x is None:
        raise UserError(f"{ds.name}: no validation split (val.csv); the search needs one to score trials")

    def put(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    return DeviceDataset(
        train_x=put(train_x), train_y=put(train_y), val_x=put(val_x), val_y=put(val_y),
        mean=put(mean), std=put(std), num_classes=ds.num_outputs, task=ds.task,
    )


def seeded_model(config: Any, seed: int, num_outputs: int, in_shape: tuple[int, int, int]) -> nn.Module:
    """The trial's network with the initial weights its seed gives: the same in the search and after it.
    ``config``: a space's TrialConfig (its ``model`` name and ``arch``; spaces/ sits above trial/)."""
    torch.manual_seed(seed)
    return create_model(config.model, config.arch, num_outputs, in_shape)
