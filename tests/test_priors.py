"""Priors: start-up draws fall in each prior's region, the sampler leaves it afterwards, `--prior off`
draws uniformly, and every space's priors and recommended design are valid for that space."""

from __future__ import annotations

import optuna
import pytest
import torch

from gic_models import create_model
from search.config import StudyConfig
from search.workers.prior_sampler import PriorSampler
from search.workers.run import make_study_sampler
from spaces import SPACES, get_space, recommended_design
from spaces.priors import Budget

BUDGETS = [Budget(3, "cpu"), Budget(30, "cuda")]


def _draws(sampler: optuna.samplers.BaseSampler, space, n: int) -> list[optuna.trial.FrozenTrial]:
    """``n`` trials asked from ``sampler`` and told a made-up value: the space is drawn, nothing trains."""
    study = optuna.create_study(direction="maximize", sampler=sampler)
    for i in range(n):
        trial = study.ask()
        space.suggest(trial)
        study.tell(trial, float(i % 7))
    return study.trials


def _inside(value, region, dist) -> bool:
    if isinstance(dist, optuna.distributions.CategoricalDistribution):
        return value in region
    step = getattr(dist, "step", None) or 0
    return min(region) - step <= value <= max(region) + step  # rounding to the step may cross by one


@pytest.mark.parametrize("budget", BUDGETS, ids=["short-cpu", "long-gpu"])
def test_start_up_draws_fall_in_every_prior_region(budget):
    space = get_space("cnn")
    priors = space.priors(budget)
    trials = _draws(PriorSampler(optuna.samplers.RandomSampler(seed=1), priors, n_startup=12, seed=1), space, 12)
    checked = 0
    for trial in trials:
        for name, value in trial.params.items():
            assert _inside(value, priors[name].region, trial.distributions[name]), (trial.number, name, value)
            checked += 1
    assert checked > 12 * 30  # every parameter of every trial had a prior to be checked against


def test_after_start_up_the_priors_share_decays():
    space = get_space("cnn")
    sampler = PriorSampler(optuna.samplers.RandomSampler(seed=6), space.priors(Budget(3)), n_startup=5, seed=6,
                           decay=5)
    trials = _draws(sampler, space, 65)
    from_prior = [sampler._from_prior[t.number] for t in trials]
    assert all(from_prior[:5])
    early, late = sum(from_prior[5:25]) / 20, sum(from_prior[25:]) / 40  # expected about 0.38 and 0.12
    assert early > 0.15 and late < early and sum(from_prior[25:]) > 0


def test_after_start_up_the_wrapped_sampler_searches_the_whole_space():
    space = get_space("cnn")
    priors = space.priors(Budget(3))
    low, high = priors["lr"].region
    trials = _draws(PriorSampler(optuna.samplers.RandomSampler(seed=2), priors, n_startup=5, seed=2), space, 40)
    later = [t.params["lr"] for t in trials[5:]]
    assert any(not low <= lr <= high for lr in later)  # uniform over 1e-4..1e-1 leaves 0.03..0.2 often
    assert {t.params["optimizer"] for t in trials[5:]} - {"sgd"}  # and the optimizers the prior skipped


def test_queued_designs_take_no_prior_slot():
    """A seed design is the user's, not a draw: the start-up count is of sampled trials only."""
    space = get_space("cnn")
    priors = space.priors(Budget(3))
    study = optuna.create_study(direction="maximize",
                                sampler=PriorSampler(optuna.samplers.RandomSampler(seed=3), priors, 2, seed=3))
    for params in space.SEED_DESIGNS.values():
        study.enqueue_trial(params)
    for i in range(5):
        trial = study.ask()
        space.suggest(trial)
        study.tell(trial, float(i))
    sampled = study.trials[len(space.SEED_DESIGNS):]
    in_region = [priors["optimizer"].region[0] == t.params["optimizer"] and t.params["norm"] == "bn" for t in sampled]
    assert in_region[:2] == [True, True]
    sampler = study.sampler
    assert [sampler.drawn_from(t.number) for t in study.trials[:len(space.SEED_DESIGNS)]] == [None] * len(
        space.SEED_DESIGNS)  # the user's designs are nobody's draw
    assert [sampler.drawn_from(t.number) for t in sampled[:2]] == ["prior", "prior"]


def test_prior_off_draws_uniformly_from_the_sampler_alone():
    space = get_space("cnn")
    cfg = StudyConfig(space="cnn", epochs=3, sampler={"name": "random"}, prior="off")
    sampler = make_study_sampler(cfg, space, torch.device("cpu"), seed=4)
    assert not isinstance(sampler, PriorSampler)
    trials = _draws(sampler, space, 20)
    assert {t.params["norm"] for t in trials} > {"bn"}  # the prior would have drawn "bn" alone
    on = make_study_sampler(StudyConfig(space="cnn", epochs=3, sampler={"name": "tpe", "n_startup_trials": 6}),
                            space, torch.device("cpu"), seed=4)
    assert isinstance(on, PriorSampler) and on.n_startup == 6


@pytest.mark.parametrize("name", SPACES)
@pytest.mark.parametrize("budget", BUDGETS, ids=["short-cpu", "long-gpu"])
def test_every_prior_fits_its_space_and_the_recommended_design_builds(name, budget):
    space = get_space(name)
    priors = space.priors(budget)
    for trial in _draws(PriorSampler(optuna.samplers.RandomSampler(seed=5), priors, 6, seed=5), space, 6):
        for param, dist in trial.distributions.items():
            assert param in priors, f"{name}: {param} has no prior"
            prior = priors[param]
            assert prior.why, f"{name}: {param}'s prior says nothing of why"
            if isinstance(dist, optuna.distributions.CategoricalDistribution):
                assert set(prior.region) <= set(dist.choices) and prior.value in dist.choices, (name, param)
            else:
                assert dist.low <= prior.value <= dist.high, (name, param, prior.value)
                assert dist.low <= min(prior.region) and max(prior.region) <= dist.high, (name, param)
    design = recommended_design(space, budget)
    cfg = space.suggest(optuna.trial.FixedTrial(design))
    if name != "timm":  # timm's networks build in test_families; here the design's values are what matter
        model = create_model(cfg.model, cfg.arch, 10, (3, 32, 32))
        assert model(torch.zeros(2, 3, 32, 32)).shape == (2, 10)


def test_a_study_records_its_prior_setting_and_queues_the_recommended_design(tmp_path, tiny_data):
    from search.cli import main

    storage = f"sqlite:///{tmp_path / 's.db'}"
    common = ["run", "cnn", "--data", str(tiny_data), "--storage", storage, "--workers", "0", "--for", "cpu"]
    assert main([*common, "--study", "on"]) == 0
    assert main([*common, "--study", "off", "--prior", "off"]) == 0
    on, off = (optuna.load_study(study_name=n, storage=storage) for n in ("on", "off"))
    assert on.user_attrs["prior"] == "on" and off.user_attrs["prior"] == "off"
    waiting = on.get_trials(states=(optuna.trial.TrialState.WAITING,))
    queued = {t.user_attrs["design"]: t.system_attrs["fixed_params"] for t in waiting}
    assert list(queued) == ["recommended", "seed000-cnn"]  # the priors' bet first: it runs where one fits
    assert queued["recommended"] == recommended_design(get_space("cnn"), Budget(3, "cpu"))
    assert [t.user_attrs["design"] for t in off.trials] == ["seed000-cnn"]  # the hand design alone


def test_the_seed_designs_stay_exactly_expressible():
    """Every seed design rebuilds from its own parameters, none left over and none missing."""
    from spaces import rebuild

    for name in SPACES:
        space = get_space(name)
        for design, params in space.SEED_DESIGNS.items():
            fixed = optuna.trial.FixedTrial(params)
            space.suggest(fixed)
            assert set(fixed.params) == set(params), (name, design, set(params) ^ set(fixed.params))
            rebuild(space, params, design)
