"""Multilabel cuts for averaged probabilities: an ensemble, or a model with TTA, is cut where its own
average was tuned on validation, never at its first member's saved cuts; a plain model keeps its own.

Two members on tiny Helsinki data whose stripes are on the left half only: a small MLP trained for a
second, and a copy whose output biases are lowered, so the two answer on very different scales (and a
mirror image, which shows the stripes where the model never saw them, answers lower still).
"""

from __future__ import annotations

import copy
import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from layouts import write_helsinki
from PIL import Image
from safetensors.torch import save_file
from torch import nn

from gic_models import create_model
from search.after.ensemble import load_members, predict, write_ensemble
from search.after.export import export
from search.data import load_dataset
from search.data.options import DataOptions
from search.data.prepare import prepare
from search.shown.model_plots import load_view
from search.trial.inputs import to_device
from search.trial.metrics import tune_thresholds
from search.trial.train import evaluate, fit
from spaces import get_space, rebuild

pytestmark = pytest.mark.slow

CPU = torch.device("cpu")
OPTIONS = DataOptions(val_fraction=0.3)
PARAMS = {
    "n_layers": 1, "units_l0": 32, "dropout_l0": 0.0, "activation": "relu", "norm": False,
    "optimizer": "adam", "lr": 3e-3, "weight_decay": 1e-6,
    "batch_size": 32, "schedule": "constant", "label_smoothing": 0.0,
    "mix": "none", "flip": False, "translate": 0, "cutout": 0, "jitter": 0.0, "ema": False, "tta": False,
}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lopsided") / "helsinki"
    write_helsinki(root, train=80, test=16)
    for path in root.rglob("*.jpg"):  # the right half flat: a mirror image hides every stripe from the model
        pixels = np.array(Image.open(path).convert("RGB"))
        pixels[:, pixels.shape[1] // 2 :] = 40
        Image.fromarray(pixels).save(path)
    return root


def _dataset(root: Path):
    return prepare(load_dataset(root, "auto"), OPTIONS)


def _save(folder: Path, model: nn.Module, ds, root: Path, thresholds: list[float]) -> Path:
    """A model folder as retrain writes it, with the cuts tuned on this model's own probabilities."""
    mean, std = ds.stats()
    meta = {"study": "t", "trial": 0, "space": "mlp", "model": "mlp", "params": PARAMS,
            "num_classes": ds.num_outputs, "in_shape": list(ds.in_shape), "task": "multilabel",
            "thresholds": thresholds, "data_options": OPTIONS.to_json(), "class_names": ds.class_names,
            "mean": mean.tolist(), "std": std.tolist(), "data": str(root), "train_on": "train", "epochs": 20,
            "seed": 0, "metrics": {}}
    folder.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(folder / "model.safetensors"))
    (folder / "model.json").write_text(json.dumps(meta))
    return folder


@pytest.fixture(scope="module")
def models(data, tmp_path_factory) -> dict[str, Path]:
    ds = _dataset(data)
    tensors = to_device(ds, CPU)
    cfg = rebuild(get_space("mlp"), PARAMS, "the test's MLP")
    torch.manual_seed(0)
    sure = create_model(cfg.model, cfg.arch, ds.num_outputs, ds.in_shape)
    fit(sure, tensors, cfg.train, epochs=3, seed=0)
    timid = copy.deepcopy(sure)
    with torch.no_grad():
        timid[-1].bias -= 4  # the same ranking, probabilities far lower: cuts tuned for it are far lower
    root = tmp_path_factory.mktemp("models")
    sure_dir = _save(root / "sure", sure.eval(), ds, data, evaluate(sure, tensors)["thresholds"])
    timid_dir = _save(root / "timid", timid.eval(), ds, data, evaluate(timid, tensors)["thresholds"])
    write_ensemble(root / "pair", [sure_dir, timid_dir], {})
    return {"sure": sure_dir, "pair": root / "pair"}


def _exported(folder: Path, out: Path, tta: bool) -> list[list[int]]:
    export(folder, out, device_name="cpu", tta=tta)
    return [[int(v) for v in row[1:]] for row in list(csv.reader(out.open()))[1:]]


def _cut(folder: Path, ds, tta: bool) -> tuple[list[list[int]], list[list[int]]]:
    """Test labels at cuts tuned on this combination's validation probabilities, and at the first
    member's saved cuts."""
    members, metas = load_members(folder, CPU)
    val = predict(members, torch.from_numpy(ds.val_x), tta=tta, task="multilabel")
    test = predict(members, torch.from_numpy(ds.test_x), tta=tta, task="multilabel")
    own = tune_thresholds(val, torch.from_numpy(ds.val_y))
    saved = torch.tensor(metas[0]["thresholds"])
    return (test >= own).int().tolist(), (test >= saved).int().tolist()


@pytest.mark.parametrize("tta", [False, True])
def test_an_ensemble_is_cut_where_its_average_was_tuned(data, models, tmp_path, tta):
    own, first = _cut(models["pair"], _dataset(data), tta)
    assert own != first  # the first member's cuts would give other labels: the test can tell
    assert _exported(models["pair"], tmp_path / "sub.csv", tta) == own


def test_tta_on_one_model_is_cut_where_the_mirrored_average_was_tuned(data, models, tmp_path):
    own, saved = _cut(models["sure"], _dataset(data), tta=True)
    assert own != saved
    assert _exported(models["sure"], tmp_path / "sub.csv", tta=True) == own


def test_one_model_without_tta_keeps_its_saved_cuts(data, models, tmp_path):
    folder = tmp_path / "odd"
    shutil.copytree(models["sure"], folder)
    meta = json.loads((folder / "model.json").read_text())
    meta["thresholds"] = [0.01, 0.99, 0.01, 0.99]  # any cuts at all: they are used as saved, not tuned again
    (folder / "model.json").write_text(json.dumps(meta))
    own, saved = _cut(folder, _dataset(data), tta=False)
    assert own != saved
    assert _exported(folder, tmp_path / "sub.csv", tta=False) == saved


def test_the_report_judges_an_ensemble_at_its_own_cuts(data, models):
    ds = _dataset(data)
    members, _ = load_members(models["pair"], CPU)
    val = predict(members, torch.from_numpy(ds.val_x), task="multilabel")
    own = tune_thresholds(val, torch.from_numpy(ds.val_y))
    assert (load_view(models["pair"], CPU).pred == (val >= own).long().numpy()).all()
