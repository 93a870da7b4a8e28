"""Ensembles and flip TTA with hand-built models whose answers are known: no training."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from gic_common.errors import UserError
from search.after.ensemble import Member, member_dirs, predict, write_ensemble

MEAN, STD = torch.full((3,), 0.5), torch.full((3,), 0.25)


def _images(n: int = 6, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 8, 8), dtype=torch.uint8, generator=g)


def _member(model: nn.Module) -> Member:
    return Member(model.eval(), MEAN, STD)


def _flip_symmetric() -> nn.Module:
    """Global average pooling forgets where things are, so a mirror image gets the same answer."""
    torch.manual_seed(0)
    return nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(3, 5))


def _position_aware(seed: int = 1) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 5))


def test_tta_leaves_a_flip_symmetric_model_unchanged():
    x = _images()
    m = [_member(_flip_symmetric())]
    torch.testing.assert_close(predict(m, x, tta=True), predict(m, x), rtol=0, atol=1e-6)


def test_tta_averages_the_mirror_image_and_changes_only_asymmetric_inputs():
    model = _position_aware()
    m = [_member(model)]
    x = _images()
    plain, tta = predict(m, x), predict(m, x, tta=True)
    mirrored = predict(m, x.flip(-1))
    torch.testing.assert_close(tta, (plain + mirrored) / 2)
    assert (tta - plain).abs().max() > 1e-3  # a model that sees position does answer differently
    symmetric = torch.cat([x[..., :4], x[..., :4].flip(-1)], dim=-1)  # each image its own mirror
    torch.testing.assert_close(predict(m, symmetric, tta=True), predict(m, symmetric), rtol=0, atol=1e-6)


def test_an_ensemble_of_a_model_with_itself_is_the_model():
    model = _position_aware()
    x = _images()
    torch.testing.assert_close(predict([_member(model), _member(model)], x), predict([_member(model)], x))


def test_an_ensemble_averages_probabilities_each_with_its_own_normalisation():
    a, b = _position_aware(1), _position_aware(2)
    other = Member(b.eval(), torch.full((3,), 0.4), torch.full((3,), 0.3))
    x = _images()
    expected = (predict([_member(a)], x) + predict([other], x)) / 2
    both = predict([_member(a), other], x)
    torch.testing.assert_close(both, expected)
    torch.testing.assert_close(both.sum(1), torch.ones(len(x)))
    with pytest.raises(ValueError):
        predict([], x)


def test_ensemble_listing_round_trip_and_bad_listing(tmp_path):
    a, b = tmp_path / "trial-1", tmp_path / "trial-2"
    assert member_dirs(a) == [a]  # a plain model folder is an ensemble of one
    write_ensemble(tmp_path / "top-2", [a, b], {"trials": [1, 2]})
    assert member_dirs(tmp_path / "top-2") == [a.resolve(), b.resolve()]
    assert json.loads((tmp_path / "top-2" / "ensemble.json").read_text())["trials"] == [1, 2]
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "ensemble.json").write_text("[1, 2]")
    with pytest.raises(UserError, match="not an ensemble listing"):
        member_dirs(tmp_path / "bad")
