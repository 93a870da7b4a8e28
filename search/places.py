"""Where things are: the presets ship in the package (``search/presets/``); what the commands make goes in the
folder they run in, never beside the installed code: ``studies/`` (storages, artifacts, the user's own presets),
``data/`` (the synthetic benchmark), ``runs/STUDY/`` and ``submissions/STUDY.csv``.

A study name is any string (the study run last in a shared storage may be another person's), so it
becomes one file name: ``/``, ``\\``, ``%`` and control characters are %-escaped as in URLs, and a
leading dot too, so ``..`` or ``/abs/x`` cannot reach outside the folder. Ordinary names, those
`run` makes included, are unchanged, and two names never share a folder.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

__all__ = ["PRESETS", "runs_dir", "studies_dir", "study_file_name", "submission_file", "synth_dir"]

PRESETS = Path(__file__).resolve().parent / "presets"

_ESCAPED = frozenset("/\\%") | {chr(c) for c in (*range(32), 127)}
_MAX_BYTES = 200  # under the file systems' 255, with room for ".csv" and temporary-file prefixes


def study_file_name(name: str) -> str:
    out = "".join(f"%{ord(c):02X}" if c in _ESCAPED else c for c in name)
    if out.startswith("."):
        out = "%2E" + out[1:]
    if len(out.encode()) > _MAX_BYTES:
        # "%~" comes from no escape, and the digest keeps two long names with one beginning apart
        digest = hashlib.blake2b(name.encode(errors="surrogateescape"), digest_size=8).hexdigest()
        out = out.encode()[: _MAX_BYTES - 18].decode(errors="ignore") + "%~" + digest
    return out or "%"


def studies_dir() -> Path:
    return Path.cwd() / "studies"


def synth_dir(synth: dict[str, int]) -> Path:
    """The embedded benchmark of this size: its name says its size, so no size reuses another's files."""
    return Path.cwd() / "data" / f"synth-{synth['classes']}c-{synth['size']}px-{synth['train']}"


def runs_dir(study_name: str) -> Path:
    return Path.cwd() / "runs" / study_file_name(study_name)


def submission_file(study_name: str) -> Path:
    return Path.cwd() / "submissions" / f"{study_file_name(study_name)}.csv"
