"""After the search: retrain a trial's configuration, save it safely, write the submission."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from dataclasses import replace
from pathlib import Path

import optuna
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from gic_models import create_model
from search.config import PROJECT_ROOT
from search.data import load_dataset
from search.data.loader import LAYOUTS, detect_layout
from search.data.prepare import DataOptions
from search.device import describe, resolve_device, setup
from search.errors import UserError
from search.metrics import TASK_METRICS
from search.run import load_data, log, to_device
from search.train import evaluate, fit, predict_scores
from spaces import get_space

__all__ = ["choose_trial", "export", "load_model", "retrain", "write_atomic"]


def choose_trial(study: optuna.Study, number: int | None) -> optuna.trial.FrozenTrial:
    if number is None:
        try:
            return study.best_trial
        except ValueError:
            raise UserError(f"study {study.study_name!r} has no completed trial yet") from None
    trials = {t.number: t for t in study.trials}
    if number not in trials:
        raise UserError(f"study {study.study_name!r} has no trial {number} (it has 0..{len(trials) - 1})")
    return trials[number]


def write_atomic(path: Path, write) -> None:
    """Calls ``write(tmp_path)`` and renames the result into place: an interrupted or failed write
    never leaves a half file where a good one was."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def retrain(
    study: optuna.Study, number: int | None, train_on: str, out: Path | None, device_name: str = "auto"
) -> tuple[Path, dict]:
    trial = choose_trial(study, number)
    attrs = study.user_attrs
    space = get_space(attrs["space"])
    cfg = space.suggest(optuna.trial.FixedTrial(trial.params))
    device = resolve_device(device_name)
    setup(device)
    options = DataOptions.from_json(attrs.get("data_options"))  # the search's own splits and size
    ds = load_data(Path(attrs["data"]), options)
    tensors = to_device(ds, device, train_on=train_on)
    seed = trial.user_attrs.get("seed", 0)
    torch.manual_seed(seed)
    model = create_model(cfg.model, cfg.arch, ds.num_outputs, ds.in_shape)
    shown = TASK_METRICS[ds.task]
    epochs = int(attrs["epochs"])
    log(f"retraining trial {trial.number} of {study.study_name!r} on {train_on} for {epochs} epochs "
        f"on {describe(device)}")

    def show(r) -> None:
        values = ", ".join(f"{m} {getattr(r, m):.4f}" for m in shown)
        log(f"  epoch {r.epoch:>3}/{epochs}: loss {r.train_loss:.4f}, {values}, {r.seconds:.1f}s")

    fit(model, tensors, cfg.train, epochs=epochs, seed=seed, on_epoch=show)
    metrics = {k: v for k, v in evaluate(model, tensors).items() if k != "confusion"}
    metrics["held_out"] = train_on == "train"  # on train+val the validation split was trained on
    if ds.holdout_x is not None:  # the labelled test part no trial saw, scored with val's thresholds
        part = replace(tensors, val_x=torch.from_numpy(ds.holdout_x).to(device),
                       val_y=torch.from_numpy(ds.holdout_y).to(device))
        held = evaluate(model, part, thresholds=metrics.get("thresholds"))
        metrics["holdout"] = {k: v for k, v in held.items() if k not in ("confusion", "thresholds")}
    out = out or PROJECT_ROOT / "runs" / study.study_name / f"trial-{trial.number}"
    mean, std = ds.stats()
    meta = {
        "study": study.study_name, "trial": trial.number, "space": attrs["space"], "model": cfg.model,
        "params": trial.params, "num_classes": ds.num_outputs, "in_shape": list(ds.in_shape), "task": ds.task,
        "thresholds": metrics.get("thresholds"), "data_options": options.to_json(),
        "class_names": ds.class_names, "mean": mean.tolist(), "std": std.tolist(),
        "data": attrs["data"], "train_on": train_on, "epochs": epochs, "seed": seed, "metrics": metrics,
    }
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    write_atomic(out / "model.safetensors", lambda p: save_file(state, str(p)))
    write_atomic(out / "model.json", lambda p: p.write_text(json.dumps(meta, indent=1)))
    study.set_user_attr("model_dir", str(out.resolve()))
    return out, metrics


def load_model(model_dir: Path, device: torch.device) -> tuple[nn.Module, dict]:
    """Rebuilds the network from model.json and loads its weights; nothing is unpickled."""
    meta_path, weights = model_dir / "model.json", model_dir / "model.safetensors"
    for path in (meta_path, weights):
        if not path.is_file():
            raise UserError(f"{path}: missing; run `retrain` first")
    meta = json.loads(meta_path.read_text())
    cfg = get_space(meta["space"]).suggest(optuna.trial.FixedTrial(meta["params"]))
    model = create_model(cfg.model, cfg.arch, meta["num_classes"], tuple(meta["in_shape"]))
    model.load_state_dict(load_file(str(weights)))
    return model.to(device).eval(), meta


def export(model_dir: Path, out: Path, data_dir: Path | None = None, device_name: str = "auto") -> Path:
    device = resolve_device(device_name)
    model, meta = load_model(model_dir, device)
    root = Path(data_dir or meta["data"])
    options = DataOptions.from_json(meta.get("data_options"))
    if not root.is_dir():
        raise UserError(f"{root}: dataset folder does not exist")
    layout = detect_layout(root) if options.layout == "auto" else options.layout
    ds = load_dataset(root, layout, image_size=options.image_size)
    if ds.test_x is None:
        raise UserError(f"{root / LAYOUTS[layout].TEST_SPLIT}: missing; nothing to predict")
    if list(ds.in_shape) != meta["in_shape"]:
        raise UserError(f"{root}: images are {ds.in_shape} but the model was trained on {meta['in_shape']}")
    mean = torch.tensor(meta["mean"], device=device)
    std = torch.tensor(meta["std"], device=device)
    task = meta.get("task", "multiclass")
    probs = predict_scores(model, torch.from_numpy(ds.test_x).to(device), mean, std, task)
    names = meta["class_names"]
    if task == "multilabel":  # Image, then one 0/1 column per label in label order
        cuts = torch.tensor(meta.get("thresholds") or [0.5] * len(names), device=device)
        header = ["Image", *names]
        rows = [[image, *row] for image, row in zip(ds.test_names, (probs >= cuts).int().tolist(), strict=True)]
    else:
        labels = (probs > 0.5).long().tolist() if task == "binary" else probs.argmax(1).tolist()
        header = ["Image", "Class"]
        rows = [[image, names[c]] for image, c in zip(ds.test_names, labels, strict=True)]

    def write(path: Path) -> None:
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)

    write_atomic(out, write)
    return out
