"""A power-cut file system for the tests: a FUSE pass-through (mfusepy over Debian's libfuse3)
that can forget everything not yet fsynced, as a machine that loses power does.

Like Jepsen's LazyFS, every change since the last fsync is kept where it can be thrown away:
a write or truncate keeps the bytes it replaced (an undo entry under the file's name at the
time, dropped by an fsync or fdatasync under that name), a create, unlink, rename, mkdir or rmdir keeps how to undo it (an
entry for its directory, dropped by the directory's fsync). Namespace changes are treated as
POSIX does, not as ext4 happens to: a new file's name is durable only once its directory was
fsynced. A cut undoes the entries, newest first: all of them, or all after a random prefix
(what a disk wrote back on its own before the power went), optionally tearing the last kept
write.

    python -m tests.harness.powercut BACKING MOUNTPOINT CONTROL_SOCKET

serves in the foreground; `PowerCutFS` (below) starts it, talks to it and unmounts it. The
control socket takes one line, "cut MODE SEED" (MODE: all, prefix or torn) or "stats", and
answers one JSON line. Needs root (or /dev/fuse access) and the `fusermount3` of Debian's fuse3.
"""

from __future__ import annotations

import errno
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

MODES = ("all", "prefix", "torn")


class Journal:
    """What could still be lost: undo entries in the order they were made, per file and per directory."""

    def __init__(self, root: str, grave: str) -> None:
        self.root = root
        self.grave = grave  # unlinked and overwritten files, kept until their loss is final
        self.seq = 0
        self.data: Dict[str, List[Tuple[int, str, tuple]]] = {}  # file path -> entries
        self.names: Dict[str, List[Tuple[int, str, tuple]]] = {}  # dir path -> entries
        self.synced = {"file": 0, "dir": 0}
        self.lock = threading.RLock()

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def real(self, path: str) -> str:
        return os.path.join(self.root, path.lstrip("/"))

    def _bury(self, real: str) -> str:
        target = os.path.join(self.grave, str(self._next()))
        os.rename(real, target)
        return target

    # ~~ recording (called before the change is made)

    def write(self, path: str, offset: int, length: int) -> None:
        real = self.real(path)
        size = os.path.getsize(real)
        with open(real, "rb") as f:
            f.seek(offset)
            old = f.read(max(0, min(length, size - offset)))
        self.data.setdefault(path, []).append((self._next(), "write", (offset, old, size)))

    def truncate(self, path: str, length: int) -> None:
        real = self.real(path)
        size = os.path.getsize(real)
        cut = b""
        if length < size:
            with open(real, "rb") as f:
                f.seek(length)
                cut = f.read()
        self.data.setdefault(path, []).append((self._next(), "truncate", (length, cut, size)))

    def created(self, path: str, kind: str) -> None:
        self.names.setdefault(os.path.dirname(path), []).append((self._next(), "created", (path, kind)))

    def unlink(self, path: str) -> None:
        """The file goes to the grave instead of away: a cut brings it back."""
        kept = self._bury(self.real(path))
        self.names.setdefault(os.path.dirname(path), []).append((self._next(), "unlinked", (path, kept)))

    def rmdir(self, path: str) -> None:
        self.names.setdefault(os.path.dirname(path), []).append((self._next(), "rmdir", (path,)))

    def rename(self, old: str, new: str) -> None:
        replaced = None
        if os.path.lexists(self.real(new)) and not os.path.isdir(self.real(new)):
            replaced = self._bury(self.real(new))
        entry = (self._next(), "renamed", (old, new, replaced))
        self.names.setdefault(os.path.dirname(new), []).append(entry)
        if os.path.dirname(old) != os.path.dirname(new):
            self.names.setdefault(os.path.dirname(old), []).append(entry)

    # ~~ durability

    def fsync_file(self, path: str) -> None:
        if self.data.pop(path, None):
            self.synced["file"] += 1

    def fsync_dir(self, path: str) -> None:
        entries = self.names.pop(path, None)
        if entries:
            self.synced["dir"] += 1

    def pending(self) -> List[Tuple[int, str, str, tuple]]:
        out = {}
        for path, entries in self.data.items():
            for seq, kind, args in entries:
                out[seq] = (seq, kind, path, args)
        for path, entries in self.names.items():
            for seq, kind, args in entries:
                out[seq] = (seq, kind, path, args)
        return [out[k] for k in sorted(out)]

    # ~~ the cut

    def cut(self, mode: str, seed: int) -> Dict[str, Any]:
        """Undoes what was not synced (all of it, or what came after a random prefix); returns
        what it did."""
        rng = random.Random(seed)
        entries = self.pending()
        keep = 0 if mode == "all" or not entries else rng.randint(0, len(entries))
        lost = entries[keep:]
        torn = None
        if mode == "torn" and keep > 0 and entries[keep - 1][1] == "write":
            torn = entries[keep - 1]
        for _seq, kind, path, args in reversed(lost):
            self._undo(kind, path, args)
        if torn is not None:  # the last kept write reached the disk only in part
            seq, kind, path, (offset, old, size) = torn
            written = len(old)  # the bytes it replaced; its own length is what the file has now
            part = rng.randint(0, max(0, written))
            real = self.real(path)
            if os.path.exists(real) and part < written:
                with open(real, "r+b") as f:
                    f.seek(offset + part)
                    f.write(old[part:])
        self.data.clear()
        self.names.clear()
        for name in os.listdir(self.grave):
            path = os.path.join(self.grave, name)
            shutil.rmtree(path) if os.path.isdir(path) else os.remove(path)
        return {"unsynced": len(entries), "lost": len(lost), "kept": keep, "torn": torn is not None}

    def _undo(self, kind: str, path: str, args: tuple) -> None:
        if kind == "write":
            offset, old, size = args
            real = self.real(path)
            if not os.path.exists(real):
                return
            with open(real, "r+b") as f:
                f.seek(offset)
                f.write(old)
                f.truncate(size)
        elif kind == "truncate":
            length, cut, size = args
            real = self.real(path)
            if not os.path.exists(real):
                return
            with open(real, "r+b") as f:
                f.truncate(size)
                if cut:
                    f.seek(length)
                    f.write(cut)
        elif kind == "created":
            real = self.real(args[0])
            if os.path.isdir(real):
                shutil.rmtree(real, ignore_errors=True)
            elif os.path.lexists(real):
                os.remove(real)
        elif kind == "unlinked":
            name, kept = args
            os.rename(kept, self.real(name))
        elif kind == "rmdir":
            os.makedirs(self.real(args[0]), exist_ok=True)
        elif kind == "renamed":
            old, new, replaced = args
            if os.path.lexists(self.real(new)):
                os.rename(self.real(new), self.real(old))
            if replaced:
                os.rename(replaced, self.real(new))


def serve(backing: str, mountpoint: str, control: str) -> None:
    import mfusepy as fuse  # Debian's libfuse3 through ctypes: only where a mount is made

    grave = backing.rstrip("/") + ".grave"
    os.makedirs(grave, exist_ok=True)
    journal = Journal(backing, grave)

    class Ops(fuse.Operations):
        use_ns = True

        def __init__(self) -> None:
            self.files: Dict[int, str] = {}

        def _real(self, path: str) -> str:
            return journal.real(path)

        def getattr(self, path, fh=None):
            st = os.lstat(self._real(path))
            keys = ("st_mode", "st_nlink", "st_uid", "st_gid", "st_size", "st_atime", "st_mtime", "st_ctime")
            out = {key: getattr(st, key) for key in keys}
            for key in ("st_atime", "st_mtime", "st_ctime"):
                out[key] = getattr(st, key + "_ns") if hasattr(st, key + "_ns") else out[key]
            return out

        def access(self, path, amode):
            if not os.access(self._real(path), amode):
                raise fuse.FuseOSError(errno.EACCES)
            return 0

        def readdir(self, path, fh):
            return [".", "..", *os.listdir(self._real(path))]

        def readlink(self, path):
            return os.readlink(self._real(path))

        def statfs(self, path):
            st = os.statvfs(self._real(path))
            keys = ("f_bavail", "f_bfree", "f_blocks", "f_bsize", "f_favail", "f_ffree", "f_files", "f_flag")
            return {key: getattr(st, key) for key in keys + ("f_frsize", "f_namemax")}

        def chmod(self, path, mode):
            os.chmod(self._real(path), mode)
            return 0

        def chown(self, path, uid, gid):
            os.chown(self._real(path), uid, gid)
            return 0

        def utimens(self, path, times=None):
            os.utime(self._real(path), ns=times) if times else os.utime(self._real(path))
            return 0

        def mkdir(self, path, mode):
            with journal.lock:
                os.mkdir(self._real(path), mode)
                journal.created(path, "dir")
            return 0

        def rmdir(self, path):
            with journal.lock:
                os.rmdir(self._real(path))
                journal.rmdir(path)
            return 0

        def unlink(self, path):
            with journal.lock:
                journal.unlink(path)
            return 0

        def rename(self, old, new):
            with journal.lock:
                if os.path.isdir(self._real(old)):
                    os.rename(self._real(old), self._real(new))  # not tracked: the tests rename no folders
                    return 0
                journal.rename(old, new)
                os.rename(self._real(old), self._real(new))
            return 0

        def symlink(self, target, source):
            with journal.lock:
                os.symlink(source, self._real(target))
                journal.created(target, "link")
            return 0

        def open(self, path, flags):
            with journal.lock:
                if flags & os.O_TRUNC:
                    journal.truncate(path, 0)
                fd = os.open(self._real(path), flags & ~os.O_APPEND)
                self.files[fd] = path
                return fd

        def create(self, path, mode, fi=None):
            with journal.lock:
                existed = os.path.exists(self._real(path))
                if existed:
                    journal.truncate(path, 0)
                fd = os.open(self._real(path), os.O_RDWR | os.O_CREAT | os.O_TRUNC, mode)
                if not existed:
                    journal.created(path, "file")
                self.files[fd] = path
                return fd

        def read(self, path, size, offset, fh):
            return os.pread(fh, size, offset)

        def write(self, path, data, offset, fh):
            with journal.lock:
                journal.write(path, offset, len(data))
                return os.pwrite(fh, data, offset)

        def truncate(self, path, length, fh=None):
            with journal.lock:
                journal.truncate(path, length)
                os.truncate(self._real(path), length)
            return 0

        def flush(self, path, fh):
            return 0

        def release(self, path, fh):
            with journal.lock:
                self.files.pop(fh, None)
                os.close(fh)
            return 0

        def fsync(self, path, datasync, fh):
            with journal.lock:
                journal.fsync_file(path)
            return 0

        def fsyncdir(self, path, datasync, fh):
            with journal.lock:
                journal.fsync_dir(path)
            return 0

    def control_loop() -> None:
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(control)
        server.listen(1)
        while True:
            conn, _ = server.accept()
            with conn:
                words = conn.makefile("r").readline().split()
                with journal.lock:
                    if words[:1] == ["cut"]:
                        answer = journal.cut(words[1], int(words[2]))
                    else:
                        answer = {"unsynced": len(journal.pending()), **journal.synced}
                conn.sendall((json.dumps(answer) + "\n").encode())

    threading.Thread(target=control_loop, daemon=True).start()
    # No kernel caching of names or attributes: after a cut, what the next process sees is the disk.
    fuse.FUSE(
        Ops(),
        mountpoint,
        foreground=True,
        allow_other=True,
        attr_timeout=0,
        entry_timeout=0,
        negative_timeout=0,
    )


class PowerCutFS:
    """The file system over `mountpoint`, backed by `backing`; started, cut and unmounted from a test."""

    def __init__(self, backing: Path, mountpoint: Path) -> None:
        self.backing, self.mountpoint = Path(backing), Path(mountpoint)
        self.control = str(self.backing) + ".control"
        self.process: Optional[subprocess.Popen] = None

    def mount(self, timeout: float = 10) -> PowerCutFS:
        self.mountpoint.mkdir(parents=True, exist_ok=True)
        if os.path.exists(self.control):
            os.remove(self.control)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.harness.powercut", str(self.backing), str(self.mountpoint), self.control],
            cwd=str(Path(__file__).resolve().parents[2]),
        )
        deadline = time.monotonic() + timeout
        while not (os.path.ismount(self.mountpoint) and os.path.exists(self.control)):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("the power-cut file system did not mount")
            threading.Event().wait(0.05)
        return self

    def _ask(self, line: str) -> Dict[str, Any]:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(self.control)
            s.sendall((line + "\n").encode())
            return json.loads(s.makefile("r").readline())

    def cut(self, mode: str = "all", seed: int = 0) -> Dict[str, Any]:
        """The power goes: call after every process writing here was SIGKILLed."""
        assert mode in MODES
        return self._ask(f"cut {mode} {seed}")

    def stats(self) -> Dict[str, Any]:
        return self._ask("stats")

    def unmount(self) -> None:
        if self.process is None:
            return
        subprocess.run(["fusermount3", "-u", "-z", str(self.mountpoint)], check=False)
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


if __name__ == "__main__":
    serve(*sys.argv[1:4])
