"""A stored trial made again: its configuration from its parameters, the data as the search split
it, its seed and the study's epochs. `retrain`, `rerun`, ensemble members and the model plots all
start here; the objective builds its network with the same ``seeded_model``."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import numpy as np
import optuna
import torch
from optuna.trial import TrialState
from torch import nn

from gic_models import create_model
from search.config import StudyConfig
from search.console import log
from search.data import Dataset, load_dataset
from search.data.prepare import DataOptions, prepare
from search.device import resolve_device, setup
from search.errors import UserError
from search.train import Tensors
from spaces import get_space, rebuild
from spaces.common import TrialConfig

__all__ = ["RebuiltTrial", "choose_trial", "load_data", "rebuild_trial", "seeded_model", "to_device"]

_TRAINABLE = (TrialState.COMPLETE, TrialState.PRUNED)
_STATE_WORDS = {TrialState.RUNNING: "is still running", TrialState.WAITING: "is waiting (queued, not started)",
                TrialState.FAIL: "failed"}


def load_data(root: Path, options: DataOptions | None = None, quiet: bool = False) -> Dataset:
    """The dataset read (or taken from the cache), its task decided and its splits made, exactly as
    the search made them from the same ``options``. ``quiet``: no progress and no summary line."""
    options = options or DataOptions()
    start = time.perf_counter()
    decoded = []

    def progress(done: int, total: int) -> None:
        decoded.append(done)
        print(f"\rdecoding images {done}/{total}", end="", file=sys.stderr, flush=True)

    ds = load_dataset(root, options.layout, progress=None if quiet else progress, image_size=options.image_size)
    if decoded:
        print(file=sys.stderr)
    ds = prepare(ds, options)
    if quiet:
        return ds
    held_out = "" if ds.holdout_x is None else f", {len(ds.holdout_x)} held out"
    log(
        f"data {root}: {len(ds.train_x)} train, {0 if ds.val_x is None else len(ds.val_x)} val{held_out}, "
        f"{0 if ds.test_x is None else len(ds.test_x)} test, {ds.task} with {ds.num_classes} "
        f"{'labels' if ds.task == 'multilabel' else 'classes'}, "
        f"{ds.in_shape[2]}x{ds.in_shape[1]} ({time.perf_counter() - start:.1f}s)"
    )
    return ds


def to_device(ds: Dataset, device: torch.device, train_on: str = "train") -> Tensors:
    """The dataset as device tensors; ``train+val`` folds the validation split into training."""
    mean, std = ds.stats()
    train_x, train_y = ds.train_x, ds.train_y
    val_x, val_y = ds.val_x, ds.val_y
    if train_on == "train+val" and val_x is not None:
        train_x, train_y = np.concatenate([train_x, val_x]), np.concatenate([train_y, val_y])
    if val_x is None:
        raise UserError(f"{ds.name}: no validation split (val.csv); the search needs one to score trials")

    def put(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    return Tensors(
        train_x=put(train_x), train_y=put(train_y), val_x=put(val_x), val_y=put(val_y),
        mean=put(mean), std=put(std), num_classes=ds.num_outputs, task=ds.task,
    )


def seeded_model(config: TrialConfig, seed: int, num_outputs: int, in_shape: tuple[int, int, int]) -> nn.Module:
    """The trial's network with the initial weights its seed gives: the same in the search and after it."""
    torch.manual_seed(seed)
    return create_model(config.model, config.arch, num_outputs, in_shape)


def choose_trial(study: optuna.Study, number: int | None) -> optuna.trial.FrozenTrial:
    """Trial ``number``, or the best one; refused when it cannot be trained again."""
    if number is None:
        if len(study.directions) > 1:
            front = ", ".join(str(t.number) for t in study.best_trials)
            raise UserError(f"study {study.study_name!r} has several objectives; choose a Pareto member "
                            f"with --trial: {front}")
        try:
            return study.best_trial
        except ValueError:
            raise UserError(f"study {study.study_name!r} has no completed trial yet") from None
    trials = {t.number: t for t in study.trials}
    if number not in trials:
        raise UserError(f"study {study.study_name!r} has no trial {number} (it has 0..{len(trials) - 1})")
    trial = trials[number]
    if trial.state not in _TRAINABLE:  # its parameters may be partial: FixedTrial could not rebuild it
        raise UserError(f"trial {number} of {study.study_name!r} {_STATE_WORDS[trial.state]}; only a complete "
                        f"or pruned trial can be trained again")
    return trial


@dataclass(frozen=True)
class RebuiltTrial:
    """Everything a stored trial trained with, ready to train it again."""

    trial: optuna.trial.FrozenTrial
    settings: StudyConfig  # as the study recorded them
    space: ModuleType
    config: TrialConfig
    data: Dataset  # split as the search split it
    options: DataOptions
    device: torch.device
    seed: int  # the trial's own
    epochs: int  # the study's epochs a trial: what its learning-rate schedule was planned for

    @property
    def what(self) -> str:
        return f"trial {self.trial.number}"

    def tensors(self, train_on: str = "train") -> Tensors:
        return to_device(self.data, self.device, train_on=train_on)

    def model(self, seed: int | None = None) -> nn.Module:
        """The network with the initial weights of ``seed`` (default: the trial's own)."""
        return seeded_model(self.config, self.seed if seed is None else seed, self.data.num_outputs,
                            self.data.in_shape)


def rebuild_trial(
    study: optuna.Study, number: int | None, device: str = "auto",
    check: Callable[[optuna.trial.FrozenTrial], None] | None = None,
) -> RebuiltTrial:
    """Trial ``number`` (None: the best) of a study `run` made, rebuilt on ``device``. ``check`` runs
    once the configuration is rebuilt and before the data are read, for a caller's own refusals."""
    settings = StudyConfig.of_study(study)
    trial = choose_trial(study, number)
    space = get_space(settings.space)
    config = rebuild(space, trial.params, f"trial {trial.number}")
    if check is not None:
        check(trial)
    torch_device = resolve_device(device)
    setup(torch_device)
    options = settings.data_options()  # the search's own splits and size
    data = load_data(settings.data, options)
    return RebuiltTrial(trial, settings, space, config, data, options, torch_device,
                        int(trial.user_attrs.get("seed", 0)), settings.epochs)
