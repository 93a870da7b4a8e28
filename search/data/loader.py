"""Finds a dataset's layout, decodes it once, and caches the arrays keyed by the files' content.

A second load of unchanged files reads a few .npy files instead of decoding every image again;
changing, adding or removing any file of the dataset changes the key and rebuilds the cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from gic_common.registry import Registry
from search.data import folders, gic, helsinki
from search.data.dataset import DataError, Dataset
from search.data.images import decode_all

__all__ = [
    "LAYOUTS", "cache_dir", "dataset_key", "detect_layout", "load_dataset", "load_test_split", "no_folder",
    "refuse_links_out",
]

# Detection tries them in this order: the class-folder test (train/ has sub-folders) is the loosest.
LAYOUTS = Registry("layout", {"gic": gic, "helsinki": helsinki, "folders": folders}, error=DataError, known="known")
CACHE_FORMAT = 3  # bump when the arrays a reader produces change for the same files (2: task, sizes;
# 3: EXIF orientation and 16-bit greyscale)
ARRAYS = ("train_x", "train_y", "val_x", "val_y", "test_x")
_unwritable: set[Path] = set()  # cache folders that refused an entry in this process: one warning, not one a load


def cache_dir() -> Path:
    return Path(os.environ.get("GIC_CACHE_DIR", Path.home() / ".cache" / "gic-search")) / "datasets"


def no_folder(root: Path) -> str:
    """Why ``root`` is no dataset folder, in one line: a file named by mistake is not a missing folder."""
    return f"{root}: {'is a file, not a dataset folder' if root.exists() else 'dataset folder does not exist'}"


def detect_layout(root: Path) -> str:
    for name, layout in LAYOUTS.items():
        if layout.detect(root):
            return name
    looked = "; ".join(f"{name}: {layout.LOOKS_FOR}" for name, layout in LAYOUTS.items())
    raise DataError(f"{root}: no known dataset layout found (looked for {looked})")


def dataset_key(root: Path, layout: str, size: tuple[int, int] | None = None) -> str:
    """A digest of every file's relative name and bytes (and of the folders a layout names as
    meaningful, by name): content, not timestamps, decides."""
    digest = hashlib.blake2b(f"{layout}:{CACHE_FORMAT}:{size}".encode(), digest_size=16)
    for path in LAYOUTS[layout].files(root):
        # fsencode: a name that is no UTF-8 (zips made on Windows) keys by its bytes, as it is on disk
        digest.update(os.fsencode(path.relative_to(root)) + b"\0")
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()


def refuse_links_out(root: Path, paths: list[Path]) -> None:
    """Refuses a file that is a link out of its split folder (``train_images/x.png`` to ``/etc/...``):
    a dataset must not read files beyond what it ships. A split folder that is itself a link (kept on
    another disk) is fine: its files stay inside it."""
    for path in paths:
        rel = path.relative_to(root)
        folder = root / rel.parts[0] if len(rel.parts) > 1 else root
        if not path.resolve().is_relative_to(folder.resolve()):
            raise DataError(f"{path}: a link to {path.resolve()}, which leaves the folder {folder}")


def _save(ds: Dataset, folder: Path) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=folder.parent))
    try:
        for name in ARRAYS:
            value = getattr(ds, name)
            if value is not None:
                np.save(tmp / f"{name}.npy", value, allow_pickle=False)
        meta = {"name": ds.name, "class_names": ds.class_names, "test_names": ds.test_names, "task": ds.task}
        (tmp / "meta.json").write_text(json.dumps(meta))
        os.replace(tmp, folder)  # atomic: a reader never sees half a cache entry
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def _load(folder: Path) -> Dataset:
    meta = json.loads((folder / "meta.json").read_text())
    arrays = {
        name: np.load(folder / f"{name}.npy", allow_pickle=False) if (folder / f"{name}.npy").exists() else None
        for name in ARRAYS
    }
    return Dataset(name=meta["name"], class_names=meta["class_names"], test_names=meta["test_names"],
                   task=meta["task"], **arrays)


def load_dataset(
    path: str | Path,
    layout: str = "auto",
    *,
    use_cache: bool = True,
    progress: Callable[[int, int], None] | None = None,
    image_size: tuple[int, int] | None = None,
) -> Dataset:
    """The dataset at ``path`` as read by its layout; ``image_size`` (width, height) resizes every
    image (see images.py), None keeps the data's own size, which must then be uniform."""
    root = Path(path)
    if not root.is_dir():
        raise DataError(no_folder(root))
    if layout == "auto":
        layout = detect_layout(root)
    elif not LAYOUTS[layout].detect(root):  # an unknown name: the registry's one line
        raise DataError(f"{root}: not in the {layout} layout (looked for {LAYOUTS[layout].LOOKS_FOR})")
    refuse_links_out(root, LAYOUTS[layout].files(root))  # before the cache: its key sees bytes, not links
    if not use_cache:
        return LAYOUTS[layout].read(root, progress=progress, size=image_size)
    entry = cache_dir() / dataset_key(root, layout, image_size)
    if (entry / "meta.json").is_file():
        ds = _load(entry)
        ds.name = root.name  # the same files under another folder name are the same data
        return ds
    ds = LAYOUTS[layout].read(root, progress=progress, size=image_size)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        if not entry.exists():
            _save(ds, entry)
    except OSError as e:  # a read-only or full cache must not stop the run; the next load decodes again
        if not entry.exists() and entry.parent not in _unwritable:  # not another process's entry, nor said already
            _unwritable.add(entry.parent)
            print(f"warning: decoded images not cached ({entry.parent}: {e.strerror or e}); the next run decodes "
                  f"them again", file=sys.stderr, flush=True)
    return ds


def load_test_split(
    path: str | Path, layout: str, image_size: tuple[int, int] | None = None,
) -> tuple[list[str], np.ndarray | None]:
    """The test images' names and arrays (None: the data has no test split), decoding nothing else: a
    submission needs only these and the model's own statistics, so a damaged training image must not
    stop it. Not cached: the cache key covers every split's files, which is what this avoids reading."""
    root = Path(path)
    refuse_links_out(root, LAYOUTS[layout].files(root))
    names, paths = LAYOUTS[layout].submission_images(root)
    if not paths:
        return names, None
    return names, decode_all(paths, size=image_size)
