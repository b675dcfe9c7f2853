# OBIS code, value and scaler-unit, in any nesting (Austria: Netz NOE, TINETZ, Salzburg, VKW;
# Poland: Kaifa MA309, Sagemcom T210-D; Aidon NO / SE; Iskra AM550 OBIS lists): the push says
# what each value is and its scaler; a value without one is published only when it has no unit.
from .. import obis
from ..axdr import INT, STR
from .common import NONE, SCALE, is_obis, leaves, named, printable, row_of, text

NAMES = ("obis",)


def claim(reader, body, items):
    for leaf in leaves(body):
        if is_obis(leaf):
            return "obis"
    return None


def read(reader, body, layout, scalers=None):
    """The readings; scalers: {DLMS unit: scaler} a family's document gives for the values its
    push sends without a scaler-unit."""
    found = leaves(body)
    out = []  # type: list
    i = 0
    n = len(found)
    while i < n:
        leaf = found[i]
        i += 1
        if not is_obis(leaf) or i >= n:
            if leaf[0] == STR and i == n and printable(leaf[1]) and not named(out, "meterNumber"):
                out.append((obis.row("0-0:96.1.0"), text(leaf[1])))    # Netz NOE: the meter number last
            continue
        row = row_of(leaf[1])
        value = found[i]
        i += 1
        scale = None
        if i < n and found[i][0] == SCALE:
            scale = found[i]
            i += 1
        if value[0] == STR:
            reader.string(out, row, value[1])
        elif value[0] == INT:
            if scale is not None:
                reader.number(out, row, value[1], scale[1], scale[2])
            elif row[obis.UNIT] is None and row[obis.DLMS] is None:
                reader.number(out, row, value[1], 0, NONE)    # a count or a state: no unit
            elif scalers is not None and row[obis.DLMS] in scalers:
                reader.number(out, row, value[1], scalers[row[obis.DLMS]], row[obis.DLMS])
            else:
                reader.unscaled(row)
    return out
