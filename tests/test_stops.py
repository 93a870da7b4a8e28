"""Commands stopped from outside (Ctrl-C, SIGTERM, a reader that closes the pipe) end with one line or
none, leave what was saved before as it was, and leave no temporary file behind for good."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import optuna
import pytest

import search.after.export
from search.after.retrain import retrain
from search.cli import main

pytestmark = pytest.mark.slow
ROOT = Path(__file__).resolve().parents[1]


def _command(*args: str) -> list[str]:
    return [sys.executable, "-m", "search", *args]


def _env() -> dict:
    return {**os.environ, "OMP_NUM_THREADS": "1"}  # two shared cores


def _dead_pid() -> int:
    """The id of a process that has ended: the owner of a killed command's leftovers."""
    proc = subprocess.Popen([sys.executable, "-c", ""])
    proc.wait()
    return proc.pid


@pytest.fixture(scope="module")
def model(two_trials, tmp_path_factory):
    return retrain(two_trials["study"], 0, "train", tmp_path_factory.mktemp("stops") / "model", "cpu",
                   remember=False)[0]


def test_sigterm_during_retrain_is_one_line_and_keeps_the_old_model(two_trials, model, tmp_path):
    # It was a KeyboardInterrupt traceback (SIGINT) or a silent death (SIGTERM).
    out = shutil.copytree(model, tmp_path / "model")
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    storage = f"sqlite:///{tmp_path / 'long.db'}"
    optuna.copy_study(from_study_name="two", from_storage=two_trials["storage"], to_storage=storage)
    optuna.load_study(study_name="two", storage=storage).set_user_attr("epochs", 1000)  # runs until stopped
    proc = subprocess.Popen(_command("retrain", "--storage", storage, "--study", "two", "--trial", "1",
                                     "--out", str(out), "--device", "cpu"),
                            cwd=ROOT, env=_env(), stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:
        lines.append(line)
        if "epoch " in line:  # training, the new model's folder under way
            proc.send_signal(signal.SIGTERM)
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 143, "".join(lines) + rest
    assert "Traceback" not in rest and rest.count("\n") == 1 and rest.startswith("interrupted (SIGTERM)"), rest
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_ctrl_c_during_export_is_one_line_and_keeps_the_old_submission(model, tmp_path, monkeypatch, capsys):
    sub = tmp_path / "sub.csv"
    sub.write_text("the previous submission\n")

    def interrupted(*args, **kwargs):
        os.kill(os.getpid(), signal.SIGINT)
        raise AssertionError("SIGINT did not stop the export")

    monkeypatch.setattr(search.after.export, "predict", interrupted)
    try:
        code = main(["export", "--model", str(model), "--out", str(sub), "--device", "cpu"])
    except KeyboardInterrupt:
        pytest.fail("Ctrl-C during export was a KeyboardInterrupt traceback")
    err = capsys.readouterr().err
    assert code == 130 and err.count("\n") == 1 and err.startswith("interrupted (SIGINT)"), err
    assert sub.read_text() == "the previous submission\n" and sorted(p.name for p in tmp_path.iterdir()) == ["sub.csv"]


def test_temporary_files_of_a_killed_export_or_retrain_go_with_the_next_run(two_trials, model, tmp_path, capsys):
    dead, alive = _dead_pid(), os.getpid()
    sub = tmp_path / "sub.csv"
    left = [tmp_path / f".sub.csv.{dead}.abcd_123"]
    running = tmp_path / f".sub.csv.{alive}.zzzz9999"  # a live process's file under way: not ours to remove
    for path in (*left, running):
        path.write_text("half a submission")
    assert main(["export", "--model", str(model), "--out", str(sub), "--device", "cpu"]) == 0
    assert [p for p in (*left, running) if p.exists()] == [running]
    assert b"\r" not in sub.read_bytes()  # LF line ends, as contest sample submissions have

    out = tmp_path / "model"
    shutil.copytree(model, out)
    inside = out / ".model.safetensors.q8w7e6r5"  # left in the folder by a retrain of an older version
    staged = tmp_path / f".model.new.{dead}.abcdefgh"  # a new folder a killed retrain had under way
    inside.write_text("half a file")
    staged.mkdir()
    (staged / "model.json").write_text("{")
    assert main(["retrain", *two_trials["common"], "--trial", "1", "--out", str(out), "--device", "cpu"]) == 0
    assert not inside.exists() and not staged.exists() and (out / "model.json").is_file()


def test_a_folder_swap_cut_short_by_a_kill_is_finished_by_the_next_run(model, tmp_path, capsys):
    # Killed between its two renames, a retrain leaves the old folder and the complete new one aside.
    dead = _dead_pid()
    old = shutil.copytree(model, tmp_path / f".model.old.{dead}.abcdefgh")
    new = shutil.copytree(model, tmp_path / f".model.new.{dead}.abcdefgh")
    code = main(["export", "--model", str(tmp_path / "model"), "--out", str(tmp_path / "s.csv"), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    assert (tmp_path / "model" / "model.json").is_file() and not old.exists() and not new.exists()


def test_a_closed_output_pipe_ends_the_command_quietly(two_trials):
    # `python -m search best | head -1` was a BrokenPipeError traceback.
    proc = subprocess.Popen(_command("best", *two_trials["common"]), cwd=ROOT, env=_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141 and err == "", err  # 128 + SIGPIPE, as a shell reports it
