"""Shared fixtures: one tiny synthetic dataset per session, and a private dataset cache."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Set before any test imports the loader: the suite never touches the user's own cache.
os.environ.setdefault("GIC_CACHE_DIR", tempfile.mkdtemp(prefix="gic-test-cache-"))
# Trials on a server storage attach their files to studies/artifacts/ of the checkout otherwise.
os.environ.setdefault("GIC_ARTIFACTS", tempfile.mkdtemp(prefix="gic-test-artifacts-"))


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


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> Path:
    """4 classes of 16x16 images, 120 train / 40 val: a cnn trial takes a second or two on one thread."""
    from search.data.synth import generate

    root = tmp_path_factory.mktemp("data") / "small"
    generate(root, classes=4, size=16, train=120, val=40, test=10, seed=0)
    return root


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server on 127.0.0.1 for the session (Debian's postgresql package,
    installed by tests/system_deps.sh): initdb into a temporary folder, started with pg_ctl and
    stopped at the end. As root, initdb and pg_ctl run as the `postgres` user, as they insist."""
    import shutil
    import subprocess

    # Debian installs each major version side by side; any will do, the newest is taken.
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if not found:
        pytest.fail("/usr/lib/postgresql/*/bin/initdb missing: run `bash tests/system_deps.sh` (make test does)")
    bindir = found[-1].parent
    root = Path(tempfile.mkdtemp(prefix="gic-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()

    def pg(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, text=True)

    pg(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} -c fsync=off"
    pg(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


# A few-second cnn on two busy cores (the same small design as trained_study's).
SMALL_CNN = {"n_conv": 2, "filters_l0": 16, "filters_l1": 16, "kernel_l0": 3, "kernel_l1": 3, "reduce_l1": 0.0,
             "dropout_l0": 0.0, "dropout_l1": 0.0, "n_dense": 0, "padding": "same", "norm": "bn",
             "activation": "relu", "head": "avg", "optimizer": "adam", "weight_decay": 1e-6, "lr": 3e-3,
             "batch_size": 32, "schedule": "constant", "label_smoothing": 0.0, "mix": "none", "flip": True,
             "translate": 0, "cutout": 0, "jitter": 0.0}


@pytest.fixture(scope="session")
def two_trials(small_data, tmp_path_factory):
    """A study `run` could have made, with two finished trials of different widths (trial 0:
    filters_l1 16, trial 1: 24) and one epoch of training each, made without running a search:
    retraining one of them takes a second, so tests can save, damage and swap real model folders."""
    import optuna

    from spaces import cnn

    root = tmp_path_factory.mktemp("two-trials")
    storage = f"sqlite:///{root / 'study.db'}"
    study = optuna.create_study(study_name="two", storage=storage, direction="maximize")
    for key, value in (("space", "cnn"), ("data", str(small_data)), ("epochs", 1)):
        study.set_user_attr(key, value)
    for filters, value in ((16, 0.5), (24, 0.6)):
        study.enqueue_trial({**SMALL_CNN, "filters_l1": filters})
        trial = study.ask()
        cnn.suggest(trial)  # records every parameter with its distribution, as a real trial does
        study.tell(trial, value)
    return {"root": root, "storage": storage, "study": study, "common": ["--storage", storage, "--study", "two"]}
