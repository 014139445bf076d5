"""One training process per run directory.

Two processes training into the same run directory would both rewrite its checkpoint and logs (each write is
atomic, so neither file is ever torn, but the run would flip between two histories and the compute of one would be
wasted). It happens when a sweep is stopped with ``kill`` while its worker processes go on, and the same sweep is
started again. :func:`run_dir_lock` takes an advisory, exclusive ``fcntl.flock`` on the run directory itself (an
open descriptor of the directory: no file is added to the run) for as long as a run trains; a second process gets
:class:`RunDirBusyError` (a :class:`~seqmarl.config.ConfigError`: the CLI prints it and exits with code 2) naming
the directory. The kernel drops the lock when its process ends, however it ends (SIGKILL included), so a lock is
never left behind. Without ``fcntl`` (Windows) the lock is a no-op.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Iterator

from seqmarl.config import ConfigError

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]

__all__ = ["RunDirBusyError", "run_dir_lock"]


class RunDirBusyError(ConfigError):
    """Another process is training into the run directory."""


@contextlib.contextmanager
def run_dir_lock(run_dir: str | Path) -> Iterator[Path]:
    """Hold the exclusive lock of the directory ``run_dir`` (which must exist) for the ``with`` block; yields its
    path. Raises :class:`RunDirBusyError` at once (no waiting) when another open descriptor of it holds the lock
    (another process, or another ``run_dir_lock`` of the same directory in this one)."""
    path = Path(run_dir)
    if fcntl is None:  # pragma: no cover - Windows
        yield path
        return
    if not path.is_dir():
        raise ConfigError(f"run_dir={run_dir} must be an existing directory to be locked")
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RunDirBusyError(
                f"run directory {run_dir} is in use: another process is training into it, and two trainers would "
                "overwrite each other's checkpoint and logs. Wait for it to end, or stop it (its data is safe: "
                "checkpoints and logs are written atomically) and resume the run") from None
        yield path
    finally:
        os.close(fd)  # releases the lock
