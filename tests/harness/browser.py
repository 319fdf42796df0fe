"""Launch options that keep Chromium (Playwright) on loopback.

Debian's Chromium, even headless under Playwright, calls Google on its own:
component/extension updates (update.googleapis.com), account checks
(accounts.google.com), autofill (content-autofill.googleapis.com) and network
time (clients2.google.com). The switches below point those services at a closed
loopback port or turn them off; the proxy sends anything left to the outbound
guard, where the integration fixtures see it and fail the test.
"""

from __future__ import annotations

import os
from typing import Any, Dict

from tools.basedir import OFFLINE_URL
from tools.guard import OutboundGuard

DEFAULT_CHROMIUM = "/usr/bin/chromium"

_OFFLINE_BASE = OFFLINE_URL.rsplit("/", 1)[0] + "/"

CHROMIUM_OFFLINE_ARGS = [
    "--no-sandbox",  # tests run as root
    "--disable-gpu",
    f"--component-updater=url-source={_OFFLINE_BASE}",
    f"--gaia-url={_OFFLINE_BASE}",
    f"--google-apis-url={_OFFLINE_BASE}",
    f"--lso-url={_OFFLINE_BASE}",
    "--disable-features=AutofillServerCommunication,OptimizationHints,Translate,MediaRouter,NetworkTimeServiceQuerying",
    "--disable-background-networking",
    "--disable-sync",
    "--no-pings",
    "--no-first-run",
]


def chromium_executable() -> str:
    """Debian's Chromium, or $TQ_CHROMIUM (set by ./dev test)."""
    return os.environ.get("TQ_CHROMIUM") or DEFAULT_CHROMIUM


def chromium_launch_options(guard: OutboundGuard) -> Dict[str, Any]:
    """Keyword arguments for ``playwright.chromium.launch(**options)``."""
    return {
        "executable_path": chromium_executable(),
        "args": list(CHROMIUM_OFFLINE_ARGS),
        # Playwright proxies loopback too unless told otherwise.
        "proxy": {"server": guard.url, "bypass": "127.0.0.1,localhost"},
    }
