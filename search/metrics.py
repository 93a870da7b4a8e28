"""Classification metrics from a confusion matrix kept on the device.

The matrix is accumulated batch by batch with ``bincount`` and read once per evaluation, so an
epoch costs one host sync however many batches it has.
"""

from __future__ import annotations

import torch

__all__ = ["METRICS", "confusion_update", "scores"]

METRICS = ("accuracy", "macro_f1")


def confusion_update(confusion: torch.Tensor, target: torch.Tensor, pred: torch.Tensor) -> None:
    """Adds a batch to ``confusion`` (rows: true class, columns: predicted), in place."""
    n = confusion.shape[0]
    confusion += torch.bincount(target * n + pred, minlength=n * n).view(n, n)


def scores(confusion: torch.Tensor) -> dict[str, float | list[float]]:
    """Accuracy, macro-F1 and per-class F1, as scikit-learn computes them.

    Like ``sklearn.metrics.f1_score(average="macro")``, the mean runs over the classes that occur in
    the targets or the predictions; a class never seen on either side does not count.
    """
    c = confusion.double().cpu()
    tp = c.diag()
    true, pred = c.sum(1), c.sum(0)
    denom = true + pred
    f1 = torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.zeros_like(tp))
    present = denom > 0
    total = c.sum().item()
    return {
        "accuracy": tp.sum().item() / total if total else 0.0,
        "macro_f1": f1[present].mean().item() if present.any() else 0.0,
        "per_class_f1": [round(v, 4) for v in f1.tolist()],
    }
