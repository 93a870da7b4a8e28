"""Real-image benchmarks of kinds the priors were not tuned on (issue 19), in the GIC layout.

    python bench/real_sets.py where --out data/real-where   # the class is WHERE things are
    python bench/real_sets.py late  --out data/real-late    # many classes, few images: learnt late
    python bench/real_sets.py gray  --out data/real-gray    # greyscale handwritten digits, distorted
    python bench/real_sets.py count --out data/real-count   # the class is HOW MANY things there are
    [--seed S] [--size 48] [--train N] [--val N] [--test N] [--classes K (late)]

The priors were tuned on the synthetic benchmark and photo_patches.py's photo regions, where the
object's identity is the class, position does not matter, and the hand design learns from the first
epoch. Each kind here breaks one of those. Every pixel comes from files inside installed wheels,
read from the package folder (nothing is fetched, so a machine without network builds the same
files): scikit-image's photographs and textures (skimage/data/*.png|jpg; the `bench` extra),
scikit-learn's two sample photos (china.jpg, flower.jpg) and its handwritten digits (digits.csv.gz).
Test answers go beside the folder (DIR-answers.csv), as photo_patches.py writes them. The images are
48px by default: seed 000's CNN (valid convolutions, four poolings) needs at least that.
"""

from __future__ import annotations

import argparse
from functools import cache
from pathlib import Path

import numpy as np
from gic_layout import answers_path, write_split
from PIL import Image

COLOUR = ("astronaut.png", "chelsea.png", "coffee.png", "hubble_deep_field.jpg", "ihc.png", "retina.jpg",
          "rocket.jpg", "motorcycle_left.png")
TEXTURES = ("brick.png", "grass.png", "gravel.png")  # greyscale, 512x512


def _skimage_file(name: str, mode: str) -> np.ndarray:
    """An image file shipped inside scikit-image's wheel, read from disk: skimage.data's loaders would
    fetch a missing file over the network, and a file that is not there should fail here instead."""
    import skimage.data  # the optional `bench` extra

    return np.asarray(Image.open(Path(skimage.data.__file__).parent / name).convert(mode))


@cache
def _colour_photos() -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_sample_image  # two JPEGs inside scikit-learn's wheel

    return (*(_skimage_file(n, "RGB") for n in COLOUR), load_sample_image("china.jpg"),
            load_sample_image("flower.jpg"))


@cache
def _texture(name: str) -> np.ndarray:
    return _skimage_file(name, "L")


def _textures() -> tuple[np.ndarray, ...]:
    return tuple(_texture(n) for n in TEXTURES)


@cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits  # 1,797 8x8 scans, 16 grey levels, inside scikit-learn

    d = load_digits()
    return (d.images * (255 / 16)).astype(np.uint8), d.target


def _crop(image: np.ndarray, side: int, out: int, rng: np.random.Generator, box=None) -> np.ndarray:
    """A random side x side crop (inside ``box`` = top, left, height, width, when given) resized to out."""
    top, left, h, w = box or (0, 0, image.shape[0], image.shape[1])
    side = min(side, h, w)
    y, x = top + rng.integers(0, h - side + 1), left + rng.integers(0, w - side + 1)
    return np.asarray(Image.fromarray(image[y : y + side, x : x + side]).resize((out, out), Image.BILINEAR))


def _finish(pixels: np.ndarray, rng: np.random.Generator, noise: float) -> np.ndarray:
    """Exposure, offset and sensor noise: the nuisances a camera adds, so no pixel value is a label."""
    pixels = pixels.astype(np.float32) * rng.uniform(0.75, 1.25) + rng.uniform(-20, 20)
    return np.clip(pixels + rng.normal(0, noise, pixels.shape), 0, 255).astype(np.uint8)


def _balanced(count: int, classes: int, rng: np.random.Generator) -> np.ndarray:
    labels = np.arange(count) % classes
    rng.shuffle(labels)
    return labels


# --- where: the class is the arrangement ---------------------------------------------------------------

WHERE_CELLS = 4  # the quadrants of the canvas
WHERE_PAIRS = [(a, b) for a in range(WHERE_CELLS) for b in range(WHERE_CELLS) if a != b]  # 12 classes


def where_class(digit_cell: int, photo_cell: int) -> int:
    """The class of an image whose digit sits in quadrant ``digit_cell`` and photo patch in ``photo_cell``
    (quadrants 0..3: top-left, top-right, bottom-left, bottom-right)."""
    return WHERE_PAIRS.index((digit_cell, photo_cell))


def where_content(size: int, rng: np.random.Generator) -> dict:
    """What a `where` image shows, drawn the same way whatever its class: a greyscale texture
    background, one handwritten digit in a random colour, one square crop of a colour photograph,
    and where inside its quadrant each of the two sits."""
    half = size // 2
    digits, _ = _digits()
    glyph = max(8, int(half * rng.uniform(0.6, 0.85)))
    patch = max(8, int(half * rng.uniform(0.6, 0.85)))
    photos, textures = _colour_photos(), _textures()
    texture = textures[rng.integers(len(textures))]
    background = _crop(texture, int(rng.integers(96, 320)), size, rng).astype(np.float32) * rng.uniform(0.3, 0.6)
    ink = np.asarray(Image.fromarray(digits[rng.integers(len(digits))]).resize((glyph, glyph), Image.BICUBIC))
    photo = photos[rng.integers(len(photos))]
    return {
        "background": np.repeat(background[..., None], 3, axis=2),
        "digit": ink.astype(np.float32) / 255, "colour": rng.uniform(120, 255, 3),
        "photo": _crop(photo, int(rng.integers(48, 200)), patch, rng).astype(np.float32),
        "digit_at": tuple(rng.integers(0, half - glyph + 1, 2)),
        "photo_at": tuple(rng.integers(0, half - patch + 1, 2)),
    }


def where_render(content: dict, digit_cell: int, photo_cell: int) -> np.ndarray:
    """The image of ``content`` with its digit in quadrant ``digit_cell`` and its photo patch in ``photo_cell``."""
    canvas = content["background"].copy()
    half = canvas.shape[0] // 2

    def corner(cell: int, at: tuple[int, int]) -> tuple[int, int]:
        return (cell // 2) * half + at[0], (cell % 2) * half + at[1]

    y, x = corner(photo_cell, content["photo_at"])
    p = content["photo"]
    canvas[y : y + p.shape[0], x : x + p.shape[1]] = p
    y, x = corner(digit_cell, content["digit_at"])
    alpha = content["digit"][..., None]  # the stroke's darkness is its opacity: the texture shows between strokes
    region = canvas[y : y + alpha.shape[0], x : x + alpha.shape[1]]
    canvas[y : y + alpha.shape[0], x : x + alpha.shape[1]] = region * (1 - alpha) + content["colour"] * alpha
    return canvas


def _where(size: int, rng: np.random.Generator, label: int) -> np.ndarray:
    """`where` (compositional): a handwritten digit and a photo patch in two of the four quadrants of a
    textured canvas; the class is the ordered pair of quadrants (12 classes). Every class draws its
    content alike, so only position tells classes apart: this tests designs that throw position away
    early (a global-average-pool head, which the priors recommend) against ones that keep it (seed
    000's flatten head). The photo_patches benchmark never asked that question."""
    digit_cell, photo_cell = WHERE_PAIRS[label]
    return _finish(where_render(where_content(size, rng), digit_cell, photo_cell), rng, noise=5)


# --- late: many classes, few images each ----------------------------------------------------------------

LATE_ROWS, LATE_COLS = 8, 12  # 96 spots of one texture photograph
LATE_SOURCE = "gravel.png"  # distinct stones to recognise, but every spot looks like every other at a glance


def _late_regions(classes: int) -> list[tuple[int, int, int, int]]:
    h, w = _texture(LATE_SOURCE).shape
    rh, rw = h // LATE_ROWS, w // LATE_COLS
    regions = [(r * rh, c * rw, rh, rw) for r in range(LATE_ROWS) for c in range(LATE_COLS)]
    if not 2 <= classes <= len(regions):
        raise SystemExit(f"late: --classes must be 2..{len(regions)}")
    return regions[:classes]


def _late(size: int, rng: np.random.Generator, label: int, regions) -> np.ndarray:
    """`late`: 96 classes, the spots of an 8x12 grid on one photograph of gravel, 20 training images
    each. A sample is a crop around a random point of its spot, a little larger than the spot (so
    neighbours share stones), under a colour cast, exposure and noise. Every class has the same
    statistics, so no coarse cue (a photograph's colour, a texture's kind) lifts accuracy early, as
    it does on photo_patches.py's regions: a network must learn particular stones from 20 views.
    Seed 000's CNN sits near chance over the first quarter of a 30-epoch run (bench/RESULTS.md),
    while the quick preset's pruner judges trials at epoch 3: this is the benchmark where it may
    judge too early."""
    image = _texture(LATE_SOURCE)
    top, left, h, w = regions[label]
    side = int(min(h, w) * rng.uniform(0.9, 1.4))
    cy, cx = top + rng.integers(0, h), left + rng.integers(0, w)
    y0 = int(np.clip(cy - side // 2, 0, image.shape[0] - side))
    x0 = int(np.clip(cx - side // 2, 0, image.shape[1] - side))
    crop = Image.fromarray(image[y0 : y0 + side, x0 : x0 + side]).resize((size, size), Image.BILINEAR)
    cast = np.asarray(crop, np.float32)[..., None] * rng.uniform(0.7, 1.0, 3)  # a colour cast that names nothing
    return _finish(cast, rng, noise=8)


# --- gray: handwritten digits, distorted, on a textured page ---------------------------------------------

def _digit_pools(seed: int) -> dict[str, np.ndarray]:
    """Disjoint scans for each split (60/20/20): a test digit is never a distortion of a training one."""
    order = np.random.default_rng(seed + 1).permutation(len(_digits()[1]))
    a, b = int(0.6 * len(order)), int(0.8 * len(order))
    return {"train": order[:a], "val": order[a:b], "test": order[b:]}


def _gray(size: int, rng: np.random.Generator, index: int) -> np.ndarray:
    """`gray` (greyscale, fine strokes): one of scikit-learn's handwritten digit scans, blown up from
    8x8, turned, slanted, placed anywhere on a greyscale texture in dark or light ink, with noise; 10
    classes. Greyscale PNGs (the engine makes them RGB), so colour statistics, flips (a mirrored digit
    is another shape) and colour jitter, which the priors lean on, buy nothing here. Each split draws
    from its own scans, so the test measures new handwriting, not new distortions of seen digits."""
    digits, _ = _digits()
    side = int(size * rng.uniform(0.45, 0.75))
    glyph = Image.fromarray(digits[index]).resize((side, side), Image.BICUBIC)
    glyph = glyph.rotate(rng.uniform(-20, 20), Image.BICUBIC, expand=True)
    shear = rng.uniform(-0.25, 0.25)  # slanted handwriting
    glyph = glyph.transform(glyph.size, Image.AFFINE, (1, shear, -shear * glyph.size[1] / 2, 0, 1, 0), Image.BICUBIC)
    ink = np.asarray(glyph, np.float32)[:size, :size] / 255
    texture = _textures()[rng.integers(len(_textures()))]
    page = _crop(texture, int(rng.integers(64, 256)), size, rng).astype(np.float32)
    page = 128 + (page - page.mean()) * rng.uniform(0.3, 0.8)  # a busy page of varying contrast
    y, x = rng.integers(0, size - ink.shape[0] + 1), rng.integers(0, size - ink.shape[1] + 1)
    stroke = rng.uniform(0, 60) if rng.random() < 0.5 else rng.uniform(200, 255)  # dark or light ink
    under = page[y : y + ink.shape[0], x : x + ink.shape[1]]  # a view: the ink is drawn into the page
    under += (stroke - under) * ink
    return _finish(page, rng, noise=10)  # 2-D: a greyscale PNG


# --- count: the class is how many things there are -----------------------------------------------------

COUNT_MOST = 7  # 1..7 things: classes 0..6
COUNT_SIDES = (7, 13)  # a thing's side in pixels, at most (exclusive): three sizes of area apart
COUNT_LAYOUTS = 1000  # layouts drawn before a canvas too small for the things is refused


def count_things(size: int, many: int, rng: np.random.Generator) -> list[tuple[int, int, int]]:
    """``many`` squares (top, left, side) on a size x size canvas, none touching another: each side drawn
    from ``COUNT_SIDES``, so the area the things cover overlaps between counts (three large things cover
    about what six small ones do) and counting them is the only sure cue."""
    for _layout in range(COUNT_LAYOUTS):  # one that does not fit is drawn again (7 of 12 px: under half of 48x48)
        placed: list[tuple[int, int, int]] = []
        for _ in range(many):
            side = int(rng.integers(*COUNT_SIDES))
            for _attempt in range(50):
                y, x = (int(v) for v in rng.integers(0, size - side + 1, 2))
                if all(y + side < py or py + ps < y or x + side < px or px + ps < x for py, px, ps in placed):
                    placed.append((y, x, side))
                    break
            else:
                break
        if len(placed) == many:
            return placed
    raise SystemExit(f"count: {many} things of up to {COUNT_SIDES[1] - 1} px do not fit apart in a {size}px image; "
                     f"give --size 32 or more")  # a small --size looped for ever


def _count(size: int, rng: np.random.Generator, label: int) -> np.ndarray:
    """`count`: 1 to 7 things on a textured canvas, each a crop of a colour photograph or a handwritten
    digit in a random colour, of random sizes and places; the class is how many (7 classes). No one
    thing names the class, and a thing's kind, size and colour are drawn alike for every count, so
    a design must gather evidence over the whole image: a global-average-pool head can add things up,
    a flatten head must learn every place. Built with this file's other kinds, kept out of every
    tuning decision and measured once, as a held-out set."""
    digits, _ = _digits()
    photos, textures = _colour_photos(), _textures()
    texture = textures[rng.integers(len(textures))]
    canvas = _crop(texture, int(rng.integers(96, 320)), size, rng).astype(np.float32) * rng.uniform(0.3, 0.6)
    canvas = np.repeat(canvas[..., None], 3, axis=2)
    for y, x, side in count_things(size, label + 1, rng):
        if rng.random() < 0.5:
            photo = photos[rng.integers(len(photos))]
            canvas[y : y + side, x : x + side] = _crop(photo, int(rng.integers(32, 160)), side, rng)
        else:
            ink = np.asarray(Image.fromarray(digits[rng.integers(len(digits))]).resize((side, side), Image.BICUBIC))
            alpha = ink.astype(np.float32)[..., None] / 255
            region = canvas[y : y + side, x : x + side]
            canvas[y : y + side, x : x + side] = region * (1 - alpha) + rng.uniform(120, 255, 3) * alpha
    return _finish(canvas, rng, noise=5)


# --- building ------------------------------------------------------------------------------------------

KINDS = {"where": len(WHERE_PAIRS), "late": 96, "gray": 10, "count": COUNT_MOST}  # each kind's class count
DEFAULT_SIZES = {"where": (2000, 400, 500), "late": (1920, 480, 500), "gray": (2000, 400, 500),
                 "count": (2000, 400, 500)}


def build(kind: str, out: Path, size: int = 48, train: int | None = None, val: int | None = None,
          test: int | None = None, seed: int = 0, classes: int | None = None) -> Path:
    """Writes the ``kind`` benchmark to ``out`` and its test answers beside it; returns the answers file."""
    counts = dict(zip(("train", "val", "test"), DEFAULT_SIZES[kind], strict=True))
    counts.update({k: v for k, v in (("train", train), ("val", val), ("test", test)) if v is not None})
    classes = classes or KINDS[kind]
    if kind in ("where", "count") and classes != KINDS[kind]:
        raise SystemExit(f"{kind}: its classes are fixed ({KINDS[kind]}); --classes cannot change them")
    regions = _late_regions(classes) if kind == "late" else None
    rng = np.random.default_rng(seed)
    out.mkdir(parents=True, exist_ok=True)
    if kind == "gray":
        pools, (_, targets) = _digit_pools(seed), _digits()
        for split, count in counts.items():
            picks = rng.choice(pools[split], count, replace=count > len(pools[split]))
            write_split(out, split, ((_gray(size, rng, i), targets[i]) for i in picks))
        return answers_path(out)
    draws = {"late": lambda y: _late(size, rng, y, regions), "where": lambda y: _where(size, rng, y),
             "count": lambda y: _count(size, rng, y)}
    for split, count in counts.items():
        labels = _balanced(count, classes, rng)
        write_split(out, split, ((draws[kind](y), y) for y in labels))
    return answers_path(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("kind", choices=sorted(KINDS))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--size", type=int, default=48)
    parser.add_argument("--train", type=int)
    parser.add_argument("--val", type=int)
    parser.add_argument("--test", type=int)
    parser.add_argument("--classes", type=int, help="late only: how many photo regions (default 96)")
    args = parser.parse_args()
    answers = build(args.kind, args.out, args.size, args.train, args.val, args.test, args.seed, args.classes)
    print(f"wrote {args.out} ({args.kind}, {args.size}px) and the test answers {answers}")


if __name__ == "__main__":
    main()
