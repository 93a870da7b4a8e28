"""The synthetic benchmark: layout, answers beside the folder, determinism, balance, refusals."""

from __future__ import annotations

import csv
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from search.data.synth import answers_path, generate

SMALL = dict(classes=10, size=32, train=200, val=60, test=40)


def _rows(path: Path) -> list[list[str]]:
    with open(path, newline="") as f:
        return list(csv.reader(f))


@pytest.fixture(scope="module")
def small(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "ds"
    generate(out, seed=3, **SMALL)
    return out


def test_layout_headers_and_counts(small: Path) -> None:
    assert sorted(p.name for p in small.iterdir()) == [
        "test.csv", "test_images", "train.csv", "train_images", "val.csv", "val_images",
    ]  # fmt: skip
    names = []
    for split, count, header in (("train", 200, ["Image", "Class"]), ("val", 60, ["Image", "Class"]),
                                 ("test", 40, ["Image"])):  # fmt: skip
        rows = _rows(small / f"{split}.csv")
        assert rows[0] == header and len(rows) == count + 1
        assert sorted(p.name for p in (small / f"{split}_images").iterdir()) == sorted(r[0] for r in rows[1:])
        if split != "test":
            assert all(0 <= int(r[1]) < 10 for r in rows[1:])
        names += [r[0] for r in rows[1:]]
    assert len(set(names)) == len(names)  # unique across splits


def test_answers_beside_not_inside(small: Path) -> None:
    answers = answers_path(small)
    assert answers == small.parent / "ds-answers.csv" and answers.is_file()
    assert not any(p.name.endswith("answers.csv") for p in small.rglob("*"))
    rows = _rows(answers)
    assert rows[0] == ["Image", "Class"]
    assert [r[0] for r in rows[1:]] == [r[0] for r in _rows(small / "test.csv")[1:]]
    # No temporary folder left behind.
    assert sorted(p.name for p in small.parent.iterdir()) == ["ds", "ds-answers.csv"]


def test_images_rgb_of_the_right_size(small: Path) -> None:
    for split in ("train", "val", "test"):
        for path in sorted((small / f"{split}_images").iterdir())[:5]:
            with Image.open(path) as img:
                assert img.format == "PNG" and img.mode == "RGB" and img.size == (32, 32)


def test_classes_balanced(small: Path) -> None:
    for split, count in (("train", 200), ("val", 60)):
        counts = Counter(int(r[1]) for r in _rows(small / f"{split}.csv")[1:])
        assert sorted(counts) == list(range(10)) and set(counts.values()) == {count // 10}
    counts = Counter(int(r[1]) for r in _rows(answers_path(small))[1:])
    assert set(counts.values()) == {4}


def _pixels(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.iterdir())])


def test_deterministic_for_a_seed_and_different_across_seeds(tmp_path: Path, small: Path) -> None:
    kw = dict(SMALL, train=30, val=10, test=10)
    a, b, c = (generate(tmp_path / name, seed=seed, **kw) for name, seed in (("a", 7), ("b", 7), ("c", 8)))
    for name in ("train.csv", "val.csv", "test.csv"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert a.read_bytes() == b.read_bytes()
    pa, pb, pc = (_pixels(tmp_path / x / "train_images") for x in "abc")
    assert np.array_equal(pa, pb)
    assert not np.array_equal(pa, pc)
    assert (tmp_path / "a" / "train.csv").read_bytes() != (tmp_path / "c" / "train.csv").read_bytes()


def test_refuses_a_non_empty_folder_and_accepts_an_empty_one(tmp_path: Path) -> None:
    out = tmp_path / "ds"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        generate(out, **SMALL)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]  # untouched, nothing else written
    (out / "keep.txt").unlink()
    generate(out, classes=2, size=16, train=4, val=2, test=2, progress=None)
    assert (out / "train.csv").is_file()


def test_interrupted_run_leaves_nothing(tmp_path: Path) -> None:
    def stop(done: int, total: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate(tmp_path / "ds", progress=stop, **SMALL)
    assert list(tmp_path.iterdir()) == []


def test_progress_reaches_total_and_bad_arguments_are_refused(tmp_path: Path) -> None:
    seen: list[tuple[int, int]] = []
    generate(tmp_path / "ds", classes=3, size=16, train=7, val=0, test=2, progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (9, 9) and all(t == 9 for _, t in seen)
    assert _rows(tmp_path / "ds" / "val.csv") == [["Image", "Class"]]
    for bad in (dict(classes=1), dict(size=8), dict(train=-1), dict(difficulty=-0.5)):
        with pytest.raises(ValueError):
            generate(tmp_path / "bad", **{**SMALL, **bad})
