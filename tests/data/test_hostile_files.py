"""Files a careless or hostile dataset may hold: each is one line naming the file (and row), never a
traceback, and what is refused does not depend on whether the dataset cache is warm."""

from __future__ import annotations

import os
import shutil
import zlib

import pytest
from layouts import write_folders
from PIL import Image

from search.data import DataError, load_dataset


@pytest.fixture
def ds_copy(tiny_data, tmp_path):
    root = tmp_path / "ds"
    shutil.copytree(tiny_data, root)
    return root


def train_image(root, row: int = 1):
    return root / "train_images" / (root / "train.csv").read_text().splitlines()[row].split(",")[0]


def one_line_error(root, **options) -> str:
    with pytest.raises(DataError) as err:
        load_dataset(root, **options)
    message = str(err.value)
    assert "\n" not in message
    return message


def png_declaring(path, width: int, height: int) -> None:
    """A valid 1x1 PNG whose header claims ``width`` x ``height``: a decompression bomb's calling card."""
    Image.new("RGB", (1, 1)).save(path)
    data = bytearray(path.read_bytes())
    data[16:24] = width.to_bytes(4, "big") + height.to_bytes(4, "big")  # IHDR's first two fields
    data[29:33] = zlib.crc32(bytes(data[12:29])).to_bytes(4, "big")  # the chunk's CRC, kept valid
    path.write_bytes(bytes(data))


def test_an_image_declaring_a_huge_size_is_one_line_naming_it(ds_copy):
    bomb = train_image(ds_copy)
    png_declaring(bomb, 30000, 30000)
    message = one_line_error(ds_copy)
    assert str(bomb) in message and "too large" in message and "900000000 pixels" in message


def rewrite_train_csv(root, first_name: str) -> None:
    lines = (root / "train.csv").read_text().splitlines()
    (root / "train.csv").write_text("\n".join([lines[0], f"{first_name},1", *lines[1:]]) + "\n")


def test_a_nul_byte_in_an_image_name_is_one_line_naming_the_row(ds_copy):
    rewrite_train_csv(ds_copy, "bad\0name.png")
    message = one_line_error(ds_copy)
    assert f"{ds_copy / 'train.csv'}, row 2" in message and "NUL" in message


def test_a_huge_csv_field_is_one_line_naming_the_row(ds_copy):
    rewrite_train_csv(ds_copy, "x" * 200_000 + ".png")
    message = one_line_error(ds_copy)
    assert f"{ds_copy / 'train.csv'}, row 2" in message and "too long" in message


def test_mixed_sizes_name_the_odd_image_even_when_it_comes_first(ds_copy):
    odd = train_image(ds_copy, 1)
    Image.new("RGB", (1, 1)).save(odd)
    message = one_line_error(ds_copy)
    assert message.startswith(f"{odd}: image is 1x1 but ") and "32x32" in message


@pytest.mark.parametrize("cache", ["cold", "warm"])
def test_a_link_out_of_the_data_folder_is_refused_whatever_the_cache_holds(ds_copy, tmp_path, cache):
    image = train_image(ds_copy)
    outside = tmp_path / "outside.png"
    shutil.copyfile(image, outside)  # the same bytes: the warm cache's key cannot tell them apart
    if cache == "warm":
        load_dataset(ds_copy)
    image.unlink()
    image.symlink_to(outside)
    message = one_line_error(ds_copy, use_cache=cache == "warm")
    assert str(image) in message and "leaves the folder" in message


def test_a_link_within_its_folder_and_a_linked_split_folder_are_fine(ds_copy, tmp_path):
    image, other = train_image(ds_copy, 1), train_image(ds_copy, 2)
    image.unlink()
    image.symlink_to(other)
    moved = tmp_path / "elsewhere" / "test_images"  # a split folder kept on another disk
    moved.parent.mkdir()
    shutil.move(ds_copy / "test_images", moved)
    (ds_copy / "test_images").symlink_to(moved)
    ds = load_dataset(ds_copy)
    assert (ds.train_x[0] == ds.train_x[1]).all() and len(ds.test_x) == 50


def not_utf8(folder, name: bytes):
    """A path whose file name is bytes no UTF-8 decodes (zips made on Windows: b'caf\\xe9.png')."""
    return folder / os.fsdecode(name)


@pytest.mark.parametrize("cache", ["cold", "warm"])
def test_a_non_utf8_file_no_csv_names_does_not_matter(ds_copy, cache):
    shutil.copyfile(train_image(ds_copy), not_utf8(ds_copy / "train_images", b"caf\xe9.png"))
    if cache == "warm":
        load_dataset(ds_copy)
    assert len(load_dataset(ds_copy).train_x) == 300


def test_non_utf8_names_in_class_folders_are_read_and_shown_as_escapes(tmp_path):
    root = tmp_path / "folders"
    write_folders(root, classes=("cat", "dog"), train=3, test=2)
    os.rename(root / "train" / "dog", not_utf8(root / "train", b"chi\xe9n"))
    shutil.copyfile(root / "train" / "cat" / "cat_000.png", not_utf8(root / "train" / "cat", b"caf\xe9.png"))
    shutil.copyfile(root / "test" / "t000.png", not_utf8(root / "test", b"t\xe9.png"))
    ds = load_dataset(root)
    assert len(ds.train_x) == 7 and len(ds.test_x) == 3
    # Names travel to model.json, reports and the submission, all UTF-8: the bytes are written as escapes.
    assert ds.class_names == ["cat", "chi\\xe9n"] and "t\\xe9.png" in ds.test_names
    assert load_dataset(root).test_names == ds.test_names  # the warm cache gives the same names
