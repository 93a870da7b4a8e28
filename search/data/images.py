"""Decoding image files into one uint8 array, once, with clear errors for bad files.

Any mode (L, RGB, RGBA, P, ...) becomes RGB; 16-bit greyscale keeps its top 8 bits. A JPEG's EXIF
orientation is applied, so a phone photo is read upright, as every viewer shows it. With a target
size (width, height) every image is resized to exactly that size: the whole picture is kept and
stretched when its aspect ratio differs (no crop, so nothing at the border is lost; a square target
from nearly square photos distorts little). Bicubic resampling, which Pillow antialiases when
shrinking. Without a target size all images must already share one size.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from search.data.dataset import DataError

__all__ = ["IMAGE_EXTENSIONS", "decode", "decode_all", "is_junk", "list_images", "shown_name"]


def _to_rgb(im: Image.Image) -> Image.Image:
    # Pillow's own conversion of 16-bit greyscale (I;16 PNGs and TIFFs; "I" in older Pillows) clips
    # every value above 255 to white: scale the 0..65535 range down to 0..255 instead.
    if im.mode == "I" or im.mode.startswith("I;16"):
        wide = np.asarray(im).astype(np.int64)
        im = Image.fromarray((np.clip(wide, 0, 65535) >> 8).astype(np.uint8))
    return im.convert("RGB")


def decode(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """One image as uint8 (3, H, W), resized to ``size`` = (width, height) when given."""
    try:
        with Image.open(path) as im:
            im.load()  # a truncated file fails here, not later in the middle of training
            # A sideways-stored photo would otherwise be learned sideways (and break a uniform size).
            rgb = _to_rgb(ImageOps.exif_transpose(im))
            if size is not None and rgb.size != size:
                rgb = rgb.resize(size, Image.Resampling.BICUBIC)
            return np.asarray(rgb).transpose(2, 0, 1)
    except FileNotFoundError:
        raise DataError(f"{path}: image file is missing") from None
    except Image.DecompressionBombError as e:  # a header claiming billions of pixels: refused unread
        raise DataError(f"{path}: image too large to decode safely ({e})") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"{path}: cannot decode image ({e})") from None


def decode_all(
    paths: Sequence[Path],
    progress: Callable[[int, int], None] | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """All images as uint8 (N, 3, H, W). Pillow releases the GIL while it decodes, so threads help."""
    if not paths:
        return np.zeros((0, 3, 1, 1), dtype=np.uint8)
    first = decode(paths[0], size)
    out = np.empty((len(paths), *first.shape), dtype=np.uint8)
    odd: dict[int, tuple[int, ...]] = {}  # index -> shape, for images not of the first one's size

    def put(i: int) -> None:
        img = decode(paths[i], size)
        if img.shape != first.shape:
            odd[i] = img.shape
        else:
            out[i] = img

    with ThreadPoolExecutor(max_workers=min(8, os.cpu_count() or 1)) as pool:
        for done, _ in enumerate(pool.map(put, range(len(paths))), start=1):
            if progress is not None and (done % 1000 == 0 or done == len(paths)):
                progress(done, len(paths))
    if odd:
        _refuse_mixed_sizes(paths, first.shape, odd)
    return out


def _refuse_mixed_sizes(paths: Sequence[Path], first: tuple[int, ...], odd: dict[int, tuple[int, ...]]) -> None:
    """Names an image of a minority size: the first image may be the odd one out, and blaming the
    good ones sends the user looking at the wrong file."""
    shapes = Counter({first: len(paths) - len(odd)})
    shapes.update(odd.values())
    common, count = shapes.most_common(1)[0]
    culprit = next(i for i in range(len(paths)) if odd.get(i, first) != common)
    shape = odd.get(culprit, first)
    raise DataError(
        f"{paths[culprit]}: image is {shape[2]}x{shape[1]} but {count} of the {len(paths)} images are "
        f"{common[2]}x{common[1]}; all images must have one size (or pass --image-size)"
    )


# The extensions torchvision's ImageFolder accepts: the class-folder layout follows it.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp", ".gif")


# What Windows leaves in a folder someone browsed, as macOS leaves .DS_Store and ._* (hidden files)
_WINDOWS_JUNK = frozenset({"thumbs.db", "ehthumbs.db", "desktop.ini"})


def is_junk(name: str) -> bool:
    """A file the operating system wrote beside the images: hidden (macOS) or Windows' own, in any case."""
    return name.startswith(".") or name.lower() in _WINDOWS_JUNK


def list_images(folder: Path) -> list[Path]:
    """The image files directly in ``folder``, sorted by name. Hidden files (``.DS_Store``) and
    Windows' ``Thumbs.db`` and ``desktop.ini`` are skipped; any other file that is not an image, or
    a sub-folder, is an error rather than a silent omission, so a stray file cannot quietly shrink or
    skew a class."""
    out = []
    for path in sorted(folder.iterdir()):
        if is_junk(path.name):
            continue
        if not path.is_file():
            raise DataError(f"{path}: unexpected folder among the images of {folder}")
        if path.suffix.lower() not in IMAGE_EXTENSIONS:
            raise DataError(
                f"{path}: not an image file (expected one of {', '.join(IMAGE_EXTENSIONS)})"
            )
        out.append(path)
    return out


def shown_name(name: str) -> str:
    """A file name as a class or submission name. Linux allows names that are no UTF-8 (zips made on
    Windows: b'caf\\xe9.png'); model.json, reports and submissions are UTF-8, so such bytes are
    written as escapes (``caf\\xe9.png``, as ``ls -b`` shows them) rather than failing there."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")
