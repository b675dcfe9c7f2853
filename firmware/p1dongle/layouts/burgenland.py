# Netz Burgenland, Landis+Gyr E450: every 5 s a structure of 14 values without OBIS codes, in the
# order of Netz Burgenland's "Spezifikation Kundenschnittstelle E450" (korr. 2): voltage L1-L3,
# current L1-L3, active power +P, -P, active energy +A, -A, the angles between voltage and
# current of L1-L3, the grid operator's meter id (11 values, without the angles, in its earlier
# version). That list names the values but, as far as it is published, gives no scaler or unit
# for any: the meter id comes out, the numbers only once a document gives their units.
from .. import obis
from ..axdr import INT, STR
from .common import string_at, text

# the A-XDR types in order: long-unsigned (U, I), double-long-unsigned (P, A), long-unsigned (angles)
_TYPES_14 = (0x12,) * 6 + (0x06,) * 4 + (0x12,) * 3
_TYPES_11 = (0x12,) * 6 + (0x06,) * 4
NAMES = ()


def claim(reader, body, items):
    if items is None or len(items) not in (11, 14) or items[-1][0] != STR:
        return None
    types = _TYPES_14 if len(items) == 14 else _TYPES_11
    for k in range(len(types)):
        if items[k][0] != INT or items[k][2] != types[k]:
            return None
    return "burgenland"


def read(reader, body, layout):
    items = body[1]
    reader.say("Netz Burgenland E450: voltages, currents, powers and energies not published: Netz Burgenland's "
               "specification names them but gives no units; the meter id is")
    return [(obis.row("0-0:96.1.0"), text(string_at(items, len(items) - 1, "Netz Burgenland list")))]
