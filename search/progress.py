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


FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


class Progress:
    """An Optuna callback. ``total`` trials are still to finish in the study (None: until timeout),
    ``done`` had finished when it started. The bar counts the study's finished trials, whichever
    worker ran them: with K workers this process runs only about 1/K of them, and a bar of its own
    would stop short of the total and predict K times the time left."""

    def __init__(self, total: int | None, metric: str, enabled: bool = True, done: int = 0):
        self.metric, self.done = metric, done
        self.bar = tqdm(total=total, unit="trial", dynamic_ncols=True, disable=not enabled)

    def __call__(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        self.bar.write(trial_line(trial, self.metric))
        if len(study.directions) > 1:
            self.bar.set_postfix_str(f"Pareto front: {len(study.best_trials)} trials")
        else:
            try:
                best = study.best_trial
                self.bar.set_postfix_str(f"best {self.metric} {best.value:.4f} (trial {best.number})")
            except ValueError:  # no completed trial yet
                pass
        self.sync(study)

    def sync(self, study: optuna.Study) -> None:
        """Moves the bar to the study's finished trials (a failed one, withdrawn or failed as stale,
        is no verdict and takes no budget: no step)."""
        finished = len(study.get_trials(deepcopy=False, states=FINISHED)) - self.done
        self.bar.update(max(0, finished - self.bar.n))

    def close(self, study: optuna.Study | None = None) -> None:
        """``study``: first count the trials other workers finished after this process's last one."""
        if study is not None:
            self.sync(study)
        self.bar.close()
