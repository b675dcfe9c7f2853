"""The settings as the web page edits them (config.public, edit, restore, save): secrets are
write-only, a form's empty secret keeps the old one, a bad change raises its one line and leaves
the settings as they were, a save is whole or not at all."""
import json

import pytest
from p1dongle import config
from p1dongle.errors import ConfigError

KEY = "AE4F1D0F8F0B5E7C1E0C2A33B4D5E6F7"
RAW = {"key": KEY, "meter": "lux", "wifi": {"ssid": "home", "password": "wifi-secret"},
       "mqtt": {"host": "broker.lan", "user": "p1", "password": "mqtt-secret"}, "web_password": "web-secret"}
SECRETS = (KEY, "wifi-secret", "mqtt-secret", "web-secret")


def frozen(raw):
    return json.dumps(raw, sort_keys=True)


def test_public_leaves_every_secret_out_and_says_which_are_set():
    before = frozen(RAW)
    settings, have = config.public(RAW)
    text = json.dumps(settings)
    assert not any(secret in text for secret in SECRETS)
    assert settings["wifi"] == {"ssid": "home"} and settings["mqtt"] == {"host": "broker.lan", "user": "p1"}
    assert have == {"key": True, "auth_key": False, "wifi.password": True, "mqtt.password": True,
                    "web_password": True}
    assert frozen(RAW) == before                                   # the caller's settings are whole


def test_edit_changes_one_setting_and_keeps_the_rest():
    out = config.edit(RAW, {"mqtt": {"host": "10.0.0.2"}, "tcp_port": 2323})
    assert out["mqtt"] == {"host": "10.0.0.2", "user": "p1", "password": "mqtt-secret"}
    assert out["tcp_port"] == 2323 and out["key"] == KEY and out["wifi"] == RAW["wifi"]


def test_an_empty_secret_is_kept_and_null_removes_a_setting():
    out = config.edit(RAW, {"key": "", "wifi": {"password": ""}, "web_password": None, "meter": None})
    assert out["key"] == KEY and out["wifi"]["password"] == "wifi-secret"
    assert "web_password" not in out and "meter" not in out        # the defaults apply again
    out = config.edit(RAW, {"mqtt": None})
    assert "mqtt" not in out
    assert "mqtt" not in config.edit(RAW, {"mqtt": {"host": None, "user": None, "password": None}})


@pytest.mark.parametrize("change, words", [
    ({"key": "0" * 31}, ("key", "32")),
    ({"key": "zz" * 16}, ("key",)),
    ({"auth_key": "12"}, ("auth_key",)),
    ({"meter": "nosuchmeter"}, ("meter", "nosuchmeter")),
    ({"tcp_port": 70000}, ("tcp_port",)),
    ({"http_port": 23, "tcp_port": 23}, ("http_port",)),
    ({"mqtt": {"port": "1883x"}}, ("mqtt", "port")),
    ({"mqtt": {"hots": "typo"}}, ("mqtt", "hots")),
    ({"wifi": {"ssid": 5}}, ("wifi",)),
    ({"web_private": "yes"}, ("web_private",)),
    ({"nonsense": 1}, ("nonsense",)),
    (["not", "an", "object"], ("object",)),
])
def test_a_bad_change_raises_its_line_and_changes_nothing(change, words):
    before = frozen(RAW)
    with pytest.raises(ConfigError) as e:
        config.edit(RAW, change)
    line = str(e.value)
    assert "\n" not in line and all(w in line for w in words), line
    assert not any(secret in line for secret in SECRETS)
    assert frozen(RAW) == before


def test_restore_takes_the_backup_and_keeps_the_secrets():
    backup, _ = config.public(RAW)
    backup["meter"] = "auto"
    backup["mqtt"]["host"] = "new.lan"
    out = config.restore(RAW, backup)
    assert out["meter"] == "auto" and out["mqtt"]["host"] == "new.lan"
    assert out["key"] == KEY and out["mqtt"]["password"] == "mqtt-secret" and out["wifi"]["password"] == "wifi-secret"
    assert out["web_password"] == "web-secret"
    with pytest.raises(ConfigError):
        config.restore(RAW, dict(backup, tcp_port="x"))
    with pytest.raises(ConfigError):
        config.restore(RAW, "text")


def test_save_is_whole_or_not_at_all(tmp_path):
    path = str(tmp_path / "p1dongle.json")
    store = config.Settings(RAW, path)
    store.save(config.edit(RAW, {"device_id": "attic"}))
    assert json.loads(open(path).read())["device_id"] == "attic" and store.raw["device_id"] == "attic"
    assert config.read(path)["key"] == KEY
    assert sorted(p.name for p in tmp_path.iterdir()) == ["p1dongle.json"]      # no .new left behind
    (tmp_path / "p1dongle.json.new").mkdir()                                    # the write cannot happen
    with pytest.raises(OSError):
        store.save(config.edit(RAW, {"device_id": "cellar"}))
    assert json.loads(open(path).read())["device_id"] == "attic"


def test_a_missing_settings_file_is_empty_settings_only_where_allowed(tmp_path):
    missing = str(tmp_path / "none.json")
    assert config.read(missing, missing_ok=True) == {}
    with pytest.raises(ConfigError):
        config.read(missing)
