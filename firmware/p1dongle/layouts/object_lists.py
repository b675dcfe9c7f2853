# A push of object definitions (a push setup's push-object list: per object its class id, OBIS
# code, attribute and data index; in a push setup of version 2 also a restriction and columns)
# is what a meter pushes, described, never a value: read as code-value pairs, an attribute index
# would become a meter number (Energomera's dump in dlms_parser's tests). No telegram, one line.
# (A list of capture objects followed by the values is capture_objects.py's.)
from ..axdr import ARRAY, INT, STR, STRUCT
from .common import LayoutError

NAMES = ()


def claim(reader, body, items):
    if _holds_definitions(body):
        raise LayoutError("a push-object list (per object: class id, OBIS code, attribute, data index%s), "
                          "a description of what a meter pushes, not its values: no telegram"
                          % (", restriction, columns" if _holds_definitions(body, 6) else ""))
    return None


def read(reader, body, layout):
    raise LayoutError("a push-object list: no telegram")


def _holds_definitions(item, size=None):
    """Whether an object definition ({class id, OBIS code, attribute index, data index}, or one of
    version 2 with {restriction, columns} too: size 6) is in item."""
    if item[0] == STRUCT and _definition(item, size):
        return True
    if item[0] == STRUCT or item[0] == ARRAY:
        for sub in item[1]:
            if _holds_definitions(sub, size):
                return True
    return False


def _definition(d, size=None):
    n = len(d[1])
    if n == 6 and (size is None or size == 6):
        restriction, columns = d[1][4], d[1][5]
        if restriction[0] != STRUCT or columns[0] != ARRAY:
            return False
    elif n != 4 or size == 6:
        return False
    cls, code, attr, index = d[1][:4]
    return cls[0] == INT and code[0] == STR and len(code[1]) == 6 and attr[0] == INT and index[0] == INT
