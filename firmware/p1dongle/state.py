# Readings as JSON: the state topic's document (and any other JSON view of a telegram).
#
#   {"header": "Lux5\\253663629_D", "p1Version": "42", "powerTs": "2026-11-25T15:50:53+01:00",
#    "totalImportedEnergyP": 23949.193, "currentUsage": 0.420, "voltageL1": 233.0, ...,
#    "mbus1Reading": 872.234, "mbus1ReadingTs": "2020-05-12T13:45:58+02:00", ...,
#    "units": {"totalImportedEnergyP": "kWh", "currentUsage": "kW", ...}}
#
# Numbers are written from their integer digits (reading.exact): 023949.193 is 23949.193 on
# every interpreter, and never goes through a float. The text is built in one list and joined
# once, not with json.dumps of a dict (a dict of floats is what this replaces).
from .obis import NAME
from .reading import exact


def state_json(readings):
    """The readings as the state topic's JSON text."""
    out = ["{"]
    units = []
    for row, value in readings:
        name = row[NAME]
        if len(out) > 1:
            out.append(",")
        _key(out, name)
        unit = _value(out, value)
        if unit:
            units.append((name, unit))
        if isinstance(value, tuple) and len(value) > 3 and value[3]:
            out.append(",")
            _key(out, name + "Ts")
            _string(out, value[3])
    if len(out) > 1:
        out.append(",")
    out.append('"units":{')
    for k in range(len(units)):
        if k:
            out.append(",")
        _key(out, units[k][0])
        _string(out, units[k][1])
    out.append("}}")
    return "".join(out)


def _key(out, name):
    _string(out, name)
    out.append(":")


def _value(out, value):
    """Write one value; return its unit (for "units"), or None."""
    if isinstance(value, tuple):
        out.append(exact(value[0], value[1]))
        return value[2]
    if isinstance(value, list):
        out.append("[")
        unit = None
        for k in range(len(value)):
            if k:
                out.append(",")
            u = _value(out, value[k])
            unit = unit or u
        out.append("]")
        return unit
    if value is None:
        out.append("null")
        return None
    _string(out, value)
    return None


def _string(out, s):
    # Readings' text is printable ASCII (reading.text), so only " and \ need escaping; control
    # characters are escaped anyway, so that the JSON stays valid whatever a str holds.
    if '"' not in s and "\\" not in s and _plain(s):
        out.append('"' + s + '"')
        return
    parts = ['"']
    for c in s:
        if c == '"' or c == "\\":
            parts.append("\\" + c)
        elif c < " " or c > "~":
            parts.append("\\u%04x" % ord(c))
        else:
            parts.append(c)
    parts.append('"')
    out.append("".join(parts))


def _plain(s):
    for c in s:
        if c < " " or c > "~":
            return False
    return True
