"""The Helsinki multi-label layout (seed 002): ``train/images/imN.jpg``, one ``train/annotations/
<label>.txt`` per label listing image numbers (one a line), and ``test/images/``.

Labels are the annotation files' names in sorted order; an image in no annotation file has no label
at all (an all-zero row). There is no validation split: the loader's split makes one.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from search.data.dataset import DataError, Dataset
from search.data.images import decode_all, list_images, shown_name

__all__ = ["LOOKS_FOR", "TEST_SPLIT", "detect", "files", "read", "submission_images"]

LOOKS_FOR = "train/images/ and train/annotations/"
TEST_SPLIT = "test/images/"
_NUMBER = re.compile(r"(\d+)$")


def detect(root: Path) -> bool:
    return (root / "train" / "images").is_dir() and (root / "train" / "annotations").is_dir()


def _annotation_files(root: Path) -> list[Path]:
    folder = root / "train" / "annotations"
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix == ".txt")


def files(root: Path) -> list[Path]:
    out = _annotation_files(root)
    for folder in (root / "train" / "images", root / "test" / "images"):
        if folder.is_dir():
            out += sorted(p for p in folder.iterdir() if p.is_file())
    return out


def _numbered(folder: Path) -> dict[int, Path]:
    """Image number -> file, in number order (im2 before im10)."""
    by_number: dict[int, Path] = {}
    for path in list_images(folder):
        match = _NUMBER.search(path.stem)
        if match is None:
            raise DataError(f"{path}: image name does not end in its number (expected e.g. im12.jpg)")
        number = int(match.group(1))
        if number in by_number:
            raise DataError(f"{path}: duplicate image number {number} (also {by_number[number].name})")
        by_number[number] = path
    return dict(sorted(by_number.items()))


def _read_annotation(path: Path, known: dict[int, int]) -> list[int]:
    """Row indices of the images this label's file names; every line must name an existing image."""
    rows = []
    try:
        # utf-8-sig: Notepad's byte-order mark would otherwise make the first number unreadable
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 text file ({e.reason})") from None
    for i, line in enumerate(lines, start=1):
        text = line.strip()
        if not text:
            continue
        try:
            number = int(text)
        except ValueError:
            raise DataError(f"{path}, line {i}: {text!r} is not an image number") from None
        if number not in known:
            raise DataError(f"{path}, line {i}: image {number} is not in {path.parent.parent / 'images'}")
        rows.append(known[number])
    if not rows:
        # A label no image has cannot be learnt, and its column in the submission would be a guess.
        raise DataError(f"{path}: no image numbers; a label needs at least one image (list them, or remove "
                        f"the file and its column)")
    return rows


def submission_images(root: Path) -> tuple[list[str], list[Path]]:
    """The test images' names and files, in number order."""
    folder = root / "test" / "images"
    paths = list(_numbered(folder).values()) if folder.is_dir() else []
    return [shown_name(p.name) for p in paths], paths


def read(root: Path, progress=None, size: tuple[int, int] | None = None) -> Dataset:
    train = _numbered(root / "train" / "images")
    if not train:
        raise DataError(f"{root / 'train' / 'images'}: no images (the split is empty)")
    annotations = _annotation_files(root)
    if not annotations:
        raise DataError(f"{root / 'train' / 'annotations'}: no <label>.txt files")
    row_of = {number: row for row, number in enumerate(train)}
    labels = np.zeros((len(train), len(annotations)), dtype=np.uint8)
    for j, path in enumerate(annotations):
        labels[_read_annotation(path, row_of), j] = 1
    test_names, test = submission_images(root)
    everything = decode_all([*train.values(), *test], progress=progress, size=size)
    return Dataset(
        name=root.name,
        class_names=[shown_name(p.stem) for p in annotations],
        train_x=everything[: len(train)],
        train_y=labels,
        val_x=None,
        val_y=None,
        test_x=everything[len(train) :] if test else None,
        test_names=test_names,
        task="multilabel",
    )
