"""Writes a queue file of schema 2 with the queue code of that release (commit 9dd1ad7), the
fixture tests/unit/test_store_migration.py upgrades:

    git show 9dd1ad7:octoprint_tracking_queued/queue.py > /tmp/queue_v2.py
    python tests/data/make_queue_v2.py /tmp/out /tmp/queue_v2.py && cp /tmp/out/queue.db tests/data/queue-v2.db
"""

import importlib.util
import os
import shutil
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
import octoprint_tracking_queued  # noqa: F401 (the old module imports .clock from it)


def main(out: str, code: str) -> None:
    spec = importlib.util.spec_from_file_location("octoprint_tracking_queued.queue_v2", code)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    shutil.rmtree(out, ignore_errors=True)
    os.makedirs(out)
    q = module.TrackingQueue(out, max_records=6)

    def record(event, id_, created, **params):
        return {"event": event, "params": params, "id": id_, "created": created, "attempts": 0, "last_error": None}

    for n in range(6):
        q.put(record("startup", f"r{n}", 1700000000 + n, n=n))
    q.put(record("webui_load", "w", 1700000010, browser_name="x"))  # evicted at the cap
    q.put(record("ping", "p", 1700000011))  # evicted at the cap
    q.ack(q.next())  # r0 delivered
    q.reject(q.next(), "HTTP 400")  # r1 failed
    q.retry_later(q.next(), "HTTP 503")  # r2 tried once
    print(q.stats())
    q.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
