"""Binary and multilabel training: losses, mixed targets, thresholds and metrics against sklearn."""

from __future__ import annotations

import numpy as np
import optuna
import pytest
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score, roc_auc_score

from gic_common.configs import AugmentConfig, TrainConfig
from search.trial.metrics import binary_scores, check_measurable, multilabel_scores, tune_thresholds
from search.trial.train import DeviceDataset, EpochResult, evaluate, fit, make_criterion


def stripes(n=384, labels=4, side=16, seed=0, task="multilabel") -> DeviceDataset:
    """Each label brightens its own band of rows; binary uses label 0 alone."""
    g = torch.Generator().manual_seed(seed)
    y = (torch.rand(n, labels, generator=g) < 0.4).to(torch.uint8)
    x = torch.randint(0, 60, (n, 3, side, side), generator=g, dtype=torch.uint8)
    band = side // labels
    for j in range(labels):
        x[:, :, j * band : (j + 1) * band] += (y[:, j] * 150).to(torch.uint8).view(-1, 1, 1, 1)
    if task == "binary":
        y = y[:, 0].long()
    half = n // 2
    width = 1 if task == "binary" else labels
    return DeviceDataset(x[:half], y[:half], x[half:], y[half:], torch.full((3,), 0.4), torch.full((3,), 0.3),
                   width, task)


def small_cnn(outputs):
    from gic_models import create_model
    from gic_models.cnn import CNNSpec, ConvLayer

    torch.manual_seed(0)  # the same initial weights whichever tests ran before
    return create_model("cnn", CNNSpec(convs=(ConvLayer(8), ConvLayer(16)), head="avg"), outputs, (3, 16, 16))


@pytest.mark.slow
def test_multilabel_fit_learns_and_tunes_thresholds():
    data = stripes()
    history = fit(small_cnn(4), data, TrainConfig(lr=1e-2, batch_size=32, pos_weight=True), epochs=6)
    last = history[-1]
    assert last.micro_f1 > 0.8 and last.samples_f1 > 0.7 and last.macro_f1 > 0.75
    assert last.accuracy is None and len(last.thresholds) == 4 and len(last.per_class_f1) == 4
    assert history[-1].train_loss < history[0].train_loss


@pytest.mark.slow
def test_binary_fit_learns_with_one_logit():
    data = stripes(task="binary")
    model = small_cnn(1)
    history = fit(model, data, TrainConfig(lr=1e-2, batch_size=32, augment=AugmentConfig(mix="mixup")), epochs=5)
    assert history[-1].roc_auc > 0.9 and history[-1].accuracy > 0.8
    ev = evaluate(model, data)
    assert ev["roc_auc"] == pytest.approx(history[-1].roc_auc)


def test_mixed_images_get_mixed_targets():
    logits = torch.randn(6, 3)
    y = torch.randint(0, 2, (6, 3), dtype=torch.uint8)
    perm = torch.tensor([5, 4, 3, 2, 1, 0])
    loss = make_criterion("multilabel", 0.0)(logits, y, perm, 0.3)
    target = 0.3 * y.float() + 0.7 * y[perm].float()
    assert loss.item() == pytest.approx(F.binary_cross_entropy_with_logits(logits, target).item())
    weight = torch.tensor([1.0, 2.0, 3.0])
    weighted = make_criterion("multilabel", 0.0, weight)(logits, y, None, 1.0)
    assert weighted.item() == pytest.approx(
        F.binary_cross_entropy_with_logits(logits, y.float(), pos_weight=weight).item()
    )
    classes = torch.randint(0, 3, (6,))
    ce = make_criterion("multiclass", 0.1)(logits, classes, perm, 0.3)
    expected = 0.3 * F.cross_entropy(logits, classes, label_smoothing=0.1) + 0.7 * F.cross_entropy(
        logits, classes[perm], label_smoothing=0.1
    )
    assert ce.item() == pytest.approx(expected.item())


def test_thresholds_maximise_each_labels_f1():
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(200, 5, generator=g) < 0.3).to(torch.uint8)
    probs = (0.4 * y + 0.6 * torch.rand(200, 5, generator=g)).clamp(0, 1)
    y[:, 4] = 0  # a label with no positive keeps 0.5
    cuts = tune_thresholds(probs, y)
    assert cuts[4] == 0.5
    for j in range(4):
        p, t = probs[:, j].numpy(), y[:, j].numpy()
        pred = p[None, :] >= np.unique(p)[:, None]  # every cut at once, one row each
        tp = (pred & (t[None, :] == 1)).sum(1)
        brute = (2 * tp / (pred.sum(1) + t.sum())).max()
        assert f1_score(t, p >= cuts[j].item(), zero_division=0) == pytest.approx(brute)


def test_multilabel_and_binary_scores_match_sklearn():
    g = torch.Generator().manual_seed(1)
    y = (torch.rand(100, 4, generator=g) < 0.3).to(torch.uint8)
    y[:10] = 0
    probs = torch.rand(100, 4, generator=g)
    cuts = torch.full((4,), 0.6)
    s = multilabel_scores(probs, y, cuts)
    pred = (probs >= 0.6).int().numpy()
    assert s["micro_f1"] == pytest.approx(f1_score(y.numpy(), pred, average="micro"))
    assert s["macro_f1"] == pytest.approx(f1_score(y.numpy(), pred, average="macro"))
    assert s["samples_f1"] == pytest.approx(f1_score(y.numpy(), pred, average="samples", zero_division=1.0))
    logits, target = torch.randn(50), torch.randint(0, 2, (50,))
    b = binary_scores(logits, target)
    assert b["roc_auc"] == pytest.approx(roc_auc_score(target.numpy(), logits.numpy()))
    assert b["accuracy"] == pytest.approx(((logits > 0).long() == target).float().mean().item())


def test_multilabel_objective_is_scored_on_images_its_cuts_were_not_tuned_on():
    """Cuts tuned on the very images they score make a trial's F1 optimistic: on labels the model knows
    nothing of, in-sample cuts still find an F1 above what new images give. The objective is scored
    cross-fitted; the cuts kept for export are tuned on all of validation."""
    from search.trial.train import predict_logits

    data = stripes(n=800)
    g = torch.Generator().manual_seed(5)
    data.val_y = (torch.rand(data.val_y.shape, generator=g) < 0.1).to(torch.uint8)  # unrelated to the images
    model = small_cnn(4).eval()
    probs = predict_logits(model, data.val_x, data.mean, data.std, 1024, False).sigmoid()
    in_sample = multilabel_scores(probs, data.val_y, tune_thresholds(probs, data.val_y))
    ev = evaluate(model, data)
    assert ev["thresholds"] == [round(v, 6) for v in tune_thresholds(probs, data.val_y).tolist()]
    assert ev["macro_f1"] < in_sample["macro_f1"] - 0.02 and ev["micro_f1"] < in_sample["micro_f1"] - 0.02
    given = evaluate(model, data, thresholds=ev["thresholds"])  # given cuts score as they are: a held-out part
    assert given["macro_f1"] == pytest.approx(in_sample["macro_f1"])


def test_roc_auc_of_a_one_class_split_is_no_measurement():
    """With one class in the targets there is no ROC AUC: not 0.5, which reads as a chance-level model."""
    import math

    from gic_common.errors import UserError
    from search.trial.objective import Objective, TrialSettings

    assert math.isnan(binary_scores(torch.randn(20), torch.ones(20, dtype=torch.long))["roc_auc"])
    data = stripes(task="binary")
    data.val_y = torch.ones_like(data.val_y)
    check_measurable("accuracy", "binary", data.val_y, "validation")  # measured on one class as on two
    with pytest.raises(UserError, match=r"validation split holds one class \(yes\).*roc_auc"):
        check_measurable("roc_auc", "binary", data.val_y, "validation", ["no", "yes"])
    trial = optuna.trial.FixedTrial({})  # a metric the trial has no measurement of is left out, not stored as NaN
    result = EpochResult(1, 0.5, 1.0, 1e-3, 0.6, 0.7, 0.4, [0.0, 0.8], roc_auc=float("nan"))
    Objective(TrialSettings(None, (3, 16, 16), 1, "accuracy", 0), data)._record(trial, [result])
    assert trial.user_attrs["accuracy"] == 0.7 and "roc_auc" not in trial.user_attrs


@pytest.mark.slow
def test_a_roc_auc_study_on_a_one_class_validation_split_stops_in_one_line(tmp_path, capsys):
    import shutil

    from layouts import write_folders

    from search.cli import main

    data = tmp_path / "faces"
    write_folders(data, classes=("no", "yes"), train=12, val=6, test=2)
    shutil.rmtree(data / "val" / "no")
    storage = f"sqlite:///{tmp_path / 's.db'}"
    assert main(["run", "cnn", "--data", str(data), "--storage", storage, "--metric", "roc_auc", "--trials", "1",
                 "--epochs", "1", "--device", "cpu", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "validation split holds one class (yes)" in err[-1] and "roc_auc" in err[-1]
    assert optuna.get_all_study_names(storage) == []  # refused before a study was made for it
