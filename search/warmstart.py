"""Warm start: a new study begins with the best configurations of an earlier one on the same space."""

from __future__ import annotations

import optuna

from search.errors import UserError
from search.study import load_study

__all__ = ["best_configurations", "warm_start"]


def best_configurations(source: optuna.Study, k: int) -> list[optuna.trial.FrozenTrial]:
    """The ``k`` best completed trials: by value for one objective; for several, the Pareto front
    first (best first objective first), then the rest by their first objective."""
    done = source.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    sign = 1 if source.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1
    if len(source.directions) == 1:
        return sorted(done, key=lambda t: -sign * t.values[0])[:k]
    front = {t.number for t in source.best_trials}
    return sorted(done, key=lambda t: (t.number not in front, -sign * t.values[0]))[:k]


def warm_start(source_name: str, storage: str, space: str, k: int) -> list[optuna.trial.FrozenTrial]:
    """The best ``k`` trials of study ``source_name`` (same storage, same space), checked before the
    new study is made so that a bad name leaves nothing behind."""
    source = load_study(source_name, storage)
    their_space = source.user_attrs.get("space")
    if their_space != space:
        raise UserError(f"--from-study {source_name}: it searched space {their_space!r}, not {space!r}; "
                        f"its configurations are not points of this space")
    chosen = best_configurations(source, k)
    if not chosen:
        raise UserError(f"--from-study {source_name}: it has no completed trial to start from")
    return chosen
