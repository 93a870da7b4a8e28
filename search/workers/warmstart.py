"""Warm start: a new study begins from an earlier one of the same space. When both measure alike
(SAME_MEASURE), the earlier study's finished trials are copied in as history: the sampler and the
pruner learn from all of them, and none trains again. Else its best configurations train again."""

from __future__ import annotations

import json
from dataclasses import dataclass

import optuna

from gic_common.errors import UserError
from search.console import log
from search.trial.budget import COPIED, FINISHED
from search.workers.ranking import best_completed
from search.workers.storage import load_study

__all__ = ["WarmStart", "warm_start"]

SAME_MEASURE = ("data", "data_options", "metric", "objectives", "epochs")  # the settings a trial's values depend on


@dataclass(frozen=True)
class WarmStart:
    source: optuna.Study
    best: list[optuna.trial.FrozenTrial]  # its best trials, best first

    def differs(self, attrs: dict) -> list[str]:
        """The settings of SAME_MEASURE in which a new study recording ``attrs`` measures otherwise."""
        stored = json.loads(json.dumps(attrs))  # as the storage gives them back: tuples are lists
        return [key for key in SAME_MEASURE if self.source.user_attrs.get(key) != stored.get(key)]

    def history(self, attrs: dict) -> list[optuna.trial.FrozenTrial]:
        """The finished trials a new study recording ``attrs`` takes in as its own; none when it measures otherwise."""
        return [] if self.differs(attrs) else self.source.get_trials(states=FINISHED)

    def begin(self, study: optuna.Study) -> None:
        """Starts ``study`` (new, its settings recorded): the source's history copied in, or its best queued."""
        name = self.source.study_name
        history = self.history(study.user_attrs)
        if not history:
            for trial in self.best:
                study.enqueue_trial(trial.params, user_attrs={"design": f"{name}#{trial.number}"}, skip_if_exists=True)
            log(f"warm start: the best {len(self.best)} configurations of {name!r} train again "
                f"(its {', '.join(self.differs(study.user_attrs))} differ)")
            return
        for trial in history:  # marked: they take none of this study's --trials
            trial.user_attrs = {**trial.user_attrs, COPIED: f"{name}#{trial.number}"}
        study.add_trials(history)
        log(f"warm start: the {len(history)} finished trials of {name!r} are copied in as history (same data, "
            f"metric and epochs); none trains again")


def warm_start(source_name: str, storage: str, space: str, k: int,
               opened: optuna.storages.BaseStorage | None = None) -> WarmStart:
    """Study ``source_name`` (same storage, same space) and its best ``k`` trials, checked before the
    new study is made so that a bad name leaves nothing behind. ``opened``: ``storage`` opened already."""
    source = load_study(source_name, storage, opened=opened)
    their_space = source.user_attrs.get("space")
    if their_space != space:
        raise UserError(f"--from-study {source_name}: it searched space {their_space!r}, not {space!r}; "
                        f"its configurations are not points of this space")
    chosen = best_completed(source, k)
    if not chosen:
        raise UserError(f"--from-study {source_name}: it has no completed trial to start from")
    return WarmStart(source, chosen)
