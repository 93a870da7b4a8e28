"""The user's time is one budget: how `run --time T` splits T between the search, the winner's final
run and the export, and when the search has had enough.

A plain user gives one hand design the whole of T. A search that judges designs at a few epochs and
retrains the winner for those few epochs never gives any design that long run, and on data whose
designs learn late it loses to the plain user (bench/RESULTS.md, "The user's question"). So the
search gets at most a share of T and the winner's final run the rest, continued from the weights its
trial left (search/job/whole.py), and the search ends early once more of it is worth less than the
same time given to the final run:
- when every design trained so far sits near chance: verdicts at this many epochs cannot rank designs
  on these data, while the final run is where such data learn;
- when, once the designs have run, the design a draw must beat (the final run's choice so far) was
  itself near chance at the epoch a draw is first judged against it (search/job/challenge.py): a
  verdict there stops draws on noise, and each costs the final run an epoch or two;
- when, once the designs have run, the share has room for fewer than ``MIN_TRIALS`` draws at the
  cost measured so far: so few draws rarely beat the designs they started from;
- when the last ``patience`` trained trials brought no new best: one more trial's expected gain has
  fallen under what its minutes add to the final run.
The final run goes to the space's recommended design (the prior's bet) unless another trial beat it
by more than the validation split's noise, ``FINAL_RUN_LEAD`` standard errors of the difference,
at equal training seconds (``final_choice``): a verdict after a few epochs must not hand a long run to
a small lead near chance, nor to a slower design whose lead at equal epochs its final run, given
fewer epochs in the same seconds, does not keep.
The split's settings are preset keys (``search_share``, ``search_patience``); its other knobs are in
gic_common/knobs.py, and the figures that chose their values in bench/RESULTS.md.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from optuna.trial import FrozenTrial, TrialState

from gic_common.knobs import (
    AFTER_RUN_MARGIN,
    AFTER_RUN_SECONDS,
    CHALLENGE_FROM,
    FINAL_RUN_LEAD,
    MIN_TRIALS,
    NEAR_CHANCE,
    RESERVE_SECONDS,
    RESERVE_SHARE,
)

__all__ = ["JobPlan", "after_run_seconds", "at_equal_seconds", "chance_level", "final_choice", "lead_noise",
           "search_verdict", "why_not_the_best"]


def lead_noise(a: float, b: float, images: int) -> float:
    """One standard error of the difference between two scores, each a proportion of ``images``."""
    return math.sqrt((a * (1 - a) + b * (1 - b)) / max(1, images))


def chance_level(task: str, metric: str, classes: int) -> float | None:
    """The metric of a model that guesses: 1/classes for single-label accuracy and macro-F1, 0.5 for a
    binary ROC AUC; None for multi-label F1, whose floor depends on how common each label is."""
    if task == "multilabel":
        return None
    return 0.5 if task == "binary" else 1.0 / max(1, classes)


@dataclass
class JobPlan:
    """``total``: the user's seconds for the whole job, counted from ``start`` (the command's own start,
    so reading the data is paid from T too). ``share``: the most of T the search may take.
    ``reserve``: seconds kept after the final run for the export and the report: a cautious default
    until the winner is known, then what its own measured scoring pace needs (``after_run_seconds``)."""

    total: float
    share: float = 0.4
    patience: int = 6
    reserve: float | None = None  # default: RESERVE_SECONDS or RESERVE_SHARE of T, whichever is more
    start: float = field(default_factory=time.monotonic)
    phases: dict[str, float] = field(default_factory=dict)  # seconds each phase took, in order (``mark``)

    def __post_init__(self) -> None:
        if self.reserve is None:
            self.reserve = max(RESERVE_SECONDS, RESERVE_SHARE * self.total)
        self._marked = self.start

    def mark(self, phase: str) -> None:
        """``phase`` ended now: it took the seconds since the last mark (the first, since the start)."""
        now = time.monotonic()
        self.phases[phase] = now - self._marked
        self._marked = now

    def spent(self) -> str:
        """Where the job's seconds went, phase by phase: what says which phase ran long when T was not kept."""
        return ", ".join(f"{phase} {sec:.0f}s" if sec >= 10 else f"{phase} {sec:.1f}s"
                         for phase, sec in self.phases.items())

    def left(self) -> float:
        return max(0.0, self.start + self.total - time.monotonic())

    def search_seconds(self) -> float:
        """The search's timeout from now: what is left of its share of T."""
        return max(0.0, self.start + self.share * self.total - time.monotonic())

    def final_seconds(self) -> float:
        """What the winner's final run may take from now: all that is left but the reserve."""
        return max(0.0, self.left() - self.reserve)


def after_run_seconds(winner: FrozenTrial, val_images: int, images: int, tta: bool) -> float | None:
    """Seconds the export and the report need after ``winner``'s final run: ``images`` scored (the
    submission's test images and the report's validation images) at the pace its trial scored its
    ``val_images`` (twice that with test-time flips: a trial's curve is mostly scored without them),
    times ``AFTER_RUN_MARGIN``, plus ``AFTER_RUN_SECONDS`` for loading, plots and files, and for the
    interpreter's exit after the job's last line (1.4-2.8 s measured: the user waits for the command,
    not for its last line). None when the trial measured no scoring pass. The old fixed reserve (15 s
    or 3% of T) left 13 s of a 12-minute job unused, two epochs of its final run (bench/RESULTS.md)."""
    measured = winner.user_attrs.get("eval_seconds")
    if not measured or val_images <= 0:
        return None
    per_image = measured / val_images * (2 if tta else 1)
    return AFTER_RUN_SECONDS + AFTER_RUN_MARGIN * per_image * images


def search_verdict(trials: Sequence[FrozenTrial], chance: float | None, patience: int,
                   window_left: float | None = None, challenged_on: int | None = None) -> str | None:
    """Why the search should stop now (one line), or None to go on. ``trials``: the study's trials;
    ``chance``: the metric of a model that guesses (None: no such floor, as for multi-label F1);
    ``window_left``: seconds left of the search's share of the job; ``challenged_on``: the validation
    images a draw is judged on against the incumbent from epoch ``CHALLENGE_FROM`` (None: no such judge).
    Queued designs (the seed and recommended designs) always run first: they are the baseline."""
    if any(t.state == TrialState.WAITING for t in trials):
        return None
    trained = [t for t in trials if t.state in (TrialState.COMPLETE, TrialState.PRUNED) and t.intermediate_values]
    if not trained:
        return None
    if chance is not None and len(trained) >= 2:
        best_seen = max(max(t.intermediate_values.values()) for t in trained)
        if best_seen < NEAR_CHANCE * chance:
            epochs = max(len(t.intermediate_values) for t in trained)
            return (f"every design so far is near chance after {epochs} epochs (best {best_seen:.4f}, chance "
                    f"{chance:.4f}): trials this short cannot rank designs here, so the final run gets the time")
    costs = sorted(t.duration.total_seconds() for t in trained if t.duration is not None)
    only_designs = all("design" in t.user_attrs for t in trained)  # asked once: before the first draw
    if challenged_on is not None and chance is not None and only_designs:
        why = _judged_on_noise(trained, chance, challenged_on)
        if why:
            return why
    if window_left is not None and costs and only_designs:
        typical = costs[len(costs) // 2]
        if window_left < MIN_TRIALS * typical:
            return (f"the search's share has {window_left:.0f}s left after the designs, room for fewer than "
                    f"{MIN_TRIALS} draws at {typical:.0f}s each: the final run gets the time")
    complete = [t for t in trained if t.state == TrialState.COMPLETE and t.value is not None]
    if not complete:
        return None
    best = max(complete, key=lambda t: t.value)
    since = [t for t in trained if t.number > best.number]
    if len(since) >= patience:
        return (f"no new best in the last {len(since)} trials (best: trial {best.number}, {best.value:.4f}): "
                f"the final run gets the rest of the time")
    return None


def _judged_on_noise(trained: Sequence[FrozenTrial], chance: float, val_images: int) -> str | None:
    """Why draws would be judged on noise: the incumbent (``final_choice``) sat under ``NEAR_CHANCE``
    times chance at ``CHALLENGE_FROM``, the epoch a draw is first judged against it. A draw stopped
    there for not leading a model that guesses is stopped on noise, and one kept there leads by luck;
    judging later (no verdict while the incumbent is near chance) let the draws run most of their
    trials and cost the final run 15-23 epochs for no win (bench/RESULTS.md). None otherwise."""
    complete = [t for t in trained if t.state == TrialState.COMPLETE and t.value is not None]
    if not complete:
        return None
    incumbent = final_choice(complete, val_images)
    first = incumbent.intermediate_values.get(CHALLENGE_FROM)
    if first is None or first >= NEAR_CHANCE * chance:
        return None
    return (f"the design a draw must beat (trial {incumbent.number}) was near chance after epoch {CHALLENGE_FROM} "
            f"({first:.4f}, chance {chance:.4f}), where a draw is first judged against it: such verdicts stop "
            f"draws on noise, so the final run gets the time")


def at_equal_seconds(challenger: FrozenTrial, incumbent: FrozenTrial) -> float:
    """The challenger's score once it had trained as many seconds as the ``incumbent``'s whole trial:
    its last score when it is no slower per epoch, else its score at the last epoch it reached within
    those seconds (at least its first). The user's T is seconds, not epochs: a design twice as slow
    gets half the epochs in the final run, so its lead at equal epochs overstates what T buys it."""
    mine, theirs = challenger.user_attrs.get("epoch_seconds"), incumbent.user_attrs.get("epoch_seconds")
    curve, their_epochs = challenger.intermediate_values, len(incumbent.intermediate_values)
    if not mine or not theirs or mine <= theirs or not curve or not their_epochs:
        return challenger.value
    reached = [step for step in curve if step <= their_epochs * theirs / mine]
    return curve[max(reached) if reached else min(curve)]


def final_choice(trials: Sequence[FrozenTrial], val_images: int, incumbent: str = "recommended") -> FrozenTrial:
    """The trial the final run trains: the completed trial that leads the ``incumbent`` design most
    at equal training seconds (``at_equal_seconds``) if that lead is more than ``FINAL_RUN_LEAD``
    standard errors of the difference between two scores on ``val_images`` images (each scored as a
    proportion), else the incumbent; the best when no incumbent completed."""
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    held = [t for t in complete if t.user_attrs.get("design") == incumbent]
    if not held:
        return max(complete, key=lambda t: t.value)
    b = held[0].value
    leads = [(at_equal_seconds(t, held[0]) - b, t) for t in complete if t.number != held[0].number]
    beyond = [(lead, t) for lead, t in leads
              if lead > FINAL_RUN_LEAD * lead_noise(b + lead, b, val_images)]
    return max(beyond, key=lambda x: x[0])[1] if beyond else held[0]


def why_not_the_best(lead: FrozenTrial, winner: FrozenTrial, val_images: int) -> str:
    """One line on why the final run does not train the trial with the best score."""
    if winner.user_attrs.get("design") != "recommended":
        return (f"trial {winner.number} leads the recommended design most at equal training seconds: it gets the "
                f"final run, not trial {lead.number} (the best score, {lead.value:.4f})")
    equal = at_equal_seconds(lead, winner) - winner.value
    noise = FINAL_RUN_LEAD * lead_noise(winner.value + equal, winner.value, val_images)
    return (f"trial {lead.number} led the recommended design by {lead.value - winner.value:.4f} at equal epochs and "
            f"{equal:.4f} at equal training seconds, not over the {noise:.4f} ({FINAL_RUN_LEAD:g} standard errors) "
            f"that {val_images} validation images need: the recommended design gets the final run")
