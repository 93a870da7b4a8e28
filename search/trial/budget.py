"""What a study's trial budget (`--trials`) counts: trials that trained and got a verdict.

A trial turned away before its first epoch (a network over the preset's cost ceiling, one a
multi-objective front already beats on cost) took no training. Counting it would let the ceiling
eat the budget (bench/RESULTS.md, "The harness on this CPU"). It stays in the study as a pruned
trial with its reason, so samplers learn from it and the dashboard shows it, but it does not count.
A space whose every draw is rejected must still end, hence the cap on rejections (gic_common/knobs.py).
Nor does a trial a warm start copied from another study.
"""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

__all__ = ["FINISHED", "budget_counts", "counted", "reject", "rejected", "takes_budget"]

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
REJECTED = "rejected"  # the user attribute that marks a trial turned away untrained
COPIED = "copied_from"  # the user attribute of a trial a warm start copied in: "study#number"


def reject(trial: optuna.Trial, reason: str) -> optuna.TrialPruned:
    """The verdict for a trial turned away before training: raise it from the objective."""
    trial.set_user_attr(REJECTED, True)
    return optuna.TrialPruned(reason)


def rejected(trial: FrozenTrial) -> bool:
    return trial.state == TrialState.PRUNED and bool(trial.user_attrs.get(REJECTED))


def takes_budget(trial: FrozenTrial) -> bool:
    """Finished with a verdict on training here: complete, or pruned after training began."""
    return trial.state in FINISHED and not rejected(trial) and COPIED not in trial.user_attrs


def budget_counts(study: optuna.Study) -> tuple[int, int, list[int]]:
    """Finished trials that take budget, those rejected untrained, and the numbers of running ones."""
    trials = study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING))
    finished = sum(takes_budget(t) for t in trials)
    rejected = sum(t.state in FINISHED and COPIED not in t.user_attrs for t in trials) - finished
    return finished, rejected, sorted(t.number for t in trials if t.state == TrialState.RUNNING)


def counted(study: optuna.Study) -> tuple[int, int]:
    """Trials that take budget, and trials rejected untrained."""
    finished, rejected, _ = budget_counts(study)
    return finished, rejected
