"""A procedural image benchmark written in the GIC Kaggle layout, so a study can run with no download.

Each class is a combination of a shape, a texture and a two-colour palette. The combinations are
chosen so that every shape, texture and palette is shared by several classes: no single cue names
the class, a model has to see all three together. Every image then varies in position, scale,
rotation, background clutter (blobs and lines), lighting and noise; `difficulty` scales all of that
nuisance variation (0 gives clean centred objects).

Calibrated so that the default (difficulty 1.0, 100 classes at 64x64) is a contest-like task for
seed 000's 4-conv CNN trained as seed 000 trained it; the accuracies it reaches at each difficulty are
in bench/RESULTS.md ("The synthetic benchmark's difficulty").

Over 300 lines on purpose: the drawing primitives, the class design and the writer are calibrated
together (changing one moves those accuracies), so they stay in one file.

Rendering is vectorised over batches of images (coordinate grids, signed distances for shapes,
sinusoids for textures); PNG encoding is much of the time it takes.
"""

from __future__ import annotations

import colorsys
import csv
import math
import os
import shutil
import tempfile
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["answers_path", "generate"]

# Images drawn at once: enough to amortise numpy's per-call cost, few enough to bound memory (~12 MB
# at 64x64). Each batch has its own random stream, so changing this changes the pixels of a seed.
_BATCH = 250
# The nuisance scale that difficulty 1.0 stands for (its calibration: bench/RESULTS.md).
_NUISANCE = 2.0
_F = np.float32

# Ordered from most to least distinct, so a small class count uses the easiest-to-tell-apart ones.
_SHAPES = ("circle", "triangle", "square", "star", "cross", "ring", "crescent", "capsule")
_TEXTURES = ("stripes", "checker", "dots", "rings", "waves", "gradient", "spokes", "grid")


def answers_path(out: Path) -> Path:
    """The test answers live beside the dataset folder, so the folder itself holds no test labels."""
    out = Path(out)
    return out.parent / f"{out.name}-answers.csv"


def _class_table(classes: int, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """(shape, texture, palette) for each class: unique triples, each value shared by many classes."""
    k = 2
    while k**3 < 1.25 * classes and k < len(_SHAPES):
        k += 1
    n_pal = max(k, math.ceil(classes / (k * k)))
    i = np.arange(classes)
    s, t, q = i % k, (i // k) % k, i // (k * k)
    # For a fixed (shape, texture) the q values are distinct and < n_pal, so the triples are unique;
    # adding s + t spreads each palette over all shapes and textures (a Latin-square-like layout).
    p = (s + t + q) % n_pal
    perm = rng.permutation(classes)  # which class number gets which combination depends on the seed
    # Palette j: two hues a third of the circle apart (never swapped versions of one another), the
    # first light and the second dark, so the two tones of a texture stay apart.
    hue0 = rng.uniform()
    pal = np.array(
        [
            [
                colorsys.hsv_to_rgb((hue0 + j / n_pal) % 1, 0.8, 0.95),
                colorsys.hsv_to_rgb((hue0 + j / n_pal + 1 / 3) % 1, 0.75, 0.5),
            ]
            for j in range(n_pal)
        ],
        dtype=_F,
    )
    return {"shape": s[perm], "texture": t[perm], "palette": p[perm], "colours": pal}


def _sdf(name: str, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Approximate signed distance (negative inside) in object units, where the object radius is ~1."""
    r = np.sqrt(u * u + v * v)
    if name == "circle":
        return r - 0.85
    if name == "square":
        return np.maximum(np.abs(u), np.abs(v)) - 0.75
    if name == "triangle":  # regular triangle: the largest of three half-plane distances
        a = np.array([0.5, 0.5 + 2 / 3, 0.5 + 4 / 3]) * np.pi
        return np.maximum.reduce([u * _F(np.cos(x)) + v * _F(np.sin(x)) for x in a]) - 0.5
    if name == "star":
        return r - (0.6 + 0.32 * np.cos(5 * np.arctan2(v, u)))
    if name == "cross":
        au, av = np.abs(u), np.abs(v)
        return np.minimum(np.maximum(au - 0.9, av - 0.3), np.maximum(au - 0.3, av - 0.9))
    if name == "ring":
        return np.abs(r - 0.65) - 0.28
    if name == "crescent":
        return np.maximum(r - 0.9, 0.72 - np.sqrt((u - 0.45) ** 2 + v * v))
    if name == "capsule":  # distance to a segment, minus a radius
        return np.sqrt(np.maximum(np.abs(u) - 0.55, 0) ** 2 + v * v) - 0.38
    raise ValueError(name)


def _texture(name: str, u: np.ndarray, v: np.ndarray, k: np.ndarray, ph: np.ndarray) -> np.ndarray:
    """Mix weight in [0, 1] between the palette's two colours; sharp edges so it survives noise."""

    def step(x):
        return np.clip(0.5 + 3 * x, 0, 1)

    ku, kv = k * u + ph, k * v - ph
    if name == "stripes":
        return step(np.sin(ku))
    if name == "checker":
        return step(np.sin(ku) * np.sin(kv))
    if name == "dots":
        return step(np.cos(ku) + np.cos(kv) - 0.9)
    if name == "rings":
        return step(np.sin(k * np.sqrt(u * u + v * v) + ph))
    if name == "waves":
        return step(np.sin(ku + 1.6 * np.sin(0.6 * kv)))
    if name == "gradient":
        return np.clip(0.5 + 0.7 * u, 0, 1)
    if name == "spokes":
        return step(np.sin(6 * np.arctan2(v, u) + ph))
    if name == "grid":
        return step(np.maximum(np.cos(ku), np.cos(kv)) - 0.75)
    raise ValueError(name)


def _render(labels: np.ndarray, table: dict, size: int, d: float, rng: np.random.Generator) -> np.ndarray:
    """A batch of uint8 RGB images (n, size, size, 3) for the given class labels."""
    n = len(labels)
    # Drawn grouped by (shape, texture), so that each group is a contiguous slice of the batch (views,
    # no copies); the images go back to the caller's order at the end.
    key = table["shape"][labels] * len(_TEXTURES) + table["texture"][labels]
    order = np.argsort(key, kind="stable")
    labels, key = labels[order], key[order]

    def uni(lo=-1.0, hi=1.0, shape=(n,)):
        return rng.uniform(lo, hi, shape).astype(_F)

    def c(a):  # per-image scalar (n,) -> broadcastable over (n, H, W)
        return a[:, None, None]

    g = np.arange(size, dtype=_F) + _F(0.5)
    xs, ys = g[None, None, :], g[None, :, None]

    def local(cx, cy, rad, ang):  # object coordinates: centred, rotated, in units of the radius
        dx, dy = xs - c(cx), ys - c(cy)  # (n,1,W) and (n,H,1): only the final sums are full size
        co, si = c(np.cos(ang) / rad), c(np.sin(ang) / rad)
        return dx * co + dy * si, dy * co - dx * si

    # Background and clutter, painted as a map of "which colour is on top" and looked up once at the
    # end: per-pixel alpha blending of every distractor cost more than all the rest of the image.
    # Colour 0 is the background: a random colour moved half way to its grey, kept off black and white.
    n_blobs, n_lines = math.ceil(3 * d), math.ceil(2 * d)
    colours = uni(0, 1, (n, 1 + 2 * n_blobs + n_lines, 3))
    colours[:, 0] = 0.5 * colours[:, 0] + 0.5 * colours[:, 0].mean(1, keepdims=True) * 0.7 + 0.15
    # A blob is small: it is drawn in a window around it (a sixth of the frame), on a map with a
    # margin of h pixels so that a window near the border needs no special case.
    h = math.ceil(1.42 * 0.13 * size) + 1  # 1.42 radii: the farthest a blob's outline reaches
    top = np.zeros((n, size + 2 * h, size + 2 * h), np.int16)
    win = np.arange(2 * h)
    for i in range(n_blobs):
        # Outlines between diamond, disc and square (like the class shapes), half of them striped.
        cx, cy = uni(0, size), uni(0, size)
        ox, oy = cx.astype(np.intp), cy.astype(np.intp)  # window: map [o, o + 2h) = image [o - h, o + h)
        dx = (ox[:, None] + win - h).astype(_F)[:, None, :] + _F(0.5) - c(cx)
        dy = (oy[:, None] + win - h).astype(_F)[:, :, None] + _F(0.5) - c(cy)
        ang, rad = uni(-np.pi, np.pi), uni(0.05, 0.13) * size
        co, si = c(np.cos(ang) / rad), c(np.sin(ang) / rad)
        u, v = dx * co + dy * si, dy * co - dx * si
        au, av = np.abs(u), np.abs(v)
        w = rng.dirichlet((1, 1, 1), n).astype(_F).T
        dist = c(w[0] * 0.75) * (au + av) + c(w[1]) * np.sqrt(u * u + v * v) + c(w[2]) * np.maximum(au, av)
        inside = (dist < 1) & c(uni(0, 1) < 0.7)
        stripe = inside & ((u * 3).astype(np.int8) & 1).astype(bool) & c(uni(0, 1) < 0.5)
        at = (np.arange(n)[:, None, None], (oy[:, None] + win)[:, :, None], (ox[:, None] + win)[:, None, :])
        patch = top[at]
        patch[inside] = 1 + 2 * i
        patch[stripe] = 2 + 2 * i
        top[at] = patch
    top = top[:, h:-h, h:-h] + np.arange(n)[:, None, None] * colours.shape[1]  # an index into `flat`
    for i in range(n_lines):
        ang = uni(-np.pi, np.pi)
        dist = np.abs((xs - c(uni(0, size))) * c(np.sin(ang)) - (ys - c(uni(0, size))) * c(np.cos(ang)))
        np.putmask(top, (dist < c(uni(0.4, 1.2))) & c(uni(0, 1) < 0.7), 1 + 2 * n_blobs + i)
    flat = colours.reshape(-1, 3).T  # (3, n * colours): channel planes, so each lookup is one take
    img = np.empty((n, 3, size, size), _F)
    for ch in range(3):
        np.take(flat[ch], top, out=img[:, ch])

    # The object: position, scale and rotation jitter grow with d (rotation is full from d = 1, that
    # is difficulty 0.5).
    rad = _F(0.27 * size) * np.exp(uni() * _F(0.25 * d))
    shift = _F(0.16 * size * min(d, 1.5))
    u, v = local(size / 2 + uni() * shift, size / 2 + uni() * shift, rad, uni() * _F(np.pi * min(d, 1.0)))
    # Texture period ~0.55 object radii, never under 5 pixels; its frequency and phase vary too.
    k = _F(2 * np.pi) / np.maximum(_F(5) / rad, _F(0.55)) * np.exp(uni() * _F(0.2 * d))
    ph = uni(0, 2 * np.pi)
    alpha = np.empty((n, size, size), _F)
    mix = np.empty((n, size, size), _F)
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    for a, b in zip(starts, np.r_[starts[1:], n], strict=True):
        shape, texture = divmod(int(key[a]), len(_TEXTURES))
        at = slice(a, b)
        # Multiplying by the radius turns object units into pixels: a one-pixel antialiased edge.
        alpha[at] = np.clip(0.5 - _sdf(_SHAPES[shape], u[at], v[at]) * c(rad[at]), 0, 1)
        mix[at] = _texture(_TEXTURES[texture], u[at], v[at], c(k[at]), c(ph[at]))
    pal = table["colours"][table["palette"][labels]]  # (n, 2, 3)
    pal = np.clip(pal + uni(shape=(n, 2, 3)) * _F(0.08 * d), 0, 1)  # per-image colour jitter
    # Channels first, so that every broadcast below runs over whole H*W planes (with channels last,
    # numpy's inner loop would be 3 long and the same arithmetic several times slower).
    c1, c2 = pal[:, 0, :, None, None], pal[:, 1, :, None, None]
    img += alpha[:, None] * (c1 + (c2 - c1) * mix[:, None] - img)

    # Lighting (an illumination gradient, contrast, brightness) and the scale to 0..255 fold into one
    # gain map and one offset per image; then sensor noise, uniform because it is much cheaper to draw
    # than Gaussian (its standard deviation is 0.05 d), and the +0.5 that makes astype round.
    ang, slope, contrast = uni(-np.pi, np.pi), uni(0, 0.5 * d) / size, np.exp(uni() * _F(0.35 * d))
    gain = (xs - size / 2) * c(slope * np.cos(ang)) + (ys - size / 2) * c(slope * np.sin(ang)) + 1
    gain *= c(contrast * 255)
    amp = _F(0.05 * d * 2 * math.sqrt(3) * 255)
    offset = (0.5 - 0.5 * contrast + uni() * _F(0.12 * d)) * 255 - amp / 2 + 0.5
    img *= gain[:, None]
    img += offset[:, None, None, None]
    img += rng.integers(0, 256, img.shape, dtype=np.uint8) * (amp / 255)
    np.clip(img, 0, 255, out=img)
    return img.transpose(0, 2, 3, 1).astype(np.uint8)[np.argsort(order)]


def _write_csv(path: Path, header: list[str], rows) -> None:
    # Fixed "\n" line ends so the bytes are the same on every platform (determinism tests).
    with open(path, "w", newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        w.writerows(rows)


def _save(images: np.ndarray, paths: list[Path]) -> int:
    for img, path in zip(images, paths, strict=True):
        Image.fromarray(img).save(path, compress_level=1)
    return len(paths)


def generate(
    out: Path,
    *,
    classes: int = 100,
    size: int = 64,
    train: int = 13000,
    val: int = 2000,
    test: int = 5000,
    seed: int = 0,
    difficulty: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
) -> Path:
    """Writes the dataset into `out` and returns the path of the answers file."""
    out = Path(out)
    if classes < 2 or size < 16 or min(train, val, test) < 0 or seed < 0 or not difficulty >= 0:
        raise ValueError(
            "synthetic data needs classes >= 2, size >= 16 and non-negative counts, seed and difficulty; "
            f"got classes={classes}, size={size}, train={train}, val={val}, test={test}, "
            f"seed={seed}, difficulty={difficulty}"
        )
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out}: already exists and is not empty; remove it or choose another folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    table = _class_table(classes, np.random.default_rng([seed, 0]))
    total, done = train + val + test, 0
    width = max(5, len(str(total)))
    # Built in a hidden sibling and renamed at the end: a half-written dataset never looks complete.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".partial", dir=out.parent))
    try:
        # PNG encoding (zlib) releases the GIL, so worker threads save one batch while the next is
        # drawn; at most two batches wait, which bounds memory.
        with ThreadPoolExecutor(max_workers=2) as pool:
            pending: deque = deque()
            number = 1  # image names run on across splits, so every name is unique
            for split_id, (split, count) in enumerate((("train", train), ("val", val), ("test", test))):
                folder = tmp / f"{split}_images"
                folder.mkdir()
                # Balanced: each class appears count // classes times or once more, in shuffled order.
                labels = np.random.default_rng([seed, 1, split_id]).permutation(np.arange(count) % classes)
                names = [f"{number + i:0{width}d}.png" for i in range(count)]
                number += count
                for b, start in enumerate(range(0, count, _BATCH)):
                    rng = np.random.default_rng([seed, 2, split_id, b])
                    d = _NUISANCE * difficulty
                    images = _render(labels[start : start + _BATCH], table, size, d, rng)
                    pending.append(pool.submit(_save, images, [folder / x for x in names[start : start + _BATCH]]))
                    while len(pending) > 2 or (pending and start + _BATCH >= count):
                        done += pending.popleft().result()
                        if progress is not None:
                            progress(done, total)
                rows = zip(names, labels.tolist(), strict=True)
                if split == "test":
                    _write_csv(tmp / "test.csv", ["Image"], ([name] for name in names))
                    _write_csv(tmp / ".answers.csv", ["Image", "Class"], rows)
                else:
                    _write_csv(tmp / f"{split}.csv", ["Image", "Class"], rows)
        answers = answers_path(out)
        # Answers first: if we stop between the two renames, there is no dataset lacking its answers.
        os.replace(tmp / ".answers.csv", answers)
        if out.exists():
            out.rmdir()  # empty (checked above); renaming onto a directory is not portable
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return answers
