# What the dongle publishes over MQTT, and how Home Assistant finds it.
#
#   <prefix>/telegram      the plain telegram, byte-exact (QoS 0)
#   <prefix>/state         JSON: every reading by name, plus "units" {name: unit} (QoS 0)
#                          e.g. {"powerTs": "2026-11-25T15:22:37+01:00", "totalImportedEnergyP":
#                          23949.194, "currentUsage": 0.878, ..., "units": {"currentUsage": "kW"}};
#                          numbers exactly as the meter's digits (state.py)
#   <prefix>/status        "online" / "offline" (retained; "offline" is the last will)
#   <prefix>/diagnostics   JSON: uptime, telegrams, tag and CRC failures, dropped bytes, TCP
#                          clients, free heap, Wi-Fi RSSI, MQTT messages dropped (retained)
#   <discovery>/sensor/<node>/<name>/config
#                          Home Assistant MQTT discovery (retained), one per reading whose OBIS
#                          row names a Home Assistant kind (obis.py), all under one device per
#                          meter; availability is the status topic
#
# prefix defaults to p1dongle/<device id>; discovery defaults to homeassistant.
import json

from . import dsmr, obis
from .reading import find
from .state import Writer, state_json, telegram_json


def slug(text):
    out = []
    for c in text:
        out.append(c if ("a" <= c <= "z" or "A" <= c <= "Z" or "0" <= c <= "9") else "_")
    return "".join(out)


def meter_id(readings):
    for name in ("meterId", "logicalDeviceName", "meterNumber"):
        v = find(readings, name)
        if v and isinstance(v, str):
            return v
    header = find(readings, "header")
    return header if header else "meter"


def _template(name, shift):
    # The state JSON keeps the meter's units; Home Assistant shows some in others (kW as W).
    if shift == 0:
        return "{{ value_json['%s'] }}" % name
    if shift > 0:
        return "{{ (value_json['%s'] * %d) | round(%d) }}" % (name, 10 ** shift, 3)
    return "{{ (value_json['%s'] / %d) | round(%d) }}" % (name, 10 ** -shift, 6)


def discovery(readings, prefix, discovery_prefix, device_id):
    """(topic, payload) of Home Assistant discovery configs for the readings whose row names a
    Home Assistant kind, made one at a time (the dongle never holds them all)."""
    ident = meter_id(readings)
    header = find(readings, "header")
    node = slug(device_id)
    device = {"identifiers": ["p1dongle_" + slug(ident)], "name": "Smart meter " + ident,
              "manufacturer": header[:3] if header else "DSMR", "model": header if header else "P1"}
    for row, value in readings:
        kind = row[obis.HA]
        if kind is None or not isinstance(value, tuple) or value[2] is None:
            continue
        device_class, state_class, shown = obis.HA_KINDS[kind]
        shift = obis.unit_shift(value[2], shown)
        if shift is None:
            continue                    # not in a unit Home Assistant takes for this kind
        name = row[obis.NAME]
        if kind == "gas" and _water(readings, name):
            device_class = "water"
        config = {
            "name": name, "unique_id": "p1dongle_%s_%s" % (slug(ident), slug(name)),
            "object_id": "p1_%s" % slug(name),
            "state_topic": prefix + "/state", "value_template": _template(name, shift),
            "unit_of_measurement": shown, "state_class": state_class,
            "availability_topic": prefix + "/status",
            "payload_available": "online", "payload_not_available": "offline",
            "device": device,
        }
        if device_class:
            config["device_class"] = device_class
        yield "%s/sensor/%s/%s/config" % (discovery_prefix, node, slug(name)), json.dumps(config)


def _water(readings, name):
    # M-Bus channel n says what it measures in mbus<n>DeviceType: 3 gas, 6 warm water, 7 water.
    if name.startswith("mbus") and len(name) > 4:
        kind = find(readings, "mbus" + name[4] + "DeviceType")
        return isinstance(kind, tuple) and kind[0] in (6, 7)
    return False


class MqttOutput:
    """Turns telegrams into MQTT messages on an MqttClient; never waits (the client queues)."""

    def __init__(self, client, prefix, discovery_prefix="homeassistant", device_id="p1dongle", log=print):
        self.client = client
        self.prefix = prefix
        self.discovery_prefix = discovery_prefix
        self.device_id = device_id
        self.log = log
        self._announced = []            # the rows the discovery configs cover (compared as a
                                        # list: rows are shared objects, so mostly by identity)
        self._latest = None             # (telegram, readings or None): what discovery is made from
        self.writer = Writer()          # the state JSON's buffers, kept from telegram to telegram
        if discovery_prefix:
            client.announce(self._discovery)

    def online(self, client=None):
        self.client.publish(self.prefix + "/status", "online", retain=True, qos=1)

    def telegram(self, telegram, readings=None):
        """Publish a telegram; readings are its readings when the pipeline made them (DLMS
        meters), else the state is written straight from the telegram's text (no readings are
        made for it: on the dongle that is most of what a telegram costs)."""
        c = self.client
        c.publish(self.prefix + "/telegram", telegram)
        w = self.writer
        # A view of the writer's buffer: the client copies it only if it cannot send it at once.
        if readings is None:
            doc = telegram_json(telegram, w, view=True)
        else:
            doc = state_json(readings, w, view=True)
        self._latest = (telegram, readings)
        n = w.count()
        if self.discovery_prefix and (len(self._announced) != n or w.rows[:n] != self._announced):
            # New values (first telegram, or the meter sends more): announce them to Home
            # Assistant, one config at a time as the client sends them, from the latest readings.
            self._announced = w.rows[:n]
            c.announce_again()
        c.publish(self.prefix + "/state", doc, latest=True, transient=True)

    def _discovery(self):
        if self._latest is None:
            return ()
        telegram, readings = self._latest
        if readings is None:
            readings = dsmr.parse(telegram)     # once per announcement, not per telegram
        return discovery(readings, self.prefix, self.discovery_prefix, self.device_id)

    def diagnostics(self, fields):
        self.client.publish(self.prefix + "/diagnostics", json.dumps(fields), retain=True)
