"""`report`: one self-contained HTML file (plotly.js inlined: it opens offline) on a study and its final model.

The study half is Optuna's own plotly figures; the model half (search.shown.model_plots) judges the
retrained model on the validation split. A plot that cannot be drawn (too few trials for
importances, no retrained model yet) becomes a one-line note in its place, never a failed report.
"""

from __future__ import annotations

import contextlib
import html
import json
import sys
import warnings
from collections.abc import Callable
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from time import monotonic

import optuna
import optuna.visualization as vis
import plotly.graph_objects as go
import plotly.offline
from optuna.trial import FrozenTrial, TrialState

from gic_common.errors import UserError
from gic_common.knobs import PARALLEL_AXES, SLICES
from search.after.ensemble import member_dirs
from search.after.saving import write_atomic
from search.artifacts import attach
from search.console import log
from search.shown import model_plots
from search.shown.importance import caveat, importances
from search.trial.budget import rejected
from search.trial.device import resolve_device
from search.trial.objective import stored_curve

__all__ = ["learning_curves", "study_sections", "write_report"]

Section = tuple[str, Callable[[], go.Figure]]


def learning_curves(study: optuna.Study) -> go.Figure:
    """Every trial's per-epoch value; pruned trials dashed and grey with an x where they stopped.

    A trial rejected before training has no curve; the title counts it apart from the pruned ones,
    as the budget does (search/trial/budget.py)."""
    fig = go.Figure()
    for t in study.trials:
        values = stored_curve(t)  # a multi-objective trial reports none to Optuna: its own record
        if not values:
            continue
        steps = list(range(1, len(values) + 1))
        pruned = t.state == TrialState.PRUNED
        fig.add_trace(go.Scatter(
            x=steps, y=values, name=f"trial {t.number}{' (pruned)' if pruned else ''}",
            mode="lines+markers", legendgroup="pruned" if pruned else "complete",
            line={"dash": "dot", "color": "rgba(150,150,150,0.8)"} if pruned else {},
            marker={"symbol": ["circle"] * (len(steps) - 1) + ["x"], "size": [4] * (len(steps) - 1) + [10]}
            if pruned else {"size": 4},
        ))
    metric = study.user_attrs.get("metric", "value")
    kinds = _kinds(study)
    untrained = f"; {kinds['rejected untrained']} rejected untrained, no curve" if kinds["rejected untrained"] else ""
    fig.update_layout(title=f"Learning curves ({_trials(kinds['pruned'], 'pruned')} dotted grey, x where pruned"
                            f"{untrained})",
                      xaxis_title="epoch", yaxis_title=f"validation {metric}")
    return fig


def _kinds(study: optuna.Study) -> dict[str, int]:
    """Trials by state, with those rejected before training counted apart from the pruned ones."""
    counts = {s.name.lower(): 0 for s in TrialState}
    counts["rejected untrained"] = 0
    for t in study.get_trials(deepcopy=False):
        counts["rejected untrained" if rejected(t) else t.state.name.lower()] += 1
    return counts


def _trials(n: int, kind: str) -> str:
    return f"{n} {kind} trial{'' if n == 1 else 's'}"


class _Ranking:
    """The study's parameters, most important first, computed once for the figures that need them."""

    def __init__(self, study: optuna.Study, target=None):
        self.study, self.target, self._names = study, target, None

    def top(self, k: int) -> list[str]:
        if self._names is None:
            try:
                self._names = list(importances(self.study, self.target))
            except (ValueError, RuntimeError):  # too few trials: the most sampled parameters instead
                counts: dict[str, int] = {}
                for t in self.study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
                    for name in t.params:
                        counts[name] = counts.get(name, 0) + 1
                self._names = sorted(counts, key=counts.get, reverse=True)
        return self._names[:k]


def _importance_plot(study: optuna.Study, target, **kw) -> go.Figure:
    fig = vis.plot_param_importances(study, target=target, **kw)
    fig.update_layout(title=f"{fig.layout.title.text} {caveat(study)}")  # a young study's ranking is a guess
    return fig


def _best_marked(fig: go.Figure, best: FrozenTrial | None) -> go.Figure:
    """Marks the best trial in every slice: Optuna colours points by trial number, which draws an
    early best trial (often a seed design) in the palest colour of all."""
    if best is None:
        return fig
    for trace in list(fig.data):
        numbers = list(trace.marker.color) if trace.name == "Feasible Trial" and trace.marker.color is not None else []
        if best.number not in numbers:
            continue
        i = numbers.index(best.number)
        fig.add_trace(go.Scatter(
            x=[trace.x[i]], y=[trace.y[i]], xaxis=trace.xaxis, yaxis=trace.yaxis, mode="markers",
            name=f"best: trial {best.number}", showlegend=not any(t.name.startswith("best:") for t in fig.data),
            marker={"symbol": "star", "size": 16, "color": "#d62728", "line": {"width": 1, "color": "black"}},
        ))
    # The legend's default place is over the colour bar's title; above the panels it is clear.
    fig.update_layout(legend={"orientation": "h", "yanchor": "bottom", "y": 1.02, "xanchor": "right", "x": 1})
    return fig


def _best_trial(study: optuna.Study) -> FrozenTrial | None:
    """The best trial, or for several objectives the best in the first one (what the plots show)."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None
    pick = max if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE else min
    return pick(complete, key=lambda t: t.values[0])


def study_sections(study: optuna.Study) -> list[Section]:
    # Axes are labelled with the study's metric, not Optuna's "Objective Value".
    metric = study.user_attrs.get("metric")
    label = {"target_name": metric} if metric else {}
    kw: dict = dict(label)
    ranked_by = None  # importances rank parameters by how they lead to the best values
    if len(study.directions) > 1:
        # Optuna's single-objective plots need a target on a multi-objective study: the first objective.
        kw["target"] = lambda t: t.values[0]
        # PED-ANOVA takes lower as better whenever a target is given: a maximised one is negated.
        ranked_by = kw["target"]
        if study.directions[0] == optuna.study.StudyDirection.MAXIMIZE:
            ranked_by = lambda t: -t.values[0]  # noqa: E731
    ranking = _Ranking(study, ranked_by)
    sections: list[Section] = [("Optimisation history", lambda: vis.plot_optimization_history(study, **kw))]
    if len(study.directions) > 1:
        sections.append(("Pareto front", lambda: vis.plot_pareto_front(study)))
    sections += [
        ("Parameter importances (PED-ANOVA)", lambda: _importance_plot(study, ranked_by, **label)),
        # Every parameter is an axis otherwise: some 48 in the cnn space, their labels on top of each other.
        (f"Parallel coordinates of the {PARALLEL_AXES} most important parameters",
         lambda: vis.plot_parallel_coordinate(study, params=ranking.top(PARALLEL_AXES) or None, **kw)),
        ("Slices of the most important parameters",
         lambda: _best_marked(vis.plot_slice(study, params=ranking.top(SLICES) or None, **kw), _best_trial(study))),
        ("Learning curves", lambda: learning_curves(study)),
        ("Trials over time", lambda: vis.plot_timeline(study)),
    ]
    return sections


def model_sections(model_dir: Path, device_name: str) -> list[Section]:
    """The model's sections, after an untitled step that loads the model and predicts its validation
    images once for all of them (``write_report`` times that step apart: it is no section's pace)."""
    view: list[model_plots.ModelView] = []

    def load() -> None:
        if not view:
            view.append(model_plots.load_view(model_dir, resolve_device(device_name)))

    def lazy(fn):  # a section drawn after a failed load tries the load again, and says why it failed
        def draw() -> go.Figure:
            load()
            return fn(view[0])
        return draw

    return [
        ("", load),
        ("Confusion matrix", lazy(model_plots.confusions)),
        ("Per-class F1", lazy(model_plots.per_class_f1)),
        ("Misclassified validation images", lazy(model_plots.misclassified)),
        ("First-layer filters", lazy(model_plots.first_filters)),
        ("Activation maps", lazy(model_plots.activation_maps)),
    ]


def _summary(study: optuna.Study, model_dir: Path | None) -> str:
    states = ", ".join(f"{n} {kind}" for kind, n in _kinds(study).items() if n)
    lines = [f"<b>{len(study.trials)} trials</b> ({states})"]
    try:
        best = study.best_trial
        metric = html.escape(str(study.user_attrs.get("metric", "value")))
        params = html.escape(", ".join(f"{k}={v}" for k, v in best.params.items()))
        lines.append(f"best: trial {best.number}, {metric} {best.value:.4f}<br><small>{params}</small>")
    except ValueError:
        lines.append("no completed trial yet: the plots below are empty")
    except RuntimeError:  # several objectives: the front is its own section
        pass
    lines.append(f"final model: {html.escape(str(model_dir)) if model_dir else 'none (run retrain)'}")
    return "<br>".join(lines)


@contextmanager
def _quiet():
    """No experimental-API or too-few-trials warnings, nor Optuna's log lines, through the progress line."""
    with warnings.catch_warnings(), _optuna_quiet():
        warnings.simplefilter("ignore")
        yield


@contextmanager
def _optuna_quiet():
    # A young study's plots each log "[W ...] no complete trials" in Optuna's format, through the
    # progress line; the summary says it once.
    level = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(level)


def _progress(i: int, n: int, title: str) -> None:
    line = f"building report [{i}/{n}] {title}"
    if sys.stderr.isatty():  # one line rewritten in place, its tail erased: titles differ in length
        print(f"\r{line}\x1b[K", end="", file=sys.stderr, flush=True)
    else:  # a log file gets a line a section, not one line of carriage returns
        print(line, file=sys.stderr, flush=True)


def write_report(
    study: optuna.Study, out: Path, model_dir: Path | None = None, device_name: str = "auto",
    storage_url: str | None = None, progress: Callable[[int, int, str], None] = _progress,
    deadline: float | None = None,
) -> Path:
    """Writes the study's report page to ``out``. With a ``deadline`` (time.monotonic()), a section that
    would not end by then at the pace of the slowest one drawn so far (the model's one-time loading
    apart) is named on the page but not drawn: `run --time` must end inside its T however slow the
    machine runs, and the page with the sections drawn so far is still the job's report."""
    if model_dir is None and "model_dir" in study.user_attrs:
        model_dir = Path(study.user_attrs["model_dir"])
    sections = study_sections(study)
    if model_dir is not None:
        if not model_dir.is_dir():
            raise UserError(f"{model_dir}: no such model folder")
        sections += model_sections(model_dir, device_name)
    parts, skipped = [], []
    titled = [title for title, _ in sections if title]
    # Seconds of the slowest section drawn so far: one begun later than that before the end overruns it.
    # An untitled step (the model's loading, 1.6 s of a 12-minute job's report) is timed against the end
    # too, but is paid once: counted as the pace, it left 4 sections of 0.01-0.14 s undrawn.
    slowest = 0.0
    shown = 0  # the last section the progress line has named
    titles_seen = 0
    for title, draw in sections:
        began = monotonic()
        late = deadline is not None and began + slowest >= deadline
        titles_seen += bool(title)
        number = titles_seen if title else titles_seen + 1  # the section it draws, or (untitled) prepares
        if not title:
            if not late and number <= len(titled):
                progress(number, len(titled), titled[number - 1])  # the wait belongs to the section it serves
                shown = number
                with contextlib.suppress(ValueError, RuntimeError, UserError), _quiet():  # the sections say why
                    draw()
            continue
        if late:
            skipped.append(title)
            parts.append(f'<section><h2>{html.escape(title)}</h2><p class="note">not drawn: the time given '
                         f'ran out; <code>python -m search report --study {html.escape(study.study_name)}</code> '
                         f'draws every section</p></section>')
            continue
        if shown != number:
            progress(number, len(titled), title)
            shown = number
        try:
            with _quiet():
                fig = draw()
            height = fig.layout.height or 450
            body = fig.to_html(full_html=False, include_plotlyjs=False, default_height=height)
        except (ValueError, RuntimeError, UserError) as e:
            reason = str(e).splitlines()[0] if str(e) else type(e).__name__
            body = f'<p class="note">not drawn: {html.escape(reason)}</p>'
        parts.append(f'<section><h2>{html.escape(title)}</h2>{body}</section>')
        slowest = max(slowest, monotonic() - began)
    if progress is _progress and sys.stderr.isatty():
        print(file=sys.stderr)  # ends the line the progress rewrote
    if skipped:
        log(f"the time given ran out before {len(skipped)} of the report's {len(titled)} sections "
            f"({', '.join(skipped)}); `python -m search report --study {study.study_name}` draws them all")
    name = html.escape(study.study_name)
    page = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Study {name}</title>
<script type="text/javascript">{plotly.offline.get_plotlyjs()}</script>
<style>body{{font-family:sans-serif;margin:2em;max-width:1400px}} section{{margin-top:2em}}
.note{{color:#777}}</style></head>
<body><h1>Study <span id="study-name">{name}</span></h1>
<p id="summary">{_summary(study, model_dir)}</p>
<p><small>written {datetime.now():%Y-%m-%d %H:%M}</small></p>
{"".join(parts)}
</body></html>
"""
    write_atomic(out, lambda p: p.write_text(page, encoding="utf-8"))
    if storage_url is not None:
        number = _report_trial(study, model_dir)
        if number is not None:
            attach(study, number, out, storage_url)
    return out


def _report_trial(study: optuna.Study, model_dir: Path | None) -> int | None:
    """The trial the report belongs to: the final model's (first member's), else the best one."""
    if model_dir is not None:
        meta = member_dirs(model_dir)[0] / "model.json"
        if meta.is_file():
            return json.loads(meta.read_text()).get("trial")
    try:
        return study.best_trial.number
    except (ValueError, RuntimeError):
        return None
