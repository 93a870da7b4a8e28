"""`--device`: a malformed or absent device is one clear line, never torch's RuntimeError."""

from __future__ import annotations

import pytest
import torch

from gic_common.errors import UserError
from search.trial.device import resolve_device


@pytest.mark.parametrize("name", ["cuda:x", "cudax", "cuda:", "cpu:0", "gpu"])
def test_a_malformed_device_is_a_user_error(name, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)  # as on a GPU machine, where torch would parse it
    with pytest.raises(UserError, match="expected auto, cpu, cuda, cuda:N or mps"):
        resolve_device(name)


def test_a_cuda_index_past_the_visible_devices_is_a_user_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    with pytest.raises(UserError, match="2 visible CUDA device"):
        resolve_device("cuda:2")
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    assert resolve_device("cpu") == torch.device("cpu")
