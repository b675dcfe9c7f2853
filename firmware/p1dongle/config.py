# The dongle's settings: a JSON file on flash (/p1dongle.json), written by `tools/flash.py config`.
#
#   {"key": "<32 hex digits>", "wifi": {"ssid": "home", "password": "..."}}
#
# is enough for a Luxembourg meter; everything else has a default (DEFAULTS below). load() checks
# every setting and raises ConfigError with one line that says which one is wrong and why. The
# messages never contain a key or a password.
import json

from . import meters
from .chips import uart_pins
from .dlms import LUX_AUTH_KEY, parse_key
from .errors import ConfigError

DEFAULTS = {
    "meter": "auto",           # a profile from meters.py: UART framing and value layout
    "key": None,               # the meter's encryption key; none: plain DSMR meters only
    "auth_key": None,          # authentication key; unset: Luxembourg's 00112233..EEFF;
                               # "none": key-only mode, tags NOT checked (utilities that give
                               # customers no authentication key, e.g. Energie Steiermark)
    "source": "uart",          # uart | tcp:HOST:PORT | file:PATH | serial:DEVICE[@BAUD] (see
                               # source_parts; uart only on the dongle, serial only on a PC)
    "host": "0.0.0.0",         # IPv4 address the TCP ports listen on (0.0.0.0: every interface)
    "tcp_port": 23,            # plaintext telegrams (telnet, Home Assistant's DSMR integration);
                               # 0: any free port (host tools print the one picked)
    "raw_port": 0,             # the meter's raw frames, as received; 0: off
    "max_clients": 8,          # per port
    "queue_len": 8,            # telegrams a client may fall behind before it is dropped
    "status_interval": 60,     # seconds between status lines on the console; 0: never
    "max_frame": 4096,         # longest frame or telegram accepted, bytes
    "timeout_ms": 5000,        # a partial frame older than this is dropped
    "replay_check": True,      # refuse frame counters that go backwards
    "wifi": None,              # {"ssid": ..., "password": ...}
    "device_id": "p1dongle",   # names this dongle: MQTT topics, client id, Home Assistant node
                               # (up to 64 characters, none of / + # or control characters)
    "mqtt": None,              # {"host": ...}: publish to a broker (see MQTT_DEFAULTS); none: off
    "uart": None,              # see UART_DEFAULTS
    "http_port": 80,           # the web page and the local API (HomeWizard v1); 0: any free port;
                               # null: no web server
    "web_password": None,      # asked (HTTP Basic, any user name) for the settings; none: open
    "web_private": False,      # true: the status page and the API want the password too
    "led_pin": None,           # GPIO of a LED on the board, which HomeWizard's identify blinks
                               # (Home Assistant's Identify button); null: none
    "mdns": True,              # announce the dongle by mDNS (mdns.py): p1dongle-XXXX.local, HomeWizard's
                               # _hwenergy._tcp, the Shelly face's _shelly._tcp (the p1dongle image;
                               # a PC and a stock image leave it off)
    "shelly": False,           # answer as a Shelly Pro 3EM too, for batteries (shelly.py): HTTP RPC
                               # on the web port, JSON-RPC on the shelly_udp ports
    "shelly_udp": [1010, 2220],  # where batteries poll a Shelly (Marstek: 1010, a B2500 from
                               # firmware 226 2220); [] none
    "history": True,           # keep hours, days and months of energy and the peaks in flash
                               # (history.py: three small files beside the settings)
    "update_probation_s": 300,  # a new firmware is kept once it passes a telegram on or serves
                               # the web page within this many seconds (update.py)
}

# Settings that are never shown, sent back to a browser or put in a backup: a form says only
# whether each is set. (path in the settings, as a tuple of keys)
SECRETS = (("key",), ("auth_key",), ("wifi", "password"), ("mqtt", "password"), ("web_password",))

_UART, _RX = uart_pins("ESP32")   # a plain ESP32's; the dongle puts its own chip's over them

UART_DEFAULTS = {
    "id": _UART,               # the UART for P1 (chips.py: per chip)
    "rx": _RX,                 # GPIO the P1 data line (via the level shifter) is wired to
    "request_pin": None,       # GPIO that drives the P1 data-request line high, if wired
    "baud": 115200,            # DSMR 4/5 and Luxembourg; DSMR 2.2 meters: 9600 with bits 7, parity "even"
    "bits": 8,
    "parity": None,            # None, "even" or "odd"
    "stop": 1,
    "invert": True,            # P1 is open-collector, inverted: RX inversion in the UART
    "rxbuf": 4096,             # the UART's own buffer; covers several frames while Wi-Fi is busy
}

MQTT_DEFAULTS = {
    "host": None,              # the broker's name or address (required)
    "port": 1883,
    "user": None,
    "password": None,
    "prefix": None,            # topics under this; default p1dongle/<device_id>
    "discovery_prefix": "homeassistant",   # Home Assistant discovery; "" switches it off
    "keepalive": 60,           # seconds; a broker silent for this long means a dead connection
    "queue_len": 8,            # telegrams kept while the broker is away (the newest)
}

_PORTS = ("tcp_port", "raw_port", "http_port")
_COUNTS = {"max_clients": (1, 32), "queue_len": (1, 64), "status_interval": (0, 86400),
           "max_frame": (64, 65535), "timeout_ms": (100, 600000), "update_probation_s": (10, 3600)}


# Beside the settings file: the settings that ran before the web page saved new ones, until the
# new ones have started (start.py goes back to them when the app cannot start with the new ones).
PREVIOUS = ".prev"


# The sources each target opens (its platform module's make_source): the dongle has a UART and
# no serial port; a PC (sim.py, the unix port) the reverse.
SOURCE_KINDS = {"dongle": ("uart", "tcp", "file"), "host": ("tcp", "file", "serial")}
_SOURCE_FORMS = {"uart": "uart", "tcp": "tcp:HOST:PORT", "file": "file:PATH", "serial": "serial:DEVICE[@BAUD]"}


def source_here(text, kinds):
    """ConfigError unless a target that opens `kinds` (SOURCE_KINDS) can open the source text."""
    kind = source_parts(text)[0]
    if kind not in kinds:
        raise ConfigError("source %s is not on this device; use %s" % (
            kind, ", ".join(_SOURCE_FORMS[k] for k in kinds)))


class Settings:
    """The settings as the file holds them (raw, not checked: what the web page edits), and where
    they are saved (None: kept in memory, as the simulator does unless given a file); previous:
    where a save first keeps the settings the app was started with (None: nowhere); kinds: the
    sources this target opens (SOURCE_KINDS; None: any), so that a save never keeps one it cannot."""

    def __init__(self, raw, path=None, previous=None, kinds=None):
        self.raw = raw
        self.path = path
        self.previous = previous
        self.kinds = kinds
        self._running = raw

    def save(self, raw):
        """Raises ConfigError (nothing saved) for a source this target cannot open."""
        if self.kinds is not None:
            source_here(raw.get("source") or DEFAULTS["source"], self.kinds)
        if self.path:
            if self.previous:
                save(self.previous, self._running)
            save(self.path, raw)
        self.raw = raw


def load(path):
    return check(read(path))


def read(path, missing_ok=False):
    """The settings file as it is (not checked); {} for a missing one when missing_ok (a dongle's
    first start: its web page asks for the settings). Raises ConfigError."""
    try:
        with open(path) as f:
            text = f.read()
    except OSError:
        if missing_ok:
            return {}
        raise ConfigError("no config file %s: write one with tools/flash.py config" % path)
    except UnicodeError:
        raise ConfigError("config file %s is not text (UTF-8 JSON)" % path)
    try:
        return loads(text)
    except ValueError:
        raise ConfigError("config file %s is not valid JSON" % path)
    except ConfigError as e:
        raise ConfigError("config file %s: %s" % (path, e))


DEPTH = 2       # settings nest no deeper: {"mqtt": {"host": ...}}


def loads(text):
    """Settings as JSON text (a file, a web page's change) -> their value. Raises ValueError when
    it is not JSON, ConfigError when it nests deeper than settings do: a parser recurses into
    each level, and 2000 nested arrays would make it run out of stack (RecursionError) or, on the
    dongle, of heap, long before the settings' own checks could say what is wrong."""
    depth = 0
    quoted = False
    escaped = False
    for c in text:
        if quoted:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == '"':
                quoted = False
        elif c == '"':
            quoted = True
        elif c == "[" or c == "{":
            depth += 1
            if depth > DEPTH:
                raise ConfigError("settings nest at most %d levels deep, e.g. {\"mqtt\": {\"host\": ...}}" % DEPTH)
        elif c == "]" or c == "}":
            depth -= 1
    return json.loads(text)


def check(raw):
    """A dict of settings -> the complete settings, keys as bytes. Raises ConfigError."""
    cfg = _merge(raw, DEFAULTS, "config must be a JSON object", "unknown setting")
    for name in ("key", "auth_key"):
        if cfg[name] is not None and not isinstance(cfg[name], str):
            raise ConfigError("%s must be a string of 32 hex digits" % name)
    cfg["key"] = parse_key(cfg["key"], "key") if cfg["key"] else None
    cfg["auth_key"] = auth_key(cfg["auth_key"])
    prof = meters.profile(cfg["meter"]) if isinstance(cfg["meter"], str) else None
    if prof is None:
        raise ConfigError("meter %s is not known; meter must be one of: %s" % (
            json.dumps(cfg["meter"]), ", ".join(meters.names())))
    cfg["layout"] = prof[4]
    for name in _PORTS:
        if name != "http_port" or cfg[name] is not None:
            _int(cfg, name, 0, 65535)
    for name in _COUNTS:
        _int(cfg, name, _COUNTS[name][0], _COUNTS[name][1])
    if cfg["raw_port"] and cfg["raw_port"] == cfg["tcp_port"]:
        raise ConfigError("raw_port and tcp_port must differ")
    if cfg["http_port"] and cfg["http_port"] in (cfg["tcp_port"], cfg["raw_port"]):
        raise ConfigError("http_port must differ from tcp_port and raw_port")
    if cfg["web_password"] is not None and not isinstance(cfg["web_password"], str):
        raise ConfigError("web_password must be a string")
    if cfg["led_pin"] is not None:
        _int(cfg, "led_pin", 0, 48)
    for name in ("web_private", "mdns", "shelly", "history"):
        if not isinstance(cfg[name], bool):
            raise ConfigError("%s must be true or false" % name)
    ports = cfg["shelly_udp"]
    if not isinstance(ports, list) or len(ports) > 4 or not all(
            isinstance(p, int) and not isinstance(p, bool) and 0 < p < 65536 for p in ports):
        raise ConfigError("shelly_udp must be a list of up to 4 UDP ports, e.g. [1010, 2220]")
    if not _ipv4(cfg["host"]):
        raise ConfigError("host must be an IPv4 address of the dongle, e.g. 0.0.0.0 (every interface)")
    source_parts(cfg["source"])
    if not isinstance(cfg["replay_check"], bool):
        raise ConfigError("replay_check must be true or false")
    wifi = cfg["wifi"]
    if wifi is not None and (not isinstance(wifi, dict) or not isinstance(wifi.get("ssid"), str)
                             or not isinstance(wifi.get("password", ""), str)):
        raise ConfigError('wifi must be {"ssid": "...", "password": "..."}')
    cfg["uart"] = _uart(cfg["uart"] or {}, prof)
    if cfg["led_pin"] is not None and cfg["led_pin"] in (cfg["uart"]["rx"], cfg["uart"]["request_pin"]):
        raise ConfigError("led_pin must differ from the UART's rx and request_pin (blinking would be the meter's line)")
    if not _name(cfg["device_id"], 1, 64, "/+#"):
        raise ConfigError("device_id must be a name of 1 to 64 characters without / + # or control characters")
    if cfg["mqtt"] is not None:
        cfg["mqtt"] = _mqtt(cfg["mqtt"], cfg["device_id"])
    return cfg


def _mqtt(raw, device_id):
    m = _merge(raw, MQTT_DEFAULTS, 'mqtt must be {"host": "...", ...}', "unknown mqtt setting")
    if not isinstance(m["host"], str) or not m["host"]:
        raise ConfigError("mqtt host must be the broker's name or address")
    _int(m, "port", 1, 65535, "mqtt ")
    _int(m, "keepalive", 5, 3600, "mqtt ")
    _int(m, "queue_len", 1, 64, "mqtt ")
    for name in ("user", "password", "prefix"):
        if m[name] is not None and not isinstance(m[name], str):
            raise ConfigError("mqtt %s must be a string" % name)
    for name in ("prefix", "discovery_prefix"):
        if m[name] is not None and not _name(m[name], 0, 128, "+#"):
            raise ConfigError("mqtt %s must be topic levels without + # or control characters" % name)
    if not isinstance(m["discovery_prefix"], str):
        raise ConfigError("mqtt discovery_prefix must be a string")
    if not m["prefix"]:
        m["prefix"] = "p1dongle/" + device_id
    return m


SOURCES = "uart, tcp:HOST:PORT, file:PATH or serial:DEVICE[@BAUD]"


def source_parts(text):
    """The source setting -> (kind, where, number): ("uart", None, None), ("tcp", HOST, PORT),
    ("file", PATH, None) or ("serial", DEVICE, BAUD or None). Raises ConfigError. Which kinds a
    target has is for its platform's make_source to say (uart on the dongle, serial on a PC)."""
    if not _name(text, 1, 256, ""):
        raise ConfigError("source must be " + SOURCES)
    colon = text.find(":")
    kind, rest = (text[:colon], text[colon + 1:]) if colon >= 0 else (text, None)
    if kind == "uart" and rest is None:
        return kind, None, None
    rest = rest or ""           # "tcp" alone: tcp's own line says what it needs
    if kind == "tcp":
        colon = rest.rfind(":")
        host, port = rest[:max(colon, 0)], rest[colon + 1:]
        if not host or " " in host or not _number(port, 1, 65535):
            raise ConfigError("source tcp: needs HOST:PORT (PORT 1 to 65535), e.g. tcp:192.168.1.15:23")
        return kind, host, int(port)
    if kind == "file":
        if not rest:
            raise ConfigError("source file: needs a PATH, e.g. file:capture.bin")
        return kind, rest, None
    if kind == "serial":
        at = rest.find("@")
        device, baud = (rest[:at], rest[at + 1:]) if at >= 0 else (rest, None)
        if not device or baud is not None and not _number(baud, 300, 921600):
            raise ConfigError("source serial: needs DEVICE[@BAUD] (BAUD 300 to 921600), e.g. serial:/dev/ttyUSB0@115200")
        return kind, device, int(baud) if baud else None
    raise ConfigError("source must be " + SOURCES)


def _number(text, lo, hi):
    # ASCII digits only: CPython's isdigit() and int() take other scripts' digits, MicroPython not
    return 0 < len(text) <= 6 and all("0" <= c <= "9" for c in text) and lo <= int(text) <= hi


def _ipv4(text):
    """A dotted quad: what the dongle's sockets bind to (no name to look up, no IPv6)."""
    if not isinstance(text, str):
        return False
    parts = text.split(".")
    return len(parts) == 4 and all(_number(p, 0, 255) and len(p) <= 3 for p in parts)


def _name(text, lo, hi, forbidden):
    """A string of lo to hi characters, none of them in forbidden (for an MQTT topic: + #) nor a
    control character or a UTF-16 surrogate (which MQTT brokers refuse, and no name or path has)."""
    if not isinstance(text, str) or not lo <= len(text) <= hi:
        return False
    for c in text:
        n = ord(c)
        if n < 0x20 or 0x7F <= n <= 0x9F or 0xD800 <= n <= 0xDFFF or c in forbidden:
            return False
    return True


def auth_key(text):
    """The authentication key setting: unset -> Luxembourg's; "none" -> None (key-only mode)."""
    if not text:
        return LUX_AUTH_KEY
    if text.strip().lower() == "none":
        return None
    return parse_key(text, "auth_key")


def _uart(raw, prof):
    defaults = dict(UART_DEFAULTS)
    defaults["baud"], defaults["bits"], defaults["parity"], defaults["stop"] = prof[0], prof[1], prof[2], prof[3]
    u = _merge(raw, defaults, "uart must be a JSON object", "unknown uart setting")
    _int(u, "id", 0, 2, "uart ")
    _int(u, "baud", 300, 921600, "uart ")
    _int(u, "bits", 7, 8, "uart ")
    _int(u, "stop", 1, 2, "uart ")
    _int(u, "rx", 0, 48, "uart ")
    _int(u, "rxbuf", 256, 65536, "uart ")
    if u["parity"] not in (None, "even", "odd"):
        raise ConfigError('uart parity must be null, "even" or "odd"')
    if u["request_pin"] is not None:
        _int(u, "request_pin", 0, 48, "uart ")
    if not isinstance(u["invert"], bool):
        raise ConfigError("uart invert must be true or false")
    return u


def _merge(raw, defaults, not_object, unknown):
    """defaults overlaid with raw; a name not in defaults is a typo worth saying."""
    if not isinstance(raw, dict):
        raise ConfigError(not_object)
    out = dict(defaults)
    for name in raw:
        if name not in defaults:
            raise ConfigError("%s %r (known: %s)" % (unknown, name, ", ".join(sorted(defaults))))
        out[name] = raw[name]
    return out


def _int(cfg, name, lo, hi, where=""):
    v = cfg[name]
    if not isinstance(v, int) or isinstance(v, bool) or not lo <= v <= hi:
        raise ConfigError("%s%s must be a whole number from %d to %d" % (where, name, lo, hi))


# -- the settings as the web page edits them ------------------------------------------------------

def _get(raw, path):
    for name in path:
        if not isinstance(raw, dict) or name not in raw:
            return None
        raw = raw[name]
    return raw


def public(raw):
    """The settings without their secrets (for a browser, or a backup to download), and which of
    the secrets are set: (settings, {"key": True, "wifi.password": False, ...})."""
    out = json.loads(json.dumps(raw))           # a deep copy: the caller's stays whole
    have = {}
    for path in SECRETS:
        have[".".join(path)] = bool(_get(raw, path))
        parent = _get(out, path[:-1]) if len(path) > 1 else out
        if isinstance(parent, dict):
            parent.pop(path[-1], None)
    return out, have


def edit(raw, changes):
    """The settings with changes made (both as in the file): a value replaces, null removes (the
    default applies), a section (wifi, mqtt, uart) is edited setting by setting; a secret given
    empty stays as it was, so that a form can leave it alone. Raises ConfigError when the result
    is not valid settings (check() says why); raw itself is never changed."""
    if not isinstance(changes, dict):
        raise ConfigError("settings must be a JSON object")
    out = json.loads(json.dumps(raw))
    for name in changes:
        value = changes[name]
        if isinstance(value, dict) and name in ("wifi", "mqtt", "uart"):
            section = out.get(name) if isinstance(out.get(name), dict) else {}
            for sub in value:
                _set(section, sub, value[sub], (name, sub) in SECRETS)
            out[name] = section if section else None
            if out[name] is None:
                out.pop(name)
        else:
            _set(out, name, value, (name,) in SECRETS)
    check(out)
    return out


def _set(d, name, value, secret):
    if secret and value == "":
        return                                  # left empty in a form: as it was
    if value is None:
        d.pop(name, None)
    else:
        d[name] = value


def restore(raw, backup):
    """The settings from a backup (which has no secrets): every setting as the backup says, the
    secrets as they are now. Raises ConfigError."""
    if not isinstance(backup, dict):
        raise ConfigError("a backup must be a JSON object of settings")
    out = json.loads(json.dumps(backup))
    for path in SECRETS:
        value = _get(raw, path)
        if value and _get(out, path) is None:
            if len(path) == 1:
                out[path[0]] = value
            elif isinstance(out.get(path[0]), dict):
                out[path[0]][path[1]] = value
    check(out)
    return out


def save(path, raw):
    """Write a JSON file (the settings, the update record) whole or not at all: a power cut
    mid-way leaves the old one."""
    import os
    tmp = path + ".new"
    with open(tmp, "w") as f:
        f.write(json.dumps(raw))
    os.rename(tmp, path)
