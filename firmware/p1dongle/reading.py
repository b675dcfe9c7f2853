# What a reading is, the same on every interpreter.
#
# A number is an integer mantissa and a decimal exponent with its unit: `023949.193*kWh` is
# (23949193, -3, "kWh"), `00016` is (16, 0, None). Never a float: the dongle's floats are single
# precision (7 digits; `float("023949.193")` is 23949.192 there), and an energy register that
# wobbles by a few Wh makes Home Assistant book a meter reset. A number that comes with its own
# time stamp (a gas reading, a monthly peak) carries it as a fourth item, in ISO 8601.
#
# Text is a str of printable ASCII: bytes a meter sends outside that range are written as \xNN,
# the same on MicroPython (whose decode() ignores error handlers and raises) and CPython.
#
# A telegram's readings are a list of (row, value) in the order the meter sent them; row is the
# quantity's row of the OBIS table (obis.py), value one of
#   (mantissa, exponent, unit[, time stamp])   a number
#   str                                        text, a time stamp, an identifier
#   list                                       several values of one line (limits, logs, peaks)
from binascii import unhexlify

from . import obis
from .compat import const, loops
from .errors import FrameError
from .obis import NAME

MANTISSA = 0
EXPONENT = 1
UNIT = 2
STAMP = 3

# Decimal exponents. A reading made from a DLMS push keeps its exponent within +-EXPONENTS
# (misfit(): meters' scalers are a few powers of ten, while a scaler-unit's int8 allows 10**-131);
# whatever they are given, the writers below never raise ten to more than _MAX_POWER (a 32-bit
# scaler once asked them for 10**(2**31 - 4): minutes and gigabytes, and never an answer).
EXPONENTS = const(18)
_MAX_POWER = const(40)
# The integer digits of a row (obis.py) are DSMR's, a household meter's: a current-transformer
# meter reads up to a thousand times more (a Landis+Gyr E570: 258.874 kW, where DSMR writes 2
# integer digits). A value with more digits still is no meter's reading: a wrong scaler made it.
_CT_DIGITS = const(3)


def number(text):
    """'023949.193' -> (23949193, -3), '00016' -> (16, 0), '-040' -> (-40, 0); None when the text
    is not a plain decimal number."""
    digits = text[1:] if text[:1] == "-" or text[:1] == "+" else text
    if not digits:
        return None
    if digits.isdigit():
        return int(text), 0
    dot = digits.find(".")
    if dot < 0:
        return None
    whole = digits[:dot]
    frac = digits[dot + 1:]
    if (whole and not whole.isdigit()) or not frac.isdigit():
        return None
    m = int(whole + frac)
    return (-m if text[0] == "-" else m), -len(frac)


def is_number(value):
    return isinstance(value, tuple)


def fixed(mantissa, exponent, decimals, width=1):
    """mantissa * 10**exponent with exactly `decimals` decimals (rounded half away from zero) and
    at least `width` integer digits: the DSMR way, e.g. (23949193, -3, 3, 6) -> '023949.193'."""
    neg = mantissa < 0
    m = -mantissa if neg else mantissa
    shift = exponent + decimals
    if shift >= 0:
        q = m * _power(shift)
    elif -shift > _digits(m):
        q = 0                           # less than half the last decimal (and no 10**n for it)
    else:
        d = 10 ** (-shift)              # no more digits than m has
        q = (m + d // 2) // d
    digits = str(q)
    if len(digits) <= decimals:
        digits = "0" * (decimals + 1 - len(digits)) + digits
    whole = digits[:len(digits) - decimals] if decimals else digits
    if len(whole) < width:
        whole = "0" * (width - len(whole)) + whole
    text = whole + "." + digits[len(digits) - decimals:] if decimals else whole
    return "-" + text if neg and q else text


def exact(mantissa, exponent):
    """The number's own digits as JSON writes them: (23949193, -3) -> '23949.193', (2330, -1) ->
    '233.0', (16, 0) -> '16'. Nothing is rounded: as many decimals as the meter sent."""
    if exponent >= 0:
        return str(mantissa * _power(exponent))     # 0 is "0" at any exponent: JSON has no "00"
    return fixed(mantissa, exponent, -exponent)


def _power(n):
    if n > _MAX_POWER:
        raise FrameError("a number times 10**%d: more digits than any meter's reading has" % n)
    return 10 ** n


def _digits(m):
    # how many decimal digits the natural number m has (0 has none)
    return len(str(m)) if m else 0


def misfit(row, value):
    """Why the number value (mantissa, exponent, unit) cannot be its OBIS row's reading, or None:
    an exponent beyond EXPONENTS, or, in the row's unit, more integer digits than DSMR gives the
    row (obis.py) and a current-transformer meter's _CT_DIGITS more. A right number never is; a
    wrong scaler makes one."""
    m, e = value[MANTISSA], value[EXPONENT]
    if e > EXPONENTS or e < -EXPONENTS:
        return "a power of ten no meter uses"
    # (a row made for a code not in the table has digits too: only the least a telegram writes)
    if m and value[UNIT] == row[obis.UNIT] and obis.known(row):
        most = row[obis.DIGITS] + _CT_DIGITS
        if _digits(-m if m < 0 else m) + e > most:
            return "more than %d integer digits (DSMR writes %d), no meter's reading" % (most, row[obis.DIGITS])
    return None


def shifted(value, exponent_shift):
    """The number in a unit 10**exponent_shift times smaller (kW -> W: 3): an exponent shift,
    never a multiplication of floats."""
    return value[MANTISSA], value[EXPONENT] + exponent_shift


def text(data, start=0, end=-1):
    """data[start:end] (bytes, bytearray, memoryview or str) as printable ASCII text: what is
    outside 0x20..0x7E becomes \\xNN (tab, CR and LF stay). Identical on every interpreter."""
    if isinstance(data, str):
        return data
    if end < 0:
        end = len(data)
    if loops.printable(data, start, end):
        return bytes(data[start:end]).decode()     # the usual case
    out = []
    for i in range(start, end):
        b = data[i]
        if 0x20 <= b < 0x7F or b == 9 or b == 10 or b == 13:
            out.append(chr(b))
        else:
            out.append("\\x%02x" % b)
    return "".join(out)


def hex_digits(data):
    """Upper-case hex digits of bytes, or of a text's characters (how DSMR writes identifiers and
    messages, and how a system title is shown): the one place that writes them."""
    if isinstance(data, str):
        return "".join("%02X" % ord(c) for c in data)
    return "".join("%02X" % c for c in data)


def hex_text(digits):
    """'53414731' -> 'SAG1' when the hex digits spell printable ASCII; else the digits unchanged."""
    if not digits:
        return digits
    try:
        raw = unhexlify(digits)
    except ValueError:                  # odd length, not hex (binascii.Error is a ValueError)
        return digits
    if not loops.printable(raw, 0, len(raw)) or b"\t" in raw or b"\r" in raw or b"\n" in raw:
        return digits
    return raw.decode()


def iso_time(stamp):
    """DSMR time 'YYMMDDhhmmssX' (X: S summer, W winter; absent in DSMR 2.2) -> ISO 8601, or None."""
    n = len(stamp)
    if n < 12 or n > 13 or not stamp[:12].isdigit():
        return None
    # DSMR's season letter: S summer, W winter (CET)
    zone = "" if n == 12 else "+02:00" if stamp[12] == "S" else "+01:00" if stamp[12] == "W" else None
    if zone is None:
        return None
    return "20%s-%s-%sT%s:%s:%s%s" % (stamp[0:2], stamp[2:4], stamp[4:6], stamp[6:8], stamp[8:10], stamp[10:12], zone)


def find(readings, name):
    """The value of the first reading called name, or None."""
    for row, value in readings:
        if row[NAME] == name:
            return value
    return None


def in_unit(value, unit):
    """The value (mantissa, exponent, unit...) as (mantissa, exponent) in unit; None when it is no
    number or in a unit that is not one of unit's."""
    if not isinstance(value, tuple):
        return None
    shift = obis.unit_shift(value[UNIT], unit)     # (kW -> W moves the exponent: no float)
    return None if shift is None else (value[MANTISSA], value[EXPONENT] + shift)


def added(parts):
    """The exact sum of (mantissa, exponent) numbers: each brought to the smallest exponent."""
    e = min(p[1] for p in parts)
    return sum(p[0] * 10 ** (p[1] - e) for p in parts), e


def register_total(readings, total, tariff, unit):
    """An energy total in unit: the register called total, else the sum of the tariff registers
    tariff1..4 (what a Dutch meter sends); None when there is neither."""
    value = in_unit(find(readings, total), unit)
    if value is not None:
        return value
    parts = [in_unit(find(readings, tariff + str(t)), unit) for t in (1, 2, 3, 4)]
    parts = [p for p in parts if p is not None]
    return added(parts) if parts else None


def net(readings, used, given, unit):
    """Import minus export (the readings called used and given) in unit: negative while the house
    delivers; None when the meter sends neither."""
    used, given = in_unit(find(readings, used), unit), in_unit(find(readings, given), unit)
    if used is None and given is None:
        return None
    if given is None:
        return used
    if used is None:
        return -given[0], given[1]
    return added([used, (-given[0], given[1])])


# The readings that name a meter, the most telling first: Luxembourg's and DLMS meters' logical
# device name, the DSMR equipment identifier, a meter number, a Kamstrup's GS1 number, a serial.
IDENTIFIERS = ("logicalDeviceName", "meterId", "meterNumber", "gs1Number", "meterSerial")


def identifier(readings):
    """The meter's own identifier among the readings, as it writes it (leading zeros kept), or None."""
    for name in IDENTIFIERS:
        value = find(readings, name)
        if value and isinstance(value, str):
            return value
    return None
