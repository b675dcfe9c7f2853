# The DSMR telegram decoder (dsmr.check, dsmr.parse, dsmr.read into state.Writer) and the JSON
# writers (state.py), with what MQTT and the local API make of a telegram.
#
# Input: a telegram, as it comes. dsmr.check reads it as it comes; then it is read with a CRC
# that fits (what the pipeline passes on), so that the fuzzer's changes to the lines reach the
# parser and the writers without it having to find CRCs: the text up to its last '!' (or all of
# it, and a '!') with its CRC-16/ARC appended; one that ends with a bare '!' stays a DSMR 2/3
# telegram.
# Oracles:
#   - check says what the telegram's end says, by the format (oracles.crc_verdict): True for a
#     CRC that matches (computed here), False for a bare '!', CrcError for one that does not
#     match, TelegramError for no telegram; nothing else
#   - parse raises nothing for text that starts with '/' (TelegramError for what does not);
#     its readings are made of numbers (mantissa, exponent, unit[, time]), text and lists
#   - the state JSON is JSON, the same bytes written from the text (telegram_json: dsmr.read
#     into a Writer) and from the readings (state_json), and each number in it is the reading's
#     own digits (mantissa and exponent, as the README promises)
#   - discovery configs, HomeWizard's data and the state MQTT sends are JSON (oracles.Outputs)
import json
from decimal import Decimal

import oracles
import seeds as corpus
from common import Finding, expect
from p1dongle import dsmr, state
from p1dongle.errors import CrcError, TelegramError

DECLARED = ()
MAX_LEN = 4096
_VERDICT = {True: "crc", False: "none"}


def with_crc(data):
    """The telegram with a CRC that fits (see the top)."""
    end = data.rstrip(b"\r\n\x00 ")
    if end.endswith(b"!"):
        return end + b"\r\n"
    bang = data.rfind(b"!")
    body = data[:bang + 1] if bang > 0 else data + b"\r\n!"
    return body + b"%04X\r\n" % oracles.crc16_arc(body)


def check(data):
    oracles.fresh()
    _check(data)
    t = with_crc(data)
    _check(t)
    try:
        readings = dsmr.parse(t)
    except TelegramError:
        expect(t[:1] != b"/", "parse", "parse raised TelegramError for text that starts with '/'")
        return
    _readings(readings)
    _json(t, readings)
    oracles.Outputs().telegram(t, None, readings)


def _check(t):
    want = oracles.crc_verdict(t)
    try:
        got = _VERDICT[dsmr.check(t)]
    except CrcError:
        got = "wrong"
    except TelegramError:
        got = None
    expect(got == want, "check", "dsmr.check says %s, the telegram's end says %s: ...%r" % (got, want, t[-12:]),
           str(want))


def _readings(readings):
    for row, value in readings:
        expect(isinstance(row, tuple) and isinstance(row[1], str), "readings", "a row that is no row: %r" % (row,))
        _value(value)


def _value(v):
    if isinstance(v, tuple):
        expect(len(v) in (3, 4) and type(v[0]) is int and type(v[1]) is int and (v[2] is None or isinstance(v[2], str))
               and (len(v) == 3 or v[3] is None or isinstance(v[3], str)), "readings", "a malformed number %r" % (v,))
    elif isinstance(v, list):
        for x in v:
            _value(x)
    else:
        expect(isinstance(v, str), "readings", "a value of type %s" % type(v).__name__)


def _json(t, readings):
    text = state.telegram_json(t, state.Writer())
    oracles.document(text, "the state JSON", "state")
    again = state.state_json(readings, state.Writer())
    if bytes(again) != bytes(text):
        raise Finding("same", "the state JSON from the readings differs from the one written from the "
                      "text: %r vs %r" % (_diff(again, text)))
    numbers(text, readings)


def numbers(text, readings):
    """Each number reading whose name is not repeated is in the JSON (parsed exactly) with its
    own mantissa and exponent."""
    exact = json.loads(bytes(text).decode("utf-8", "replace"), parse_float=Decimal, parse_int=Decimal)
    names = [row[1] for row, _ in readings]
    for row, value in readings:
        name = row[1]
        if names.count(name) != 1 or not isinstance(value, tuple):
            continue
        want = Decimal("%dE%d" % (value[0], value[1]))
        got = exact.get(name)
        if not isinstance(got, Decimal) or got != want:
            raise Finding("number", "%s is %r in the JSON, the reading says %s" % (name, got, want))


def _diff(a, b):
    a, b = bytes(a), bytes(b)
    i = 0
    while i < min(len(a), len(b)) and a[i] == b[i]:
        i += 1
    return a[max(0, i - 30):i + 30], b[max(0, i - 30):i + 30]


def seeds():
    return corpus.telegrams()
