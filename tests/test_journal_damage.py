"""A journal file with a line that is not a record (a stray echo, a write cut short by a killed
process): every command names the file and line and says how to recover, and nothing is ever
appended behind the bad line (Optuna's reader skips a bad last line, so a writer appended behind it
and buried it, and from then on no command could read the study)."""

from __future__ import annotations

import subprocess
import warnings

import optuna
import pytest

from gic_common.errors import UserError
from search.cli import main
from search.workers.storage import open_storage


@pytest.fixture
def journal(tmp_path):
    path = tmp_path / "study.log"
    study = optuna.create_study(study_name="s", storage=open_storage(str(path)), direction="maximize")
    for x in (0.25, 0.5):
        study.enqueue_trial({"x": x})
        study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    return path


def test_a_stray_line_stops_run_with_the_file_and_line_and_nothing_is_appended(journal, small_data, capsys):
    lines = len(journal.read_text().splitlines())
    with open(journal, "a") as f:
        f.write("oops, an echo\n")
    before = journal.read_bytes()
    for argv in (["best"], ["run", "cnn", "--data", str(small_data), "--trials", "3", "--epochs", "1",
                            "--device", "cpu", "--no-progress"]):
        assert main([*argv, "--storage", str(journal), "--study", "s"]) == 2
        err = capsys.readouterr().err.splitlines()[-1]  # run has said what data it read first
        assert err.startswith(f"error: {journal}, line {lines + 1}: not a journal record")
        assert f"sed -i.bak '{lines + 1}d' {journal}" in err
        assert journal.read_bytes() == before
    # The recovery the message gives works: the study reads again with both trials.
    subprocess.run(["sed", "-i.bak", f"{lines + 1}d", str(journal)], check=True)
    assert main(["best", "--storage", str(journal), "--study", "s"]) == 0
    assert "best: trial 1" in capsys.readouterr().out


def test_a_write_cut_short_is_read_past_but_never_written_behind(journal):
    records = journal.read_bytes().splitlines(keepends=True)
    record, cut = records[-1], len(records) + 1
    with open(journal, "ab") as f:
        f.write(record[: len(record) // 2])  # a killed process's half-written record
    before = journal.read_bytes()
    study = optuna.load_study(study_name="s", storage=open_storage(str(journal)))
    assert len(study.trials) == 2  # a reader cannot tell it from a write under way: it waits for the end
    with pytest.raises(UserError, match=rf"line {cut}: cut short .* sed -i.bak '{cut}d'"):
        study.set_user_attr("note", "x")
    assert journal.read_bytes() == before


@pytest.mark.parametrize("kind", ["sqlite", "binary", "binary, no line end", "text"])
def test_a_file_that_is_no_journal_is_named_so_and_no_line_deletion_is_advised(kind, tmp_path, small_data, capsys):
    # It advised `sed -i.bak '1d'` on a SQLite database, which following destroys.
    path = tmp_path / "study.db"
    if kind == "sqlite":
        optuna.create_study(study_name="s", storage=f"sqlite:///{path}").optimize(lambda t: 1.0, n_trials=1)
    elif kind == "binary":
        path.write_bytes(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR" + bytes(range(256)) * 4)
    elif kind == "binary, no line end":  # read as a write under way, and appended to
        path.write_bytes(bytes(range(11, 256)) * 4)
    else:
        path.write_text("Image,Class\na.png,1\n")
    before = path.read_bytes()
    for argv in (["best"], ["run", "cnn", "--data", str(small_data), "--trials", "1", "--epochs", "1",
                            "--device", "cpu", "--no-progress"]):
        assert main([*argv, "--storage", f"journal://{path}", "--study", "s"]) == 2
        err = capsys.readouterr().err.splitlines()[-1]
        assert err.startswith(f"error: {path}: ") and "not a journal file" in err and "sed" not in err, err
        assert ("sqlite:///" in err) == (kind == "sqlite"), err
        assert path.read_bytes() == before


def test_a_heartbeat_the_damaged_file_refuses_says_so_once(tmp_path, capsys):
    # The beat was dropped in silence: the trial's next write (an epoch later) was the first word of it.
    path = tmp_path / "study.log"
    storage = open_storage(str(path), heartbeat=1)
    study = optuna.create_study(study_name="s", storage=storage)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # ask() outside optimize() warns that heartbeats need optimize()
        trial = study.ask()
    lines = len(path.read_text().splitlines())
    with open(path, "a") as f:
        f.write("oops, an echo\n")
    for _ in range(3):
        storage.record_heartbeat(trial._trial_id)
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith(f"warning: this worker's heartbeats stopped: {path}, line {lines + 1}")
