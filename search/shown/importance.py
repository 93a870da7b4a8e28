"""Parameter importances (Optuna's default evaluator, PED-ANOVA) and how far a young study's are to be trusted.

PED-ANOVA warns once per parameter whose values fall into groups ("regimes") of fewer than two
trials: in a young study, with conditional parameters, that is most of them, and the dashboard
recomputes them on every page load. The warnings tell the user nothing the report does not say
once, in words: how many trials the importances rest on.
"""

from __future__ import annotations

import re
import warnings

import optuna
from optuna.trial import TrialState

from gic_common.knobs import TRUSTED_FROM

__all__ = ["caveat", "ignore_few_trials_warnings", "importances"]

_FEW_TRIALS_WARNINGS = (
    "Some regimes for parameter",
    "Target and region quantiles select the same set of trials",
    "The number of trials is too small to compute importances",
)


def ignore_few_trials_warnings() -> None:
    """Turns PED-ANOVA's too-few-trials warnings off for this whole process (a long-running server
    computes importances in its request threads, where no ``catch_warnings`` block reaches)."""
    for message in _FEW_TRIALS_WARNINGS:
        warnings.filterwarnings("ignore", message=re.escape(message))


def importances(study: optuna.Study, target=None) -> dict[str, float]:
    """Importances by parameter, most important first, without the too-few-trials warnings."""
    with warnings.catch_warnings():
        for message in _FEW_TRIALS_WARNINGS:
            warnings.filterwarnings("ignore", message=re.escape(message))
        # A target makes PED-ANOVA say it minimises that target; the report's target is the first
        # of several objectives, maximised or not as Optuna's own plot does it.
        warnings.filterwarnings("ignore", message="PedAnovaImportanceEvaluator computes the importances")
        return optuna.importance.get_param_importances(study, target=target)


def caveat(study: optuna.Study) -> str:
    """A line saying how many completed trials the importances rest on, and whether that is few."""
    n = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    if n >= TRUSTED_FROM:
        return f"from {n} completed trials"
    return f"from only {n} completed trials: too few to rank parameters reliably (wait for {TRUSTED_FROM} or more)"
