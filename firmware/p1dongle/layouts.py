# What the values of a data-notification (axdr.py) are: the value layouts of the meter families,
# each as its vendor's or utility's document describes it, read into readings (reading.py).
#
#   obis             OBIS code, value, scaler-unit, in any nesting (Netz NOE, TINETZ, Salzburg, VKW,
#                    Poland: Kaifa MA309, Sagemcom T210-D; Aidon NO/SE; Iskra AM550 OBIS lists)
#   kamstrup         list version "Kamstrup_V...", then OBIS code and value pairs, no scaler-units:
#                    the units of Kamstrup's HAN-NVE interface description (energy: see KAMSTRUP)
#   kaifa            list version "KFM_001" and positional values, no OBIS codes (Kaifa MA304 /
#                    MA105, Norway and Sweden): Kaifa's lists of 13 / 18 (three-phase) or 9 / 14
#                    (single-phase) items; list 1 (one number: the power) only once Kaifa is known
#   capture-objects  the push setup's capture objects {class, OBIS, attribute, data index} first,
#                    then the values (Landis+Gyr E450 / E570 / E360, Iskra AM550 in Switzerland):
#                    scalers from the values' own scaler-unit attribute when pushed, else from the
#                    register table of that push setup (CAPTURE_TABLES)
#   structure12      0-6:25.9.0, meter number, time, date, +A, -A, +R, -R, +P, -P [, two texts]
#                    (Siemens IM350 / Iskra AM550: Kaernten Netz structure(12), eww Wels (10))
#   compact          [date-time] +A, -A, +R, -R, +P, -P [, +Q, -Q] (Wiener Netze IM350 IR push)
#
# Never a guess: a value is read only when the push says its scaler and unit, or a family's
# document does; a push whose layout is none of these gives LayoutError and one line saying what
# it looked like and what would help. Electricity codes with B = 1 (Kamstrup, L+G energies) are
# the meter's own channel: they are read as B = 0, as DSMR and Home Assistant know them.
from . import obis
from .axdr import ARRAY, INT, NULL, STR, STRUCT, describe
from .errors import FrameError
from .reading import misfit


class LayoutError(FrameError):
    """A data-notification whose value layout is not known: no telegram, one line."""


# DLMS units (IEC 62056-62) -> (DSMR unit, exponent shift): DSMR writes kWh, kW, kvarh, kvar, kVA.
UNITS = {
    27: ("kW", -3), 28: ("kVA", -3), 29: ("kvar", -3), 30: ("kWh", -3), 31: ("kVAh", -3),
    32: ("kvarh", -3), 33: ("A", 0), 35: ("V", 0), 44: ("Hz", 0), 14: ("m3", 0), 255: (None, 0),
}
W, VA, VAR, WH, VAH, VARH, AMP, VOLT, HZ, M3, NONE = 27, 28, 29, 30, 31, 32, 33, 35, 44, 14, 255

# Scalers by DLMS unit for values a family pushes without a scaler-unit, from its documents.
# Kamstrup HAN-NVE interface description rev 3.1, sections 2.7-2.9: P, Q in W, var (scaler 0),
# I in 0.01 A, U in V. Energies: 10 Wh in Norway (scaler 1), Wh in Sweden ("Swedish Kamstrup uses
# Wh", unlike Norway); the push does not say which: the meter profile must (kamstrup-no, -se).
# Denmark: not settled. Kamstrup's OMNIPOWER HAN specification (5512-2584, section 5) names Wh
# but says "Scaler unit is not part of the push data. Therefore, meter configurations have to be
# known", and the OMNIPOWER technical description has the energy resolution chosen when the
# meter is ordered; readers differ (Wh, or 10 Wh as in Norway), and no Danish capture states a
# register: kamstrup-dk publishes no energy register until a document or a capture settles it.
KAMSTRUP = {W: 0, VAR: 0, AMP: -2, VOLT: 0}
KAMSTRUP_ENERGY = {"kamstrup-no": 1, "kamstrup-se": 0}
# Kaifa HAN OBIS codes KFM_001: the frames carry W, var, mA, 0.1 V, Wh, varh (as every reader of
# them reads them; the document's own kW/kWh column does not match its frames).
KAIFA = {W: 0, VAR: 0, AMP: -3, VOLT: -1, WH: 0, VARH: 0}
# Register tables of the capture-objects pushes (the values carry no scaler), per meter, from the
# Swiss VSE configuration as the utilities' manuals (RWB) and the register maps of Swiss readers
# (smartmeter-datacollector) give them: W, var, Wh, varh, power factor 0.001, and
#   landisgyr-e450  V, 0.01 A        landisgyr-e570  V, A (a current-transformer meter)
#   landisgyr-e360  0.1 V, 0.01 A    iskra-am550     0.1 V, 0.01 A
# With no profile, the push setup tells as much as it can: 0-6:25.9.0 is an AM550 or an E360
# (they agree); 0-8:25.9.0 / 0-9:25.9.0 an E450 or an E570, which do not agree on currents.
CAPTURE_TABLES = {
    "landisgyr-e450": {W: 0, VAR: 0, WH: 0, VARH: 0, NONE: -3, VOLT: 0, AMP: -2},
    "landisgyr-e570": {W: 0, VAR: 0, WH: 0, VARH: 0, NONE: -3, VOLT: 0, AMP: 0},
    "landisgyr-e360": {W: 0, VAR: 0, WH: 0, VARH: 0, NONE: -3, VOLT: -1, AMP: -2},
    "iskra-am550": {W: 0, VAR: 0, WH: 0, VARH: 0, NONE: -3, VOLT: -1, AMP: -2},
}
PUSH_SETUPS = {
    "0-6:25.9.0": CAPTURE_TABLES["iskra-am550"],
    "0-8:25.9.0": {W: 0, VAR: 0, WH: 0, VARH: 0, NONE: -3, VOLT: 0},
    "0-9:25.9.0": {W: 0, VAR: 0, WH: 0, VARH: 0, NONE: -3, VOLT: 0},
}
# structure12: the utilities' customer-interface documents (Wiener Netze, Kaernten Netz, eww Wels)
STRUCTURE12 = (("1-0:1.8.0", WH), ("1-0:2.8.0", WH), ("1-0:3.8.0", VARH), ("1-0:4.8.0", VARH),
               ("1-0:1.7.0", W), ("1-0:2.7.0", W))
_PUSH_SETUP_0_6 = b"\x00\x06\x19\x09\x00\xff"
# compact: Wiener Netze IM350 (IR interface): Wh, varh, W, var in this order
COMPACT = (("1-0:1.8.0", WH), ("1-0:2.8.0", WH), ("1-0:3.8.0", VARH), ("1-0:4.8.0", VARH),
           ("1-0:1.7.0", W), ("1-0:2.7.0", W), ("1-0:3.7.0", VAR), ("1-0:4.7.0", VAR))
# kaifa: positions of list 2 / list 3, three-phase and single-phase
_KAIFA_IDS = ("1-0:0.2.129", "0-0:96.1.0", "0-0:96.1.7")
_KAIFA_POWER = ("1-0:1.7.0", "1-0:2.7.0", "1-0:3.7.0", "1-0:4.7.0")
_KAIFA_3P = _KAIFA_IDS + _KAIFA_POWER + ("1-0:31.7.0", "1-0:51.7.0", "1-0:71.7.0", "1-0:32.7.0", "1-0:52.7.0", "1-0:72.7.0")
_KAIFA_1P = _KAIFA_IDS + _KAIFA_POWER + ("1-0:31.7.0", "1-0:32.7.0")
_KAIFA_ENERGY = ("0-0:1.0.0", "1-0:1.8.0", "1-0:2.8.0", "1-0:3.8.0", "1-0:4.8.0")
KAIFA_LISTS = {13: _KAIFA_3P, 18: _KAIFA_3P + _KAIFA_ENERGY, 9: _KAIFA_1P, 14: _KAIFA_1P + _KAIFA_ENERGY}

LAYOUTS = ("auto", "obis", "kamstrup", "kamstrup-no", "kamstrup-se", "kamstrup-dk", "kaifa",
           "capture-objects", "structure12", "compact") + tuple(CAPTURE_TABLES)


class Layouts:
    """Reads one meter's data-notifications. layout: the meter profile's (meters.py), or "auto"
    to tell the layout by its shape. After each push, `notice` is a line to report (a value the
    push gave without its unit, said once per code), or None."""

    def __init__(self, layout="auto"):
        self.layout = layout
        self.kaifa = layout == "kaifa"  # Kaifa's list 1 has no name: known from a list 2/3 or the profile
        self.notice = None
        self._noticed = []

    def readings(self, note):
        """(readings, 12-byte clock or None) of a Notification. Raises LayoutError."""
        self.notice = None
        body = note.body
        layout = self._layout(body)
        self.clock = note.clock
        if layout == "obis":
            out = self._obis(body)
        elif layout.startswith("kamstrup"):
            out = self._kamstrup(body, layout)
        elif layout == "kaifa":
            out = self._kaifa(body)
        elif layout == "capture-objects" or layout in CAPTURE_TABLES:
            out = self._capture_objects(body, CAPTURE_TABLES.get(layout))
        elif layout == "structure12":
            out = self._structure12(body)
        else:
            out = self._compact(body)
        stamp = iso_time(self.clock)
        if stamp and not _named(out, "powerTs"):
            out.insert(0, (obis.row("0-0:1.0.0"), stamp))
        return out, self.clock

    # -- which layout --------------------------------------------------------------------------

    def _layout(self, body):
        items = body[1] if body[0] == STRUCT or body[0] == ARRAY else None
        first = items[0] if items else None
        if first is not None and first[0] == ARRAY and _descriptors(first):
            return self.layout if self.layout in CAPTURE_TABLES else "capture-objects"
        if _holds_definitions(body):
            # class id, OBIS code, attribute and data index (and in a push setup's list of
            # version 2, a restriction and columns): what a meter pushes, described, never a
            # value; read as code-value pairs, an attribute index would become a meter number
            raise LayoutError("a push-object list (per object: class id, OBIS code, attribute, data index%s), "
                              "a description of what a meter pushes, not its values: no telegram"
                              % (", restriction, columns" if _holds_definitions(body, 6) else ""))
        if first is not None and first[0] == STR and first[1][:10] == b"Kamstrup_V":
            return self.layout if self.layout.startswith("kamstrup") else "kamstrup"
        if first is not None and first[0] == STR and first[1] == b"KFM_001" and len(items) in KAIFA_LISTS:
            self.kaifa = True
            return "kaifa"
        if items is not None and len(items) == 1 and items[0][0] == INT and self.kaifa:
            return "kaifa"                      # list 1: the power, every 2 s
        if items is not None and len(items) in (10, 12) and first[0] == STR and first[1] == _PUSH_SETUP_0_6:
            return "structure12"
        if _has_obis(body):
            return "obis"
        if self.layout == "compact" or (self.layout == "auto" and _compact_shape(body)):
            return "compact"
        raise LayoutError("unknown value layout: %s (a meter profile may say it: meter %s; or send a capture "
                          "of it so that it can be read)" % (describe(body), _profile_hint(body)))

    # -- the layouts -----------------------------------------------------------------------------

    def _obis(self, body):
        leaves = []  # type: list
        _flatten(body, leaves)
        out = []  # type: list
        i = 0
        n = len(leaves)
        while i < n:
            leaf = leaves[i]
            i += 1
            if not _is_obis(leaf) or i >= n:
                if leaf[0] == STR and i == n and _printable(leaf[1]) and not _named(out, "meterNumber"):
                    out.append((obis.row("0-0:96.1.0"), _text(leaf[1])))    # Netz NOE: the meter number last
                continue
            row = _row(leaf[1], False)
            value = leaves[i]
            i += 1
            scale = None
            if i < n and leaves[i][0] == _SCALE:
                scale = leaves[i]
                i += 1
            if value[0] == STR:
                self._string(out, row, value[1])
            elif value[0] == INT:
                if scale is not None:
                    self._number(out, row, value[1], scale[1], scale[2])
                elif row[obis.UNIT] is None and row[obis.DLMS] is None:
                    self._number(out, row, value[1], 0, NONE)    # a count or a state: no unit
                else:
                    self._unscaled(row)
        return out

    def _kamstrup(self, body, layout):
        items = body[1]
        if len(items) % 2 != 1:
            raise LayoutError("Kamstrup list of %d items: not a list version and code-value pairs" % len(items))
        energy = KAMSTRUP_ENERGY.get(layout)
        out = [(obis.row("1-0:0.2.129"), _text(_str(items, 0, "Kamstrup list")))]
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
            row = _row(code[1], True)
            if value[0] == STR:
                self._string(out, row, value[1])
            elif value[0] == INT:
                unit = row[obis.DLMS]
                scaler = KAMSTRUP.get(unit)
                if scaler is None and (unit == WH or unit == VARH) and energy is not None:
                    scaler = energy
                if scaler is not None:
                    self._number(out, row, value[1], scaler, unit)
                elif (unit == WH or unit == VARH) and layout == "kamstrup-dk":
                    self._say("Danish Kamstrup energy registers not published: the push carries no scaler and "
                              "Kamstrup's HAN specification leaves it to the meter's configuration (Wh or 10 Wh)")
                elif unit == WH or unit == VARH:
                    self._say("Kamstrup energy registers not published: their unit depends on the country "
                              "(set meter: kamstrup-no for 10 Wh, kamstrup-se for Wh)")
                else:
                    self._unscaled(row)
            elif value[0] != NULL:      # null-data: a single-phase meter's missing phases
                raise LayoutError("Kamstrup list: item %d is %s, not a value" % (k + 1, describe(value)))
        return out

    def _kaifa(self, body):
        items = body[1]
        out = []  # type: list
        if len(items) == 1:
            self._number(out, obis.row("1-0:1.7.0"), _int(items, 0, "Kaifa list 1"), 0, W)
            return out
        codes = KAIFA_LISTS[len(items)]
        for k in range(len(codes)):
            row = obis.row(codes[k])
            unit = row[obis.DLMS]
            if unit is None:
                self._string(out, row, _str(items, k, "Kaifa list"))
            else:
                self._number(out, row, _int(items, k, "Kaifa list"), KAIFA[unit], unit)
        return out

    def _capture_objects(self, body, table):
        items = body[1]
        descriptors = items[0][1]
        if len(descriptors) != len(items):
            raise LayoutError("capture objects: %d described, %d values" % (len(descriptors), len(items)))
        setup = _code(_descriptor(descriptors[0])[1])   # the push setup lists itself first
        if table is None:
            table = PUSH_SETUPS.get(setup)
        scalers = {}
        for k in range(1, len(items)):
            cls, code, attr = _descriptor(descriptors[k])
            v = items[k]
            if attr == 3 and v[0] != NULL:                  # the meter's own scaler-unit
                if not _is_scaler_unit(v):
                    raise LayoutError("capture objects: the scaler-unit of %s is %s, not {integer, enum}"
                                      % (_code(code), describe(v)))
                scalers[code] = (v[1][0][1], v[1][1][1])
        out = []  # type: list
        for k in range(1, len(items)):
            cls, code, attr = _descriptor(descriptors[k])
            v = items[k]
            if attr != 2 or cls == 40 or v[0] == NULL:
                continue
            row = _row(code, False)
            if v[0] == STR:
                self._string(out, row, v[1])
            elif v[0] == INT:
                if code in scalers:
                    self._number(out, row, v[1], scalers[code][0], scalers[code][1])
                elif row[obis.DLMS] is None and row[obis.UNIT] is None:
                    self._number(out, row, v[1], 0, NONE)
                elif table is not None and row[obis.DLMS] in table:
                    self._number(out, row, v[1], table[row[obis.DLMS]], row[obis.DLMS])
                elif row[obis.DLMS] == AMP and setup in PUSH_SETUPS:
                    self._say("currents not published: a Landis+Gyr E450 sends them in 0.01 A, an E570 in A "
                              "(set meter: landisgyr-e450 or landisgyr-e570)")
                else:
                    self._unscaled(row)
        return out

    def _structure12(self, body):
        items = body[1]
        what = "0-6:25.9.0 structure"
        number = _str(items, 1, what)
        time = _str(items, 2, what)
        date = _str(items, 3, what)
        values = [_int(items, 4 + k, what) for k in range(6)]
        out = [(obis.row("0-0:96.1.0"), _text(number))]
        for k in range(6):
            code, unit = STRUCTURE12[k]
            self._number(out, obis.row(code), values[k], 0, unit)
        if self.clock is None:
            self.clock = _clock_of(date, time)
        return out

    def _compact(self, body):
        leaves = []  # type: list
        _flatten(body, leaves)
        numbers = [leaf[1] for leaf in leaves if leaf[0] == INT]
        if len(numbers) not in (6, 8):
            raise LayoutError("data-notification without OBIS codes and %d numbers: not a known layout"
                              % len(numbers))
        for leaf in leaves:
            if leaf[0] == STR and len(leaf[1]) == 12:
                self.clock = leaf[1]        # the reading's own time stamp: better than the header's
                break
        out = []  # type: list
        for k in range(len(numbers)):
            self._number(out, obis.row(COMPACT[k][0]), numbers[k], 0, COMPACT[k][1])
        return out

    # -- helpers ---------------------------------------------------------------------------------

    def _string(self, out, row, raw):
        if len(raw) == 12 and row[obis.KIND] == obis.TIME:
            self.clock = raw                # the meter's clock: better than the header's
            out.append((row, iso_time(raw) or _text(raw)))
        else:
            out.append((row, _text(raw)))

    def _number(self, out, row, mantissa, scaler, unit):
        """Add the reading mantissa * 10**scaler in DLMS unit `unit` (in DSMR's: Wh as kWh...) to
        out, unless it cannot be the number the meter has (reading.misfit: what a wrong scaler
        makes): then it is left out, and one line says so."""
        value = _scaled(mantissa, scaler, unit)
        why = misfit(row, value)
        if why is None:
            out.append((row, value))
        else:
            self._say("%s not published: %s (scaler %d)" % (row[obis.CODE], why, scaler))

    def _unscaled(self, row):
        self._say("%s: the push gives no scaler or unit for it, and none is documented for this meter: "
                  "not published" % row[obis.CODE])

    def _say(self, line):
        # once per line, for as long as the dongle runs (a push repeats every few seconds)
        if line not in self._noticed and len(self._noticed) < 16:
            self._noticed.append(line)
            self.notice = line if self.notice is None else self.notice + "; " + line


_SCALE = 6                      # a leaf of _flatten: (_SCALE, scaler, unit)


def _flatten(item, out):
    """The leaves of an item in order; a structure {integer, enum} is one scaler-unit leaf."""
    kind = item[0]
    if kind == ARRAY or kind == STRUCT:
        sub = item[1]
        if _is_scaler_unit(item):
            out.append((_SCALE, sub[0][1], sub[1][1]))
            return
        for x in sub:
            _flatten(x, out)
    else:
        out.append(item)


def _is_scaler_unit(item):
    # A scaler-unit as DLMS defines it: structure {integer (int8, -128..127), enum}. A scaler of
    # another type (a double-long: 2**31) is none: it would make a reading's exponent.
    if item[0] != STRUCT or len(item[1]) != 2:
        return False
    scaler, unit = item[1]
    return scaler[0] == INT and scaler[2] == 0x0F and unit[0] == INT and unit[2] == 0x16


_KINDS = {STR: "a string", INT: "a number"}


def _item(items, k, kind, what):
    """The value of items[k] (bytes of a string, a number) when it is of that kind (STR, INT);
    else LayoutError, one line naming the item and what the push had there."""
    if k >= len(items):
        raise LayoutError("%s: item %d missing" % (what, k))
    item = items[k]
    if item[0] != kind:
        raise LayoutError("%s: item %d is %s, not %s" % (what, k, describe(item), _KINDS[kind]))
    return item[1]


def _str(items, k, what):
    return _item(items, k, STR, what)


def _int(items, k, what):
    return _item(items, k, INT, what)


def _is_obis(leaf):
    # An OBIS code as pushed: 6 bytes, medium A 0 (abstract) or 1 (electricity), F = 255.
    return leaf[0] == STR and len(leaf[1]) == 6 and leaf[1][0] <= 1 and leaf[1][5] == 0xFF


def _has_obis(body):
    leaves = []  # type: list
    _flatten(body, leaves)
    for leaf in leaves:
        if _is_obis(leaf):
            return True
    return False


def _compact_shape(body):
    # only double-long-unsigned numbers (6 or 8) and at most a date-time
    leaves = []  # type: list
    _flatten(body, leaves)
    n = 0
    for leaf in leaves:
        if leaf[0] == INT and leaf[2] == 0x06:
            n += 1
        elif not (leaf[0] == STR and len(leaf[1]) == 12):
            return False
    return n in (6, 8)


def _descriptors(item):
    # an array of capture object definitions {long-unsigned class, octet-string(6), integer, long-unsigned}
    for d in item[1]:
        if _descriptor(d) is None:
            return False
    return len(item[1]) > 1


def _holds_definitions(item, size=None):
    """Whether an object definition (a capture object's {class id, OBIS code, attribute index,
    data index}, or a push setup's of version 2 with {restriction, columns} too) is in item."""
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


def _descriptor(d):
    if d[0] != STRUCT or len(d[1]) != 4:
        return None
    cls, code, attr, index = d[1]
    if cls[0] != INT or code[0] != STR or len(code[1]) != 6 or attr[0] != INT or index[0] != INT:
        return None
    return cls[1], code[1], attr[1]


def _code(code):
    """A 6-byte OBIS code as text, A-B:C.D.E."""
    return "%d-%d:%d.%d.%d" % (code[0], code[1], code[2], code[3], code[4])


def _row(code, abstract_channel):
    """The OBIS table's row of a 6-byte code. B = 1 of electricity is the meter's own channel and
    read as B = 0; abstract_channel: the same for A = 0 (Kamstrup's clock, 0-1:1.0.0)."""
    a, b = code[0], code[1]
    if b == 1 and (a == 1 or (a == 0 and abstract_channel)):
        b = 0
    if a <= 7 and b <= 7:
        return obis.by_key((((a * 8 + b) * 256 + code[2]) * 256 + code[3]) * 256 + code[4])
    return obis.row("%d-%d:%d.%d.%d" % (a, b, code[2], code[3], code[4]))


def _scaled(mantissa, scaler, unit):
    shown, extra = UNITS.get(unit, (None, 0))
    return (mantissa, scaler + extra, shown)


def _printable(b):
    for c in b:
        if c < 0x20 or c > 0x7E:
            return False
    return len(b) > 0


def _text(b):
    """An octet string as text: as it reads when it is printable ASCII (trailing NULs, spaces and
    padding dropped), else its hex digits."""
    end = len(b)
    while end and (b[end - 1] == 0 or b[end - 1] == 0x20):
        end -= 1
    raw = b[:end]
    if _printable(raw):
        return bytes(raw).decode()
    return "".join("%02X" % c for c in b)


def _named(readings, name):
    for r in readings:
        if r[0][obis.NAME] == name:
            return True
    return False


def _clock_of(date, time):
    """A 12-byte DLMS date-time from a date (year hi, lo, month, day, weekday) and a time (hour,
    minute, second, hundredths), deviation and daylight saving not given."""
    if len(date) != 5 or len(time) != 4:
        return None
    return bytes(date) + bytes(time) + b"\x80\x00\xff"


def iso_time(dt):
    """A 12-byte DLMS date-time -> ISO 8601 with its UTC offset, or None when it is no usable time.
    The offset is the deviation the meter sends (minutes from local time to UTC, so CET is -60);
    when it sends none (0x8000), CET/CEST by the daylight-saving bit, as DSMR assumes."""
    if dt is None or len(dt) != 12:
        return None
    year = (dt[0] << 8) | dt[1]
    if year == 0xFFFF or not 1 <= dt[2] <= 12 or not 1 <= dt[3] <= 31 or dt[5] > 23 or dt[6] > 59 or dt[7] > 59:
        return None
    deviation = (dt[9] << 8) | dt[10]
    if deviation == 0x8000:
        offset = 120 if dt[11] != 0xFF and dt[11] & 0x80 else 60
    else:
        offset = -(deviation - 0x10000 if deviation & 0x8000 else deviation)
    sign = "-" if offset < 0 else "+"
    offset = -offset if offset < 0 else offset
    return "%04d-%02d-%02dT%02d:%02d:%02d%s%02d:%02d" % (
        year, dt[2], dt[3], dt[5], dt[6], dt[7], sign, offset // 60, offset % 60)


def _profile_hint(body):
    items = body[1] if body[0] == STRUCT or body[0] == ARRAY else []  # type: list
    if len(items) == 1 and items[0][0] == INT:
        return "kaifa (a Kaifa list 1 carries only its power)"
    return "auto (no profile reads this one yet)"
