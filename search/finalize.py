"""After the search: retrain a trial's configuration, save it safely, write the submission."""

from __future__ import annotations

import csv
import statistics
from dataclasses import replace
from pathlib import Path

import optuna
import torch
from torch import nn

from search.artifacts import attach
from search.config import PROJECT_ROOT
from search.console import log
from search.data.loader import LAYOUTS, detect_layout, load_test_split
from search.data.prepare import DataOptions
from search.device import describe, resolve_device
from search.ensemble import Member, member_dirs, needs_own_cuts, own_cuts, predict, write_ensemble
from search.errors import UserError
from search.metrics import TASK_METRICS
from search.model_files import META, is_model_entry, load_model, read_meta, save_model
from search.rebuild import RebuiltTrial, load_data, rebuild_trial
from search.saving import refuse_foreign, replace_folder, settle_folder, write_atomic
from search.train import Diverged, Tensors, evaluate, fit

__all__ = [
    "ensemble_top", "export", "load_members", "load_model", "model_meta", "retrain", "top_trials", "trial_dir",
    "write_atomic",
]


def retrain(
    study: optuna.Study, number: int | None, train_on: str, out: Path | None, device_name: str = "auto",
    seeds: int = 1, storage_url: str | None = None, remember: bool = True, epochs: int | None = None,
    seconds: float | None = None,
) -> tuple[Path, dict]:
    """Retrains a trial's configuration ``seeds`` times (the trial's own seed, then the next ones),
    for the study's epochs, or ``epochs``, or as many epochs as fit in ``seconds`` (``fitted_epochs``).

    One seed writes ``out/model.*``; several write ``out/seed-S/model.*`` and an ``ensemble.json``
    listing them, with the mean and spread of the validation metrics, so `export` can use the
    folder as one model averaged over its seeds. The folder is replaced as a whole once every seed
    is trained: a stop at any moment leaves the model that was there before. With ``storage_url``
    the checkpoints are also attached to the trial as Optuna artifacts.
    """
    def refuse_early(trial: optuna.trial.FrozenTrial) -> None:  # before minutes of training, not after
        refuse_foreign(out or trial_dir(PROJECT_ROOT / "runs" / study.study_name, trial.number, train_on),
                       owned=is_model_entry)

    again = rebuild_trial(study, number, device_name, check=refuse_early)
    trial, ds = again.trial, again.data
    out = out or trial_dir(PROJECT_ROOT / "runs" / study.study_name, trial.number, train_on)
    tensors = again.tensors(train_on)
    if seconds is not None:
        epochs = fitted_epochs(trial, seconds / seeds, len(tensors.train_x) / len(ds.train_x))
    epochs = epochs or again.epochs
    mean, std = ds.stats()
    shown = TASK_METRICS[ds.task]
    runs = []
    with replace_folder(out, owned=is_model_entry) as staging:
        for seed in range(again.seed, again.seed + seeds):
            model = again.model(seed)
            log(f"retraining trial {trial.number} of {study.study_name!r} on {train_on} for {epochs} epochs "
                f"(seed {seed}) on {describe(again.device)}")
            metrics = _fit_and_score(model, tensors, again, epochs, seed, train_on)
            meta = {
                "study": study.study_name, "trial": trial.number, "space": again.settings.space,
                "model": again.config.model, "params": trial.params, "num_classes": ds.num_outputs,
                "in_shape": list(ds.in_shape), "task": ds.task, "thresholds": metrics.get("thresholds"),
                "data_options": again.options.to_json(), "class_names": ds.class_names, "mean": mean.tolist(),
                "std": std.tolist(), "data": str(again.settings.data), "train_on": train_on, "epochs": epochs,
                "seed": seed, "metrics": metrics,
            }
            name = "." if seeds == 1 else f"seed-{seed}"
            save_model(model, meta, staging / name)
            runs.append((name, metrics))
        metrics = runs[0][1] if seeds == 1 else _spread([m for _, m in runs], shown)
        if seeds > 1:
            write_ensemble(staging, [staging / n for n, _ in runs], {"trial": trial.number, "metrics": metrics})
    folders = [(out / n).resolve() for n, _ in runs]
    if storage_url is not None:  # attached once they are in place: a stopped retrain attaches nothing
        for folder in folders:
            for name in ("model.safetensors", "model.json"):
                attach(study, trial.number, folder / name, storage_url)
    if remember:
        study.set_user_attr("model_dir", str(out.resolve()))
    return out, metrics


def fitted_epochs(trial: optuna.trial.FrozenTrial, seconds: float, scale: float = 1.0) -> int:
    """How many epochs of ``trial``'s configuration fit in ``seconds``, at the pace its own trial ran
    (wall time over epochs: building, evaluating and the probe included, so it errs on the short side).
    ``scale``: the retrain's training images over the trial's (train+val trains on more)."""
    trained = trial.user_attrs.get("epochs")
    if not trained or trial.duration is None:
        raise UserError(f"trial {trial.number} has no measured epochs to pace a timed retrain; give --epochs")
    per_epoch = trial.duration.total_seconds() / trained * scale
    return max(1, int(seconds // per_epoch))


def _fit_and_score(model: nn.Module, tensors: Tensors, again: RebuiltTrial, epochs: int, seed: int,
                   train_on: str) -> dict:
    """Trains one seed, logging each epoch, and returns its validation (and held-out) metrics. It
    compiles with the study's torch.compile mode, so the retrain runs the kernels its trial ran."""
    cfg, ds = again.config, again.data
    shown = TASK_METRICS[ds.task]

    def show(r) -> None:
        values = ", ".join(f"{m} {getattr(r, m):.4f}" for m in shown)
        log(f"  epoch {r.epoch:>3}/{epochs}: loss {r.train_loss:.4f}, {values}, {r.seconds:.1f}s")

    try:
        fit(model, tensors, cfg.train, epochs=epochs, seed=seed, on_epoch=show, compile=again.settings.compile)
        metrics = {k: v for k, v in evaluate(model, tensors, tta=cfg.train.tta).items() if k != "confusion"}
    except Diverged as e:  # a rate at the edge of stability can diverge on another device or seed
        raise UserError(f"retraining {again.what} (seed {seed}) diverged: {e}; that seed's model "
                        f"is not saved") from None
    metrics["held_out"] = train_on == "train"  # on train+val the validation split was trained on
    if ds.holdout_x is not None:  # the labelled test part no trial saw, scored with val's thresholds
        device = tensors.train_x.device
        part = replace(tensors, val_x=torch.from_numpy(ds.holdout_x).to(device),
                       val_y=torch.from_numpy(ds.holdout_y).to(device))
        held = evaluate(model, part, thresholds=metrics.get("thresholds"), tta=cfg.train.tta)
        metrics["holdout"] = {k: v for k, v in held.items() if k not in ("confusion", "thresholds")}
    return metrics


def trial_dir(runs: Path, number: int, train_on: str) -> Path:
    """A trial's own model folder under ``runs`` (runs/STUDY): one per training split, so a retrain on
    train+val and an ensemble member retrained on train never overwrite each other."""
    return runs / (f"trial-{number}" if train_on == "train" else f"trial-{number}-trainval")


def _saved_model(folder: Path, train_on: str) -> Path | None:
    """The model in ``folder`` trained on ``train_on`` with the trial's own seed: the folder itself,
    or after `retrain --seeds N` its first seed's folder (the very model a one-seed retrain makes)."""
    settle_folder(folder)
    first = member_dirs(folder)[0]
    if (first / META).is_file() and read_meta(first / META)["train_on"] == train_on:
        return first
    return None


def _spread(runs: list[dict], names: tuple[str, ...] = ("accuracy", "macro_f1")) -> dict:
    """Mean and sample standard deviation of each metric over seeds: how much of a trial's score
    was its configuration and how much the luck of its initial weights."""
    out: dict = {"seeds": len(runs), "held_out": runs[0]["held_out"]}
    for key in (*names, "val_loss"):
        values = [r[key] for r in runs]
        out[key] = statistics.fmean(values)
        out[f"{key}_std"] = statistics.stdev(values)
        out[f"{key}_runs"] = values
    return out


def model_meta(model_dir: Path) -> dict:
    """The model.json of the model a folder stands for (an ensemble's first member's)."""
    settle_folder(model_dir)
    return read_meta(member_dirs(model_dir)[0] / META)


def load_members(model_dir: Path, device: torch.device) -> tuple[list[Member], list[dict]]:
    """The models a folder stands for (itself, or its ensemble.json's members) and their metadata."""
    members, metas = [], []
    settle_folder(model_dir)  # a retrain killed while replacing the folder: its new model, or the old
    for folder in member_dirs(model_dir):
        model, meta = load_model(folder, device)
        if metas and meta["class_names"] != metas[0]["class_names"]:
            raise UserError(f"{folder}: its classes differ from {member_dirs(model_dir)[0]}'s; cannot average them")
        mean = torch.tensor(meta["mean"], device=device)
        std = torch.tensor(meta["std"], device=device)
        members.append(Member(model, mean, std, tta=bool(meta["params"].get("tta", False))))
        metas.append(meta)
    return members, metas


def top_trials(study: optuna.Study, k: int) -> list[optuna.trial.FrozenTrial]:
    if len(study.directions) > 1:
        # Refused rather than ranked by the first objective: the costs were searched for because they
        # matter, a Pareto front has no single "top", and averaging k models multiplies the very cost
        # the front traded accuracy against. The user picks the member whose trade-off they want.
        front = ", ".join(str(t.number) for t in study.best_trials) or "none completed yet"
        raise UserError(f"study {study.study_name!r} has several objectives, so no top {k} to average: "
                        f"retrain a Pareto member with `retrain --trial N` (front: {front}), then export it")
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    if len(done) < k:
        raise UserError(f"study {study.study_name!r} has {len(done)} completed trials; --ensemble {k} needs {k}")
    sign = -1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else 1
    return sorted(done, key=lambda t: (sign * t.value, t.number))[:k]


def ensemble_top(
    study: optuna.Study, k: int, train_on: str = "train", device_name: str = "auto",
    storage_url: str | None = None, runs: Path | None = None,
) -> Path:
    """An ensemble folder of the top ``k`` trials. A trial with a saved model trained on the same
    split (runs/STUDY/trial-N) reuses it; the others are retrained now, once, and kept for next time."""
    runs = runs or PROJECT_ROOT / "runs" / study.study_name
    folders = []
    for trial in top_trials(study, k):
        folder = trial_dir(runs, trial.number, train_on)
        saved = _saved_model(folder, train_on)
        if saved is None:
            retrain(study, trial.number, train_on, folder, device_name, storage_url=storage_url, remember=False)
        folders.append(saved or folder)
    out = runs / (f"top-{k}" if train_on == "train" else f"top-{k}-trainval")
    write_ensemble(out, folders, {"trials": [read_meta(f / META)["trial"] for f in folders]})
    return out


def export(
    model_dir: Path, out: Path, data_dir: Path | None = None, device_name: str = "auto", tta: bool = False,
    study: optuna.Study | None = None, storage_url: str | None = None,
) -> Path:
    """Writes the submission from a model or ensemble folder; with ``study`` and ``storage_url`` it is
    also attached to every trial that contributed to it."""
    device = resolve_device(device_name)
    members, metas = load_members(model_dir, device)
    meta = metas[0]
    root = Path(data_dir or meta["data"])
    options = DataOptions.from_json(meta.get("data_options"))
    if not root.is_dir():
        raise UserError(f"{root}: dataset folder does not exist")
    layout = detect_layout(root) if options.layout == "auto" else options.layout
    # Only the test images: the model carries its own statistics, so the other splits are not read.
    test_names, test_x = load_test_split(root, layout, image_size=options.image_size)
    if test_x is None:
        raise UserError(f"{root / LAYOUTS[layout].TEST_SPLIT}: missing; nothing to predict")
    for m in metas:
        if list(test_x.shape[1:]) != m["in_shape"]:
            raise UserError(f"{root}: images are {test_x.shape[1:]} but the model was trained on {m['in_shape']}")
    task = meta.get("task", "multiclass")
    probs = predict(members, torch.from_numpy(test_x).to(device), task=task, tta=tta)
    names = meta["class_names"]
    if task == "multilabel":  # Image, then one 0/1 column per label in label order
        cuts = _multilabel_cuts(members, meta, root, layout, options, tta, device)
        header = ["Image", *names]
        rows = [[image, *row] for image, row in zip(test_names, (probs >= cuts).int().tolist(), strict=True)]
    else:
        labels = (probs > 0.5).long().tolist() if task == "binary" else probs.argmax(1).tolist()
        header = ["Image", "Class"]
        rows = [[image, names[c]] for image, c in zip(test_names, labels, strict=True)]

    def write(path: Path) -> None:
        with open(path, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")  # csv's default is CRLF; sample submissions and tools use LF
            w.writerow(header)
            w.writerows(rows)

    write_atomic(out, write)
    if study is not None and storage_url is not None:
        for number in dict.fromkeys(m["trial"] for m in metas if m.get("study") == study.study_name):
            attach(study, number, out, storage_url)
    return out


def _multilabel_cuts(members: list[Member], meta: dict, root: Path, layout: str, options: DataOptions, tta: bool,
                     device: torch.device) -> torch.Tensor:
    """The per-label cuts for the probabilities export writes: a single model's own, as retrain saved
    them; for an ensemble or TTA, cuts tuned now on the validation split (made again exactly as the
    search made it) for that same average, since the saved ones fit a single model's answers only."""
    if not needs_own_cuts(members, tta):
        return torch.tensor(meta.get("thresholds") or [0.5] * len(meta["class_names"]), device=device)
    val = load_data(root, replace(options, layout=layout), quiet=True)
    cuts = own_cuts(members, torch.from_numpy(val.val_x).to(device), torch.from_numpy(val.val_y).to(device), tta)
    what = f"{len(members)} models" if len(members) > 1 else "one model"
    log(f"label cuts tuned on {len(val.val_x)} validation images for the average of {what}"
        f"{' with TTA' if tta else ''}: {', '.join(f'{c:.3f}' for c in cuts.tolist())}")
    return cuts
