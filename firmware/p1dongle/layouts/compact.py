# Wiener Netze IM350 (IR interface): [date-time] +A, -A, +R, -R, +P, -P [, +Q, -Q], in Wh, varh,
# W, var, nothing else: read with the profile "compact", or by that shape alone.
from .. import obis
from ..axdr import INT, STR
from .common import VARH, VAR, WH, W, LayoutError, leaves

VALUES = (("1-0:1.8.0", WH), ("1-0:2.8.0", WH), ("1-0:3.8.0", VARH), ("1-0:4.8.0", VARH),
          ("1-0:1.7.0", W), ("1-0:2.7.0", W), ("1-0:3.7.0", VAR), ("1-0:4.7.0", VAR))
NAMES = ("compact",)


def claim(reader, body, items):
    if reader.layout == "compact" or (reader.layout == "auto" and _shape(body)):
        return "compact"
    return None


def read(reader, body, layout):
    found = leaves(body)
    numbers = [leaf[1] for leaf in found if leaf[0] == INT]
    if len(numbers) not in (6, 8):
        raise LayoutError("data-notification without OBIS codes and %d numbers: not a known layout"
                          % len(numbers))
    for leaf in found:
        if leaf[0] == STR and len(leaf[1]) == 12:
            reader.clock = leaf[1]      # the reading's own time stamp: better than the header's
            break
    out = []  # type: list
    for k in range(len(numbers)):
        reader.number(out, obis.row(VALUES[k][0]), numbers[k], 0, VALUES[k][1])
    return out


def _shape(body):
    # only double-long-unsigned numbers (6 or 8) and at most a date-time
    n = 0
    for leaf in leaves(body):
        if leaf[0] == INT and leaf[2] == 0x06:
            n += 1
        elif not (leaf[0] == STR and len(leaf[1]) == 12):
            return False
    return n in (6, 8)
