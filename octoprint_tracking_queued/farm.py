"""The second destination at run time: a print farm's own OpenTelemetry collector.

Its own worker (so the public server being down never holds it, nor the other way round), its
own consent (`collector.endpoint` set in config.yaml; the wizard's decision is the public
server's only), its own blocker: the collector is on the farm's network, so OctoPrint's
internet check does not hold it.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Mapping, Optional

from . import otlp, policy
from .delivery import Outcome, Rejected, Retry
from .store import BIT, COLLECTOR, TRACKING, Writer
from .worker import Worker


class Farm:
    """The collector's worker, its sender and why it may not send now."""

    def __init__(
        self,
        queue: Writer,
        collector: otlp.Collector,
        instance_id: Callable[[], str],
        octoprint_version: str,
        plugin_version: str,
        locked: Callable[[], policy.Blocker],
        on_change: Callable[[], None],
    ) -> None:
        self._queue = queue
        self._collector = collector
        self._instance_id = instance_id
        self._versions = (octoprint_version, plugin_version)
        self._locked = locked
        self._settings: Dict[str, Any] = {"endpoint": "", "headers": {}, "resource": {}}
        self._errors: List[str] = []
        self.worker = Worker(
            queue,
            send=self._send,
            blocked=self._blocked,
            on_change=on_change,
            dest=COLLECTOR,
            batch=(otlp.BATCH_RECORDS, otlp.BATCH_BYTES),
            upkeep=False,  # the public server's worker checks the file and expires old records
        )

    def configure(self, effective: Mapping[str, Any], config_errors: List[str], tracking: bool) -> None:
        """The collector's settings, and the destinations new records are for (`tracking`: the
        public server's consent). A collector turned off takes its backlog with it, as an opt-out
        does: nothing collected for it leaves later."""
        self._settings = dict(effective["collector"])
        self._errors = policy.collector_errors(config_errors)
        if not self.wanted and self._queue.count("all", COLLECTOR):
            self._queue.clear("all", reason="collector turned off", dest=COLLECTOR)
        self._queue.set_destinations((BIT[TRACKING] if tracking else 0) | (BIT[COLLECTOR] if self.wanted else 0))
        self.worker.initial_delay = effective["retry"]["initial_delay"]
        self.worker.max_delay = effective["retry"]["max_delay"]
        self.worker.wake()

    @property
    def wanted(self) -> bool:
        """Records are made for the collector: an endpoint is set (also a bad one: the admin meant
        to set one, so its records wait for the fix rather than being lost)."""
        return bool(self._settings["endpoint"] or self._errors)

    def blocker(self) -> policy.Blocker:
        return policy.collector_blocker(self.wanted, self._errors)

    def _blocked(self) -> policy.Blocker:
        return self.blocker() or self._locked()

    def _send(self, outgoing: List[dict]) -> Outcome:
        octoprint_version, plugin_version = self._versions
        resource = otlp.resource(self._instance_id(), octoprint_version, self._settings["resource"])
        outcome = self._collector.send(
            outgoing, self._settings["endpoint"], self._settings["headers"], resource, plugin_version
        )
        if isinstance(outcome, Rejected) and outcome.reason.startswith("HTTP 413") and len(outgoing) > 1:
            # Too large for this collector: not the same request again (OTLP says no), but
            # smaller ones; a single record it refuses is a dead letter.
            records, size = self.worker.batch
            self.worker.batch = (max(1, len(outgoing) // 2), size // 2)
            return Retry(f"{outcome.reason}; batches are now at most {self.worker.batch[0]} records")
        return outcome

    def status(self, stats: Dict[str, Any]) -> Dict[str, Any]:
        """The destination's part of the status: never the endpoint's headers (a token)."""
        return {
            **stats,
            "enabled": self.wanted,
            "worker": self.worker.status(),
            "config_errors": list(self._errors),
            "partial_rejected": stats.get("partial_rejected", 0),
        }

    def flush(self) -> Optional[str]:
        blocker = self.blocker()
        if blocker:
            return blocker[1]
        self.worker.flush()
        return None

    def close(self) -> None:
        self._collector.close()
