"""Shared fixtures: one tiny synthetic dataset per session, and a private dataset cache."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Set before any test imports the loader: the suite never touches the user's own cache.
os.environ.setdefault("GIC_CACHE_DIR", tempfile.mkdtemp(prefix="gic-test-cache-"))


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    """10 classes of 32x32 images, 300 train / 100 val / 50 test, in the GIC layout."""
    from search.data.synth import generate

    root = tmp_path_factory.mktemp("data") / "tiny"
    generate(root, classes=10, size=32, train=300, val=100, test=50, seed=0)
    return root
