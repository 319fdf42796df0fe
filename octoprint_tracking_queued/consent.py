"""The user's decision and the instance's identity: whether tracking is on, the instance id (made
on first activation, or adopted from the bundled plugin), and turning the bundled plugin off so
an instance is never counted twice."""

from __future__ import annotations

import logging
import threading
import uuid
from typing import TYPE_CHECKING, Any, Callable, Mapping, Optional

from . import config

if TYPE_CHECKING:
    from typing import Protocol  # novermin (type checkers only)
else:
    # typing.Protocol is 3.8+ (OctoPi 0.18 has 3.7); these classes only describe what is handed over.
    Protocol = object

logger = logging.getLogger("octoprint.plugins.tracking_queued")


class SettingsAccess(Protocol):
    """The stored settings the runtime reads or writes, beyond the resolved ones."""

    def merged(self) -> Mapping[str, Any]: ...  # plugins.tracking_queued, defaults filled in
    def enabled(self) -> Optional[bool]: ...  # the user's decision, None until made
    def unique_id(self) -> Optional[str]: ...
    def set_unique_id(self, value: str) -> None: ...  # stores and saves
    def bundled_unique_id(self) -> Any: ...  # plugins.tracking.unique_id
    def bundled_enabled(self) -> bool: ...  # plugins.tracking.enabled
    def disable_bundled(self) -> None: ...  # plugins.tracking.enabled = false, saved
    def save_durably(self) -> None: ...  # config.yaml written now and fsynced, with its folder


class Consent:
    def __init__(self, settings: SettingsAccess, bundled_loaded: Callable[[], bool]) -> None:
        self.settings = settings
        self._bundled_loaded = bundled_loaded
        # An opt-out and a record being stored never interleave: both run under this.
        self.lock = threading.Lock()
        self.enabled = False  # the wizard's decision: the public tracking server
        self.collector = False  # a collector is configured in config.yaml (the runtime sets it)
        self.unique_id = ""

    @property
    def recording(self) -> bool:
        """Records are made when at least one destination is on."""
        return self.enabled or self.collector

    def reload(self) -> None:
        self.enabled = self.settings.enabled() is True
        # Read here, not per record: one OctoPrint settings lookup (~60 µs) costs a fifth of
        # the record's commit, and every record needs the id twice.
        self.unique_id = self.settings.unique_id() or ""

    def ensure_unique_id(self) -> None:
        """Generated on first activation, so an instance that never opts in has no id."""
        if self.settings.unique_id():
            return
        # Keep the instance's identity: adopt the bundled plugin's id when it has one.
        bundled = self.settings.bundled_unique_id()
        try:
            unique_id = config.validate_unique_id(bundled)
        except config.SettingError as error:
            unique_id = str(uuid.uuid4())
            if bundled:
                logger.info("Not adopting the bundled plugin's instance id (%s); generated a new one", error.reason)
        self.settings.set_unique_id(unique_id)
        self.unique_id = unique_id

    def turn_off_bundled(self) -> None:
        """Both plugins on would count this instance twice."""
        if self.settings.bundled_enabled():
            self.settings.disable_bundled()
            logger.info("Turned the bundled Anonymous Usage Tracking plugin off")

    def bundled_enabled(self) -> bool:
        return bool(self._bundled_loaded() and self.settings.bundled_enabled())
