"""What a CUDA out-of-memory trial becomes: a pruned trial that violates a constraint.

The choice (optuna#3472): a FAILED trial is invisible to the sampler, so TPE keeps proposing the
same too-large configuration (a bigger batch, wider layers), and every such proposal wastes a trial
that fails again. A trial that finishes with a violated constraint is one TPE sees and learns from:
infeasible trials go to its "bad" group, so the region that does not fit on this GPU gets sampled
less. PRUNED (not COMPLETE) keeps it out of ``best_trial`` and out of the pruner's rung statistics
as a value. It counts toward the study's trial budget like any other verdict: it is one.

The cost: when several trials share one GPU (``--trials-per-gpu``), an OOM may be its neighbours'
fault, and the sampler then learns a false "does not fit". That biases it mildly away from large
configurations, which on a shared GPU is the right direction anyway; the reason stays on the trial
(``pruned_reason``, ``oom``) for anyone who wants to rerun it alone.
"""

from __future__ import annotations

import optuna
import torch

__all__ = ["OOM_CONSTRAINT", "oom_verdict"]

OOM_CONSTRAINT = "cuda_oom"


def oom_verdict(trial: optuna.Trial, error: torch.OutOfMemoryError) -> optuna.TrialPruned:
    """Records the out-of-memory on ``trial`` and returns the exception to raise instead."""
    first_line = (str(error).strip().splitlines() or ["(no message)"])[0]
    reason = f"CUDA out of memory: {first_line}"
    trial.set_constraint(OOM_CONSTRAINT, 1.0)  # > 0: infeasible
    trial.set_user_attr("oom", True)
    trial.set_user_attr("pruned_reason", reason)
    return optuna.TrialPruned(reason)
