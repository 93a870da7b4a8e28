"""The best k completed trials of a study, as warm starts and top-k ensembles both take them."""

from __future__ import annotations

import optuna

__all__ = ["best_completed"]


def best_completed(study: optuna.Study, k: int) -> list[optuna.trial.FrozenTrial]:
    """The ``k`` best completed trials, best first: by value for one objective (ties: the earlier
    trial first); for several, the Pareto front first (best first objective first), then the rest
    by their first objective."""
    done = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    sign = 1 if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else -1
    if len(study.directions) == 1:
        return sorted(done, key=lambda t: (-sign * t.values[0], t.number))[:k]
    front = {t.number for t in study.best_trials}
    return sorted(done, key=lambda t: (t.number not in front, -sign * t.values[0], t.number))[:k]
