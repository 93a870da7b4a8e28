"""The resnet, mlp and timm families: every space's corners build a model that trains a step, the
seed designs are points of their spaces with the parameter counts their reports give, and timm
never downloads anything."""

from __future__ import annotations

import optuna
import pytest
import torch
from safetensors.torch import save_file

from gic_common.errors import UserError
from gic_models import create_model
from gic_models.timm import CURATED, TimmSpec, build_timm
from spaces import get_space
from spaces.mlp import MAX_LAYERS
from spaces.mlp import SEED003 as MLP003
from spaces.resnet import MAX_STAGES
from spaces.resnet import SEED000 as RESNET000
from spaces.resnet import SEED003 as RESNET003
from spaces.timm import RESNET18


def forward_backward(space: str, params: dict, side: int = 32, classes: int = 7) -> torch.nn.Module:
    cfg = get_space(space).suggest(optuna.trial.FixedTrial(params))
    model = create_model(cfg.model, cfg.arch, classes, (3, side, side))
    out = model(torch.randn(2, 3, side, side))
    assert out.shape == (2, classes)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    return model


def resnet_corner(n_stages, width, blocks, **arch):
    params = {k: v for k, v in RESNET000.items() if not k.startswith(("width_s", "blocks_s"))}
    params.update(n_stages=n_stages, **arch)
    params.update({f"width_s{i}": width for i in range(n_stages)})
    params.update({f"blocks_s{i}": blocks for i in range(n_stages)})
    return params


RESNET_CORNERS = {
    # the deepest, widest stack with every option that adds modules
    "deepest-bottleneck-preact": resnet_corner(MAX_STAGES, 512, 4, block="bottleneck", preact=True, stem_kernel=7,
                                               stem_stride=2, stem_pool=True, stem_width=128, pool_grid=2,
                                               fc_units=512, dropout=0.5),
    # the smallest: two narrow stages of one block, an unpadded 7x7 stem that shrinks the image
    "shallowest-narrow-valid": resnet_corner(2, 16, 1, stem_kernel=7, stem_padding="valid", stem_width=16),
    "stride-and-pool-at-32px": resnet_corner(MAX_STAGES, 16, 1, stem_stride=2, stem_pool=True, pool_grid=2),
}


@pytest.mark.parametrize("name", RESNET_CORNERS)
def test_resnet_corners_forward_and_backward(name):
    forward_backward("resnet", RESNET_CORNERS[name])


@pytest.mark.parametrize("name", RESNET_CORNERS)
def test_resnet_corners_take_images_smaller_than_the_stem(name):
    # An unpadded 7x7 stem on a 4px image raised "Kernel size can't be greater than actual input size",
    # which stopped the whole study.
    forward_backward("resnet", RESNET_CORNERS[name], side=4)


def mlp_corner(n_layers, units, **arch):
    params = {k: v for k, v in MLP003.items() if not k.startswith(("units_l", "dropout_l"))}
    params.update(n_layers=n_layers, **arch)
    params.update({f"units_l{i}": units for i in range(n_layers)})
    params.update({f"dropout_l{i}": 0.3 for i in range(n_layers)})
    return params


@pytest.mark.parametrize("params", [mlp_corner(MAX_LAYERS, 2048, activation="tanh", norm=True),
                                    mlp_corner(1, 16, activation="gelu"), MLP003])
def test_mlp_corners_forward_and_backward(params):
    model = forward_backward("mlp", params)
    hidden = [m for m in model if isinstance(m, torch.nn.Linear)][:-1]
    assert [m.out_features for m in hidden] == [params[f"units_l{i}"] for i in range(params["n_layers"])]


@pytest.mark.parametrize("name", CURATED)
def test_every_curated_timm_model_trains_at_32px_with_a_small_stem(name):
    params = {**RESNET18, "timm_model": name, "drop_rate": 0.2, "drop_path": 0.1}
    model = forward_backward("timm", params)
    # The small stem leaves a 32px image at least 2x2 before the head (ImageNet stems leave 1x1).
    features = model.forward_features(torch.randn(1, 3, 32, 32))
    assert features.shape[-1] >= 2, features.shape


def test_timm_pretrained_only_from_local_files(tmp_path, monkeypatch):
    monkeypatch.setenv("GIC_TIMM_WEIGHTS", str(tmp_path))
    spec = TimmSpec("mobilenetv3_small_050", pretrained=True)
    with pytest.raises(UserError, match="no local weights for mobilenetv3_small_050.*nothing is downloaded"):
        build_timm(spec, 10, (3, 32, 32))
    # Weights saved as a 1000-class ImageNet model load into a 10-class one: all but the classifier.
    torch.manual_seed(0)
    source = build_timm(TimmSpec("mobilenetv3_small_050", small_stem=False), 1000, (3, 32, 32))
    state = {k: v.contiguous() for k, v in source.state_dict().items()}
    save_file(state, str(tmp_path / "mobilenetv3_small_050.safetensors"))
    loaded = build_timm(spec, 10, (3, 32, 32))
    assert torch.equal(loaded.conv_stem.weight, source.conv_stem.weight)
    assert loaded.classifier.out_features == 10
    # The space searches pretraining only for a model whose weights are on disk; for another model,
    # or with no weights folder at all, the parameter does not exist and every trial builds.
    study = optuna.create_study()
    for folder, model, searched in ((tmp_path, "mobilenetv3_small_050", True), (tmp_path, "regnetx_002", False),
                                    (tmp_path / "absent", "mobilenetv3_small_050", False)):
        monkeypatch.setenv("GIC_TIMM_WEIGHTS", str(folder))
        study.enqueue_trial({"timm_model": model, "pretrained": True})
        trial = study.ask()
        cfg = get_space("timm").suggest(trial)
        assert ("pretrained" in trial.params) == searched and cfg.arch.pretrained == searched
        create_model(cfg.model, cfg.arch, 10, (3, 32, 32))
        study.tell(trial, 0.5)


def test_a_trial_whose_weights_are_gone_is_not_rebuilt_as_something_else(tmp_path, monkeypatch):
    from spaces import rebuild

    params = {**RESNET18, "timm_model": "mobilenetv3_small_050", "pretrained": True}
    monkeypatch.setenv("GIC_TIMM_WEIGHTS", str(tmp_path))
    (tmp_path / "mobilenetv3_small_050.safetensors").touch()
    assert rebuild(get_space("timm"), params, "trial 3").arch.pretrained  # its weights are here
    (tmp_path / "mobilenetv3_small_050.safetensors").unlink()  # another machine: they are not
    with pytest.raises(UserError, match=r"trial 3 cannot be rebuilt as it was: its parameter pretrained=True"):
        rebuild(get_space("timm"), params, "trial 3")
    with pytest.raises(UserError, match="trial 4 cannot be rebuilt: .*drop_rate"):
        rebuild(get_space("timm"), {k: v for k, v in params.items() if k != "drop_rate"}, "trial 4")


def n_params(space: str, params: dict, side: int = 64, classes: int = 100) -> int:
    cfg = get_space(space).suggest(optuna.trial.FixedTrial(params))
    model = create_model(cfg.model, cfg.arch, classes, (3, side, side))
    return sum(p.numel() for p in model.parameters())


def conv(i, o, k):
    return i * o * k * k


def test_seed_designs_have_their_documented_parameter_counts():
    # Seed 000's ResNet10, "about 2.9M parameters" at 64px and 100 classes.
    assert n_params("resnet", RESNET000) == pytest.approx(2.9e6, rel=0.05)
    # Seed 003's scaled ResNet34 as its report describes it, counted by hand: 7x7 stem; per stage a
    # block with a 1x1 skip and a plain block; dense 32; the classifier (batch norms left out).
    blocks = 0
    for i, o in ((64, 64), (64, 128), (128, 256)):
        blocks += conv(i, o, 3) + conv(o, o, 3) + conv(i, o, 1) + 2 * conv(o, o, 3)
    described = conv(3, 64, 7) + blocks + 256 * 32 + 32 + 32 * 100 + 100
    assert n_params("resnet", RESNET003) == pytest.approx(described, rel=0.05)
    # Seed 003's MLP: flatten, 24, 48, dropout, 100.
    assert n_params("mlp", MLP003) == 64 * 64 * 3 * 24 + 24 + 24 * 48 + 48 + 48 * 100 + 100


def test_a_timm_network_the_images_are_too_small_for_is_a_pruned_trial():
    from types import SimpleNamespace

    from gic_models import InputTooSmall
    from search.trial.objective import Objective, TrialSettings

    # ConvNeXt's 2x2 downsampling raised a RuntimeError on 16px images: the study stopped with a traceback.
    with pytest.raises(InputTooSmall, match="convnext_atto cannot take 16x16 images without the small stem"):
        build_timm(TimmSpec("convnext_atto", small_stem=False), 10, (3, 16, 16))
    study = optuna.create_study(direction="maximize")
    study.enqueue_trial({**RESNET18, "timm_model": "convnext_atto", "small_stem": False})
    objective = Objective(TrialSettings(get_space("timm"), (3, 16, 16), epochs=1, metric="accuracy", seed=0),
                          SimpleNamespace(num_classes=3))
    study.optimize(objective, n_trials=1)
    trial = study.trials[0]
    assert trial.state == optuna.trial.TrialState.PRUNED
    assert "cannot take 16x16 images" in trial.user_attrs["pruned_reason"]


def test_a_weights_file_that_is_not_the_models_is_one_line(tmp_path, monkeypatch):
    # Another model's file loaded nothing (timm is not strict when the class count differs): the trial
    # trained from scratch, recorded as pretrained. A file that is no safetensors raised a traceback.
    monkeypatch.setenv("GIC_TIMM_WEIGHTS", str(tmp_path))
    spec = TimmSpec("mobilenetv3_small_050", pretrained=True)
    (tmp_path / "mobilenetv3_small_050.safetensors").write_text("not safetensors")
    with pytest.raises(UserError, match="mobilenetv3_small_050.safetensors: cannot load as mobilenetv3_small_050"):
        build_timm(spec, 10, (3, 32, 32))
    other = build_timm(TimmSpec("regnetx_002", small_stem=False), 1000, (3, 32, 32))
    save_file({k: v.contiguous() for k, v in other.state_dict().items()},
              str(tmp_path / "mobilenetv3_small_050.safetensors"))
    with pytest.raises(UserError, match="not mobilenetv3_small_050 weights: .* missing .first: conv_stem.weight"):
        build_timm(spec, 10, (3, 32, 32))


def test_input_too_small_is_a_trial_verdict_not_a_user_error():
    from gic_common.errors import TrialVerdict, UserError
    from gic_models import InputTooSmall

    # A worker treats a UserError as the user's to fix; a network too deep for the images is neither
    # that nor a crash, but the search's verdict on the configuration.
    assert issubclass(InputTooSmall, TrialVerdict) and not issubclass(InputTooSmall, UserError)
