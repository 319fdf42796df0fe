"""What the plugin learns about the machine: the environment report and the Pi's throttle state."""

from __future__ import annotations

import logging
import re
import shutil
from typing import Any, Callable, Mapping, Optional

import sarge

logger = logging.getLogger("octoprint.plugins.tracking_queued.system")

# Bits of `vcgencmd get_throttled`, as Raspberry Pi documents them.
_UNDERVOLTAGE, _FREQ_CAPPED, _THROTTLED = 1 << 0, 1 << 1, 1 << 2
_PAST_UNDERVOLTAGE, _PAST_FREQ_CAPPED, _PAST_THROTTLED = 1 << 16, 1 << 17, 1 << 18
_VCGENCMD_OUTPUT = re.compile(r"throttled=(0x[0-9a-fA-F]+|\d+)")


def environment_payload(environment: Optional[Mapping[str, Any]], version: str) -> dict[str, Any]:
    """The startup/pong parameters from OctoPrint's environment detection; missing parts are left out."""
    env = environment or {}

    def pick(*path: str) -> Any:
        node: Any = env
        for key in path:
            if not isinstance(node, Mapping):
                return None
            node = node.get(key)
        return node

    payload = {
        "version": version,
        "os": pick("os", "id"),
        "platform": pick("os", "platform"),
        "bits": pick("os", "bits"),
        "python": pick("python", "version"),
        "pip": pick("python", "pip"),
        "cores": pick("hardware", "cores"),
        "freq": pick("hardware", "freq"),
        "ram": pick("hardware", "ram"),
    }
    pi = pick("plugins", "pi_support")
    if isinstance(pi, Mapping):
        payload["pi_model"] = pi.get("model")
        for key in ("octopi_version", "octopiuptodate_build"):
            if key in pi:
                payload[key] = pi[key]
    return {key: value for key, value in payload.items() if value is not None}


def throttle_from_value(value: int) -> dict[str, Any]:
    """The throttle state dict (pi_support's shape) for a get_throttled bit mask."""
    current = bool(value & (_UNDERVOLTAGE | _FREQ_CAPPED | _THROTTLED))
    past = bool(value & (_PAST_UNDERVOLTAGE | _PAST_FREQ_CAPPED | _PAST_THROTTLED))
    return {
        "raw_value": value,
        "current_undervoltage": bool(value & _UNDERVOLTAGE),
        "past_undervoltage": bool(value & _PAST_UNDERVOLTAGE),
        "current_overheat": bool(value & _FREQ_CAPPED),
        "past_overheat": bool(value & _PAST_FREQ_CAPPED),
        "current_issue": current,
        "past_issue": past,
    }


def parse_vcgencmd(output: str) -> Optional[dict[str, Any]]:
    match = _VCGENCMD_OUTPUT.search(output or "")
    if not match:
        return None
    return throttle_from_value(int(match.group(1), 0))


def read_vcgencmd(command: str = "vcgencmd", timeout: float = 5.0) -> Optional[dict[str, Any]]:
    """Runs `vcgencmd get_throttled` if that command exists; None when it does not or fails."""
    executable = shutil.which(command)
    if not executable:
        return None
    pipeline = None
    try:
        pipeline = sarge.run([executable, "get_throttled"], stdout=sarge.Capture(), async_=True)
        pipeline.wait(timeout)
        command = pipeline.commands[0]
        stdout = command.stdout.text if command.stdout else ""
        returncode = command.returncode
    except Exception as error:  # a broken or hanging firmware tool must not break tracking
        logger.debug("vcgencmd get_throttled failed: %s", error)
        if pipeline is not None:
            for command in pipeline.commands:
                try:
                    command.kill()
                except Exception:
                    pass
        return None
    if returncode != 0:
        return None
    return parse_vcgencmd(stdout)


class ThrottleSource:
    """The latest throttle state, read without blocking OctoPrint's event thread.

    With pi_support, its helper's cached state (no `run_now`: that would run vcgencmd on the
    caller's thread); else the last value of `vcgencmd` read by `refresh()` on a timer thread.
    """

    def __init__(
        self,
        pi_helper: Optional[Callable[..., Any]] = None,
        reader: Callable[[], Optional[dict[str, Any]]] = read_vcgencmd,
    ) -> None:
        self._pi_helper = pi_helper
        self._reader = reader
        self._state: Optional[dict[str, Any]] = None

    def refresh(self) -> None:
        """Reads vcgencmd (slow: call from a background thread). No-op with pi_support."""
        if self._pi_helper is None:
            self._state = self._reader()

    def update(self, state: Mapping[str, Any]) -> None:
        """From pi_support's throttle_state event."""
        if isinstance(state, Mapping):
            self._state = dict(state)

    def current(self) -> Optional[dict[str, Any]]:
        if self._pi_helper is not None:
            try:
                state = self._pi_helper()
            except Exception:
                return self._state
            return dict(state) if isinstance(state, Mapping) else self._state
        return self._state
