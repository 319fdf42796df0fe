"""Owner only: the plugin's data folder 0700 and every file in it 0600, whatever the umask.

The queue holds every pending record, error texts included, and `export` writes all of it;
OctoPrint keeps users.yaml 0600 for the same reason. Modes are set explicitly (a umask of
0022 would leave new files 0644), and existing files are tightened at every start.
SQLite gives the WAL and shm files it creates the database file's mode, so a database that
is 0600 before its first write keeps its companions private too.
"""

from __future__ import annotations

import logging
import os
import stat
from typing import IO, Callable, Optional

DIR_MODE = 0o700
FILE_MODE = 0o600

logger = logging.getLogger("octoprint.plugins.tracking_queued.files")


def private_dir(path: str) -> str:
    """Creates `path` (and missing parents) if needed and makes it 0700; returns it."""
    # makedirs' mode is masked by the umask (and applies to the last level only): chmod after.
    os.makedirs(path, mode=DIR_MODE, exist_ok=True)
    _chmod(path, DIR_MODE, stat.S_ISDIR)
    return path


def tighten(folder: str) -> None:
    """Makes `folder` 0700 and each regular file directly in it 0600 (the queue, its WAL and
    shm, the lock, moved-aside files). Symbolic links are left alone: following one would
    change a file outside the folder. Never raises: a folder we may not change still works."""
    _chmod(folder, DIR_MODE, stat.S_ISDIR)
    try:
        names = os.listdir(folder)
    except OSError as error:
        logger.warning("Cannot list %s to make its files private: %s", folder, error)
        return
    for name in names:
        _chmod(os.path.join(folder, name), FILE_MODE, stat.S_ISREG)


def sync_names(folder: str) -> None:
    """fsyncs `folder` and its parent. A name is on the disk only once its directory was
    fsynced: until then a power cut takes back a new data folder (OctoPrint makes it at the
    first start) with the queue in it, or the move of a bad file aside. SQLite syncs the
    folder only when it makes a WAL. Never raises: a folder that cannot be synced still works."""
    sync_file(folder)


def sync_file(path: Optional[str]) -> None:
    """fsyncs the file at `path` and its folder (its name, after an atomic rename). Never raises."""
    if not path:
        return
    for target in (path, os.path.dirname(os.path.abspath(path))):
        try:
            fd = os.open(target, os.O_RDONLY)
        except OSError:
            continue
        try:
            os.fsync(fd)
        except OSError as error:
            logger.debug("Cannot fsync %s: %s", target, error)
        finally:
            os.close(fd)


def open_private(path: str) -> IO[str]:
    """`path` opened for writing text (UTF-8), created 0600 or truncated and made 0600 first,
    so no other user can read what is written, even for a moment."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    try:
        # An existing file keeps its mode through O_CREAT; /dev/null or a pipe is left as it is.
        if stat.S_ISREG(os.fstat(fd).st_mode):
            os.fchmod(fd, FILE_MODE)
        return os.fdopen(fd, "w", encoding="utf-8")
    except BaseException:
        os.close(fd)
        raise


def _chmod(path: str, mode: int, kind: Callable[[int], bool]) -> None:
    try:
        info = os.lstat(path)
        # Only what others may use is changed: tightening never widens the owner's own bits.
        if kind(info.st_mode) and info.st_mode & 0o077:
            os.chmod(path, mode)
    except FileNotFoundError:
        pass  # gone meanwhile (SQLite removes its WAL and shm when the last connection closes)
    except OSError as error:
        logger.warning("Cannot make %s private (mode %o): %s", path, mode, error)
