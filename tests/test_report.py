"""The report's study half on made-up studies (ask/tell, no training): pruned trials marked and
rejected ones counted apart, the Pareto front of a multi-objective study, importances with the
number of trials behind them, the figures that use them, and a note where a plot cannot be drawn."""

from __future__ import annotations

import warnings

import optuna
import plotly.graph_objects as go
import pytest

from gic_common.errors import UserError
from gic_common.knobs import TRUSTED_FROM
from search.after.rebuild import choose_trial
from search.shown import report
from search.shown.report import learning_curves, study_sections, write_report
from search.trial.budget import reject

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
    for curve in ([0.2, 0.4, 0.5], [0.1, 0.3]):  # what search/trial/pareto.py keeps, as Optuna takes no report
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


def _figure(study: optuna.Study, title_start: str):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna's own experimental-API warnings
        return next(draw() for title, draw in study_sections(study) if title.startswith(title_start))


def _one_param_decides(n_trials: int, n_params: int = 20) -> optuna.Study:
    """Many parameters, of which p7 alone decides the value; trial 0 is the best one."""
    study = optuna.create_study(direction="maximize", sampler=optuna.samplers.RandomSampler(seed=0))
    for i in range(n_trials):
        trial = study.ask({f"p{j}": FLOAT for j in range(n_params)})
        study.tell(trial, 2.0 if i == 0 else trial.params["p7"])
    return study


def test_importances_say_how_many_trials_they_rest_on():
    few = _figure(_study(["maximize"]), "Parameter importances").layout.title.text
    assert "only 5 completed trials" in few and "too few" in few
    enough = _figure(_one_param_decides(TRUSTED_FROM), "Parameter importances").layout.title.text
    assert f"from {TRUSTED_FROM} completed trials" in enough and "too few" not in enough


def test_parallel_coordinates_show_the_most_important_parameters_only():
    fig = _figure(_one_param_decides(40), "Parallel coordinates")
    axes = list(fig.layout.xaxis.ticktext)[1:]  # Optuna 5 draws one x tick an axis; the first is the objective
    assert len(axes) == 8 and "p7" in axes  # of 20


def test_the_slice_plot_marks_the_best_trial_in_every_panel():
    study = _one_param_decides(12)
    fig = _figure(study, "Slices")
    best = [t for t in fig.data if t.name == "best: trial 0"]
    panels = [t for t in fig.data if t.name == "Feasible Trial"]
    assert len(best) == len(panels) == 4
    for star, panel in zip(best, panels, strict=True):
        assert star.xaxis == panel.xaxis and list(star.y) == [2.0]
        assert star.marker.symbol == "star"
        param = fig.layout[(star.xaxis or "x").replace("x", "xaxis", 1)].title.text
        assert list(star.x) == [study.trials[0].params[param]]


def test_trials_rejected_untrained_are_their_own_kind(tmp_path):
    study = optuna.create_study(direction="maximize")
    for kind in ("complete", "pruned", "rejected", "complete"):
        trial = study.ask({"a": FLOAT})
        if kind == "rejected":  # turned away before its first epoch, as search/trial/objective.py does
            reject(trial, "rejected before training: too costly")
            study.tell(trial, state=optuna.trial.TrialState.PRUNED)
            continue
        trial.report(0.3, 1)
        study.tell(trial, 0.5 if kind == "complete" else None,
                   state=optuna.trial.TrialState.PRUNED if kind == "pruned" else optuna.trial.TrialState.COMPLETE)
    title = learning_curves(study).layout.title.text
    assert "(1 pruned trial dotted grey" in title and "1 rejected untrained" in title
    page = write_report(study, tmp_path / "r.html", progress=lambda *a: None).read_text()
    assert "<b>4 trials</b> (2 complete, 1 pruned, 1 rejected untrained)" in page


def test_a_study_with_no_completed_trial_leaks_no_optuna_warnings(tmp_path, capfd):
    study = optuna.create_study(direction="maximize")
    study.tell(study.ask({"a": FLOAT}), state=optuna.trial.TrialState.FAIL)
    study.tell(study.ask({"a": FLOAT}), state=optuna.trial.TrialState.PRUNED)
    capfd.readouterr()
    page = write_report(study, tmp_path / "r.html", progress=lambda *a: None).read_text()
    assert "[W " not in capfd.readouterr().err  # "There are no complete trials." once a plot
    assert "no completed trial yet" in page


def test_a_report_past_its_deadline_names_the_sections_it_did_not_draw(tmp_path, monkeypatch, capsys):
    # `run --time` hands the report the job's end: a section that would not end by then, at the pace of
    # the slowest drawn so far, is named, not drawn (one begun just before the end would overrun it).
    study = _study(["maximize"])
    sections = study_sections(study)
    now = [0.0]
    monkeypatch.setattr(report, "monotonic", lambda: now[0])  # the report's own clock only, not every caller's
    drawn = []

    def two_seconds_a_section(i, n, title) -> None:
        drawn.append(title)
        now[0] += 2.0

    # sections begin at 0 and 2 s; the third would begin at 4 s and end at 6, past the deadline at 5
    page = write_report(study, tmp_path / "r.html", progress=two_seconds_a_section, deadline=5.0)
    text = page.read_text()
    assert drawn == [title for title, _ in sections[:2]]
    assert text.count("not drawn: the time given ran out") == len(sections) - 2
    assert "python -m search report --study" in text
    said = capsys.readouterr().err
    assert f"ran out before {len(sections) - 2} of the report's {len(sections)} sections" in said


def test_the_models_one_time_loading_is_not_the_pace_of_the_sections_after_it(tmp_path, monkeypatch):
    # The model's sections share one load (1.6 s in a 12-minute job) and each draws in 0.01-0.14 s;
    # counted as the first model section's time, the load made the report leave the other four undrawn.
    study = _study(["maximize"])
    now, loads = [0.0], []

    def taking(seconds, then=None):
        def draw():
            now[0] += seconds
            return then() if then else go.Figure()
        return draw

    monkeypatch.setattr(report, "monotonic", lambda: now[0])
    monkeypatch.setattr(report, "study_sections", lambda s: [("S", taking(0.1))])
    monkeypatch.setattr(report, "model_sections", lambda d, device: [
        ("", taking(3.0, lambda: loads.append(1))), ("A", taking(0.1)), ("B", taking(0.1))])
    steps = []
    page = write_report(study, tmp_path / "r.html", model_dir=tmp_path, deadline=4.0,
                        progress=lambda i, n, title: steps.append((i, n, title))).read_text()
    assert "not drawn" not in page and page.count("<section>") == 3 and loads == [1]
    assert steps == [(1, 3, "S"), (2, 3, "A"), (3, 3, "B")]  # the load waits under the section it serves
    # with no time for the load at the pace so far, it is not begun, and the sections it serves are named
    now[0], loads[:] = 0.0, []
    page = write_report(study, tmp_path / "r.html", model_dir=tmp_path, deadline=0.15,
                        progress=lambda *a: None).read_text()
    assert loads == [] and page.count("not drawn: the time given ran out") == 2


def test_on_a_terminal_the_progress_rewrites_one_line_and_erases_a_longer_titles_tail(tmp_path, monkeypatch):
    import io

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    err = Terminal()
    monkeypatch.setattr(report.sys, "stderr", err)
    write_report(_study(["maximize"]), tmp_path / "r.html")
    shown = err.getvalue()
    steps = shown.split("\r")[1:]  # each section's line begins by going back to the line's start
    assert len(steps) >= 5 and all(step.startswith("building report [") for step in steps)
    assert all(step.rstrip("\n").endswith("\x1b[K") for step in steps)  # a shorter title leaves no tail
    assert shown.endswith("\x1b[K\n")  # the rewritten line is ended once, at the end
