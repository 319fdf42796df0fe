"""OctoPrint's face of the plugin: mixins and hooks handing OctoPrint's objects to the runtime.

No tracking logic here: `runtime.py` runs the queue, worker and timers, `api.py` answers the API.
"""

from __future__ import annotations

from typing import Any, Optional

import flask
import octoprint.plugin
from flask_babel import gettext
from flask_login import current_user
from octoprint.access import ADMIN_GROUP
from octoprint.access.permissions import Permissions
from octoprint.util.version import get_octoprint_version_string, is_octoprint_compatible

from . import api, cli, compat, config, files, system, updates, vocabulary
from .runtime import Host, Runtime


class TrackingQueuedPlugin(
    octoprint.plugin.SettingsPlugin,
    octoprint.plugin.EnvironmentDetectionPlugin,
    octoprint.plugin.StartupPlugin,
    octoprint.plugin.ShutdownPlugin,
    octoprint.plugin.TemplatePlugin,
    octoprint.plugin.AssetPlugin,
    octoprint.plugin.WizardPlugin,
    octoprint.plugin.EventHandlerPlugin,
    octoprint.plugin.SimpleApiPlugin,
):
    def __init__(self) -> None:
        self._environment: Optional[dict] = None
        self._runtime: Optional[Runtime] = None

    def initialize(self) -> None:
        host = Host(
            is_online=lambda: self._connectivity_checker.online,
            printer_state=lambda: self._printer.get_state_id() if self._printer else None,
            enabled_plugins=lambda: [
                (plugin.key, plugin.version)
                for plugin in self._plugin_manager.enabled_plugins.values()
                if not plugin.bundled
            ],
            unlocked_achievements=self._unlocked_achievements,
            user_names=lambda: [user.get_name() for user in self._user_manager.get_all_users()],
            send_plugin_message=lambda data: self._plugin_manager.send_plugin_message(self._identifier, data),
            environment=lambda: system.environment_payload(self._environment, get_octoprint_version_string()),
            throttle_helper=lambda: (self._plugin_manager.get_helpers("pi_support", "get_throttled") or {}).get(
                "get_throttled"
            ),
            bundled_loaded=self._bundled_loaded,
        )
        self._runtime = Runtime(
            host,
            _SettingsAccess(self._settings),
            self.get_plugin_data_folder(),
            user_agent=f"OctoPrint/{get_octoprint_version_string()}",
            octoprint_2=is_octoprint_compatible(">=2.0.0"),  # its base version: 2.0.0rc7 counts
            plugin_version=self._plugin_version or "",
        )

    @property
    def runtime(self) -> Optional[Runtime]:
        """The plugin at run time, for tools that measure it through `Runtime.instruments` (probes.py)."""
        return self._runtime

    def _unlocked_achievements(self) -> Optional[list[str]]:
        helpers = self._plugin_manager.get_helpers("achievements", "get_unlocked_achievements") or {}
        if "get_unlocked_achievements" not in helpers:
            return None
        return [achievement.key for achievement in helpers["get_unlocked_achievements"]()]

    def _bundled_loaded(self) -> bool:
        info = self._plugin_manager.get_plugin_info("tracking")
        return info is not None and info.enabled

    # ~~ SettingsPlugin

    def get_settings_defaults(self) -> dict:
        return config.defaults()

    def get_settings_restricted_paths(self) -> dict:
        return config.RESTRICTED_PATHS

    def get_settings_reauth_requirements(self) -> dict:
        # OctoPrint 2.0 asks for a fresh login before a save that changes these; 1.11 never calls it.
        return config.REAUTH_PATHS

    def get_settings_version(self) -> int:
        return 1

    def on_settings_save(self, data: dict) -> dict:
        return self._runtime.on_settings_save(
            data, lambda clean: octoprint.plugin.SettingsPlugin.on_settings_save(self, clean)
        )

    # ~~ EnvironmentDetectionPlugin, StartupPlugin, ShutdownPlugin, EventHandlerPlugin

    def on_environment_detected(self, environment: dict, *args, **kwargs) -> None:
        self._environment = environment

    def on_after_startup(self) -> None:
        self._runtime.start()

    def on_shutdown(self) -> None:
        self._runtime.shutdown()

    def on_event(self, event: str, payload: Any) -> None:
        self._runtime.on_event(event, payload)

    # ~~ SimpleApiPlugin

    def get_api_commands(self) -> dict:
        return {name: list(parameters) for name, parameters in api.COMMAND_PARAMETERS.items()}

    def is_api_protected(self) -> bool:
        return True

    def on_api_get(self, request):
        return _response(api.get(self._runtime, request.values, _can_manage))

    def on_api_command(self, command: str, data: dict):
        caller = (str(current_user.get_id() or ""), str(flask.session.get("usersession.id") or ""))
        return _response(api.command(self._runtime, command, data, _can_manage, caller))

    # ~~ hooks

    def get_additional_permissions(self, *args, **kwargs) -> list:
        return [
            {
                "key": "MANAGE",
                "name": "Manage tracking queue",
                "description": gettext("Allows to see the queued tracking records and to flush or clear them"),
                "roles": ["manage"],
                "default_groups": [ADMIN_GROUP],
            }
        ]

    # ~~ TemplatePlugin / AssetPlugin / WizardPlugin

    def is_template_autoescaped(self) -> bool:
        return True

    def get_template_configs(self) -> list:
        return [
            {"type": "settings", "name": gettext("Anonymous Usage Tracking (Queued)"), "custom_bindings": True},
            {
                "type": "wizard",
                "name": gettext("Anonymous Usage Tracking (Queued)"),
                "custom_bindings": True,
                "mandatory": True,
            },
        ]

    def get_template_vars(self) -> dict:
        return vocabulary.template_vars(self._runtime.effective)

    def get_assets(self) -> dict:
        return {
            # one view model per file; first what they use: the helpers, then the plain
            # modules the settings tab wires to Knockout (also run by Node in tests/js)
            "js": [
                "js/tracking_queued_helpers.js",
                "js/tracking_queued_pager.js",
                "js/tracking_queued_format.js",
                "js/tracking_queued_wizard.js",
                "js/tracking_queued_settings.js",
                "js/tracking_queued_webui.js",
            ],
            "clientjs": ["clientjs/tracking_queued.js"],
            "css": ["css/tracking_queued.css"],
        }

    def is_wizard_required(self) -> bool:
        return self._settings.get(["enabled"]) is None

    def get_wizard_version(self) -> int:
        return 1

    def get_wizard_details(self) -> dict:
        # The wizard says that enabling ours turns the bundled plugin off, when it is on,
        # and how many records Disable deletes (tracking may have been enabled meanwhile).
        status = self._runtime.status()
        unsent = status["unsent"]
        return {"bundled_enabled": status["bundled_enabled"], "pending_records": unsent}


class _SettingsAccess:
    """The runtime's view of OctoPrint's settings (runtime.SettingsAccess)."""

    BUNDLED = ["plugins", "tracking"]

    def __init__(self, settings) -> None:
        self._settings = settings

    def merged(self) -> dict:
        return self._settings.get([], merged=True) or {}

    def enabled(self) -> Optional[bool]:
        return self._settings.get_boolean(["enabled"])

    def unique_id(self) -> Optional[str]:
        return self._settings.get(["unique_id"])

    def set_unique_id(self, value: str) -> None:
        self._settings.set(["unique_id"], value)
        self._settings.save()

    def bundled_unique_id(self) -> Any:
        return self._settings.global_get([*self.BUNDLED, "unique_id"])

    def bundled_enabled(self) -> bool:
        return bool(self._settings.global_get_boolean([*self.BUNDLED, "enabled"]))

    def disable_bundled(self) -> None:
        self._settings.global_set_boolean([*self.BUNDLED, "enabled"], False)
        self._settings.save()

    def save_durably(self) -> None:
        self._settings.save()
        # OctoPrint's Settings keeps its file's path privately; without it only the save is done.
        files.sync_file(getattr(getattr(self._settings, "settings", None), "_configfile", None))


def _can_manage() -> bool:
    # Created from get_additional_permissions at server start, so looked up late.
    return Permissions.PLUGIN_TRACKING_QUEUED_MANAGE.can()


def _response(answer: api.Answer):
    status, body = answer
    response = flask.make_response(flask.jsonify(body), status)
    if "retry_after" in body:
        response.headers["Retry-After"] = str(body["retry_after"])
    return response


__plugin_name__ = "Anonymous Usage Tracking (Queued)"
__plugin_description__ = "Anonymous usage tracking that queues every event on disk and delivers it later when offline"
__plugin_author__ = "OctoPrint-TrackingQueued developers"
__plugin_license__ = "AGPL-3.0-only"
__plugin_url__ = updates.HOMEPAGE
__plugin_privacypolicy__ = "https://tracking.octoprint.org/privacy"  # the tracking server's, where the data goes
__plugin_pythoncompat__ = ">=3.7,<4"
# OctoPrint is not a dependency (pip would upgrade it while installing us): checked here instead.
__plugin_check__ = compat.octoprint_supported
__plugin_implementation__ = TrackingQueuedPlugin()
__plugin_hooks__ = {
    "octoprint.access.permissions": __plugin_implementation__.get_additional_permissions,
    "octoprint.cli.commands": cli.commands,
    "octoprint.plugin.softwareupdate.check_config": updates.check_config,
}
