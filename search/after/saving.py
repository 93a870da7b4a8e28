"""Writing files and folders so that a stop at any moment leaves the old one or the new one, never a
half or a mix, and so that the next run clears what a killed process left half done.

Temporary names are hidden and carry the writing process's id (``.NAME.PID.xxxxxxxx``,
``.NAME.new.PID.xxxxxxxx``): a leftover of a process that no longer runs is removed (or, for a folder
swap cut short, finished), while a file another live process is still writing is left alone.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from gic_common.errors import UserError

__all__ = ["NoSpace", "refuse_foreign", "replace_folder", "settle_folder", "write_atomic"]

_RANDOM = r"[a-z0-9_]{8}"  # the random part tempfile adds to a name


class NoSpace(UserError):
    """A full disk: what the user does about it is the same wherever it struck (free space there), so a
    folder being replaced names itself rather than the temporary file that hit the limit."""


def _cannot_write(path: Path, e: OSError, what: str = "write") -> UserError:
    if e.errno in (errno.ENOSPC, errno.EDQUOT):
        return NoSpace(f"{path.parent}: no space left on the device (writing {path.name}); free some and run again")
    return UserError(f"{path}: cannot {what} it ({e.strerror or e})")


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _prefix(name: str, kind: str = "") -> str:
    return f".{name}.{kind}{os.getpid()}."


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0 only asks whether the process exists
    except (ProcessLookupError, OverflowError):  # none has that id (now, or ever)
        return False
    except PermissionError:  # it does, as another user's
        return True
    return True


def _dead_leftovers(parent: Path, pattern: str) -> Iterator[tuple[re.Match, Path]]:
    """Entries of ``parent`` whose names match ``pattern`` (its group ``pid`` the writer's id) and whose
    writer no longer runs."""
    regex = re.compile(pattern)
    with contextlib.suppress(OSError):  # an unreadable folder has nothing we could clear either
        for entry in list(parent.iterdir()):
            match = regex.fullmatch(entry.name)
            if match and not _alive(int(match["pid"])):
                yield match, entry


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Calls ``write(tmp_path)`` and renames the result into place: an interrupted or failed write
    never leaves a half file where a good one was. A path that cannot be written (a folder there, a
    parent that is a file, no permission, a full disk) is one line naming it."""
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        for _, leftover in _dead_leftovers(path.parent, rf"\.{re.escape(path.name)}\.(?P<pid>\d+)\.{_RANDOM}"):
            leftover.unlink(missing_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=_prefix(path.name), dir=path.parent)
        os.close(fd)
        write(Path(tmp))
        # After the write: mkstemp makes the file private, and safetensors replaces it with a private
        # file of its own. The result is an ordinary file and gets the mode any new file gets here.
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException as e:
        if tmp is not None:
            Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError):
            raise _cannot_write(path, e) from None
        raise


def settle_folder(out: Path) -> None:
    """Finishes what a process killed while replacing ``out`` (replace_folder) left beside it. Killed
    between its two renames, it left the old folder moved aside and the new one complete: the new one
    becomes ``out``. A new folder it never finished, or an old one it had already replaced, is removed."""
    pattern = rf"\.{re.escape(out.name)}\.(?P<kind>new|old)\.(?P<pid>\d+)\.(?P<key>{_RANDOM})"
    found = {(m["kind"], m["key"]): path for m, path in _dead_leftovers(out.parent, pattern) if path.is_dir()}
    try:
        for (kind, key), path in found.items():
            if kind == "old" and not out.exists():
                new = found.get(("new", key))
                os.rename(new if new is not None and new.exists() else path, out)
        for path in found.values():
            if path.exists():
                shutil.rmtree(path)
    except OSError as e:
        raise UserError(f"{out}: cannot finish the replacement a stopped retrain left there ({e})") from None


def refuse_foreign(out: Path, owned: Callable[[str], bool]) -> None:
    """Refuses an ``out`` that replace_folder would not replace: a file, or a folder holding entries
    that ``owned`` does not claim (the user's own files, never ours to throw away)."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out}: is a file, not a model folder; choose another --out")
    foreign = sorted(p.name for p in out.iterdir() if not owned(p.name)) if out.exists() else []
    if foreign:
        raise UserError(f"{out}: holds files that are not a model's ({', '.join(foreign[:3])}"
                        f"{', ...' if len(foreign) > 3 else ''}); choose another --out, or empty it")


@contextlib.contextmanager
def replace_folder(out: Path, owned: Callable[[str], bool]) -> Iterator[Path]:
    """Yields a new empty folder beside ``out``; when the block ends without an error the new folder
    takes ``out``'s place as a whole (``out`` renamed aside, the new one renamed in, the old one
    removed). On an error or a stop, the new folder goes and ``out`` stays as it was.

    ``owned(name)`` says which entries of an existing ``out`` belong to what is being replaced: a
    folder holding anything else is refused (refuse_foreign)."""
    out = out.resolve()  # a link to a folder elsewhere: replace the folder, not the link
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _cannot_write(out, e) from None
    settle_folder(out)
    refuse_foreign(out, owned)
    try:
        new = Path(tempfile.mkdtemp(prefix=_prefix(out.name, "new."), dir=out.parent))
        os.chmod(new, 0o777 & ~_umask())  # mkdtemp makes it private; the result is an ordinary folder
    except OSError as e:
        raise _cannot_write(out, e) from None
    old = out.parent / (_prefix(out.name, "old.") + new.name[-8:])  # its new one's key: settle pairs them
    try:
        yield new
    except NoSpace:
        shutil.rmtree(new, ignore_errors=True)
        raise NoSpace(f"{out.parent}: no space left on the device to write {out.name}/ (what was there is kept); "
                      "free some and run again") from None
    except BaseException:
        shutil.rmtree(new, ignore_errors=True)
        raise
    try:
        if out.exists():
            os.rename(out, old)
        try:
            os.rename(new, out)
        except BaseException:
            if old.exists() and not out.exists():
                os.rename(old, out)  # stopped between the two renames: the old folder goes back
            raise
    except BaseException as e:
        shutil.rmtree(new, ignore_errors=True)
        if isinstance(e, OSError):
            raise _cannot_write(out, e, "replace") from None
        raise
    shutil.rmtree(old, ignore_errors=True)
