"""A real-image benchmark in the GIC layout, built from the photographs scikit-image ships.

The synthetic benchmark is procedural; a search that wins there might only have learnt its
generator. This one is cut from real photographs and textures (an astronaut, a cat, coffee, the
Hubble deep field, a retina, a rocket, brick, grass, gravel, coins, cells, ...): every source image
is split into a 2x2 grid of regions, and each region is a class. A sample is a crop around a random
point of its region, at a random scale, with mild lighting changes and sensor noise. Neighbouring
regions of one photograph share colours and textures and crops overlap region borders, so the task
is fine-grained rather than a colour lookup. Nothing is downloaded: the photographs are files inside
the scikit-image wheel.

    python bench/photo_patches.py --out data/photos-48px
    python -m search run cnn --data data/photos-48px

The test split's labels are written beside the folder (``DIR-answers.csv``, as the synthetic
benchmark does), so held-out images can be scored after `export` without the folder holding them.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from gic_layout import answers_path, write_split
from PIL import Image

# Colour photographs first, then greyscale textures: a small class count uses the colour ones.
SOURCES = ("astronaut", "chelsea", "coffee", "hubble_deep_field", "immunohistochemistry", "retina", "rocket",
           "colorwheel", "brick", "grass", "gravel", "camera", "coins", "cell", "clock", "moon")
GRID = 2  # regions per side of a source image


def _sources() -> list[np.ndarray]:
    import skimage.data  # the optional `bench` extra: only this script needs it

    images = []
    for name in SOURCES:
        image = getattr(skimage.data, name)()
        if image.ndim == 2:
            image = np.repeat(image[..., None], 3, axis=2)
        images.append(np.ascontiguousarray(image[..., :3]))
    return images


def _regions(classes: int, images: list[np.ndarray]) -> list[tuple[int, int, int, int, int]]:
    """(source, top, left, height, width) of each class's region, `classes` of them in source order."""
    regions = []
    for s, image in enumerate(images):
        h, w = image.shape[0] // GRID, image.shape[1] // GRID
        regions += [(s, r * h, c * w, h, w) for r in range(GRID) for c in range(GRID)]
    if not 2 <= classes <= len(regions):
        raise SystemExit(f"--classes must be 2..{len(regions)} (there are {len(regions)} regions)")
    return regions[:classes]


def _crop(image: np.ndarray, region, size: int, rng: np.random.Generator) -> np.ndarray:
    _, top, left, h, w = region
    side = int(rng.uniform(0.35, 0.8) * min(h, w))  # crops of different scales, some across borders
    cy, cx = top + rng.integers(0, h), left + rng.integers(0, w)
    y0 = int(np.clip(cy - side // 2, 0, image.shape[0] - side))
    x0 = int(np.clip(cx - side // 2, 0, image.shape[1] - side))
    patch = Image.fromarray(image[y0 : y0 + side, x0 : x0 + side]).resize((size, size), Image.BILINEAR)
    pixels = np.asarray(patch, dtype=np.float32)
    pixels = pixels * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20)  # exposure and offset
    pixels += rng.normal(0, 6, pixels.shape)  # sensor noise
    return np.clip(pixels, 0, 255).astype(np.uint8)


def build(out: Path, classes: int = 64, size: int = 48, train: int = 2000, val: int = 500, test: int = 500,
          seed: int = 0) -> Path:
    """Writes the dataset to ``out`` and the test answers beside it; returns the answers file."""
    rng = np.random.default_rng(seed)
    images = _sources()
    regions = _regions(classes, images)
    out.mkdir(parents=True, exist_ok=True)
    for split, count in (("train", train), ("val", val), ("test", test)):
        labels = np.arange(count) % classes  # balanced
        rng.shuffle(labels)
        write_split(out, split, ((_crop(images[regions[label][0]], regions[label], size, rng), label)
                                 for label in labels))
    answers = answers_path(out)
    return answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--classes", type=int, default=64)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--val", type=int, default=500)
    parser.add_argument("--test", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    answers = build(args.out, args.classes, args.size, args.train, args.val, args.test, args.seed)
    print(f"wrote {args.out} ({args.classes} classes of {args.size}px) and the test answers {answers}")


if __name__ == "__main__":
    main()
