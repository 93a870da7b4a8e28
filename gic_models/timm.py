"""timm architectures that train well from scratch at 32-128 px, with their stems adapted to small inputs.

ImageNet stems shrink the image 4x (a strided conv, then a max-pool or a 4x4 patchify), which leaves
a 32px image 1x1 after the last stage. ``small_stem`` removes most of that: the first convolution's
stride drops to 1 (2 for ConvNeXt's 4x4 patchify, padded to keep its weights' shape) and a
ResNet's stem max-pool goes, so a 32px image reaches the head at 4x4. Pretrained weights are used
only from local files: nothing is ever downloaded (``weights_dir()``), a missing file is a UserError.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from gic_common.errors import UserError
from gic_models.registry import InputTooSmall, register_model

__all__ = ["CURATED", "TimmSpec", "build_timm", "weights_dir", "weights_file"]

# Names timm knows, chosen to train from scratch on a CPU test in seconds and a GPU in minutes at
# 32-128 px: plain and "d" (deep-stem, avg-pool shortcut) ResNets, EfficientNet-B0, MobileNetV3 at
# three widths, the two smallest ConvNeXts, two RegNetX sizes. Width is picked by the variant name
# because timm's entry points fix their width multipliers.
CURATED = (
    "resnet18", "resnet26", "resnet18d", "resnet26d", "efficientnet_b0",
    "mobilenetv3_small_050", "mobilenetv3_small_100", "mobilenetv3_large_100",
    "convnext_atto", "convnext_femto", "regnetx_002", "regnetx_004",
)


@dataclass(frozen=True)
class TimmSpec:
    name: str
    small_stem: bool = True
    drop_rate: float = 0.0  # dropout before the classifier
    drop_path: float = 0.0  # stochastic depth: the rate of the deepest block, as timm scales it
    pretrained: bool = False


def weights_dir() -> Path:
    """Where local pretrained weights live: ``$GIC_TIMM_WEIGHTS`` or ~/.cache/gic-search/timm."""
    return Path(os.environ.get("GIC_TIMM_WEIGHTS", Path.home() / ".cache" / "gic-search" / "timm"))


def weights_file(name: str) -> Path:
    return weights_dir() / f"{name}.safetensors"


def _shrink_stem(model: nn.Module) -> None:
    first = next(m for m in model.modules() if isinstance(m, nn.Conv2d))
    stride = first.stride[0]
    if stride > 1:
        new = 2 if stride == 4 else 1
        first.stride = (new, new)
        # Keep the map centred: a kxk kernel at stride s wants (k - s + 1) // 2 padding each side.
        pad = (first.kernel_size[0] - new + 1) // 2
        first.padding = (pad, pad)
    if isinstance(getattr(model, "maxpool", None), nn.MaxPool2d):
        model.maxpool = nn.Identity()


def _load_pretrained(name: str, path: Path, options: dict) -> nn.Module:
    """The model with the file's weights, or one line naming the file. When the class count differs,
    timm loads without strict checking: another model's weights then matched no key and the model
    trained from scratch, recorded as pretrained; a file of mismatched shapes or no safetensors at
    all raised a traceback."""
    import timm
    from safetensors import SafetensorError, safe_open

    builder_log = logging.getLogger("timm.models._builder")
    level = builder_log.level
    builder_log.setLevel(logging.ERROR)  # its screen of "Unexpected keys" gives way to the line below
    try:
        model = timm.create_model(name, **options)
        with safe_open(str(path), "pt") as f:
            stored = set(f.keys())
    except (RuntimeError, OSError, SafetensorError) as e:
        raise UserError(f"{path}: cannot load as {name} weights ({str(e).splitlines()[0]})") from None
    finally:
        builder_log.setLevel(level)
    classifier = model.pretrained_cfg.get("classifier") or ()
    classifier = (classifier,) if isinstance(classifier, str) else tuple(classifier)
    absent = [k for k in model.state_dict() if k not in stored and not k.endswith("num_batches_tracked")
              and not k.startswith(tuple(f"{c}." for c in classifier))]
    if absent:
        raise UserError(f"{path}: not {name} weights: {len(absent)} of its tensors are missing (first: {absent[0]})")
    return model


def _check_fits(model: nn.Module, spec: TimmSpec, in_shape: tuple[int, int, int]) -> None:
    """ConvNeXt's unpadded 2x2 downsampling fails once a map is 1px (below 32px images, 16px with the
    small stem). One forward pass of a blank image finds that here, where it becomes a reason,
    rather than in the middle of a study, where the RuntimeError stopped every worker."""
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *in_shape))
    except RuntimeError as e:
        stem = "with" if spec.small_stem else "without"
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise InputTooSmall(f"timm {spec.name} cannot take {in_shape[2]}x{in_shape[1]} images {stem} the small "
                            f"stem ({reason})") from None
    finally:
        model.train(was_training)


def build_timm(spec: TimmSpec, num_classes: int, in_shape: tuple[int, int, int]) -> nn.Module:
    import timm  # imported here: timm takes a second to import and only this family needs it

    if spec.name not in CURATED:
        raise ValueError(f"timm model {spec.name!r} is not in the curated list: {', '.join(CURATED)}")
    options = {"num_classes": num_classes, "in_chans": in_shape[0], "drop_rate": spec.drop_rate,
               "drop_path_rate": spec.drop_path}
    if spec.pretrained:
        path = weights_file(spec.name)
        if not path.is_file():
            raise UserError(f"no local weights for {spec.name}: expected {path} (set GIC_TIMM_WEIGHTS to "
                            f"their folder); nothing is downloaded")
        # timm loads the file itself and drops the classifier when the class count differs.
        options.update(pretrained=True, pretrained_cfg_overlay={"file": str(path)})
        model = _load_pretrained(spec.name, path, options)
    else:
        model = timm.create_model(spec.name, **options)
    if spec.small_stem:
        _shrink_stem(model)
    _check_fits(model, spec, in_shape)
    return model


register_model("timm")(build_timm)
