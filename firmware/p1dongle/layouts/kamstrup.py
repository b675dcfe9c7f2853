# Kamstrup (Norway, Sweden, Denmark, Switzerland): the list version "Kamstrup_V...", then OBIS code
# and value pairs, no scaler-units: the units of Kamstrup's HAN-NVE interface description.
from .. import obis
from ..axdr import INT, NULL, STR, describe
from .common import AMP, VAR, VARH, VOLT, WH, W, LayoutError, row_of, string_at, text

# Kamstrup HAN-NVE interface description rev 3.1, sections 2.7-2.9: P, Q in W, var (scaler 0),
# I in 0.01 A, U in V. Energies: 10 Wh in Norway (scaler 1), Wh in Sweden ("Swedish Kamstrup uses
# Wh", unlike Norway); the push does not say which: the meter profile must (kamstrup-no, -se).
# Denmark: not settled. Kamstrup's OMNIPOWER HAN specification (5512-2584, section 5) names Wh
# but says "Scaler unit is not part of the push data. Therefore, meter configurations have to be
# known", and the OMNIPOWER technical description has the energy resolution chosen when the
# meter is ordered; readers differ (Wh, or 10 Wh as in Norway), and no Danish capture states a
# register: kamstrup-dk publishes no energy register until a document or a capture settles it.
SCALERS = {W: 0, VAR: 0, AMP: -2, VOLT: 0}
ENERGY = {"kamstrup-no": 1, "kamstrup-se": 0}
NAMES = ("kamstrup", "kamstrup-no", "kamstrup-se", "kamstrup-dk")


def claim(reader, body, items):
    first = items[0] if items else None
    if first is not None and first[0] == STR and first[1][:10] == b"Kamstrup_V":
        return reader.layout if reader.layout in NAMES else "kamstrup"
    return None


def read(reader, body, layout):
    items = body[1]
    if len(items) % 2 != 1:
        raise LayoutError("Kamstrup list of %d items: not a list version and code-value pairs" % len(items))
    energy = ENERGY.get(layout)
    out = [(obis.row("1-0:0.2.129"), text(string_at(items, 0, "Kamstrup list")))]
    for k in range(1, len(items), 2):
        code, value = items[k], items[k + 1]
        if code[0] == NULL:
            # a single-phase meter keeps the three-phase list's 25 / 35 items and puts a
            # null-data code and a null-data value where L2's and L3's current and voltage
            # would be (obinsect's capture of a 6861111); a null code before a value would
            # leave that value without its code: no telegram
            if value[0] != NULL:
                raise LayoutError("Kamstrup list: item %d is null-data, but its value, item %d, is %s"
                                  % (k, k + 1, describe(value)))
            continue
        if code[0] != STR or len(code[1]) != 6:
            raise LayoutError("Kamstrup list: item %d is not an OBIS code: %s" % (k, describe(code)))
        row = row_of(code[1], True)
        if value[0] == STR:
            reader.string(out, row, value[1])
        elif value[0] == INT:
            _number(reader, out, row, value[1], layout, energy)
        elif value[0] != NULL:      # null-data: a single-phase meter's missing phases
            raise LayoutError("Kamstrup list: item %d is %s, not a value" % (k + 1, describe(value)))
    return out


def _number(reader, out, row, mantissa, layout, energy):
    unit = row[obis.DLMS]
    scaler = SCALERS.get(unit)
    if scaler is None and (unit == WH or unit == VARH) and energy is not None:
        scaler = energy
    if scaler is not None:
        reader.number(out, row, mantissa, scaler, unit)
    elif (unit == WH or unit == VARH) and layout == "kamstrup-dk":
        reader.say("Danish Kamstrup energy registers not published: the push carries no scaler and "
                   "Kamstrup's HAN specification leaves it to the meter's configuration (Wh or 10 Wh)")
    elif unit == WH or unit == VARH:
        reader.say("Kamstrup energy registers not published: their unit depends on the country "
                   "(set meter: kamstrup-no for 10 Wh, kamstrup-se for Wh)")
    else:
        reader.unscaled(row)
