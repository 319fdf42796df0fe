"""The commands the API and the settings tab call, per destination: flush, retry the failed,
clear, a page of records, the status. A part of `Runtime`, kept apart so each stays readable."""

from __future__ import annotations

from typing import Any, Iterable, List, Optional, Tuple

from . import config, otlp
from .delivery import with_sent_params
from .status import StatusBody, status_body
from .store import COLLECTOR, TRACKING


def with_sent(records: Iterable[dict], dest: str) -> List[dict]:
    """Each record (as View.page gives it) plus `sent`: exactly what `dest` gets, the public
    request's parameters or the collector's log record."""
    if dest == COLLECTOR:
        return [{**r, "sent": otlp.log_record({**r, "time_certain": not r["time_uncertain"]})} for r in records]
    return with_sent_params(records)


class Commands:
    """Mixed into Runtime: every name used here is the runtime's."""

    def flush(self, dest: str = TRACKING) -> Optional[str]:
        """Sends now; or the reason why not (disabled, configuration error)."""
        if dest == COLLECTOR:
            return self.farm.flush()
        blocker = self._blocker()
        if blocker:  # a flush overrides the backoff and an offline verdict, never these
            return blocker[1]
        self.worker.flush()
        return None

    def retry_failed(self, dest: str = TRACKING) -> int:
        count = self.queue.requeue_failed(dest)
        self.workers[dest].flush()
        self._push_status()
        return count

    def clear(self, scope: str, dest: str = TRACKING) -> int:
        count = self.queue.clear(scope, dest=dest)
        self._push_status()
        return count

    def page(self, scope: str, offset: int, limit: int, dest: str = TRACKING, **keys: Any) -> Tuple[List[dict], int]:
        """A page of records, each with `sent` (exactly its request's parameters), and the total.
        `keys`: `after`/`before` a rowid or `last`, as View.page takes them."""
        return with_sent(self.queue.page(scope, offset, limit, dest=dest, **keys), dest), self.queue.count(scope, dest)

    def status(self) -> StatusBody:
        tracking, worker = self.queue.stats(TRACKING), self.worker.status()
        return status_body(
            tracking,
            worker,
            enabled=self._settings.enabled(),
            config_errors=self._config_errors,
            settings_errors=self._settings_errors,
            server_is_default=self._effective["server"] == config.DEFAULT_SERVER,
            bundled_enabled=self.bundled_enabled(),
            destinations={
                TRACKING: {**tracking, "enabled": self.enabled, "worker": worker},
                COLLECTOR: self.farm.status(self.queue.stats(COLLECTOR)),
            },
        )
