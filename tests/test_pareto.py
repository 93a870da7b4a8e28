"""Multi-objective search: objectives by name, the front-based pruning rules driven with ask/tell and
no training, and real tiny studies that yield a Pareto front that `best` and `retrain` use."""

from __future__ import annotations

import optuna
import pytest
from test_samplers_pruners import TinySpace, tiny_study

import search.after.rebuild
from gic_common.errors import UserError
from search.cli import main
from search.trial.budget import counted, rejected
from search.trial.pareto import FrontRules, directions, front, parse_objectives


def test_objectives_by_name_and_their_directions():
    assert parse_objectives("accuracy, params") == ("accuracy", "params")
    assert directions(parse_objectives("macro_f1,latency,params")) == ["maximize", "maximize", "minimize"]
    for bad, message in (("accuracy,flops", "unknown objective 'flops'"), ("params,accuracy", "metric .* first"),
                         ("accuracy,macro_f1", "metric .* first"), ("accuracy,params,params", "named twice")):
        with pytest.raises(UserError, match=message):
            parse_objectives(bad)


def mo_study(*members: tuple[float, float, list[float]]) -> optuna.Study:
    """An accuracy-vs-params study holding finished trials (accuracy, params, learning curve)."""
    study = optuna.create_study(directions=directions(("accuracy", "params")))
    for accuracy, params, curve in members:
        trial = study.ask()
        trial.set_user_attr("curve", curve)
        study.tell(trial, (accuracy, params))
    return study


RULES = FrontRules(("accuracy", "params"), min_epochs=2, margin=0.02, cost_tolerance=0.05, max_cost_ratio=4.0)


def test_rule_1_rejects_at_ask_time_what_costs_far_more_than_the_most_accurate_front_member():
    study = mo_study((0.60, 1e6, [0.3, 0.5, 0.6]), (0.40, 1e5, [0.2, 0.3, 0.4]), (0.35, 2e6, [0.2, 0.3, 0.35]))
    assert [t.values[0] for t in front(study)] == [0.60, 0.40]  # the third is dominated
    assert RULES.reject(front(study), [3.9e6]) is None  # within 4x of the 1M-parameter leader
    reason = RULES.reject(front(study), [5e6])
    assert reason.startswith("rejected before training: params 5.0x") and "trial 0" in reason
    assert RULES.reject([], [1e9]) is None  # an empty front rejects nothing
    assert FrontRules(("accuracy", "params"), max_cost_ratio=0).reject(front(study), [1e9]) is None


def test_rule_1_reads_throughput_as_a_cost_the_right_way_round():
    study = optuna.create_study(directions=directions(("accuracy", "latency")))
    study.add_trial(optuna.trial.create_trial(values=[0.6, 1000.0]))  # 1000 images/s
    rules = FrontRules(("accuracy", "latency"), max_cost_ratio=4.0)
    assert rules.reject(front(study), [300.0]) is None  # 3.3x slower
    assert rules.reject(front(study), [200.0]).startswith("rejected before training: latency 5.0x")
    assert rules.reject(front(study), [1e5]) is None  # faster is never a reason


def test_rule_2_stops_a_curve_dominated_by_a_no_costlier_front_member():
    study = mo_study((0.60, 1e6, [0.30, 0.50, 0.60]), (0.40, 1e5, [0.20, 0.30, 0.40]))
    members = front(study)
    # Behind the 100k-parameter member at both epochs while costing 5x more: stopped.
    assert "front trial 1" in RULES.stop(members, [5e5], [0.10, 0.20])
    # Ahead of it at epoch 1: not dominated, goes on.
    assert RULES.stop(members, [5e5], [0.25, 0.20]) is None
    # Just as far behind, but cheaper than every member: it may still join the front's cheap end.
    assert RULES.stop(members, [5e4], [0.10, 0.20]) is None
    # Within 5% of a member's cost counts as no costlier (measured costs are noisy).
    assert RULES.stop(members, [0.96e5], [0.10, 0.20]) is not None
    # Never judged on fewer than min_epochs epochs, nor when behind by less than the margin.
    assert RULES.stop(members, [5e5], [0.10]) is None
    assert RULES.stop(members, [5e5], [0.19, 0.29]) is None


@pytest.mark.slow
@pytest.mark.parametrize(("objectives", "sampler"), [("accuracy,params", "nsga2"), ("macro_f1,latency", "tpe")])
def test_a_multi_objective_study_yields_a_front(objectives, sampler, tmp_path, tiny_data, monkeypatch, capsys):
    study = tiny_study(tmp_path, tiny_data, monkeypatch, objectives=objectives, trials=3, epochs=2,
                       sampler={"name": sampler})
    names = objectives.split(",")
    assert [d.name.lower() for d in study.directions] == directions(names)
    assert study.metric_names == names  # the dashboard's and the report's axis labels
    members = front(study)
    assert members and all(len(t.values) == 2 for t in members)
    for t in members:
        assert t.values[1] == t.user_attrs[names[1]] > 0  # the cost is the one measured and stored
        assert t.values[0] == t.user_attrs[names[0]]
        assert len(t.user_attrs["curve"]) == 2
    storage = ["--storage", f"sqlite:///{tmp_path / 's.db'}", "--study", "t"]
    assert main(["best", *storage]) == 0
    out = capsys.readouterr().out
    assert f"Pareto front of 't': {len(members)} trials" in out and f"trial {members[0].number:>4}" in out
    if names[1] == "latency":
        assert "images/s" in out
    else:  # retrain takes a trial of the front by number, and refuses to guess one
        monkeypatch.setattr(search.after.rebuild, "get_space", lambda name: TinySpace)
        assert main(["retrain", *storage, "--device", "cpu"]) == 2
        assert "several objectives; choose a Pareto member" in capsys.readouterr().err
        assert main(["retrain", *storage, "--trial", str(members[0].number), "--device", "cpu",
                     "--out", str(tmp_path / "model")]) == 0
        assert (tmp_path / "model" / "model.safetensors").is_file()


@pytest.mark.slow
def test_rule_1_prunes_inside_a_real_study(tmp_path, tiny_data, monkeypatch):
    small = {"n_layers": 1, "units_l0": 8, "optimizer": "adam", "lr": 0.01}
    large = {"n_layers": 2, "units_l0": 32, "units_l1": 32, "optimizer": "adam", "lr": 0.01}
    monkeypatch.setattr(TinySpace, "SEED_DESIGNS", {"small": small, "large": large})
    study = tiny_study(tmp_path, tiny_data, monkeypatch, objectives="accuracy,params", trials=2, epochs=1,
                       front={"max_cost_ratio": 2.0})
    first, second, *rest = study.trials
    assert first.state == optuna.trial.TrialState.COMPLETE
    assert second.state == optuna.trial.TrialState.PRUNED and second.params == large
    assert second.user_attrs["pruned_reason"].startswith("rejected before training: params")
    assert "epochs" not in second.user_attrs  # it never trained
    assert rejected(second) and counted(study)[0] == 2  # and took no budget: a third trial ran


@pytest.mark.slow
def test_a_single_objective_study_is_not_continued_as_a_multi_objective_one(tmp_path, tiny_data, monkeypatch):
    tiny_study(tmp_path, tiny_data, monkeypatch, trials=1, epochs=1)
    with pytest.raises(UserError, match="study 't' .*use --study to name a new one"):
        tiny_study(tmp_path, tiny_data, monkeypatch, trials=2, epochs=1, objectives="accuracy,params")
