"""When the user's wait began: the process's own start, not the first line of our code.

`run --time T` promises the whole command inside T, and the user waits from the moment the shell
starts the interpreter. What runs before `main` (the interpreter, site-packages' path files, the CLI's
imports) is 0.06 s on a warm disk, but nothing bounds it on a cold or busy one, and a job clock that
starts late ends late by the same seconds. Linux says when a process started (/proc/self/stat, in
clock ticks since boot, on the boot-time clock); elsewhere the clock starts when this is called."""

from __future__ import annotations

import os
import time

__all__ = ["process_started"]

BEFORE_MAIN_LIMIT = 60.0  # seconds: more than any start-up before `main`, less than a host program's work


def process_started() -> float:
    """The ``time.monotonic()`` reading at which this process started (never later than now)."""
    now = time.monotonic()
    try:
        with open("/proc/self/stat") as f:
            # Field 22, starttime; the fields after the command name, which may hold spaces, from 3 on.
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])
        ran = time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):  # not Linux, or no /proc mounted
        return now
    # The interpreter and the CLI's imports take seconds at most. A longer reading is a process that
    # did other work first (a host program calling `main`) or a clock misread: the call is the start.
    return now - ran if 0.0 <= ran < BEFORE_MAIN_LIMIT else now
