"""The CLI end to end on tiny data: synth, run, best, retrain, export, and a rerun that continues."""

from __future__ import annotations

import csv

import optuna
import pytest

from search.cli import main
from search.cli.parser import build_parser

pytestmark = pytest.mark.slow


def test_search_retrain_export_end_to_end(tmp_path, capsys):
    data = tmp_path / "ds"
    assert main(["data", "synth", "--out", str(data), "--classes", "10", "--size", "32",
                 "--train", "300", "--val", "100", "--test", "50"]) == 0
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    common = ["--storage", storage, "--study", "e2e"]
    assert main(["run", "cnn", "--data", str(data), *common, "--trials", "3", "--epochs", "2",
                 "--device", "cpu", "--no-progress"]) == 0

    study = optuna.load_study(study_name="e2e", storage=storage)
    finished = [t for t in study.trials if t.state.is_finished()]
    assert len(finished) == 3
    # the priors' recommended design runs first, then the hand-tuned design
    assert [t.user_attrs.get("design") for t in study.trials[:2]] == ["recommended", "seed000-cnn"]
    first = study.trials[1]
    assert first.params["filters_l3"] == 256
    for key in ("params", "flops_per_image", "epoch_seconds", "device", "seed", "best_epoch"):
        assert key in first.user_attrs, key
    assert first.user_attrs["flops_per_image"] > first.user_attrs["params"]

    assert main(["best", *common]) == 0
    assert '"params"' in capsys.readouterr().out

    model_dir = tmp_path / "model"
    assert main(["retrain", *common, "--out", str(model_dir), "--device", "cpu"]) == 0
    assert (model_dir / "model.safetensors").is_file() and (model_dir / "model.json").is_file()
    out = capsys.readouterr().out
    assert "validation accuracy" in out

    submission = tmp_path / "sub.csv"
    assert main(["export", *common, "--out", str(submission), "--device", "cpu"]) == 0
    rows = list(csv.reader(submission.open()))
    test_rows = list(csv.reader((data / "test.csv").open()))
    assert rows[0] == ["Image", "Class"]
    assert len(rows) == len(test_rows) == 51
    assert [r[0] for r in rows[1:]] == [r[0] for r in test_rows[1:]]  # test.csv's order
    assert all(0 <= int(r[1]) < 10 for r in rows[1:])

    # The same command with a larger budget continues the same study instead of starting over.
    assert main(["run", "cnn", "--data", str(data), *common, "--trials", "4", "--epochs", "2",
                 "--device", "cpu", "--no-progress"]) == 0
    study = optuna.load_study(study_name="e2e", storage=storage)
    assert sum(t.state.is_finished() for t in study.trials) == 4


def test_bad_names_are_one_line_errors(tmp_path, capsys, tiny_data):
    storage = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["run", "nosuchspace", "--storage", storage]) == 2
    assert "known spaces: cnn" in capsys.readouterr().err
    assert main(["run", "cnn", "--data", str(tmp_path / "missing"), "--storage", storage,
                 "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "does not exist" in err
    (tmp_path / "a-file").write_text("not images")  # a file is no missing folder: say which it is
    assert main(["run", "cnn", "--data", str(tmp_path / "a-file"), "--storage", storage, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file, not a dataset folder" in err
    assert main(["best", "--storage", storage, "--study", "nope"]) == 2
    assert "no such SQLite file" in capsys.readouterr().err  # and `best` did not create one
    assert not (tmp_path / "s.db").exists()
    for journal in (str(tmp_path / "typo.log"), f"journal://{tmp_path / 'typo.log'}"):
        assert main(["best", "--storage", journal]) == 2
        assert "no such journal file" in capsys.readouterr().err
        assert main(["worker", "--study", "nope", "--storage", journal]) == 2
        assert "no such journal file" in capsys.readouterr().err
    assert not (tmp_path / "typo.log").exists()  # and neither created one
    optuna.create_study(study_name="other", storage=storage)
    assert main(["best", "--storage", storage, "--study", "nope"]) == 2
    assert "no study 'nope'" in capsys.readouterr().err
    assert main(["run", "cnn", "--data", str(tiny_data), "--storage", "postgresql://u@127.0.0.1:1/db",
                 "--device", "cpu"]) == 2
    assert "cannot open storage" in capsys.readouterr().err


def test_every_subcommand_has_help(capsys):
    for command in (["run"], ["best"], ["retrain"], ["export"], ["data", "synth"], ["dashboard"], ["report"]):
        with pytest.raises(SystemExit) as exit_:
            main([*command, "--help"])
        assert exit_.value.code == 0
        assert "--" in capsys.readouterr().out


def test_data_synth_onto_a_file_is_one_line(tmp_path, capsys):
    target = tmp_path / "taken"
    target.write_text("not a folder")
    small = ["--classes", "2", "--size", "16", "--train", "4", "--val", "2", "--test", "2"]
    assert main(["data", "synth", "--out", str(target), *small]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is a file, not a folder" in err
    assert main(["data", "synth", "--out", str(target / "below"), *small]) == 2  # a parent that is a file
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "cannot write the dataset there" in err
    assert target.read_text() == "not a folder"


@pytest.mark.parametrize("argv", [
    ["dashboard", "--port", "99999"], ["dashboard", "--port", "-1"],
    ["run", "cnn", "--timeout", "-5"], ["worker", "--study", "s", "--timeout", "0"],
    ["run", "cnn", "--heartbeat", "-1"], ["run", "cnn", "--time", "inf"], ["run", "cnn", "--time", "nan"],
    # text that is no number: argparse's own message named the parsing function ("invalid _seconds value")
    ["run", "cnn", "--time", "abc"], ["run", "cnn", "--trials", "2.5"], ["dashboard", "--port", "http"],
])
def test_bad_flag_values_are_refused_before_anything_runs(argv, tmp_path, capsys):
    # Before: a port out of range was an OverflowError traceback, a negative timeout a study that ran
    # nothing and exited 0, a negative heartbeat an error blaming the storage.
    flag = argv[-2]
    where = ["--storage", f"journal://{tmp_path / 's.log'}"]  # nothing the user has, were the flag let through
    if argv[0] == "run":
        where += ["--data", str(tmp_path / "none"), "--device", "cpu"]
    with pytest.raises(SystemExit) as exit_:
        main([*argv, *where])
    assert exit_.value.code == 2
    assert f"argument {flag}: must be" in capsys.readouterr().err.splitlines()[-1]
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("argv", [
    ["retrain", "--seed", "2"],  # was --seeds 2: a two-seed ensemble nobody asked for
    ["run", "cnn", "--work", "3"], ["export", "--ens", "2"], ["--deb", "best"],
    ["data", "synth", "--out", "x", "--cl", "3"],
])
def test_abbreviated_flags_are_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(argv)  # the parser alone: an abbreviation let through would run nothing
    assert exit_.value.code == 2
    assert "unrecognized arguments" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["run", "cnn", "--timeout", "-5"], ["retrain", "--seeds", "0"], ["nosuch"],
                                  ["data", "synth"]])
def test_a_bad_flag_is_one_usage_line_and_the_error(argv, capsys):
    # Before: run's whole usage (18 lines) came before its one-line error.
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    usage, error = capsys.readouterr().err.splitlines()
    assert usage.startswith(f"usage: python -m search {argv[0] if argv[0] != 'nosuch' else ''}".rstrip())
    assert "--help" in usage and "error: " in error


def test_run_help_gives_runs_own_default_study_name(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    study = text[text.index("--study STUDY study name"):text.index("--storage STORAGE Optuna")]
    assert "SPACE-DATASET" in study and "run last" not in study  # it said: the study run last


@pytest.mark.parametrize("name, folder", [
    ("cnn-synth-20c-48px-1500", "cnn-synth-20c-48px-1500"),  # run's own names stay as they are
    ("my study: v2", "my study: v2"),
    ("../../x", "%2E.%2F..%2Fx"), ("/abs/x", "%2Fabs%2Fx"), ("..", "%2E."), (".", "%2E"),
    ("a\\b", "a%5Cb"), ("50%", "50%25"), ("tab\there", "tab%09here"), ("", "%"),
])
def test_study_names_become_one_file_name(name, folder):
    from search.places import study_file_name

    assert study_file_name(name) == folder


def test_a_long_study_name_is_cut_to_a_file_name_that_still_tells_it_apart():
    from search.places import study_file_name

    long = study_file_name("é" * 200 + "a"), study_file_name("é" * 200 + "b")
    assert long[0] != long[1] and all(len(n.encode()) <= 200 and "/" not in n for n in long)


def test_a_study_name_cannot_send_files_outside_the_project(two_trials, tmp_path, monkeypatch):
    # Without --study the study run last in a shared storage is taken: another person's name.
    import search.shown.report

    project = tmp_path / "project" / "a" / "b"
    project.mkdir(parents=True)
    monkeypatch.chdir(project)  # the working folder: where runs/ and submissions/ go
    reports = []
    monkeypatch.setattr(search.shown.report, "write_report", lambda study, out, **kw: reports.append(out) or out)
    storage = f"sqlite:///{tmp_path / 'shared.db'}"
    for name, given in (("../../x", []), (str(tmp_path / "abs"), ["--study", str(tmp_path / "abs")])):
        optuna.copy_study(from_study_name="two", from_storage=two_trials["storage"], to_storage=storage,
                          to_study_name=name)
        for command in ("retrain", "export", "report"):
            assert main([command, "--storage", storage, *given, "--device", "cpu"]) == 0
    made = {p.relative_to(project).parts[:2] for p in project.rglob("*") if p.is_file()}
    absolute = str(tmp_path / "abs").replace("/", "%2F")
    assert made == {("runs", "%2E.%2F..%2Fx"), ("submissions", "%2E.%2F..%2Fx.csv"),
                    ("runs", absolute), ("submissions", f"{absolute}.csv")}
    assert [p.relative_to(project).parts[:2] for p in reports] == [("runs", "%2E.%2F..%2Fx"), ("runs", absolute)]
    assert {p.name for p in tmp_path.iterdir()} == {"project", "shared.db"}  # nothing landed outside
