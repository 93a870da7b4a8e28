"""`retrain`: a trial's configuration trained again (once, or over several seeds) and saved as a
model folder, replaced whole so that a stop at any moment leaves the old model or the new one."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import optuna
import torch
from torch import nn

from gic_common.errors import UserError
from gic_common.knobs import EVAL_COST, FINAL_RUN_EVALS
from search.after.ensemble import write_ensemble
from search.after.model_files import is_model_entry, save_model
from search.after.rebuild import RebuiltTrial, rebuild_trial
from search.after.saving import refuse_foreign, replace_folder
from search.artifacts import attach
from search.console import log
from search.places import runs_dir
from search.trial.choices import TASK_METRICS
from search.trial.device import describe
from search.trial.train import DeviceDataset, Diverged, continued_hold, evaluate, fit

__all__ = ["epoch_costs", "epochs_in", "eval_share", "evaluate_every", "fitted_epochs", "retrain", "trial_dir"]


def retrain(
    study: optuna.Study, number: int | None, train_on: str, out: Path | None, device_name: str = "auto",
    seeds: int = 1, storage_url: str | None = None, remember: bool = True, epochs: int | None = None,
    seconds: float | None = None, init_state: dict | None = None, note: Callable[[], str] | None = None,
    deadline: float | None = None, score_trained: bool = True,
) -> tuple[Path, dict]:
    """Retrains a trial's configuration ``seeds`` times (the trial's own seed, then the next ones),
    for the study's epochs, or ``epochs``, or as many epochs as fit in ``seconds`` (``fitted_epochs``).

    One seed writes ``out/model.*``; several write ``out/seed-S/model.*`` and an ``ensemble.json``
    listing them, with the mean and spread of the validation metrics, so `export` can use the
    folder as one model averaged over its seeds. The folder is replaced as a whole once every seed
    is trained: a stop at any moment leaves the model that was there before. With ``storage_url``
    the checkpoints are also attached to the trial as Optuna artifacts.

    ``init_state``: weights to continue from instead of the seed's initial ones (the trial's own, as
    its search left them: `run --time` gives its winner the long run without repeating the epochs
    the search already paid for, unless its ``FRESH_FROM`` knob is set). A trial
    that held its schedule's peak (user attributes ``held_at`` and ``held_epochs``,
    search/trial/objective.py) gives its weights from there (unless ``epochs`` is 0: then its
    weights as it ended are the model), and the run brings the rate down from that peak with no
    second warm-up: the rest of one schedule. With any other weights the schedule starts again over
    ``epochs``.
    ``note``: text added to every epoch's line (the whole job's time left). ``deadline``: the monotonic
    time training must end by: the schedule then follows the clock to it (``_fit_and_score``).
    ``score_trained``: False leaves a run on train+val unscored (its metrics name no score): scoring the
    images it trained on says nothing, and under the user's deadline its seconds are training's.
    """
    home = runs_dir(study.study_name)

    def refuse_early(trial: optuna.trial.FrozenTrial) -> None:  # before minutes of training, not after
        refuse_foreign(out or trial_dir(home, trial.number, train_on), owned=is_model_entry)

    again = rebuild_trial(study, number, device_name, check=refuse_early)
    trial, ds = again.trial, again.data
    out = out or trial_dir(home, trial.number, train_on)
    tensors = again.tensors(train_on)
    if seconds is not None:
        epochs = fitted_epochs(trial, seconds / seeds, len(tensors.train_x) / len(ds.train_x),
                               eval_share(len(ds.train_x), len(ds.val_x), again.config.train.tta),
                               end_passes=None if train_on == "train" else (2 if score_trained else 0))
    if epochs is None:
        epochs = again.epochs
    if epochs == 0 and init_state is None:
        raise UserError("0 epochs trains nothing: give at least 1")
    mean, std = ds.stats()
    shown = TASK_METRICS[ds.task]
    runs = []
    with replace_folder(out, owned=is_model_entry) as staging:
        for seed in range(again.seed, again.seed + seeds):
            model = again.model(seed)
            before, start_at = 0, 0.0
            if init_state is not None:
                model.load_state_dict(init_state)
                held = "held_at" in trial.user_attrs and epochs > 0  # the weights at its peak, not at its end
                before = int(trial.user_attrs.get("held_epochs" if held else "epochs", 0))
                start_at = float(trial.user_attrs["held_at"]) if held else 0.0
            hold = continued_hold(start_at, before, epochs)
            since = f", continuing from its {before} search epoch{'s' if before > 1 else ''}" if before else ""
            kept = f" for about {round(hold * epochs)} epochs" if round(hold * epochs) else ""
            log(f"retraining trial {trial.number} of {study.study_name!r} on {train_on} for {epochs} epochs "
                f"(seed {seed}{since}"
                f"{f', its rate at the peak its trial held there{kept}, then coming down' if start_at else ''}) "
                f"on {describe(again.device)}")
            metrics, trained = _fit_and_score(model, tensors, again, epochs, seed, train_on, note, deadline, start_at,
                                              hold, score_trained or train_on == "train")
            meta = {
                "study": study.study_name, "trial": trial.number, "space": again.settings.space,
                "model": again.config.model, "params": trial.params, "num_classes": ds.num_outputs,
                "in_shape": list(ds.in_shape), "task": ds.task, "thresholds": metrics.get("thresholds"),
                "data_options": again.settings.data_options.to_json(), "class_names": ds.class_names,
                "mean": mean.tolist(), "std": std.tolist(), "data": str(again.settings.data), "train_on": train_on,
                "epochs": before + trained, "continued_after_epochs": before, "seed": seed, "metrics": metrics,
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


def fitted_epochs(trial: optuna.trial.FrozenTrial, seconds: float, scale: float = 1.0,
                  eval_share: float | None = None, end_passes: int | None = None) -> int:
    """``epochs_in``, at least one: what a retrain asked for by time trains."""
    return max(1, epochs_in(trial, seconds, scale, eval_share, end_passes))


def epochs_in(trial: optuna.trial.FrozenTrial, seconds: float, scale: float = 1.0,
              eval_share: float | None = None, end_passes: int | None = None) -> int:
    """How many epochs of ``trial``'s configuration fit in ``seconds`` (perhaps none), at the pace its
    own trial ran (``epoch_costs``), with the validation passes a retrain of that length makes
    (``evaluate_every``). ``scale``: the retrain's training images over the trial's (train+val trains
    on more). ``end_passes``: None for a run scored every few epochs (on train, ``evaluate_every``);
    for a run on train+val, the passes it makes at its end: 2 for a scored retrain (its last epoch's
    and its metrics'), 0 for the job's unscored final run."""
    train, scoring = epoch_costs(trial, eval_share)
    return _epochs_for(seconds, train * scale, scoring, end_passes)


def _epochs_for(seconds: float, train: float, scoring: float, end_passes: int | None = None) -> int:
    """Epochs of ``train`` seconds that fit in ``seconds`` with the validation passes of ``scoring``
    seconds that a run of that length makes (``evaluate_every``), or ``end_passes`` at its end."""
    if end_passes is not None:
        return max(0, int((seconds - end_passes * scoring) // train))
    long_run = (seconds - FINAL_RUN_EVALS * scoring) / train  # a pass every few epochs
    if long_run >= FINAL_RUN_EVALS:
        return int(long_run)
    return max(0, int(seconds // (train + scoring)))  # a pass every epoch


def evaluate_every(epochs: int, train_on: str = "train") -> int | None:
    """Epochs between a retrain's validation passes: about ``FINAL_RUN_EVALS`` passes whatever its
    length. A pass every epoch cost a long final run on a CPU a quarter of its epochs (bench/RESULTS.md).
    On train+val the validation images are trained on, so a pass shows nothing: only the last is
    scored (None)."""
    if train_on == "train+val":
        return None
    return max(1, math.ceil(epochs / FINAL_RUN_EVALS))


def epoch_costs(trial: optuna.trial.FrozenTrial, eval_share: float | None = None) -> tuple[float, float]:
    """Seconds an epoch of ``trial`` trains and seconds a validation pass takes: its median training
    and evaluation seconds an epoch, as its trial measured them; for a trial that recorded no
    evaluation time, the evaluation's modelled share ``eval_share`` of training (evaluating an epoch's
    validation images over training on its images, as search/trial/time_budget.py counts it). Else its
    wall time over its epochs, passes included, which also spreads building, the probe and start-up
    over a few epochs and errs long."""
    attrs = trial.user_attrs
    train = attrs.get("epoch_seconds")
    if train and attrs.get("eval_seconds"):
        return train, attrs["eval_seconds"]
    if train and eval_share is not None:
        return train, train * eval_share
    trained = attrs.get("epochs")
    if not trained or trial.duration is None:
        raise UserError(f"trial {trial.number} has no measured epochs to pace a timed retrain; give --epochs")
    return max(trial.duration.total_seconds(), 1e-3) / trained, 0.0


def _fit_and_score(model: nn.Module, tensors: DeviceDataset, again: RebuiltTrial, epochs: int, seed: int,
                   train_on: str, note: Callable[[], str] | None = None,
                   deadline: float | None = None, start_at: float = 0.0, hold: float = 0.0,
                   scored: bool = True) -> tuple[dict, int]:
    """Trains one seed, logging each epoch, and returns its validation (and held-out) metrics. It
    compiles with the study's torch.compile mode, so the retrain runs the kernels its trial ran.

    With a ``deadline`` the run's schedule follows the clock (``fit``'s ``clock``): ``epochs`` is the
    plan, and the run ends its schedule at the deadline however its epochs' pace drifts. The trial's
    pace, measured in another phase of the process, erred by a fifth either way (bench/RESULTS.md):
    too slow left minutes unused, too fast cut the schedule before its rate came down. ``start_at``: where
    in its schedule the run starts, and ``hold`` the share of the run it stays there (``fit``'s).
    ``scored``: False scores no validation images, in training or after (metrics then hold only
    ``held_out`` and the held-out test part's scores)."""
    config, ds = again.config, again.data
    shown = TASK_METRICS[ds.task]
    done = []
    began = time.monotonic()
    about = "~" if deadline is not None else ""

    def show(r) -> None:
        done.append(r)
        values = "".join(f", {m} {getattr(r, m):.4f}" for m in shown if getattr(r, m) is not None)
        log(f"  epoch {r.epoch:>3}/{about}{epochs}: loss {r.train_loss:.4f}{values}, {r.seconds:.1f}s"
            f"{note() if note else ''}")

    def clock() -> float:
        return (time.monotonic() - began) / max(1e-6, deadline - began)

    try:
        if epochs:  # 0: weights given to continue from are the model as they are (`run --time` out of time)
            shown_to = tensors if scored else replace(tensors, val_x=None, val_y=None)  # None: no pass at all
            fit(model, shown_to, config.train, epochs=epochs, seed=seed, on_epoch=show, compile=again.settings.compile,
                evaluate_every=evaluate_every(epochs, train_on), clock=None if deadline is None else clock,
                start_at=start_at, hold=hold,
                curve_tta=False)  # its curve is for the progress line; the model is scored below
            if deadline is not None and len(done) != epochs:
                log(f"  the time given ended the schedule after {len(done)} epochs (about {epochs} were planned)")
        metrics = {k: v for k, v in evaluate(model, tensors, tta=config.train.tta).items()
                   if k != "confusion"} if scored else {}
    except Diverged as e:  # a rate at the edge of stability can diverge on another device or seed
        raise UserError(f"retraining {again.what} (seed {seed}) diverged: {e}; that seed's model "
                        f"is not saved") from None
    metrics["held_out"] = train_on == "train"  # on train+val the validation split was trained on
    if ds.holdout_x is not None:  # the labelled test part no trial saw, scored with val's thresholds
        device = tensors.train_x.device
        part = replace(tensors, val_x=torch.from_numpy(ds.holdout_x).to(device),
                       val_y=torch.from_numpy(ds.holdout_y).to(device))
        held = evaluate(model, part, thresholds=metrics.get("thresholds"), tta=config.train.tta)
        metrics["holdout"] = {k: v for k, v in held.items() if k not in ("confusion", "thresholds")}
    return metrics, len(done)


def eval_share(train_images: int, val_images: int, tta: bool) -> float:
    """An epoch's evaluation over its training, in time: predict_seconds' own cost model."""
    return val_images * EVAL_COST * (2 if tta else 1) / max(1, train_images)


def trial_dir(runs: Path, number: int, train_on: str) -> Path:
    """A trial's own model folder under ``runs`` (runs/STUDY): one per training split, so a retrain on
    train+val and an ensemble member retrained on train never overwrite each other."""
    return runs / (f"trial-{number}" if train_on == "train" else f"trial-{number}-trainval")


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
