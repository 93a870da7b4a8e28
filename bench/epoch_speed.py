"""Epoch time of seed 000's CNN: the engine's loop against the textbook pipeline, in one run.

The textbook pipeline is what optuna-examples' pytorch_simple.py and most tutorials do: a Dataset
that opens each image with PIL and applies torchvision transforms per sample, behind a DataLoader.
The engine keeps the decoded split on the device as uint8 and indexes batches there. Same data,
model, batch size and training step in both: the engine's optimizer (fused on CUDA), bf16 autocast
and channels_last on CUDA (fp32 and NCHW on a CPU, as the engine), so that the ratio measures the
data pipeline and not precision; training time only (evaluation excluded in both).

    python bench/epoch_speed.py [--data DIR] [--batch 32 256] [--epochs 3] [--repeats 3] [--compile MODE ...]

Prints the harness's table: per batch size, median epoch seconds of each pipeline, their ratio,
training images/s, and (on CUDA) the share of the GPU's measured bf16 matmul rate the engine reached.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import optuna
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader
from torch.utils.data import Dataset as TorchDataset
from torchvision import transforms

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from harness import Row, table  # noqa: E402

from gic_common.configs import TrainConfig  # noqa: E402
from gic_models import create_model  # noqa: E402
from search.config import load_preset  # noqa: E402
from search.data import load_dataset  # noqa: E402
from search.data.synth import generate  # noqa: E402
from search.places import synth_dir  # noqa: E402
from search.trial.device import autocast, describe, resolve_device, setup  # noqa: E402
from search.trial.inputs import to_device  # noqa: E402
from search.trial.objective import count_flops  # noqa: E402
from search.trial.train import fit, make_optimizer  # noqa: E402
from spaces.cnn import SEED000, suggest  # noqa: E402


class PILImages(TorchDataset):
    """One PIL open and one transform chain per sample: the textbook way."""

    def __init__(self, paths, labels, mean, std):
        self.paths, self.labels = paths, labels
        self.transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize(mean, std)])

    def __len__(self):
        return len(self.paths)

    def __getitem__(self, i):
        with Image.open(self.paths[i]) as im:
            return self.transform(im.convert("RGB")), int(self.labels[i])


def textbook_epochs(model, paths, labels, mean, std, cfg: TrainConfig, epochs, device, workers) -> list[float]:
    """The textbook's data pipeline under the engine's training step: a faster step in one arm alone
    would be credited to the pipeline."""
    loader = DataLoader(
        PILImages(paths, labels, mean.tolist(), std.tolist()), batch_size=cfg.batch_size, shuffle=True,
        num_workers=workers, pin_memory=device.type == "cuda", drop_last=True,
        persistent_workers=workers > 0,
    )
    cuda = device.type == "cuda"
    model.to(device).train()
    if cuda:
        model.to(memory_format=torch.channels_last)
    opt = make_optimizer(model, cfg)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            if cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device):
                logits = model(x)
            loss = F.cross_entropy(logits.float(), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times


def matmul_rate(device: torch.device) -> float | None:
    """Measured dense bf16 matmul FLOP/s: the ceiling utilisation is judged against."""
    if device.type != "cuda":
        return None
    n = 8192
    a = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    b = torch.randn(n, n, device=device, dtype=torch.bfloat16)
    for _ in range(3):
        a @ b
    torch.cuda.synchronize()
    start, reps = time.perf_counter(), 20
    for _ in range(reps):
        a @ b
    torch.cuda.synchronize()
    return 2 * n**3 * reps / (time.perf_counter() - start)


def copy_bandwidth(device: torch.device, mib: int = 4096) -> float:
    """Measured memory bandwidth in bytes/s: a device-to-device copy of ``mib`` MiB, counting the
    bytes read and the bytes written, as the memory floor counts every pass over the activations.
    The buffer should be several times the cache (the H200's L2 is 60 MB), or the cache is timed."""
    src = torch.empty(mib << 20, dtype=torch.uint8, device=device)
    dst = torch.empty_like(src)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for _ in range(3):
        dst.copy_(src)
    sync()
    start, reps = time.perf_counter(), 10
    for _ in range(reps):
        dst.copy_(src)
    sync()
    return 2 * src.numel() * reps / (time.perf_counter() - start)


def benchmark_root(data: Path | None, device: torch.device) -> Path:
    """``data``, or the preset's synthetic benchmark for this device (generated if missing): on a
    CPU the quick preset's."""
    if data is not None:
        return data
    synth = load_preset("cnn", device.type).synth
    root = synth_dir(synth)
    if not (root / "train.csv").exists():
        generate(root, **synth)
    return root


def measure(data: Path | None, batches: list[int], epochs: int, repeats: int, workers: int,
            compile_modes: list[str], limit: int | None = None, device_name: str = "auto") -> list[Row]:
    """Items 1 and 2 as rows: per batch size, the engine (eager and each compile mode) and the
    textbook pipeline, each run ``repeats`` times on a fresh model; a run's figure is the median of
    its epochs after the first (warm-up, and compilation when compiling)."""
    device = resolve_device(device_name)
    setup(device)
    root = benchmark_root(data, device)
    ds = load_dataset(root)
    if limit:
        ds.train_x, ds.train_y = ds.train_x[:limit], ds.train_y[:limit]
    names = [line.split(",")[0] for line in (root / "train.csv").read_text().splitlines()[1:]]
    paths = [root / "train_images" / n for n in names][: len(ds.train_y)]
    tensors = to_device(ds, device)
    mean, std = ds.stats()
    arch = suggest(optuna.trial.FixedTrial(SEED000)).arch
    n = len(ds.train_y)
    flops = 3 * count_flops(create_model("cnn", arch, ds.num_classes, ds.in_shape), ds.in_shape)
    peak = matmul_rate(device)
    print(f"# epoch: {describe(device)}, {n} training images {ds.in_shape}, seed 000 CNN "
          f"({flops / 1e9:.3f} GFLOP per image trained), textbook workers {workers}"
          + (f", measured bf16 matmul rate {peak / 1e12:.0f} TFLOP/s" if peak else ""), file=sys.stderr)

    def fresh():
        torch.manual_seed(0)
        return create_model("cnn", arch, ds.num_classes, ds.in_shape)

    rows: list[Row] = []
    for _ in range(repeats):
        for batch in batches:
            cfg = TrainConfig(optimizer="adam", lr=1e-3, batch_size=batch, schedule="constant")
            book = statistics.median(textbook_epochs(fresh(), paths, ds.train_y, mean, std, cfg, epochs, device,
                                                     workers)[1:])
            setting = f"seed CNN, batch {batch}"
            rows.append(Row("epoch", f"{setting}, textbook", "s/epoch", [book], "{:.3f}"))
            for mode in ["eager", *compile_modes]:
                history = fit(fresh(), tensors, cfg, epochs=epochs, compile=None if mode == "eager" else mode)
                e = statistics.median(r.seconds for r in history[1:])
                name = f"{setting}, engine {mode}"
                rows += [Row("epoch", name, "s/epoch", [e], "{:.3f}"),
                         Row("epoch", name, "x textbook", [book / e], "{:.1f}x"),
                         Row("epoch", name, "training img/s", [n / e], "{:,.0f}")]
                if peak:
                    rows.append(Row("epoch", name, "utilisation of bf16 matmul rate", [flops * n / e / peak],
                                    "{:.1%}"))
                if mode != "eager":
                    rows.append(Row("epoch", name, "first epoch s (compiling)", [history[0].seconds], "{:.1f}"))
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="GIC dataset (default: the full synthetic benchmark)")
    p.add_argument("--batch", type=int, nargs="+", default=[32, 256], help="batch sizes to time")
    p.add_argument("--epochs", type=int, default=3, help="epochs a run (the first is warm-up, not timed)")
    p.add_argument("--repeats", type=int, default=3, help="runs of each; the table gives their median")
    p.add_argument("--limit", type=int, help="use only the first N training images (CPU runs)")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="textbook DataLoader workers")
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", nargs="*", default=[], help="also time the engine under these torch.compile modes")
    args = p.parse_args()
    print(table(measure(args.data, args.batch, args.epochs, args.repeats, args.workers, args.compile, args.limit,
                        args.device)))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
