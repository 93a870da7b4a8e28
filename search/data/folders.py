"""The class-per-folder layout, as torchvision's ImageFolder: ``train/<class>/*``, an optional
``val/<class>/*`` and an optional flat ``test/`` folder of unlabelled images.

Classes are the sub-folder names of ``train/`` in sorted order (ImageFolder's order too); two
classes make a binary task unless ``--task`` says otherwise. Test images are listed in name order,
and the submission uses the class names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from search.data.dataset import DataError, Dataset
from search.data.images import decode_all, is_junk, list_images, shown_name

__all__ = ["LOOKS_FOR", "TEST_SPLIT", "detect", "files", "read", "submission_images"]

LOOKS_FOR = "train/<class>/ folders"
TEST_SPLIT = "test/"


def _class_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def detect(root: Path) -> bool:
    return (root / "train").is_dir() and bool(_class_dirs(root / "train"))


def files(root: Path) -> list[Path]:
    """Every file, and every class folder: a folder is a class even before it has a file, so the
    cache key must change when one comes or goes."""
    out = []
    for split in ("train", "val"):
        if (root / split).is_dir():
            out += sorted(p for p in (root / split).rglob("*") if p.is_file() or p.parent == root / split)
    if (root / "test").is_dir():
        out += sorted(p for p in (root / "test").iterdir() if p.is_file())
    return out


def _read_split(folder: Path, classes: list[str] | None) -> tuple[list[str], list[Path], np.ndarray]:
    """(class names, image paths, labels); with ``classes`` given, every folder must be one of them."""
    dirs = _class_dirs(folder)
    stray = [p for p in folder.iterdir() if p.is_file() and not is_junk(p.name)]
    if stray:
        raise DataError(f"{stray[0]}: a file directly in {folder}; images belong in {folder}/<class>/")
    names = [shown_name(d.name) for d in dirs]
    if classes is not None:
        unknown = [n for n in names if n not in classes]
        if unknown:
            raise DataError(f"{folder / unknown[0]}: class {unknown[0]!r} is not among train's classes {classes}")
    training, classes = classes is None, classes or names
    paths, labels = [], []
    for d in dirs:
        images = list_images(d)
        if not images and training:
            # A class no image teaches cannot be learned, and it would silently turn two classes into a
            # three-class task; the dataset cache, keyed by files, would also not see the folder go.
            raise DataError(f"{d}: class folder with no images; add some or remove the folder")
        paths += images
        labels += [classes.index(shown_name(d.name))] * len(images)
    if not paths:
        raise DataError(f"{folder}: no images (the split is empty)")
    return classes, paths, np.array(labels, dtype=np.int64)


def submission_images(root: Path) -> tuple[list[str], list[Path]]:
    """The test images' names and files, in name order."""
    paths = list_images(root / "test") if (root / "test").is_dir() else []
    return [shown_name(p.name) for p in paths], paths


def read(root: Path, progress=None, size: tuple[int, int] | None = None) -> Dataset:
    classes, train_paths, train_y = _read_split(root / "train", None)
    val_paths: list[Path] = []
    val_y = None
    if (root / "val").is_dir():
        _, val_paths, val_y = _read_split(root / "val", classes)
    test_names, test_paths = submission_images(root)
    everything = decode_all(train_paths + val_paths + test_paths, progress=progress, size=size)
    n, m = len(train_paths), len(train_paths) + len(val_paths)
    return Dataset(
        name=root.name,
        class_names=classes,
        train_x=everything[:n],
        train_y=train_y,
        val_x=everything[n:m] if val_paths else None,
        val_y=val_y,
        test_x=everything[m:] if test_paths else None,
        test_names=test_names,
    )
