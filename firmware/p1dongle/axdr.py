# The readings in a DLMS data-notification (what Austrian meters push), as OBIS values with units.
#
#   0F <long-invoke-id-and-priority: 4> <date-time: 00 | 0C + 12 bytes> <body: A-XDR data>
#
# The body is tagged A-XDR data (a structure of OBIS codes, values and scaler/unit structures, in
# the layouts below). decode() flattens it into leaves; values() reads the leaves in one of two
# layouts:
#   with OBIS codes (Netz NOE, TINETZ, Salzburg, Kaifa, Sagemcom, E450...):
#       09 06 <OBIS: 6 bytes>  <value>  [02 02 0F <scaler: int8> 16 <unit: enum>]  ...
#     a value without its own scaler/unit gets the usual one for its OBIS code (DEFAULT_SCALE)
#   compact, without OBIS codes (Wiener Netze, Linz, Wels: Siemens IM350, Iskra AM550):
#       [<date-time>] <+A Wh> <-A Wh> <+R varh> <-R varh> <+P W> <-P W> [<+Q var> <-Q var>]
#     unsigned numbers in this fixed order (COMPACT)
# Each value is (OBIS "A-B:C.D.E", integer mantissa, decimal exponent, unit), or, for octet
# strings such as the meter number, (OBIS, bytes, None, None): integers throughout, because the
# dongle's floats are single precision and an energy register has more digits than they hold.
from .errors import FrameError

# DLMS unit enumeration (IEC 62056-62) -> (unit shown, extra decimal exponent): the DSMR habit is
# kWh, kW, kvarh, kvar, kVA, V, A.
UNITS = {
    27: ("kW", -3), 28: ("kVA", -3), 29: ("kvar", -3), 30: ("kWh", -3), 31: ("kVAh", -3),
    32: ("kvarh", -3), 33: ("A", 0), 35: ("V", 0), 44: ("Hz", 0), 255: ("", 0),
}
W, WH, VAR, VARH, VOLT, AMP, NONE = 27, 30, 29, 32, 35, 33, 255

# OBIS (C.D) -> (scaler, unit) for values sent without their scaler/unit structure.
DEFAULT_SCALE = {
    (1, 8): (0, WH), (2, 8): (0, WH), (3, 8): (0, VARH), (4, 8): (0, VARH),
    (1, 7): (0, W), (2, 7): (0, W), (3, 7): (0, VAR), (4, 7): (0, VAR),
    (21, 7): (0, W), (41, 7): (0, W), (61, 7): (0, W), (22, 7): (0, W), (42, 7): (0, W), (62, 7): (0, W),
    (32, 7): (-1, VOLT), (52, 7): (-1, VOLT), (72, 7): (-1, VOLT),
    (31, 7): (-2, AMP), (51, 7): (-2, AMP), (71, 7): (-2, AMP),
    (13, 7): (-3, NONE),
}

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

    def values(self, layout="auto"):
        """The readings as (OBIS, mantissa, exponent, unit) or (OBIS, bytes, None, None)."""
        if layout == "compact" or (layout == "auto" and not self._has_obis()):
            return self._compact()
        return self._with_obis()

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
                if leaf[0] == _STR and i == len(leaves) and _printable(leaf[1]) and not _named(out, "0-0:96.1.0"):
                    # A last string without a code: the meter number (Netz NOE's layout).
                    out.append(("0-0:96.1.0", leaf[1], None, None))
                continue
            code = leaf[1]
            name = "%d-%d:%d.%d.%d" % (code[0], code[1], code[2], code[3], code[4])
            value = leaves[i]
            i += 1
            if value[0] == _STR:
                if len(value[1]) == 12 and code[2] == 1 and code[3] == 0:
                    self.clock = value[1]       # 0-0:1.0.0, the meter's clock: better than the header's
                out.append((name, value[1], None, None))
                continue
            if value[0] != _INT:
                continue
            if i < len(leaves) and leaves[i][0] == _SCALE:
                scaler, unit = leaves[i][1], leaves[i][2]
                i += 1
            else:
                scaler, unit = DEFAULT_SCALE.get((code[2], code[3]), (0, NONE))
            out.append(_scaled(name, value[1], scaler, unit))
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
        return [_scaled(COMPACT[k][0], numbers[k], 0, COMPACT[k][1]) for k in range(len(numbers))]


def _printable(b):
    for c in b:
        if c < 0x20 or c > 0x7E:
            return False
    return len(b) > 0


def _named(values, name):
    for v in values:
        if v[0] == name:
            return True
    return False


def _is_obis(leaf):
    # An OBIS code as pushed: 6 bytes, medium A 0 (abstract) or 1 (electricity), F = 255.
    return leaf[0] == _STR and len(leaf[1]) == 6 and leaf[1][0] <= 1 and leaf[1][5] == 0xFF


def _scaled(name, mantissa, scaler, unit):
    shown, extra = UNITS.get(unit, ("", 0))
    return (name, mantissa, scaler + extra, shown)


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
