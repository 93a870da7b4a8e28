"""A saved model folder: replaced whole or not at all, its two files checked to belong together, and
every damaged or edited field of model.json named in one line instead of a traceback."""

from __future__ import annotations

import errno
import itertools
import json
import os
import pathlib
import shutil
import stat

import pytest
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

import search.after.model_files
from search.after.retrain import retrain
from search.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def saved(two_trials, tmp_path_factory):
    """Trial 0's and trial 1's retrained model folders, kept pristine: tests damage copies."""
    root = tmp_path_factory.mktemp("saved")
    study = two_trials["study"]
    return {n: retrain(study, n, "train", root / f"trial-{n}", "cpu", remember=False)[0] for n in (0, 1)}


def _export(folder, tmp_path, capsys) -> tuple[int, str]:
    code = main(["export", "--model", str(folder), "--out", str(tmp_path / "sub.csv"), "--device", "cpu"])
    return code, capsys.readouterr().err


def _leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def _stop_at_move(n: int):
    """Wraps os.replace and os.rename so that the n-th move of either (from 0) is a Ctrl-C."""
    moves = []

    def wrap(move):
        def stopping(src, dst):
            moves.append(src)
            if len(moves) == n + 1:  # once: what the stop sets off to put things back runs unhindered
                raise KeyboardInterrupt
            return move(src, dst)
        return stopping
    return wrap


def test_a_retrain_stopped_at_any_rename_leaves_the_old_model_or_the_new_whole(two_trials, saved, tmp_path,
                                                                                monkeypatch, capsys):
    # It replaced model.safetensors and model.json by two renames: stopped between them, the folder
    # held trial 1's weights with trial 0's model.json, and export failed with a size-mismatch traceback.
    out = tmp_path / "model"
    for stop_at in itertools.count():
        shutil.rmtree(out, ignore_errors=True)
        shutil.copytree(saved[0], out)
        with monkeypatch.context() as m:
            stopping = _stop_at_move(stop_at)
            m.setattr(os, "replace", stopping(os.replace))
            m.setattr(os, "rename", stopping(os.rename))
            try:
                retrain(two_trials["study"], 1, "train", out, "cpu", remember=False)
                finished = True
            except KeyboardInterrupt:
                finished = False
        assert _export(out, tmp_path, capsys)[0] == 0, stop_at
        trial = json.loads((out / "model.json").read_text())["trial"]
        assert trial == (1 if finished else 0), stop_at  # a stopped retrain leaves the old model as it was
        assert _leftovers(tmp_path) == [] and _leftovers(out) == [], stop_at
        if finished:
            break
    assert stop_at >= 2  # both files' renames were interrupted on the way


def test_export_refuses_a_folder_whose_weights_come_from_another_save(saved, tmp_path, capsys):
    folder = shutil.copytree(saved[0], tmp_path / "mixed")
    shutil.copy(saved[1] / "model.safetensors", folder / "model.safetensors")
    code, err = _export(folder, tmp_path, capsys)
    assert code == 2 and err.count("\n") == 1, err
    assert f"{folder / 'model.safetensors'}: not the weights model.json was saved with" in err, err
    assert not (tmp_path / "sub.csv").exists()


def _edit(field, value):
    def edit(meta):
        if value is _DROP:
            del meta[field]
        elif field.startswith("params."):
            meta["params"][field.split(".", 1)[1]] = value
        else:
            meta[field] = value(meta) if callable(value) else value
    return edit


_DROP = object()
EDITS = {  # field edited in model.json -> what the one line names
    "filters_l0": (_edit("params.filters_l0", 20), "params.filters_l0 is 20 but model.safetensors was saved with 16"),
    "n_conv": (_edit("params.n_conv", 3), "params.n_conv is 3 but model.safetensors was saved with 2"),
    "in_shape": (_edit("in_shape", [3, 24, 24]), "in_shape is [3, 24, 24] but model.safetensors was saved with"),
    "num_classes": (_edit("num_classes", 10**12), "num_classes is 1000000000000 but model.safetensors was saved"),
    "params": (_edit("params", _DROP), "model.json: has no 'params' field"),
    "class_names": (_edit("class_names", lambda m: m["class_names"][:-1]), "class_names is ["),
    "std": (_edit("std", [0, 0, 0]), "std is [0, 0, 0] but model.safetensors was saved with"),
}


@pytest.mark.parametrize("case", EDITS)
def test_an_edited_model_json_is_one_line_naming_the_field(saved, tmp_path, capsys, case):
    edit, expected = EDITS[case]
    folder = shutil.copytree(saved[0], tmp_path / "edited")
    meta = json.loads((folder / "model.json").read_text())
    edit(meta)
    (folder / "model.json").write_text(json.dumps(meta))
    code, err = _export(folder, tmp_path, capsys)
    assert code == 2 and err.count("\n") == 1 and str(folder / "model.json") in err, err
    assert expected in err and "timm" not in err, err  # n_conv's hint spoke of timm weights in a cnn


def _legacy(folder):
    """The folder as a version that kept no copy of model.json's fields in the weights file saved it."""
    weights = folder / "model.safetensors"
    save_file(load_file(weights), weights)
    meta = json.loads((folder / "model.json").read_text())
    meta.pop("weights_sha256", None)
    return meta


LEGACY_EDITS = {
    "std": ({"std": [0, 0, 0]}, "model.json: std must be more than 0 in every channel, got [0, 0, 0]"),
    "num_classes": ({"num_classes": 10**12}, "model.json: num_classes is 1000000000000 but class_names has 4"),
    "class_names": ({"class_names": ["0", "1", "2"]}, "model.json: num_classes is 4 but class_names has 3"),
    "filters_l1": ({"params": "filters_l1=40"}, "model.json: params, num_classes or in_shape do not fit"),
}


@pytest.mark.parametrize("case", LEGACY_EDITS)
def test_an_edited_model_json_of_an_older_save_is_one_line_too(saved, tmp_path, capsys, case):
    # std of zeros gave no error and a submission of class 0 only; the others were tracebacks.
    change, expected = LEGACY_EDITS[case]
    folder = shutil.copytree(saved[0], tmp_path / "old")
    meta = _legacy(folder)
    if change.get("params"):
        key, value = change.pop("params").split("=")
        meta["params"][key] = int(value)
    meta.update(change)
    (folder / "model.json").write_text(json.dumps(meta))
    code, err = _export(folder, tmp_path, capsys)
    assert code == 2 and err.count("\n") == 1 and expected in err, err


def test_a_damaged_file_is_one_line_naming_it(saved, tmp_path, capsys):
    folder = shutil.copytree(saved[0], tmp_path / "damaged")
    weights, meta = folder / "model.safetensors", folder / "model.json"
    whole = weights.read_bytes()
    weights.write_bytes(whole[: len(whole) // 2])  # SafetensorError's traceback
    code, err = _export(folder, tmp_path, capsys)
    assert code == 2 and err.count("\n") == 1 and f"{weights}: damaged, not a readable safetensors file" in err, err
    weights.write_bytes(whole)
    text = meta.read_text()
    meta.write_text(text[: len(text) // 2])  # JSONDecodeError's traceback
    code, err = _export(folder, tmp_path, capsys)
    assert code == 2 and err.count("\n") == 1 and f"{meta}: damaged, not valid JSON" in err, err


def test_saved_files_get_the_mode_an_ordinary_file_gets(two_trials, tmp_path):
    # model.safetensors was 0600 whatever the umask (safetensors writes through a private temporary file).
    old = os.umask(0o027)
    try:
        out, _ = retrain(two_trials["study"], 0, "train", tmp_path / "model", "cpu", remember=False)
    finally:
        os.umask(old)
    modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in (out, out / "model.safetensors", out / "model.json")}
    assert modes == {"model": 0o750, "model.safetensors": 0o640, "model.json": 0o640}


def test_retrain_refuses_an_out_folder_that_holds_other_files(two_trials, tmp_path, capsys):
    # The model folder is replaced whole, so a folder with files of the user's own is never taken for one.
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["retrain", *two_trials["common"], "--trial", "0", "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{out}: holds files that are not a model's (notes.txt)" in err, err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"] and _leftovers(tmp_path) == []


@pytest.mark.parametrize("full_at", ["model.safetensors", "model.json"])
def test_a_full_disk_during_retrain_is_one_line_and_keeps_the_old_model(two_trials, saved, tmp_path, monkeypatch,
                                                                        capsys, full_at):
    # It was a 29-line SafetensorError traceback and exit 1 (safetensors wraps the OSError in its own error).
    def full_weights(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    def full_text(self, *args, **kwargs):
        if f".{full_at}." in self.name:  # the temporary file write_atomic renames into place
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return write_text(self, *args, **kwargs)

    write_text = pathlib.Path.write_text
    out = shutil.copytree(saved[0], tmp_path / "model")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    if full_at == "model.safetensors":
        monkeypatch.setattr(search.after.model_files, "save_file", full_weights)
    else:
        monkeypatch.setattr(pathlib.Path, "write_text", full_text)
    assert main(["retrain", *two_trials["common"], "--trial", "1", "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.splitlines()[-1].startswith(f"error: {tmp_path}: no space left"), err
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before and _leftovers(tmp_path) == []
