# The settings as the web page changes them: POST /api/settings (config.edit) and POST
# /api/restore (config.restore) through web.Web's own handler, as the body comes from a browser,
# and config.check on whatever JSON the body holds.
#
# Input: 1 byte, then the body (JSON-ish). The byte picks the settings there are (bits 0-1: a
# Luxembourg dongle with every secret set and a web password, a new dongle without settings, an
# Austrian key-only one) and what is done (bits 2-3: edit, restore, check).
# Oracles:
#   - no exception from the handler (a body that is no JSON is a 400, like any bad setting);
#     config.check raises ConfigError alone
#   - the answer is 200 or 400, JSON, without a secret of the settings (key, authentication key,
#     passwords) unless the body carries it itself
#   - a refused change changes nothing; the settings given are never changed in place
#   - saved settings are ones the dongle starts with: over its own defaults (its name, its
#     chip's UART pins) config.check takes them, and its source is one a dongle has (uart, or
#     tcp:HOST:PORT; a file: path is left to the flash there is); an empty secret kept the old
#     one; config.public of them is they without their secrets
import base64
import copy
import json

import oracles
from common import Finding, expect
from p1dongle import config
from p1dongle.errors import ConfigError
from p1dongle.httpd import Request
from p1dongle.web import Web

DECLARED = ()
MAX_LEN = 4096 + 1      # httpd's MAX_BODY, and the byte

KEY = "AE4F1D0F8F0B5E7C1E0C2A33B4D5E6F7"
BASES = (
    {"key": KEY, "meter": "lux", "wifi": {"ssid": "home", "password": "wifi-secret-1"},
     "mqtt": {"host": "broker.lan", "user": "p1", "password": "mqtt-secret-2"}, "web_password": "web-secret-3"},
    {},
    {"meter": "steiermark", "key": "A8C74F67ECA8EF9C55C4743FF6F4F031", "auth_key": "none", "http_port": 8080,
     "uart": {"rx": 4}, "wifi": {"ssid": "home", "password": "wifi-secret-4"}},
)
# What an ESP32 dongle puts under the settings file (platform_esp32.defaults(): its name, its
# chip's UART and pin)
DONGLE = {"device_id": "p1dongle-a1b2c3", "uart": {"id": 2, "rx": 16}}


class App:
    """What the web page asks of the app when settings change (and the settings it runs with)."""
    cfg = {"mdns": True, "shelly": False}

    def restart_soon(self):
        pass


def check(data):
    if not data:
        return
    base = BASES[(data[0] & 3) % len(BASES)]
    what = ((data[0] >> 2) & 3) % 3
    body = data[1:]
    if what == 2:
        _check(body)
        return
    before = json.dumps(base, sort_keys=True)
    settings = config.Settings(copy.deepcopy(base), None, kinds=config.SOURCE_KINDS["dongle"])   # the dongle's web page
    web = Web(App(), settings, log=_quiet)
    headers = {"content-type": "application/json", "host": "192.168.1.9"}
    if base.get("web_password"):
        headers["authorization"] = "Basic " + base64.b64encode(b":" + base["web_password"].encode()).decode()
    path = "/api/settings" if what == 0 else "/api/restore"
    res = web.handle(Request("POST", path, "", headers, body))
    expect(res.status in (200, 400), "status", "%s answered %d" % (path, res.status), str(res.status))
    answer = res.body if isinstance(res.body, (bytes, str)) else b"".join(res.body)
    oracles.document(answer, "the answer to POST " + path, "answer")
    secrets = [s for s in _secrets(base) if s.encode().lower() not in body.lower()]
    oracles.no_secret(answer, secrets, "the answer")
    expect(json.dumps(base, sort_keys=True) == before, "unchanged", "the settings given were changed in place")
    if res.status != 200:
        expect(settings.raw == base, "unchanged", "a refused change changed the settings")
        return
    saved = settings.raw
    starts(saved)
    if what == 0:
        _kept(base, json.loads(body.decode()), saved)
    public, _ = config.public(saved)
    want = copy.deepcopy(saved)
    for p in config.SECRETS:
        parent = _get(want, p[:-1]) if len(p) > 1 else want
        if isinstance(parent, dict):
            parent.pop(p[-1], None)
    expect(public == want, "public", "config.public of the saved settings is not they without their secrets")


def starts(raw):
    """The dongle's start with these settings (start.py): over its own defaults, checked; a source
    it has."""
    cfg = copy.deepcopy(DONGLE)
    for name in raw:
        base = cfg.get(name)
        cfg[name] = dict(base, **raw[name]) if isinstance(base, dict) and isinstance(raw[name], dict) else raw[name]
    try:
        cfg = config.check(cfg)
    except ConfigError as e:
        raise Finding("start", "saved settings the dongle cannot start with: %s" % e, "check")
    source = cfg["source"]
    if source != "uart" and not source.startswith("file:"):
        from p1dongle.sources import parse_source
        try:
            parse_source(source, _quiet)
        except ConfigError as e:
            raise Finding("start", "saved a source the dongle cannot open: %s" % e, "source")


def _kept(base, changes, saved):
    # a secret the change left empty is as it was
    if not isinstance(changes, dict):
        return
    for p in config.SECRETS:
        given = _get(changes, p)
        if given == "" and _get(base, p) is not None:
            expect(_get(saved, p) == _get(base, p), "secret", "an empty %s did not keep the old one" % ".".join(p),
                   "kept")


def _check(body):
    try:
        raw = json.loads(body.decode())
    except (ValueError, UnicodeError, RecursionError):
        return                          # no JSON: nothing to give config.check
    try:
        cfg = config.check(raw)
    except ConfigError:
        return
    expect(isinstance(cfg, dict) and set(config.DEFAULTS) <= set(cfg), "check", "config.check gave no settings")
    expect(cfg["key"] is None or (isinstance(cfg["key"], bytes) and len(cfg["key"]) == 16), "check",
           "config.check let a key through that is no 16 bytes")


def _secrets(raw):
    out = []
    for p in config.SECRETS:
        v = _get(raw, p)
        if isinstance(v, str) and v and v.lower() != "none":
            out.append(v)
    return out


def _get(raw, path):
    for name in path:
        if not isinstance(raw, dict) or name not in raw:
            return None
        raw = raw[name]
    return raw


def _quiet(*args):
    pass


def seeds():
    bodies = [
        {"mqtt": {"host": "10.0.0.2"}, "tcp_port": 2323},
        {"key": "", "wifi": {"password": ""}, "web_password": None, "meter": None},
        {"mqtt": None}, {"mqtt": {"host": None, "user": None, "password": None}},
        {"key": "0" * 31}, {"key": "zz" * 16}, {"auth_key": "12"}, {"auth_key": "none"},
        {"meter": "nosuchmeter"}, {"meter": "netznoe", "key": "36C66639E48A8CA4D6BC8B282A793BBB"},
        {"tcp_port": 70000}, {"http_port": 23, "tcp_port": 23}, {"raw_port": 2324},
        {"mqtt": {"port": "1883x"}}, {"mqtt": {"hots": "typo"}}, {"wifi": {"ssid": 5}},
        {"web_private": "yes"}, {"nonsense": 1}, ["not", "an", "object"],
        {"source": "tcp:192.168.1.15:23"}, {"source": "file:capture.bin"}, {"host": "0.0.0.0"},
        {"device_id": "kitchen"}, {"uart": {"baud": 9600, "bits": 7, "parity": "even", "invert": False}},
        {"uart": {"request_pin": 5, "rxbuf": 8192}}, {"max_frame": 65535, "timeout_ms": 100, "queue_len": 64},
        {"mqtt": {"host": "h", "prefix": "home/p1", "discovery_prefix": "", "keepalive": 5, "queue_len": 1}},
        {"replay_check": False, "status_interval": 0, "max_clients": 32},
    ]
    out = []
    for i, b in enumerate(bodies):
        text = json.dumps(b).encode()
        out.append(bytes([i % 3]) + text)                       # edit
        out.append(bytes([4 | (i + 1) % 3]) + text)             # restore
        out.append(bytes([8 | i % 3]) + text)                   # check
    for base in BASES:
        out.append(bytes([4]) + json.dumps(config.public(base)[0]).encode())   # a backup, restored
    out.append(bytes([0]) + b'{"tcp_port": 2323')                              # not JSON
    return out
