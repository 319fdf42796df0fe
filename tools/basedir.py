"""Writes OctoPrint base folders (config.yaml, users.yaml, logging.yaml).

One module for both the integration tests and ``./dev run``, so the demo and the
tests keep OctoPrint off the internet the same way.

``python -m tools.basedir demo ./demo-data --server URL`` writes the demo folder
(only when it has no config.yaml yet, so a user's own changes survive).
"""

from __future__ import annotations

import argparse
import copy
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, Iterable, Mapping, Optional

import yaml

PLUGIN_ID = "tracking_queued"

ADMIN_USER = "admin"
ADMIN_PASSWORD = "admin-test-password"
ADMIN_API_KEY = "TqAdminKey-9a1c3e5f7b2d4f6a8c0e1b3d5f7a9c1e"
USER_NAME = "user"
USER_PASSWORD = "user-test-password"
USER_API_KEY = "TqUserKey-1b3d5f7a9c0e2a4c6e8a0c2e4a6c8e0a"

# A loopback address where nothing listens (port 9, "discard"): requests to it are
# refused at once instead of leaving the machine. Used for every URL setting that
# OctoPrint would otherwise fetch from the internet.
OFFLINE_URL = "http://127.0.0.1:9/offline-by-test-config"

# Wizards OctoPrint 1.11 bundles (including the separately packaged
# file_check), plus ours. A seen version higher than any real wizard version
# means "seen" for every version (see WizardPlugin.is_wizard_ignored).
BUNDLED_WIZARDS = (
    "backup",
    "classicwebcam",
    "corewizard",
    "file_check",
    "softwareupdate",
    "tracking",
)
SEEN_WIZARD_VERSION = 9999

# Plugins disabled outright because configuration cannot keep them off the
# network: discovery announces on the LAN (zeroconf/SSDP multicast), and
# softwareupdate queries every installed plugin's update check (GitHub, PyPI)
# whenever OctoPrint believes it is online, with no switch to stop that.
NETWORKING_PLUGINS = ("discovery", "softwareupdate")

# Ten years, in minutes: the seeded plugin repository cache never goes stale.
CACHE_TTL_MINUTES = 10 * 365 * 24 * 60


def deep_merge(base: Mapping[str, Any], override: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """Recursively merge ``override`` into a copy of ``base`` (lists are replaced)."""
    result = copy.deepcopy(dict(base))
    for key, value in (override or {}).items():
        if isinstance(value, Mapping) and isinstance(result.get(key), Mapping):
            result[key] = deep_merge(result[key], value)
        else:
            result[key] = copy.deepcopy(value)
    return result


def offline_config() -> Dict[str, Any]:
    """config.yaml keys that stop every OctoPrint 1.11 call to the internet.

    Found by reading OctoPrint's startup paths for requests/sockets:
    connectivity check, plugin blacklist, plugin repository and notices
    (pluginmanager), announcements feeds, software update checks and overlays,
    health checks (PyPI versions, Python EOL), bundled tracking, error tracking
    (Sentry) and LAN discovery.
    """
    return {
        "server": {
            # The check itself opens a socket to 1.1.1.1:53 and resolves a name.
            # With it off OctoPrint reports "online", which our plugin needs.
            "onlineCheck": {"enabled": False},
            "pluginBlacklist": {"enabled": False, "url": OFFLINE_URL},
            # Documented in the config schema; 1.11.8's code reads the
            # health_check plugin's copy below, newer versions may read this.
            "pythonEolCheck": {"enabled": False, "url": OFFLINE_URL},
        },
        "plugins": {
            "_disabled": list(NETWORKING_PLUGINS),
            "tracking": {"enabled": False},
            "errortracking": {
                "enabled": False,
                "enabled_unreleased": False,
                "url_server": OFFLINE_URL,
                "url_coreui": OFFLINE_URL,
            },
            "announcements": {
                "enabled_channels": [],
                "forced_channels": [],
                "channel_order": [],
            },
            "pluginmanager": {
                "repository": OFFLINE_URL,
                "notices": OFFLINE_URL,
                # Served from the empty caches seed_offline_caches() writes, so
                # start-up neither fetches nor logs a refused connection.
                "repository_ttl": CACHE_TTL_MINUTES,
                "notices_ttl": CACHE_TTL_MINUTES,
            },
            "health_check": {
                # octoprint_freshness asks PyPI, python_eol asks get.octoprint.org
                "disabled": ["octoprint_freshness", "python_eol"],
                "checks": {"python_eol": {"url": OFFLINE_URL}},
            },
            # Kept harmless in case a test re-enables softwareupdate.
            "softwareupdate": {
                "check_overlay_url": OFFLINE_URL,
                "check_overlay_py2_url": OFFLINE_URL,
                "checks": {"octoprint": {"type": "always_current", "disabled": True}},
            },
            # The browser would otherwise ask Google's STUN server for WebRTC.
            "classicwebcam": {"streamWebrtcIceServers": []},
        },
    }


def virtual_printer_config() -> Dict[str, Any]:
    """The bundled virtual printer, tuned so a tiny print takes a second or two."""
    return {
        "plugins": {
            "virtual_printer": {
                "enabled": True,
                # no injected resends/timeouts on line numbers 100-115
                "simulated_errors": [],
                # no "wait" lines while idle
                "sendWait": False,
            }
        }
    }


def seen_wizards(hidden: Iterable[str] = ()) -> Dict[str, int]:
    """``server.seenWizards`` marking every known wizard seen, except ``hidden``."""
    hidden = set(hidden)
    return {name: SEEN_WIZARD_VERSION for name in (*BUNDLED_WIZARDS, PLUGIN_ID) if name not in hidden}


def server_config(
    plugin_settings: Optional[Mapping[str, Any]] = None,
    extra_config: Optional[Mapping[str, Any]] = None,
    show_wizards: Iterable[str] = (),
) -> Dict[str, Any]:
    """config.yaml for a test server: set up, offline, virtual printer on."""
    config = deep_merge(offline_config(), virtual_printer_config())
    config = deep_merge(
        config,
        {
            "server": {
                "firstRun": False,
                "seenWizards": seen_wizards(show_wizards),
            },
            "accessControl": {"enabled": True},
            # Browser tests log in repeatedly; the login rate limiter would bite.
            "devel": {"enableRateLimiter": False},
            "plugins": {PLUGIN_ID: dict(plugin_settings or {})},
        },
    )
    return deep_merge(config, extra_config)


def demo_config(server_url: str) -> Dict[str, Any]:
    """config.yaml for ``./dev run``: first-run wizard shown, tracking to ``server_url``."""
    config = deep_merge(offline_config(), virtual_printer_config())
    return deep_merge(
        config,
        {
            "server": {"firstRun": True},
            "plugins": {PLUGIN_ID: {"server": server_url}},
        },
    )


def users_config() -> Dict[str, Any]:
    """users.yaml with an admin and a plain user, each with a fixed API key."""
    # OctoPrint's own hasher, so the hash format always matches the installed version.
    from octoprint.access.users import UserManager

    def user(password: str, api_key: str, groups: list) -> Dict[str, Any]:
        return {
            "active": True,
            "apikey": api_key,
            "groups": groups,
            "password": UserManager.create_password_hash(password),
            "permissions": [],
            "roles": ["user", "admin"] if "admins" in groups else ["user"],
            "settings": {},
        }

    return {
        "_version": 2,
        ADMIN_USER: user(ADMIN_PASSWORD, ADMIN_API_KEY, ["admins", "users"]),
        USER_NAME: user(USER_PASSWORD, USER_API_KEY, ["users"]),
    }


def logging_config(debug_loggers: Iterable[str] = ()) -> Dict[str, Any]:
    """logging.yaml: our plugin (and any extra loggers) at DEBUG in octoprint.log."""
    names = (f"octoprint.plugins.{PLUGIN_ID}", "octoprint.plugins.tq_test_events", *debug_loggers)
    return {"loggers": {name: {"level": "DEBUG"} for name in names}}


def seed_offline_caches(basedir: Path) -> None:
    """Empty plugin repository and notices caches for the Plugin Manager.

    Without them it fetches both at start-up; pointed at OFFLINE_URL that fails
    with an ERROR and a traceback in octoprint.log, which would hide real errors.
    """
    folder = Path(basedir) / "data" / "pluginmanager"
    folder.mkdir(parents=True, exist_ok=True)
    # The cache counts only if its mtime lies strictly in the past.
    past = time.time() - 60
    for name in ("plugins.json", "notices.json"):
        path = folder / name
        path.write_text("[]", encoding="utf-8")
        os.utime(path, (past, past))


def write_yaml(path: Path, data: Mapping[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(dict(data), f, default_flow_style=False, sort_keys=True)


def write_basedir(
    basedir: Path,
    config: Mapping[str, Any],
    users: Optional[Mapping[str, Any]] = None,
    logging: Optional[Mapping[str, Any]] = None,
) -> None:
    """Write config.yaml (and users.yaml / logging.yaml when given) into ``basedir``."""
    basedir = Path(basedir)
    basedir.mkdir(parents=True, exist_ok=True)
    write_yaml(basedir / "config.yaml", config)
    seed_offline_caches(basedir)
    if users is not None:
        write_yaml(basedir / "users.yaml", users)
    if logging is not None:
        write_yaml(basedir / "logging.yaml", logging)


def main(argv: Optional[list] = None) -> int:
    parser = argparse.ArgumentParser(description="Write an OctoPrint base folder.")
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="demo folder for ./dev run (kept if it exists)")
    demo.add_argument("basedir", type=Path)
    demo.add_argument("--server", required=True, help="tracking URL template for the plugin")
    args = parser.parse_args(argv)

    if args.command == "demo":
        if (args.basedir / "config.yaml").exists():
            print(f"{args.basedir}/config.yaml exists, keeping it")
            return 0
        write_basedir(args.basedir, demo_config(args.server), logging=logging_config())
        print(f"wrote {args.basedir}/config.yaml")
    return 0


if __name__ == "__main__":
    sys.exit(main())
