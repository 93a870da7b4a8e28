"""`export --ensemble K`: a folder standing for the K best trials' models. A trial already retrained
on the same split is reused; the others are retrained now and kept, so a second export is quick."""

from __future__ import annotations

from pathlib import Path

import optuna

from gic_common.errors import UserError
from search.after.ensemble import member_dirs, write_ensemble
from search.after.model_files import META, read_meta
from search.after.retrain import retrain, trial_dir
from search.after.saving import settle_folder
from search.places import runs_dir
from search.workers.ranking import best_completed

__all__ = ["ensemble_top", "top_trials"]


def top_trials(study: optuna.Study, k: int) -> list[optuna.trial.FrozenTrial]:
    if len(study.directions) > 1:
        # Refused rather than ranked by the first objective: the costs were searched for because they
        # matter, a Pareto front has no single "top", and averaging k models multiplies the very cost
        # the front traded accuracy against. The user picks the member whose trade-off they want.
        front = ", ".join(str(t.number) for t in study.best_trials) or "none completed yet"
        raise UserError(f"study {study.study_name!r} has several objectives, so no top {k} to average: "
                        f"retrain a Pareto member with `retrain --trial N` (front: {front}), then export it")
    best = best_completed(study, k)
    if len(best) < k:
        raise UserError(f"study {study.study_name!r} has {len(best)} completed trials; --ensemble {k} needs {k}")
    return best


def ensemble_top(
    study: optuna.Study, k: int, train_on: str = "train", device_name: str = "auto",
    storage_url: str | None = None, runs: Path | None = None,
) -> Path:
    """An ensemble folder of the top ``k`` trials. A trial with a saved model trained on the same
    split (runs/STUDY/trial-N) reuses it; the others are retrained now, once, and kept for next time."""
    runs = runs or runs_dir(study.study_name)
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


def _saved_model(folder: Path, train_on: str) -> Path | None:
    """The model in ``folder`` trained on ``train_on`` with the trial's own seed: the folder itself,
    or after `retrain --seeds N` its first seed's folder (the very model a one-seed retrain makes)."""
    settle_folder(folder)
    first = member_dirs(folder)[0]
    if (first / META).is_file() and read_meta(first / META)["train_on"] == train_on:
        return first
    return None
