"""Share the CPU cores between the llama.cpp runs of one machine instead of oversubscribing them.

llama.cpp's worker threads spin while they wait, so two runs that each take every core do not run at
half speed each: they thrash (measured: 600 s each for a job one run finishes in 40 s). Each process
that is generating with llama.cpp holds an flock'ed file in `$TMPDIR/recsaver-<uid>/cores/` (one
folder per user and machine, whatever cache or RECSAVER_HOME each run uses; `RECSAVER_CORES_DIR`
overrides it); before every generation the backend counts the live holders and uses
`cores // holders` threads (at least 1). A file whose lock can be taken belongs to a process that is
gone, and is removed. A fixed `n_threads` turns this off.
"""

from __future__ import annotations

import fcntl
import os
import tempfile
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def run_folder() -> Path:
    if os.environ.get("RECSAVER_CORES_DIR"):
        return Path(os.environ["RECSAVER_CORES_DIR"])
    return Path(tempfile.gettempdir()) / f"recsaver-{os.getuid()}" / "cores"


class CoreShare:
    """This process's share of the cores. It counts as a holder only while `active()`: a run that is
    waiting for another run's generations (cache claims) holds no share, so the generating one keeps
    every core."""

    def __init__(self, folder: Path | None = None):
        self.folder = folder or run_folder()
        self.path = self.folder / f"llamacpp-{os.getpid()}-{uuid.uuid4().hex[:8]}.lock"
        self._fd: int | None = None

    @contextmanager
    def active(self) -> Iterator[None]:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._fd = os.open(self.path, os.O_CREAT | os.O_RDWR, 0o644)
        fcntl.flock(self._fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        try:
            yield
        finally:
            self.path.unlink(missing_ok=True)
            os.close(self._fd)
            self._fd = None

    def holders(self) -> int:
        """llama.cpp processes of this machine generating right now (this one included when active)."""
        live = 0
        for path in self.folder.glob("llamacpp-*.lock"):
            if path == self.path:
                live += 1
                continue
            try:
                fd = os.open(path, os.O_RDWR)
            except FileNotFoundError:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                live += 1  # its process holds the lock: alive and generating
            else:
                path.unlink(missing_ok=True)  # nobody holds it: a process that died without cleaning up
            finally:
                os.close(fd)
        return max(live, 1)

    def threads(self) -> int:
        return max(1, available_cores() // self.holders())
