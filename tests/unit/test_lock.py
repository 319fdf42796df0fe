"""lock.py: one sender per queue file, between the server and the command line."""

from octoprint_tracking_queued.lock import QueueLock


def test_second_holder_is_refused_until_release(tmp_path):
    first, second = QueueLock(str(tmp_path / "q")), QueueLock(str(tmp_path / "q"))
    assert first.acquire()
    assert first.acquire()  # idempotent for the holder
    assert not second.acquire()
    assert second.is_held_elsewhere()
    assert not first.is_held_elsewhere()
    first.release()
    assert not second.is_held_elsewhere()
    assert not second.held  # probing gave the lock back
    assert second.acquire()
    second.release()


def test_context_manager_releases(tmp_path):
    with QueueLock(str(tmp_path)) as lock:
        assert lock.acquire()
    assert QueueLock(str(tmp_path)).acquire()
