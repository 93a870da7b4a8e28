"""A sampler that starts where the space's priors say, then hands the study to any other sampler.

Optuna's `enqueue_trial` fixes whole points; it cannot say "learning rates near 0.08 first". Uniform
start-up draws over a wide space mostly train to chance, and a model-based sampler after them learns
from noise. Here the first ``n_startup`` sampled trials draw every parameter that has a prior
uniformly from its prior region (spaces/priors.py); after them the k-th sampled trial is still the
prior's with probability d / (d + k), ``d`` = ``decay`` (gic_common/knobs.py), else (and for parameters
without a prior) the wrapped sampler's, which models the whole space and leaves the prior region
where the results say so. That is the idea of piBO and PriorBand (the prior's weight falls as
evidence comes in) as a mixture: a model of dozens of dimensions fitted on a few trials still draws
much from its own uniform prior, so a prior share that ends soon leaves many draws near chance
(bench/RESULTS.md, "Search quality").
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import FrozenTrial, TrialState

from gic_common.knobs import PRIOR_DECAY
from search.trial.budget import rejected
from spaces.priors import Prior

__all__ = ["PriorSampler"]


def _drawn(trial: FrozenTrial) -> bool:
    """A trial the sampler chose (not a queued design) that used its budget or is still running."""
    if "fixed_params" in trial.system_attrs or trial.state == TrialState.FAIL:
        return False
    return not rejected(trial)


class PriorSampler(optuna.samplers.BaseSampler):
    def __init__(self, base: optuna.samplers.BaseSampler, priors: dict[str, Prior], n_startup: int,
                 seed: int | None = None, decay: float = PRIOR_DECAY):
        self.base, self.priors, self.n_startup, self.decay = base, priors, n_startup, decay
        self._rng = np.random.RandomState(seed)
        self._from_prior: dict[int, bool] = {}  # by trial number: decided once a trial, not once a parameter
        self._queued: set[int] = set()  # trials that came with fixed parameters (designs, retries)

    def draws_from_prior(self, study: optuna.Study, trial: FrozenTrial) -> bool:
        """Whether this trial draws from the prior: always in the start-up, then ever less often."""
        if trial.number not in self._from_prior:
            earlier = study.get_trials(deepcopy=False)
            drawn = sum(_drawn(t) for t in earlier if t.number < trial.number)
            after = drawn - self.n_startup + 1  # this trial's place after the start-up (1, 2, ...)
            self._from_prior[trial.number] = after <= 0 or self._rng.rand() < self.decay / (self.decay + after)
        return self._from_prior[trial.number]

    def reseed_rng(self) -> None:
        self._rng.seed()
        self.base.reseed_rng()

    def infer_relative_search_space(self, study, trial) -> dict[str, BaseDistribution]:
        if self.draws_from_prior(study, trial):
            return {}  # every parameter comes through sample_independent, from its prior
        return self.base.infer_relative_search_space(study, trial)

    def sample_relative(self, study, trial, search_space) -> dict[str, Any]:
        return self.base.sample_relative(study, trial, search_space) if search_space else {}

    def sample_independent(self, study, trial, param_name: str, param_distribution: BaseDistribution) -> Any:
        prior = self.priors.get(param_name)
        if prior is not None and self.draws_from_prior(study, trial):
            value = self.draw(prior, param_distribution)
            if value is not None:
                return value
        return self.base.sample_independent(study, trial, param_name, param_distribution)

    def draw(self, prior: Prior, dist: BaseDistribution) -> Any:
        """A uniform draw from the prior region clipped to the distribution (None: they do not meet)."""
        if isinstance(dist, CategoricalDistribution):
            choices = [c for c in prior.region if c in dist.choices]
            return choices[self._rng.randint(len(choices))] if choices else None
        if not isinstance(dist, (FloatDistribution, IntDistribution)):
            return None
        low, high = max(dist.low, min(prior.region)), min(dist.high, max(prior.region))
        if low > high:
            return None
        uniform = self._rng.uniform
        value = math.exp(uniform(math.log(low), math.log(high))) if dist.log else uniform(low, high)
        if isinstance(dist, IntDistribution) or dist.step is not None:
            step = dist.step or 1
            value = dist.low + round((value - dist.low) / step) * step
            value = min(max(value, dist.low), dist.high)
            return int(value) if isinstance(dist, IntDistribution) else float(value)
        return float(value)

    def drawn_from(self, number: int) -> str | None:
        """Who drew this process's trial ``number``: "prior", "sampler", or None (queued, or not drawn here)."""
        if number in self._queued or number not in self._from_prior:
            return None
        return "prior" if self._from_prior[number] else "sampler"

    def before_trial(self, study, trial) -> None:
        if "fixed_params" in trial.system_attrs:
            self._queued.add(trial.number)
        self.base.before_trial(study, trial)

    def after_trial(self, study, trial: FrozenTrial, state: TrialState, values: Sequence[float] | None) -> None:
        self.base.after_trial(study, trial, state, values)
