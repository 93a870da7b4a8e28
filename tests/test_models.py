"""The model registry, and the cnn space's corners building models of the right output shape."""

from __future__ import annotations

import optuna
import pytest
import torch

from gic_models import create_model, list_models, register_model
from spaces import get_space
from spaces.cnn import MAX_CONV, MAX_DENSE, SEED000


def test_registry_refuses_duplicates_and_lists_known_names():
    with pytest.raises(ValueError, match="already registered"):
        register_model("cnn")(lambda *a: None)
    with pytest.raises(KeyError, match="known models: .*cnn"):
        create_model("nope", None, 10, (3, 32, 32))
    assert "cnn" in list_models()


def corner(n_conv, n_dense, filters, kernel, reduce, padding, norm="bn", head="flatten"):
    params = dict(SEED000)
    params.update(n_conv=n_conv, n_dense=n_dense, padding=padding, norm=norm, head=head)
    for i in range(n_conv):
        params.update({f"filters_l{i}": filters, f"kernel_l{i}": kernel, f"dropout_l{i}": 0.1})
        if i:
            params[f"reduce_l{i}"] = reduce
    for i in range(n_dense):
        params.update({f"dense_units_l{i}": 64, f"dense_dropout_l{i}": 0.1})
    return params


CORNERS = {
    "deepest-widest-reduced-valid": corner(MAX_CONV, MAX_DENSE, 256, 7, 0.5, "valid"),
    "deepest-same-avg": corner(MAX_CONV, 0, 64, 5, 0.25, "same", head="avg"),
    "narrowest-shallowest": corner(2, 0, 16, 3, 0.0, "same", norm="none"),
    "seed-order-no-reduction": corner(4, 2, 32, 3, 0.0, "valid", norm="bn_after_pool"),
}


@pytest.mark.parametrize("name", CORNERS)
@pytest.mark.parametrize("side", [32, 64])
def test_cnn_space_corners_forward_and_backward(name, side):
    cfg = get_space("cnn").suggest(optuna.trial.FixedTrial(CORNERS[name]))
    model = create_model(cfg.model, cfg.arch, 7, (3, side, side))
    out = model(torch.randn(4, 3, side, side))
    assert out.shape == (4, 7)
    out.sum().backward()
    has_reduction = any(layer.reduce for layer in cfg.arch.convs)
    assert has_reduction == ("reduced" in name or "avg" in name)


def test_seed000_design_matches_its_description():
    cfg = get_space("cnn").suggest(optuna.trial.FixedTrial(SEED000))
    model = create_model(cfg.model, cfg.arch, 100, (3, 64, 64))
    convs = [m for m in model.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 256]
    assert all(c.padding == (0, 0) and c.kernel_size == (3, 3) for c in convs)
    # Keras counted this network at about 0.76M parameters (batch-norm statistics included).
    params = sum(p.numel() for p in model.parameters())
    assert 740_000 < params < 780_000
    assert cfg.train.optimizer == "adam" and cfg.train.lr == 1e-3 and cfg.train.batch_size == 32
