"""Commands given no --study take the study run last, say so in --help, and name it on stderr."""

from __future__ import annotations

import optuna
import pytest

from search.cli import main

FLOAT = optuna.distributions.FloatDistribution(0.0, 1.0)


@pytest.fixture
def two_studies(tmp_path) -> str:
    """'older' has its trial first, then 'newer': the one run last is 'newer', not the only one."""
    storage = f"sqlite:///{tmp_path / 's.db'}"
    for name in ("older", "newer"):
        study = optuna.create_study(study_name=name, storage=storage, direction="maximize")
        trial = study.ask({"a": FLOAT})
        study.tell(trial, 0.5)
    optuna.create_study(study_name="empty", storage=storage)  # made after both, never run
    return storage


@pytest.mark.parametrize("command", ["best", "retrain", "export", "report"])
def test_help_says_the_default_is_the_study_run_last(command, capsys):
    with pytest.raises(SystemExit):
        main([command, "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert "only study" not in help_text
    assert "default: the study run last" in help_text


@pytest.mark.parametrize("command", ["best", "retrain", "export"])
def test_a_command_names_the_study_it_picked(command, two_studies, capsys):
    main([command, "--storage", two_studies, "--device", "cpu"] if command != "best"
         else [command, "--storage", two_studies])  # retrain and export then stop: no run, no model
    err = capsys.readouterr().err.splitlines()
    assert err[0] == f"study 'newer' (the one run last in {two_studies})"


def test_a_named_study_needs_no_line(two_studies, capsys):
    assert main(["best", "--storage", two_studies, "--study", "older"]) == 0
    assert capsys.readouterr().err == ""


def test_a_command_that_reads_a_study_makes_no_folder_in_an_empty_working_folder(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # the default storage is studies/search.db here; only `run` makes it
    for command in (["best"], ["retrain", "--device", "cpu"], ["report"]):
        assert main(command) == 2
        assert "search.db: no such SQLite file; `run` creates it" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
