"""Warm start: a new study begins with the best configurations of an earlier one on the same space."""

from __future__ import annotations

import optuna

from search.errors import UserError
from search.workers.ranking import best_completed
from search.workers.storage import load_study

__all__ = ["warm_start"]


def warm_start(source_name: str, storage: str, space: str, k: int,
               opened: optuna.storages.BaseStorage | None = None) -> list[optuna.trial.FrozenTrial]:
    """The best ``k`` trials of study ``source_name`` (same storage, same space), checked before the
    new study is made so that a bad name leaves nothing behind. ``opened``: ``storage`` opened already."""
    source = load_study(source_name, storage, opened=opened)
    their_space = source.user_attrs.get("space")
    if their_space != space:
        raise UserError(f"--from-study {source_name}: it searched space {their_space!r}, not {space!r}; "
                        f"its configurations are not points of this space")
    chosen = best_completed(source, k)
    if not chosen:
        raise UserError(f"--from-study {source_name}: it has no completed trial to start from")
    return chosen
