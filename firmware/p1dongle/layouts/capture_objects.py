# The push setup's capture objects {class, OBIS, attribute, data index} first, then the values
# (Landis+Gyr E450 / E570 / E360, Iskra AM550 in Switzerland): scalers from the values' own
# scaler-unit attribute when pushed, else from the register table of that push setup.
from ..axdr import ARRAY, INT, NULL, STR, STRUCT, describe
from .common import AMP, NONE, VAR, VARH, VOLT, WH, W, LayoutError, code_text, is_scaler_unit, row_of
from .. import obis

# Register tables of the capture-objects pushes (the values carry no scaler), per meter, from the
# Swiss VSE configuration as the utilities' manuals (RWB) and the register maps of Swiss readers
# (smartmeter-datacollector) give them: W, var, Wh, varh, power factor 0.001, and
#   landisgyr-e450  V, 0.01 A        landisgyr-e570  V, A (a current-transformer meter)
#   landisgyr-e360  0.1 V, 0.01 A    iskra-am550     0.1 V, 0.01 A
# With no profile, the push setup tells as much as it can: 0-6:25.9.0 is an AM550 or an E360
# (they agree); 0-8:25.9.0 / 0-9:25.9.0 an E450 or an E570, which do not agree on currents.
TABLES = {
    "landisgyr-e450": {W: 0, VAR: 0, WH: 0, VARH: 0, NONE: -3, VOLT: 0, AMP: -2},
    "landisgyr-e570": {W: 0, VAR: 0, WH: 0, VARH: 0, NONE: -3, VOLT: 0, AMP: 0},
    "landisgyr-e360": {W: 0, VAR: 0, WH: 0, VARH: 0, NONE: -3, VOLT: -1, AMP: -2},
    "iskra-am550": {W: 0, VAR: 0, WH: 0, VARH: 0, NONE: -3, VOLT: -1, AMP: -2},
}
PUSH_SETUPS = {
    "0-6:25.9.0": TABLES["iskra-am550"],
    "0-8:25.9.0": {W: 0, VAR: 0, WH: 0, VARH: 0, NONE: -3, VOLT: 0},
    "0-9:25.9.0": {W: 0, VAR: 0, WH: 0, VARH: 0, NONE: -3, VOLT: 0},
}
NAMES = ("capture-objects",) + tuple(TABLES)


def claim(reader, body, items):
    first = items[0] if items else None
    if first is not None and first[0] == ARRAY and _descriptors(first):
        return reader.layout if reader.layout in TABLES else "capture-objects"
    return None


def read(reader, body, layout):
    items = body[1]
    descriptors = items[0][1]
    if len(descriptors) != len(items):
        raise LayoutError("capture objects: %d described, %d values" % (len(descriptors), len(items)))
    setup = code_text(descriptor(descriptors[0])[1])   # the push setup lists itself first
    table = TABLES.get(layout) or PUSH_SETUPS.get(setup)
    scalers = {}
    for k in range(1, len(items)):
        cls, code, attr = descriptor(descriptors[k])
        v = items[k]
        if attr == 3 and v[0] != NULL:                  # the meter's own scaler-unit
            if not is_scaler_unit(v):
                raise LayoutError("capture objects: the scaler-unit of %s is %s, not {integer, enum}"
                                  % (code_text(code), describe(v)))
            scalers[code] = (v[1][0][1], v[1][1][1])
    out = []  # type: list
    for k in range(1, len(items)):
        cls, code, attr = descriptor(descriptors[k])
        v = items[k]
        if attr != 2 or cls == 40 or v[0] == NULL:
            continue
        row = row_of(code)
        if v[0] == STR:
            reader.string(out, row, v[1])
        elif v[0] == INT:
            unit = row[obis.DLMS]
            if code in scalers:
                reader.number(out, row, v[1], scalers[code][0], scalers[code][1])
            elif unit is None and row[obis.UNIT] is None:
                reader.number(out, row, v[1], 0, NONE)
            elif table is not None and unit in table:
                reader.number(out, row, v[1], table[unit], unit)
            elif unit == AMP and setup in PUSH_SETUPS:
                reader.say("currents not published: a Landis+Gyr E450 sends them in 0.01 A, an E570 in A "
                           "(set meter: landisgyr-e450 or landisgyr-e570)")
            else:
                reader.unscaled(row)
    return out


def _descriptors(item):
    # an array of capture object definitions {long-unsigned class, octet-string(6), integer, long-unsigned}
    for d in item[1]:
        if descriptor(d) is None:
            return False
    return len(item[1]) > 1


def descriptor(d):
    """(class id, 6-byte OBIS code, attribute index) of a capture object definition, or None."""
    if d[0] != STRUCT or len(d[1]) != 4:
        return None
    cls, code, attr, index = d[1]
    if cls[0] != INT or code[0] != STR or len(code[1]) != 6 or attr[0] != INT or index[0] != INT:
        return None
    return cls[1], code[1], attr[1]
