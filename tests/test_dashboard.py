"""`dashboard`: a real optuna-dashboard server on a tiny ask/tell study, loaded in headless Chromium."""

from __future__ import annotations

import re
import select
import subprocess
import sys

import optuna
import pytest
from PIL import Image
from test_samplers_pruners import TinySpace

import search.workers.run
from search.artifacts import attach
from search.cli import main
from search.config import StudyConfig
from search.shown.dashboard import make_dashboard
from search.workers.run import prepare_study

pytestmark = pytest.mark.browser


@pytest.fixture
def fake_study(tmp_path):
    """Five trials with made-up values and learning curves (one pruned): no training needed."""
    storage = f"sqlite:///{tmp_path / 'dash.db'}"
    study = optuna.create_study(study_name="dash-demo", storage=storage, direction="maximize")
    for i in range(5):
        trial = study.ask({"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1, log=True)})
        for epoch in (1, 2):
            trial.report(0.1 * i + 0.05 * epoch, epoch)
        trial.set_user_attr("epoch_seconds", 1.5)
        state = optuna.trial.TrialState.PRUNED if i == 1 else optuna.trial.TrialState.COMPLETE
        study.tell(trial, None if i == 1 else 0.1 * i + 0.1, state=state)
    notes = tmp_path / "notes-for-trial-4.txt"
    notes.write_text("the best trial's notes")
    attach(study, 4, notes, storage)  # a finished trial: the file must still show on its page
    return storage


def _start(storage: str) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "search", "dashboard", "--storage", storage, "--port", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    # The URL is printed only once the port is bound: reading it is the synchronisation.
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    line = proc.stdout.readline() if ready else ""
    match = re.search(r"http://127\.0\.0\.1:\d+/dashboard/studies/\d+", line)
    if not match:
        proc.kill()
        raise AssertionError(f"no URL from the dashboard: {line!r} {proc.stderr.read()[-2000:]}")
    return proc, match.group(0)


def test_dashboard_serves_the_study_and_its_artifacts(fake_study, chromium, tmp_path):
    proc, url = _start(fake_study)
    try:
        dom = chromium(f"{url}/trials?numbers=4")  # the trial list, trial 4 opened
        text = " ".join(re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style).*?</\1>", "", dom, flags=re.S)).split())
        assert "dash-demo" in text
        assert re.search(r"\b5 Trials\b", text), text[:500]
        assert "Trial 1 Pruned" in text and "Trial 4 Complete" in text
        assert "notes-for-trial-4.txt" in text  # its artifact, listed on its page
        shot = tmp_path / "dashboard.png"
        chromium(url, screenshot=shot)
        with Image.open(shot) as im:
            assert im.format == "PNG" and im.size == (1280, 2000)
            assert len(im.convert("RGB").getcolors(1 << 20) or range(1 << 20)) > 50  # a drawn page
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_dashboard_binds_localhost_by_default_and_busy_port_is_one_line(fake_study, capsys):
    server, url, _ = make_dashboard(fake_study, None, port=0)
    try:
        assert server.server_address[0] == "127.0.0.1" and url.startswith("http://127.0.0.1:")
        port = server.server_port
        capsys.readouterr()  # the line naming the study make_dashboard picked
        assert main(["dashboard", "--storage", fake_study, "--port", str(port)]) == 2
        picked, error = capsys.readouterr().err.splitlines()  # the study it took, then one error line
        assert picked == f"study 'dash-demo' (the one run last in {fake_study})"
        assert error.startswith(f"error: cannot listen on 127.0.0.1:{port}")
    finally:
        server.server_close()
    assert main(["dashboard", "--storage", fake_study, "--study", "nope"]) == 2
    assert "no study 'nope'" in capsys.readouterr().err



@pytest.mark.parametrize("host, warned", [("0.0.0.0", True), ("127.0.0.1", False), ("localhost", False)])
def test_dashboard_says_when_the_network_can_reach_it(fake_study, capsys, host, warned):
    server, _, _ = make_dashboard(fake_study, "dash-demo", host=host, port=0)
    server.server_close()
    err = capsys.readouterr().err
    assert ("reachable from the network" in err) == warned
    assert err.count("\n") == warned  # one line, or nothing

@pytest.fixture
def run_made_study(tmp_path, tiny_data, monkeypatch):
    """A study as `run` makes it (no trial trained), then six made-up trials whose conditional
    parameters leave PED-ANOVA regimes of one trial: what a young study looks like."""
    monkeypatch.setattr(search.workers.run, "get_space", lambda name: TinySpace)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    cfg = StudyConfig(space="mlp", data=tiny_data, storage=storage, study="young", trials=6, epochs=1, device="cpu")
    study = prepare_study(cfg).study  # what `run --workers 0` leaves
    lr = optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True)
    units = optuna.distributions.IntDistribution(8, 32, log=True)
    for i in range(6):
        params, dists = {"lr": 10 ** (-3 + i / 3), "units_l0": 8 + i}, {"lr": lr, "units_l0": units}
        if i % 3 == 0:  # units_l1 exists in two trials only; momentum in one
            params["units_l1"], dists["units_l1"] = 16, units
        if i == 5:
            params["momentum"], dists["momentum"] = 0.9, optuna.distributions.FloatDistribution(0.8, 0.99)
        study.add_trial(optuna.trial.create_trial(params=params, distributions=dists, value=0.1 * i))
    return storage


def test_dashboard_names_the_metric_and_keeps_its_console_quiet(run_made_study, chromium):
    proc, url = _start(run_made_study)
    try:
        dom = chromium(url)  # the study page: history, and importances computed by the server
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    text = " ".join(re.sub(r"<[^>]+>", " ", re.sub(r"<(script|style).*?</\1>", "", dom, flags=re.S)).split())
    assert "Trial accuracy" in text and "Objective 0" not in text  # the history plot's axes: trial, metric
    assert "Importance" in text  # the importances were drawn, so PED-ANOVA did run
    console = proc.stderr.read()
    assert "Some regimes" not in console and "Warning" not in console, console[-2000:]
