"""Multi-objective search: a validation metric against a cost (parameters or inference speed).

``--objectives accuracy,params`` (or ``macro_f1,latency``, or all three) makes the study
multi-objective; its answer is the Pareto front (``study.best_trials``), from which ``retrain`` and
``export`` take a trial by number.

Optuna prunes no multi-objective study (``trial.report`` is single-objective only). What a study
here does instead rests on one fact: a trial's cost is known the moment its network is built,
before any training. Two rules use it (``FrontRules``):

1. At ask time: an architecture that costs more than ``max_cost_ratio`` times the front's most
   accurate member, in any cost, is rejected (pruned) before it trains. Such a network can only
   join the front by beating the best metric so far, and r times the cost is a long way to go for
   that; the front's right end grows by at most r per trial, so large networks are still reached
   once smaller ones have earned it.
2. Every epoch from ``min_epochs`` on: a trial whose learning curve so far lies, at every epoch,
   at least ``margin`` below the curve of a front member that costs no more than it (within
   ``cost_tolerance``, since measured speeds are noisy) is stopped. That member was cheaper and
   ahead from the first epoch to this one; the trial could reach the front only by overtaking it
   later, which a curve dominated this long rarely does.

Both are pruned trials with their reason stored as ``pruned_reason``, like single-objective ones.
TPE counts pruned trials among its bad ones, so it learns to stop proposing them.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Sequence
from dataclasses import dataclass

import optuna
import torch
from torch import nn

from gic_common.errors import UserError
from gic_common.knobs import LATENCY_BATCH, LATENCY_BATCH_DEFAULT
from search.trial.budget import reject
from search.trial.choices import COSTS, METRICS
from search.trial.device import autocast
from search.trial.objective import Objective
from search.trial.train import EpochResult

__all__ = ["FrontRules", "MultiObjective", "cost_of", "directions", "front", "measure_throughput", "parse_objectives"]


def parse_objectives(text: str) -> tuple[str, ...]:
    """``"accuracy,params"`` -> ``("accuracy", "params")``: one metric first, then one or more costs."""
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    known = (*METRICS, *COSTS)
    for name in names:
        if name not in known:
            raise UserError(f"unknown objective {name!r}; known objectives: {', '.join(known)}")
    if not names or names[0] not in METRICS or any(n in METRICS for n in names[1:]):
        raise UserError(f"--objectives {text}: give one metric ({', '.join(METRICS)}) first, then costs "
                        f"({', '.join(COSTS)}), e.g. accuracy,params")
    if len(set(names)) != len(names):
        raise UserError(f"--objectives {text}: an objective is named twice")
    return names


def directions(objectives: Sequence[str]) -> list[str]:
    return ["maximize" if name in METRICS else COSTS[name] for name in objectives]


@torch.no_grad()
def measure_throughput(model: nn.Module, in_shape: tuple[int, int, int], device: torch.device,
                       batch: int | None = None, rounds: int = 3) -> float:
    """Inference images per second at ``batch`` on ``device`` (eval mode, as predictions are made):
    one warm-up pass, then the median of ``rounds`` timed ones."""
    batch = batch or LATENCY_BATCH.get(device.type, LATENCY_BATCH_DEFAULT)
    was_training = model.training
    model.eval().to(device)
    x = torch.zeros(batch, *in_shape, device=device)
    times = []
    for i in range(rounds + 1):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        with autocast(device):
            model(x)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        if i:  # the first pass pays for allocation and kernel selection
            times.append(time.perf_counter() - start)
    model.train(was_training)
    return batch / statistics.median(times)


def cost_of(name: str, value: float) -> float:
    """A cost on one scale where lower is better (seconds per image for throughput)."""
    return value if COSTS[name] == "minimize" else 1.0 / max(value, 1e-12)


def front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The Pareto front, best metric first."""
    return sorted(study.best_trials, key=lambda t: t.values[0], reverse=True)


@dataclass(frozen=True)
class FrontRules:
    """The two pruning rules of the module docstring; settings from the preset's [front] table."""

    objectives: tuple[str, ...]
    min_epochs: int = 2  # one epoch says too little about a curve
    margin: float = 0.02  # in the metric's units: behind by less than this is a tie
    cost_tolerance: float = 0.05  # "costs no more": within 5%, the noise of a throughput measurement
    max_cost_ratio: float = 4.0  # rule 1's r; 0 turns rule 1 off

    def _costs(self, values: Sequence[float]) -> list[float]:
        return [cost_of(n, v) for n, v in zip(self.objectives[1:], values, strict=True)]

    def reject(self, members: Sequence[optuna.trial.FrozenTrial], costs: Sequence[float]) -> str | None:
        """Rule 1, before training; ``costs`` are the trial's raw cost values, objectives' order."""
        if not members or not self.max_cost_ratio:
            return None
        best = max(members, key=lambda t: t.values[0])
        mine, theirs = self._costs(costs), self._costs(best.values[1:])
        for name, m, t in zip(self.objectives[1:], mine, theirs, strict=True):
            if m > self.max_cost_ratio * t:
                return (f"rejected before training: {name} {m / t:.1f}x that of the front's most accurate "
                        f"trial {best.number} (limit {self.max_cost_ratio:g}x)")
        return None

    def stop(self, members: Sequence[optuna.trial.FrozenTrial], costs: Sequence[float],
             curve: Sequence[float]) -> str | None:
        """Rule 2, after each epoch; ``curve`` is the trial's metric at epochs 1..len(curve)."""
        epoch = len(curve)
        if epoch < self.min_epochs:
            return None
        mine = self._costs(costs)
        for member in members:
            theirs = member.user_attrs.get("curve", [])
            if len(theirs) < epoch:
                continue
            cheaper = all(t <= m * (1 + self.cost_tolerance) for t, m in zip(self._costs(member.values[1:]), mine,
                                                                              strict=True))
            if cheaper and all(t >= c + self.margin for t, c in zip(theirs, curve, strict=False)):
                return (f"stopped after epoch {epoch}: curve below front trial {member.number}'s "
                        f"(no costlier) at every epoch by >= {self.margin:g}")
        return None


class MultiObjective(Objective):
    """The objective of a multi-objective study: returns (metric, cost, ...) and prunes by its settings' rules."""

    def _costs(self, trial: optuna.Trial) -> list[float]:
        return [trial.user_attrs[name] for name in self.settings.rules.objectives[1:]]

    def before_fit(self, trial: optuna.Trial, model: nn.Module) -> None:
        super().before_fit(trial, model)
        if "latency" in self.settings.rules.objectives:
            trial.set_user_attr("latency", measure_throughput(model, self.settings.in_shape, self.data.train_x.device))
        reason = self.settings.rules.reject(front(trial.study), self._costs(trial))
        if reason:
            raise reject(trial, reason)

    def on_epoch(self, trial: optuna.Trial, result: EpochResult, history: list[EpochResult]) -> None:
        curve = [getattr(r, self.settings.metric) for r in history]
        trial.set_user_attr("curve", curve)  # read by later trials' rule 2
        reason = self.settings.rules.stop(front(trial.study), self._costs(trial), curve)
        if reason:
            raise optuna.TrialPruned(reason)

    def values(self, trial: optuna.Trial, history: list[EpochResult]) -> tuple[float, ...]:
        return (getattr(history[-1], self.settings.metric), *self._costs(trial))
