"""Epoch time of seed 000's CNN: the engine's loop against the textbook pipeline, in one run.

The textbook pipeline is what optuna-examples' pytorch_simple.py and most tutorials do: a Dataset
that opens each image with PIL and applies torchvision transforms per sample, behind a DataLoader.
The engine keeps the decoded split on the device as uint8 and indexes batches there. Same data,
same model, same optimizer and batch size; training time only (evaluation excluded in both).

    python bench/epoch_speed.py [--data DIR] [--batch 32 256] [--epochs 3] [--limit N]

Prints one markdown row per batch size: median epoch seconds of each, their ratio, training
images/s, and (on CUDA) the share of the GPU's measured bf16 matmul rate the engine reached.
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

from gic_models import create_model  # noqa: E402
from search.config import load_preset, synth_dir  # noqa: E402
from search.data import load_dataset  # noqa: E402
from search.data.synth import generate  # noqa: E402
from search.device import describe, resolve_device, setup  # noqa: E402
from search.objective import count_flops  # noqa: E402
from search.run import to_device  # noqa: E402
from search.train import TrainConfig, fit  # noqa: E402
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
    loader = DataLoader(
        PILImages(paths, labels, mean.tolist(), std.tolist()), batch_size=cfg.batch_size, shuffle=True,
        num_workers=workers, pin_memory=device.type == "cuda", drop_last=True,
        persistent_workers=workers > 0,
    )
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), cfg.lr)
    times = []
    for _ in range(epochs):
        start = time.perf_counter()
        for x, y in loader:
            x, y = x.to(device, non_blocking=True), y.to(device, non_blocking=True)
            loss = F.cross_entropy(model(x), y)
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, help="GIC dataset (default: the full synthetic benchmark)")
    p.add_argument("--batch", type=int, nargs="+", default=[32, 256], help="batch sizes to time")
    p.add_argument("--epochs", type=int, default=3, help="timed epochs each (the first is warm-up)")
    p.add_argument("--limit", type=int, help="use only the first N training images (CPU runs)")
    p.add_argument("--workers", type=int, default=min(8, os.cpu_count() or 1), help="textbook DataLoader workers")
    p.add_argument("--device", default="auto")
    p.add_argument("--compile", nargs="*", default=[], help="also time the engine under these torch.compile modes")
    args = p.parse_args()

    device = resolve_device(args.device)
    setup(device)
    root = args.data
    if root is None:
        synth = load_preset("cnn", "cuda").synth
        root = synth_dir(synth)
        if not (root / "train.csv").exists():
            generate(root, **synth)
    ds = load_dataset(root)
    if args.limit:
        ds.train_x, ds.train_y = ds.train_x[: args.limit], ds.train_y[: args.limit]
    names = [line.split(",")[0] for line in (root / "train.csv").read_text().splitlines()[1:]]
    paths = [root / "train_images" / n for n in names][: len(ds.train_y)]
    tensors = to_device(ds, device)
    mean, std = ds.stats()
    arch = suggest(optuna.trial.FixedTrial(SEED000)).arch
    n = len(ds.train_y)
    flops = 3 * count_flops(create_model("cnn", arch, ds.num_classes, ds.in_shape), ds.in_shape)
    peak = matmul_rate(device)
    print(f"# {describe(device)}, torch {torch.__version__}, {n} training images {ds.in_shape}, "
          f"seed 000 CNN ({flops / 1e9:.3f} GFLOP per image trained), textbook workers {args.workers}")
    if peak:
        print(f"# measured bf16 matmul rate: {peak / 1e12:.0f} TFLOP/s")
    print("| batch | engine | engine s/epoch | textbook s/epoch | ratio | engine img/s | utilisation |")
    print("|---|---|---|---|---|---|---|")
    for batch in args.batch:
        cfg = TrainConfig(optimizer="adam", lr=1e-3, batch_size=batch, schedule="constant")
        torch.manual_seed(0)
        model = create_model("cnn", arch, ds.num_classes, ds.in_shape)
        # The engine's own loop, validation included in the call but not in the per-epoch seconds.
        eng = [r.seconds for r in fit(model, tensors, cfg, epochs=args.epochs)][1:]
        torch.manual_seed(0)
        model = create_model("cnn", arch, ds.num_classes, ds.in_shape)
        book = textbook_epochs(model, paths, ds.train_y, mean, std, cfg, args.epochs, device, args.workers)[1:]
        t = statistics.median(book)
        rows = [("eager", eng)]
        for mode in args.compile:
            torch.manual_seed(0)
            model = create_model("cnn", arch, ds.num_classes, ds.in_shape)
            history = fit(model, tensors, cfg, epochs=args.epochs, compile=mode)
            rows.append((f"compile {mode} (first epoch {history[0].seconds:.1f}s)", [r.seconds for r in history][1:]))
        for name, secs in rows:
            e = statistics.median(secs)
            util = f"{flops * n / e / peak:.1%}" if peak else "n/a"
            print(f"| {batch} | {name} | {e:.3f} | {t:.3f} | {t / e:.1f}x | {n / e:,.0f} | {util} |", flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
