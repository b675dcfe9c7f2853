# What every layout reads with: DLMS units, the A-XDR items' helpers (axdr.py gives the items),
# and the rows of OBIS codes (obis.py).
from .. import obis
from ..axdr import ARRAY, INT, STR, STRUCT, describe
from ..dlmstime import iso_time  # noqa: F401 - the layouts' clock, from the one DLMS time reader
from ..errors import FrameError
from ..reading import hex_digits


class LayoutError(FrameError):
    """A data-notification whose value layout is not known: no telegram, one line."""


# the DLMS units the families name (obis.DLMS_UNITS)
W, VA, VAR, WH, VAH, VARH, AMP, VOLT, HZ, M3, NONE = 27, 28, 29, 30, 31, 32, 33, 35, 44, 14, 255

SCALE = 6                       # a leaf of flatten: (SCALE, scaler, unit)


def flatten(item, out):
    """The leaves of an item in order; a structure {integer, enum} is one scaler-unit leaf."""
    kind = item[0]
    if kind == ARRAY or kind == STRUCT:
        sub = item[1]
        if is_scaler_unit(item):
            out.append((SCALE, sub[0][1], sub[1][1]))
            return
        for x in sub:
            flatten(x, out)
    else:
        out.append(item)


def leaves(body):
    out = []  # type: list
    flatten(body, out)
    return out


def is_scaler_unit(item):
    # A scaler-unit as DLMS defines it: structure {integer (int8, -128..127), enum}. A scaler of
    # another type (a double-long: 2**31) is none: it would make a reading's exponent.
    if item[0] != STRUCT or len(item[1]) != 2:
        return False
    scaler, unit = item[1]
    return scaler[0] == INT and scaler[2] == 0x0F and unit[0] == INT and unit[2] == 0x16


def item(items, k, kind, what):
    """The value of items[k] (bytes of a string, a number) when it is of that kind (STR, INT);
    else LayoutError, one line naming the item and what the push had there."""
    if k >= len(items):
        raise LayoutError("%s: item %d missing" % (what, k))
    it = items[k]
    if it[0] != kind:
        raise LayoutError("%s: item %d is %s, not %s" % (what, k, describe(it),
                                                          "a string" if kind == STR else "a number"))
    return it[1]


def string_at(items, k, what):
    return item(items, k, STR, what)


def int_at(items, k, what):
    return item(items, k, INT, what)


def is_obis(leaf):
    # An OBIS code as pushed: 6 bytes, medium A 0 (abstract) or 1 (electricity), F = 255.
    return leaf[0] == STR and len(leaf[1]) == 6 and leaf[1][0] <= 1 and leaf[1][5] == 0xFF


def code_text(code):
    """A 6-byte OBIS code as text, A-B:C.D.E."""
    return "%d-%d:%d.%d.%d" % (code[0], code[1], code[2], code[3], code[4])


def row_of(code, abstract_channel=False):
    """The OBIS table's row of a 6-byte code. B = 1 of electricity is the meter's own channel and
    read as B = 0 (Kamstrup, L+G energies), as DSMR and Home Assistant know them; abstract_channel:
    the same for A = 0 (Kamstrup's clock, 0-1:1.0.0)."""
    a, b = code[0], code[1]
    if b == 1 and (a == 1 or (a == 0 and abstract_channel)):
        b = 0
    if a <= 7 and b <= 7:
        return obis.by_key(obis.key_of(a, b, code[2], code[3], code[4]))
    return obis.row("%d-%d:%d.%d.%d" % (a, b, code[2], code[3], code[4]))


def scaled(mantissa, scaler, unit):
    for dlms, shown, extra in obis.DLMS_UNITS:     # (DSMR writes kWh, kW, kvarh, kvar, kVA)
        if dlms == unit:
            return (mantissa, scaler + extra, shown)
    return (mantissa, scaler, None)


def printable(b):
    for c in b:
        if c < 0x20 or c > 0x7E:
            return False
    return len(b) > 0


def text(b):
    """An octet string as text: as it reads when it is printable ASCII (trailing NULs, spaces and
    padding dropped), else its hex digits."""
    end = len(b)
    while end and (b[end - 1] == 0 or b[end - 1] == 0x20):
        end -= 1
    raw = b[:end]
    if printable(raw):
        return bytes(raw).decode()
    return hex_digits(b)


def named(readings, name):
    for r in readings:
        if r[0][obis.NAME] == name:
            return True
    return False


def clock_of(date, time):
    """A 12-byte DLMS date-time from a date (year hi, lo, month, day, weekday) and a time (hour,
    minute, second, hundredths), deviation and daylight saving not given."""
    if len(date) != 5 or len(time) != 4:
        return None
    return bytes(date) + bytes(time) + b"\x80\x00\xff"


def items_of(body):
    """The items of a structure or array body, or None."""
    return body[1] if body[0] == STRUCT or body[0] == ARRAY else None
