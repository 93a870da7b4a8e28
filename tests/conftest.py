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


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> Path:
    """4 classes of 16x16 images, 120 train / 40 val: a cnn trial takes a second or two on one thread."""
    from search.data.synth import generate

    root = tmp_path_factory.mktemp("data") / "small"
    generate(root, classes=4, size=16, train=120, val=40, test=10, seed=0)
    return root


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def postgres_url():
    """A throwaway PostgreSQL server on 127.0.0.1 for the session (Debian's postgresql package,
    installed by tests/system_deps.sh): initdb into a temporary folder, started with pg_ctl and
    stopped at the end. As root, initdb and pg_ctl run as the `postgres` user, as they insist."""
    import shutil
    import subprocess

    bindir = Path("/usr/lib/postgresql/15/bin")
    if not (bindir / "initdb").exists():
        pytest.fail(f"{bindir / 'initdb'} missing: run `bash tests/system_deps.sh` (make test does)")
    root = Path(tempfile.mkdtemp(prefix="gic-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()

    def pg(*args: str) -> None:
        subprocess.run([*as_user, *args], check=True, capture_output=True, text=True)

    pg(str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    options = f"-c listen_addresses=127.0.0.1 -c port={port} -c unix_socket_directories={root} -c fsync=off"
    pg(str(bindir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(root / "log"), "-w", "start")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
