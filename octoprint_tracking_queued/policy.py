"""Whether records may be sent at all: one rule for the server's worker and the command line."""

from __future__ import annotations

import os
from typing import Any, List, Mapping, Optional, Tuple

from flask_babel import gettext

from . import config
from .vocabulary import CONFIG_ERROR, DISABLED

DISABLE_VARIABLES = ("OCTOPRINT_DISABLE_TRACKING", "OCTOPRINT_TRACKING_DISABLED")

Blocker = Optional[Tuple[str, str]]  # (state, reason in words) or None; evaluated: no tuple[...] before 3.9
# A configuration error about the collector blocks the collector only.
COLLECTOR_PREFIX = "plugins.tracking_queued.collector."


def collector_errors(errors: List[str]) -> List[str]:
    return [error for error in errors if error.startswith(COLLECTOR_PREFIX)]


def send_blocker(
    enabled: Any,
    effective: Mapping[str, Any],
    config_errors: list[str],
    environ: Mapping[str, str] = os.environ,
) -> Blocker:
    """Why nothing may be sent now (the user's choice, the environment, bad config), or None."""
    if enabled is not True:
        return DISABLED, gettext("Anonymous usage tracking is disabled in the settings.")
    # Before the CI rule: a bad server in config.yaml falls back to the default one.
    blocker = _environment_or_config(config_errors, environ)
    if blocker:
        return blocker
    if environ.get("CI") and effective["server"] == config.DEFAULT_SERVER:
        return DISABLED, gettext("Nothing is sent to the public tracking server on CI.")
    return None


def collector_blocker(wanted: bool, config_errors: list[str], environ: Mapping[str, str] = os.environ) -> Blocker:
    """Why nothing may go to the farm's collector now, or None. Its consent is its endpoint in
    config.yaml; the wizard's decision is the public server's alone. CI does not stop it (it is
    never the public server)."""
    if not wanted:
        return DISABLED, gettext("No collector is configured (collector.endpoint in config.yaml).")
    return _environment_or_config(config_errors, environ)


def _environment_or_config(config_errors: List[str], environ: Mapping[str, str]) -> Blocker:
    """What stops every destination alike: a disabling environment variable, then bad config."""
    for variable in DISABLE_VARIABLES:
        if environ.get(variable):
            return DISABLED, gettext("Sending is disabled by the environment variable %(name)s.", name=variable)
    if config_errors:
        return CONFIG_ERROR, "; ".join(config_errors)
    return None
