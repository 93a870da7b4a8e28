"""What a running study prints: a bar over trials (best so far, time left) and one line a trial."""

from __future__ import annotations

import optuna
from tqdm.auto import tqdm

__all__ = ["Progress", "trial_line"]


def trial_line(trial: optuna.trial.FrozenTrial, metric: str) -> str:
    attrs = trial.user_attrs
    secs = (trial.duration.total_seconds() if trial.duration else 0.0)
    head = f"trial {trial.number:>3} {trial.state.name.lower():<8}"
    epochs = f"{attrs.get('epochs', 0)} ep, {secs:.0f}s"
    if trial.state == optuna.trial.TrialState.COMPLETE:
        return f"{head} {metric} {trial.values[0]:.4f}  ({epochs}, {attrs.get('params', 0) / 1e6:.2f}M params)"
    reason = attrs.get("pruned_reason") or attrs.get("fail_reason") or ""
    return f"{head} {reason}  ({epochs})"


class Progress:
    """An Optuna callback. ``total`` trials are expected of this process (None: until timeout)."""

    def __init__(self, total: int | None, metric: str, enabled: bool = True):
        self.metric = metric
        self.bar = tqdm(total=total, unit="trial", dynamic_ncols=True, disable=not enabled)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.bar.write(trial_line(trial, self.metric))
        if len(study.directions) > 1:
            self.bar.set_postfix_str(f"Pareto front: {len(study.best_trials)} trials")
            self.bar.update(1)
            return
        try:
            best = study.best_trial
            self.bar.set_postfix_str(f"best {self.metric} {best.value:.4f} (trial {best.number})")
        except ValueError:  # no completed trial yet
            pass
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()
