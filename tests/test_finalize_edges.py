"""retrain, rerun, export, report and best off the happy path: a binary study on resized data with no
validation split of its own, retrains into a folder used before, and studies or trials that cannot
be trained again."""

from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import optuna
import pytest
import torch

from search.after.ensemble import member_dirs
from search.after.rerun import rerun_trial
from search.after.retrain import retrain
from search.cli import main
from search.data.synth import generate
from search.shown.model_plots import activation_maps, confusions, load_view, misclassified, per_class_f1

pytestmark = pytest.mark.slow

# A few-second cnn on two busy cores (the same small design as conftest's trained_study).
SMALL = {"n_conv": 2, "filters_l0": 16, "filters_l1": 16, "kernel_l0": 3, "kernel_l1": 3, "reduce_l1": 0.0,
         "dropout_l0": 0.0, "dropout_l1": 0.0, "n_dense": 0, "padding": "same", "norm": "bn", "activation": "relu",
         "head": "avg", "optimizer": "adam", "weight_decay": 1e-6, "batch_size": 32, "schedule": "constant",
         "label_smoothing": 0.0, "mix": "none", "flip": True, "translate": 0, "cutout": 0, "jitter": 0.0}


@pytest.fixture(scope="module")
def binary(tmp_path_factory):
    """A 2-class study run with --image-size 20 on 16px data that has no val.csv (so --val-fraction
    0.25 makes the split): everything the study's data options change is in play."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # two threads on two shared cores spin against each other
    root = tmp_path_factory.mktemp("binary")
    data = root / "data"
    generate(data, classes=2, size=16, train=96, val=1, test=8, seed=0, difficulty=0.3)
    (data / "val.csv").unlink()
    shutil.rmtree(data / "val_images")
    storage = f"sqlite:///{root / 's.db'}"
    study = optuna.create_study(study_name="bin", storage=storage, direction="maximize")
    for lr in (1e-2, 3e-3):
        study.enqueue_trial({**SMALL, "lr": lr})
    common = ["--storage", storage, "--study", "bin"]
    assert main(["run", "cnn", "--data", str(data), *common, "--trials", "2", "--epochs", "3", "--device", "cpu",
                 "--no-progress", "--image-size", "20", "--val-fraction", "0.25", "--pruner", "none"]) == 0
    model = root / "model"
    assert main(["retrain", *common, "--out", str(model), "--device", "cpu"]) == 0
    yield {"root": root, "data": data, "storage": storage, "common": common, "model": model}
    torch.set_num_threads(threads)


def _load(b) -> optuna.Study:
    return optuna.load_study(study_name="bin", storage=b["storage"])


def _bare_study(tmp_path, attrs: dict | None = None, directions=("maximize",)) -> tuple[optuna.Study, list[str]]:
    """A study with no training behind it, optionally with `run`'s attributes."""
    storage = f"sqlite:///{tmp_path / 'bare.db'}"
    study = optuna.create_study(study_name="bare", storage=storage, directions=list(directions))
    for key, value in (attrs or {}).items():
        study.set_user_attr(key, value)
    return study, ["--storage", storage, "--study", "bare"]


def test_rerun_of_a_binary_study_uses_its_data_options(binary):
    study = _load(binary)
    for trial in study.trials:
        result = rerun_trial(study, trial.number, "cpu", show=lambda line: None)
        assert len(result.stored) == 3
        assert result.identical, (result.stored, result.again, result.stored_loss, result.again_loss)


def test_report_judges_a_binary_model_on_the_studys_split_with_its_task(binary):
    view = load_view(binary["model"], torch.device("cpu"))
    meta = json.loads((binary["model"] / "model.json").read_text())
    assert view.val_x.shape == (24, 3, 20, 20)  # resized, and a quarter of train made validation
    assert set(view.pred.tolist()) == {0, 1}  # a softmax over one logit would say class 0 every time
    assert (view.pred == view.val_y).mean() == pytest.approx(meta["metrics"]["accuracy"])
    assert confusions(view).data[0].z.sum() == 24
    assert "of 24" in misclassified(view).layout.title.text


def test_retrain_with_another_number_of_seeds_replaces_the_folders_model(binary, tmp_path):
    study, folder = _load(binary), tmp_path / "trial"
    retrain(study, None, "train", folder, "cpu", seeds=2, remember=False)
    assert (folder / "ensemble.json").is_file() and len(member_dirs(folder)) == 2
    retrain(study, None, "train", folder, "cpu", seeds=1, remember=False)
    assert not (folder / "ensemble.json").exists() and member_dirs(folder) == [folder]
    retrain(study, None, "train", folder, "cpu", seeds=2, remember=False)
    assert len(member_dirs(folder)) == 2
    assert not (folder / "model.json").exists() and not (folder / "model.safetensors").exists()


def test_export_of_a_model_folder_needs_no_storage(binary, tmp_path, monkeypatch, capsys):
    project = tmp_path / "project"
    project.mkdir()
    monkeypatch.chdir(project)
    assert main(["export", "--model", str(binary["model"]), "--device", "cpu"]) == 0
    sub = project / "submissions" / "bin.csv"  # named after model.json's study
    assert capsys.readouterr().out == f"wrote {sub}\n"
    rows = list(csv.reader(sub.open()))
    assert rows[0] == ["Image", "Class"] and len(rows) == 9 and {r[1] for r in rows[1:]} <= {"0", "1"}
    assert not (project / "studies").exists()  # no default storage was made or opened


def test_export_reads_only_the_test_images(binary, tmp_path):
    # It decoded every split, so a training image gone stopped an export that needs none of them.
    data = tmp_path / "data"
    shutil.copytree(binary["data"], data)
    next((data / "train_images").iterdir()).unlink()
    common = ["export", "--model", str(binary["model"]), "--device", "cpu"]
    assert main([*common, "--data", str(data), "--out", str(tmp_path / "sub.csv")]) == 0
    assert main([*common, "--out", str(tmp_path / "whole.csv")]) == 0  # from the untouched data
    assert (tmp_path / "sub.csv").read_text() == (tmp_path / "whole.csv").read_text()


def test_an_out_path_that_cannot_be_written_is_one_line(binary, tmp_path, capsys):
    # It was a traceback (IsADirectoryError, FileExistsError) from the atomic write.
    folder, file = tmp_path / "taken", tmp_path / "a-file"
    folder.mkdir()
    file.write_text("mine")
    for out, why in ((folder, "Is a directory"), (file / "sub.csv", "File exists")):
        assert main(["export", "--model", str(binary["model"]), "--device", "cpu", "--out", str(out)]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and f"{out}: cannot write it ({why})" in err, err
    assert file.read_text() == "mine" and sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "taken"]
    assert not list(folder.iterdir())  # no temporary file left behind


def test_unfinished_trials_are_refused_by_name(binary, tmp_path, capsys):
    shutil.copy(binary["root"] / "s.db", tmp_path / "s.db")
    storage = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.load_study(study_name="bin", storage=storage)
    failed = study.ask()  # no parameter suggested: FixedTrial could not rebuild it
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    running = study.ask().number
    study.enqueue_trial({"lr": 1e-3})  # after the ask, which would have taken it from the queue
    waiting = study.trials[-1].number
    common = ["--storage", storage, "--study", "bin"]
    for number, state in ((failed.number, "failed"), (waiting, "is waiting"), (running, "is still running")):
        for command in ("retrain", "rerun"):
            assert main([command, *common, "--trial", str(number), "--device", "cpu"]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and f"trial {number} of 'bin' {state}" in err, err


def test_a_study_not_made_by_run_is_a_one_line_error(tmp_path, capsys):
    study, common = _bare_study(tmp_path)
    study.add_trial(optuna.trial.create_trial(params={"lr": 0.01}, distributions={
        "lr": optuna.distributions.FloatDistribution(1e-4, 1e-1)}, value=0.5))
    for argv in (["retrain", *common], ["rerun", *common, "--trial", "0"], ["export", *common, "--ensemble", "1"]):
        assert main([*argv, "--device", "cpu"]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "was not made by `run` (it records no space, data, epochs)" in err, argv
    assert main(["report", *common, "--out", str(tmp_path / "r.html"), "--device", "cpu"]) == 0


def test_export_ensemble_of_a_multi_objective_study_names_the_front(tmp_path, capsys):
    study, common = _bare_study(tmp_path, {"space": "cnn", "data": "x", "epochs": 1}, ("maximize", "minimize"))
    dist = {"lr": optuna.distributions.FloatDistribution(1e-4, 1e-1)}
    for lr, values in ((0.01, [0.9, 100]), (0.02, [0.8, 10]), (0.03, [0.7, 200])):
        study.add_trial(optuna.trial.create_trial(params={"lr": lr}, distributions=dist, values=values))
    assert main(["export", *common, "--ensemble", "2", "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "several objectives" in err and "(front: 0, 1)" in err, err


def test_best_without_a_completed_trial_says_so(tmp_path, capsys):
    study, common = _bare_study(tmp_path)
    study.ask()
    assert main(["best", *common]) == 0
    assert capsys.readouterr().out == "study 'bare': no completed trial yet\n"


def test_multilabel_view_names_label_sets_and_has_no_confusion_matrix():
    from gic_common.errors import UserError
    from search.shown.model_plots import ModelView

    y = np.array([[1, 0, 1], [0, 1, 0]])
    pred = np.array([[1, 0, 1], [0, 0, 0]])
    v = ModelView(torch.nn.Conv2d(3, 2, 3), torch.zeros(3), torch.ones(3), ["a", "b", "c"],
                  np.zeros((2, 3, 8, 8), np.uint8), y, pred, True, 1, "multilabel")
    assert misclassified(v).layout.annotations[0].text == "true b / pred none"
    assert "(class a+c, predicted a+c)" in activation_maps(v).layout.title.text
    assert per_class_f1(v).data[0].y.tolist() == [0.0, 1.0, 1.0]  # label b, never predicted, first
    with pytest.raises(UserError, match="multilabel"):
        confusions(v)


def test_a_model_trained_on_its_validation_images_says_so_where_it_is_scored_on_them():
    from dataclasses import replace

    from search.shown.model_plots import ModelView

    y, pred = np.array([0, 1, 2, 1]), np.array([0, 1, 2, 2])
    v = ModelView(torch.nn.Conv2d(3, 2, 3), torch.zeros(3), torch.ones(3), ["a", "b", "c"],
                  np.zeros((4, 3, 8, 8), np.uint8), y, pred, True, 1)
    for plot in (confusions, per_class_f1, misclassified):
        assert "not a held-out score" not in plot(v).layout.title.text
        trained_on = plot(replace(v, held_out=False)).layout.title.text
        assert "trained on them (train+val), so not a held-out score" in trained_on


def test_a_top_k_export_neither_overwrites_nor_retrains_the_trials_saved_models(binary, tmp_path, monkeypatch):
    from search.after.top_ensemble import ensemble_top

    monkeypatch.chdir(tmp_path)  # where retrain's and the top-k's folders go
    study = _load(binary)
    runs = tmp_path / "runs" / "bin"
    best = study.best_trial.number
    trainval, _ = retrain(study, None, "train+val", None, "cpu", remember=False)
    assert trainval == runs / f"trial-{best}-trainval"  # not trial-N, which a top-k member on train takes
    seeds, _ = retrain(study, None, "train", None, "cpu", seeds=2, remember=False)
    assert seeds == runs / f"trial-{best}"
    first = member_dirs(seeds)[0]  # the trial's own seed: what a one-seed retrain would train
    stamps = {p: p.stat().st_mtime_ns for p in (first / "model.safetensors", trainval / "model.safetensors")}

    assert member_dirs(ensemble_top(study, 1, "train", "cpu", runs=runs)) == [first]
    assert member_dirs(ensemble_top(study, 1, "train+val", "cpu", runs=runs)) == [trainval]
    assert (seeds / "ensemble.json").is_file()  # the seeds retrain still stands
    assert json.loads((trainval / "model.json").read_text())["train_on"] == "train+val"
    assert stamps == {p: p.stat().st_mtime_ns for p in stamps}  # nothing trained again


def test_a_retrain_that_diverges_is_one_line(binary, tmp_path, monkeypatch):
    import search.after.retrain
    from gic_common.errors import UserError
    from search.trial.train import Diverged

    def diverge(*args, **kwargs):
        raise Diverged("training loss became nan in epoch 2 (lr 0.1)")

    monkeypatch.setattr(search.after.retrain, "fit", diverge)  # it raised Diverged's traceback
    with pytest.raises(UserError, match=r"retraining trial \d+ \(seed \d+\) diverged: training loss became nan"):
        retrain(_load(binary), None, "train", tmp_path / "trial", "cpu", remember=False)
    assert not (tmp_path / "trial").exists()
