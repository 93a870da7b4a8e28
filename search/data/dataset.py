"""The in-memory form every layout reader produces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gic_common.errors import UserError

__all__ = ["TASKS", "DataError", "Dataset"]

# multiclass: one class of many (softmax); binary: one of two (a single logit); multilabel: any subset
# of the labels, none included (one sigmoid per label).
TASKS = ("multiclass", "binary", "multilabel")


class DataError(UserError):
    """Bad input data; the message is one line naming the file, row or value and what is wrong."""


@dataclass
class Dataset:
    """Images are uint8 arrays (N, C, H, W). Labels are int64 (N,) class numbers for multiclass and
    binary, and uint8 (N, L) multi-hot rows for multilabel (a row of zeros: an image with no label).
    ``test_names`` keeps the layout's test order. ``holdout_*`` is a labelled test part split off the
    training data (seed 004's 90/5/5), never seen by the search; None when not asked for."""

    name: str
    class_names: list[str]
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray | None
    val_y: np.ndarray | None
    test_x: np.ndarray | None
    test_names: list[str]
    task: str = "multiclass"
    holdout_x: np.ndarray | None = None
    holdout_y: np.ndarray | None = None

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_outputs(self) -> int:
        """The model's output width: one logit for binary, one per class or label otherwise."""
        return 1 if self.task == "binary" else len(self.class_names)

    @property
    def in_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])

    def stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Per-channel mean and std in [0, 1] units, from the whole training split only (seed 000
        fitted its scaler image by image and normalised validation with the last image's numbers)."""
        x = self.train_x
        mean = np.zeros(x.shape[1])
        sq = np.zeros(x.shape[1])
        for start in range(0, len(x), 4096):  # float64 in chunks: exact, and bounded memory
            chunk = x[start : start + 4096].astype(np.float64) / 255
            mean += chunk.sum(axis=(0, 2, 3))
            sq += (chunk**2).sum(axis=(0, 2, 3))
        count = x.shape[0] * x.shape[2] * x.shape[3]
        mean /= count
        std = np.sqrt(np.maximum(sq / count - mean**2, 1e-12))
        return mean.astype(np.float32), std.astype(np.float32)
