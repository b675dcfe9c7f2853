# DSMR telegrams: the CRC check that decides whether a telegram is passed on, and a parser that
# turns the OBIS lines into readings (reading.py: integers and exponents, never floats) for the
# JSON/MQTT outputs.
#
#   /Lux5\253663629_D            header: '/', 3-letter maker, baud digit, identification
#                                (empty line)
#   1-0:1.8.0(023949.193*kWh)    OBIS code, then one or more (value[*unit]) groups
#   ...
#   !C560                        '!' and CRC-16/ARC over '/'..'!' as 4 hex digits (any case);
#                                DSMR 2.2/3 telegrams end with a bare '!' and carry no CRC
#
# The telegram bytes are passed on as the meter sent them, but for the line ends and the CRC's
# digits, which some meters write otherwise (LF alone, 3 digits): such a telegram, once its own
# CRC checked, is written in DSMR's form (canonical()), which every reader reads (dsmr_parser,
# Home Assistant's, wants CR LF).
from array import array

from . import obis
from .compat import loops
from .errors import CrcError, TelegramError
from .tables import FAST, SKIP, SLOW
from .reading import hex_text, iso_time, number, text


def crc16(data, crc=0):
    """CRC-16/ARC of data (bytes, bytearray or memoryview); pass crc to continue a running one."""
    return loops.crc16(data, 0, len(data), crc)


_TRAILING = b"\r\n\x00 "


def _hex_value(c):
    # 0-15 for an ASCII hex digit of either case, -1 for anything else
    if 0x30 <= c <= 0x39:
        return c - 0x30
    c |= 0x20
    if 0x61 <= c <= 0x66:
        return c - 0x57
    return -1


def check(telegram, n=-1, decrypted=False):
    """True when the telegram in telegram[0:n] has the right CRC, False for one without a CRC
    (DSMR 2.2/3). n defaults to the whole buffer.

    decrypted: the text came out of a DLMS frame. Then it must carry a CRC: meters that encrypt
    speak DSMR 4 or later, which always has one, and '/' ... '!' alone proves nothing about text
    decrypted with a wrong key or from a corrupt frame without a tag (one in 65536 looks so).

    Raises CrcError when the CRC does not match and TelegramError when this is no telegram.
    Trailing CR/LF/NUL/space after the CRC are tolerated (decrypted payloads vary)."""
    if n < 0:
        n = len(telegram)
    if n == 0 or telegram[0] != 0x2F:    # '/'
        raise TelegramError("does not start with '/'")
    end = n
    while end > 1 and telegram[end - 1] in _TRAILING and n - end < 8:
        end -= 1
    if telegram[end - 1] == 0x21:       # '!': no CRC
        if decrypted:
            raise TelegramError("no CRC after '!': decrypted text must carry one (wrong key or a corrupt frame?)")
        if not _dsmr23_shape(telegram, end):
            # Nothing checks such text but its shape: '/' and '!' around line noise is no telegram.
            raise TelegramError("no CRC, and not the shape of a DSMR 2/3 telegram ('/XXX5' header, empty line)")
        return False
    bang = end - 5                      # '!' and 4 hex digits
    if bang >= 1 and telegram[bang] != 0x21 and telegram[bang + 1] == 0x21:
        bang += 1                       # 3: a meter that drops the CRC's leading zero
    if bang < 1 or telegram[bang] != 0x21:
        raise TelegramError("no '!' end line")
    sent = 0
    for i in range(bang + 1, end):
        d = _hex_value(telegram[i])
        if d < 0:
            raise TelegramError("CRC after '!' is not 4 hex digits")
        sent = (sent << 4) | d
    got = loops.crc16(telegram, 0, bang + 1, 0)
    if sent != got:
        raise CrcError("CRC mismatch: telegram says %04X, content gives %04X" % (sent, got))
    return True


def canonical(t):
    """A telegram whose CRC has checked (bytes-like), in DSMR's form: CR LF line ends and a CRC
    of 4 digits (computed again over the new text, when the meter wrote LF alone). t itself when
    it is so, as nearly every meter sends it: read where it is, nothing copied."""
    n = len(t)
    bang = n - 1
    while bang >= 0 and t[bang] != 0x21:       # the last '!'
        bang -= 1
    tail = n - bang - 1                        # the CRC's digits, what trails them not counted
    while tail and t[bang + tail] in _TRAILING:
        tail -= 1
    first = line_end(t, 0, n)                  # a meter ends all its lines alike: the first tells
    lf_alone = 0 < first < n and t[first - 1] != 0x0D
    if not lf_alone and tail in (0, 4):
        return t
    body = bytes(t[:bang + 1])
    if lf_alone:
        body = body.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    if not tail:
        return body + b"\r\n"
    return body + ("%04X\r\n" % crc16(body)).encode()


def _dsmr23_shape(t, end):
    """A DSMR 2.2/3 telegram's frame, the only proof such a telegram has: '/', the maker's three
    letters, the baud rate digit, the rest of the header line, an empty line."""
    if end < 8:
        return False
    for i in (1, 2, 3):
        c = t[i] | 0x20                 # either case
        if c < 0x61 or c > 0x7A:
            return False
    if t[4] < 0x30 or t[4] > 0x39:
        return False
    i = 5
    while i < end and t[i] != 0x0A:
        i += 1
    return i + 2 < end and (t[i + 1] == 0x0A or (t[i + 1] == 0x0D and t[i + 2] == 0x0A))


# ---- parser ----------------------------------------------------------------------------------
# What each code means, and how its value is written, is in obis.py.

_LINE = array("i", [0] * 8)     # what loops.scan_line found (one telegram is parsed at a time)


def parse(telegram):
    """A telegram (bytes, bytearray, memoryview or str) -> its readings: [(row, value)], in the
    order of its lines (reading.py says what a value is). The first is the identification line
    ("header", without the '/'). Lines it cannot read are kept as text; it raises TelegramError
    only for what is no telegram at all."""
    sink = _Readings()
    read(telegram, sink)
    return sink.out


class _Readings:
    # read()'s sink that keeps the readings
    def __init__(self):
        self.out = []

    def number(self, row, m, e, unit):
        self.out.append((row, (m, e, unit)))

    def value(self, row, value):
        self.out.append((row, value))


def read(telegram, sink):
    """Read a telegram's lines into sink, in order: sink.number(row, mantissa, exponent, unit) for
    a line that is one number (most are), sink.value(row, value) for every other reading, the
    identification line ("header") first. parse() keeps them as readings; state.py writes them
    as JSON straight away (what MQTT sends for every telegram, with no readings made on the way).
    A sink may also have lines(t, i, n, o): it takes the number lines from t[i] on itself (all at
    once, in machine code) and returns where the first line it left starts; and skip(row): True
    for a line that is not one plain number which it does not want read at all (history.py).

    The number lines are read by loops.scan_line (machine code on the dongle) straight from the
    telegram's bytes, with nothing allocated; the rest (text, several values, time stamps) are
    read from their text. Raises TelegramError for what is no telegram at all."""
    t = _as_bytes(telegram)
    if not t or t[0] != 0x2F:
        raise TelegramError("does not start with '/'")
    n = len(t)
    eol = line_end(t, 0, n)
    memo = getattr(sink, "memo", None)      # a sink that keeps lines from telegram to telegram
    skip = getattr(sink, "skip", None)      # a sink that wants only some of the other lines
    if skip is None or not skip(obis.HEADER):
        hit = _recall(memo, t, 1, eol, -1)
        sink.value(obis.HEADER, hit[1] if hit else _kept(memo, t, 1, eol, -1, text(t, 1, eol).strip()))
    o = _LINE
    scan = loops.scan_line
    rows = obis.BY_KEY
    fast = getattr(sink, "lines", None)     # a sink that takes runs of number lines itself
    i = eol + 1
    while i < n:
        if fast is not None:
            i = fast(t, i, n, o)
            if i >= n:
                break
        kind = scan(t, i, n, o)
        nxt = o[0] + 1
        if kind != SKIP:
            k = o[2]
            r = rows.get(k) if k >= 0 else None
            if r is None:
                r = obis.by_key(k) if k >= 0 else obis.row(text(t, i, o[1]).strip())
            rkind = r[obis.KIND]
            if kind == FAST and rkind == obis.NUM:
                stop = o[6]
                close = o[3]
                unit = None
                if stop != close:
                    u = r[obis.UNIT]
                    unit = u if u is not None and loops.same(t, stop + 1, close, u) else text(t, stop + 1, close)
                sink.number(r, o[4], -o[5], unit)
            else:
                while kind == SLOW and nxt < n and t[nxt] == 0x28:     # continuation lines: '(...)'
                    nxt = line_end(t, nxt, n) + 1
                if skip is not None and skip(r):
                    i = nxt
                    continue                                # a line this sink does not want
                # (a line without a code of its own is read every time: its key, -1, is the header's)
                kept = memo if k >= 0 else None
                hit = _recall(kept, t, i, nxt - 1, k)
                if hit:
                    sink.value(r, hit[1])                   # the same line as last time
                elif kind != SLOW and rkind <= obis.TIME:
                    # one group (text, an identifier, a time, or a number the scanner leaves to us)
                    sink.value(r, _kept(kept, t, i, nxt - 1, k, _one(r, text(t, o[1] + 1, o[3]))))
                else:
                    groups = []  # type: list
                    _groups(text(t, o[1], o[0]).strip(), 0, groups)
                    e = o[0] + 1
                    while e < nxt:
                        f = line_end(t, e, n)
                        _groups(text(t, e, f).strip(), 0, groups)
                        e = f + 1
                    sink.value(r, _kept(kept, t, i, nxt - 1, k, _value(r, groups)))
        i = nxt


MEMO_KEPT = 8       # lines a sink's memo keeps (a telegram's few text lines; never grows with noise)
_CHANGING = (None, None)    # a line that changed: read every time


def _recall(memo, t, start, end, k):
    # (line, value) read from this very line (t[start:end], code k) in an earlier telegram: most
    # text lines (the header, ids, limits, empty messages) never change, and reading them again
    # was most of what a telegram's JSON cost on the dongle. The line is compared, not trusted.
    if memo is None:
        return None
    hit = memo.get(k)
    if hit is not None and hit[0] is not None and loops.same(t, start, end, hit[0]):
        return hit
    return None


def _kept(memo, t, start, end, k, value):
    # value, remembered with its line for _recall; a line that changed (a time) is not again
    if memo is not None:
        if k in memo:
            memo[k] = _CHANGING
        elif len(memo) < MEMO_KEPT:
            memo[k] = (bytes(t[start:end]), value)
    return value


_CLOCK = obis.key("0-0:1.0.0")


def clock_at(telegram, most=6):
    """Where the meter's clock (0-0:1.0.0: YYMMDDhhmmssX) is in a DSMR telegram: the index of its
    first digit, or -1 when none of the first `most` lines is it (DSMR writes it third). No other
    line is read, and on the dongle nothing is allocated: history.py looks at it in every telegram."""
    t = _as_bytes(telegram)
    n = len(t)
    o = _LINE
    i = line_end(t, 0, n) + 1
    while i < n and most > 0:
        if loops.scan_line(t, i, n, o) != SKIP and o[2] == _CLOCK:
            return o[1] + 1 if o[3] - o[1] > 12 else -1
        i = o[0] + 1
        most -= 1
    return -1


def line_end(t, i, n):
    """Where the line from t[i] ends: its LF, or n (t may be a memoryview: no find())."""
    while i < n and t[i] != 0x0A:
        i += 1
    return i


def _as_bytes(telegram):
    # a telegram is read where it is (on the dongle a view of the backlog's bytes: not copied)
    if isinstance(telegram, (bytes, bytearray)) or (loops.VIEWS and isinstance(telegram, memoryview)):
        return telegram
    if isinstance(telegram, str):
        return telegram.encode()
    return bytes(telegram)


def _groups(line, i, out):
    # "(a)(b*c)" -> out += ["a", "b*c"]; values never contain parentheses.
    n = len(line)
    while i < n and line[i] == "(":
        j = line.find(")", i)
        if j < 0:
            return
        out.append(line[i + 1:j])
        i = j + 1


def _number(group):
    """'023949.193*kWh' -> (23949193, -3, 'kWh'), '00016' -> (16, 0, None); the group itself as
    text when it is not a number."""
    star = group.find("*")
    if star >= 0:
        v = number(group[:star])
        return group if v is None else (v[0], v[1], group[star + 1:])
    v = number(group)
    return group if v is None else (v[0], v[1], None)


def _one(r, group):
    kind = r[obis.KIND]
    if kind == obis.HEX:
        return hex_text(group)
    if kind == obis.TEXT or not group:
        return group
    if kind == obis.TIME:
        return iso_time(group) or group
    return _number(group)


def _value(r, groups):
    kind = r[obis.KIND]
    n = len(groups)
    if kind == obis.HEX and n == 1:
        return hex_text(groups[0])
    if kind == obis.TEXT and n == 1:
        return groups[0]
    if kind == obis.TIME and n == 1:
        return iso_time(groups[0]) or groups[0]
    if kind == obis.LOG:
        return _failure_log(groups)
    if kind == obis.PEAKS:
        return _peaks(groups)
    if kind == obis.GAS22 and n >= 7:
        v = number(groups[6])
        if v is None:
            return groups[6]
        return (v[0], v[1], groups[5] or None, iso_time(groups[0]) or groups[0])
    if n == 1:
        return _number(groups[0])
    stamp = iso_time(groups[0]) if n == 2 else None
    if stamp is not None:
        v = _number(groups[1])           # a value with its own time stamp: gas, monthly peak
        if isinstance(v, tuple):
            return (v[0], v[1], v[2], stamp)
        return [stamp, v]
    if not n:
        return ""
    return [_number(g) for g in groups]


def _failure_log(groups):
    # (count)(0-0:96.7.19)(end time)(duration*s)...: [[ISO end time, (seconds, 0, "s")], ...]
    events = []
    i = 2
    while i + 1 < len(groups):
        events.append([iso_time(groups[i]) or groups[i], _number(groups[i + 1])])
        i += 2
    return events


def _peaks(groups):
    # (count)(1-0:1.6.0)(1-0:1.6.0) then per month (start)(time of the peak)(value*kW):
    # [[ISO start, ISO time, (mantissa, exponent, "kW")], ...]
    out = []
    i = 3
    while i + 2 < len(groups):
        out.append([iso_time(groups[i]) or groups[i], iso_time(groups[i + 1]) or groups[i + 1],
                    _number(groups[i + 2])])
        i += 3
    return out
