"""`export`: the submission CSV from a model or ensemble folder, one row per test image in the
test split's order, written atomically with LF line ends."""

from __future__ import annotations

import csv
from dataclasses import replace
from pathlib import Path

import optuna
import torch

from gic_common.errors import UserError
from search.after.ensemble import Member, decide, load_members, needs_own_cuts, own_cuts, predict
from search.after.saving import write_atomic
from search.artifacts import attach
from search.console import log
from search.data.loader import LAYOUTS, detect_layout, load_test_split, no_folder
from search.data.options import DataOptions
from search.trial.device import resolve_device
from search.trial.inputs import load_data

__all__ = ["export"]


def export(
    model_dir: Path, out: Path, data_dir: Path | None = None, device_name: str = "auto", tta: bool = False,
    study: optuna.Study | None = None, storage_url: str | None = None,
) -> Path:
    """Writes the submission from a model or ensemble folder; with ``study`` and ``storage_url`` it is
    also attached to every trial that contributed to it."""
    device = resolve_device(device_name)
    members, metas = load_members(model_dir, device)
    meta = metas[0]
    root = Path(data_dir or meta["data"])
    options = DataOptions.from_json(meta.get("data_options"))
    if not root.is_dir():
        raise UserError(no_folder(root))
    layout = detect_layout(root) if options.layout == "auto" else options.layout
    # Only the test images: the model carries its own statistics, so the other splits are not read.
    test_names, test_x = load_test_split(root, layout, image_size=options.image_size)
    if test_x is None:
        raise UserError(f"{root / LAYOUTS[layout].TEST_SPLIT}: missing; nothing to predict")
    for m in metas:
        if list(test_x.shape[1:]) != m["in_shape"]:
            raise UserError(f"{root}: images are {test_x.shape[1:]} but the model was trained on {m['in_shape']}")
    task = meta.get("task", "multiclass")
    probs = predict(members, torch.from_numpy(test_x).to(device), task=task, tta=tta)
    names = meta["class_names"]
    if task == "multilabel":  # Image, then one 0/1 column per label in label order
        cuts = _multilabel_cuts(members, meta, root, layout, options, tta, device)
        header = ["Image", *names]
        rows = [[image, *row] for image, row in zip(test_names, decide(probs, task, cuts).tolist(), strict=True)]
    else:
        labels = decide(probs, task).tolist()
        header = ["Image", "Class"]
        rows = [[image, names[c]] for image, c in zip(test_names, labels, strict=True)]

    def write(path: Path) -> None:
        with open(path, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")  # csv's default is CRLF; sample submissions and tools use LF
            w.writerow(header)
            w.writerows(rows)

    write_atomic(out, write)
    if study is not None and storage_url is not None:
        for number in dict.fromkeys(m["trial"] for m in metas if m.get("study") == study.study_name):
            attach(study, number, out, storage_url)
    return out


def _multilabel_cuts(members: list[Member], meta: dict, root: Path, layout: str, options: DataOptions, tta: bool,
                     device: torch.device) -> torch.Tensor:
    """The per-label cuts for the probabilities export writes: a single model's own, as retrain saved
    them; for an ensemble or TTA, cuts tuned now on the validation split (made again exactly as the
    search made it) for that same average, since the saved ones fit a single model's answers only."""
    if not needs_own_cuts(members, tta):
        return torch.tensor(meta.get("thresholds") or [0.5] * len(meta["class_names"]), device=device)
    val = load_data(root, replace(options, layout=layout), quiet=True)
    cuts = own_cuts(members, torch.from_numpy(val.val_x).to(device), torch.from_numpy(val.val_y).to(device), tta)
    what = f"{len(members)} models" if len(members) > 1 else "one model"
    log(f"label cuts tuned on {len(val.val_x)} validation images for the average of {what}"
        f"{' with TTA' if tta else ''}: {', '.join(f'{c:.3f}' for c in cuts.tolist())}")
    return cuts
