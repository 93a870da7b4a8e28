"""`run --workers K --gpus 0,1 --trials-per-gpu M`: K local `worker` processes on one study.

No scheduler of ours: each process is the same `python -m search worker` a user would start by
hand on another machine, and they coordinate only through the storage, as Optuna's distributed
mode intends. A process sees one GPU (CUDA_VISIBLE_DEVICES), so a model never lands on a neighbour's
card; M processes per GPU let small models share a big one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

import optuna

from gic_common.errors import UserError
from search.journal import journal_path
from search.workers.progress import Progress, watching
from search.workers.worker import LAUNCHER_PID

__all__ = ["Placement", "check_storage", "launch_workers", "placements"]


@dataclass(frozen=True)
class Placement:
    index: int
    gpu: str | None  # the CUDA_VISIBLE_DEVICES value; None: the device the user asked for


def placements(workers: int | None, gpus: str | None, per_gpu: int | None) -> list[Placement]:
    """Where each worker runs. With --gpus, M workers on each listed GPU (K defaults to, and must
    equal, GPUs x M); without, K workers on the same device."""
    if workers == 0 and gpus is None and per_gpu is None:
        return []
    if gpus is None:
        if per_gpu is not None and workers is not None and workers != per_gpu:
            raise UserError("--trials-per-gpu without --gpus means that many workers on the one device; "
                            "give --workers or --trials-per-gpu, not both")
        return [Placement(i, None) for i in range(workers or per_gpu or 1)]
    ids = [g.strip() for g in gpus.split(",") if g.strip()]
    if not ids or not all(g.isdigit() for g in ids) or len(set(ids)) != len(ids):
        raise UserError(f"--gpus {gpus}: expected distinct GPU numbers separated by commas, e.g. 0,1,2,3")
    per_gpu = per_gpu or 1
    if workers is not None and workers != len(ids) * per_gpu:
        raise UserError(f"--workers {workers} does not match --gpus {gpus} x --trials-per-gpu {per_gpu} "
                        f"= {len(ids) * per_gpu}; leave --workers out")
    return [Placement(i, g) for i, g in enumerate(g for g in ids for _ in range(per_gpu))]


def check_storage(url: str, workers: int) -> None:
    """Concurrent writers need a storage that takes them: a journal file or a database server."""
    if workers > 1 and url.startswith("sqlite"):
        raise UserError(f"{url}: one SQLite file cannot take {workers} concurrent workers; use a journal "
                        f"file (--storage journal:///path/study.log) or PostgreSQL (--storage postgresql://...)")
    if workers > 1 and journal_path(url) is None and not url.startswith(("postgresql", "mysql")):
        raise UserError(f"{url}: workers need a journal file or PostgreSQL/MySQL storage")


def _command(study: optuna.Study, url: str, device: str, heartbeat: int | None, timeout: float | None) -> list[str]:
    cmd = [sys.executable, "-m", "search", "worker", "--study", study.study_name, "--storage", url,
           "--device", device, "--heartbeat", str(heartbeat or 0), "--no-progress"]
    return cmd + (["--timeout", str(timeout)] if timeout is not None else [])


def _relay(stream, prefix: str, write: Callable[[str], None]) -> None:
    """Copies a worker's output to ours, each line prefixed with the worker it came from; ``write``
    puts it above the study's bar, which a plain write to stderr would cut through."""
    for line in iter(stream.readline, ""):
        write(f"{prefix} {line.rstrip()}")
    stream.close()


def _label(place: Placement) -> str:
    return f"[worker {place.index}{'' if place.gpu is None else f' gpu {place.gpu}'}]"


def _start(study: optuna.Study, url: str, place: Placement, device: str, heartbeat: int | None,
           timeout: float | None, write: Callable[[str], None]) -> tuple[subprocess.Popen, threading.Thread]:
    env = dict(os.environ, PYTHONUNBUFFERED="1", **{LAUNCHER_PID: str(os.getpid())})
    if place.gpu is not None:
        env["CUDA_VISIBLE_DEVICES"] = place.gpu
    dev = "cuda" if place.gpu is not None else device
    proc = subprocess.Popen(_command(study, url, dev, heartbeat, timeout), env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    relay = threading.Thread(target=_relay, args=(proc.stdout, _label(place), write), daemon=True)
    relay.start()
    return proc, relay


def launch_workers(
    study: optuna.Study, url: str, places: list[Placement], device: str, heartbeat: int | None,
    timeout: float | None = None, trials: int | None = None, progress: bool = False,
) -> int:
    """Starts one worker process per placement, forwards SIGTERM to them, waits for all; returns
    the first non-zero exit status (0 when all finished). ``progress``: meanwhile one bar shows the
    whole study's way to ``trials`` finished trials (the workers show none), with their lines above it."""
    procs: list[subprocess.Popen] = []
    relays: list[threading.Thread] = []
    stops: list[int] = []

    def forward(signum, frame):
        # Ctrl-C reaches the workers by itself (one process group); a SIGTERM sent to us does not.
        stops.append(signum)
        _send(procs, signum)

    # Before the first worker starts: a stop that comes while they start must reach those started.
    old = {s: signal.signal(s, forward) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        with watching(study, Progress.of_study(study, trials, enabled=progress, timeout=timeout)) as bar:
            try:
                for place in places:
                    if stops:
                        break  # stopped while starting: start no more
                    proc, relay = _start(study, url, place, device, heartbeat, timeout, bar.write)
                    procs.append(proc)
                    relays.append(relay)
            except BaseException:
                _send(procs, signal.SIGTERM)  # one worker failed to start: leave none of its peers running unwatched
                _wait(procs, relays)
                raise
            if stops:
                _send(procs[-1:], stops[0])  # it came while this one started, before forward() knew of it
            codes = _wait(procs, relays)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    # A worker killed outright (SIGKILL, the OOM killer) says nothing itself: say it here, and exit
    # as a shell reports such a death (128 + the signal), not with Python's negative return code.
    for place, code in zip(places, codes, strict=False):
        if code < 0:
            sys.stderr.write(f"{_label(place)} killed by {signal.Signals(-code).name}\n")
    return next((128 - c if c < 0 else c for c in codes if c != 0), 0)


def _send(procs: list[subprocess.Popen], signum: int) -> None:
    for proc in procs:
        if proc.poll() is None:
            proc.send_signal(signum)


def _wait(procs: list[subprocess.Popen], relays: list[threading.Thread]) -> list[int]:
    codes = [proc.wait() for proc in procs]
    for relay in relays:
        relay.join()
    return codes
