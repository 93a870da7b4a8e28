"""Opening storages and studies, and making samplers and pruners from their names and settings."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import optuna
import sqlalchemy.exc

from search.errors import UserError

__all__ = ["load_study", "make_pruner", "make_sampler", "open_storage", "open_study"]


def make_sampler(settings: dict[str, Any], seed: int) -> optuna.samplers.BaseSampler:
    options = {k: v for k, v in settings.items() if k != "name"}
    name = settings.get("name", "tpe")
    if name == "tpe":
        # Multivariate TPE models the joint effect of depth, width and learning rate; `group`
        # handles the conditional parameters (filters_l5 exists only when n_conv > 5).
        options = {"multivariate": True, "group": True, **options}
        with warnings.catch_warnings():  # `group` is marked experimental; we rely on it knowingly
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.samplers.TPESampler(seed=seed, **options)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed, **options)
    raise UserError(f"unknown sampler {name!r}; known samplers: random, tpe")


def make_pruner(settings: dict[str, Any]) -> optuna.pruners.BasePruner:
    options = {k: v for k, v in settings.items() if k != "name"}
    name = settings.get("name", "hyperband")
    if name == "hyperband":
        # Hyperband with TPE did best in Optuna's own benchmarks, and it needs no hand-set warm-up:
        # its brackets both stop weak trials after one epoch and let slow starters run longer.
        return optuna.pruners.HyperbandPruner(**options)
    if name == "median":
        return optuna.pruners.MedianPruner(**options)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise UserError(f"unknown pruner {name!r}; known pruners: hyperband, median, none")


def open_storage(url: str) -> optuna.storages.BaseStorage:
    """An Optuna storage for ``url``; an unreachable or malformed one is one clear line."""
    try:
        if url.startswith(("sqlite", "postgresql", "mysql")):
            return optuna.storages.RDBStorage(url)
        return optuna.storages.get_storage(url)
    except (sqlalchemy.exc.SQLAlchemyError, ValueError, ImportError) as e:
        reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UserError(f"cannot open storage {url}: {reason}") from None


def open_study(
    name: str, storage: str, sampler: optuna.samplers.BaseSampler, pruner: optuna.pruners.BasePruner,
    direction: str = "maximize",
) -> optuna.Study:
    return optuna.create_study(
        study_name=name, storage=open_storage(storage), sampler=sampler, pruner=pruner,
        direction=direction, load_if_exists=True,
    )


def load_study(name: str | None, storage: str) -> optuna.Study:
    """An existing study; with no name, the one whose latest trial started last (the study just run)."""
    if storage.startswith("sqlite:///") and not Path(storage.removeprefix("sqlite:///")).is_file():
        raise UserError(f"{storage}: no such SQLite file; `run` creates it")  # and `best` must not
    store = open_storage(storage)
    summaries = optuna.get_all_study_summaries(store, include_best_trial=False)
    names = [s.study_name for s in summaries]
    if name is None:
        started = [s for s in summaries if s.datetime_start is not None]
        if not started:
            raise UserError(f"{storage} holds no study with trials yet; run one first")
        name = max(started, key=lambda s: _last_start(store, s.study_name)).study_name
    if name not in names:
        raise UserError(f"no study {name!r} in {storage}; studies there: {', '.join(names) or 'none'}")
    return optuna.load_study(study_name=name, storage=store)


def _last_start(storage: optuna.storages.BaseStorage, name: str):
    study_id = storage.get_study_id_from_name(name)
    starts = [t.datetime_start for t in storage.get_all_trials(study_id, deepcopy=False) if t.datetime_start]
    return max(starts)
