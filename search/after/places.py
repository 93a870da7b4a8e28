"""Where a study's files go: ``runs/STUDY/`` and ``submissions/STUDY.csv`` under the project.

A study name is any string (the study run last in a shared storage may be another person's), so it
becomes one file name: ``/``, ``\\``, ``%`` and control characters are %-escaped as in URLs, and a
leading dot too, so ``..`` or ``/abs/x`` cannot reach outside the folder. Ordinary names, those
`run` makes included, are unchanged, and two names never share a folder.
"""

from __future__ import annotations

import hashlib

__all__ = ["study_file_name"]

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
