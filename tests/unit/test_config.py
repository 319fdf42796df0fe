"""config.py: every setting's validation, the defaults a bad config.yaml value falls back to, and the settings table."""

import uuid

import pytest

from octoprint_tracking_queued import config
from tests.harness.ids import CANONICAL_IDS, ID_RULE, REFUSED_IDS


@pytest.mark.parametrize(
    "update,errors",
    [
        ({"server": "file:///etc/passwd"}, ["server: must be an http:// or https:// URL"]),
        ({"server": "javascript:alert(1)//{id}{event}"}, ["server: must be an http:// or https:// URL"]),
        ({"server": "https://example.com/track/{event}/"}, ["server: must contain both {id} and {event}"]),
        (
            {"server": "https://example.com/{id}/{event}/{x}"},
            ["server: may contain no placeholders but {id} and {event}"],
        ),
        ({"ping": -5}, ["ping: must be between 60 and 604800, got -5"]),
        ({"ping": 0}, ["ping: must be between 60 and 604800, got 0"]),
        ({"ping": 10**12}, ["ping: must be between 60 and 604800, got 1000000000000"]),
        ({"ping": "abc"}, ["ping: must be a whole number, got 'abc'"]),
        ({"ping": True}, ["ping: must be a whole number, got bool"]),
        ({"events": {"slicing": "yes"}}, ["events.slicing: must be true or false, got 'yes'"]),
        ({"queue": {"max_records": 1}}, ["queue.max_records: must be between 10 and 1000000, got 1"]),
        ({"retry": {"initial_delay": float("nan")}}, ["retry.initial_delay: must be between 0.01 and 86400 seconds"]),
        ({"enabled": "true"}, ["enabled: must be true or false, got 'true'"]),
        ({"unique_id": "x"}, [f"unique_id: {ID_RULE}"]),
        ({"unique_id": "../../etc/passwd"}, [f"unique_id: {ID_RULE}"]),
        ({"unique_id": 12345678}, [f"unique_id: {ID_RULE}"]),
        ({"bogus": 1}, ["bogus: unknown setting"]),
    ],
)
def test_bad_values_are_refused_with_a_reason(update, errors):
    clean, found = config.clean_update(update)
    assert clean == {}
    assert found == [f"plugins.tracking_queued.{e}" for e in errors]


def test_good_values_pass_cleaned():
    clean, errors = config.clean_update(
        {
            "enabled": True,
            "ping": "120",
            "server": " http://127.0.0.1:1/track/{id}/{event}/ ",
            "events": {"slicing": False},
            "queue": {"max_records": 50.0},
            "retry": {"initial_delay": "0.5"},
        }
    )
    assert errors == []
    assert clean == {
        "enabled": True,
        "ping": 120,
        "server": "http://127.0.0.1:1/track/{id}/{event}/",
        "events": {"slicing": False},
        "queue": {"max_records": 50},
        "retry": {"initial_delay": 0.5},
    }


def test_mixed_update_keeps_the_good_part():
    clean, errors = config.clean_update({"enabled": True, "ping": -1})
    assert clean == {"enabled": True}
    assert len(errors) == 1


def test_resolve_replaces_bad_config_values_by_defaults():
    resolved, errors = config.resolve(
        {
            "server": "ftp://x/{id}/{event}",
            "ping": 30,
            "events": {"pong": False},
            "retry": {"initial_delay": 100, "max_delay": 10},
        }
    )
    assert resolved["server"] == config.DEFAULT_SERVER
    assert resolved["ping"] == 900
    assert resolved["events"]["pong"] is False and resolved["events"]["startup"] is True
    assert resolved["retry"] == config.DEFAULTS["retry"]
    assert [e.split(":")[0] for e in errors] == [
        "plugins.tracking_queued.server",
        "plugins.tracking_queued.ping",
        "plugins.tracking_queued.retry.initial_delay",
    ]


def test_resolve_of_defaults_is_clean():
    resolved, errors = config.resolve(config.defaults())
    assert errors == []


def test_server_ping_and_pong_only_from_config_yaml():
    # pong as OctoPrint 2.0's bundled plugin restricts it (1.11.8's left it open)
    clean, errors = config.clean_update(
        {"server": "http://127.0.0.1:1/{id}/{event}", "ping": 120, "pong": 120, "enabled": True}, from_api=True
    )
    assert clean == {"enabled": True}
    assert errors == [
        "plugins.tracking_queued.server: can only be changed in config.yaml",
        "plugins.tracking_queued.ping: can only be changed in config.yaml",
        "plugins.tracking_queued.pong: can only be changed in config.yaml",
    ]
    resolved, errors = config.resolve({"server": "http://127.0.0.1:1/{id}/{event}", "ping": 120, "pong": 120})
    assert (resolved["server"], resolved["ping"], resolved["pong"], errors) == (
        "http://127.0.0.1:1/{id}/{event}",
        120,
        120,
        [],
    )


@pytest.mark.parametrize("value", CANONICAL_IDS + [str(uuid.uuid4())])
def test_a_canonical_uuid_is_the_instance_id(value):
    assert config.validate_unique_id(value) == value
    clean, errors = config.clean_update({"unique_id": value}, from_api=True)
    assert (clean, errors) == ({"unique_id": value}, [])


@pytest.mark.parametrize("value", REFUSED_IDS)
def test_any_other_id_is_refused_through_the_api(value):
    clean, errors = config.clean_update({"unique_id": value, "enabled": True}, from_api=True)
    assert clean == {"enabled": True}
    assert errors == [f"plugins.tracking_queued.unique_id: {ID_RULE}"]


@pytest.mark.parametrize("value", REFUSED_IDS)
def test_any_other_id_in_config_yaml_is_a_configuration_error(value):
    resolved, errors = config.resolve({"unique_id": value, "enabled": True})
    assert resolved["unique_id"] is None
    assert errors == [f"plugins.tracking_queued.unique_id: {ID_RULE}"]


def test_every_setting_is_one_row_whose_default_passes_its_own_validator():
    paths = [setting.path for setting in config.SETTINGS]
    assert len(paths) == len(set(paths))
    for setting in config.SETTINGS:
        if setting.default is not None:  # enabled and unique_id start unset
            assert setting.validate(setting.default) == setting.default, setting.path
        assert setting.restricted in ("admin", "never")
    # What only config.yaml may change is what says where data goes and how often.
    assert config.RESTRICTED_PATHS["never"] == [["server"], ["ping"], ["pong"], ["collector"]]
    assert config.REAUTH_PATHS == {"server": True, "collector": {"endpoint": True, "headers": True}}
