"""What Home Assistant makes of an MQTT discovery config for a sensor, release by release.

The rules come from ha_reference.json, which was extracted from the `homeassistant` wheels of the
releases named there (their discovery code, the MQTT sensor schema, the sensor component's class,
unit and state-class tables); its "notes" and "source" say how. This module applies them the way
Home Assistant does: abbreviations expanded (top level and availability items, then the device
and the origin with their own tables), device and origin checked strictly (an unknown key there
rejects the entity), unknown top-level keys dropped, then the classes, units and state classes.

    config, problems = check(topic, payload, "2026.2.0")

problems lists every way the config falls short on that release: rejected, a key dropped, a
warning in the log, a class or unit not known. An empty list is a clean discovery."""
import json
import os
import re
import weakref

with open(os.path.join(os.path.dirname(__file__), "ha_reference.json"), encoding="utf-8") as f:
    REFERENCE = json.load(f)
RELEASES = ("2024.1.0", "2025.4.0", "2026.2.0")
OLDEST, NEWEST = RELEASES[0], RELEASES[-1]
TOPIC = re.compile(r"^([^/]+)/sensor/(?:([a-zA-Z0-9_-]+)/)?([a-zA-Z0-9_-]+)/config$")


def expand(payload, ref):
    """The config as Home Assistant sees it after its abbreviations are expanded."""
    abbr = ref["abbreviations"]
    config = {abbr.get(k, k): v for k, v in payload.items()}
    if isinstance(config.get("availability"), list):
        config["availability"] = [{abbr.get(k, k): v for k, v in item.items()} for item in config["availability"]]
    if isinstance(config.get("device"), dict):
        config["device"] = {ref["device_abbreviations"].get(k, k): v for k, v in config["device"].items()}
    if isinstance(config.get("origin"), dict):
        config["origin"] = {ref["origin_abbreviations"].get(k, k): v for k, v in config["origin"].items()}
    return config


def check(topic, payload, release):
    ref = REFERENCE[release]
    problems = []
    if not TOPIC.match(topic):
        problems.append("topic %r is not <prefix>/sensor/[<node>/]<object id>/config" % topic)
    config = expand(json.loads(payload), ref)
    name = config.get("name", topic)

    def bad(text):
        problems.append("%s: %s" % (name, text))

    for key in sorted(set(config) - set(ref["sensor_config_keys"])):
        bad("key %r is dropped" % key)
    for key in ref["sensor_required_keys"]:
        if key not in config:
            bad("required key %r missing" % key)
    for item in ref.get("rejected_keys") or []:
        if item["key"] in config:
            bad("key %r rejects the config" % item["key"])
    if "availability" in config and "availability_topic" in config:
        bad("availability and availability_topic are exclusive")
    for item in config.get("availability", []):
        for key in sorted(set(item) - set(ref["availability_item_keys"])):
            bad("availability key %r is dropped" % key)
        if "topic" not in item:
            bad("availability item without a topic")
    device = config.get("device")
    if device is not None:
        for key in sorted(set(device) - set(ref["device_keys"])):
            bad("device key %r rejects the entity" % key)
        if not any(k in device for k in ref["device_requires_one_of"]):
            bad("device has neither identifiers nor connections")
        for old in ref["device_keys_renamed_with_deprecation_warning"]:
            if old in device:
                bad("device key %r is deprecated" % old)
    origin = config.get("origin")
    if origin is not None:
        for key in sorted(set(origin) - set(ref["origin_keys"])):
            bad("origin key %r rejects the message" % key)
        for key in ref["origin_required_keys"]:
            if key not in origin:
                bad("origin without %r" % key)
    # the default entity id: 2025.10 reads default_entity_id, older ones object_id; from 2026.4 on
    # only the first. Both must say the same.
    if "default_entity_id" in ref["sensor_config_keys"] and "object_id" in config and "default_entity_id" not in config:
        bad("object_id without default_entity_id is deprecated")
    if "default_entity_id" in config:
        domain, _, object_id = str(config["default_entity_id"]).partition(".")
        if domain != "sensor" or not re.match(r"^[a-z0-9_]+$", object_id):
            bad("default_entity_id %r is not sensor.<object id>" % config["default_entity_id"])
        if "object_id" in config and config["object_id"] != object_id:
            bad("object_id and default_entity_id disagree")
    device_class = config.get("device_class")
    unit = config.get("unit_of_measurement")
    state_class = config.get("state_class")
    if release == NEWEST and unit is not None:
        unit = (ref.get("ambiguous_units") or {}).get(unit, unit)
    if device_class is not None:
        if device_class not in ref["device_classes"]:
            bad("device class %r unknown" % device_class)
        elif device_class in ref["device_class_units"] and unit not in ref["device_class_units"][device_class]:
            bad("unit %r not valid with device class %r" % (unit, device_class))
        elif state_class is not None and state_class not in ref["device_class_state_classes"][device_class]:
            bad("state class %r not valid with device class %r" % (state_class, device_class))
        if device_class in ref["non_numeric_device_classes"] and (unit or state_class or
                                                                  "suggested_display_precision" in config):
            bad("a %s sensor has no unit, state class or precision" % device_class)
    if state_class is not None and state_class not in ref["state_classes"]:
        bad("state class %r unknown" % state_class)
    if "entity_category" in config and config["entity_category"] not in ref["sensor_entity_categories_allowed"]:
        bad("entity category %r not allowed for a sensor" % config["entity_category"])
    return config, problems


def clean(topic, payload):
    """The problems on every release, less the one expected drop (a key the oldest does not know
    yet, which it drops by design: default_entity_id)."""
    problems = []
    for release in RELEASES:
        _, found = check(topic, payload, release)
        problems += ["%s %s" % (release, p) for p in found if "'default_entity_id' is dropped" not in p]
    return problems


_HELD = weakref.WeakKeyDictionary()


def tell(out, data, readings=None):
    """Pass a telegram (and a DLMS push's readings) to an output as the App does: through the one
    Telegram (telegram.py) every output reads, one per output here."""
    from p1dongle.telegram import Telegram
    t = _HELD.get(out)
    if t is None:
        t = _HELD[out] = Telegram()
    t.take(data, readings)
    out.telegram(t)
    return t


def announced(telegram, readings=None, device_id="p1dongle", diagnostics=None):
    """What a dongle announces for one telegram (and its readings, for a DLMS meter): the real
    MqttOutput on a real MqttClient that is not connected, so nothing is sent, only made."""
    from p1dongle.mqtt import MqttClient
    from p1dongle.mqttout import MqttOutput
    prefix = "p1dongle/" + device_id
    client = MqttClient("127.0.0.1", 1, device_id, will=(prefix + "/status", "offline"))
    out = MqttOutput(client, prefix, "homeassistant", device_id, log=lambda line: None)
    if diagnostics is not None:
        out.diagnostics(diagnostics)
    tell(out, telegram, readings)
    return [(topic, payload if isinstance(payload, bytes) else payload.encode()) for topic, payload in out.discovery()]
