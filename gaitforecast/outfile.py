"""Output files written safely: only over a regular file (or nothing), through a temporary file and a rename.

Every command that writes a file the user names (`export`, `plot`, `report`) goes through :func:`write_file`:
a directory, FIFO, device or socket at the path is refused and left untouched (writing to a FIFO would block,
to a device would write into it), a symbolic link's target file is replaced with the link kept, and a reader
never sees half a file. Call :func:`output_path` first to refuse a bad path before expensive work.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from gaitforecast.errors import GaitforecastError


def file_kind(mode: int) -> str:
    """What a path that is not a regular file is, for messages: "a directory", "a FIFO", "a device", ..."""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "a socket" if stat.S_ISSOCK(mode) else "something other than a file"


def output_path(path: Path, verb: str = "write") -> Path:
    """The file a write to ``path`` replaces (a link's target), after refusing anything there but a regular
    file; ``verb`` names the action in the message ("cannot export to ...")."""
    path = Path(path)
    if not os.path.lexists(path):
        return path
    try:
        mode = os.stat(path).st_mode  # follows a symlink: what would be replaced is what it points to
    except OSError as exc:
        raise GaitforecastError(f"cannot {verb} {path}: {exc.strerror or exc} (a dangling or looping link?); "
                                "choose a regular file path") from exc
    if not stat.S_ISREG(mode):
        raise GaitforecastError(f"cannot {verb} {path}: it is {file_kind(mode)}, not a regular file; only a regular "
                                "file is created or replaced. Choose a file path")
    return Path(os.path.realpath(path))


def write_file(path: Path, data: bytes, verb: str = "write") -> int:
    """Write ``data`` to ``path`` (checked by :func:`output_path`) through a temporary file in the same folder and
    a rename; returns the bytes written."""
    path = output_path(path, verb)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_bytes(data)
        os.replace(tmp, path)
    except OSError as exc:
        raise GaitforecastError(f"cannot write {path}: {exc.strerror or exc}; choose a writable path") from exc
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # e.g. EROFS: on a read-only file system even removing a missing file fails; nothing was written
    return len(data)
