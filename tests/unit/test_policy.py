"""policy.py: when nothing may be sent at all (the user's choice, the environment, bad config, CI)."""

import pytest

from octoprint_tracking_queued import config
from octoprint_tracking_queued.policy import send_blocker

LOCAL = dict(config.defaults(), server="http://127.0.0.1:9/track/{id}/{event}/")


@pytest.mark.parametrize(
    "enabled, effective, errors, environ, state",
    [
        (True, LOCAL, [], {}, None),
        (None, LOCAL, [], {}, "disabled"),
        (False, LOCAL, [], {}, "disabled"),
        (True, LOCAL, [], {"OCTOPRINT_DISABLE_TRACKING": "1"}, "disabled"),
        (True, LOCAL, [], {"OCTOPRINT_TRACKING_DISABLED": "true"}, "disabled"),
        (True, config.defaults(), [], {"CI": "true"}, "disabled"),
        (True, LOCAL, [], {"CI": "true"}, None),  # tests on CI send to loopback
        (True, LOCAL, ["plugins.tracking_queued.ping: bad"], {}, "config_error"),
    ],
)
def test_send_blocker(enabled, effective, errors, environ, state):
    blocker = send_blocker(enabled, effective, errors, environ)
    assert (blocker[0] if blocker else None) == state


def test_config_error_is_named_even_on_ci():
    # a bad server in config.yaml falls back to the default one, which CI would block
    blocker = send_blocker(True, config.defaults(), ["plugins.tracking_queued.server: bad"], {"CI": "true"})
    assert blocker == ("config_error", "plugins.tracking_queued.server: bad")
