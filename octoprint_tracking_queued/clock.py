"""Time that a stale or jumping wall clock cannot fool.

Boards without a real-time clock boot with the wall clock fake-hwclock saved (days or weeks
old) or at 1970, and NTP steps it only once the network is back. So a record's age is never
taken from the wall clock. Instead the queue keeps an *observed clock*: seconds that the
plugin has seen pass. Within one boot it follows the monotonic clock (system-wide, so it
also spans OctoPrint restarts); time while the machine was off is not counted, which can
only make a record look younger, never drop it early.

A boot is told by the kernel's boot id. For each boot the queue remembers the last seen
offset between the wall and the monotonic clock, and whether the wall clock was confirmed
(the kernel says it is synchronised, or it was seen to step, as an NTP sync does).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import time
import uuid
from dataclasses import dataclass
from typing import Callable, Optional

logger = logging.getLogger("octoprint.plugins.tracking_queued.clock")

BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"
# A change of the wall-minus-monotonic offset larger than this is a step of the wall clock.
STEP = 2.0
_TIME_ERROR = 5  # adjtimex(2): the clock is not synchronised


def read_boot_id(path: str = BOOT_ID_FILE) -> str:
    """The kernel's id of this boot; without one (not Linux) every start counts as a new boot."""
    try:
        with open(path, encoding="ascii") as file:
            value = file.read().strip()
        if value:
            return value
    except OSError:
        pass
    return f"process-{uuid.uuid4()}"


def kernel_clock_synced() -> Optional[bool]:
    """Whether the kernel says its clock is synchronised (NTP), None when it cannot tell."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
        buffer = ctypes.create_string_buffer(1024)  # struct timex, modes = 0: read only
        state = libc.adjtimex(buffer)
    except (OSError, AttributeError):
        return None
    if state < 0:
        return None
    return state != _TIME_ERROR


@dataclass
class Boot:
    """What the queue knows of one boot (a row of `tq_boots`)."""

    key: int
    boot_id: str
    t0: float  # observed clock at m0
    m0: float  # monotonic clock when the plugin first ran in this boot
    last_mono: float  # last monotonic time seen while running
    offset: float  # wall minus monotonic, as last seen
    confirmed: bool  # the wall clock was known to be right at some point of this boot

    def observed(self, mono: float) -> float:
        return self.t0 + (mono - self.m0)

    @property
    def last_observed(self) -> float:
        return self.observed(self.last_mono)


@dataclass
class Clocks:
    """The clocks the queue reads; tests pass fakes."""

    wall: Callable[[], float] = time.time
    mono: Callable[[], float] = time.monotonic
    boot_id: Callable[[], str] = read_boot_id
    synced: Callable[[], Optional[bool]] = kernel_clock_synced


def event_time(
    boot: Optional[Boot], mono: Optional[float], created: float, current: Boot, clocks: Clocks
) -> tuple[float, bool]:
    """When a record's event happened, and whether that time is certain. To the fraction of a
    second (the farm's collector takes nanoseconds); the public server gets whole seconds.

    Same boot: now minus its monotonic age, whatever the wall clock did meanwhile.
    An earlier boot whose clock was confirmed: its monotonic time plus that boot's last offset.
    Otherwise the wall clock of its creation, which may have been wrong.
    """
    if boot is not None and mono is not None:
        if boot.key == current.key:
            return clocks.wall() - max(0.0, clocks.mono() - mono), True
        if boot.confirmed:
            return mono + boot.offset, True
    return float(created), False
