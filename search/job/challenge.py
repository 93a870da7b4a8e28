"""`run --time`'s pruner: a trial is a challenger to the design the final run would get now, and it
stops as soon as it is not ahead of that design at the same epoch (by ``CHALLENGE_LEAD`` standard
errors of the validation split's noise, 0 by default: ahead at all).

In a timed job a trial is worth its minutes only if it can take the final run, which needs a lead of
``FINAL_RUN_LEAD`` standard errors when it ends (search/job/plan.py ``final_choice``). A challenger
behind the incumbent at the same point of the same schedule spends the rest of its trial on a
lead it rarely finds, and every epoch it takes is one the final run loses: on sets where the
recommended design wins, running the seed design's trial to its end left the job's model 6-8 epochs
short of a plain run's, and stopping it early left 1-5 (bench/RESULTS.md, "A challenger's trial stops
when it leads by less than the noise"). On a set where the challenger does win, it led after one
epoch by more than 15 standard errors, so the first epoch is judged too. The lead asked for is none:
asking for one standard error at every epoch stopped, at its second epoch, the drawn design that ends
4.4 points ahead of the recommended design on photos-48px (a lead of 7, 1 and 7 points at its first
three epochs: one epoch within the noise is enough to fail six verdicts), while the losers of the
same curves still stop at epochs 1-4 for being behind (bench/RESULTS.md, "A challenger must be
ahead, not ahead by the noise"). Where the incumbent itself is still near chance at that epoch, being
ahead of it is noise, and there a lead of ``CHALLENGE_LEAD_NEAR_CHANCE`` standard errors is asked:
seed 000's CNN sat level with the recommended design near chance on the late-learning and greyscale
sets, and was stopped at epoch 2 or 3 by that lead. The study's own pruner still judges first; this
rule only adds stops. Every single-objective metric here is a proportion to maximise, as
``lead_noise`` assumes.
"""

from __future__ import annotations

import optuna
from optuna.pruners import BasePruner
from optuna.trial import FrozenTrial, TrialState

from gic_common.knobs import CHALLENGE_FROM, CHALLENGE_LEAD, CHALLENGE_LEAD_NEAR_CHANCE, NEAR_CHANCE
from search.console import log
from search.job.plan import final_choice, lead_noise

__all__ = ["ChallengerPruner"]


class ChallengerPruner(BasePruner):
    """Prunes what ``inner`` prunes, and a trial that, from epoch ``CHALLENGE_FROM`` on, leads the
    incumbent (the trial ``final_choice`` would give the final run now) at the same epoch by no more
    than ``CHALLENGE_LEAD`` standard errors (at 0: is not ahead of it), or by no more than
    ``CHALLENGE_LEAD_NEAR_CHANCE`` where the incumbent there is under ``NEAR_CHANCE`` times ``chance``
    (the metric of a guess; None: no such floor). Before the first trial completes there is no incumbent."""

    def __init__(self, inner: BasePruner, val_images: int, chance: float | None = None) -> None:
        self.inner, self.val_images, self.chance = inner, val_images, chance

    def prune(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        if self.inner.prune(study, trial):
            return True
        step = trial.last_step
        if step is None or step < CHALLENGE_FROM or self.val_images <= 0:
            return False
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        if not complete:
            return False
        incumbent = final_choice(complete, self.val_images)
        if step not in incumbent.intermediate_values:  # a study whose trials ran other lengths
            return False
        a, b = trial.intermediate_values[step], incumbent.intermediate_values[step]
        near_chance = self.chance is not None and b < NEAR_CHANCE * self.chance
        lead = CHALLENGE_LEAD_NEAR_CHANCE if near_chance else CHALLENGE_LEAD
        noise = lead * lead_noise(a, b, self.val_images)
        if a - b > noise:
            return False
        name = trial.user_attrs.get("design", "a draw")
        log(f"trial {trial.number} ({name}) stops after epoch {step}: {a:.4f} against trial {incumbent.number}'s "
            f"{b:.4f} there, {_short_of(lead, noise, self.val_images)}, so it is unlikely to take "
            f"the final run")
        return True


def _short_of(lead: float, noise: float, images: int) -> str:
    """What the challenger fell short of, for its log line."""
    if lead == 0:
        return "not ahead of it"
    if lead < 0:
        return f"behind it by {-lead:g} standard error(s) ({-noise:.4f}) of {images} validation images or more"
    return f"a lead under {lead:g} standard error(s) ({noise:.4f}) of {images} validation images"
