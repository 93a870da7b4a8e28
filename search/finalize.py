"""After the search: retrain a trial's configuration, save it safely, write the submission."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from pathlib import Path

import optuna
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from gic_models import create_model
from search.config import PROJECT_ROOT
from search.data import load_dataset
from search.device import describe, resolve_device, setup
from search.errors import UserError
from search.run import load_data, log, to_device
from search.train import evaluate, fit, predict_proba
from spaces import get_space

__all__ = ["choose_trial", "export", "load_model", "retrain", "write_atomic"]


def choose_trial(study: optuna.Study, number: int | None) -> optuna.trial.FrozenTrial:
    if number is None:
        if len(study.directions) > 1:
            raise UserError(f"study {study.study_name!r} is multi-objective: choose a trial of its Pareto front "
                            f"(`best` lists them) with --trial N")
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
    ds = load_data(Path(attrs["data"]))
    tensors = to_device(ds, device, train_on=train_on)
    seed = trial.user_attrs.get("seed", 0)
    torch.manual_seed(seed)
    model = create_model(cfg.model, cfg.arch, ds.num_classes, ds.in_shape)
    epochs = int(attrs["epochs"])
    log(f"retraining trial {trial.number} of {study.study_name!r} on {train_on} for {epochs} epochs "
        f"on {describe(device)}")

    def show(r) -> None:
        log(f"  epoch {r.epoch:>3}/{epochs}: loss {r.train_loss:.4f}, accuracy {r.accuracy:.4f}, "
            f"macro-F1 {r.macro_f1:.4f}, {r.seconds:.1f}s")

    fit(model, tensors, cfg.train, epochs=epochs, seed=seed, on_epoch=show)
    metrics = {k: v for k, v in evaluate(model, tensors).items() if k != "confusion"}
    metrics["held_out"] = train_on == "train"  # on train+val the validation split was trained on
    out = out or PROJECT_ROOT / "runs" / study.study_name / f"trial-{trial.number}"
    mean, std = ds.stats()
    meta = {
        "study": study.study_name, "trial": trial.number, "space": attrs["space"], "model": cfg.model,
        "params": trial.params, "num_classes": ds.num_classes, "in_shape": list(ds.in_shape),
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
    ds = load_dataset(root)
    if ds.test_x is None:
        raise UserError(f"{root / 'test.csv'}: missing; nothing to predict")
    if list(ds.in_shape) != meta["in_shape"]:
        raise UserError(f"{root}: images are {ds.in_shape} but the model was trained on {meta['in_shape']}")
    mean = torch.tensor(meta["mean"], device=device)
    std = torch.tensor(meta["std"], device=device)
    probs = predict_proba(model, torch.from_numpy(ds.test_x).to(device), mean, std)
    labels = probs.argmax(1).tolist()
    names = meta["class_names"]

    def write(path: Path) -> None:
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["Image", "Class"])
            w.writerows((image, names[c]) for image, c in zip(ds.test_names, labels, strict=True))

    write_atomic(out, write)
    return out
