"""The in-memory form every layout reader produces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from search.errors import UserError

__all__ = ["DataError", "Dataset"]


class DataError(UserError):
    """Bad input data; the message is one line naming the file, row or value and what is wrong."""


@dataclass
class Dataset:
    """Images are uint8 arrays (N, C, H, W); labels int64 (N,). ``test_names`` keeps test.csv's order."""

    name: str
    class_names: list[str]
    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray | None
    val_y: np.ndarray | None
    test_x: np.ndarray | None
    test_names: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

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
