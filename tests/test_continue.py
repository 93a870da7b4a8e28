"""Running `run` again continues the study with the settings it was made with: a flag left off keeps
the recorded value (it took the preset's), and a flag given changes it with one line saying so."""

from __future__ import annotations

import json

import optuna

from search.cli import main
from search.config import StudyConfig
from search.data.options import DataOptions


def test_a_continued_study_keeps_its_settings_unless_a_flag_changes_them(small_data, tmp_path, capfd):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    # --workers 0 makes the study ready (settings recorded, designs queued) without training a trial.
    base = ["run", "cnn", "--data", str(small_data), "--storage", storage, "--study", "s", "--workers", "0"]
    assert main([*base, "--epochs", "15", "--trials", "7", "--pruner", "median", "--image-size", "20"]) == 0
    capfd.readouterr()

    assert main(base) == 0  # no flags: everything as recorded (it became the preset's 20 epochs)
    attrs = optuna.load_study(study_name="s", storage=storage).user_attrs
    assert (attrs["epochs"], attrs["trials"], attrs["pruner"]) == (15, 7, {"name": "median"})
    assert attrs["data_options"]["image_size"] == [20, 20]  # it was refused as a different study
    assert "changes" not in capfd.readouterr().err

    assert main([*base, "--epochs", "4", "--trials", "7"]) == 0  # the same trials is no change
    attrs = optuna.load_study(study_name="s", storage=storage).user_attrs
    assert (attrs["epochs"], attrs["trials"], attrs["pruner"]) == (4, 7, {"name": "median"})
    said = [line for line in capfd.readouterr().err.splitlines() if "changes" in line]
    assert said == ["study 's': the command line changes epochs 15 -> 4; its other settings stay as recorded"]


def test_preparing_a_continued_warm_started_study_opens_its_storage_once(small_data, tmp_path, monkeypatch):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    source = optuna.create_study(study_name="src", storage=storage, direction="maximize")
    source.set_user_attr("space", "cnn")
    source.add_trial(optuna.trial.create_trial(params={"x": 1}, value=0.5,
                                               distributions={"x": optuna.distributions.IntDistribution(0, 9)}))
    opened = []

    class Counted(optuna.storages.RDBStorage):
        def __init__(self, *args, **kwargs):
            opened.append(args[0])
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(optuna.storages, "RDBStorage", Counted)
    base = ["run", "cnn", "--data", str(small_data), "--storage", storage, "--study", "s", "--workers", "0"]
    assert main([*base, "--from-study", "src"]) == 0  # the warm start reads the storage the study is made in
    assert main(base) == 0  # the continued study's recorded settings come from it too
    assert len(opened) == 2  # one handle a command: not one to read the recorded settings, one to warm
    assert optuna.load_study(study_name="s", storage=storage).trials[0].user_attrs["design"] == "src#0"


def test_a_recorded_study_reads_back_its_data_options_and_records_them_alike(tmp_path):
    recorded = {"layout": "folders", "image_size": [96, 64], "task": "binary", "val_fraction": 0.2,
                "test_fraction": 0.05, "split_seed": 3}  # what `run` has always recorded
    study = optuna.create_study(study_name="old", storage=f"sqlite:///{tmp_path / 's.db'}")
    for key, value in {"space": "cnn", "data": str(tmp_path), "epochs": 2, "seed": 3, "data_options": recorded}.items():
        study.set_user_attr(key, value)
    settings = StudyConfig.of_study(study)
    assert settings.data_options == DataOptions("folders", (96, 64), "binary", 0.2, 0.05, split_seed=3)
    assert json.loads(json.dumps(settings.to_attrs("binary")))["data_options"] == recorded
