"""A stored trial made again: its configuration from its parameters, the data as the search split
it, its seed and the study's epochs. `retrain`, `rerun` and ensemble members start here, with the
same inputs (search/trial/inputs.py) the objective trained the trial with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from types import ModuleType

import optuna
import torch
from optuna.trial import TrialState
from torch import nn

from gic_common.errors import UserError
from search.config import StudyConfig
from search.data import Dataset
from search.trial.device import resolve_device, setup
from search.trial.inputs import load_data, seeded_model, to_device
from search.trial.train import DeviceDataset
from spaces import get_space, rebuild
from spaces.common import TrialConfig

__all__ = ["RebuiltTrial", "choose_trial", "rebuild_trial"]

_TRAINABLE = (TrialState.COMPLETE, TrialState.PRUNED)
_STATE_WORDS = {TrialState.RUNNING: "is still running", TrialState.WAITING: "is waiting (queued, not started)",
                TrialState.FAIL: "failed"}


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
    device: torch.device
    seed: int  # the trial's own
    epochs: int  # the study's epochs a trial: what its learning-rate schedule was planned for

    @property
    def what(self) -> str:
        return f"trial {self.trial.number}"

    def tensors(self, train_on: str = "train") -> DeviceDataset:
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
    data = load_data(settings.data, settings.data_options)  # the search's own splits and size
    return RebuiltTrial(trial, settings, space, config, data, torch_device,
                        int(trial.user_attrs.get("seed", 0)), settings.epochs)
