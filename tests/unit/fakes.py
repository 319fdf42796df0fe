"""Fakes shared by unit tests (not a test module: no tests here)."""

from __future__ import annotations

from typing import Optional

from octoprint_tracking_queued.clock import Clocks


class FakeClocks(Clocks):
    """Wall and monotonic clocks, boot id and kernel sync state that a test sets by hand.

    `reboot()` starts a new boot: the monotonic clock starts again near zero and the wall
    clock is whatever the board restored (fake-hwclock, 1970, ...).
    """

    def __init__(self, wall: float = 1_700_000_000.0, mono: float = 1000.0, boot: str = "boot-1") -> None:
        self.now_wall, self.now_mono, self.boot = wall, mono, boot
        self.kernel_synced: Optional[bool] = False
        super().__init__(
            wall=lambda: self.now_wall,
            mono=lambda: self.now_mono,
            boot_id=lambda: self.boot,
            synced=lambda: self.kernel_synced,
        )

    def advance(self, seconds: float) -> None:
        """Real time passes: both clocks move."""
        self.now_wall += seconds
        self.now_mono += seconds

    def jump_wall(self, seconds: float) -> None:
        """The wall clock is stepped (an NTP sync, a user's `date`): the monotonic clock is not."""
        self.now_wall += seconds

    def reboot(self, boot: str, wall: float, mono: float = 5.0, synced: Optional[bool] = False) -> None:
        self.boot, self.now_wall, self.now_mono, self.kernel_synced = boot, wall, mono, synced
