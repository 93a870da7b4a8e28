"""What the speed benchmarks share: one row format, medians over repeated runs, and running a
real study through the command line a user types (so start-up and storage costs are counted).

Every figure in the harness's table is the median of ``--repeats`` runs; the runs' range sits
beside it so a reader sees how much a figure moves between runs.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import optuna

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


@dataclass
class Row:
    """One figure: which benchmark item, under which setting, what is measured, and each run's value."""

    item: str
    setting: str
    measure: str
    values: list[float] = field(default_factory=list)
    fmt: str = "{:.3g}"

    def cells(self) -> list[str]:
        med = statistics.median(self.values)
        spread = (f"{self.fmt.format(min(self.values))} - {self.fmt.format(max(self.values))}"
                  if len(self.values) > 1 else "")
        return [self.item, self.setting, self.measure, self.fmt.format(med), str(len(self.values)), spread]


def merge(rows: list[Row]) -> list[Row]:
    """Rows from repeated runs joined: one row per (item, setting, measure), in first-seen order."""
    out: dict[tuple[str, str, str], Row] = {}
    for r in rows:
        key = (r.item, r.setting, r.measure)
        if key in out:
            out[key].values.extend(r.values)
        else:
            out[key] = Row(r.item, r.setting, r.measure, list(r.values), r.fmt)
    return list(out.values())


def table(rows: list[Row]) -> str:
    lines = ["| item | setting | measure | median | runs | range |", "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in merge(rows)]
    return "\n".join(lines)


@dataclass
class StudyRun:
    """A study run to its end by `python -m search run`, and what it left in its storage."""

    wall: float
    study: optuna.Study
    output: str

    @property
    def finished(self) -> list[optuna.trial.FrozenTrial]:
        """Trials with a verdict (complete or pruned), rejected ones included. A failed trial (an
        interrupted or withdrawn one) is not work done."""
        return self.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,
                                                              optuna.trial.TrialState.PRUNED))

    @property
    def epochs(self) -> int:
        """Epochs actually trained, over every trial (a trial rejected untrained adds none)."""
        return sum(t.user_attrs.get("epochs", 0) for t in self.finished)

    @property
    def best(self) -> float:
        return max((t.value for t in self.finished if t.state == optuna.trial.TrialState.COMPLETE),
                   default=float("nan"))

    def design_value(self, name: str) -> float:
        """The enqueued seed design's value: its last reported epoch if it was pruned."""
        for t in self.finished:
            if t.user_attrs.get("design") == name:
                if t.value is not None:
                    return t.value
                return t.intermediate_values[max(t.intermediate_values)] if t.intermediate_values else float("nan")
        return float("nan")

    @property
    def trained(self) -> int:
        """Trials that take budget: what `--trials` counts (search/trial/budget.py)."""
        from search.trial.budget import takes_budget

        return sum(takes_budget(t) for t in self.finished)

    @property
    def stopped(self) -> int:
        """Pruned trials that took budget: the pruner's, and those that ran out of memory or diverged,
        in their first epoch too (they record no epochs, yet their training ran)."""
        from search.trial.budget import takes_budget

        return sum(t.state == optuna.trial.TrialState.PRUNED and takes_budget(t) for t in self.finished)

    @property
    def rejected(self) -> int:
        """Trials the engine turned away before training, by its own mark (search/trial/budget.py), so
        that this count and the budget's agree."""
        from search.trial.budget import rejected

        return sum(rejected(t) for t in self.finished)


def run_study(space: str, storage: str, name: str, *flags: str, log: Path | None = None,
              preset_timeout: bool = False) -> StudyRun:
    """Runs `python -m search run SPACE` as a user would and times it, start-up included. Unless
    ``preset_timeout``, the preset's timeout (the quick CPU study has one) is lifted: it would cut
    an arm short, and the arm would time the timeout (an explicit --timeout in ``flags`` wins)."""
    cmd = [sys.executable, "-m", "search", "run", space, "--storage", storage, "--study", name,
           "--no-progress", *([] if preset_timeout else ["--timeout", "86400"]), *flags]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    output = done.stdout + done.stderr
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text(output)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed (exit {done.returncode}):\n{output[-3000:]}")
    from search.workers.storage import load_study

    return StudyRun(wall, load_study(name, storage), output)


def study_parser(doc: str) -> argparse.ArgumentParser:
    """The flags every study-running item takes; each script adds its own (trials, epochs, ...)."""
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="dataset (default: the preset's synthetic benchmark)")
    p.add_argument("--repeats", type=int, default=3, help="runs per figure; the table gives their median")
    p.add_argument("--flags", type=shlex.split, default=[], help="more `run` flags for every study, "
                   "e.g. \"--trials-per-gpu 4\"")
    p.add_argument("--logs", type=Path, help="keep each study's output here")
    return p
