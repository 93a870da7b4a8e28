"""Retrain on several seeds, export an ensemble with TTA, artifacts on their trials, the HTML report in
a real Chromium: all on one tiny trained study (the session's `trained_study`)."""

from __future__ import annotations

import csv
import json
import re
import statistics
from html.parser import HTMLParser

import optuna
import pytest
from PIL import Image

from search.after.export import export
from search.after.top_ensemble import ensemble_top, top_trials
from search.artifacts import list_artifacts
from search.cli import main
from search.shown.report import write_report

pytestmark = pytest.mark.slow


class _ScriptSources(HTMLParser):
    """The src of every <script> tag (a script's own text is not parsed as tags)."""

    def __init__(self):
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "script" and dict(attrs).get("src"):
            self.sources.append(dict(attrs)["src"])


def _study(trained) -> optuna.Study:
    return optuna.load_study(study_name=trained["study"], storage=trained["storage"])


def test_retrain_on_seeds_reports_mean_and_spread_and_attaches_checkpoints(trained_study):
    listing = json.loads((trained_study["model"] / "ensemble.json").read_text())
    assert all(p.startswith("seed-") for p in listing["members"])  # relative: the folder moves as a whole
    runs = [json.loads((trained_study["model"] / p / "model.json").read_text()) for p in listing["members"]]
    assert len(runs) == 2 and runs[0]["seed"] + 1 == runs[1]["seed"]
    accs = [r["metrics"]["accuracy"] for r in runs]
    assert listing["metrics"]["accuracy"] == pytest.approx(statistics.fmean(accs))
    assert listing["metrics"]["accuracy_std"] == pytest.approx(statistics.stdev(accs))
    study = _study(trained_study)
    best = study.best_trial.number
    assert runs[0]["trial"] == best and runs[0]["seed"] == study.best_trial.user_attrs["seed"]
    names = list_artifacts(study, best)
    assert names.count("model.safetensors") == 2 and names.count("model.json") == 2


def test_export_ensemble_with_tta_writes_submission_and_attaches_it(trained_study, tiny_data):
    study = _study(trained_study)
    root = trained_study["root"]
    folder = ensemble_top(study, 2, device_name="cpu", storage_url=trained_study["storage"], runs=root / "runs")
    members = json.loads((folder / "ensemble.json").read_text())
    assert members["trials"] == [t.number for t in top_trials(study, 2)]
    out = export(folder, root / "sub.csv", device_name="cpu", tta=True, study=study,
                 storage_url=trained_study["storage"])
    rows = list(csv.reader(out.open()))
    test_names = [r[0] for r in list(csv.reader((tiny_data / "test.csv").open()))[1:]]
    assert rows[0] == ["Image", "Class"] and [r[0] for r in rows[1:]] == test_names
    for number in members["trials"]:
        assert "sub.csv" in list_artifacts(study, number)
    # A second request reuses the saved members instead of training them again.
    stamp = [(root / "runs" / f"trial-{n}" / "model.safetensors").stat().st_mtime_ns for n in members["trials"]]
    ensemble_top(study, 2, device_name="cpu", runs=root / "runs")
    assert stamp == [(root / "runs" / f"trial-{n}" / "model.safetensors").stat().st_mtime_ns
                     for n in members["trials"]]
    with pytest.raises(Exception, match="completed trials"):
        ensemble_top(study, 99, device_name="cpu", runs=root / "runs")


def test_export_cli_rejects_ensemble_with_model(trained_study, capsys):
    assert main(["export", *trained_study["common"], "--ensemble", "2", "--model", "x"]) == 2
    assert "not both" in capsys.readouterr().err


@pytest.mark.browser
def test_report_is_self_contained_and_renders_in_chromium(trained_study, chromium, capsys):
    study = _study(trained_study)
    out = trained_study["root"] / "report.html"
    steps = []
    write_report(study, out, model_dir=trained_study["model"], device_name="cpu",
                 storage_url=trained_study["storage"], progress=lambda i, n, title: steps.append((i, n, title)))
    assert [s[0] for s in steps] == list(range(1, len(steps) + 1)) and steps[-1][0] == steps[-1][1] == 11
    page = out.read_text()
    external = _ScriptSources()
    external.feed(page)
    assert external.sources == [] and page.count("<script") >= 12  # plotly.js inlined: works offline
    assert "not drawn" not in page
    assert "report.html" in list_artifacts(study, study.best_trial.number)

    dom = chromium(out.as_uri())
    assert re.search(r'id="study-name">tiny<', dom)
    assert dom.count('class="plot-container plotly"') == 11  # every figure was drawn by plotly.js
    for title in ("Optimization History Plot", "Confusion matrix", "Per-class F1", "Misclassified validation",
                  "First-layer filters", "First-layer activations", "Learning curves"):
        assert title in dom, title
    shot = trained_study["root"] / "report.png"
    chromium(out.as_uri(), screenshot=shot, size="1280,3000")
    with Image.open(shot) as im:
        assert im.format == "PNG" and im.size == (1280, 3000)
        assert len(im.convert("RGB").getcolors(1 << 20) or range(1 << 20)) > 200  # plots, not a blank page

    assert main(["report", *trained_study["common"], "--out", str(out), "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    # Not a terminal: a line a section, none of them carriage returns over one another.
    built = [line for line in err.splitlines() if line.startswith("building report [")]
    assert [line.split("]")[0] for line in built] == [f"building report [{i}/11" for i in range(1, 12)]
    assert "\r" not in err
