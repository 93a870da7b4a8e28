"""From what a layout read to what a study trains on, as its DataOptions say: the task decided and checked, a
validation split made when the data has none, and optionally a labelled held-out test part kept aside."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from search.data.dataset import TASKS, DataError, Dataset
from search.data.options import DataOptions
from search.data.split import iterative_stratification, stratified_split

__all__ = ["prepare", "resolve_task"]


def resolve_task(ds: Dataset, requested: str) -> str:
    """The task for ``ds``: the layout's own, or ``requested`` when the labels allow it."""
    if requested not in ("auto", *TASKS):
        raise DataError(f"unknown task {requested!r}; known: auto, {', '.join(TASKS)}")
    if ds.task == "multilabel":
        if requested not in ("auto", "multilabel"):
            raise DataError(f"{ds.name}: the layout gives several labels an image; task {requested!r} needs one")
        return "multilabel"
    present = len(np.unique(ds.train_y))
    if requested == "multilabel":
        raise DataError(f"{ds.name}: the layout gives one class an image; multilabel needs the Helsinki layout")
    if present < 2:
        raise DataError(f"{ds.name}: the training split has only one class ({ds.class_names[int(ds.train_y[0])]})")
    if requested == "binary" and ds.num_classes != 2:
        raise DataError(f"{ds.name}: task binary needs exactly 2 classes, the data has {ds.num_classes}")
    if requested == "auto":
        return "binary" if ds.num_classes == 2 else "multiclass"
    return requested


def _split(y: np.ndarray, fractions: list[float], seed: int) -> list[np.ndarray]:
    if y.ndim == 2:
        return iterative_stratification(y, fractions, seed)
    return stratified_split(y, fractions, seed)


def prepare(ds: Dataset, opts: DataOptions) -> Dataset:
    """``ds`` with its task set and its splits made as ``opts`` says (a new Dataset; arrays shared)."""
    task = resolve_task(ds, opts.task)
    make_val = ds.val_x is None
    val = opts.val_fraction if make_val else 0.0
    test = opts.test_fraction
    if not (0 <= test < 1 and 0 <= val < 1 and val + test < 1):
        raise DataError(f"split fractions val {val} and test {test} must each be in [0, 1) and sum below 1")
    if make_val and val == 0:
        raise DataError(f"{ds.name}: no validation split in the data and --val-fraction is 0")
    out = replace(ds, task=task)
    if not make_val and test == 0:
        return out
    keep, val_idx, test_idx = _split(ds.train_y, [1 - val - test, val, test], opts.split_seed)
    for what, idx in (("validation", val_idx if make_val else None), ("held-out test", test_idx if test else None),
                      ("training", keep)):
        if idx is not None and len(idx) == 0:
            raise DataError(f"{ds.name}: {len(ds.train_y)} training images leave the {what} part empty")
    out.train_x, out.train_y = ds.train_x[keep], ds.train_y[keep]
    if make_val:
        out.val_x, out.val_y = ds.train_x[val_idx], ds.train_y[val_idx]
    if test:
        out.holdout_x, out.holdout_y = ds.train_x[test_idx], ds.train_y[test_idx]
    return out
