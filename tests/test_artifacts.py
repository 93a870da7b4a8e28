"""Where artifacts go: beside a SQLite or journal file whatever form its URL takes, else studies/artifacts/,
or wherever GIC_ARTIFACTS says for every storage."""

from __future__ import annotations

import errno
import json
import os

import optuna
import pytest
from optuna.artifacts import FileSystemArtifactStore, get_all_artifact_meta, upload_artifact

from search.artifacts import artifact_dir, artifact_store, attach, list_artifacts
from search.workers.storage import open_storage


def test_artifacts_lie_beside_the_storage_file(tmp_path, monkeypatch):
    monkeypatch.delenv("GIC_ARTIFACTS", raising=False)
    beside = tmp_path / "artifacts"
    for url in (f"sqlite:///{tmp_path / 's.db'}", f"journal://{tmp_path / 'j.log'}", str(tmp_path / "j.log")):
        assert artifact_dir(url) == beside, url
    monkeypatch.chdir(tmp_path)
    assert artifact_dir("journal://rel/j.log") == tmp_path / "rel" / "artifacts"
    assert artifact_dir("postgresql://u@db/optuna") == tmp_path / "studies" / "artifacts"  # the working folder's
    # The dashboard opens the same store: a file attached to a journal study lands beside the journal.
    url = f"journal://{tmp_path / 'j.log'}"
    study = optuna.create_study(study_name="a", storage=open_storage(url))
    study.tell(study.ask(), 1.0)
    notes = tmp_path / "notes.txt"
    notes.write_text("kept")
    artifact_id = attach(study, 0, notes, url)
    assert (beside / artifact_id).read_text() == "kept"


def test_a_finished_trials_file_is_described_as_optunas_own_upload_describes_it(tmp_path, monkeypatch):
    monkeypatch.delenv("GIC_ARTIFACTS", raising=False)
    url = f"sqlite:///{tmp_path / 's.db'}"
    study = optuna.create_study(storage=url)
    running = study.ask()
    study.tell(study.ask(), 1.0)
    for name in ("notes.txt", "sub.csv", "model.safetensors", "report.html.gz"):
        (tmp_path / name).write_text("x")
        upload_artifact(artifact_store=artifact_store(url), file_path=str(tmp_path / name), study_or_trial=running)
        attach(study, 1, tmp_path / name, url)
    optunas = {m.filename: m for m in get_all_artifact_meta(running)}
    ours = [json.loads(v) for k, v in study._storage.get_study_system_attrs(study._study_id).items()
            if k.startswith(f"dashboard:artifacts:{study.trials[1]._trial_id}:")]
    assert len(ours) == 4 and {m["filename"] for m in ours} == set(optunas)
    for meta in ours:  # the type and the encoding the dashboard serves it with: text/plain, gzip, ...
        assert (meta["mimetype"], meta["encoding"]) == (optunas[meta["filename"]].mimetype,
                                                       optunas[meta["filename"]].encoding), meta


def test_gic_artifacts_names_the_folder_for_every_storage(tmp_path, monkeypatch):
    monkeypatch.setenv("GIC_ARTIFACTS", str(tmp_path / "shared"))
    for url in (f"sqlite:///{tmp_path / 's.db'}", f"journal://{tmp_path / 'j.log'}", "postgresql://u@db/optuna"):
        assert artifact_dir(url) == tmp_path / "shared", url


@pytest.mark.slow
@pytest.mark.parametrize("classes", [4, 2])
def test_each_trial_carries_its_learning_curve_and_confusion_matrix(classes, tmp_path, monkeypatch):
    from search.config import StudyConfig
    from search.data.synth import generate
    from search.workers.run import run_study

    monkeypatch.delenv("GIC_ARTIFACTS", raising=False)
    data = tmp_path / "data"
    generate(data, classes=classes, size=16, train=60, val=20, test=4, seed=0)
    url = f"sqlite:///{tmp_path / 's.db'}"
    cfg = StudyConfig(space="cnn", data=data, study="a", storage=url, trials=1, epochs=2, device="cpu",
                      pruner={"name": "none"}, heartbeat=None)
    study = run_study(cfg, progress=False)
    trial = study.trials[0]
    metas = {m.filename: m for m in get_all_artifact_meta(trial, storage=study._storage)}
    assert set(metas) == {"learning_curve.json", "confusion_matrix.json"}
    store = artifact_store(url)

    def read(name: str) -> dict:
        with store.open_reader(metas[name].artifact_id) as f:
            return json.loads(f.read())

    curve = read("learning_curve.json")
    assert [e["accuracy"] for e in curve["epochs"]] == [trial.intermediate_values[1], trial.intermediate_values[2]]
    confusion = read("confusion_matrix.json")
    assert len(confusion["classes"]) == len(confusion["matrix"]) == classes  # binary: 2x2, not 1x1
    assert sum(map(sum, confusion["matrix"])) == 20  # every validation image, once
    matrix = confusion["matrix"]
    assert sum(matrix[i][i] for i in range(classes)) / 20 == pytest.approx(trial.user_attrs["accuracy"])


@pytest.mark.slow
def test_a_full_artifact_store_is_a_warning_and_the_command_stands(two_trials, tmp_path, monkeypatch, capsys):
    # retrain and export printed a traceback and exited 1 after their work was done, and left a cut file.
    from search.cli import main

    def full(self, artifact_id, content_body):
        with open(self._get_filepath(artifact_id), "wb") as f:
            f.write(content_body.read(10))  # what fitted before the disk filled
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(FileSystemArtifactStore, "write", full)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    optuna.copy_study(from_study_name="two", from_storage=two_trials["storage"], to_storage=storage)
    common = ["--storage", storage, "--study", "two", "--device", "cpu"]
    # A store warns once a process (the CLI runs one command a process): one store a command here.
    for command, out in (("retrain", ["--trial", "1", "--out", str(tmp_path / "model")]),
                         ("export", ["--out", str(tmp_path / "sub.csv")])):
        store = tmp_path / f"{command}-store"
        monkeypatch.setenv("GIC_ARTIFACTS", str(store))
        assert main([command, *common, *out]) == 0
        err = capsys.readouterr().err
        warnings = [line for line in err.splitlines() if line.startswith("warning:")]
        assert "Traceback" not in err and len(warnings) == 1 and f"{store}: No space left on device" in err, err
        assert list(store.iterdir()) == []  # no cut file left behind
    assert (tmp_path / "model" / "model.safetensors").is_file() and (tmp_path / "sub.csv").is_file()
    assert list_artifacts(optuna.load_study(study_name="two", storage=storage), 1) == []  # nor a reference
