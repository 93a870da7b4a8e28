"""Presets: which variant a study records (`run --for`, `--workers 0`), and a bad preset is one clear line."""

from __future__ import annotations

import argparse
from dataclasses import replace

import optuna
import pytest
from layouts import write_folders

from gic_common.errors import UserError
from search.cli import main
from search.config import load_preset
from search.data.options import DataOptions


def test_workers_0_records_the_full_preset_on_a_cpu_machine(tmp_path, tiny_data, capsys):
    """A cluster's login node has no GPU; the study it creates is for the GPU workers."""
    storage = f"sqlite:///{tmp_path / 's.db'}"
    common = ["run", "cnn", "--data", str(tiny_data), "--storage", storage, "--workers", "0"]
    full, quick = load_preset("cnn", "gpu"), load_preset("cnn", "cpu")
    assert full.epochs != quick.epochs and full.pruner != quick.pruner  # else this test tells nothing
    for flags, want, name in ((["--for", "gpu"], full, "g"), ([], full, "default"), (["--for", "cpu"], quick, "c")):
        assert main([*common, *flags, "--study", name]) == 0
        attrs = optuna.load_study(study_name=name, storage=storage).user_attrs
        assert attrs["epochs"] == want.epochs and attrs["pruner"] == want.pruner, flags
        assert attrs["sampler"] == want.sampler and attrs["max_mflops"] == want.max_mflops, flags
        assert attrs["trials"] == want.trials, flags
        variant = "cpu" if want is quick else "gpu"
        assert f"recorded the {variant} variant of preset 'cnn'" in capsys.readouterr().err


def test_a_run_here_takes_the_variant_of_its_device():
    from search.cli.search_commands import _variant_here

    args = argparse.Namespace(workers=None, device="cpu")
    assert _variant_here(args) == "cpu"
    assert _variant_here(argparse.Namespace(workers=0, device="cpu")) == "gpu"


@pytest.mark.parametrize("name", ["cnn", "resnet", "timm"])
def test_a_space_preset_runs_on_every_task(name):
    """`run resnet --data HELSINKI` failed on the preset's own metric ("accuracy does not apply to a
    multilabel task") although the user named none. mlp and mlp-grid pin seed 003's macro_f1 on purpose
    (a binary task has none: see test_a_preset_metric_the_task_lacks_gives_way_to_the_default)."""
    from search.trial.choices import TASK_METRICS
    from search.workers.run import resolve_metric

    for variant in ("cpu", "gpu"):
        metric = load_preset(name, variant).metric
        assert all(resolve_metric(metric, task) for task in TASK_METRICS), (variant, metric)


def test_a_preset_metric_the_task_lacks_gives_way_to_the_default(tmp_path, capsys):
    """`run mlp` on a binary dataset stopped on the preset's macro_f1, a metric the user never typed."""
    data = tmp_path / "faces"
    write_folders(data, classes=("no", "yes"), train=30, test=4)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    assert load_preset("mlp", "cpu").metric == "macro_f1"  # else this test tells nothing
    assert main(["run", "mlp", "--data", str(data), "--storage", storage, "--study", "m", "--trials", "1",
                 "--epochs", "1", "--device", "cpu", "--no-progress", "--val-fraction", "0.2"]) == 0
    err = capsys.readouterr().err
    line = "preset 'mlp' maximises macro_f1, which a binary task does not have; using accuracy (the task's default)"
    assert err.count(line) == 1
    study = optuna.load_study(study_name="m", storage=storage)
    assert study.user_attrs["metric"] == "accuracy" and study.best_trial.value is not None


def test_a_named_metric_the_task_lacks_is_still_one_line(tmp_path, capsys):
    data = tmp_path / "faces"
    write_folders(data, classes=("no", "yes"), train=30, test=4)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    for space in ("mlp", "cnn"):  # the user's own word, whether or not the preset says the same
        assert main(["run", space, "--data", str(data), "--storage", storage, "--metric", "macro_f1",
                     "--device", "cpu", "--no-progress", "--val-fraction", "0.2"]) == 2
        err = capsys.readouterr().err
        assert err.count("error") == 1 and err.splitlines()[-1] == (
            "error: metric 'macro_f1' does not apply to a binary task; choose one of accuracy, roc_auc")
    assert optuna.get_all_study_summaries(optuna.storages.RDBStorage(storage)) == []


@pytest.fixture
def presets(tmp_path, monkeypatch):
    """Writes presets into studies/ of a private working folder, where a user keeps their own: write(name, text)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "studies").mkdir()

    def write(name: str, text: str) -> None:
        (tmp_path / "studies" / f"{name}.toml").write_text(text)

    return write


def test_a_preset_in_the_working_folder_adds_to_or_replaces_the_shipped_ones(presets):
    presets("cnn", "space = 'cnn'\nepochs = 3\n")
    presets("mine", "space = 'mlp'\n")
    assert load_preset("cnn", "gpu").epochs == 3 and load_preset("mine", "cpu").space == "mlp"
    assert load_preset("resnet", "gpu").epochs > 3  # the shipped ones still load
    with pytest.raises(UserError, match="known presets: cnn, mine, mlp, mlp-grid, resnet, timm$"):
        load_preset("nope", "gpu")


@pytest.mark.parametrize("text, message", [
    ("space = 'cnn'\n[cpu]\nepoch = 3\n", "unknown setting in \\[cpu\\] 'epoch'"),
    ("space = 'cnn'\n[cpu]\npreset = 'x'\n", "unknown setting in \\[cpu\\] 'preset'"),
    ("space = 'cnn'\npreset = 'other'\n", "unknown setting 'preset'"),
    ("space = 'cnn'\n[synth]\nclases = 10\n", "unknown setting in \\[synth\\] 'clases'"),
    ("space = 'cnn'\n[cpu.synth]\nsise = 32\n", "unknown setting in \\[cpu.synth\\] 'sise'"),
    ("space = 'cnn'\ncpu = 3\n", "must be a table"),
])
def test_a_bad_preset_key_is_one_clear_error(presets, text, message):
    presets("bad", text)
    for variant in ("cpu", "gpu"):  # a typo in [cpu] fails on a GPU machine too, not first on a laptop
        with pytest.raises(UserError, match=message):
            load_preset("bad", variant)


def test_a_preset_sets_the_data_options_as_keys_of_their_own(presets):
    presets("sized", "space = 'cnn'\nseed = 4\nimage_size = '96x64'\nlayout = 'folders'\n[cpu]\nimage_size = 32\n")
    gpu, cpu = load_preset("sized", "gpu"), load_preset("sized", "cpu")
    assert gpu.data_options == DataOptions(layout="folders", image_size=(96, 64), split_seed=4)
    assert cpu.data_options.image_size == (32, 32) and replace(cpu, seed=7).data_options.split_seed == 7
    presets("bad", "space = 'cnn'\nimage_size = [96]\n")
    with pytest.raises(UserError, match=r"bad.toml: image size \[96\] is not N or WIDTHxHEIGHT"):
        load_preset("bad", "gpu")


def test_a_bad_final_run_split_is_one_clear_error(presets):
    presets("bad", "space = 'cnn'\nfinal_on = 'val'\n")
    with pytest.raises(UserError, match="final_on must be train or train\\+val, not 'val'"):
        load_preset("bad", "gpu").checked()


def test_a_preset_without_synth_needs_data(presets, tmp_path, capsys):
    presets("nosynth", "space = 'cnn'\ntrials = 1\n")
    assert main(["run", "cnn", "--preset", "nosynth", "--storage", f"sqlite:///{tmp_path / 's.db'}",
                 "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "lacks classes, size, train): give --data DIR" in err
