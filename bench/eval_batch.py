"""What a validation pass costs at each scoring batch, against a training epoch, in one run.

    python bench/eval_batch.py --data DIR [--batches 1024 256 64 32] [--threads 2]

The cnn space's recommended design (its mirror-image TTA on, as it is) scores DIR's validation split
at each batch size, twice each (the second is timed), then trains one epoch; every figure is printed
as seconds and as a ratio to the training epoch. A pass every epoch at a slow batch is what a long
final run pays for its curve (search/trial/train.py ``eval_batch``, search/after/retrain.py).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import optuna
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from search.data.options import DataOptions  # noqa: E402
from search.trial.inputs import load_data, seeded_model, to_device  # noqa: E402
from search.trial.train import fit, predict_logits  # noqa: E402
from spaces import get_space, recommended_design  # noqa: E402
from spaces.priors import Budget  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True)
    p.add_argument("--batches", nargs="+", type=int, default=[1024, 256, 64, 32])
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    ds = load_data(args.data, DataOptions())
    data = to_device(ds, torch.device("cpu"))
    space = get_space("cnn")
    cfg = space.suggest(optuna.trial.FixedTrial(recommended_design(space, Budget(30, "cpu"))))
    model = seeded_model(cfg, 0, ds.num_outputs, ds.in_shape)
    passes = {}
    for batch in args.batches:
        for _ in range(2):  # the first pays for allocations
            start = time.perf_counter()
            predict_logits(model, data.val_x, data.mean, data.std, batch, cfg.train.tta)
            passes[batch] = time.perf_counter() - start
    epoch = fit(model, dataclasses.replace(data, val_x=None, val_y=None), cfg.train, epochs=1)[0].seconds
    print(f"{args.data.name}: {len(ds.train_x)} train, {len(ds.val_x)} val, TTA {cfg.train.tta}, "
          f"{args.threads} threads; a training epoch {epoch:.2f}s")
    for batch, seconds in passes.items():
        print(f"  scoring batch {batch:>5}: a validation pass {seconds:.2f}s = {seconds / epoch:.2f} of an epoch")


if __name__ == "__main__":
    main()
