"""Writing a benchmark in the GIC layout, shared by the real-image builders (photo_patches.py,
real_sets.py) so that every benchmark lands on disk the same way.

train.csv and val.csv hold ``Image,Class``, test.csv only ``Image``; the images are PNGs in
``SPLIT_images/``. The test labels go beside the folder, ``DIR-answers.csv`` (as the synthetic
benchmark and bench/search_quality.py expect), so the folder a search sees holds no test answer.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

import numpy as np
from PIL import Image


def answers_path(out: Path) -> Path:
    """Where the test answers of the benchmark in ``out`` live: beside it, never inside."""
    return out.parent / f"{out.name}-answers.csv"


def write_split(out: Path, split: str, samples: Iterable[tuple[np.ndarray, int]]) -> Path:
    """Writes one split's (pixels, label) samples, in order, and its CSV; returns the CSV with labels.

    ``samples`` may be a generator: images are drawn one at a time, so a builder's random stream is
    consumed in the same order as if it had drawn and saved them in one loop.
    """
    folder = out / f"{split}_images"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for i, (pixels, label) in enumerate(samples):
        name = f"{split}_{i:05d}.png"
        Image.fromarray(pixels).save(folder / name)  # a 2-D array is a greyscale PNG, HxWx3 an RGB one
        rows.append((name, int(label)))
    path = answers_path(out) if split == "test" else out / f"{split}.csv"
    _write_csv(path, [("Image", "Class"), *rows])
    if split == "test":
        _write_csv(out / "test.csv", [("Image",), *((n,) for n, _ in rows)])
    return path


def _write_csv(path: Path, rows: list[tuple]) -> None:
    with path.open("w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
