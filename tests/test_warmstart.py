"""Warm start from another study, and the seed designs as the first trials of every family's study."""

from __future__ import annotations

import json

import optuna
import pytest
from test_samplers_pruners import tiny_study

import search.trial.objective
from gic_common.errors import UserError
from search.trial.train import EpochResult
from search.workers.ranking import best_completed
from spaces import get_space

pytestmark = pytest.mark.slow


def test_from_study_on_other_settings_trains_the_best_k_configurations_first(tmp_path, tiny_data, monkeypatch):
    source = tiny_study(tmp_path, tiny_data, monkeypatch, study="source", trials=4, pruner={"name": "none"})
    ranked = sorted(source.trials, key=lambda t: t.value, reverse=True)
    assert [t.number for t in best_completed(source, 2)] == [t.number for t in ranked[:2]]
    study = tiny_study(tmp_path, tiny_data, monkeypatch, study="warm", trials=3, epochs=2, from_study="source",
                       warm_start=2)  # its values after 1 epoch say little of 2: trained again
    first, second = study.trials[:2]
    assert first.params == ranked[0].params and second.params == ranked[1].params
    assert first.user_attrs["design"] == f"source#{ranked[0].number}"
    assert len(study.trials) == 3 and all(t.user_attrs["epochs"] == 2 for t in study.trials)


def test_from_study_on_the_same_settings_copies_its_trials_as_history(tmp_path, tiny_data, monkeypatch, capsys):
    source = tiny_study(tmp_path, tiny_data, monkeypatch, study="source", trials=4, pruner={"name": "none"})
    study = tiny_study(tmp_path, tiny_data, monkeypatch, study="warm", trials=3, from_study="source")
    assert "the 4 finished trials of 'source' are copied in as history" in capsys.readouterr().err
    copies, new = study.trials[:4], study.trials[4:]
    for copy, original in zip(copies, source.trials, strict=True):  # as they were, none trained again
        assert (copy.params, copy.values, copy.intermediate_values) == (
            original.params, original.values, original.intermediate_values)
        assert copy.user_attrs["copied_from"] == f"source#{original.number}"
    assert len(new) == 3 and all(t.state.is_finished() and "copied_from" not in t.user_attrs for t in new)
    assert not {key(t) for t in new} & {key(t) for t in copies}  # its own draws, not the source's again


def key(trial: optuna.trial.FrozenTrial) -> str:
    return json.dumps(trial.params, sort_keys=True)


def test_best_configurations_of_a_multi_objective_study_are_its_front_first():
    study = optuna.create_study(directions=["maximize", "minimize"])
    for i, (accuracy, params) in enumerate([(0.5, 9.0), (0.6, 5.0), (0.4, 1.0), (0.55, 6.0), (0.3, 2.0)]):
        study.add_trial(optuna.trial.create_trial(params={"x": i}, distributions={
            "x": optuna.distributions.IntDistribution(0, 9)}, values=[accuracy, params]))
    # Front: trials 1 (0.6, 5) and 2 (0.4, 1); then the dominated ones by accuracy: 3, 0, 4.
    assert [t.number for t in best_completed(study, 4)] == [1, 2, 3, 0]


def test_from_study_of_another_space_fails_before_a_study_is_made(tmp_path, tiny_data, monkeypatch):
    tiny_study(tmp_path, tiny_data, monkeypatch, study="source", trials=1)
    with pytest.raises(UserError, match="searched space 'mlp', not 'cnn'"):
        tiny_study(tmp_path, tiny_data, monkeypatch, space_name="cnn", study="other", from_study="source")
    with pytest.raises(UserError, match="no study 'nope'"):
        tiny_study(tmp_path, tiny_data, monkeypatch, study="other", from_study="nope")
    names = [s.study_name for s in optuna.get_all_study_summaries(f"sqlite:///{tmp_path / 's.db'}")]
    assert names == ["source"]


def test_warm_start_without_from_study_is_one_line(tmp_path, capsys):
    from search.cli import main

    storage = f"sqlite:///{tmp_path / 's.db'}"  # it used to run the study, with no warm start at all
    assert main(["run", "cnn", "--warm-start", "3", "--data", str(tmp_path / "none"), "--storage", storage]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--from-study" in err and not (tmp_path / "s.db").exists()


@pytest.mark.parametrize("family", ["resnet", "mlp", "timm"])
def test_the_recommended_then_the_seed_designs_are_the_first_trials(family, tmp_path, tiny_data, monkeypatch):
    # Training is replaced by one made-up epoch: what is tested is the queue, the build and the count.
    def one_epoch(model, data, cfg, *, epochs, seed, on_epoch, **_):
        on_epoch(EpochResult(1, 2.0, 0.1, cfg.lr, 2.0, 0.5, 0.5, [0.5] * data.num_classes))

    monkeypatch.setattr(search.trial.objective, "fit", one_epoch)
    space = get_space(family)
    study = tiny_study(tmp_path, tiny_data, monkeypatch, space=space, space_name=family,
                       trials=1 + len(space.SEED_DESIGNS))
    recommended, *first = study.trials[: 1 + len(space.SEED_DESIGNS)]  # the priors' bet, then the hand designs
    assert recommended.user_attrs["design"] == "recommended"
    assert [t.user_attrs["design"] for t in first] == list(space.SEED_DESIGNS)
    for trial, params in zip(first, space.SEED_DESIGNS.values(), strict=True):
        assert trial.params == params and trial.state == optuna.trial.TrialState.COMPLETE
        assert trial.user_attrs["params"] > 0 and trial.user_attrs["flops_per_image"] > 0
