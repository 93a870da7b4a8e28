"""A study's budget is time: each trial's cost is measured on its own device before it is let run.

FLOPs do not predict time: a layer's FLOP rate depends on its shape and the device, and a FLOP
ceiling that fitted the synthetic benchmark rejected the hand design itself on a user's 64px images
(bench/RESULTS.md, the CPU epoch table). So the training loop times a few real steps of every trial
(search/trial/train.py's probe), this module turns them into the trial's predicted seconds, and a
trial that cannot fit is turned away untrained, with its reason, taking no trial budget (budget.py).
"""

from __future__ import annotations

import math
import statistics
import time
from dataclasses import dataclass, field

from gic_common.knobs import EVAL_COST, FAIR_SHARE

__all__ = ["TimeBudget", "predict_seconds"]


def predict_seconds(per_image: float, train_images: int, val_images: int, epochs: int, tta: bool) -> float:
    """A whole trial's seconds from the probe's seconds per training image. A trial scores every epoch,
    with the design's test-time flips (twice the images) only at its last (train.py ``fit``'s ``curve_tta``)."""
    evaluation = val_images * EVAL_COST * (epochs + (1 if tta else 0))
    return per_image * (epochs * train_images + evaluation)


@dataclass
class TimeBudget:
    """``deadline``: the monotonic time after which the study starts no trial (None: no timeout).
    ``share``: a sampled trial may take at most this many times its fair share of the time left,
    so that one slow draw cannot eat the study. The fair share is the time left over the trials
    still to run, or over the trials that can still fit at the typical (median) predicted cost when
    fewer fit: a study that its timeout will end before its trial count must not shrink the share
    towards nothing and turn every draw away (bench/RESULTS.md, "Search quality")."""

    deadline: float | None = None
    share: float = FAIR_SHARE
    predictions: list[float] = field(default_factory=list)  # every probe's predicted seconds so far
    designs_until: float | None = None  # a later deadline for queued designs (`run --time`: search/job/)

    @property
    def cheapest(self) -> float:
        return min(self.predictions, default=float("inf"))

    def closed(self) -> bool:
        """Once three draws in four would not fit the time left (the lower quartile of the costs
        predicted so far; the cheapest until four are known), starting more only burns the rest of
        it on probes that end in rejections."""
        left = self.left()
        if left is None or not self.predictions:
            return False
        if len(self.predictions) < 4:
            return left < self.cheapest
        return left < statistics.quantiles(self.predictions, n=4, method="inclusive")[0]

    @classmethod
    def from_timeout(cls, timeout: float | None, share: float = FAIR_SHARE) -> TimeBudget:
        return cls(None if timeout is None else time.monotonic() + timeout, share)

    def left(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def verdict(self, predicted: float, trials_left: int | None, design: bool = False) -> str | None:
        """Why a trial predicted to take ``predicted`` seconds must not run, or None if it may.
        A queued design (the seed designs: the baseline a study is judged against) is only held to
        the deadline, not to a share."""
        typical = statistics.median(self.predictions) if self.predictions else None
        self.predictions.append(predicted)
        left = self.left()
        if design and self.designs_until is not None:
            left = max(0.0, self.designs_until - time.monotonic())
        if left is None:
            return None
        if predicted > left:
            return f"predicted {predicted:.0f}s, but the study has {left:.0f}s left"
        if design or not trials_left:
            return None
        if typical:
            trials_left = min(trials_left, max(1, math.floor(left / typical)))
        fair = left / trials_left
        if predicted > self.share * fair:
            return (f"predicted {predicted:.0f}s, over {self.share:g}x its share of the time left "
                    f"({left:.0f}s for {trials_left} trials)")
        return None
