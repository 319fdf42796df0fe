"""The words of the UI are defined once: every switch and worker state has its label."""

import json

import jinja2
import pytest

from octoprint_tracking_queued import config, policy, vocabulary, worker


def test_every_event_switch_in_the_defaults_has_a_label():
    labels = dict(vocabulary.EVENT_SWITCHES)
    assert len(labels) == len(vocabulary.EVENT_SWITCHES)  # no key twice
    assert set(config.defaults()["events"]) == set(labels)
    assert config.EVENT_SWITCHES == tuple(labels)
    assert all(str(label).strip() for label in labels.values())


def test_every_worker_state_has_a_label_and_a_style():
    states = {
        getattr(vocabulary, name)
        for name in ("IDLE", "SENDING", "BACKOFF", "OFFLINE", "DISABLED", "CONFIG_ERROR", "LOCKED", "STOPPED")
    }
    assert set(vocabulary.WORKER_STATES) == states
    # the states the worker and the policy name are among them
    assert worker.FLUSH_OVERRIDES | set(worker.BLOCKED_RECHECK) <= states
    assert policy.send_blocker(False, config.defaults(), [])[0] in states
    for label in vocabulary.WORKER_STATES.values():
        assert str(label.text).strip() and label.css in ("text-success", "text-warning", "text-error", "muted")


def test_every_connectivity_verdict_of_the_worker_has_a_label():
    # the worker takes the verdicts' names from vocabulary.py; the settings tab shows each in words
    verdicts = {worker.VERDICT_ONLINE, worker.VERDICT_OFFLINE, worker.VERDICT_REACHABLE}
    assert set(vocabulary.CONNECTIVITY) == verdicts
    for label in vocabulary.CONNECTIVITY.values():
        assert str(label.text).strip() and label.css in ("text-success", "text-warning", "text-error", "muted")


@pytest.mark.parametrize(
    "seconds,interval",
    [
        (60, "every minute"),
        (120, "every 2 minutes"),
        (900, "every 15 minutes"),
        (3600, "every hour"),
        (9000, "every 2 hours 30 minutes"),
        (86400, "every day"),
        (90061, "every 1 day 1 hour 1 minute 1 second"),
        (config.MAX_PING, "every 7 days"),
    ],
)
def test_ping_text_follows_the_ping_setting(seconds, interval):
    assert vocabulary.interval_text(seconds) == interval
    assert vocabulary.ping_text(seconds) == f"Ping {interval} with the uptime (always on)"


def test_template_vars_give_switches_state_labels_and_ping_text():
    effective = config.defaults()
    effective["ping"] = 9000
    found = vocabulary.template_vars(effective)
    assert [key for key, _label in found["event_switches"]] == list(config.EVENT_SWITCHES)
    assert str(found["ping_text"]) == "Ping every 2 hours 30 minutes with the uptime (always on)"
    states = json.loads(str(found["worker_states"]))
    assert states["backoff"] == {"text": "Backing off until %(time)s (%(reason)s)", "css": "text-warning"}
    assert set(states) == set(vocabulary.WORKER_STATES)
    verdicts = json.loads(str(found["connectivity"]))
    assert verdicts["online"] == {
        "text": "Online: OctoPrint's connectivity check says so, or is off",
        "css": "text-success",
    }
    assert set(verdicts) == set(vocabulary.CONNECTIVITY)


def test_state_labels_are_escaped_into_their_html_attribute():
    # flask_babel's LazyString would pass as HTML: its quotes would end the attribute
    found = vocabulary.template_vars(config.defaults())
    html = jinja2.Environment(autoescape=True).from_string('<dd data-states="{{ s }}">')
    rendered = html.render(s=found["worker_states"])
    assert rendered.startswith('<dd data-states="{&#34;idle&#34;: ') and rendered.count('"') == 2
