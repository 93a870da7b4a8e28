"""How hard is the synthetic benchmark? Seed 000's CNN, trained as the seed trained it, per difficulty.

The benchmark is meant to leave a search real room: seed 000's design (Adam 1e-3, batch 32, no
augmentation) should land at roughly 50-75% validation accuracy, as it did on the real contest.

    python bench/calibrate_synth.py --difficulty 0.8 1.0 1.2 --epochs 30 [--classes 100 --size 64]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import optuna

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gic_models import create_model  # noqa: E402
from search.data import load_dataset  # noqa: E402
from search.data.synth import generate  # noqa: E402
from search.trial.device import describe, resolve_device, setup  # noqa: E402
from search.trial.inputs import to_device  # noqa: E402
from search.trial.train import fit  # noqa: E402
from spaces.cnn import SEED000, suggest  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--difficulty", type=float, nargs="+", default=[1.0])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--classes", type=int, default=100)
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--train", type=int, default=13000)
    p.add_argument("--val", type=int, default=2000)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    device = resolve_device(args.device)
    setup(device)
    cfg = suggest(optuna.trial.FixedTrial(SEED000))
    print(f"# seed 000 CNN on {describe(device)}, {args.classes} classes at {args.size}px, "
          f"{args.train}/{args.val} images, {args.epochs} epochs")
    print("| difficulty | generate s | epoch s | best val acc (epoch) | final val acc |")
    print("|---|---|---|---|---|")
    for difficulty in args.difficulty:
        with tempfile.TemporaryDirectory() as tmp:
            root = Path(tmp) / "synth"
            start = time.perf_counter()
            generate(root, classes=args.classes, size=args.size, train=args.train, val=args.val, test=10,
                     difficulty=difficulty)
            gen = time.perf_counter() - start
            ds = load_dataset(root, use_cache=False)
        model = create_model(cfg.model, cfg.arch, ds.num_classes, ds.in_shape)
        history = fit(model, to_device(ds, device), cfg.train, epochs=args.epochs)
        best = max(history, key=lambda r: r.accuracy)
        secs = sorted(r.seconds for r in history)[len(history) // 2]
        print(f"| {difficulty} | {gen:.0f} | {secs:.2f} | {best.accuracy:.3f} ({best.epoch}) | "
              f"{history[-1].accuracy:.3f} |", flush=True)


if __name__ == "__main__":
    main()
