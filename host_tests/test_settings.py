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


BAD = [
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
    # what the app could not start with (issue 22): its source, the address it listens on, its name
    ({"source": "tcp:192.168.1.15"}, ("source tcp:", "HOST:PORT")),
    ({"source": "tcp"}, ("source tcp:", "HOST:PORT")),            # no colon at all (found by make fuzz)
    ({"source": "file"}, ("source file:", "PATH")),
    ({"source": "serial"}, ("source serial:", "DEVICE")),
    ({"source": "tcp::23"}, ("source tcp:", "HOST:PORT")),
    ({"source": "tcp:192.168.1.15:0"}, ("source tcp:",)),
    ({"source": "tcp:192.168.1.15:65536"}, ("source tcp:",)),
    ({"source": "tcp:my meter:23"}, ("source tcp:",)),
    ({"source": "file:"}, ("source file:", "PATH")),
    ({"source": "serial:"}, ("source serial:", "DEVICE")),
    ({"source": "serial:/dev/ttyUSB0@fast"}, ("source serial:", "BAUD")),
    ({"source": "serial:/dev/ttyUSB0@0"}, ("source serial:", "BAUD")),
    ({"source": "uart:2"}, ("source", "uart")),
    ({"source": "bogus"}, ("source", "tcp:HOST:PORT")),
    ({"source": "file:/tmp/x\n"}, ("source",)),
    ({"host": "not an address"}, ("host", "IPv4")),
    ({"host": "256.0.0.1"}, ("host",)),
    ({"host": "192.168.1"}, ("host",)),
    ({"host": "0.0.0.0 "}, ("host",)),
    ({"device_id": "a+b"}, ("device_id",)),
    ({"device_id": "a#"}, ("device_id",)),
    ({"device_id": "a/b"}, ("device_id",)),
    ({"device_id": "nul\u0000"}, ("device_id",)),
    ({"device_id": "tab\t"}, ("device_id",)),
    ({"device_id": "\ud800"}, ("device_id",)),
    ({"device_id": "x" * 65}, ("device_id", "64")),
    ({"mqtt": {"prefix": "home/+/p1"}}, ("mqtt prefix",)),
    ({"mqtt": {"discovery_prefix": "ha/#"}}, ("mqtt discovery_prefix",)),
]


@pytest.mark.parametrize("change, words", BAD)
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


GOOD = [{"source": "uart"}, {"source": "tcp:192.168.1.15:3000"}, {"source": "tcp:meter.lan:23"},
        {"source": "file:capture.bin"}, {"source": "file:/flash/my capture.bin"}, {"source": "serial:/dev/ttyUSB0"},
        {"source": "serial:COM3@9600"}, {"host": "0.0.0.0"}, {"host": "192.168.1.5"},
        {"device_id": "p1dongle-f10e"}, {"device_id": "Kitchen meter"}, {"device_id": "k\u00fcche_2"},
        {"device_id": "x" * 64}, {"mqtt": {"host": "broker.lan", "prefix": "home/p1"}}]


@pytest.mark.parametrize("change", GOOD)
def test_what_the_app_can_start_with_is_taken(change):
    assert config.edit(RAW, change)


# The same rules on the dongle twin: each bad setting the same line as under CPython, each good
# one taken.
TWIN_CHECK = """
import json, sys
from p1dongle import config
from p1dongle.errors import ConfigError
out = []
for change in json.loads(open(sys.argv[1]).read()):
    try:
        config.check(change)
        out.append("ok")
    except ConfigError as e:
        out.append(str(e))
print(json.dumps(out))
"""


def test_the_dongle_checks_the_same(micropython, tmp_path):
    import os
    import subprocess
    from conftest import MICROPYPATH
    changes = [c for c, _ in BAD if "\ud800" not in json.dumps(c, ensure_ascii=False)] + GOOD
    cases = tmp_path / "cases.json"
    cases.write_text(json.dumps(changes))
    script = tmp_path / "check.py"
    script.write_text(TWIN_CHECK)
    on_twin = subprocess.run([micropython, str(script), str(cases)], capture_output=True, text=True, timeout=60,
                             env=dict(os.environ, MICROPYPATH=MICROPYPATH))
    assert on_twin.returncode == 0, on_twin.stdout + on_twin.stderr
    here = []
    for change in changes:
        try:
            config.check(change)
            here.append("ok")
        except ConfigError as e:
            here.append(str(e))
    assert json.loads(on_twin.stdout) == here
    assert here.count("ok") == len(GOOD)


def test_a_settings_file_nested_too_deep_is_one_line(tmp_path):
    path = tmp_path / "p1dongle.json"
    path.write_text('{"key": "%s", "wifi": %s}' % (KEY, "[" * 5000 + "]" * 5000))
    with pytest.raises(ConfigError) as e:
        config.read(str(path))
    assert str(e.value) == ("config file %s: settings nest at most 2 levels deep, e.g. "
                            '{"mqtt": {"host": ...}}' % path)
    path.write_text(json.dumps(dict(RAW, web_password="[[[{{{\\\"]]]")))     # brackets in a string
    assert config.read(str(path))["web_password"] == '[[[{{{\\"]]]'


@pytest.mark.parametrize("target, good, bad", [("dongle", "uart", "serial:/dev/ttyUSB0@9600"),
                                               ("host", "serial:COM3", "uart")])
def test_a_save_never_keeps_a_source_its_target_cannot_open(tmp_path, target, good, bad):
    """The web page saves only a source the dongle (or the PC) opens: the dongle has no serial port,
    a PC no UART. (make fuzz found a dongle's page saving serial:2: after the restart, the previous
    settings came back; now the save is refused with one line and nothing is written.)"""
    path = str(tmp_path / "p1dongle.json")
    store = config.Settings({}, path, kinds=config.SOURCE_KINDS[target])
    with pytest.raises(ConfigError, match="source %s is not on this device; use " % bad.split(":")[0]):
        store.save({"source": bad})
    assert not (tmp_path / "p1dongle.json").exists() and store.raw == {}
    store.save({"source": good})
    assert config.read(path) == {"source": good}


def test_the_led_identify_blinks_is_a_gpio_off_the_meters_line():
    assert config.check({})["led_pin"] is None
    assert config.check({"led_pin": 2})["led_pin"] == 2
    for bad, why in ((49, "from 0 to 48"), ("2", "from 0 to 48"), (True, "from 0 to 48"),
                     (16, "rx and request_pin"), (4, "rx and request_pin")):
        raw = {"led_pin": bad, "uart": {"request_pin": 4}}
        with pytest.raises(ConfigError, match=why):
            config.check(raw)
