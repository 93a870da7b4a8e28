"""The Helsinki multi-label and class-folder layouts, detection, and --image-size resizing."""

from __future__ import annotations

import numpy as np
import pytest
from layouts import picture, write_folders, write_helsinki
from PIL import Image

from search.data import DataError, load_dataset
from search.data import helsinki as helsinki_layout
from search.data.loader import dataset_key


@pytest.fixture
def helsinki(tmp_path):
    root = tmp_path / "helsinki"
    truth = write_helsinki(root, train=24, test=12)
    return root, truth


@pytest.fixture
def folders(tmp_path):
    root = tmp_path / "folders"
    write_folders(root, classes=("dog", "cat", "bird"), train=6, val=2, test=11)
    return root


def test_helsinki_labels_come_from_annotation_files(helsinki):
    root, truth = helsinki
    ds = load_dataset(root)
    assert ds.task == "multilabel"
    assert ds.class_names == ["baby", "car", "dog", "sea"]  # the files' names, sorted
    assert ds.train_y.dtype == np.uint8 and ds.train_y.shape == (24, 4)
    assert np.array_equal(ds.train_y, truth)
    assert not ds.train_y[:3].any()  # images in no annotation file: all negative
    assert ds.val_x is None
    assert ds.train_x.shape == (24, 3, 24, 24)
    grey = ds.train_x[0]  # im1 was saved in mode L: the grey copied to all three channels
    assert (grey[0] == grey[1]).all() and (grey[1] == grey[2]).all()
    # Test images in number order (im25 ... im36), not string order (im3 would come after im25).
    assert ds.test_names == [f"im{n}.jpg" for n in range(25, 37)]
    assert ds.test_x.shape == (12, 3, 24, 24)


def test_class_folders(folders):
    ds = load_dataset(folders)
    assert ds.class_names == ["bird", "cat", "dog"]  # sorted, as ImageFolder
    assert ds.train_y.tolist() == [0] * 6 + [1] * 6 + [2] * 6
    assert ds.val_y.tolist() == [0] * 2 + [1] * 2 + [2] * 2
    assert ds.test_names == [f"t{i:03d}.png" for i in range(11)]
    assert ds.train_x.shape == (18, 3, 24, 24)  # RGBA and palette images became RGB


def test_layout_is_detected_or_forced(folders, helsinki, tiny_data):
    assert load_dataset(helsinki[0], "auto").task == "multilabel"
    with pytest.raises(DataError, match="unknown layout 'coco'; known: gic, helsinki, folders"):
        load_dataset(folders, "coco")
    with pytest.raises(DataError, match="train.csv"):  # forcing gic on class folders: its own error
        load_dataset(folders, "gic")
    assert load_dataset(tiny_data, "gic").num_classes == 10


def test_nothing_matches_says_what_was_looked_for(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as err:
        load_dataset(tmp_path / "empty")
    message = str(err.value)
    for looked_for in ("train.csv and train_images/", "train/images/ and train/annotations/", "train/<class>/"):
        assert looked_for in message


def test_mixed_sizes_need_image_size_then_are_stretched(folders):
    odd = folders / "train" / "cat" / "wide.png"
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, :20] = (255, 0, 0)  # left half red, right half blue
    wide[:, 20:] = (0, 0, 255)
    Image.fromarray(wide).save(odd)
    with pytest.raises(DataError, match="wide.png: image is 40x20 but .* --image-size"):
        load_dataset(folders)
    ds = load_dataset(folders, image_size=(16, 16))
    assert ds.train_x.shape[2:] == (16, 16) and ds.test_x.shape[2:] == (16, 16)
    names = sorted(p.name for p in (folders / "train" / "cat").iterdir())
    img = ds.train_x[6 + names.index("wide.png")]  # cat is class 1, after bird's 6 images
    # Stretched, not cropped: the whole width is kept, so each half is still one colour.
    assert (img[0, :, :7] > 200).all() and (img[2, :, :7] < 50).all()
    assert (img[2, :, 9:] > 200).all() and (img[0, :, 9:] < 50).all()
    assert load_dataset(folders, image_size=(24, 12)).train_x.shape[2:] == (12, 24)  # width x height
    assert dataset_key(folders, "folders", (16, 16)) != dataset_key(folders, "folders", None)


def bad_annotation(root, line):
    path = root / "train" / "annotations" / "car.txt"
    path.write_text(path.read_text() + line + "\n")


@pytest.mark.parametrize(
    "breakage, expected",
    [
        (lambda r: bad_annotation(r, "999"), "car.txt, line .*: image 999 is not in"),
        (lambda r: bad_annotation(r, "seven"), "car.txt, line .*: 'seven' is not an image number"),
        (lambda r: (r / "train" / "images" / "im4.jpg").write_bytes(b"\xff\xd8 truncated"),
         "im4.jpg: cannot decode image"),
        (lambda r: (r / "train" / "images" / "notes.txt").write_text("x"), "notes.txt: not an image file"),
        (lambda r: picture([1]).save(r / "train" / "images" / "cover.jpg"), "cover.jpg: image name does not end"),
        (lambda r: [p.unlink() for p in (r / "train" / "images").iterdir()], "no images .the split is empty"),
        (lambda r: picture([1]).save(r / "train" / "images" / "im001.jpg"), "im1.jpg: duplicate image number 1"),
        # an empty label file taught a label no image has, and its column came out 1 for every test image
        (lambda r: (r / "train" / "annotations" / "car.txt").write_text("\n"), "car.txt: no image numbers"),
    ],
)
def test_helsinki_bad_input(helsinki, breakage, expected):
    root, _ = helsinki
    breakage(root)
    with pytest.raises(DataError, match=expected) as err:
        load_dataset(root)
    assert "\n" not in str(err.value) and str(root) in str(err.value)


@pytest.mark.parametrize(
    "breakage, expected",
    [
        (lambda r: (r / "train" / "cat" / "readme.txt").write_text("x"), "readme.txt: not an image file"),
        (lambda r: (r / "train" / "cat" / "bad.png").write_bytes(b"\x89PNG\r\n"), "bad.png: cannot decode image"),
        (lambda r: picture([0]).save(r / "val" / "cow" / "x.png") if (r / "val" / "cow").mkdir() is None else 0,
         "class 'cow' is not among train's classes"),
        (lambda r: [p.unlink() for p in (r / "val").rglob("*.png")], "val: no images .the split is empty"),
        (lambda r: (r / "train" / "stray.png").write_bytes(b""), "stray.png: a file directly in"),
        # an empty class folder made a class nothing teaches (2 classes became a 3-class task), and
        # the cache, keyed by files, kept that task after the folder was removed
        (lambda r: (r / "train" / "cow").mkdir(), "cow: class folder with no images"),
    ],
)
def test_folders_bad_input(folders, breakage, expected):
    breakage(folders)
    with pytest.raises(DataError, match=expected) as err:
        load_dataset(folders)
    assert "\n" not in str(err.value) and str(folders) in str(err.value)


def test_hidden_files_are_ignored(folders):
    (folders / "train" / "cat" / ".DS_Store").write_bytes(b"\0\1")
    assert len(load_dataset(folders).train_x) == 18


def test_windows_junk_is_skipped_as_mac_junk_is(folders, helsinki):
    # Thumbs.db in a class folder stopped the run ("not an image file") while ._x.png was skipped
    for folder in (folders / "train" / "cat", folders / "val" / "dog", folders / "train", folders / "test"):
        (folder / "Thumbs.db").write_bytes(b"\0\1")
        (folder / "desktop.ini").write_text("[.ShellClassInfo]\n")
        (folder / "._x.png").write_bytes(b"\0")
    ds = load_dataset(folders)
    assert len(ds.train_x) == 18 and len(ds.val_x) == 6 and len(ds.test_names) == 11
    root, _ = helsinki
    for folder in (root / "train" / "images", root / "test" / "images"):
        (folder / "thumbs.db").write_bytes(b"\0\1")  # Windows matches names in any case
        (folder / "Desktop.ini").write_text("x")
    assert len(load_dataset(root).train_x) == 24


def test_cache_keeps_the_task_and_labels(helsinki, monkeypatch):
    root, truth = helsinki
    load_dataset(root)
    calls = []
    real_read = helsinki_layout.read
    monkeypatch.setattr(helsinki_layout, "read", lambda *a, **k: calls.append(1) or real_read(*a, **k))
    again = load_dataset(root)
    assert calls == [] and again.task == "multilabel" and np.array_equal(again.train_y, truth)
    (root / "train" / "annotations" / "sea.txt").write_text("1\n")  # an edit is a new key: read again
    load_dataset(root)
    assert calls == [1]


def test_helsinki_annotations_saved_with_a_bom_and_crlf(helsinki):
    # Notepad writes a byte-order mark: the first line read as '\ufeff4', "not an image number".
    root, truth = helsinki
    for path in (root / "train" / "annotations").iterdir():
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes().replace(b"\n", b"\r\n"))
    assert np.array_equal(load_dataset(root).train_y, truth)
