# The utilities' customer-interface documents (Wiener Netze, Kaernten Netz, eww Wels) for Siemens
# IM350 / Iskra AM550: a structure of 12 (or 10): 0-6:25.9.0, meter number, time, date, +A, -A,
# +R, -R, +P, -P [, two texts].
from .. import obis
from ..axdr import STR
from .common import VARH, WH, W, clock_of, int_at, string_at, text

VALUES = (("1-0:1.8.0", WH), ("1-0:2.8.0", WH), ("1-0:3.8.0", VARH), ("1-0:4.8.0", VARH),
          ("1-0:1.7.0", W), ("1-0:2.7.0", W))
_PUSH_SETUP_0_6 = b"\x00\x06\x19\x09\x00\xff"
NAMES = ("structure12",)


def claim(reader, body, items):
    if items is not None and len(items) in (10, 12) and items[0][0] == STR and items[0][1] == _PUSH_SETUP_0_6:
        return "structure12"
    return None


def read(reader, body, layout):
    items = body[1]
    what = "0-6:25.9.0 structure"
    number = string_at(items, 1, what)
    time = string_at(items, 2, what)
    date = string_at(items, 3, what)
    values = [int_at(items, 4 + k, what) for k in range(6)]
    out = [(obis.row("0-0:96.1.0"), text(number))]
    for k in range(6):
        code, unit = VALUES[k]
        reader.number(out, obis.row(code), values[k], 0, unit)
    if reader.clock is None:
        reader.clock = clock_of(date, time)
    return out
