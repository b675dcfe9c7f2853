# The oracles the harnesses share: what must hold of whatever the firmware puts out, checked
# independently of the firmware's own code where that is the point (the CRC is computed here).
#
#   telegram(t, has_crc, stream)   a CRC-16/ARC that matches (computed here), or, without one,
#                                  a telegram that came verbatim in the stream (DSMR 2/3 passed
#                                  through): a decrypted or rendered telegram always has its CRC
#   document(doc, what)            valid JSON (json.loads, strict: no raw control characters)
#   no_secret(out, secrets, what)  none of the secrets (keys as hex of either case, passwords)
#   Outputs                        what MQTT and the local API make of a telegram: the state
#                                  JSON, Home Assistant's discovery configs, HomeWizard's data,
#                                  each valid JSON; MqttOutput's memory bounded
#   fresh()                        the firmware's module-level state as at start, before each input
import json
import re

from common import Finding, expect
from p1dongle import dsmr, homewizard, obis, state
from p1dongle.jsonbuf import JsonBuffer
from p1dongle.mqttout import MqttOutput
from p1dongle.telegram import Telegram

# ---- CRC-16/ARC (reflected 0x8005, init 0), by table, written from the definition ------------

_TABLE = []
for _b in range(256):
    _c = _b
    for _ in range(8):
        _c = (_c >> 1) ^ 0xA001 if _c & 1 else _c >> 1
    _TABLE.append(_c)


def crc16_arc(data):
    crc = 0
    for b in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    return crc


_TRAILING = b"\r\n\x00 "


_DSMR23 = re.compile(rb"/[A-Za-z]{3}[0-9][^\n]*\n\r?\n")


def crc_verdict(t):
    """What a DSMR telegram's end says, by the format (dsmr.py's header): "crc" (a CRC that
    matches), "none" (a bare '!': DSMR 2/3), "wrong" (4 hex digits, or 3, that do not match), or None
    (no telegram: no "/" first, no "!" end line, or a bare "!" after text not shaped as DSMR 2/3). Up to 8 trailing CR/LF/NUL/space are allowed,
    as dsmr.check allows them."""
    t = bytes(t)
    if not t or t[:1] != b"/":
        return None
    end = len(t)
    while end > 1 and t[end - 1] in _TRAILING and len(t) - end < 8:
        end -= 1
    if t[end - 1:end] == b"!":
        # without a CRC only a DSMR 2/3 telegram's shape says it is one: '/', three letters, a
        # digit, the header line, an empty line (dsmr.py's _dsmr23_shape, written here again)
        return "none" if _DSMR23.match(t[:end - 1]) else None
    bang = end - 5                              # '!' and 4 hex digits, or 3 (a meter that
    if bang >= 1 and t[bang:bang + 1] != b"!" and t[bang + 1:bang + 2] == b"!":   # drops the CRC's
        bang += 1                                                               # leading zero)
    if bang < 1 or t[bang:bang + 1] != b"!":
        return None
    digits = t[bang + 1:end]
    if any(c not in b"0123456789abcdefABCDEF" for c in digits):
        return None
    return "crc" if int(digits, 16) == crc16_arc(t[:bang + 1]) else "wrong"


def telegram(t, has_crc, stream):
    """A telegram the pipeline passed on."""
    expect(isinstance(t, (bytes, bytearray)), "telegram", "a telegram that is no bytes: %r" % type(t))
    verdict = crc_verdict(t)
    if has_crc:
        expect(verdict == "crc", "crc", "telegram passed on with has_crc but its CRC is %s: ...%r"
               % (verdict, bytes(t[-12:])))
    else:
        expect(verdict == "none", "crc", "telegram without CRC does not end with '!': ...%r" % bytes(t[-12:]))
        # as it came, but for its line ends: dsmr.canonical writes CR LF (a meter that ends its
        # lines with LF alone, or noise that mixes them)
        expect(_lf(bytes(t)) in _lf(bytes(stream)), "crc-less", "a telegram without CRC that did not come as "
               "such in the stream (decrypted or rendered text must carry its CRC): %r..." % bytes(t[:40]))


def _lf(text):
    return text.replace(b"\r\n", b"\n")


# ---- JSON and secrets ----------------------------------------------------------------------------

def document(doc, what, tag="", kind=dict):
    """doc (bytes, memoryview or str) as parsed JSON; Finding when it is not JSON (of that kind).
    tag: which output, one word (findings of different outputs are kept apart)."""
    text = bytes(doc).decode("utf-8", "replace") if not isinstance(doc, str) else doc
    try:
        value = json.loads(text)
    except ValueError as e:
        raise Finding("json", "%s is not JSON (%s): %r" % (what, e, _around(text, e)), tag)
    if kind is not None:
        expect(isinstance(value, kind), "json", "%s is JSON but no %s" % (what, kind.__name__), tag)
    return value


def _around(text, e):
    pos = getattr(e, "pos", 0) or 0
    return text[max(0, pos - 40):pos + 40]


def secrets_of(*keys, stream=b""):
    """The forms a key may leak in: its hex digits (compared in lower case). A key the stream
    itself carries (its bytes, or its hex digits as text) is left out: echoing what came in is
    no leak."""
    return [k.hex() for k in keys if k and k not in stream and k.hex().encode() not in bytes(stream).lower()]


def no_secret(out, secrets, what):
    """None of the secrets (lower case text) in out (bytes, memoryview or str), in any case.
    (Findings are told apart by the last word of what.)"""
    if not secrets:
        return
    text = (bytes(out).decode("latin-1") if not isinstance(out, str) else out).lower()
    for s in secrets:
        expect(s.lower() not in text, "secret", "%s holds a secret (%s...)" % (what, s[:4]), what.split()[-1])


# ---- what the outputs make of a telegram ----------------------------------------------------------

class Client:
    """What MqttOutput asks of an MqttClient, recorded: the messages it would send."""

    def __init__(self):
        self.messages = []
        self.source = None
        self.connected = True

    def publish(self, topic, payload, retain=False, qos=0, latest=False, remake=None, ref=None):
        # (ref: a telegram's number in the backlog; payload is its bytes, recorded as they are now)
        self.messages.append((topic, bytes(payload.encode() if isinstance(payload, str) else payload)))

    def announce(self, source):
        self.source = source

    def announce_again(self):
        pass

    def subscribe(self, topic, on_message):
        pass


# Names MqttOutput may keep: every row of the OBIS table, and the rows obis makes for other codes
# (at most _MAX_MADE are kept; beyond them a name is kept only by whoever holds it).
NAMES_BOUND = len(obis.ROWS) + obis._MAX_MADE


class Outputs:
    """One dongle's outputs over a stream: MqttOutput (state, discovery) and the HomeWizard API."""

    def __init__(self, secrets=()):
        self.client = Client()
        self.mqtt = MqttOutput(self.client, "p1dongle/fuzz", "homeassistant", "fuzz", log=_quiet)
        self.latest = Telegram()        # the one every output reads, as in the app
        self.secrets = list(secrets)
        self._seen = set()              # telegrams whose configs and data were checked already
        self._json = JsonBuffer()       # discovery configs written as the client announces them

    def telegram(self, t, readings, parsed=None):
        """t with its readings (a DLMS meter's, made by the pipeline), or None (MQTT writes the
        state from t itself; parsed: dsmr.parse(t), when the caller has it)."""
        c = self.client
        del c.messages[:]
        self.latest.take(t, readings)
        self.mqtt.telegram(self.latest)
        if readings is not None:
            readings = self.latest.readings()   # the latest of each, as every output has them
        for topic, payload in c.messages:
            if topic.endswith("/state"):
                document(payload, "the state JSON", "state")
            no_secret(payload, self.secrets, "MQTT message " + topic)
        self._bounded()
        if t in self._seen:
            return                      # the same telegram again: the same configs and data
        self._seen.add(t)
        rendered = None
        if readings is None:
            readings = parsed if parsed is not None else dsmr.parse(t)
        else:
            end = t.find(b"\r")
            rendered = bytes(t[1:end if end > 0 else len(t)]).decode("latin-1")
        for topic, config in self.mqtt.configs(readings, rendered):
            payload = self._json.dumps(config)      # as the client announces it
            document(payload, "discovery config " + topic, "discovery")
            no_secret(payload, self.secrets, "discovery config " + topic)
        data = "".join(homewizard.pieces(readings, "ssid", -60))
        document(data, "HomeWizard's /api/v1/data", "homewizard")
        no_secret(data, self.secrets, "HomeWizard's /api/v1/data")

    def _bounded(self):
        held = max(len(self.latest._names), len(self.mqtt._announced))
        expect(held <= NAMES_BOUND, "memory", "the outputs hold %d reading names (the OBIS table and the "
               "made rows are %d): they keep what they should let go" % (held, NAMES_BOUND))


def _quiet(line):
    pass


# ---- module state ------------------------------------------------------------------------------

_OBIS = dict(obis._BY_KEY)


def fresh():
    """The firmware's module-level state as a dongle has it at start: obis's made rows, the
    shared state writer. Each input then means the same on its own as in a run of many."""
    obis._BY_KEY.clear()
    obis._BY_KEY.update(_OBIS)
    obis._MADE = 0
    state._writer[0] = None
