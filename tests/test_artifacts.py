"""Where artifacts go: beside a SQLite or journal file whatever form its URL takes, else studies/artifacts/,
or wherever GIC_ARTIFACTS says for every storage."""

from __future__ import annotations

import optuna

from search.artifacts import artifact_dir, attach
from search.config import PROJECT_ROOT
from search.study import open_storage


def test_artifacts_lie_beside_the_storage_file(tmp_path, monkeypatch):
    monkeypatch.delenv("GIC_ARTIFACTS", raising=False)
    beside = tmp_path / "artifacts"
    for url in (f"sqlite:///{tmp_path / 's.db'}", f"journal://{tmp_path / 'j.log'}", str(tmp_path / "j.log")):
        assert artifact_dir(url) == beside, url
    monkeypatch.chdir(tmp_path)
    assert artifact_dir("journal://rel/j.log") == tmp_path / "rel" / "artifacts"
    assert artifact_dir("postgresql://u@db/optuna") == PROJECT_ROOT / "studies" / "artifacts"
    # The dashboard opens the same store: a file attached to a journal study lands beside the journal.
    url = f"journal://{tmp_path / 'j.log'}"
    study = optuna.create_study(study_name="a", storage=open_storage(url))
    study.tell(study.ask(), 1.0)
    notes = tmp_path / "notes.txt"
    notes.write_text("kept")
    artifact_id = attach(study, 0, notes, url)
    assert (beside / artifact_id).read_text() == "kept"


def test_gic_artifacts_names_the_folder_for_every_storage(tmp_path, monkeypatch):
    monkeypatch.setenv("GIC_ARTIFACTS", str(tmp_path / "shared"))
    for url in (f"sqlite:///{tmp_path / 's.db'}", f"journal://{tmp_path / 'j.log'}", "postgresql://u@db/optuna"):
        assert artifact_dir(url) == tmp_path / "shared", url
