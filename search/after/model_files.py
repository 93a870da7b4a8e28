"""A model folder's two files: model.safetensors (the weights) and model.json (what network they fill,
and how its inputs are scaled and its outputs named).

Each file vouches for the other: model.json records the weights' sha256, and the weights file keeps
its own copy of the model.json fields the network is built from. So a folder whose files come from
two saves, a damaged file, or an edited field is one line naming the file and the field, never a
traceback from torch or a submission that is silently wrong. Nothing is unpickled.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file
from torch import nn

from gic_common.errors import UserError
from gic_models import create_model
from search.after.saving import write_atomic
from search.data.dataset import TASKS
from spaces import get_space, rebuild

__all__ = ["META", "WEIGHTS", "is_model_entry", "load_model", "read_meta", "save_model"]

WEIGHTS, META = "model.safetensors", "model.json"
# The fields the network, its input and its output depend on: the weights file keeps a copy of them.
BUILT_FROM = ("space", "model", "params", "num_classes", "in_shape", "task", "class_names", "mean", "std")
# The fields the commands read from model.json with no default.
REQUIRED = ("space", "params", "num_classes", "in_shape", "class_names", "mean", "std", "data", "train_on", "trial")
# What a model folder may hold: its files, an ensemble listing and seed folders (retrain --seeds), and
# the temporary files an older version's killed retrain left there.
_ENTRY = re.compile(r"model\.json|model\.safetensors|ensemble\.json|seed-\d+|\.(model\.json|model\.safetensors|"
                    r"ensemble\.json)\..+")


def is_model_entry(name: str) -> bool:
    return _ENTRY.fullmatch(name) is not None


def save_model(model: nn.Module, meta: dict, folder: Path) -> None:
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    built = json.dumps({k: meta.get(k) for k in BUILT_FROM})
    weights = folder / WEIGHTS
    write_atomic(weights, lambda p: _save_weights(state, p, {META: built}))
    meta = {**meta, "weights_sha256": _sha256(weights)}
    write_atomic(folder / META, lambda p: p.write_text(json.dumps(meta, indent=1)))


def _save_weights(state: dict, path: Path, metadata: dict) -> None:
    try:
        save_file(state, str(path), metadata=metadata)
    except SafetensorError as e:  # it wraps the OS's error (a full disk) in its own: unwrapped, it is one line
        code = re.search(r"\(os error (\d+)\)", str(e))
        if code is None:
            raise
        raise OSError(int(code[1]), os.strerror(int(code[1]))) from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_meta(path: Path) -> dict:
    """model.json, checked to be whole and to hold every field the commands read."""
    if not path.is_file():
        raise UserError(f"{path}: missing; run `retrain` first")
    try:
        meta = json.loads(path.read_text())
    except ValueError as e:  # cut short, or not text at all
        raise UserError(f"{path}: damaged, not valid JSON ({e}); retrain the model") from None
    if not isinstance(meta, dict):
        raise UserError(f"{path}: not a model description (a JSON object); retrain the model")
    absent = [k for k in REQUIRED if k not in meta]
    if absent:
        raise UserError(f"{path}: has no {absent[0]!r} field; it was edited or cut short; retrain the model")
    return meta


def load_model(folder: Path, device: torch.device) -> tuple[nn.Module, dict]:
    """Rebuilds the network model.json describes and fills it with the weights, once both files are
    checked to belong together and every field to make sense."""
    meta_path, weights = folder / META, folder / WEIGHTS
    meta = read_meta(meta_path)
    if not weights.is_file():
        raise UserError(f"{weights}: missing; run `retrain` first")
    try:
        with safe_open(str(weights), framework="pt") as f:
            saved = (f.metadata() or {}).get(META)
            names = f.keys()  # a safe_open handle is not iterable itself
            state = {k: f.get_tensor(k) for k in names}
        saved = None if saved is None else json.loads(saved)
    except (SafetensorError, ValueError) as e:
        raise UserError(f"{weights}: damaged, not a readable safetensors file ({e}); retrain the model") from None
    recorded = meta.get("weights_sha256")
    if recorded is not None and recorded != _sha256(weights):
        raise UserError(f"{weights}: not the weights {META} was saved with (their sha256 differs from the one "
                        f"recorded): the folder mixes two saves, or the file changed; retrain the model")
    if isinstance(saved, dict):  # folders saved before the copy was kept are checked field by field only
        _same_as_saved(meta, saved, meta_path)
    _check_fields(meta, meta_path)
    config = rebuild(get_space(meta["space"]), meta["params"], f"the model in {folder}")
    model = create_model(config.model, config.arch, meta["num_classes"], tuple(meta["in_shape"]))
    try:
        model.load_state_dict(state)
    except RuntimeError as e:  # torch's message lists every tensor; its last line names one
        raise UserError(f"{meta_path}: params, num_classes or in_shape do not fit {WEIGHTS} "
                        f"({str(e).strip().splitlines()[-1].strip()}); retrain the model") from None
    return model.to(device).eval(), meta


def _short(value) -> str:
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _same_as_saved(meta: dict, saved: dict, path: Path) -> None:
    """Names the first field of model.json that differs from the weights file's own copy."""
    missing = object()
    for key in BUILT_FROM:
        mine, theirs = meta.get(key, missing), saved.get(key, missing)
        if key == "params" and isinstance(mine, dict) and isinstance(theirs, dict):
            for name in sorted(set(mine) | set(theirs)):
                if mine.get(name, missing) != theirs.get(name, missing):
                    key, mine, theirs = f"params.{name}", mine.get(name, missing), theirs.get(name, missing)
                    break
            else:
                continue
        elif mine == theirs:
            continue
        shown = ["missing" if v is missing else _short(v) for v in (mine, theirs)]
        raise UserError(f"{path}: {key} is {shown[0]} but {WEIGHTS} was saved with {shown[1]}: {META} was "
                        f"edited or comes from another save; retrain the model")


def _number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _check_fields(meta: dict, path: Path) -> None:
    """Every field used to build, feed and name the network makes sense on its own and with the others."""
    def bad(field: str, why: str) -> UserError:
        return UserError(f"{path}: {field} {why}")

    task, names, shape = meta.get("task", "multiclass"), meta["class_names"], meta["in_shape"]
    if task not in TASKS:
        raise bad("task", f"is {_short(task)}; it must be one of {', '.join(TASKS)}")
    if not isinstance(meta["params"], dict):
        raise bad("params", "must be a JSON object, the trial's parameters")
    if not (isinstance(names, list) and names and all(isinstance(n, str) for n in names)):
        raise bad("class_names", f"is {_short(names)}; it must be a list of names")
    if not (isinstance(shape, list) and len(shape) == 3 and all(isinstance(n, int) and n > 0 for n in shape)):
        raise bad("in_shape", f"is {_short(shape)}; it must be [channels, height, width]")
    outputs = 1 if task == "binary" else len(names)
    if meta["num_classes"] != outputs:
        have = "a binary model has 1 output" if task == "binary" else f"class_names has {len(names)}"
        raise bad("num_classes", f"is {_short(meta['num_classes'])} but {have}")
    for key in ("mean", "std"):
        values = meta[key]
        if not (isinstance(values, list) and len(values) == shape[0] and all(_number(v) for v in values)):
            raise bad(key, f"is {_short(values)}; it must be {shape[0]} numbers, one a channel")
    if not all(v > 0 for v in meta["std"]):  # a zero scales every image to inf or nan: one class for all
        raise bad("std", f"must be more than 0 in every channel, got {_short(meta['std'])}")
    cuts = meta.get("thresholds")
    if task == "multilabel" and cuts is not None and not (
            isinstance(cuts, list) and len(cuts) == len(names) and all(_number(c) for c in cuts)):
        raise bad("thresholds", f"is {_short(cuts)}; it must be {len(names)} numbers, one a label")
