"""Issue 18, on a real `octoprint serve` started under the usual umask 0022: the plugin's data
folder is 0700 and every file in it 0600 (the queue, its WAL and shm, the lock), and the files
an earlier version left readable are tightened at the next start."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from tests.harness.api import PLUGINS, active, install_plugins, wait_status

pytestmark = pytest.mark.integration

QUEUE_FILES = {"queue.db", "queue.db-wal", "queue.db-shm", "queue.lock"}


def modes(folder: Path) -> dict[str, str]:
    found = {"": os.lstat(folder).st_mode, **{p.name: os.lstat(p).st_mode for p in folder.iterdir()}}
    return {name: oct(stat.S_IMODE(mode)) for name, mode in found.items()}


def owner_only(folder: Path) -> dict[str, str]:
    return {"": "0o700", **{p.name: "0o600" for p in folder.iterdir()}}


def test_the_data_folder_is_owner_only_after_a_start_under_umask_0022(octoprint_factory, receiver):
    umask = os.umask(0o022)  # the server inherits it: new files would be 0644, folders 0755
    try:
        server = octoprint_factory(plugin_settings=PLUGINS)
        folder = server.data_folder
        receiver.stop()  # records stay queued: the WAL holds them
        install_plugins(server, ["a", "b"])
        wait_status(server, lambda s: active(s) >= 2)
        found = modes(folder)
        print(f"FIGURE issue 18 modes after a start under umask 0022: {found}")
        assert QUEUE_FILES <= set(found)
        assert found == owner_only(folder)

        # As an earlier version left them, with a file a recovery moved aside.
        server.stop()
        shutil.copy(folder / "queue.db", folder / "queue.db.unusable-20260101-000000")
        os.chmod(folder, 0o755)
        for path in folder.iterdir():
            os.chmod(path, 0o644)
        server.start()
        wait_status(server, lambda s: active(s) >= 2)
        found = modes(folder)
        print(f"FIGURE issue 18 modes after a start over 0755/0644 files: {found}")
        assert "queue.db.unusable-20260101-000000" in found and QUEUE_FILES <= set(found)
        assert found == owner_only(folder)
    finally:
        os.umask(umask)
