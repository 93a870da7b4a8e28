"""A fixed design's validation-accuracy curve over a long run, one JSON line an epoch.

    python bench/long_curves.py --data DIR [--design seed recommended] [--epochs 30] [--seed 0]
                                [--threads 1] [--out FILE]

A study's trials see a few epochs; whether a benchmark is learnt early or late (issue 19: "near chance
over its first quarter") shows only in a long run of one design. ``seed`` is seed 000's CNN
(spaces.cnn.SEED000: Adam 1e-3, batch 32, no augmentation, as its report trained it); ``recommended``
is the cnn space's recommended design for a budget of that many epochs on this device. Both are
trained by the engine's own loop (search.trial.train.fit), on the splits the search would make.
``--threads 1`` by default: these runs share a small CPU with others, and one thread keeps their
epoch times comparable.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def design_params(design: str, epochs: int, device: str) -> dict:
    import spaces
    from spaces import cnn
    from spaces.priors import Budget

    if design == "seed":
        return dict(cnn.SEED000)
    return spaces.recommended_design(cnn, Budget(epochs, device))


def curve(data: Path, design: str, epochs: int, seed: int = 0, device: str = "cpu", emit=print) -> list[dict]:
    """Trains ``design`` for ``epochs`` and emits (and returns) one row an epoch."""
    import optuna
    import torch

    from search.data.options import DataOptions
    from search.trial.inputs import load_data, seeded_model, to_device
    from search.trial.train import fit
    from spaces import get_space

    ds = load_data(data, DataOptions(), quiet=True)
    space = get_space("cnn")
    cfg = space.suggest(optuna.trial.FixedTrial(design_params(design, epochs, device)))
    model = seeded_model(cfg, seed, ds.num_outputs, ds.in_shape)
    rows: list[dict] = []
    start = time.perf_counter()

    def record(result) -> None:
        row = {"data": data.name, "design": design, "epoch": result.epoch, "accuracy": round(result.accuracy, 4),
               "train_loss": round(result.train_loss, 4), "chance": round(1 / ds.num_classes, 4),
               "seconds": round(time.perf_counter() - start, 1)}
        rows.append(row)
        emit(row)

    fit(model, to_device(ds, torch.device(device)), cfg.train, epochs=epochs, seed=seed, on_epoch=record)
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--design", nargs="+", choices=["seed", "recommended"], default=["seed", "recommended"])
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, help="also append the rows here, as JSON lines")
    args = p.parse_args()
    import torch

    torch.set_num_threads(args.threads)

    def emit(row: dict) -> None:
        print(json.dumps(row), flush=True)
        if args.out:  # appended as they come: a run cut short keeps its epochs
            with args.out.open("a") as f:
                f.write(json.dumps(row) + "\n")

    for design in args.design:  # one after the other, never at once: the CPU is shared
        curve(args.data, design, args.epochs, args.seed, emit=emit)


if __name__ == "__main__":
    main()
