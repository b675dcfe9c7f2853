# What the dongle publishes over MQTT, and how Home Assistant finds it.
#
#   <prefix>/telegram      the plain telegram, byte-exact (QoS 0)
#   <prefix>/state         JSON: every parsed value by name, plus "units" {name: unit} (QoS 0)
#                          e.g. {"powerTs": "2026-11-25T15:22:37+01:00", "totalImportedEnergyP":
#                          23949.194, "currentUsage": 0.878, ..., "units": {"currentUsage": "kW"}}
#   <prefix>/status        "online" / "offline" (retained; "offline" is the last will)
#   <prefix>/diagnostics   JSON: uptime, telegrams, tag and CRC failures, dropped bytes, TCP
#                          clients, free heap, Wi-Fi RSSI, MQTT messages dropped (retained)
#   <discovery>/sensor/<node>/<name>/config
#                          Home Assistant MQTT discovery (retained), one per value with a unit,
#                          all under one device per meter; availability is the status topic
#
# prefix defaults to p1dongle/<device id>; discovery defaults to homeassistant.
import json

from . import dsmr

# unit -> (device_class, state_class, unit shown, factor): what Home Assistant's Energy dashboard
# and sensor classes accept. Power goes out in W (HA's habit) from the telegram's kW.
_CLASSES = {
    "kWh": ("energy", "total_increasing", "kWh", 1),
    "Wh": ("energy", "total_increasing", "Wh", 1),
    "kW": ("power", "measurement", "W", 1000),
    "W": ("power", "measurement", "W", 1),
    "V": ("voltage", "measurement", "V", 1),
    "A": ("current", "measurement", "A", 1),
    "m3": ("gas", "total_increasing", "m³", 1),
    "kvar": ("reactive_power", "measurement", "var", 1000),     # var and VA: what every HA version takes
    "kvarh": (None, "total_increasing", "kvarh", 1),
    "kVA": ("apparent_power", "measurement", "VA", 1000),
    "GJ": ("energy", "total_increasing", "GJ", 1),
}


def slug(text):
    out = []
    for c in text:
        out.append(c if ("a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9") else "_")
    return "".join(out)


def state_json(values):
    """{name: (value, unit)} -> the state topic's JSON text."""
    out = {}
    units = {}
    for name in values:
        v, unit = values[name]
        out[name] = v
        if unit:
            units[name] = unit
    out["units"] = units
    return json.dumps(out)


def meter_id(values):
    for name in ("meterId", "logicalDeviceName", "EquipmentId", "0-0:96.1.0"):
        if name in values and values[name][0]:
            return str(values[name][0])
    return values["header"][0] if "header" in values else "meter"


def discovery(values, prefix, discovery_prefix, device_id):
    """[(topic, payload)] of Home Assistant discovery configs for the numeric values with a unit."""
    out = []
    ident = meter_id(values)
    node = slug(device_id)
    device = {"identifiers": ["p1dongle_" + slug(ident)], "name": "Smart meter " + ident,
              "manufacturer": values["header"][0][:3] if "header" in values else "DSMR",
              "model": values["header"][0] if "header" in values else "P1"}
    for name in values:
        v, unit = values[name]
        cls = _CLASSES.get(unit)
        if cls is None or isinstance(v, (list, str)) or isinstance(v, bool):
            continue
        device_class, state_class, shown, factor = cls
        if unit == "m3" and _water(values, name):
            device_class = "water"
        template = "{{ value_json['%s'] }}" % name if factor == 1 else \
            "{{ (value_json['%s'] * %d) | round(1) }}" % (name, factor)
        config = {
            "name": name, "unique_id": "p1dongle_%s_%s" % (slug(ident), slug(name)),
            "object_id": "p1_%s" % slug(name),
            "state_topic": prefix + "/state", "value_template": template,
            "unit_of_measurement": shown, "state_class": state_class,
            "availability_topic": prefix + "/status",
            "payload_available": "online", "payload_not_available": "offline",
            "device": device,
        }
        if device_class:
            config["device_class"] = device_class
        out.append(("%s/sensor/%s/%s/config" % (discovery_prefix, node, slug(name)), json.dumps(config)))
    return out


def _water(values, name):
    # M-Bus channel n says what it measures in mbus<n>DeviceType: 3 gas, 6 warm water, 7 water.
    if name.startswith("mbus") and len(name) > 4:
        kind = values.get("mbus" + name[4] + "DeviceType")
        return kind is not None and kind[0] in (6, 7)
    return False


class MqttOutput:
    """Turns telegrams into MQTT messages on an MqttClient; never waits (the client queues)."""

    def __init__(self, client, prefix, discovery_prefix="homeassistant", device_id="p1dongle", log=print):
        self.client = client
        self.prefix = prefix
        self.discovery_prefix = discovery_prefix
        self.device_id = device_id
        self.log = log
        self._announced = None          # the value names the discovery configs cover

    def online(self, client=None):
        self.client.publish(self.prefix + "/status", "online", retain=True, qos=1)

    def telegram(self, telegram):
        c = self.client
        c.publish(self.prefix + "/telegram", telegram)
        try:
            values = dsmr.parse(telegram)
        except Exception as e:   # noqa: BLE001 - the telegram still went out byte-exact
            self.log("mqtt: telegram not parsed: %r" % e)
            return
        names = sorted(values)
        if names != self._announced and self.discovery_prefix:
            # New values (first telegram, or the meter sends more): announce them to Home Assistant.
            for topic, payload in discovery(values, self.prefix, self.discovery_prefix, self.device_id):
                c.publish(topic, payload, retain=True, qos=1)
            self._announced = names
        c.publish(self.prefix + "/state", state_json(values))

    def diagnostics(self, fields):
        self.client.publish(self.prefix + "/diagnostics", json.dumps(fields), retain=True)
