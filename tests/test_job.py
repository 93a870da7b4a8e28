"""`run --time T`: the whole job (search, the winner's final run, the submission) in one command."""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import optuna
import pytest
import torch

from gic_common.knobs import EXIT_SECONDS
from search.after.rebuild import rebuild_trial
from search.cli import main
from search.job import whole
from search.trial.train import held_position


@pytest.mark.slow
def test_the_whole_job_searches_then_trains_the_winner_for_the_time_left(tiny_data, tmp_path, capsys,
                                                                     monkeypatch):
    monkeypatch.setattr(whole, "FRESH_FROM", 2)  # off by default: a final run of twice its trial's epochs starts afresh
    name = "job-test"
    storage = f"sqlite:///{tmp_path / 'job.db'}"
    monkeypatch.chdir(tmp_path)  # the submission and the report go to the working folder
    assert main(["run", "cnn", "--data", str(tiny_data), "--time", "60", "--epochs", "2", "--storage", storage,
                 "--study", name, "--device", "cpu", "--no-progress"]) == 0
    out, err = capsys.readouterr()
    study = optuna.load_study(study_name=name, storage=storage)
    model = Path(study.user_attrs["model_dir"])
    meta = json.loads((model / "model.json").read_text())
    winner = next(t for t in study.trials if t.number == meta["trial"])  # the recommended design, or a clear winner
    # the time left trains far more epochs than the trial's 2, so the final run is a plain run from scratch
    assert winner.user_attrs["epochs"] == 2 and meta["continued_after_epochs"] == 0 and meta["epochs"] >= 4
    planned = int(err.split("final run: trial")[1].split(" epochs from scratch")[0].split()[-1])
    assert planned >= 4 and "continuing from its" not in err
    # by default it trains on the validation images too, and the job says its score is not held out
    assert meta["train_on"] == "train+val" and "trained on train+val, so it has no held-out score" in out
    assert "nan" not in out and meta["metrics"] == {"held_out": False}  # the images it trained on: not scored
    assert "kept for the submission and the report" in err
    assert err.index("the whole job has 60s") < err.index(f"final run: trial {winner.number}")
    assert "whole job" in err.split("final run: trial")[1]
    # the last line says where the seconds went, phase by phase, and the phases are the whole job
    took, phases = out.split("the whole job took ")[1].split("\n")[0].split(" (")
    spent = dict(p.rsplit(" ", 1) for p in phases.rstrip(")").split(", "))
    assert list(spent) == ["start", "data and search", "final run", "submission", "report"]
    assert abs(sum(float(s.rstrip("s")) for s in spent.values()) - float(took.split("s of")[0])) <= 1
    with (tmp_path / "submissions" / f"{name}.csv").open() as f:
        rows = list(csv.DictReader(f))
    with (tiny_data / "test.csv").open() as f:
        assert [r["Image"] for r in rows] == [r["Image"] for r in csv.DictReader(f)]
    assert model.parent == tmp_path / "runs" / name


@pytest.mark.slow
def test_a_final_run_continues_from_its_trials_peak_by_default(tiny_data, tmp_path, capsys, monkeypatch):
    import search.shown.report

    name = "job-test"
    storage = f"sqlite:///{tmp_path / 'job.db'}"
    monkeypatch.chdir(tmp_path)
    drawn, deadlines = search.shown.report.write_report, []
    monkeypatch.setattr(search.shown.report, "write_report",
                        lambda *a, deadline, **kw: deadlines.append(deadline) or drawn(*a, deadline=deadline, **kw))
    began = time.monotonic()
    assert main(["run", "cnn", "--data", str(tiny_data), "--time", "30", "--epochs", "2", "--storage", storage,
                 "--study", name, "--device", "cpu", "--no-progress"]) == 0
    # the report stops drawing before T by the interpreter's exit, which the user's wait includes
    assert len(deadlines) == 1 and 0 <= deadlines[0] - (began + 30 - EXIT_SECONDS) < 1
    err = capsys.readouterr().err
    study = optuna.load_study(study_name=name, storage=storage)
    meta = json.loads((Path(study.user_attrs["model_dir"]) / "model.json").read_text())
    winner = next(t for t in study.trials if t.number == meta["trial"])
    # the final run started from the weights the winner's trial held at its schedule's peak (the end of
    # its first epoch of 2: its last brought the rate down for its verdict), and trained past them
    assert winner.user_attrs["epochs"] == 2 and meta["continued_after_epochs"] == winner.user_attrs["held_epochs"] == 1
    assert meta["epochs"] > 2 and "more epochs: its schedule follows the clock" in err
    assert "continuing from its 1 search epoch," in err
    train = rebuild_trial(study, winner.number, "cpu").config.train
    assert winner.user_attrs["held_at"] == held_position(train, 1, 2) > 0  # a schedule with a warm-up
    assert "its rate at the peak its trial held there" in err  # one schedule, no second warm-up


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


@pytest.mark.slow
def test_a_final_run_under_a_deadline_trains_to_it_whatever_the_plan_said(trained_study, tmp_path, capsys):
    import time

    from search.after.retrain import retrain

    study = optuna.load_study(study_name=trained_study["study"], storage=trained_study["storage"])
    for planned, seconds in ((5, 0.01), (3, 4.0)):  # a plan far too long, then one far too short
        ends = time.monotonic() + seconds
        out, _ = retrain(study, None, "train", tmp_path / "model", "cpu", epochs=planned, remember=False,
                         deadline=ends)
        trained = json.loads((out / "model.json").read_text())["epochs"]  # what was trained, not what was planned
        assert time.monotonic() < ends + 2  # the last step, a pass and the save may run past it, no more
        err = capsys.readouterr().err
        assert f"the time given ended the schedule after {trained} epochs (about {planned} were planned)" in err
        assert (trained == 1) if planned == 5 else (trained > 3)  # tiny images: 4 s hold many epochs


@pytest.mark.slow
def test_a_final_run_on_train_and_val_scores_only_its_last_epoch_and_says_it_is_not_held_out(
        trained_study, tmp_path, capsys):
    from search.after.retrain import retrain

    study = optuna.load_study(study_name=trained_study["study"], storage=trained_study["storage"])
    out, metrics = retrain(study, None, "train+val", tmp_path / "model", "cpu", epochs=3, remember=False)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip().startswith("epoch")]
    assert len(lines) == 3 and "accuracy" not in lines[0] + lines[1] and "accuracy" in lines[2]
    meta = json.loads((out / "model.json").read_text())
    assert meta["train_on"] == "train+val" and metrics["held_out"] is False
    # under the job's deadline the images it trains on are not scored at all: those seconds are training's
    out, metrics = retrain(study, None, "train+val", tmp_path / "model", "cpu", epochs=3, remember=False,
                           score_trained=False)
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip().startswith("epoch")]
    assert len(lines) == 3 and not any("accuracy" in line for line in lines)
    assert metrics == {"held_out": False} and json.loads((out / "model.json").read_text())["metrics"] == metrics


@pytest.mark.slow
def test_with_no_time_left_for_an_epoch_the_search_weights_are_the_model(trained_study, tmp_path):
    from safetensors.torch import load_file

    from search.after.rebuild import rebuild_trial
    from search.after.retrain import retrain

    study = optuna.load_study(study_name=trained_study["study"], storage=trained_study["storage"])
    again = rebuild_trial(study, None, "cpu")
    state = again.model(seed=12345).state_dict()  # weights no seed of the trial would start from
    out, _ = retrain(study, None, "train", tmp_path / "model", "cpu", epochs=0, init_state=state, remember=False)
    saved = load_file(out / "model.safetensors")
    assert saved.keys() == state.keys() and all(torch.equal(saved[k], v) for k, v in state.items())
    assert json.loads((out / "model.json").read_text())["epochs"] == again.trial.user_attrs["epochs"]


@pytest.mark.slow
def test_every_queued_design_gets_its_trial_past_the_searchs_share(tiny_data, tmp_path, capsys, monkeypatch):
    # A share that holds no trial at all: the recommended and seed designs still run, as the final run's
    # fallback, and no draw does (the share is spent).
    from dataclasses import replace

    import search.config

    preset = search.config.load_preset  # the command imports it when it runs
    monkeypatch.setattr(search.config, "load_preset", lambda *a: replace(preset(*a), search_share=0.001))
    monkeypatch.chdir(tmp_path)
    storage = f"sqlite:///{tmp_path / 'job.db'}"
    assert main(["run", "cnn", "--data", str(tiny_data), "--time", "60", "--epochs", "1", "--storage", storage,
                 "--study", "share", "--device", "cpu", "--no-progress"]) == 0
    study = optuna.load_study(study_name="share", storage=storage)
    # each trained (the seed design's may stop after its first epoch, a challenger level with the first)
    ran = [t for t in study.trials if t.intermediate_values]
    assert [t.user_attrs.get("design") for t in ran] == ["recommended", "seed000-cnn"]
    assert study.trials[0].state == optuna.trial.TrialState.COMPLETE
    assert "the search's share of the job is spent" in capsys.readouterr().err
