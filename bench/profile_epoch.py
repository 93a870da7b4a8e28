"""Where an epoch of seed 000's CNN spends its time: torch.profiler's table for one epoch.

    python bench/profile_epoch.py [--batch 256] [--limit 4096]

Self CPU time far above self CUDA time means the GPU waits on Python and kernel launches, which
CUDA graphs or bigger batches remove; the reverse means the kernels themselves are the floor.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import optuna
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gic_common.configs import TrainConfig  # noqa: E402
from gic_models import create_model  # noqa: E402
from search.config import load_preset  # noqa: E402
from search.data import load_dataset  # noqa: E402
from search.places import synth_dir  # noqa: E402
from search.trial.device import resolve_device, setup  # noqa: E402
from search.trial.inputs import to_device  # noqa: E402
from search.trial.train import fit  # noqa: E402
from spaces.cnn import SEED000, suggest  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--data", type=Path)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--limit", type=int, default=4096)
    p.add_argument("--device", default="auto")
    args = p.parse_args()
    device = resolve_device(args.device)
    setup(device)
    ds = load_dataset(args.data or synth_dir(load_preset("cnn", "cuda").synth))
    ds.train_x, ds.train_y = ds.train_x[: args.limit], ds.train_y[: args.limit]
    ds.val_x, ds.val_y = ds.val_x[:256], ds.val_y[:256]
    tensors = to_device(ds, device)
    arch = suggest(optuna.trial.FixedTrial(SEED000)).arch
    cfg = TrainConfig(batch_size=args.batch, schedule="constant")
    model = create_model("cnn", arch, ds.num_classes, ds.in_shape)
    fit(model, tensors, cfg, epochs=1)  # warm-up: cuDNN autotuning, allocator
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        fit(model, tensors, cfg, epochs=1)
    sort = "self_cuda_time_total" if device.type == "cuda" else "self_cpu_time_total"
    print(prof.key_averages().table(sort_by=sort, row_limit=25, max_name_column_width=60))


if __name__ == "__main__":
    main()
