"""The queue of tracking records on disk: one question per module.

- `file`: persist-queue's insides, the connections and their pragmas, moving a bad file aside;
- `schema`: the tables, their migrations and the named SQL;
- `opener`: the one way to open a queue (check, migrate, register the boot, recover);
- `ledger`: the kept counts, changed by typed deltas in the transactions that change the rows;
- `boots`: the boots seen and the observed clock that ages records;
- `view`: the read side (stats, pages, counts) for the API, the command line and the tab;
- `writer`: the write side, owned by the runtime: put, expire, next/ack/retry/reject per
  destination, clear, requeue.

Every record carries the destinations that still need it (`need`) and those that refused it
(`dead`); it leaves the file when none needs it any more.
"""

from __future__ import annotations

from typing import Optional, Union

from ..catalogue import traits as catalogue_traits
from ..clock import Clocks
from .boots import Boots
from .file import DB_FILE, QueueFile, QueueMissing, QueueUnusable, decode
from .opener import Traits, open_file
from .schema import BIT, COLLECTOR, DESTINATIONS, TRACKING
from .view import FAILED, IN_FLIGHT, PENDING, SCOPES, View
from .writer import Entry, Writer

__all__ = [
    "BIT",
    "COLLECTOR",
    "DB_FILE",
    "DESTINATIONS",
    "FAILED",
    "IN_FLIGHT",
    "PENDING",
    "SCOPES",
    "TRACKING",
    "Entry",
    "QueueMissing",
    "QueueUnusable",
    "View",
    "Writer",
    "decode",
    "open_queue",
]


def open_queue(
    folder: str,
    max_records: int = 10000,
    max_age_days: int = 30,
    clocks: Optional[Clocks] = None,
    read_only: bool = False,
    traits: Traits = catalogue_traits,
) -> Union[Writer, View]:
    """The queue in `folder`: its writer for the owner, a view for `read_only` (a look at a
    queue another process owns: no recovery, no migration, no writes)."""
    boots = Boots(clocks or Clocks())
    if read_only:
        qf = QueueFile.read_only(folder)
        boots.look_up(qf.getter)
        return View(qf, boots, max_records, max_age_days, read_only=True)
    qf, recovered = open_file(folder, boots, traits)
    writer = Writer(traits, qf, boots, max_records, max_age_days)
    writer.recovered = recovered
    return writer
