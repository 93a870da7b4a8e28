"""Classification metrics, per task.

Multiclass: a confusion matrix accumulated batch by batch with ``bincount`` and read once per
evaluation, so an epoch costs one host sync however many batches it has. Binary and multilabel:
the validation logits are gathered on the device and scored once per epoch with scikit-learn.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch

from gic_common.errors import UserError

__all__ = ["binary_scores", "check_measurable", "confusion_update", "cross_fitted_scores", "multilabel_scores",
           "scores", "tune_thresholds"]


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


def binary_scores(logits: torch.Tensor, target: torch.Tensor) -> dict[str, float | list[float]]:
    """Accuracy at probability 0.5, ROC AUC, F1 of each class and the confusion matrix, from one logit
    per image."""
    from sklearn.metrics import confusion_matrix, f1_score, roc_auc_score  # a multiclass run never imports them

    score = logits.detach().float().cpu().numpy().ravel()
    y = target.cpu().numpy().ravel().astype(np.int64)
    pred = (score > 0).astype(np.int64)
    # AUC needs both classes in the targets (a stratified split has them, a given val may not). Without
    # them there is no measurement: NaN, since 0.5 would read as a model at chance.
    auc = float(roc_auc_score(y, score)) if len(np.unique(y)) == 2 else float("nan")
    per_class = f1_score(y, pred, labels=[0, 1], average=None, zero_division=0.0)
    return {
        "accuracy": float((pred == y).mean()),
        "roc_auc": auc,
        "macro_f1": float(per_class.mean()),
        "per_class_f1": [round(float(v), 4) for v in per_class],
        "confusion": confusion_matrix(y, pred, labels=[0, 1]).tolist(),
    }


def check_measurable(metric: str, task: str, target: torch.Tensor, split: str,
                     class_names: list[str] | None = None) -> None:
    """Refuses a study's metric that ``split`` cannot measure, before a trial trains to a value that
    means nothing: ROC AUC needs both classes in the split."""
    present = torch.unique(target).tolist()
    if metric == "roc_auc" and task == "binary" and len(present) < 2:
        which = " ".join(class_names[int(c)] if class_names else str(c) for c in present) or "none"
        raise UserError(f"the {split} split holds one class ({which}): roc_auc cannot be measured on it; "
                        f"use --metric accuracy, or a {split} split with both classes")


def tune_thresholds(probs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Per label, the probability cut that maximises that label's F1 on these images (N, L).

    Sorting each label's probabilities, predicting the top k positive gives F1 = 2 TP_k / (k + P);
    the best k is found for all labels at once and the cut is put half way to the next image. A
    label with no positive image keeps 0.5: there is nothing to tune it on.
    """
    p, order = probs.float().sort(0, descending=True)
    y = target.float().gather(0, order)
    tp = y.cumsum(0)
    k = torch.arange(1, len(p) + 1, device=p.device, dtype=p.dtype)[:, None]
    positives = y.sum(0, keepdim=True)
    f1 = 2 * tp / (k + positives)
    best = f1.argmax(0)  # first maximum: the highest cut among equals
    below = torch.cat([p, torch.zeros_like(p[:1])]).gather(0, (best + 1)[None]).squeeze(0)
    cut = (p.gather(0, best[None]).squeeze(0) + below) / 2
    return torch.where(positives.squeeze(0) > 0, cut, torch.full_like(cut, 0.5))


def multilabel_scores(probs: torch.Tensor, target: torch.Tensor, thresholds: torch.Tensor) -> dict:
    """Micro, macro and samples F1 and each label's F1 at the given per-label thresholds.

    An image with no label predicted and none true counts as a perfect sample (samples F1), as it
    is exactly right; a label with no positives on either side scores 0 in the macro mean, as
    scikit-learn's ``zero_division=0`` does.
    """
    from sklearn.exceptions import UndefinedMetricWarning
    from sklearn.metrics import f1_score

    y = target.cpu().numpy().astype(np.int64)
    pred = (probs >= thresholds).cpu().numpy().astype(np.int64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        per_label = f1_score(y, pred, average=None, zero_division=0.0)
        return {
            "micro_f1": float(f1_score(y, pred, average="micro", zero_division=0.0)),
            "macro_f1": float(per_label.mean()),
            "samples_f1": float(f1_score(y, pred, average="samples", zero_division=1.0)),
            "per_class_f1": [round(float(v), 4) for v in per_label],
        }


def cross_fitted_scores(probs: torch.Tensor, target: torch.Tensor) -> dict:
    """``multilabel_scores`` with every image judged at cuts tuned on the other half of these images.

    Cuts tuned on the images they score fit those images' noise, so the F1 is optimistic (on labels a
    model knows nothing of it still finds one above chance). Tuning on half A to score half B and the
    reverse, the two halves' predictions are pooled and scored as one. The halves are a fixed draw,
    the same every epoch, so that a learning curve does not move with the split.
    """
    n = len(probs)
    order = torch.randperm(n, generator=torch.Generator().manual_seed(0)).to(probs.device)
    halves = (order[: n // 2], order[n // 2 :])
    cuts = torch.empty_like(probs, dtype=torch.float32)
    for scored, tuned in (halves, halves[::-1]):
        cuts[scored] = tune_thresholds(probs[tuned], target[tuned])
    return multilabel_scores(probs, target, cuts)
