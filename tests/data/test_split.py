"""Seeded stratified splits, the held-out test part, and choosing and checking the task."""

from __future__ import annotations

import json

import numpy as np
import pytest

from search.data import DataError, Dataset
from search.data.options import DataOptions, parse_image_size
from search.data.prepare import prepare
from search.data.split import iterative_stratification, stratified_split


def dataset(y, task="multiclass", names=None, val=False) -> Dataset:
    n = len(y)
    x = np.arange(n, dtype=np.uint8).reshape(n, 1, 1, 1).repeat(3, 1)  # image i's pixels say i
    names = names or [str(c) for c in range(int(np.max(y)) + 1 if y.ndim == 1 else y.shape[1])]
    return Dataset("d", names, x, y, x[:5] if val else None, y[:5] if val else None, None, [], task=task)


def test_stratified_split_keeps_each_class_share_and_is_seeded():
    y = np.repeat(np.arange(4), [100, 60, 20, 20])
    train, val, test = stratified_split(y, [0.9, 0.05, 0.05], seed=3)
    assert sorted(np.concatenate([train, val, test]).tolist()) == list(range(200))  # a partition
    assert np.bincount(y[val], minlength=4).tolist() == [5, 3, 1, 1]
    assert np.bincount(y[test], minlength=4).tolist() == [5, 3, 1, 1]
    again = stratified_split(y, [0.9, 0.05, 0.05], seed=3)
    assert all(np.array_equal(a, b) for a, b in zip(again, (train, val, test), strict=True))
    other = stratified_split(y, [0.9, 0.05, 0.05], seed=4)
    assert not np.array_equal(other[1], val)


def test_iterative_stratification_spreads_every_label_even_rare_ones():
    rng = np.random.default_rng(0)
    y = (rng.random((2000, 14)) < np.linspace(0.01, 0.4, 14)).astype(np.uint8)
    y[:100] = 0  # images with no label
    parts = iterative_stratification(y, [0.8, 0.2], seed=0)
    assert sorted(np.concatenate(parts).tolist()) == list(range(2000))
    assert abs(len(parts[1]) - 400) <= 2
    share = y[parts[1]].sum(0) / y.sum(0)
    assert np.all(np.abs(share - 0.2) < 0.03), share  # each label, the rarest (~20 images) too
    assert abs((y[parts[1]].sum(1) == 0).sum() - 0.2 * (y.sum(1) == 0).sum()) <= 3



@pytest.mark.parametrize("fractions", [[0.5, 0.5], [0.4, 0.3, 0.3], [0.1, 0.45, 0.45]])
def test_every_class_and_label_keeps_an_image_in_train(fractions):
    # --val-fraction 0.5 moved a one-image class to validation: a class train never shows, unsaid
    y = np.repeat(np.arange(4), [1, 2, 3, 20])
    multi = np.zeros((26, 3), dtype=np.uint8)
    multi[0, 0] = multi[1:3, 1] = multi[3:, 2] = 1
    for seed in range(8):
        assert set(y[stratified_split(y, fractions, seed)[0]]) == {0, 1, 2, 3}
        assert multi[iterative_stratification(multi, fractions, seed)[0]].any(0).all()

def test_prepare_makes_validation_and_held_out_parts():
    y = np.repeat(np.arange(2), 100)
    out = prepare(dataset(y), DataOptions(val_fraction=0.05, test_fraction=0.05, split_seed=1))
    assert out.task == "binary"  # two classes
    assert (len(out.train_x), len(out.val_x), len(out.holdout_x)) == (180, 10, 10)
    seen = np.concatenate([out.train_x[:, 0, 0, 0], out.val_x[:, 0, 0, 0], out.holdout_x[:, 0, 0, 0]])
    assert sorted(seen.tolist()) == list(range(200))  # no image in two parts
    assert np.array_equal(out.val_y, y[out.val_x[:, 0, 0, 0]])  # labels travel with their images
    given = prepare(dataset(y, val=True), DataOptions(val_fraction=0.3))
    assert len(given.val_x) == 5 and len(given.train_x) == 200  # a given validation split is kept


def test_prepare_multilabel_split():
    rng = np.random.default_rng(1)
    y = (rng.random((100, 3)) < 0.3).astype(np.uint8)
    out = prepare(dataset(y, "multilabel"), DataOptions(val_fraction=0.2))
    assert out.task == "multilabel" and out.val_y.shape == (20, 3) and out.train_y.shape == (80, 3)


@pytest.mark.parametrize(
    "y, task, options, expected",
    [
        (np.array([0, 1, 2] * 5), "multiclass", DataOptions(task="binary"), "binary needs exactly 2 classes"),
        (np.array([0, 1] * 5), "multiclass", DataOptions(task="multilabel"), "multilabel needs the Helsinki"),
        (np.ones((9, 2), np.uint8), "multilabel", DataOptions(task="binary"), "several labels an image"),
        (np.zeros(9, np.int64), "multiclass", DataOptions(), "only one class"),
        (np.array([0, 1] * 5), "multiclass", DataOptions(val_fraction=0), "--val-fraction is 0"),
        (np.array([0, 1] * 5), "multiclass", DataOptions(val_fraction=0.6, test_fraction=0.5), "sum below 1"),
        (np.array([0, 1, 1]), "multiclass", DataOptions(val_fraction=0.1), "validation part empty"),
        (np.array([0, 1] * 5), "multiclass", DataOptions(task="regression"), "unknown task 'regression'"),
    ],
)
def test_prepare_refuses_what_the_labels_do_not_allow(y, task, options, expected):
    with pytest.raises(DataError, match=expected):
        prepare(dataset(y, task), options)


def test_image_size_from_a_flag_a_preset_or_a_record():
    assert parse_image_size("64") == parse_image_size(64) == (64, 64)
    assert parse_image_size("96x64") == parse_image_size([96, 64]) == (96, 64)
    for bad in ("big", "0", "64x", "1x2x3", "5000", [96], [96, 64, 3], 64.5, True):
        with pytest.raises(ValueError, match="image size"):
            parse_image_size(bad)


def test_recorded_options_read_back_as_they_were_written():
    options = DataOptions(layout="folders", image_size=(96, 64), task="binary", val_fraction=0.2, split_seed=3)
    recorded = json.loads(json.dumps(options.to_json()))  # as a study's storage returns it: a list
    assert recorded["image_size"] == [96, 64] and DataOptions.from_json(recorded) == options
