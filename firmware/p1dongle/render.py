# DLMS readings (axdr.py) written as a DSMR telegram, so that everything downstream (telnet
# users, Home Assistant's DSMR integration, dsmr.parse() for JSON and MQTT) reads an Austrian meter
# exactly like a Dutch or Luxembourg one.
#
#   /KFM5\2<meter>                    '/', maker from the system title (or "DLM"), '5', the id
#   (empty line)
#   0-0:1.0.0(210927094715S)          the meter's clock, YYMMDDhhmmss, S in summer time else W
#   0-0:96.1.0(<meter number>)        when the meter sends one (hex when it is not printable)
#   1-0:1.8.0(000012.937*kWh)         energy: kWh with 3 decimals      (W, Wh -> kW, kWh)
#   1-0:1.7.0(00.000*kW)              power: kW with 3 decimals
#   1-0:32.7.0(233.7*V)               voltage: V with 1 decimal
#   1-0:31.7.0(001.23*A)              current: A with 2 decimals
#   1-0:13.7.0(1.000)                 power factor: 3 decimals, no unit
#   !XXXX                             CRC-16/ARC over '/' .. '!'
#
# Numbers are formatted from the integer mantissa and exponent (never through a float: on the
# dongle floats have 7 digits, an energy register needs 9).
from .dsmr import crc16

# unit -> (decimals, width of the integer part)
_FORMAT = {"kWh": (3, 6), "kvarh": (3, 6), "kVAh": (3, 6), "kW": (3, 2), "kvar": (3, 2), "kVA": (3, 2),
           "V": (1, 3), "A": (2, 3), "Hz": (2, 2), "": (3, 1)}


def decimal(mantissa, exponent, decimals, width=1):
    """mantissa * 10**exponent with exactly `decimals` decimals (rounded half away from zero) and
    at least `width` integer digits."""
    neg = mantissa < 0
    m = -mantissa if neg else mantissa
    shift = exponent + decimals
    if shift >= 0:
        q = m * 10 ** shift
    else:
        d = 10 ** (-shift)
        q = (m + d // 2) // d
    digits = str(q)
    if len(digits) <= decimals:
        digits = "0" * (decimals + 1 - len(digits)) + digits
    whole = digits[:len(digits) - decimals] if decimals else digits
    if len(whole) < width:
        whole = "0" * (width - len(whole)) + whole
    text = whole + "." + digits[len(digits) - decimals:] if decimals else whole
    return "-" + text if neg and q else text


def clock(dt):
    """DSMR timestamp YYMMDDhhmmssX from a 12-byte DLMS date-time, or None when unusable."""
    if dt is None or len(dt) != 12:
        return None
    year = (dt[0] << 8) | dt[1]
    if year == 0xFFFF or dt[2] > 12 or dt[3] > 31 or dt[5] > 23 or dt[6] > 59 or dt[7] > 59:
        return None
    season = "S" if dt[11] & 0x80 else "W"
    return "%02d%02d%02d%02d%02d%02d%s" % (year % 100, dt[2], dt[3], dt[5], dt[6], dt[7], season)


def _text(b):
    for c in b:
        if c < 0x20 or c > 0x7E or c in (0x28, 0x29):
            return "".join("%02X" % c for c in b)
    return bytes(b).decode()


def telegram(values, meter_clock=None, maker="DLM", ident=""):
    """The bytes of a DSMR telegram, CRC included, for the given readings."""
    lines = ["/%s5%s" % (maker, ident), ""]
    stamp = clock(meter_clock)
    if stamp:
        lines.append("0-0:1.0.0(%s)" % stamp)
    for name, m, exp, unit in values:
        if exp is None:             # a string: meter number, clock, text
            if name == "0-0:1.0.0":
                continue            # written above, in DSMR form
            lines.append("%s(%s)" % (name, _text(m)))
            continue
        decimals, width = _FORMAT.get(unit, (3, 1))
        value = decimal(m, exp, decimals, width)
        lines.append("%s(%s*%s)" % (name, value, unit) if unit else "%s(%s)" % (name, value))
    lines.append("!")
    body = "\r\n".join(lines).encode()
    return body + ("%04X\r\n" % crc16(body)).encode()
