"""The GIC reader and its cache: bad input is one clear error; unchanged files are not decoded twice."""

from __future__ import annotations

import errno
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from search.data import DataError, load_dataset
from search.data import gic as gic_layout


@pytest.fixture
def ds_copy(tiny_data, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(tiny_data, root)
    return root


def rewrite_csv(path, edit):
    lines = path.read_text().splitlines()
    path.write_text("\n".join(edit(lines)) + "\n")


def test_loads_splits_in_csv_order(tiny_data):
    ds = load_dataset(tiny_data)
    assert ds.train_x.shape == (300, 3, 32, 32) and ds.train_x.dtype == np.uint8
    assert ds.val_x.shape[0] == 100 and ds.test_x.shape[0] == 50
    assert ds.num_classes == 10
    names = [line.split(",")[0] for line in (tiny_data / "test.csv").read_text().splitlines()[1:]]
    assert ds.test_names == names
    first = np.asarray(Image.open(tiny_data / "test_images" / names[0]).convert("RGB")).transpose(2, 0, 1)
    assert np.array_equal(ds.test_x[0], first)


def test_normalisation_stats_come_from_train_only(tiny_data):
    ds = load_dataset(tiny_data)
    mean, std = ds.stats()
    x = ds.train_x.astype(np.float64) / 255
    assert np.allclose(mean, x.mean(axis=(0, 2, 3)), atol=1e-5)
    assert np.allclose(std, x.std(axis=(0, 2, 3)), atol=1e-5)


def test_cache_is_reused_then_rebuilt_when_a_file_changes(ds_copy, monkeypatch):
    first = load_dataset(ds_copy)
    calls = []
    real_read = gic_layout.read
    monkeypatch.setattr(gic_layout, "read", lambda *a, **k: calls.append(1) or real_read(*a, **k))
    again = load_dataset(ds_copy)
    assert calls == [] and np.array_equal(again.train_x, first.train_x)

    name = (ds_copy / "train.csv").read_text().splitlines()[1].split(",")[0]
    Image.new("RGB", (32, 32), (255, 0, 0)).save(ds_copy / "train_images" / name)
    changed = load_dataset(ds_copy)
    assert calls == [1]
    assert (changed.train_x[0] == np.array([255, 0, 0]).reshape(3, 1, 1)).all()


def test_a_cache_that_cannot_be_written_is_one_warning_and_the_data_still_load(ds_copy, tmp_path, monkeypatch,
                                                                              capsys):
    monkeypatch.setenv("GIC_CACHE_DIR", str(tmp_path / "cache"))

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(np, "save", full)
    for _ in range(2):  # `run --time` reads the data again for the final run
        assert load_dataset(ds_copy).train_x.shape == (300, 3, 32, 32)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("warning: decoded images not cached") and "No space left" in err[0]
    assert list((tmp_path / "cache" / "datasets").iterdir()) == []  # no half-written entry left behind


def first_train_image(root):
    return root / "train_images" / (root / "train.csv").read_text().splitlines()[1].split(",")[0]


@pytest.mark.parametrize(
    "breakage, expected",
    [
        (lambda r: first_train_image(r).write_bytes(b"not a png"), "cannot decode image"),
        (lambda r: first_train_image(r).write_bytes(first_train_image(r).read_bytes()[:100]),
         "cannot decode image"),
        (lambda r: first_train_image(r).unlink(), "image file is missing"),
        (lambda r: rewrite_csv(r / "train.csv", lambda ls: [ls[0], "../escape.png,1", *ls[1:]]),
         "leaves the folder"),
        (lambda r: rewrite_csv(r / "train.csv", lambda ls: [ls[0], "/etc/passwd,1", *ls[1:]]),
         "leaves the folder"),
        (lambda r: rewrite_csv(r / "train.csv", lambda ls: [ls[0], ls[1].split(",")[0] + ",cat", *ls[2:]]),
         "is not an integer"),
        (lambda r: rewrite_csv(r / "train.csv", lambda ls: [ls[0], ls[1].split(",")[0] + ",-3", *ls[2:]]),
         "is negative"),
        (lambda r: rewrite_csv(r / "val.csv", lambda ls: [ls[0], ls[1].split(",")[0] + ",99", *ls[2:]]),
         "out of range"),
        # a typo'd class made that many outputs and class names: the process was killed for memory
        (lambda r: rewrite_csv(r / "train.csv", lambda ls: [ls[0], ls[1].split(",")[0] + ",100000000000", *ls[2:]]),
         "row 2: class 100000000000 is out of range"),
        (lambda r: rewrite_csv(r / "train.csv", lambda ls: [ls[0], ls[1], ls[1], *ls[2:]]),
         "duplicate image name"),
        (lambda r: rewrite_csv(r / "val.csv", lambda ls: ls[:1]), "no rows"),
        (lambda r: rewrite_csv(r / "train.csv", lambda ls: ["Image,Label", *ls[1:]]), "missing column Class"),
        (lambda r: Image.new("RGB", (16, 16)).save(first_train_image(r)), "must have one size"),
        (lambda r: (r / "train.csv").unlink(), "no known dataset layout"),
    ],
)
def test_bad_input_is_one_line_naming_the_problem(ds_copy, breakage, expected):
    breakage(ds_copy)
    with pytest.raises(DataError) as err:
        load_dataset(ds_copy)
    message = str(err.value)
    assert expected in message
    assert "\n" not in message
    assert str(ds_copy) in message  # names the file or folder


def test_other_image_modes_become_rgb(ds_copy):
    path = first_train_image(ds_copy)
    Image.open(path).convert("L").save(path)
    ds = load_dataset(ds_copy)
    assert ds.train_x.shape[1] == 3
    assert (ds.train_x[0, 0] == ds.train_x[0, 1]).all()  # grey copied to all three channels


def test_sixteen_bit_greyscale_keeps_its_range(ds_copy):
    # Pillow's convert("RGB") clipped every 16-bit value above 255 to white: a ramp became one flat image.
    ramp = (np.arange(32 * 32, dtype=np.uint16).reshape(32, 32) * 64).astype(np.uint16)
    Image.fromarray(ramp).save(first_train_image(ds_copy))
    ds = load_dataset(ds_copy)
    assert np.array_equal(ds.train_x[0, 0], (ramp >> 8).astype(np.uint8))


def test_exif_orientation_is_applied(tmp_path):
    from search.data.images import decode

    stored = Image.new("RGB", (16, 8), (255, 0, 0))
    stored.paste((0, 0, 255), (0, 0, 8, 8))  # left half blue as stored
    exif = stored.getexif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display", as phones write it
    stored.save(tmp_path / "phone.jpg", exif=exif, quality=95)
    x = decode(tmp_path / "phone.jpg")
    assert x.shape == (3, 16, 8)  # upright: 8 wide, 16 tall
    assert x[2, 2, 4] > 200 and x[0, 13, 4] > 200  # the stored left half is now on top


def test_cache_sees_a_change_to_an_image_in_a_sub_folder(ds_copy):
    # The key covered only the files directly in *_images/, so this change kept the stale arrays.
    (ds_copy / "train_images" / "extra").mkdir()
    Image.new("RGB", (32, 32), (10, 20, 30)).save(ds_copy / "train_images" / "extra" / "x.png")
    rewrite_csv(ds_copy / "train.csv", lambda ls: [ls[0], "extra/x.png,0", *ls[1:]])
    assert load_dataset(ds_copy).train_x[0, 0, 0, 0] == 10
    Image.new("RGB", (32, 32), (200, 20, 30)).save(ds_copy / "train_images" / "extra" / "x.png")
    assert load_dataset(ds_copy).train_x[0, 0, 0, 0] == 200
