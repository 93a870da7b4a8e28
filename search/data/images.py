"""Decoding image files into one uint8 array, once, with clear errors for bad files."""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from search.data.dataset import DataError

__all__ = ["decode", "decode_all"]


def decode(path: Path) -> np.ndarray:
    """One image as uint8 (3, H, W); grey, palette and alpha images are converted to RGB."""
    try:
        with Image.open(path) as im:
            im.load()  # a truncated file fails here, not later in the middle of training
            return np.asarray(im.convert("RGB")).transpose(2, 0, 1)
    except FileNotFoundError:
        raise DataError(f"{path}: image file is missing") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path}: cannot decode image ({e})") from None


def decode_all(paths: Sequence[Path], progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """All images as uint8 (N, 3, H, W). Pillow releases the GIL while it decodes, so threads help."""
    if not paths:
        return np.zeros((0, 3, 1, 1), dtype=np.uint8)
    first = decode(paths[0])
    out = np.empty((len(paths), *first.shape), dtype=np.uint8)

    def put(i: int) -> None:
        img = decode(paths[i])
        if img.shape != first.shape:
            raise DataError(
                f"{paths[i]}: image is {img.shape[2]}x{img.shape[1]} but {paths[0].name} is "
                f"{first.shape[2]}x{first.shape[1]}; all images must have one size"
            )
        out[i] = img

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for done, _ in enumerate(pool.map(put, range(len(paths))), start=1):
            if progress is not None and (done % 1000 == 0 or done == len(paths)):
                progress(done, len(paths))
    return out
