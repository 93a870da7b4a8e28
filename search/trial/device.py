"""Which device a trial runs on, and the speed settings that go with it."""

from __future__ import annotations

import contextlib
import re

import torch

from gic_common.errors import UserError

__all__ = ["autocast", "describe", "resolve_device", "setup"]


def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; an explicit name must be available."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    # The form first: torch.device() raises a bare RuntimeError on "cuda:x" or "cudax".
    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", name):
        raise UserError(f"--device {name}: expected auto, cpu, cuda, cuda:N or mps")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine (try --device cpu)")
    if name.startswith("cuda:") and int(name[5:]) >= torch.cuda.device_count():
        # torch accepts any index here and fails only at the first tensor moved there
        raise UserError(f"--device {name}: this machine has {torch.cuda.device_count()} visible CUDA device(s), "
                        f"numbered from 0")
    if name == "mps" and not torch.backends.mps.is_available():
        raise UserError("--device mps: Apple's MPS is not available on this machine (try --device cpu)")
    return torch.device(name)


def setup(device: torch.device) -> None:
    """Process-wide settings: cuDNN picks the fastest kernels for the (fixed) batch shapes, and
    TF32 matmuls where bf16 autocast does not reach."""
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = True
        torch.backends.cudnn.allow_tf32 = True


def autocast(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA (no loss scaling needed, unlike fp16); full precision elsewhere, where
    bf16 is slower or unsupported."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def describe(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    if device.type == "cpu":
        return f"cpu ({torch.get_num_threads()} threads)"
    return device.type
