# The readings in a DLMS data-notification (what Austrian meters push), as readings (reading.py).
#
#   0F <long-invoke-id-and-priority: 4> <date-time: 00 | 0C + 12 bytes> <body: A-XDR data>
#
# The body is tagged A-XDR data (a structure of OBIS codes, values and scaler/unit structures, in
# the layouts below). decode() flattens it into leaves; readings() reads the leaves in one of two
# layouts:
#   with OBIS codes (Netz NOE, TINETZ, Salzburg, Kaifa, Sagemcom, E450...):
#       09 06 <OBIS: 6 bytes>  <value>  [02 02 0F <scaler: int8> 16 <unit: enum>]  ...
#     a value without its own scaler/unit gets the one its OBIS row (obis.py) names
#   compact, without OBIS codes (Wiener Netze, Linz, Wels: Siemens IM350, Iskra AM550):
#       [<date-time>] <+A Wh> <-A Wh> <+R varh> <-R varh> <+P W> <-P W> [<+Q var> <-Q var>]
#     unsigned numbers in this fixed order (COMPACT)
# Each reading is (row, value) as the telegram parser makes them: numbers as (mantissa, exponent,
# unit) in DSMR units (Wh -> kWh is an exponent shift), octet strings as text, the clock as ISO
# 8601. Integers throughout: the dongle's floats are single precision and an energy register has
# more digits than they hold.
from . import obis
from .errors import FrameError

# DLMS unit enumeration (IEC 62056-62) -> (DSMR unit, extra decimal exponent): the DSMR habit is
# kWh, kW, kvarh, kvar, kVA, V, A.
UNITS = {
    27: ("kW", -3), 28: ("kVA", -3), 29: ("kvar", -3), 30: ("kWh", -3), 31: ("kVAh", -3),
    32: ("kvarh", -3), 33: ("A", 0), 35: ("V", 0), 44: ("Hz", 0), 255: (None, 0),
}
W, WH, VAR, VARH, VOLT, AMP, NONE = 27, 30, 29, 32, 35, 33, 255

# The compact layout, in order.
COMPACT = (
    ("1-0:1.8.0", WH), ("1-0:2.8.0", WH), ("1-0:3.8.0", VARH), ("1-0:4.8.0", VARH),
    ("1-0:1.7.0", W), ("1-0:2.7.0", W), ("1-0:3.7.0", VAR), ("1-0:4.7.0", VAR),
)

# A-XDR type tags -> size of fixed-size integers; signed ones are listed in _SIGNED
_INT_SIZE = {0x03: 1, 0x05: 4, 0x06: 4, 0x0F: 1, 0x10: 2, 0x11: 1, 0x12: 2, 0x14: 8, 0x15: 8, 0x16: 1}
_SIGNED = (0x05, 0x0F, 0x10, 0x14)
_STRINGS = (0x09, 0x0A, 0x0C, 0x0D)
_INT, _STR, _SCALE = 0, 1, 2          # leaf kinds


class Notification:
    def __init__(self):
        self.clock = None       # 12-byte DLMS date-time: the meter's clock if sent, else the header's
        self.leaves = []        # (kind, value[, unit]) in order

    def readings(self, layout="auto"):
        """The readings: [(row, value)] as reading.py describes them; the meter's time first."""
        if layout == "compact" or (layout == "auto" and not self._has_obis()):
            out = self._compact()
        else:
            out = self._with_obis()
        stamp = iso_time(self.clock)
        if stamp and not _named(out, "powerTs"):
            out.insert(0, (obis.row("0-0:1.0.0"), stamp))
        return out

    def _has_obis(self):
        for leaf in self.leaves:
            if _is_obis(leaf):
                return True
        return False

    def _with_obis(self):
        out = []  # type: list
        leaves = self.leaves
        i = 0
        while i < len(leaves):
            leaf = leaves[i]
            i += 1
            if not _is_obis(leaf) or i >= len(leaves):
                if leaf[0] == _STR and i == len(leaves) and _printable(leaf[1]) and not _named(out, "meterNumber"):
                    # A last string without a code: the meter number (Netz NOE's layout).
                    out.append((obis.row("0-0:96.1.0"), _string(leaf[1])))
                continue
            row = _row(leaf[1])
            value = leaves[i]
            i += 1
            if value[0] == _STR:
                if len(value[1]) == 12 and row[obis.KIND] == obis.TIME:
                    self.clock = value[1]       # 0-0:1.0.0, the meter's clock: better than the header's
                    out.append((row, iso_time(value[1]) or _string(value[1])))
                else:
                    out.append((row, _string(value[1])))
                continue
            if value[0] != _INT:
                continue
            if i < len(leaves) and leaves[i][0] == _SCALE:
                scaler, unit = leaves[i][1], leaves[i][2]
                i += 1
            else:
                scaler, unit = row[obis.DLMS] or (0, NONE)
            out.append((row, _scaled(value[1], scaler, unit)))
        return out

    def _compact(self):
        numbers = [leaf[1] for leaf in self.leaves if leaf[0] == _INT]
        if len(numbers) not in (6, 8):
            raise FrameError("data-notification without OBIS codes and %d numbers: not a known layout"
                             % len(numbers))
        for leaf in self.leaves:
            if leaf[0] == _STR and len(leaf[1]) == 12:
                self.clock = leaf[1]        # the reading's own time stamp: better than the header's
                break
        return [(obis.row(COMPACT[k][0]), _scaled(numbers[k], 0, COMPACT[k][1])) for k in range(len(numbers))]


def _row(code):
    # The OBIS table's row for a 6-byte OBIS code, by its key (obis.key) when it has one.
    if code[0] <= 7 and code[1] <= 7:
        return obis.by_key((((code[0] * 8 + code[1]) * 256 + code[2]) * 256 + code[3]) * 256 + code[4])
    return obis.row("%d-%d:%d.%d.%d" % (code[0], code[1], code[2], code[3], code[4]))


def _printable(b):
    for c in b:
        if c < 0x20 or c > 0x7E:
            return False
    return len(b) > 0


def _named(readings, name):
    for r in readings:
        if r[0][obis.NAME] == name:
            return True
    return False


def _string(b):
    """An octet string as text: as it reads when it is printable ASCII, else its hex digits."""
    if _printable(b):
        return bytes(b).decode()
    return "".join("%02X" % c for c in b)


def iso_time(dt):
    """A 12-byte DLMS date-time -> ISO 8601 with its UTC offset, or None when it is no usable time.
    The offset is the deviation the meter sends (minutes from local time to UTC, so CET is -60);
    when it sends none (0x8000), CET/CEST by the daylight-saving bit, as DSMR assumes."""
    if dt is None or len(dt) != 12:
        return None
    year = (dt[0] << 8) | dt[1]
    if year == 0xFFFF or not 1 <= dt[2] <= 12 or not 1 <= dt[3] <= 31 or dt[5] > 23 or dt[6] > 59 or dt[7] > 59:
        return None
    deviation = (dt[9] << 8) | dt[10]
    if deviation == 0x8000:
        offset = 120 if dt[11] & 0x80 else 60
    else:
        offset = -(deviation - 0x10000 if deviation & 0x8000 else deviation)
    sign = "-" if offset < 0 else "+"
    offset = -offset if offset < 0 else offset
    return "%04d-%02d-%02dT%02d:%02d:%02d%s%02d:%02d" % (
        year, dt[2], dt[3], dt[5], dt[6], dt[7], sign, offset // 60, offset % 60)


def _is_obis(leaf):
    # An OBIS code as pushed: 6 bytes, medium A 0 (abstract) or 1 (electricity), F = 255.
    return leaf[0] == _STR and len(leaf[1]) == 6 and leaf[1][0] <= 1 and leaf[1][5] == 0xFF


def _scaled(mantissa, scaler, unit):
    shown, extra = UNITS.get(unit, (None, 0))
    return (mantissa, scaler + extra, shown)


def decode(apdu, n=-1):
    """Parse a data-notification in apdu[0:n] into a Notification. Raises FrameError."""
    if n < 0:
        n = len(apdu)
    if n < 7 or apdu[0] != 0x0F:
        raise FrameError("not a DLMS data-notification (expected 0F)")
    note = Notification()
    i = 5                               # after the tag and the long invoke id
    b = apdu[i]
    if b == 0x09 and i + 1 < n and apdu[i + 1] == 0x0C:   # some meters tag it as octet-string
        i += 1
        b = 0x0C
    if b == 0x0C:
        if i + 13 > n:
            raise FrameError("data-notification cut short in its date-time")
        note.clock = bytes(apdu[i + 1:i + 13])
        i += 13
    elif b == 0x00:
        i += 1
    else:
        raise FrameError("data-notification date-time of length %d" % b)
    i = _data(apdu, i, n, note.leaves, 0)
    return note


def _length(apdu, i, n):
    # BER-style length: n | 81 n | 82 hi lo; returns (length, index after it)
    if i >= n:
        raise FrameError("data-notification cut short")
    b = apdu[i]
    if b < 0x80:
        return b, i + 1
    if b == 0x81 and i + 1 < n:
        return apdu[i + 1], i + 2
    if b == 0x82 and i + 2 < n:
        return (apdu[i + 1] << 8) | apdu[i + 2], i + 3
    raise FrameError("data-notification: bad length 0x%02X" % b)


def _data(apdu, i, n, leaves, depth):
    """Decode one A-XDR data item at apdu[i]; append its leaves; return the index after it."""
    if i >= n:
        raise FrameError("data-notification cut short")
    if depth > 8:
        raise FrameError("data-notification nested too deep")
    tag = apdu[i]
    i += 1
    if tag == 0x01 or tag == 0x02:          # array, structure
        count, i = _length(apdu, i, n)
        if (tag == 0x02 and count == 2 and i + 4 <= n and apdu[i] == 0x0F and apdu[i + 2] == 0x16):
            s = apdu[i + 1]
            leaves.append((_SCALE, s - 256 if s > 127 else s, apdu[i + 3]))
            return i + 4
        for _ in range(count):
            i = _data(apdu, i, n, leaves, depth + 1)
        return i
    if tag in _STRINGS:
        size, i = _length(apdu, i, n)
        if i + size > n:
            raise FrameError("data-notification cut short in a string")
        leaves.append((_STR, bytes(apdu[i:i + size])))
        return i + size
    if tag == 0x19:                         # date-time, untagged length
        if i + 12 > n:
            raise FrameError("data-notification cut short in a date-time")
        leaves.append((_STR, bytes(apdu[i:i + 12])))
        return i + 12
    if tag == 0x00:                         # null-data
        return i
    size = _INT_SIZE.get(tag)
    if size is None:
        raise FrameError("data-notification: A-XDR type 0x%02X not supported" % tag)
    if i + size > n:
        raise FrameError("data-notification cut short in a number")
    v = 0
    for k in range(size):
        v = (v << 8) | apdu[i + k]
    if tag in _SIGNED and v >= 1 << (8 * size - 1):
        v -= 1 << (8 * size)
    leaves.append((_INT, v))
    return i + size
