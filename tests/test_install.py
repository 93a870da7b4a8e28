"""An installed copy (a wheel, not the checkout) runs a study from an empty folder: the presets ship
inside the package, and the study, the benchmark, the model and the submission land in the folder
the commands run in, none of them beside the installed code."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_an_installed_copy_runs_a_study_from_an_empty_folder(tmp_path):
    source = tmp_path / "source"  # a copy: building writes build/ and *.egg-info beside the sources
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source)
    for package in ("search", "spaces", "gic_models", "gic_common"):
        shutil.copytree(ROOT / package, source / package, ignore=shutil.ignore_patterns("__pycache__"))
    pip = [sys.executable, "-m", "pip", "-q", "--disable-pip-version-check"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", tmp_path / "wheel",
                    source], check=True)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    # this environment's pip installs into the bare venv (pip's --python)
    subprocess.run([*pip, "--python", python, "install", "--no-deps", "--no-index",
                    *(tmp_path / "wheel").glob("*.whl")], check=True)
    site = "import sysconfig; print(sysconfig.get_paths()['purelib'])"
    installed = Path(subprocess.check_output([python, "-c", site], text=True).strip())
    # torch, optuna and the rest from this environment: a plain path line, so that folder's own .pth
    # files (this checkout's editable install among them) are not read and `search` is the wheel's
    (installed / "dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GIC_ARTIFACTS")}

    def search(*args: str) -> str:
        done = subprocess.run([python, "-m", "search", *args], cwd=work, env=env, capture_output=True, text=True,
                              timeout=600)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    where = subprocess.check_output([python, "-c", "import search; print(search.__file__)"], cwd=work, env=env,
                                    text=True)
    assert Path(where.strip()).is_relative_to(installed)
    assert "best: trial 0" in search("run", "cnn", "--trials", "1", "--epochs", "1", "--device", "cpu", "--no-progress")
    assert (work / "studies" / "search.db").is_file() and any((work / "studies" / "artifacts").iterdir())
    assert (work / "data" / "synth-20c-48px-1500" / "train.csv").is_file()  # the preset's [cpu] benchmark
    search("retrain", "--epochs", "1", "--device", "cpu")
    assert (work / "runs" / "cnn-synth-20c-48px-1500" / "trial-0" / "model.safetensors").is_file()
    submission = work / "submissions" / "cnn-synth-20c-48px-1500.csv"
    assert search("export", "--device", "cpu") == f"wrote {submission}\n"
    assert len(submission.read_text().splitlines()) == 501  # a header and the 500 test images
    assert not {"studies", "data", "runs", "submissions"} & {p.name for p in installed.iterdir()}
