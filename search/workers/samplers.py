"""Samplers and pruners by name, made from a preset's settings for them."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import optuna

from gic_common.errors import UserError
from gic_common.registry import Registry

__all__ = ["PRUNERS", "SAMPLERS", "make_pruner", "make_sampler"]

# Samplers by name. Each builder takes the study seed and the preset's settings for it (the
# [sampler] table less `name` and `fixed`); a setting the sampler does not know is one clear line.
def _tpe(seed: int, **options) -> optuna.samplers.BaseSampler:
    # Multivariate TPE models the joint effect of depth, width and learning rate; `group` handles
    # the conditional parameters (filters_l5 exists only when n_conv > 5). Optuna 5.0's TPE is a
    # constant liar by default, which is what parallel workers need.
    options = {"multivariate": True, "group": True, **options}
    return optuna.samplers.TPESampler(seed=seed, **options)


def _grid(seed: int, search_space: dict[str, list] | None = None, **options) -> optuna.samplers.BaseSampler:
    if not search_space:
        raise UserError("sampler grid needs a [sampler.search_space] table: parameter = [values, ...]")
    return optuna.samplers.GridSampler(search_space, seed=seed, **options)


# Model-based samplers fall back to random sampling for parameters outside their joint space
# (conditional ones such as filters_l5); that is expected here, so their warning is turned off.
SAMPLERS: Registry[Callable[..., optuna.samplers.BaseSampler]] = Registry("sampler", {
    "tpe": _tpe,
    "random": lambda seed, **o: optuna.samplers.RandomSampler(seed=seed, **o),
    "cmaes": lambda seed, **o: optuna.samplers.CmaEsSampler(seed=seed, **{"warn_independent_sampling": False, **o}),
    "gp": lambda seed, **o: optuna.samplers.GPSampler(seed=seed, **{"warn_independent_sampling": False, **o}),
    "qmc": lambda seed, **o: optuna.samplers.QMCSampler(seed=seed, **{"warn_independent_sampling": False, **o}),
    "grid": _grid,
    "nsga2": lambda seed, **o: optuna.samplers.NSGAIISampler(seed=seed, **o),
    "nsga3": lambda seed, **o: optuna.samplers.NSGAIIISampler(seed=seed, **o),
})


def _build(kind: str, table: dict, name: str, factory: Callable[..., Any], *args, **options) -> Any:
    try:
        with warnings.catch_warnings():  # several options are marked experimental; we use them knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return factory(*args, **options)
    except TypeError as e:  # an option the constructor does not take
        raise UserError(f"{kind} {name!r}: bad setting in the preset's [{table}] table ({e})") from None
    except ValueError as e:
        raise UserError(f"{kind} {name!r}: {e}") from None


def make_sampler(settings: dict[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    """The sampler ``settings["name"]`` with the other settings as its options.

    ``fixed`` (a table parameter = value) pins parameters for any sampler (Optuna's
    PartialFixedSampler): the grid preset uses it to hold everything but its grid constant, since a
    grid must name every parameter the space suggests.
    """
    options = {k: v for k, v in settings.items() if k not in ("name", "fixed")}
    name = settings.get("name", "tpe")
    sampler = _build("sampler", "sampler", name, SAMPLERS[name], seed, **options)
    if settings.get("fixed"):
        sampler = _build("sampler", "sampler.fixed", name, optuna.samplers.PartialFixedSampler,
                         dict(settings["fixed"]), sampler)
    return sampler


def _patient(wrapped: dict[str, Any] | str | None = None, patience: int = 2, **options) -> optuna.pruners.BasePruner:
    # Patience on top of another pruner (or alone): a trial is stopped only after `patience` epochs
    # without improvement, which spares slow starters such as heavily regularised networks.
    if isinstance(wrapped, str):
        wrapped = {"name": wrapped}
    inner = None if wrapped is None or wrapped.get("name") == "none" else make_pruner(wrapped)
    return optuna.pruners.PatientPruner(inner, patience=patience, **options)


PRUNERS: Registry[Callable[..., optuna.pruners.BasePruner]] = Registry("pruner", {
    # Hyperband with TPE did best in Optuna's own benchmarks, and it needs no hand-set warm-up:
    # its brackets both stop weak trials after one epoch and let slow starters run longer.
    "hyperband": optuna.pruners.HyperbandPruner,
    "median": optuna.pruners.MedianPruner,
    # The median is the 50th percentile; 25 keeps more trials (only the bottom quarter is cut).
    "percentile": lambda percentile=25.0, **o: optuna.pruners.PercentilePruner(percentile, **o),
    "asha": optuna.pruners.SuccessiveHalvingPruner,
    "patient": _patient,
    # Wilcoxon compares a trial's per-epoch values with the best trial's, paired by epoch: it stops
    # a trial whose curve is significantly below the best one's, not one that is merely behind once.
    "wilcoxon": optuna.pruners.WilcoxonPruner,
    "none": lambda: optuna.pruners.NopPruner(),
})


def make_pruner(settings: dict[str, Any]) -> optuna.pruners.BasePruner:
    options = {k: v for k, v in settings.items() if k != "name"}
    name = settings.get("name", "hyperband")
    return _build("pruner", "pruner", name, PRUNERS[name], **options)


