"""`octoprint plugins tracking_queued:flush`: sends the queue with progress while OctoPrint is
stopped, one destination at a time, through the same steps as its worker (send_next, send_batch)."""

from __future__ import annotations

from typing import Any, Dict, List

import click
from flask_babel import gettext
from octoprint.util.version import get_octoprint_version_string

from . import otlp, policy
from .delivery import Delivered, Delivery, Rejected
from .store import COLLECTOR, Writer
from .worker import send_batch, send_next


def flush_tracking(queue: Writer, effective: Dict[str, Any], config_errors: List[str]) -> bool:
    """Sends every pending record, oldest first, printing progress; False if some stay queued."""
    blocker = policy.send_blocker(effective["enabled"], effective, config_errors)
    if blocker:
        raise click.ClickException(gettext("Nothing was sent: %(reason)s", reason=blocker[1]))
    expired = queue.expire()
    if expired:
        click.echo(
            gettext("Dropped %(count)d records older than %(days)d days.", count=expired, days=queue.max_age_days)
        )
    total = queue.count("pending")
    if not total:
        click.echo(gettext("Nothing to send: the queue is empty."))
        return True
    click.echo(gettext("Sending %(total)d records...", total=total))
    delivery = Delivery(user_agent=f"OctoPrint/{get_octoprint_version_string()}")
    server, unique_id = effective["server"], effective["unique_id"] or ""
    delivered = rejected = 0
    try:
        for number in range(1, total + 1):
            sent = send_next(queue, lambda record: delivery.send(record, server, unique_id))
            if sent is None:
                break
            entry, outcome = sent
            prefix = f"[{number}/{total}] {entry.record.get('event')}: "
            if isinstance(outcome, Delivered):
                delivered += 1
                click.echo(prefix + gettext("delivered"))
            elif isinstance(outcome, Rejected):
                rejected += 1
                click.echo(
                    prefix + gettext("refused by the server (%(reason)s), moved to failed", reason=outcome.reason)
                )
            else:
                click.echo(prefix + gettext("not delivered (%(reason)s)", reason=outcome.reason))
                break
    finally:
        delivery.close()
    remaining = _summary(delivered, rejected, queue.count("pending"))
    if remaining:
        click.echo(gettext("The tracking server did not take every record; try again later."), err=True)
    return remaining == 0


def flush_collector(queue: Writer, effective: Dict[str, Any], config_errors: List[str]) -> bool:
    """Sends the collector's pending records in batches, as its worker does; False if some stay."""
    settings, errors = effective["collector"], policy.collector_errors(config_errors)
    blocker = policy.collector_blocker(bool(settings["endpoint"] or errors), errors)
    if blocker:
        raise click.ClickException(gettext("Nothing was sent: %(reason)s", reason=blocker[1]))
    queue.expire()
    total, counted = queue.count("pending", COLLECTOR), {Delivered: 0, Rejected: 0}
    version = get_octoprint_version_string()
    resource = otlp.resource(effective["unique_id"] or "", version, settings["resource"])
    sender = otlp.Collector(user_agent=f"OctoPrint/{version}")

    def send(records: list) -> Any:
        return sender.send(records, settings["endpoint"], settings["headers"], resource)

    click.echo(gettext("Sending %(total)d records...", total=total))
    try:
        while True:
            sent = send_batch(queue, send, COLLECTOR, otlp.BATCH_RECORDS, otlp.BATCH_BYTES)
            if sent is None:
                break
            entries, outcome = sent
            kind = type(outcome)
            counted[kind] = counted.get(kind, 0) + len(entries)
            text = gettext("delivered") if kind is Delivered else outcome.reason
            click.echo(f"[{sum(counted.values())}/{total}] {text}")
            if kind not in (Delivered, Rejected):
                break
    finally:
        sender.close()
    return _summary(counted[Delivered], counted[Rejected], queue.count("pending", COLLECTOR)) == 0


def _summary(delivered: int, rejected: int, remaining: int) -> int:
    """Prints what a flush did; `remaining`, for the caller's verdict."""
    click.echo(
        gettext(
            "Delivered %(delivered)d, refused %(rejected)d, still pending %(remaining)d.",
            delivered=delivered,
            rejected=rejected,
            remaining=remaining,
        )
    )
    return remaining
