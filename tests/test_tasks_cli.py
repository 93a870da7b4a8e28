"""Multilabel and binary studies end to end through run, retrain and export; bad input at the CLI."""

from __future__ import annotations

import csv
import json
import shutil

import optuna
import pytest
from layouts import write_folders, write_helsinki

from search.cli import main

pytestmark = pytest.mark.slow

RUN = ["--trials", "2", "--epochs", "1", "--device", "cpu", "--no-progress", "--image-size", "32"]


def test_multilabel_study_end_to_end(tmp_path, capsys):
    data = tmp_path / "helsinki"
    write_helsinki(data, train=60, test=12)
    common = ["--storage", f"sqlite:///{tmp_path / 's.db'}", "--study", "ml"]
    assert main(["run", "cnn", "--data", str(data), *common, *RUN]) == 0
    study = optuna.load_study(study_name="ml", storage=common[1])
    assert study.user_attrs["task"] == "multilabel" and study.user_attrs["metric"] == "micro_f1"
    assert study.user_attrs["data_options"]["image_size"] == [32, 32]
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert done and all(0 <= t.value <= 1 and len(t.user_attrs["thresholds"]) == 4 for t in done)

    model = tmp_path / "model"
    assert main(["retrain", *common, "--out", str(model), "--device", "cpu"]) == 0
    assert "validation micro_f1" in capsys.readouterr().out
    meta = json.loads((model / "model.json").read_text())
    assert meta["task"] == "multilabel" and meta["num_classes"] == 4 and len(meta["thresholds"]) == 4

    sub = tmp_path / "sub.csv"
    assert main(["export", *common, "--out", str(sub), "--device", "cpu"]) == 0
    rows = list(csv.reader(sub.open()))
    assert rows[0] == ["Image", "baby", "car", "dog", "sea"]
    assert [r[0] for r in rows[1:]] == [f"im{n}.jpg" for n in range(61, 73)]
    assert all(len(r) == 5 and set(r[1:]) <= {"0", "1"} for r in rows[1:])

    # The same study cannot go on with images of another size: its trials would not compare.
    assert main(["run", "cnn", "--data", str(data), *common, *RUN[:-1], "24"]) == 2
    assert "was made with data_options" in capsys.readouterr().err


def test_binary_study_with_held_out_part_and_a_safe_failed_export(tmp_path, capsys):
    data = tmp_path / "faces"
    write_folders(data, classes=("no", "yes"), train=40, test=10)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    common = ["--storage", storage, "--study", "bin"]
    assert main(["run", "cnn", "--data", str(data), *common, *RUN, "--metric", "roc_auc",
                 "--val-fraction", "0.2", "--test-fraction", "0.1"]) == 0
    err = capsys.readouterr().err
    assert "56 train, 16 val, 8 held out, 10 test, binary with 2 classes" in err
    study = optuna.load_study(study_name="bin", storage=storage)
    assert study.user_attrs["task"] == "binary" and study.user_attrs["metric"] == "roc_auc"

    model = tmp_path / "model"
    assert main(["retrain", *common, "--out", str(model), "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert "validation accuracy" in out and "roc_auc" in out and "held-out test accuracy" in out
    meta = json.loads((model / "model.json").read_text())
    assert meta["task"] == "binary" and meta["num_classes"] == 1 and meta["class_names"] == ["no", "yes"]
    assert "holdout" in meta["metrics"]

    sub = tmp_path / "sub.csv"
    assert main(["export", *common, "--out", str(sub), "--device", "cpu"]) == 0
    rows = list(csv.reader(sub.open()))
    assert rows[0] == ["Image", "Class"]
    assert [r[0] for r in rows[1:]] == [f"t{i:03d}.png" for i in range(10)]
    assert {r[1] for r in rows[1:]} <= {"no", "yes"}

    # No test split: one line, exit 2, and the study, the checkpoint and the earlier submission intact.
    before = {p: p.read_bytes() for p in (sub, model / "model.json", model / "model.safetensors")}
    trials_before = [(t.number, t.state, t.value) for t in study.trials]
    shutil.rmtree(data / "test")
    capsys.readouterr()
    assert main(["export", *common, "--out", str(sub), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "test: missing; nothing to predict" in err and "Traceback" not in err
    assert all(p.read_bytes() == b for p, b in before.items())
    study = optuna.load_study(study_name="bin", storage=storage)
    assert [(t.number, t.state, t.value) for t in study.trials] == trials_before
    assert study.user_attrs["model_dir"] == str(model.resolve())
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".sub.csv")]  # no temporary left
    with pytest.raises(Exception, match="nothing to predict"):  # --debug shows the real exception
        main(["--debug", "export", *common, "--out", str(sub), "--device", "cpu"])


def test_bad_data_and_options_create_no_study(tmp_path, capsys):
    data = tmp_path / "helsinki"
    write_helsinki(data, train=20, test=2)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    common = ["--storage", storage, "--study", "x", "--device", "cpu", "--no-progress"]
    assert main(["run", "cnn", "--data", str(data), *common, "--metric", "accuracy"]) == 2
    assert "metric 'accuracy' does not apply to a multilabel task" in capsys.readouterr().err
    assert main(["run", "cnn", "--data", str(data), *common, "--task", "binary"]) == 2
    assert "several labels an image" in capsys.readouterr().err
    (data / "train" / "annotations" / "dog.txt").write_text("1\n404\n")
    assert main(["run", "cnn", "--data", str(data), *common]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "dog.txt, line 2: image 404 is not in" in err
    assert optuna.get_all_study_summaries(optuna.storages.RDBStorage(storage)) == []
    with pytest.raises(SystemExit) as exit_:
        main(["run", "cnn", "--image-size", "huge"])
    assert exit_.value.code == 2
    assert "image size 'huge' is not N or WIDTHxHEIGHT" in capsys.readouterr().err


def test_gic_export_without_test_csv_changes_nothing(tiny_data, tmp_path, capsys):
    data = tmp_path / "gic"
    shutil.copytree(tiny_data, data)
    common = ["--storage", f"sqlite:///{tmp_path / 's.db'}", "--study", "gic"]
    assert main(["run", "cnn", "--data", str(data), *common, "--trials", "1", "--epochs", "1", "--device", "cpu",
                 "--no-progress"]) == 0
    model = tmp_path / "model"
    assert main(["retrain", *common, "--out", str(model), "--device", "cpu"]) == 0
    sub = tmp_path / "sub.csv"
    sub.write_text("Image,Class\nearlier,1\n")  # an earlier submission must survive a failed export
    before = {p: p.read_bytes() for p in (sub, model / "model.json", model / "model.safetensors")}
    (data / "test.csv").unlink()
    capsys.readouterr()
    assert main(["export", *common, "--out", str(sub), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {data / 'test.csv'}: missing; nothing to predict\n"
    assert all(p.read_bytes() == b for p, b in before.items())
