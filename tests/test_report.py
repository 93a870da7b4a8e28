"""The report's study half on made-up studies (ask/tell, no training): pruned trials marked, the
Pareto front of a multi-objective study, a note instead of a failure where a plot cannot be drawn."""

from __future__ import annotations

import optuna
import pytest

from search import report
from search.errors import UserError
from search.finalize import choose_trial
from search.report import learning_curves, write_report

FLOAT = optuna.distributions.FloatDistribution(0.0, 1.0)


def _study(directions: list[str]) -> optuna.Study:
    study = optuna.create_study(directions=directions, sampler=optuna.samplers.RandomSampler(seed=0))
    for i in range(8):
        trial = study.ask({"a": FLOAT, "b": FLOAT})
        steps = 1 if i % 3 == 1 else 3
        for epoch in range(1, steps + 1):
            if len(directions) == 1:  # Optuna has no intermediate values for several objectives
                trial.report(trial.params["a"] * epoch, epoch)
        if steps == 1 and len(directions) == 1:
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
        else:
            values = [trial.params["a"], trial.params["b"]][: len(directions)]
            study.tell(trial, values)
    return study


def test_learning_curves_mark_pruned_trials():
    study = _study(["maximize"])
    fig = learning_curves(study)
    pruned = {t.number for t in study.trials if t.state == optuna.trial.TrialState.PRUNED}
    assert len(fig.data) == 8 and pruned
    for trace in fig.data:
        number = int(trace.name.split()[1])
        assert ("(pruned)" in trace.name) == (number in pruned)
        if number in pruned:
            assert trace.line.dash == "dot" and trace.marker.symbol[-1] == "x"
        else:
            assert trace.line.dash is None


def test_learning_curves_of_a_multi_objective_study_come_from_its_own_record():
    study = optuna.create_study(directions=["maximize", "minimize"])
    for curve in ([0.2, 0.4, 0.5], [0.1, 0.3]):  # what search/pareto.py keeps, as Optuna takes no report
        trial = study.ask({"a": FLOAT})
        trial.set_user_attr("curve", curve)
        study.tell(trial, [curve[-1], 1.0])
    fig = learning_curves(study)
    assert [list(t.y) for t in fig.data] == [[0.2, 0.4, 0.5], [0.1, 0.3]]
    assert list(fig.data[0].x) == [1, 2, 3]


def test_multi_objective_report_has_a_pareto_front_and_needs_a_chosen_member(tmp_path):
    study = _study(["maximize", "minimize"])
    steps = []
    out = write_report(study, tmp_path / "r.html", progress=lambda i, n, t: steps.append(t))
    assert "Pareto front" in steps and len(steps) == 7  # no model: the study's plots only
    page = out.read_text()
    assert "Pareto-front Plot" in page and "not drawn" not in page
    with pytest.raises(UserError, match="Pareto member"):
        choose_trial(study, None)


def test_a_plot_that_cannot_be_drawn_is_a_note(tmp_path, monkeypatch):
    study = _study(["maximize"])

    def refuse(_study):
        raise ValueError("no timeline today\nsecond line")

    monkeypatch.setattr(report.vis, "plot_timeline", refuse)
    page = write_report(study, tmp_path / "r.html", progress=lambda *a: None).read_text()
    assert "not drawn: no timeline today</p>" in page and "Optimization History Plot" in page
    with pytest.raises(UserError, match="no such model folder"):
        write_report(study, tmp_path / "r2.html", model_dir=tmp_path / "missing", progress=lambda *a: None)
    assert not (tmp_path / "r2.html").exists()
