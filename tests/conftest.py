"""Shared fixtures: one tiny synthetic dataset per session, and a private dataset cache."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Set before any test imports the loader: the suite never touches the user's own cache.
os.environ.setdefault("GIC_CACHE_DIR", tempfile.mkdtemp(prefix="gic-test-cache-"))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """10 classes of 32x32 images, 300 train / 100 val / 50 test, in the GIC layout."""
    from search.data.synth import generate

    root = tmp_path_factory.mktemp("data") / "tiny"
    generate(root, classes=10, size=32, train=300, val=100, test=50, seed=0)
    return root


CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
                  "--virtual-time-budget=8000"]


@pytest.fixture
def chromium(tmp_path):
    """Loads a URL in a real headless Chromium (a fresh profile each call) and returns the rendered
    DOM, or takes a screenshot when ``screenshot`` names a PNG to write."""
    import shutil
    import subprocess

    exe = shutil.which("chromium")
    assert exe, "chromium is missing: `make test` installs it (tests/system_deps.sh)"
    calls = []

    def load(url: str, screenshot: Path | None = None, size: str = "1280,2000") -> str:
        calls.append(1)
        profile = tmp_path / f"chromium-profile-{len(calls)}"
        what = [f"--screenshot={screenshot}", f"--window-size={size}"] if screenshot else ["--dump-dom"]
        done = subprocess.run([exe, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *what, url],
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    return load


@pytest.fixture(scope="session")
def trained_study(tiny_data, tmp_path_factory):
    """A real study on the tiny data (4 small CNNs, 2 epochs each) whose best trial is retrained on two
    seeds: shared by the finalize, export and report tests so the suite trains it once. The designs
    are queued rather than sampled so that every one is a few-second network on two busy cores."""
    import optuna

    from search.cli import main

    root = tmp_path_factory.mktemp("trained")
    storage = f"sqlite:///{root / 'study.db'}"
    common = ["--storage", storage, "--study", "tiny"]
    small = {"n_conv": 2, "filters_l0": 16, "filters_l1": 16, "kernel_l0": 3, "kernel_l1": 3, "reduce_l1": 0.0,
             "dropout_l0": 0.0, "dropout_l1": 0.0, "n_dense": 0, "padding": "same", "norm": "bn",
             "activation": "relu", "head": "avg", "optimizer": "adam", "weight_decay": 1e-6, "batch_size": 32,
             "schedule": "constant", "label_smoothing": 0.0, "mix": "none", "flip": True, "translate": 0,
             "cutout": 0, "jitter": 0.0}
    study = optuna.create_study(study_name="tiny", storage=storage, direction="maximize")
    for lr, filters in ((3e-3, 16), (1e-2, 24), (1e-3, 16), (3e-2, 20)):
        study.enqueue_trial({**small, "lr": lr, "filters_l1": filters})
    assert main(["run", "cnn", "--data", str(tiny_data), *common, "--trials", "4", "--epochs", "2",
                 "--device", "cpu", "--no-progress"]) == 0
    complete = study.get_trials(states=(optuna.trial.TrialState.COMPLETE,))
    assert len(complete) >= 2 and all(t.params["filters_l0"] == 16 for t in study.trials)
    assert main(["retrain", *common, "--seeds", "2", "--out", str(root / "model"), "--device", "cpu"]) == 0
    return {"root": root, "storage": storage, "study": "tiny", "model": root / "model", "common": common}
