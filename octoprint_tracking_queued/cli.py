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

from . import config, files
from .cli_flush import flush_collector, flush_tracking
from .commands import with_sent
from .lock import QueueLock
from .store import COLLECTOR, TRACKING, QueueMissing, View, Writer, open_queue

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

    # Every command is about the public server's records unless told otherwise.
    for_collector = click.option(
        "--collector", is_flag=True, help="The collector's records (collector.endpoint) instead."
    )

    @click.command("list")
    @click.option("--failed", is_flag=True, help="List the failed records instead of the pending ones.")
    @click.option("--limit", type=click.IntRange(1, 10000), default=20, show_default=True, help="How many records.")
    @click.option("--offset", type=click.IntRange(0), default=0, show_default=True, help="How many to skip.")
    @for_collector
    def list_command(failed: bool, limit: int, offset: int, collector: bool) -> None:
        """List queued records, oldest first, with exactly what is sent."""
        scope, dest = "failed" if failed else "pending", COLLECTOR if collector else TRACKING
        with _reading(store()) as reader:
            if reader is None:
                click.echo(gettext("No queue database yet: nothing has been tracked."))
                return
            total = reader.count(scope, dest)
            records = with_sent(reader.page(scope, offset, limit, dest=dest), dest)
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
    @for_collector
    def export_command(file: str, collector: bool) -> None:
        """Write every queued record (pending and failed) as JSON lines to FILE ('-' for stdout)."""
        count, dest = 0, COLLECTOR if collector else TRACKING
        # A file of every record is as private as the queue: created 0600 whatever the umask.
        with contextlib.nullcontext(click.get_text_stream("stdout")) if file == "-" else _private(file) as out:
            with _reading(store()) as reader:
                if reader is not None:
                    for record in reader.iter_records("all", dest=dest):
                        out.write(json.dumps(with_sent([record], dest)[0], sort_keys=True) + "\n")
                        count += 1
        if file != "-":
            click.echo(gettext("Exported %(count)d records to %(file)s.", count=count, file=file))

    @click.command("flush")
    @for_collector
    def flush_command(collector: bool) -> None:
        """Send the queue now (only while OctoPrint is stopped)."""
        current = store()
        with current.owned_queue() as queue:
            flush = flush_collector if collector else flush_tracking
            complete = flush(queue, current.effective, current.config_errors)
        if not complete:
            raise SystemExit(1)

    @click.command("clear")
    @click.option("--failed", "scope", flag_value="failed", help="Remove the failed records.")
    @click.option("--all", "scope", flag_value="all", help="Remove pending and failed records.")
    @click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
    @for_collector
    def clear_command(scope: Optional[str], yes: bool, collector: bool) -> None:
        """Remove the pending records (or --failed, or --all) without sending them (only while OctoPrint is stopped).
        A record another destination still needs stays for it."""
        scope, dest = scope or "pending", COLLECTOR if collector else TRACKING
        current = store()
        with current.owned_queue() as queue:
            count = queue.count(scope, dest)
            if not count:
                click.echo(gettext("Nothing to clear: there are no %(scope)s records.", scope=_scope_text(scope)))
                return
            if not yes:
                click.confirm(
                    gettext("Remove %(count)d %(scope)s records for good?", count=count, scope=_scope_text(scope)),
                    abort=True,
                )
            removed = queue.clear(scope, dest=dest)
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
