# The HomeWizard Energy local API, version 1, as a HomeWizard P1 meter (HWE-P1) serves it, so that
# what reads one (Home Assistant's HomeWizard integration, evcc, ...) reads the dongle unchanged:
#
#   GET /api              {"product_type": "HWE-P1", "product_name": ..., "serial": ...,
#                          "firmware_version": ..., "api_version": "v1"}
#   GET /api/v1/data      the readings under HomeWizard's names (below); a value the meter does
#                         not send is left out, as HomeWizard does
#   GET /api/v1/telegram  the latest plain telegram
#   GET /api/v1/system    {"cloud_enabled": false}: the dongle has no cloud
#   PUT /api/v1/system    {"cloud_enabled": ...}: answered as GET (there is no cloud to switch on)
#   PUT /api/v1/identify  {"identify": "ok"}: the board's LED blinks, where it has one (led_pin)
#
# (homewizard/api-documentation, docs/v1). Every number is written from the reading's own
# digits, in the unit HomeWizard uses (kW -> W is a shift of the exponent, not a float).
#
# The answer is made a few bytes at a time as the server sends it, from readings made for the
# request and dropped after it: small objects only, nothing kept. (A writer into a buffer kept
# from one request to the next, as the state JSON has, made less garbage but held 3.5 KB more of
# the heap for good, and in `make soak` that cost more telegrams than the garbage did.)
import json

from . import VERSION
from .reading import exact, find, hex_digits, identifier, in_unit, net, register_total
from .tables import pick

# HomeWizard's field, the reading it is, the unit HomeWizard writes it in (None: a count)
FIELDS = (
    ("total_power_import_t1_kwh", "totalImportedEnergyT1", "kWh"),
    ("total_power_import_t2_kwh", "totalImportedEnergyT2", "kWh"),
    ("total_power_import_t3_kwh", "totalImportedEnergyT3", "kWh"),
    ("total_power_import_t4_kwh", "totalImportedEnergyT4", "kWh"),
    ("total_power_export_t1_kwh", "totalExportedEnergyT1", "kWh"),
    ("total_power_export_t2_kwh", "totalExportedEnergyT2", "kWh"),
    ("total_power_export_t3_kwh", "totalExportedEnergyT3", "kWh"),
    ("total_power_export_t4_kwh", "totalExportedEnergyT4", "kWh"),
    ("active_voltage_l1_v", "voltageL1", "V"),
    ("active_voltage_l2_v", "voltageL2", "V"),
    ("active_voltage_l3_v", "voltageL3", "V"),
    ("active_current_l1_a", "currentL1", "A"),
    ("active_current_l2_a", "currentL2", "A"),
    ("active_current_l3_a", "currentL3", "A"),
    ("active_frequency_hz", "frequency", "Hz"),
    ("voltage_sag_l1_count", "voltageSagsL1", None),
    ("voltage_sag_l2_count", "voltageSagsL2", None),
    ("voltage_sag_l3_count", "voltageSagsL3", None),
    ("voltage_swell_l1_count", "voltageSwellsL1", None),
    ("voltage_swell_l2_count", "voltageSwellsL2", None),
    ("voltage_swell_l3_count", "voltageSwellsL3", None),
    ("any_power_fail_count", "powerFailures", None),
    ("long_power_fail_count", "longPowerFailures", None),
    ("active_power_average_w", "currentAverageDemand", "W"),
    ("montly_power_peak_w", "maximumDemandMonth", "W"),      # sic: HomeWizard's spelling
)
# Totals: the register, else the sum of the tariff registers (what a Dutch meter sends)
TOTALS = (
    ("total_power_import_kwh", "totalImportedEnergyP", "totalImportedEnergyT"),
    ("total_power_export_kwh", "totalExportedEnergyP", "totalExportedEnergyT"),
)
# Net active power, W: import minus export (HomeWizard's sign: negative while delivering)
NET = (
    ("active_power_w", "currentUsage", "currentDelivery"),
    ("active_power_l1_w", "currentUsageL1", "currentDeliveryL1"),
    ("active_power_l2_w", "currentUsageL2", "currentDeliveryL2"),
    ("active_power_l3_w", "currentUsageL3", "currentDeliveryL3"),
)
# M-Bus device types (EN 13757-3) and HomeWizard's names for them
EXTERNAL = ((3, "gas_meter"), (4, "heat_meter"), (6, "warm_water_meter"), (7, "water_meter"), (12, "inlet_heat_meter"))


def device(serial, name="P1 meter"):
    # "P1 meter", as a HomeWizard P1 names itself: Home Assistant names the device (and its entity
    # ids) after it, so that they are a HomeWizard's (sensor.p1_meter_...), and they do not take
    # the MQTT device's name p1dongle, which gave one of the two sets ids ending in _2
    return json.dumps({"product_type": "HWE-P1", "product_name": name, "serial": serial,
                       "firmware_version": VERSION, "api_version": "v1"})


SYSTEM = '{"cloud_enabled":false}'
IDENTIFIED = '{"identify":"ok"}'


def system_update(body):
    """PUT /api/v1/system's body checked as HomeWizard's v1 takes it: a JSON object whose keys are
    among the ones it knows, cloud_enabled a boolean. None when it is so, else what is wrong."""
    try:
        update = json.loads(body)
    except ValueError:
        return "the body must be a JSON object"
    if not isinstance(update, dict):
        return "the body must be a JSON object"
    for name in update:
        if name != "cloud_enabled":
            return "unknown field %s" % json.dumps(name)
    if "cloud_enabled" in update and not isinstance(update["cloud_enabled"], bool):
        return "cloud_enabled must be true or false"
    return None


def error(description):
    # HomeWizard's v1 error answer
    return json.dumps({"error": {"id": 2, "description": description}})


def data(readings, wifi_ssid="", wifi_rssi=None, history=None):
    """GET /api/v1/data for the readings [(row, value)] (None before the first telegram)."""
    return "".join(pieces(readings, wifi_ssid, wifi_rssi, history))


def pieces(readings, wifi_ssid="", wifi_rssi=None, history=None):
    """data() a few bytes at a time, as the web server sends it: on the dongle no block of the
    heap need hold the whole answer. history (history.History): the 15-minute average and the
    month's peak for a meter that does not send its own (every meter but a Belgian one)."""
    yield '{"wifi_ssid":' + json.dumps(wifi_ssid or "")
    if wifi_rssi is not None:
        yield ',"wifi_strength":%d' % max(0, min(100, 2 * (wifi_rssi + 100)))
    if not readings:
        yield "}"
        return
    for piece in _meter(readings):
        yield "," + piece
    for field, name, unit in FIELDS:
        value = find(readings, name)
        if isinstance(value, tuple):
            number = _number(value, unit)
            if number is not None:
                yield ',"%s":%s' % (field, number)
                if field == "montly_power_peak_w":
                    stamp = _stamp(value)
                    if stamp:
                        yield ',"montly_power_peak_timestamp":' + stamp
    if history is not None:
        for piece in _peaks(readings, history):
            yield piece
    for field, total, tariff in TOTALS:
        value = register_total(readings, total, tariff, "kWh")
        if value is not None:
            yield ',"%s":%s' % (field, exact(value[0], value[1]))
    for field, used, given in NET:
        value = net(readings, used, given, "W")
        if value is not None:
            yield ',"%s":%s' % (field, exact(value[0], value[1]))
    for piece in _external(readings):
        yield "," + piece
    yield "}"


def _peaks(readings, history):
    # the dongle's own figures, from the import register, where the meter sends none
    if not isinstance(find(readings, "currentAverageDemand"), tuple):
        average = history.average()
        if average is not None:
            yield ',"active_power_average_w":%d' % average
    if not isinstance(find(readings, "maximumDemandMonth"), tuple):
        month = history.month()
        if month is not None and month[1]:
            from .meterclock import homewizard as stamp
            yield ',"montly_power_peak_w":%d,"montly_power_peak_timestamp":%s' % (month[0], str(int(stamp(month[1]))))


def _meter(readings):
    version = find(readings, "p1Version")
    if isinstance(version, str) and version.isdigit():
        yield '"smr_version":%d' % int(version)
    header = find(readings, "header")
    if isinstance(header, str):
        yield '"meter_model":' + json.dumps(header)
    ident = identifier(readings)
    if ident:
        yield '"unique_id":"%s"' % hex_digits(ident)
    tariff = find(readings, "currentTariff")
    if isinstance(tariff, tuple) and tariff[1] == 0:
        yield '"active_tariff":%d' % tariff[0]


def _number(value, unit):
    """The value in HomeWizard's unit, as JSON digits; None when it is in a unit that is not."""
    if unit is None:
        return exact(value[0], value[1]) if value[2] is None else None
    value = in_unit(value, unit)
    return None if value is None else exact(value[0], value[1])


def _external(readings):
    # the M-Bus meters, and the first gas meter among them as total_gas_m3
    devices = []
    gas = None
    for n in "1234":
        value = find(readings, "mbus%sReading" % n)
        if not isinstance(value, tuple):
            continue
        # The type is HomeWizard's name from EXTERNAL, never the meter's text: a device type line
        # that is not a number says nothing (and its text does not belong in a JSON string).
        kind = find(readings, "mbus%sDeviceType" % n)
        if isinstance(kind, tuple):
            kind = pick(EXTERNAL, kind[0])
        elif value[2] == "m3":
            kind = "gas_meter"              # DSMR's M-Bus channel without a device type line
        else:
            kind = None
        if kind is None:
            continue
        ident = find(readings, "mbus%sEquipmentId" % n)
        item = ['"unique_id":"%s"' % hex_digits(ident if isinstance(ident, str) else n), '"type":"%s"' % kind,
                '"value":%s' % exact(value[0], value[1]), '"unit":%s' % json.dumps(value[2] or "")]
        stamp = _stamp(value)
        if stamp:
            item.append('"timestamp":' + stamp)
        devices.append("{" + ",".join(item) + "}")
        if kind == "gas_meter" and gas is None and value[2] == "m3":
            gas = (value, ident)
    if gas is not None:
        value, ident = gas
        yield '"total_gas_m3":%s' % exact(value[0], value[1])
        stamp = _stamp(value)
        if stamp:
            yield '"gas_timestamp":' + stamp
        if isinstance(ident, str):
            yield '"gas_unique_id":"%s"' % hex_digits(ident)
    yield '"external":[%s]' % ",".join(devices)


def _stamp(value):
    # the value's own time stamp, "2022-06-14T09:45:00+02:00", as the number HomeWizard writes:
    # 220614094500 (the meter's time); None without one
    if len(value) < 4 or not isinstance(value[3], str):
        return None
    digits = "".join(c for c in value[3][:19] if "0" <= c <= "9")
    return str(int(digits[2:14])) if len(digits) >= 14 else None
