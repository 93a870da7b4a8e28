"""`run --compile`: a compiled study trains what an eager one trains, and records how it ran."""

from __future__ import annotations

import optuna
import pytest

from search.cli import main

pytestmark = pytest.mark.slow

SMALL = {"n_conv": 2, "filters_l0": 16, "filters_l1": 16, "kernel_l0": 3, "kernel_l1": 3, "reduce_l1": 0.0,
         "dropout_l0": 0.0, "dropout_l1": 0.0, "n_dense": 0, "padding": "same", "norm": "bn",
         "activation": "relu", "head": "avg", "optimizer": "adam", "lr": 3e-3, "weight_decay": 1e-6,
         "batch_size": 32, "schedule": "constant", "label_smoothing": 0.0, "mix": "none", "flip": True,
         "translate": 0, "cutout": 0, "jitter": 0.0}


def _one_trial(tiny_data, storage, name, *extra):
    study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
    study.enqueue_trial(SMALL)  # queued before `run` queues the seed designs, so it runs first
    assert main(["run", "cnn", "--data", str(tiny_data), "--storage", storage, "--study", name,
                 "--trials", "1", "--epochs", "2", "--device", "cpu", "--no-progress", *extra]) == 0
    return optuna.load_study(study_name=name, storage=storage)


def test_compiled_trial_learns_as_the_eager_one(tmp_path, tiny_data):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    eager = _one_trial(tiny_data, storage, "eager")
    compiled = _one_trial(tiny_data, storage, "compiled", "--compile", "default")
    assert eager.user_attrs["compile"] is None and compiled.user_attrs["compile"] == "default"
    a, b = eager.trials[0], compiled.trials[0]
    assert a.params == b.params and a.state == b.state == optuna.trial.TrialState.COMPLETE
    # Same seed, same batches: inductor's fused kernels round differently, nothing more.
    assert b.user_attrs["train_loss"] == pytest.approx(a.user_attrs["train_loss"], rel=2e-3)
    assert b.value == pytest.approx(a.value, abs=0.03)
    # The first epoch carries the compilation; it is recorded apart from the median epoch.
    assert b.user_attrs["first_epoch_seconds"] > b.user_attrs["epoch_seconds"]
    # A rerun compiles as the trial did and, on the CPU, reproduces its curve exactly.
    from search.after.rerun import rerun_trial

    assert rerun_trial(compiled, 0, "cpu", show=lambda *_: None).identical


def test_unknown_compile_mode_in_a_preset_is_one_line(tmp_path, tiny_data, capsys, monkeypatch):
    (tmp_path / "studies").mkdir()
    (tmp_path / "studies" / "fast.toml").write_text('space = "cnn"\ncompile = "fastest"\n')
    monkeypatch.chdir(tmp_path)  # the user's own presets are in studies/ of the working folder
    assert main(["run", "cnn", "--preset", "fast", "--data", str(tiny_data), "--device", "cpu",
                 "--storage", f"sqlite:///{tmp_path / 's.db'}"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown compile mode 'fastest'" in err
    assert not (tmp_path / "s.db").exists()  # refused before a study was made


def test_retrain_compiles_as_the_study_did(small_data, tmp_path, monkeypatch):
    # retrain trained eagerly whatever the study's compile mode, where rerun honoured it.
    import torch

    import search.after.retrain
    from search.after.retrain import retrain
    from spaces import cnn

    study = optuna.create_study(direction="maximize")
    for key, value in (("space", "cnn"), ("data", str(small_data)), ("epochs", 1), ("metric", "accuracy"),
                       ("compile", "max-autotune")):
        study.set_user_attr(key, value)
    study.enqueue_trial({**cnn.SEED000, "n_conv": 2, "filters_l0": 16, "filters_l1": 16, "n_dense": 0,
                         "batch_size": 32})

    def untrained(trial):
        cnn.suggest(trial)
        return 0.5

    study.optimize(untrained, n_trials=1)
    real_fit, modes = search.after.retrain.fit, []

    def eager_fit(*args, compile=None, **kwargs):  # notes the mode, trains eagerly (compiling takes long)
        modes.append(compile)
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(search.after.retrain, "fit", eager_fit)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        retrain(study, 0, "train", tmp_path / "model", "cpu", remember=False)
    finally:
        torch.set_num_threads(threads)
    assert modes == ["max-autotune"]
