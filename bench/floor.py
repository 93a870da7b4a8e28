"""The floors under an epoch: how fast a network could train if arithmetic alone, or memory traffic
alone, limited it. Counted on any machine (no GPU needed); the device's rates are flags.

    python bench/floor.py [--images 13000] [--size 64] [--tflops 790] [--bandwidth 3.35]

- Compute floor: training FLOPs (3 x forward, torch's counter) over the device's matmul rate (the
  790 TFLOP/s default is the bf16 rate bench/epoch_speed.py measured on an H100).
- Memory floor, layer by layer: every layer's output is written in the forward pass and read back
  in the backward one, and its gradient is written and read once: 4 passes over the activations,
  2 bytes a value in bf16. That is how eager PyTorch runs a network (each module's output is
  materialised); a compiled graph that fuses a convolution with its activation and pooling skips
  some of those tensors, so its floor is lower. The 3.35 TB/s default is the H100 SXM's HBM3 spec.
A small CNN on small images sits far below the GPU's arithmetic and near its memory bandwidth: the
memory floor, not the compute one, is the one to compare epoch times with.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import optuna
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gic_models import create_model  # noqa: E402
from search.trial.objective import count_flops  # noqa: E402
from spaces import cnn  # noqa: E402

PASSES = 4  # forward write, backward read; gradient write, gradient read


def activation_values(model: torch.nn.Module, in_shape: tuple[int, int, int]) -> tuple[int, list]:
    """Values every leaf module outputs for one image in training mode, and per layer."""
    layers = []

    def record(module, _inputs, output):
        if isinstance(output, torch.Tensor):
            layers.append((type(module).__name__, tuple(output.shape[1:]), output[0].numel()))

    hooks = [m.register_forward_hook(record) for m in model.modules() if not list(m.children())]
    model.train()
    with torch.no_grad():
        model(torch.zeros(2, *in_shape))  # two images: batch norm refuses one in training mode
    for h in hooks:
        h.remove()
    return sum(n for *_, n in layers), layers


def seed_cnn(in_shape: tuple[int, int, int], classes: int) -> torch.nn.Module:
    return create_model("cnn", cnn.suggest(optuna.trial.FixedTrial(cnn.SEED000)).arch, classes, in_shape)


def memory_floor_s(model: torch.nn.Module, in_shape: tuple[int, int, int], images: int, bandwidth_tbs: float) -> float:
    """Seconds an epoch of ``images`` needs to move every layer's output PASSES times in bf16."""
    values, _ = activation_values(model, in_shape)
    return images * values * 2 * PASSES / (bandwidth_tbs * 1e12)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--images", type=int, default=13000, help="training images an epoch")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--tflops", type=float, default=790.0, help="the device's bf16 matmul rate, TFLOP/s")
    p.add_argument("--bandwidth", type=float, default=3.35, help="the device's memory bandwidth, TB/s")
    args = p.parse_args()
    in_shape = (3, args.size, args.size)
    model = seed_cnn(in_shape, args.classes)
    flops = 3 * count_flops(model, in_shape)
    values, layers = activation_values(model, in_shape)
    compute_s = args.images * flops / (args.tflops * 1e12)
    memory_s = memory_floor_s(model, in_shape, args.images, args.bandwidth)
    print(f"seed 000's CNN at {args.size}px, {args.images:,} images an epoch")
    print(f"  training FLOPs an image: {flops / 1e9:.3f} G -> compute floor {compute_s * 1e3:.1f} ms an epoch "
          f"at {args.tflops:g} TFLOP/s")
    print(f"  activation values an image: {values:,} ({values * 2 / 1e6:.2f} MB in bf16) -> memory floor "
          f"{memory_s * 1e3:.1f} ms an epoch at {args.bandwidth:g} TB/s, layer by layer")
    print("  largest outputs:", ", ".join(f"{name} {shape}" for name, shape, _ in
                                        sorted(layers, key=lambda x: -x[2])[:4]))


if __name__ == "__main__":
    main()
