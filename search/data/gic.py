"""The GIC Kaggle layout: train.csv / val.csv (Image,Class), test.csv (Image), *_images/ folders."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from search.data.dataset import DataError, Dataset
from search.data.images import decode_all

__all__ = ["LOOKS_FOR", "TEST_SPLIT", "detect", "files", "read", "submission_images"]

SPLITS = ("train", "val", "test")
LOOKS_FOR = "train.csv and train_images/"  # what detection checks, for the "no layout found" error
TEST_SPLIT = "test.csv"  # where the test images are listed, for export's "nothing to predict" error


def detect(root: Path) -> bool:
    return (root / "train.csv").is_file() and (root / "train_images").is_dir()


def files(root: Path) -> list[Path]:
    """Every file the dataset depends on: the cache key is computed over these."""
    out = [root / f"{split}.csv" for split in SPLITS if (root / f"{split}.csv").is_file()]
    for split in SPLITS:
        folder = root / f"{split}_images"
        if folder.is_dir():  # every level: a CSV may name an image in a sub-folder ("cats/1.png")
            out += sorted(p for p in folder.rglob("*") if p.is_file())
    return out


def safe_path(folder: Path, name: str, where: str) -> Path:
    """The image's path, refusing names that would leave ``folder`` (``../x.png``, ``/etc/x``)."""
    if not name:
        raise DataError(f"{where}: empty image name")
    if "\0" in name:  # no file system allows it; the OS calls would raise "embedded null byte"
        raise DataError(f"{where}: image name {name!r} contains a NUL byte")
    path = folder / name
    if Path(name).is_absolute() or not path.resolve().is_relative_to(folder.resolve()):
        raise DataError(f"{where}: image name {name!r} leaves the folder {folder}")
    return path


def read_csv(path: Path, columns: tuple[str, ...]) -> list[dict[str, str]]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f)
            header = [h.strip() for h in (reader.fieldnames or [])]
            missing = [c for c in columns if c not in header]
            if missing:
                raise DataError(f"{path}: missing column {', '.join(missing)} (header is {header})")
            rows: list[dict[str, str]] = []
            try:
                for row in reader:
                    rows.append({k.strip(): (v or "").strip() for k, v in row.items() if k})
            except csv.Error as e:  # the csv module's own limit (131072 characters a field) is far
                # beyond any image name: such a field is a broken quote or not a CSV at all
                raise DataError(f"{path}, row {len(rows) + 2}: field too long or malformed ({e})") from None
    except UnicodeDecodeError as e:
        raise DataError(f"{path}: not a UTF-8 text CSV ({e.reason})") from None
    if not rows:
        raise DataError(f"{path}: no rows (the split is empty)")
    names = set()
    for i, row in enumerate(rows, start=2):
        if row["Image"] in names:
            raise DataError(f"{path}, row {i}: duplicate image name {row['Image']!r}")
        names.add(row["Image"])
    return rows


def parse_class(value: str, where: str) -> int:
    try:
        label = int(value)
    except ValueError:
        raise DataError(f"{where}: class {value!r} is not an integer") from None
    if label < 0:
        raise DataError(f"{where}: class {label} is negative")
    return label


def read_split(root: Path, split: str, labelled: bool) -> tuple[list[str], list[Path], np.ndarray | None]:
    csv_path = root / f"{split}.csv"
    rows = read_csv(csv_path, ("Image", "Class") if labelled else ("Image",))
    folder = root / f"{split}_images"
    names = [row["Image"] for row in rows]
    paths = [safe_path(folder, n, f"{csv_path}, row {i}") for i, n in enumerate(names, start=2)]
    labels = None
    if labelled:
        labels = np.array(
            [parse_class(row["Class"], f"{csv_path}, row {i}") for i, row in enumerate(rows, start=2)],
            dtype=np.int64,
        )
    return names, paths, labels


def check_class_range(labels: np.ndarray, csv_path: Path) -> None:
    """Classes are 0..K-1, so the largest one cannot reach the number of rows: there would be a class
    no row teaches. A typo such as 10000000 would otherwise make ten million outputs (and class names)
    and exhaust the memory, not fail with a line."""
    row = int(labels.argmax())
    if labels[row] >= len(labels):
        raise DataError(f"{csv_path}, row {row + 2}: class {labels[row]} is out of range: classes are numbered "
                        f"0..K-1 and {csv_path.name} has only {len(labels)} rows")


def submission_images(root: Path) -> tuple[list[str], list[Path]]:
    """The test images' names (as the submission writes them) and files, in test.csv's order."""
    if not (root / "test.csv").is_file():
        return [], []
    names, paths, _ = read_split(root, "test", labelled=False)
    return names, paths


def read(root: Path, progress=None, size: tuple[int, int] | None = None) -> Dataset:
    _, train_paths, train_y = read_split(root, "train", labelled=True)
    check_class_range(train_y, root / "train.csv")
    num_classes = int(train_y.max()) + 1
    val_x = val_y = test_x = None
    val_paths: list[Path] = []
    if (root / "val.csv").is_file():
        _, val_paths, val_y = read_split(root, "val", labelled=True)
        unseen = sorted(set(val_y.tolist()) - set(train_y.tolist()))
        if unseen:
            raise DataError(
                f"{root / 'val.csv'}: class {unseen[0]} is out of range: it never occurs in train.csv "
                f"(whose classes are 0..{num_classes - 1})"
            )
    test_names, test_paths = submission_images(root)
    everything = decode_all(train_paths + val_paths + test_paths, progress=progress, size=size)
    train_x = everything[: len(train_paths)]
    if val_paths:
        val_x = everything[len(train_paths) : len(train_paths) + len(val_paths)]
    if test_paths:
        test_x = everything[len(train_paths) + len(val_paths) :]
    return Dataset(
        name=root.name,
        class_names=[str(c) for c in range(num_classes)],
        train_x=train_x,
        train_y=train_y,
        val_x=val_x,
        val_y=val_y,
        test_x=test_x,
        test_names=test_names,
    )
