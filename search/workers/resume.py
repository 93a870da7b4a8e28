"""A continued study keeps the settings it recorded: rerunning `run` without a flag must not put the
preset's value in its place (a study made with --epochs 15 went on at the quick preset's 3). A flag
on the command line still changes its setting, and one line says what changed."""

from __future__ import annotations

import sys
from dataclasses import replace
from typing import Any

import optuna

from search.config import StudyConfig
from search.data.options import DATA_SETTINGS, DataOptions
from search.workers.storage import study_id

__all__ = ["CHANGEABLE", "keep_recorded"]

# Recorded settings a continued study may change when a flag names them (StudyConfig field names).
CHANGEABLE = ("epochs", "trials", "sampler", "pruner", "front", "max_mflops", "compile", "preset", "prior")
# Settings that make the study what it is: a different value is refused later (run._check_same_study),
# so here they are only kept when no flag names them.
IDENTITY = ("seed", "metric", "objectives")


def _same(key: str, a: Any, b: Any) -> bool:
    if key == "compile":  # a preset writes "off" for what the study records as None
        a, b = (None if v == "off" else v for v in (a, b))
    return a == b


def keep_recorded(settings: StudyConfig, storage: optuna.storages.BaseStorage | None) -> StudyConfig:
    """``settings`` with the recorded value of every setting its command line did not name, when the study exists
    in ``storage`` (None: no storage yet); says in one line which recorded settings the command line changes."""
    if settings.given is None:
        return settings
    found = study_id(storage, settings.study_name())
    attrs = {} if found is None else storage.get_study_user_attrs(found)
    if not attrs:
        return settings
    kept: dict[str, Any] = {}
    changes = []
    for key in (*CHANGEABLE, *IDENTITY):
        if key not in attrs:  # a study made before the setting was recorded
            continue
        if key not in settings.given:
            kept[key] = attrs[key]
        elif key in CHANGEABLE and not _same(key, attrs[key], getattr(settings, key)):
            changes.append(f"{key} {attrs[key]!r} -> {getattr(settings, key)!r}")
    if "metric" in kept:
        kept["metric_from_preset"] = False  # resolved for this data when the study was made
    raw = attrs.get("data_options") or {}
    recorded = DataOptions.from_json(raw)
    data = {k: getattr(recorded, k) for k in DATA_SETTINGS if k in raw and k not in settings.given}
    if changes:
        print(f"study {settings.study_name()!r}: the command line changes {', '.join(changes)}; its other "
              f"settings stay as recorded", file=sys.stderr, flush=True)
    return replace(settings, **kept, data_options=replace(settings.data_options, **data))
