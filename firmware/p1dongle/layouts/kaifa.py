# Kaifa MA304 / MA105 (Norway, Sweden): the list version "KFM_001" and positional values, no OBIS
# codes: Kaifa's lists of 13 / 18 (three-phase) or 9 / 14 (single-phase) items; list 1 (one
# number: the power, every 2 s) only once Kaifa is known (from a list 2 / 3, or the profile).
# Sweden's MA304H4 also pushes the same list as OBIS code-value pairs without scaler-units,
# naming itself KFM_001 in 1-0:0.2.129 first: read as OBIS pairs, with the same scalers.
from .. import obis
from ..axdr import INT, STR
from . import obis_pairs
from .common import AMP, VAR, VARH, VOLT, WH, W, int_at, string_at

# Kaifa HAN OBIS codes KFM_001 (the list the push names: "Shall be identical to corresponding
# OBIS code value in the meter"): P in W ("xxx,xxx kW" double-long-unsigned), Q in var, U in
# 0.1 V ("xxx.x V"), energies in Wh, varh. Its currents, "xxx.x A" long-signed, are on the wire
# double-long-unsigned in mA: in every capture of three lists (Norway's, Sweden's positional and
# OBIS-coded ones) the sum of U x I per phase meets |P + jQ| with mA, and is 100 times off with
# 0.1 A (as 678.1 A would be, beyond the meter's 100 A); every reader of them reads mA.
SCALERS = {W: 0, VAR: 0, AMP: -3, VOLT: -1, WH: 0, VARH: 0}
_IDS = ("1-0:0.2.129", "0-0:96.1.0", "0-0:96.1.7")
_POWER = ("1-0:1.7.0", "1-0:2.7.0", "1-0:3.7.0", "1-0:4.7.0")
_3P = _IDS + _POWER + ("1-0:31.7.0", "1-0:51.7.0", "1-0:71.7.0", "1-0:32.7.0", "1-0:52.7.0", "1-0:72.7.0")
_1P = _IDS + _POWER + ("1-0:31.7.0", "1-0:32.7.0")
_ENERGY = ("0-0:1.0.0", "1-0:1.8.0", "1-0:2.8.0", "1-0:3.8.0", "1-0:4.8.0")
LISTS = {13: _3P, 18: _3P + _ENERGY, 9: _1P, 14: _1P + _ENERGY}
_LIST_ID = b"\x00\x02\x81\xff"     # C.D.E.F of 1-0:0.2.129 (B = 0 or 1): the list version
NAMES = ("kaifa",)


def claim(reader, body, items):
    if items is None:
        return None
    first = items[0] if items else None
    if first is not None and first[0] == STR and first[1] == b"KFM_001" and len(items) in LISTS:
        reader.kaifa = True
        return "kaifa"
    if (len(items) > 2 and first[0] == STR and len(first[1]) == 6 and first[1][0] == 1 and first[1][2:] == _LIST_ID
            and items[1][0] == STR and items[1][1] == b"KFM_001"):
        reader.kaifa = True
        return "kaifa-obis"
    if len(items) == 1 and items[0][0] == INT and reader.kaifa:
        return "kaifa"                      # list 1: the power, every 2 s
    return None


def read(reader, body, layout):
    if layout == "kaifa-obis":
        return obis_pairs.read(reader, body, layout, SCALERS)
    items = body[1]
    out = []  # type: list
    if len(items) == 1:
        reader.number(out, obis.row("1-0:1.7.0"), int_at(items, 0, "Kaifa list 1"), 0, W)
        return out
    codes = LISTS[len(items)]
    for k in range(len(codes)):
        row = obis.row(codes[k])
        unit = row[obis.DLMS]
        if unit is None:
            reader.string(out, row, string_at(items, k, "Kaifa list"))
        else:
            reader.number(out, row, int_at(items, k, "Kaifa list"), SCALERS[unit], unit)
    return out
