"""The one-sender rule: whoever sends from (or rewrites) the queue holds this lock.

The running server holds it for its whole life; the command line takes it for `flush` and
`clear` and refuses when it cannot. `flock` locks belong to the open file, so the kernel
drops a crashed holder's lock by itself: no stale lock files to clean up.
"""

from __future__ import annotations

import fcntl
import os
from typing import Optional

from . import files

LOCK_FILE = "queue.lock"


class QueueLock:
    """A non-blocking exclusive `flock` on `<folder>/queue.lock`."""

    def __init__(self, folder: str) -> None:
        self.path = os.path.join(folder, LOCK_FILE)
        self._fd: Optional[int] = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self) -> bool:
        """Takes the lock if it is free; True when this object holds it (also when it already did)."""
        if self._fd is not None:
            return True
        # The first thing of ours in the data folder (OctoPrint made it 0755, or nobody yet):
        # owner only from here on; the queue tightens its files when it opens them.
        files.private_dir(os.path.dirname(self.path))
        # os.open's descriptors are not inherited by child processes (PEP 446), so a
        # helper process the server starts cannot keep the lock alive after the server.
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, files.FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())  # for humans looking at the file
        self._fd = fd
        return True

    def release(self) -> None:
        if self._fd is None:
            return
        try:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        finally:
            os.close(self._fd)
            self._fd = None

    def is_held_elsewhere(self) -> bool:
        """True while another process (the running server) holds the lock."""
        if self._fd is not None:
            return False
        if not self.acquire():
            return True
        self.release()
        return False

    def __enter__(self) -> QueueLock:
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()
