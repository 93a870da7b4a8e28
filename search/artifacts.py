"""Optuna artifacts: files (checkpoints, submissions, reports) attached to the trial they came from.

They live in a FileSystemArtifactStore beside the storage, so `dashboard` finds them with no
setting: for ``sqlite:///dir/x.db`` or a journal file (``journal:///dir/x.log``, ``dir/x.log``)
that is ``dir/artifacts/``; a server storage (PostgreSQL, MySQL) has no folder of its own, so its
artifacts go to ``studies/artifacts/`` of the working folder. ``GIC_ARTIFACTS``, when set, names the
folder for every storage (a shared disk that workers on many machines and the dashboard all see).

An artifact is a copy of what a command already wrote, so a store that cannot take it (full, read
only) is a warning line, never the command's failure, and leaves neither a cut file nor a reference.
"""

from __future__ import annotations

import contextlib
import json
import mimetypes
import os
import sys
import tempfile
import uuid
from dataclasses import asdict
from pathlib import Path

import optuna
from optuna.artifacts import ArtifactMeta, FileSystemArtifactStore, get_all_artifact_meta, upload_artifact

from search.journal import journal_path
from search.optuna_private import study_id, study_storage, trial_id
from search.places import studies_dir

__all__ = ["artifact_dir", "artifact_store", "attach", "attach_json", "list_artifacts"]

_TRIAL_PREFIX = "dashboard:artifacts:"  # optuna-dashboard's key for artifacts of a given trial


def artifact_dir(storage_url: str) -> Path:
    if os.environ.get("GIC_ARTIFACTS"):
        return Path(os.environ["GIC_ARTIFACTS"])
    if storage_url.startswith("sqlite:///"):
        db = storage_url.removeprefix("sqlite:///")
        if db and db != ":memory:":
            return Path(db).resolve().parent / "artifacts"
    elif (journal := journal_path(storage_url)) is not None:
        return journal.resolve().parent / "artifacts"
    return studies_dir() / "artifacts"


class _Store(FileSystemArtifactStore):
    def write(self, artifact_id: str, content_body) -> None:
        try:
            super().write(artifact_id, content_body)
        except BaseException:  # a cut file would be served by the dashboard as if it were whole
            with contextlib.suppress(OSError):
                os.remove(self._get_filepath(artifact_id))
            raise


def artifact_store(storage_url: str) -> FileSystemArtifactStore:
    path = artifact_dir(storage_url)
    path.mkdir(parents=True, exist_ok=True)
    return _Store(str(path))


_failed: set[Path] = set()  # stores that refused a file in this process: one warning, not one a file


def attach(study: optuna.Study, trial_number: int, path: Path, storage_url: str) -> str | None:
    """Uploads ``path`` to trial ``trial_number`` of ``study``; returns the artifact id, or None when
    the store could not take it (a warning says so once a process).

    Optuna's ``upload_artifact`` writes a trial's system attributes, which a finished trial no longer
    accepts (retrain/export/report run after the search), and with ``study_or_trial=study`` makes a
    study's artifact, which the dashboard does not list on the trial's page. So a finished trial's
    reference goes where optuna-dashboard (0.21) also looks: the study's system attribute
    ``dashboard:artifacts:<trial id>:<artifact id>``, with upload_artifact's meta, after the file.
    """
    folder = artifact_dir(storage_url)
    if folder in _failed:
        return None
    try:
        return _attach(study, trial_number, path, storage_url)
    except OSError as e:
        _failed.add(folder)
        print(f"warning: {Path(path).name} and any later files not attached to trial {trial_number} "
              f"({folder}: {e.strerror or e}); they are saved where the command wrote them", file=sys.stderr,
              flush=True)
        return None


def _attach(study: optuna.Study, trial_number: int, path: Path, storage_url: str) -> str:
    trial = next(t for t in study.trials if t.number == trial_number)
    store = artifact_store(storage_url)
    storage = study_storage(study)
    if not trial.state.is_finished():
        return upload_artifact(artifact_store=store, file_path=str(path), study_or_trial=trial, storage=storage)
    mimetype, encoding = mimetypes.guess_type(str(path))  # as upload_artifact guesses them
    meta = ArtifactMeta(str(uuid.uuid4()), Path(path).name, mimetype or "application/octet-stream", encoding)
    with open(path, "rb") as f:  # the file first: a reference never points at nothing
        store.write(meta.artifact_id, f)
    storage.set_study_system_attr(study_id(study), f"{_TRIAL_PREFIX}{trial_id(trial)}:{meta.artifact_id}",
                                  json.dumps(asdict(meta)))
    return meta.artifact_id


def attach_json(trial: optuna.Trial, name: str, content, storage_url: str) -> str:
    """Uploads ``content`` as the JSON file ``name`` to a running trial; returns the artifact id."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_text(json.dumps(content))
        return upload_artifact(artifact_store=artifact_store(storage_url), file_path=str(path), study_or_trial=trial)


def list_artifacts(study: optuna.Study, trial_number: int) -> list[str]:
    """The file names attached to a trial (either way ``attach`` stores them)."""
    trial = next(t for t in study.trials if t.number == trial_number)
    names = [m.filename for m in get_all_artifact_meta(trial, storage=study_storage(study))]
    prefix = f"{_TRIAL_PREFIX}{trial_id(trial)}:"
    attrs = study_storage(study).get_study_system_attrs(study_id(study))
    return names + [json.loads(v)["filename"] for k, v in attrs.items() if k.startswith(prefix) and v != "null"]
