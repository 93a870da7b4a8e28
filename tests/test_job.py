"""`run --time T`: the whole job (search, the winner's final run, the submission) in one command."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import optuna
import pytest

from search.cli import main
from search.config import PROJECT_ROOT


@pytest.mark.slow
def test_the_whole_job_searches_then_continues_the_winner_for_the_time_left(tiny_data, tmp_path, capsys):
    name = f"job-test-{tmp_path.name}"
    storage = f"sqlite:///{tmp_path / 'job.db'}"
    try:
        assert main(["run", "cnn", "--data", str(tiny_data), "--time", "60", "--epochs", "2", "--storage", storage,
                     "--study", name, "--device", "cpu", "--no-progress"]) == 0
        err = capsys.readouterr().err
        study = optuna.load_study(study_name=name, storage=storage)
        winner = study.best_trial
        model = Path(study.user_attrs["model_dir"])
        meta = json.loads((model / "model.json").read_text())
        assert meta["trial"] == winner.number
        # the final run started from the weights the winner's trial left, and trained past them
        assert meta["continued_after_epochs"] == winner.user_attrs["epochs"] == 2
        assert meta["epochs"] > 2
        assert err.index("the whole job has 60s") < err.index(f"final run: trial {winner.number}")
        assert "continuing from its 2 search epochs" in err and "whole job" in err.split("final run: trial")[1]
        with (PROJECT_ROOT / "submissions" / f"{name}.csv").open() as f:
            rows = list(csv.DictReader(f))
        with (tiny_data / "test.csv").open() as f:
            assert [r["Image"] for r in rows] == [r["Image"] for r in csv.DictReader(f)]
    finally:
        shutil.rmtree(PROJECT_ROOT / "runs" / name, ignore_errors=True)
        (PROJECT_ROOT / "submissions" / f"{name}.csv").unlink(missing_ok=True)


@pytest.mark.parametrize("extra, says", [
    (["--workers", "2"], "--time runs the whole job in this process"),
    (["--objectives", "accuracy,params"], "a multi-objective study ends on a front"),
])
def test_the_whole_job_refuses_what_it_cannot_plan_in_one_line(tiny_data, tmp_path, capsys, extra, says):
    storage = f"sqlite:///{tmp_path / 'job.db'}"
    assert main(["run", "cnn", "--data", str(tiny_data), "--time", "60", "--storage", storage, *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and says in err[0]
    assert not (tmp_path / "job.db").exists()  # nothing was created


def test_time_and_timeout_are_one_or_the_other(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["run", "cnn", "--time", "60", "--timeout", "30"])
    assert stop.value.code == 2 and "not allowed with argument" in capsys.readouterr().err
