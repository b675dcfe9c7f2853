# Every quantity the dongle knows, one row each: the one place that says what an OBIS code is.
#
# The telegram parser (dsmr.py), the DLMS decoder (axdr.py), the telegram renderer (render.py),
# the state JSON (state.py) and Home Assistant discovery (mqttout.py) all read these rows; adding
# a register is one row here.
#
#   code    OBIS as a DSMR telegram writes it, A-B:C.D.E; "0-n:" rows are M-Bus channels 1-4
#           (gas, water, heat meters), "*" in their name becomes the channel number
#   name    the stable machine name: JSON, MQTT state, unique ids (the names our first users know
#           from smartmeter2mqtt: totalImportedEnergyP, currentUsage, voltageL1, ...)
#   label   the human name (Home Assistant)
#   kind    how the telegram writes the value (NUM, TEXT, HEX, TIME, LOG, PEAKS, GAS22, below)
#   unit    the DSMR unit of the value (None: no unit)
#   digits  integer digits and decimals a rendered telegram writes (DSMR 5: energy F9(3,3) is
#   decimals  000000.000, power F5(3,3) 00.000, voltage F4(1,1) 000.0)
#   ha      the Home Assistant kind of sensor (HA below), None: not announced
#   dlms    the DLMS unit (IEC 62056-62) the quantity is measured in: what a meter family's
#           documented scaler applies to when its pushes carry none (layouts/); None: no unit
#
# Codes not in the table are still read and published, under the code itself, with the unit the
# telegram gives: nothing the meter sends is lost. An electricity energy or power register among
# them still has its unit (_measured): without a scaler it is withheld as a known one would be.

from .compat import const

# kinds: how a telegram writes the value
NUM = const(0)      # (value[*unit]), or (time stamp)(value*unit) for readings with their own time
TEXT = const(1)     # text as written: versions, message codes, meter numbers (leading zeros kept)
HEX = const(2)      # text written as hex digits (equipment identifiers, messages)
TIME = const(3)     # a time stamp YYMMDDhhmmssX, published as ISO 8601
LOG = const(4)      # the power failure log: (count)(code)(end time)(duration*s)...
PEAKS = const(5)    # Belgian peak history: (count)(code)(code) then (start)(time)(value*kW) per month
GAS22 = const(6)    # DSMR 2.2/3 gas: (time)(status)(interval)(count)(code)(unit) then (value)

# fields of a row
CODE = const(0)
NAME = const(1)
LABEL = const(2)
KIND = const(3)
UNIT = const(4)
DIGITS = const(5)
DECIMALS = const(6)
HA = const(7)
DLMS = const(8)

# The dlms column holds DLMS units (IEC 62056-62): 27 W, 28 VA, 29 var, 30 Wh, 31 VAh, 32 varh,
# 33 A, 35 V, 44 Hz, 14 m3, 255 none (a power factor). The rows are literals only, so that a frozen
# build keeps them in flash.
#
# Each DLMS unit as DSMR writes it (kWh, kW, kvarh, kvar, kVA), with the exponent shift from the
# DLMS unit's: what a push's value becomes (layouts), and a made row's DLMS unit (by_key).
DLMS_UNITS = (
    (27, "kW", -3), (28, "kVA", -3), (29, "kvar", -3), (30, "kWh", -3), (31, "kVAh", -3),
    (32, "kvarh", -3), (33, "A", 0), (35, "V", 0), (44, "Hz", 0), (14, "m3", 0), (255, None, 0),
)

# Home Assistant sensor kinds: ha -> (device_class, state_class, the units Home Assistant takes
# for that class in every release since 2024.1, the unit to write when the reading's is none of
# them). A reading in a unit Home Assistant takes goes out as it is, digits untouched (kW stays
# kW); only var and VA are converted (kvar and kVA came with 2025.5 and 2025.10). Reactive energy
# has no class before 2025.6, so it goes without one. "threshold" has no state class: a fixed
# limit is no measurement to keep statistics of. "timestamp" and "text" are diagnostics. (Rows of
# a tuple, as every table here: frozen, they cost the heap nothing, where a dict is built in it.)
HA_KINDS = (
    ("energy", "energy", "total_increasing", ("Wh", "kWh", "MWh", "GJ"), "kWh"),
    ("power", "power", "measurement", ("W", "kW"), "kW"),
    ("reactive_power", "reactive_power", "measurement", ("var",), "var"),
    ("apparent_power", "apparent_power", "measurement", ("VA",), "VA"),
    ("reactive_energy", None, "total_increasing", ("varh", "kvarh"), "kvarh"),
    ("voltage", "voltage", "measurement", ("V",), "V"),
    ("current", "current", "measurement", ("A",), "A"),
    ("frequency", "frequency", "measurement", ("Hz",), "Hz"),
    ("power_factor", "power_factor", "measurement", (None,), None),
    ("gas", "gas", "total_increasing", ("m³",), "m³"),
    ("counter", None, "total_increasing", (None,), None),
    ("threshold", None, None, None, None),
    ("timestamp", "timestamp", None, (None,), None),
    ("text", None, None, (None,), None),
)


def ha_kind(kind):
    """(device_class, state_class, units, unit to write) of a Home Assistant kind (HA_KINDS)."""
    for row in HA_KINDS:
        if row[0] == kind:
            return row[1:]
    raise KeyError(kind)

ROWS = (
    # code            name                       label                        kind   unit     digits dec  ha   dlms
    ("/",             "header",                  "Identification",            TEXT,  None,    0, 0, None, None),
    ("1-3:0.2.8",     "p1Version",               "DSMR version",              TEXT,  None,    0, 0, "text", None),
    ("0-0:96.1.4",    "versionInfo",             "Version information",       TEXT,  None,    0, 0, None, None),
    ("0-0:1.0.0",     "powerTs",                 "Meter time",                TIME,  None,    0, 0, "timestamp", None),
    ("0-0:96.1.1",    "meterId",                 "Equipment identifier",      HEX,   None,    0, 0, "text", None),
    ("0-0:96.1.0",    "meterNumber",             "Meter number",              TEXT,  None,    0, 0, "text", None),
    ("0-0:96.1.7",    "meterType",               "Meter type",                TEXT,  None,    0, 0, None, None),
    ("1-0:0.2.129",   "listVersion",             "OBIS list version",         TEXT,  None,    0, 0, None, None),
    ("1-0:0.0.5",     "gs1Number",               "GS1 number",                TEXT,  None,    0, 0, None, None),
    ("1-0:0.0.1",     "meterSerial",             "Meter serial number",       TEXT,  None,    0, 0, None, None),
    ("1-0:96.1.1",    "meterModel",              "Meter model",               TEXT,  None,    0, 0, None, None),
    ("0-0:42.0.0",    "logicalDeviceName",       "Logical device name",       HEX,   None,    0, 0, "text", None),
    # energy registers
    ("1-0:1.8.0",     "totalImportedEnergyP",    "Energy import",             NUM,   "kWh",   6, 3, "energy", 30),
    ("1-0:2.8.0",     "totalExportedEnergyP",    "Energy export",             NUM,   "kWh",   6, 3, "energy", 30),
    ("1-0:3.8.0",     "totalImportedEnergyQ",    "Reactive energy import",    NUM,   "kvarh", 6, 3, "reactive_energy", 32),
    ("1-0:4.8.0",     "totalExportedEnergyQ",    "Reactive energy export",    NUM,   "kvarh", 6, 3, "reactive_energy", 32),
    ("1-0:5.8.0",     "totalReactiveEnergyQ1",   "Reactive energy Q1",        NUM,   "kvarh", 6, 3, "reactive_energy", 32),
    ("1-0:6.8.0",     "totalReactiveEnergyQ2",   "Reactive energy Q2",        NUM,   "kvarh", 6, 3, "reactive_energy", 32),
    ("1-0:7.8.0",     "totalReactiveEnergyQ3",   "Reactive energy Q3",        NUM,   "kvarh", 6, 3, "reactive_energy", 32),
    ("1-0:8.8.0",     "totalReactiveEnergyQ4",   "Reactive energy Q4",        NUM,   "kvarh", 6, 3, "reactive_energy", 32),
    ("1-0:1.8.1",     "totalImportedEnergyT1",   "Energy import tariff 1",    NUM,   "kWh",   6, 3, "energy", 30),
    ("1-0:1.8.2",     "totalImportedEnergyT2",   "Energy import tariff 2",    NUM,   "kWh",   6, 3, "energy", 30),
    ("1-0:1.8.3",     "totalImportedEnergyT3",   "Energy import tariff 3",    NUM,   "kWh",   6, 3, "energy", 30),
    ("1-0:1.8.4",     "totalImportedEnergyT4",   "Energy import tariff 4",    NUM,   "kWh",   6, 3, "energy", 30),
    ("1-0:2.8.1",     "totalExportedEnergyT1",   "Energy export tariff 1",    NUM,   "kWh",   6, 3, "energy", 30),
    ("1-0:2.8.2",     "totalExportedEnergyT2",   "Energy export tariff 2",    NUM,   "kWh",   6, 3, "energy", 30),
    ("1-0:2.8.3",     "totalExportedEnergyT3",   "Energy export tariff 3",    NUM,   "kWh",   6, 3, "energy", 30),
    ("1-0:2.8.4",     "totalExportedEnergyT4",   "Energy export tariff 4",    NUM,   "kWh",   6, 3, "energy", 30),
    ("0-0:96.14.0",   "currentTariff",           "Tariff",                    NUM,   None,    4, 0, "text", None),
    # power
    ("1-0:1.7.0",     "currentUsage",            "Power import",              NUM,   "kW",    2, 3, "power", 27),
    ("1-0:2.7.0",     "currentDelivery",         "Power export",              NUM,   "kW",    2, 3, "power", 27),
    ("1-0:3.7.0",     "currentReactiveUsage",    "Reactive power import",     NUM,   "kvar",  2, 3, "reactive_power", 29),
    ("1-0:4.7.0",     "currentReactiveDelivery", "Reactive power export",     NUM,   "kvar",  2, 3, "reactive_power", 29),
    ("1-0:9.7.0",     "currentApparentUsage",    "Apparent power import",     NUM,   "kVA",   2, 3, "apparent_power", 28),
    ("1-0:10.7.0",    "currentApparentDelivery", "Apparent power export",     NUM,   "kVA",   2, 3, "apparent_power", 28),
    ("1-0:13.7.0",    "powerFactor",             "Power factor",              NUM,   None,    1, 3, "power_factor", 255),
    ("1-0:33.7.0",    "powerFactorL1",           "Power factor L1",           NUM,   None,    1, 3, "power_factor", 255),
    ("1-0:53.7.0",    "powerFactorL2",           "Power factor L2",           NUM,   None,    1, 3, "power_factor", 255),
    ("1-0:73.7.0",    "powerFactorL3",           "Power factor L3",           NUM,   None,    1, 3, "power_factor", 255),
    ("1-0:14.7.0",    "frequency",               "Frequency",                 NUM,   "Hz",    2, 2, "frequency", 44),
    # Belgium (e-MUCS): demand, peaks, limiter
    ("1-0:1.4.0",     "currentAverageDemand",    "Average demand",            NUM,   "kW",    2, 3, "power", 27),
    ("1-0:1.6.0",     "maximumDemandMonth",      "Peak demand this month",    NUM,   "kW",    2, 3, "power", 27),
    ("0-0:98.1.0",    "maximumDemandHistory",    "Peak demand history",       PEAKS, "kW",    2, 3, None, None),
    ("0-0:17.0.0",    "powerLimit",              "Power limit",               NUM,   "kVA",   3, 1, "threshold", None),
    ("1-0:31.4.0",    "fuseThresholdL1",         "Fuse threshold L1",         NUM,   "A",     3, 0, "threshold", None),
    ("1-1:31.4.0",    "currentLimit",            "Current limit",             NUM,   "A",     3, 0, None, None),
    ("0-0:96.3.10",   "breakerControlState",     "Breaker state",             NUM,   None,    1, 0, "text", None),
    ("0-1:96.3.10",   "relay1ControlState",      "Relay 1 state",             NUM,   None,    1, 0, None, None),
    ("0-2:96.3.10",   "relay2ControlState",      "Relay 2 state",             NUM,   None,    1, 0, None, None),
    # power quality
    ("0-0:96.7.21",   "powerFailures",           "Power failures",            NUM,   None,    5, 0, "counter", None),
    ("0-0:96.7.9",    "longPowerFailures",       "Long power failures",       NUM,   None,    5, 0, "counter", None),
    ("1-0:99.97.0",   "powerFailureLog",         "Power failure log",         LOG,   "s",     10, 0, None, None),
    ("1-0:32.32.0",   "voltageSagsL1",           "Voltage sags L1",           NUM,   None,    5, 0, "counter", None),
    ("1-0:52.32.0",   "voltageSagsL2",           "Voltage sags L2",           NUM,   None,    5, 0, "counter", None),
    ("1-0:72.32.0",   "voltageSagsL3",           "Voltage sags L3",           NUM,   None,    5, 0, "counter", None),
    ("1-0:32.36.0",   "voltageSwellsL1",         "Voltage swells L1",         NUM,   None,    5, 0, "counter", None),
    ("1-0:52.36.0",   "voltageSwellsL2",         "Voltage swells L2",         NUM,   None,    5, 0, "counter", None),
    ("1-0:72.36.0",   "voltageSwellsL3",         "Voltage swells L3",         NUM,   None,    5, 0, "counter", None),
    # messages
    ("0-0:96.13.0",   "message",                 "Message",                   HEX,   None,    0, 0, None, None),
    ("0-0:96.13.1",   "messageCode",             "Message code",              TEXT,  None,    0, 0, None, None),
    ("0-0:96.13.2",   "message2",                "Message 2",                 HEX,   None,    0, 0, None, None),
    ("0-0:96.13.3",   "message3",                "Message 3",                 HEX,   None,    0, 0, None, None),
    ("0-0:96.13.4",   "message4",                "Message 4",                 HEX,   None,    0, 0, None, None),
    ("0-0:96.13.5",   "message5",                "Message 5",                 HEX,   None,    0, 0, None, None),
    # per phase
    ("1-0:32.7.0",    "voltageL1",               "Voltage L1",                NUM,   "V",     3, 1, "voltage", 35),
    ("1-0:52.7.0",    "voltageL2",               "Voltage L2",                NUM,   "V",     3, 1, "voltage", 35),
    ("1-0:72.7.0",    "voltageL3",               "Voltage L3",                NUM,   "V",     3, 1, "voltage", 35),
    ("1-0:31.7.0",    "currentL1",               "Current L1",                NUM,   "A",     3, 2, "current", 33),
    ("1-0:51.7.0",    "currentL2",               "Current L2",                NUM,   "A",     3, 2, "current", 33),
    ("1-0:71.7.0",    "currentL3",               "Current L3",                NUM,   "A",     3, 2, "current", 33),
    ("1-0:21.7.0",    "currentUsageL1",          "Power import L1",           NUM,   "kW",    2, 3, "power", 27),
    ("1-0:41.7.0",    "currentUsageL2",          "Power import L2",           NUM,   "kW",    2, 3, "power", 27),
    ("1-0:61.7.0",    "currentUsageL3",          "Power import L3",           NUM,   "kW",    2, 3, "power", 27),
    ("1-0:22.7.0",    "currentDeliveryL1",       "Power export L1",           NUM,   "kW",    2, 3, "power", 27),
    ("1-0:42.7.0",    "currentDeliveryL2",       "Power export L2",           NUM,   "kW",    2, 3, "power", 27),
    ("1-0:62.7.0",    "currentDeliveryL3",       "Power export L3",           NUM,   "kW",    2, 3, "power", 27),
    ("1-0:23.7.0",    "currentReactiveUsageL1",  "Reactive power import L1",  NUM,   "kvar",  2, 3, "reactive_power", 29),
    ("1-0:43.7.0",    "currentReactiveUsageL2",  "Reactive power import L2",  NUM,   "kvar",  2, 3, "reactive_power", 29),
    ("1-0:63.7.0",    "currentReactiveUsageL3",  "Reactive power import L3",  NUM,   "kvar",  2, 3, "reactive_power", 29),
    ("1-0:24.7.0",    "currentReactiveDeliveryL1", "Reactive power export L1", NUM,  "kvar",  2, 3, "reactive_power", 29),
    ("1-0:44.7.0",    "currentReactiveDeliveryL2", "Reactive power export L2", NUM,  "kvar",  2, 3, "reactive_power", 29),
    ("1-0:64.7.0",    "currentReactiveDeliveryL3", "Reactive power export L3", NUM,  "kvar",  2, 3, "reactive_power", 29),
    # M-Bus devices on channels 1-4: gas (device type 3), water (7), heat...
    ("0-n:24.1.0",    "mbus*DeviceType",         "M-Bus * device type",       NUM,   None,    3, 0, None, None),
    ("0-n:96.1.0",    "mbus*EquipmentId",        "M-Bus * identifier",        HEX,   None,    0, 0, None, None),
    ("0-n:96.1.1",    "mbus*EquipmentId",        "M-Bus * identifier",        HEX,   None,    0, 0, None, None),
    ("0-n:24.2.1",    "mbus*Reading",            "M-Bus * reading",           NUM,   "m3",    5, 3, "gas", 14),
    ("0-n:24.2.3",    "mbus*Reading",            "M-Bus * reading",           NUM,   "m3",    5, 3, "gas", 14),
    ("0-n:24.3.0",    "mbus*Reading",            "M-Bus * reading",           GAS22, "m3",    5, 3, "gas", None),
    ("0-n:24.4.0",    "mbus*ValvePosition",      "M-Bus * valve position",    NUM,   None,    1, 0, None, None),
)


def key_of(a, b, c, d, e):
    """The key of OBIS code A-B:C.D.E (A, B up to 7; C, D, E up to 255): ((((A * 8 + B) * 256 +
    C) * 256 + D) * 256 + E, a small integer on every MicroPython. The telegram scanner
    (loops.scan_line) makes the same from a line's text as it reads it."""
    return (((a * 8 + b) * 256 + c) * 256 + d) * 256 + e


def key(code):
    """The OBIS code "A-B:C.D.E" as its key (key_of); -1 for anything else."""
    parts = code.replace("-", ".").replace(":", ".").split(".")
    if len(parts) != 5:
        return -1
    for i in range(5):
        p = parts[i]
        if not p.isdigit() or int(p) > (7 if i < 2 else 255):
            return -1
    return key_of(int(parts[0]), int(parts[1]), int(parts[2]), int(parts[3]), int(parts[4]))


def code_of(k):
    """The code "A-B:C.D.E" of a key."""
    return "%d-%d:%d.%d.%d" % (k >> 27, (k >> 24) & 7, (k >> 16) & 255, (k >> 8) & 255, k & 255)


_BY_KEY = {}  # type: dict   # key (or, for codes that have none, the code text) -> row
BY_KEY = _BY_KEY             # for the telegram parser's own lookups, before it asks by_key()
_MBUS = {}  # type: dict     # C.D.E key -> the "0-n:" row of an M-Bus channel quantity
for _r in ROWS:
    _code = str(_r[CODE])
    if _code.startswith("0-n:"):
        _MBUS[key("0-0:" + _code[4:])] = _r
    elif _code != "/":
        _BY_KEY[key(_code)] = _r
HEADER = ROWS[0]
_MADE = 0           # rows made for M-Bus channels and unknown codes so far (kept, up to _MAX_MADE)
_MAX_MADE = const(48)


def by_key(k):
    """The row for a key (key()). An M-Bus channel's row is made from its "0-n:" row; a code not
    in the table gets a row of its own that names it by its code, with no class and nothing to
    announce. Made rows are kept (up to 48), so a telegram costs no new rows after the first."""
    r = _BY_KEY.get(k)
    if r is not None:
        return r
    b = (k >> 24) & 7
    template = _MBUS.get(k & 0xFFFFFF) if k >> 27 == 0 and 1 <= b <= 4 else None
    code = code_of(k)
    if template is not None:
        n = str(b)
        r = (code, template[NAME].replace("*", n), template[LABEL].replace("*", n)) + template[KIND:]
    else:
        measured = _measured(code)
        r = (code, code, code, NUM) + measured + (None, _dlms_unit(measured[0]))
    return _keep(k, r)


# An electricity register the table has no row for is still a quantity with a unit: energy
# (D = 8, a time integral) and power (D = 7) of the active, reactive and apparent quantities
# (IEC 62056-61: C = 1-10 and 15-16, and the same per phase from 21, 41 and 61). So that it is
# never taken for a unitless count: without its scaler it is withheld like any energy.
_ACTIVE = (1, 2, 15, 16)
_REACTIVE = (3, 4, 5, 6, 7, 8)


def _dlms_unit(unit):
    # the DLMS unit of _measured's DSMR unit (None: none)
    for dlms, shown, _ in DLMS_UNITS:
        if unit is not None and shown == unit:
            return dlms
    return None


def _measured(code):
    """(DSMR unit, digits, decimals) of an OBIS code's quantity: (None, 1, 3) when it has none."""
    try:
        a = int(code[:code.index("-")])
        c, d = code[code.index(":") + 1:].split(".")[:2]
        c, d = int(c), int(d)
    except ValueError:
        return (None, 1, 3)
    base = c % 20 if 0 < c < 80 else 0
    if a != 1 or d not in (7, 8) or base == 0:
        return (None, 1, 3)
    kind = "W" if base in _ACTIVE else "var" if base in _REACTIVE else "VA" if base in (9, 10) else None
    if kind is None:
        return (None, 1, 3)
    return ("k" + kind + "h", 6, 3) if d == 8 else ("k" + kind, 2, 3)


def row(code):
    """The row for an OBIS code "A-B:C.D.E" (or any other text a meter puts before its values)."""
    k = key(code)
    if k >= 0:
        return by_key(k)
    r = _BY_KEY.get(code)
    if r is None:
        # a name goes into JSON and topics as it is: no quotes or backslashes in it
        name = code.replace("\\", "/").replace('"', "'")
        r = _keep(code, (code, name, name, NUM, None, 1, 3, None, None))
    return r


def known(r):
    """True for a row of the table (or an M-Bus channel's, made from one); False for a row made
    for a code the table does not have: that one is labelled by its name (its code), a table
    row by a human label that is never its name (host_tests/test_readings.py checks)."""
    return r[LABEL] != r[NAME]


def _keep(k, r):
    global _MADE
    if _MADE < _MAX_MADE:
        _MADE += 1
        _BY_KEY[k] = r
    return r


def unit_shift(unit, to):
    """The exponent shift that writes a value in `unit` in `to` instead: kW -> W is 3, Wh -> kWh
    is -3, the same unit 0; None when they are not the same quantity. Either may be None (no
    unit: a meter that writes none where the row has one, or one where the row has none), which
    is the same quantity only as the other None."""
    if unit == to:
        return 0
    if unit is None or to is None:
        return None
    if unit == "k" + to:
        return 3
    if to == "k" + unit:
        return -3
    return None
