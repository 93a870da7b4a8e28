"""The engine's lines for the person at the terminal: on stderr, so stdout keeps only a command's
answer (a path, a JSON record) for scripts to read."""

from __future__ import annotations

import sys

__all__ = ["count_progress", "log"]


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def count_progress(what: str):
    """A progress(done, total) callback that keeps one line on stderr up to date."""

    def show(done: int, total: int) -> None:
        print(f"\r{what} {done}/{total}", end="\n" if done == total else "", file=sys.stderr, flush=True)

    return show
