# Sagemcom XT211 (Czechia: EG.D, CEZ Distribuce), RS485 9600 8N1, a push every 60 s: a structure
# {enum, array of objects}, each object a structure of its COSEM descriptor written without type
# tags (class id, OBIS code, attribute; axdr.py reads it as an UNTAGGED item) and its value. No
# scaler-units are pushed.
#
# EG.D's "Komunikacni rozhrani RS485" (2025) lists its 27 objects with their units, the values
# integers in them: W for the powers and the limiter's threshold, Wh for the energies; its list
# carries its push setup's logical name (0-2:25.9.0, class 40, attribute 1), which is how a push
# says it is EG.D's. CEZ's VP_1 scheme 13 lists its 22 objects (the same codes, no push setup)
# without units: from a CEZ meter the ids, the tariff and the relays' states come out, its powers
# and energies once a document gives their unit.
from .. import obis
from ..axdr import ARRAY, INT, STR, STRUCT, UNTAGGED
from .common import NONE, WH, W, code_text, row_of

EGD = {W: 0, WH: 0}
_EGD_PUSH_SETUP = "0-2:25.9.0"
# what each class's value is: (class id, attribute index)
_VALUES = ((1, 2),      # data: ids, tariff, message
           (3, 2),      # register: powers, energies
           (70, 3),     # disconnect control: its control state (0 off, 1 on, 2 ready)
           (71, 3))     # limiter: the active threshold
NAMES = ()


def claim(reader, body, items):
    objects = _objects(items)
    return "xt211" if objects else None


def read(reader, body, layout):
    objects = _objects(body[1])
    table = EGD if _names_egd(objects) else None
    out = []  # type: list
    for descriptor, value in objects:
        cls, code, attr = descriptor[1], descriptor[2], descriptor[3]
        if cls == 40:
            continue                    # the push setup names itself: no reading
        if (cls, attr) not in _VALUES:
            reader.say("XT211 push: %s (class %d, attribute %d) not read" % (code_text(code), cls, attr))
            continue
        row = row_of(code)
        if value[0] == STR:
            reader.string(out, row, value[1])
        elif value[0] == INT:
            unit = W if cls == 71 else row[obis.DLMS]
            if cls == 70 or (unit is None and row[obis.UNIT] is None):
                reader.number(out, row, value[1], 0, NONE)          # a state or a count
            elif table is not None and unit in table:
                reader.number(out, row, value[1], table[unit], unit)
            else:
                reader.say("XT211 powers and energies not published: the push carries no scaler-units, and "
                           "only EG.D's document (a push naming its push setup 0-2:25.9.0) gives their unit")
    return out


def _objects(items):
    """The [(descriptor, value)] of a push {enum, array of objects}, or None."""
    if items is None or len(items) != 2 or items[1][0] != ARRAY or not items[1][1]:
        return None
    out = []
    for entry in items[1][1]:
        if entry[0] != STRUCT or len(entry[1]) != 2 or entry[1][0][0] != UNTAGGED:
            return None
        out.append((entry[1][0], entry[1][1]))
    return out


def _names_egd(objects):
    for descriptor, value in objects:
        if descriptor[1] == 40 and descriptor[3] == 1 and code_text(descriptor[2]) == _EGD_PUSH_SETUP:
            return True
    return False
