"""Plots of a final (retrained) model on the validation split: what it gets wrong and what it sees.

Confusion matrix and per-class F1 sorted worst first (seed 003 found classes that were nearly never
right), a grid of misclassified images with their true and predicted labels, the first layer's
filters and its activation maps for one image (seed 004 looked at those to trust its faces model).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import plotly.express as px
import plotly.graph_objects as go
import torch
from plotly.subplots import make_subplots
from sklearn.metrics import confusion_matrix, f1_score
from torch import nn

from gic_common.errors import UserError
from search.after.ensemble import decide, load_members, needs_own_cuts, predict
from search.data.options import DataOptions
from search.trial.inputs import load_data
from search.trial.metrics import tune_thresholds

__all__ = ["ModelView", "activation_maps", "confusions", "first_filters", "load_view", "misclassified",
           "per_class_f1"]


@dataclass
class ModelView:
    """A model's validation predictions and what the plots need to draw them."""

    model: nn.Module  # the first member: filters and activations belong to one network
    mean: torch.Tensor
    std: torch.Tensor
    class_names: list[str]
    val_x: np.ndarray  # uint8 (N, C, H, W)
    val_y: np.ndarray
    pred: np.ndarray
    held_out: bool  # False when the model was trained on train+val: its scores are not honest
    members: int
    task: str = "multiclass"  # multilabel: val_y and pred are (N, L) 0/1 rows


def load_view(model_dir: Path, device: torch.device) -> ModelView:
    members, metas = load_members(model_dir, device)
    meta = metas[0]
    # The validation split as the search and retrain made it: same image size, same split of train
    # when the data has no validation split of its own.
    options = DataOptions.from_json(meta.get("data_options"))
    ds = load_data(Path(meta["data"]), options, quiet=True)
    if ds.val_x is None:
        raise UserError(f"{meta['data']}: no validation split to judge the model on")
    task = meta.get("task", "multiclass")
    probs = predict(members, torch.from_numpy(ds.val_x).to(device), task=task)
    thresholds = meta.get("thresholds")
    if task == "multilabel" and needs_own_cuts(members, tta=False):  # as export cuts an ensemble
        thresholds = tune_thresholds(probs, torch.from_numpy(ds.val_y).to(device)).tolist()
    return ModelView(
        members[0].model, members[0].mean, members[0].std, meta["class_names"], ds.val_x, ds.val_y,
        decide(probs, task, thresholds).cpu().numpy(), all(m["train_on"] == "train" for m in metas),
        len(members), task,
    )


def _labels(v: ModelView, y: np.ndarray) -> str:
    """A true or predicted label as words: the class, or a multilabel row's labels joined by +."""
    if v.task == "multilabel":
        return "+".join(v.class_names[i] for i in np.flatnonzero(y)) or "none"
    return v.class_names[int(y)]


def _wrong(v: ModelView) -> np.ndarray:
    """Per image: the prediction is not exactly the truth (for multilabel, any label differs)."""
    diff = v.pred != v.val_y
    return diff.any(1) if diff.ndim == 2 else diff


def _caveat(v: ModelView) -> str:
    """What a title adds when the model trained on the very validation images it is shown on."""
    return "" if v.held_out else ": trained on them (train+val), so not a held-out score"


def confusions(v: ModelView) -> go.Figure:
    if v.task == "multilabel":
        raise UserError("a multilabel model has no single confusion matrix; see its per-label F1")
    n = len(v.class_names)
    cm = confusion_matrix(v.val_y, v.pred, labels=list(range(n)))
    fig = px.imshow(cm, x=v.class_names, y=v.class_names, color_continuous_scale="Blues",
                    labels={"x": "predicted", "y": "true", "color": "images"}, text_auto=n <= 20)
    fig.update_layout(title=f"Confusion matrix (validation{_caveat(v)})", height=max(450, 12 * n),
                      width=max(550, 12 * n))
    return fig


def per_class_f1(v: ModelView) -> go.Figure:
    n = len(v.class_names)
    f1 = f1_score(v.val_y, v.pred, labels=list(range(n)), average=None, zero_division=0)
    order = np.argsort(f1, kind="stable")  # worst first: the classes to look at
    fig = go.Figure(go.Bar(x=[v.class_names[i] for i in order], y=f1[order],
                           hovertemplate="class %{x}: F1 %{y:.3f}<extra></extra>"))
    fig.update_layout(title=f"Per-class F1, worst first (macro-F1 {f1.mean():.3f}{_caveat(v)})",
                      xaxis={"type": "category", "title": "class"}, yaxis={"title": "F1", "range": [0, 1]})
    return fig


def _rgb(img: np.ndarray) -> np.ndarray:
    """(C, H, W) uint8 -> (H, W, 3), grayscale repeated: go.Image draws RGB only."""
    hwc = img.transpose(1, 2, 0)
    return np.repeat(hwc, 3, axis=2) if hwc.shape[2] == 1 else hwc[:, :, :3]


def _image_grid(images: list[np.ndarray], titles: list[str], cols: int, title: str) -> go.Figure:
    rows = max(1, math.ceil(len(images) / cols))
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.01,
                        vertical_spacing=0.3 / rows)
    for i, img in enumerate(images):
        fig.add_trace(go.Image(z=img), row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    fig.update_annotations(font_size=10)
    fig.update_layout(title=title, height=140 * rows + 80, margin={"l": 10, "r": 10})
    return fig


def misclassified(v: ModelView, limit: int = 24) -> go.Figure:
    every = np.flatnonzero(_wrong(v))
    wrong = every[:limit]
    titles = [f"true {_labels(v, v.val_y[i])} / pred {_labels(v, v.pred[i])}" for i in wrong]
    title = f"Misclassified validation images ({len(every)} of {len(v.val_y)}; first {len(wrong)}{_caveat(v)})"
    return _image_grid([_rgb(v.val_x[i]) for i in wrong], titles, cols=8, title=title)


def _first_conv(model: nn.Module) -> nn.Conv2d:
    conv = next((m for m in model.modules() if isinstance(m, nn.Conv2d)), None)
    if conv is None:
        raise UserError("the model has no convolution: no filters or activation maps to show")
    return conv


def first_filters(v: ModelView, limit: int = 32) -> go.Figure:
    conv = _first_conv(v.model)
    w = conv.weight.detach().float().cpu()[:limit]  # (out, in, k, k)
    if w.shape[1] != 3:  # a grayscale input or a 1x1 reduction: show the mean over inputs
        w = w.mean(1, keepdim=True)
    images = []
    for f in w:
        f = (f - f.min()) / (f.max() - f.min()).clamp(min=1e-8)  # each filter on its own scale
        images.append(_rgb((f * 255).round().byte().numpy()))
    titles = [str(i) for i in range(len(images))]
    return _image_grid(images, titles, cols=16, title=f"First-layer filters ({conv.kernel_size[0]}x"
                       f"{conv.kernel_size[1]}, {conv.out_channels} in all; first {len(images)})")


@torch.no_grad()
def activation_maps(v: ModelView, index: int = 0, limit: int = 16) -> go.Figure:
    conv = _first_conv(v.model)
    seen: list[torch.Tensor] = []
    hook = conv.register_forward_hook(lambda _m, _i, out: seen.append(out.detach().float().cpu()))
    device = next(v.model.parameters()).device
    try:
        x = torch.from_numpy(v.val_x[index : index + 1]).to(device).float().div(255)
        v.model.eval()((x - v.mean.view(1, -1, 1, 1)) / v.std.view(1, -1, 1, 1))
    finally:
        hook.remove()
    maps = seen[0][0, :limit]
    cols = 9
    rows = math.ceil((len(maps) + 1) / cols)
    titles = ["input"] + [f"channel {i}" for i in range(len(maps))]
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, horizontal_spacing=0.01)
    fig.add_trace(go.Image(z=_rgb(v.val_x[index])), row=1, col=1)
    for i, m in enumerate(maps, start=1):
        fig.add_trace(go.Heatmap(z=m.numpy()[::-1], colorscale="Viridis", showscale=False),
                      row=i // cols + 1, col=i % cols + 1)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    for i in range(1, len(maps) + 2):  # square pixels in every panel, as in the input image
        suffix = "" if i == 1 else str(i)
        fig.layout[f"yaxis{suffix}"].scaleanchor = f"x{suffix}"
    fig.update_annotations(font_size=10)
    fig.update_layout(title=f"First-layer activations for validation image {index} (class "
                      f"{_labels(v, v.val_y[index])}, predicted {_labels(v, v.pred[index])})", height=150 * rows + 80)
    return fig
