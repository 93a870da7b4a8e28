"""A study's budget is time: each trial's cost is measured on its own device before it is let run.

FLOPs do not predict time. On two CPU cores a wide 3x3 first convolution at full resolution ran at
a tenth of the FLOP rate of the convolutions after it, and a FLOP ceiling that fitted the
synthetic benchmark rejected the hand design itself on a user's 64px images. So the training loop
times a few real steps of every trial (search/trial/train.py's probe), this module turns that into the
trial's predicted seconds, and a trial that cannot fit is turned away untrained, with its reason,
and takes no trial budget (search/trial/budget.py).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

__all__ = ["EVAL_COST", "TimeBudget", "predict_seconds"]

# Evaluating an image is a forward pass, about a third of a training step's forward and backward.
EVAL_COST = 1 / 3


def predict_seconds(per_image: float, train_images: int, val_images: int, epochs: int, tta: bool) -> float:
    """A whole trial's seconds from the probe's seconds per training image."""
    evaluation = val_images * EVAL_COST * (2 if tta else 1)
    return epochs * per_image * (train_images + evaluation)


@dataclass
class TimeBudget:
    """``deadline``: the monotonic time after which the study starts no trial (None: no timeout).
    ``share``: a sampled trial may take at most this many times its fair share of the time left
    (the time left over the trials still to run), so that one slow draw cannot eat the study."""

    deadline: float | None = None
    share: float = 3.0
    cheapest: float = float("inf")  # the shortest trial any probe predicted so far

    def closed(self) -> bool:
        """Once even the cheapest trial seen cannot fit the time left, starting more only burns the
        rest of it on probes that end in rejections (40 of them in one quick study)."""
        left = self.left()
        return left is not None and math.isfinite(self.cheapest) and left < self.cheapest

    @classmethod
    def from_timeout(cls, timeout: float | None, share: float = 3.0) -> TimeBudget:
        return cls(None if timeout is None else time.monotonic() + timeout, share)

    def left(self) -> float | None:
        return None if self.deadline is None else max(0.0, self.deadline - time.monotonic())

    def verdict(self, predicted: float, trials_left: int | None, design: bool = False) -> str | None:
        """Why a trial predicted to take ``predicted`` seconds must not run, or None if it may.
        A queued design (the seed designs: the baseline a study is judged against) is only held to
        the deadline, not to a share."""
        self.cheapest = min(self.cheapest, predicted)
        left = self.left()
        if left is None:
            return None
        if predicted > left:
            return f"predicted {predicted:.0f}s, but the study has {left:.0f}s left"
        if design or not trials_left:
            return None
        fair = left / trials_left
        if predicted > self.share * fair:
            return (f"predicted {predicted:.0f}s, over {self.share:g}x its share of the time left "
                    f"({left:.0f}s for {trials_left} trials)")
        return None
