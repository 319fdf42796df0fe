"""`octoprint plugins tracking_queued:…`: the queue for headless admins.

Runs in its own process with no plugin instance: settings come from the CLI group.
Reading (`status`, `list`, `export`) works beside a running server through a read-only
connection. Sending and deleting (`flush`, `clear`) need the queue lock, which a running
server holds, so there is never a second sender on one queue.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from dataclasses import dataclass
from typing import IO, Any, Iterator, Optional

import click
from flask_babel import gettext
from octoprint.util.version import get_octoprint_version_string

from . import config, files, otlp, policy
from .delivery import Delivered, Delivery, Rejected, with_sent_params
from .lock import QueueLock
from .store import COLLECTOR, QueueMissing, View, Writer, open_queue
from .worker import send_batch, send_next

IDENTIFIER = "tracking_queued"


def local_time(timestamp: Optional[float]) -> str:
    if not timestamp:
        return "-"
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(timestamp))


def age(seconds: float) -> str:
    """A rough human age: 45 s, 12 min, 3 h 5 min, 2 d 4 h."""
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, hours, days = seconds // 60, seconds // 3600, seconds // 86400
    if hours < 1:
        return f"{minutes} min"
    if days < 1:
        return f"{hours} h {minutes % 60} min"
    return f"{days} d {hours % 24} h"


@dataclass
class Store:
    """Where the queue lives and the settings that apply to it, read from config.yaml."""

    folder: str
    effective: dict[str, Any]
    config_errors: list[str]

    @classmethod
    def from_settings(cls, settings: Any) -> Store:
        raw = settings.get(["plugins", IDENTIFIER], merged=True) or {}
        effective, errors = config.resolve(raw if isinstance(raw, dict) else {})
        effective["enabled"] = raw.get("enabled") if isinstance(raw, dict) else None
        return cls(os.path.join(settings.getBaseFolder("data"), IDENTIFIER), effective, errors)

    @property
    def lock(self) -> QueueLock:
        return QueueLock(self.folder)

    def server_running(self) -> bool:
        return self.lock.is_held_elsewhere()

    def reader(self) -> View:
        queue_cfg = self.effective["queue"]
        return open_queue(self.folder, queue_cfg["max_records"], queue_cfg["max_age_days"], read_only=True)

    @contextlib.contextmanager
    def owned_queue(self) -> Iterator[Writer]:
        """The queue for changing it, with the lock held; refuses while the server runs."""
        lock = self.lock
        if not lock.acquire():
            raise click.ClickException(
                gettext(
                    "OctoPrint is running and owns the tracking queue, so this command does nothing. "
                    "Use Settings > Anonymous Usage Tracking (Queued) in the web interface, or the API "
                    "(POST /api/plugin/tracking_queued), or stop OctoPrint first."
                )
            )
        try:
            queue_cfg = self.effective["queue"]
            queue = open_queue(self.folder, queue_cfg["max_records"], queue_cfg["max_age_days"])
            try:
                if queue.recovered:
                    click.echo(queue.recovered, err=True)
                yield queue
            finally:
                queue.close()
        finally:
            lock.release()


@contextlib.contextmanager
def _reading(store: Store) -> Iterator[Optional[View]]:
    """A read-only queue, or None when there is none yet; unreadable files end the command."""
    try:
        reader = store.reader()
    except QueueMissing:
        yield None
        return
    try:
        yield reader
    except sqlite3.Error as error:
        raise click.ClickException(
            gettext("The queue database cannot be read (%(error)s).", error=str(error))
        ) from error
    finally:
        reader.close()


def _print_status(store: Store, stats: Optional[dict]) -> None:
    running = store.server_running()
    enabled = store.effective["enabled"]
    click.echo(gettext("Queue folder: %(folder)s", folder=store.folder))
    click.echo(
        gettext("OctoPrint server: running (it sends the queue)")
        if running
        else gettext("OctoPrint server: not running")
    )
    click.echo(
        gettext("Tracking: enabled")
        if enabled is True
        else gettext("Tracking: not decided yet")
        if enabled is None
        else gettext("Tracking: disabled")
    )
    for error in store.config_errors:
        click.echo(gettext("Configuration error, value not used: %(error)s", error=error))
    if stats is None:
        click.echo(gettext("No queue database yet: nothing has been tracked."))
        return
    click.echo(
        gettext(
            "Pending: %(pending)d, in flight: %(in_flight)d, failed: %(failed)d, delivered since install: %(delivered)d",
            **stats,
        )
    )
    click.echo(
        gettext(
            "Dropped by caps: %(cap)d (more than %(max_records)d records), %(aged)d (older than %(max_age_days)d days); "
            "cleared: %(cleared)d; could not be stored: %(store_failed)d",
            cap=stats["dropped_cap"],
            aged=stats["dropped_age"],
            max_records=stats["max_records"],
            max_age_days=stats["max_age_days"],
            cleared=stats["cleared"],
            store_failed=stats["store_failed"],
        )
    )
    if stats["oldest_pending"]:
        click.echo(
            gettext(
                "Oldest pending event: %(when)s (%(age)s ago)",
                when=local_time(stats["oldest_pending"]),
                age=age(time.time() - stats["oldest_pending"]),
            )
        )
    click.echo(gettext("Database size: %(bytes)d bytes", bytes=stats["disk_bytes"]))


def _print_collector(store: Store, stats: Optional[dict]) -> None:
    """The farm destination's line: its own counts (its headers are a secret: never shown)."""
    endpoint = store.effective["collector"]["endpoint"]
    if not endpoint:
        click.echo(gettext("Collector: not configured"))
        return
    click.echo(gettext("Collector: %(endpoint)s/v1/logs", endpoint=endpoint))
    if stats is not None:
        click.echo(
            gettext(
                "Collector pending: %(pending)d, failed: %(failed)d, delivered since install: %(delivered)d, "
                "dropped by the collector (partialSuccess): %(partial_rejected)d",
                **stats,
            )
        )


def _print_record(record: dict) -> None:
    # When it happened, as it is sent (event_time), not the wall clock it was queued by.
    when = local_time(record.get("event_time") or record.get("created"))
    if record.get("time_uncertain"):
        when += " (" + gettext("time uncertain") + ")"
    # gettext outside the f-strings: pybabel before Python 3.12 does not look inside them.
    line = "#%s  %s  %s  %s: %s" % (
        record["rowid"],
        when,
        record.get("event") or "?",
        gettext("attempts"),
        record.get("attempts") or 0,
    )
    if record.get("last_error"):
        line += "  %s: %s" % (gettext("last error"), record["last_error"])
    click.echo(line)
    sent = record.get("sent")
    click.echo("    " + (json.dumps(sent, sort_keys=True) if sent is not None else gettext("(cannot be decoded)")))


def _flush(store: Store, queue: Writer) -> bool:
    """Sends every pending record, oldest first, printing progress; False if some stay queued."""
    blocker = policy.send_blocker(store.effective["enabled"], store.effective, store.config_errors)
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
    server, unique_id = store.effective["server"], store.effective["unique_id"] or ""
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
    remaining = queue.count("pending")
    click.echo(
        gettext(
            "Delivered %(delivered)d, refused %(rejected)d, still pending %(remaining)d.",
            delivered=delivered,
            rejected=rejected,
            remaining=remaining,
        )
    )
    if remaining:
        click.echo(gettext("The tracking server did not take every record; try again later."), err=True)
    return remaining == 0


def _flush_collector(store: Store, queue: Writer) -> bool:
    """Sends the collector's pending records in batches, as its worker does; False if some stay."""
    settings, errors = store.effective["collector"], policy.collector_errors(store.config_errors)
    blocker = policy.collector_blocker(bool(settings["endpoint"] or errors), errors)
    if blocker:
        raise click.ClickException(gettext("Nothing was sent: %(reason)s", reason=blocker[1]))
    queue.expire()
    total, counted = queue.count("pending", COLLECTOR), {Delivered: 0, Rejected: 0}
    version = get_octoprint_version_string()
    resource = otlp.resource(store.effective["unique_id"] or "", version, settings["resource"])
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
    remaining = queue.count("pending", COLLECTOR)
    click.echo(
        gettext(
            "Delivered %(delivered)d, refused %(rejected)d, still pending %(remaining)d.",
            delivered=counted[Delivered],
            rejected=counted[Rejected],
            remaining=remaining,
        )
    )
    return remaining == 0


def commands(cli_group: Any, pass_octoprint_ctx: Any, *args: Any, **kwargs: Any) -> list[click.Command]:
    """The `octoprint.cli.commands` hook."""

    def store() -> Store:
        return Store.from_settings(cli_group.settings)

    @click.command("status")
    def status_command() -> None:
        """Show the tracking queue's counts and state."""
        current = store()
        with _reading(current) as reader:
            _print_status(current, reader.stats() if reader else None)
            _print_collector(current, reader.stats(COLLECTOR) if reader else None)

    @click.command("list")
    @click.option("--failed", is_flag=True, help="List the failed records instead of the pending ones.")
    @click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True, help="How many records.")
    @click.option("--offset", type=click.IntRange(0), default=0, show_default=True, help="How many to skip.")
    def list_command(failed: bool, limit: int, offset: int) -> None:
        """List queued records, oldest first, with the parameters that are sent."""
        scope = "failed" if failed else "pending"
        with _reading(store()) as reader:
            if reader is None:
                click.echo(gettext("No queue database yet: nothing has been tracked."))
                return
            total = reader.count(scope)
            records = with_sent_params(reader.page(scope, offset, limit))
        for record in records:
            _print_record(record)
        click.echo(
            gettext(
                "%(shown)d of %(total)d %(scope)s records shown.",
                shown=len(records),
                total=total,
                scope=_scope_text(scope),
            )
        )

    @click.command("export")
    @click.argument("file", type=click.Path(dir_okay=False, allow_dash=True))
    def export_command(file: str) -> None:
        """Write every queued record (pending and failed) as JSON lines to FILE ('-' for stdout)."""
        count = 0
        # A file of every record is as private as the queue: created 0600 whatever the umask.
        with contextlib.nullcontext(click.get_text_stream("stdout")) if file == "-" else _private(file) as out:
            with _reading(store()) as reader:
                if reader is not None:
                    for record in with_sent_params(reader.iter_records("all")):
                        out.write(json.dumps(record, sort_keys=True) + "\n")
                        count += 1
        if file != "-":
            click.echo(gettext("Exported %(count)d records to %(file)s.", count=count, file=file))

    @click.command("flush")
    @click.option("--collector", is_flag=True, help="Send to the collector (collector.endpoint) instead.")
    def flush_command(collector: bool) -> None:
        """Send the queue now (only while OctoPrint is stopped)."""
        current = store()
        with current.owned_queue() as queue:
            complete = (_flush_collector if collector else _flush)(current, queue)
        if not complete:
            raise SystemExit(1)

    @click.command("clear")
    @click.option("--failed", "scope", flag_value="failed", help="Remove the failed records.")
    @click.option("--all", "scope", flag_value="all", help="Remove pending and failed records.")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    def clear_command(scope: Optional[str], yes: bool) -> None:
        """Remove the pending records (or --failed, or --all) without sending them (only while OctoPrint is stopped)."""
        scope = scope or "pending"
        current = store()
        with current.owned_queue() as queue:
            count = queue.count(scope)
            if not count:
                click.echo(gettext("Nothing to clear: there are no %(scope)s records.", scope=_scope_text(scope)))
                return
            if not yes:
                click.confirm(
                    gettext("Remove %(count)d %(scope)s records for good?", count=count, scope=_scope_text(scope)),
                    abort=True,
                )
            removed = queue.clear(scope)
        click.echo(gettext("Removed %(count)d %(scope)s records.", count=removed, scope=_scope_text(scope)))

    return [status_command, list_command, export_command, flush_command, clear_command]


def _private(path: str) -> IO[str]:
    try:
        return files.open_private(path)
    except OSError as error:
        # click's own message, as click.File would have said it
        raise click.FileError(path, hint=error.strerror or str(error)) from error


def _scope_text(scope: str) -> str:
    return {"pending": gettext("pending"), "failed": gettext("failed"), "all": gettext("queued")}[scope]
