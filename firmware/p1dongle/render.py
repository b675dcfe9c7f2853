# DLMS readings (axdr.py) written as a DSMR telegram, so that everything downstream (telnet
# users, Home Assistant's DSMR integration, dsmr_parser) reads an Austrian meter exactly like a
# Dutch or Luxembourg one. (MQTT gets the readings themselves, not this text parsed back.)
#
#   /KFM5\2<meter>                    '/', maker from the system title (or "DLM"), '5', the id
#   (empty line)
#   1-3:0.2.8(50)                     DSMR 5.0
#   0-0:1.0.0(210927094715S)          the meter's clock, YYMMDDhhmmss, S in summer time else W
#   0-0:42.0.0(3138313232...)         the equipment identifier, in hex (what DSMR 5L asks for)
#   0-0:96.1.1(3138313232...)         the same, where DSMR 5 has it (Home Assistant's DSMR
#                                     integration keys the meter by it when the user picks 5)
#   0-0:96.1.0(<meter number>)        when the meter sends one (hex when it is not printable)
#   1-0:1.8.0(000012.937*kWh)         energy: kWh with 3 decimals      (W, Wh -> kW, kWh)
#   1-0:1.7.0(00.000*kW)              power: kW with 3 decimals
#   1-0:32.7.0(233.7*V)               voltage: V with 1 decimal
#   1-0:31.7.0(001.23*A)              current: A with 2 decimals
#   1-0:13.7.0(1.000)                 power factor: 3 decimals, no unit
#   !XXXX                             CRC-16/ARC over '/' .. '!'
#
# Numbers are formatted from the integer mantissa and exponent (never through a float: on the
# dongle floats have 7 digits, an energy register needs 9), with the digits and decimals of
# their OBIS row; a code without a row keeps the decimals the meter sent.
from . import obis
from .dlmstime import dsmr_time
from .dsmr import crc16
from .reading import fixed, hex_digits, identifier


def _has(readings, code):
    for row, _ in readings:
        if row[obis.CODE] == code:
            return True
    return False


def _text(s):
    # A value may not hold parentheses: such text goes out as its hex digits, as DSMR writes text.
    if "(" in s or ")" in s:
        return hex_digits(s)
    return s


def _number(row, value):
    m, e, unit = value[0], value[1], value[2]
    if unit == row[obis.UNIT] and (unit is not None or obis.known(row)):
        text = fixed(m, e, row[obis.DECIMALS], row[obis.DIGITS])
    else:
        text = fixed(m, e, -e if e < 0 else 0)
    return "%s*%s" % (text, unit) if unit else text


def telegram(readings, meter_clock=None, maker="DLM", ident="", name=None):
    """The bytes of a DSMR telegram, CRC included, for the given readings [(row, value)].

    Beside the readings it carries what Home Assistant's DSMR integration needs to take it as
    DSMR 5L or 5, whichever the user picks (the version line, and the equipment identifier in hex
    under both codes: 0-0:42.0.0 as Luxembourg's meters write it, 0-0:96.1.1 as DSMR 5 does; with
    5 and no 0-0:96.1.1 the integration waits 60 s and gives up): the meter's own identifier when
    it sends one (name: the one it sent last), else its system title."""
    lines = ["/%s5%s" % (maker, ident), ""]
    if not _has(readings, "1-3:0.2.8"):
        lines.append("1-3:0.2.8(50)")
    stamp = dsmr_time(meter_clock)
    if stamp:
        lines.append("0-0:1.0.0(%s)" % stamp)
    name = identifier(readings) or name or (maker + ident if maker != "DLM" else "")
    if name:
        for code in ("0-0:42.0.0", "0-0:96.1.1"):
            if not _has(readings, code):
                lines.append("%s(%s)" % (code, hex_digits(name)))
    for row, value in readings:
        if row[obis.KIND] == obis.TIME:
            continue                # the meter's clock: written above, in DSMR form
        if isinstance(value, tuple):
            lines.append("%s(%s)" % (row[obis.CODE], _number(row, value)))
        elif isinstance(value, str):
            text = hex_digits(value) if row[obis.KIND] == obis.HEX else _text(value)
            lines.append("%s(%s)" % (row[obis.CODE], text))
    lines.append("!")
    body = "\r\n".join(lines).encode()
    return body + ("%04X\r\n" % crc16(body)).encode()
