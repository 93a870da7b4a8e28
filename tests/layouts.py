"""Writers of tiny datasets in each layout, for tests: images with Pillow, in temporary folders.

The pictures are learnable: each class or label brightens its own stripe of the image, so a tiny
model on the CPU gets better than chance in an epoch or two.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["picture", "write_folders", "write_helsinki"]


def picture(labels, size: int = 24, seed: int = 0, mode: str = "RGB") -> Image.Image:
    """Noise, with a bright horizontal stripe for each label in ``labels`` (stripe i of 8)."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 80, (size, size, 3), dtype=np.uint8)
    band = max(1, size // 8)
    for label in labels:
        x[(label % 8) * band : (label % 8 + 1) * band, :, label // 8 % 3] = 240
    return Image.fromarray(x).convert(mode)


def write_helsinki(root: Path, train: int = 60, test: int = 12, labels=("baby", "car", "dog", "sea"),
                   size: int = 24, seed: int = 0) -> np.ndarray:
    """The Helsinki layout; every fifth image grayscale, a few with no label. Returns the (train, L)
    multi-hot truth in image-number order."""
    rng = np.random.default_rng(seed)
    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "annotations").mkdir()
    (root / "test" / "images").mkdir(parents=True)
    truth = (rng.random((train, len(labels))) < 0.35).astype(np.uint8)
    truth[:3] = 0  # images in no annotation file at all
    for i in range(train):
        mode = "L" if i % 5 == 0 else "RGB"
        picture(np.flatnonzero(truth[i]), size, seed + i, mode).save(root / "train" / "images" / f"im{i + 1}.jpg")
    for j, name in enumerate(labels):
        numbers = [str(i + 1) for i in np.flatnonzero(truth[:, j])]
        (root / "train" / "annotations" / f"{name}.txt").write_text("\n".join(numbers) + "\n")
    for i in range(test):
        picture(rng.choice(len(labels), 1), size, seed + 1000 + i).save(
            root / "test" / "images" / f"im{train + i + 1}.jpg"
        )
    return truth


def write_folders(root: Path, classes=("cat", "dog"), train: int = 30, val: int = 0, test: int = 10,
                  size: int = 24, seed: int = 0) -> None:
    """train/<class>/, optional val/<class>/, flat test/; PNGs in RGB, RGBA and palette modes."""
    modes = ("RGB", "RGBA", "P")
    for split, count in (("train", train), ("val", val)):
        for c, name in enumerate(classes):
            if not count:
                continue
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(count):
                picture([c], size, seed + 97 * c + i + (5000 if split == "val" else 0), modes[i % 3]).save(
                    folder / f"{name}_{i:03d}.png"
                )
    if test:
        (root / "test").mkdir(parents=True)
        for i in range(test):
            picture([i % len(classes)], size, seed + 9000 + i).save(root / "test" / f"t{i:03d}.png")
