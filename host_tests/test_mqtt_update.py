"""The dongle's firmware as Home Assistant's MQTT update entity, with a real broker (mosquitto,
else amqtt) and a real client (paho-mqtt) watching it: the firmware's MqttClient and MqttOutput run
on their own event loop (as the app runs them), or main.py on the dongle twin.

The update config and the firmware state are checked against Home Assistant's update platform
as the releases of ha_reference.json have it (2024.1, 2025.4, 2026.2: UPDATE_OWN and JSON_STATE
below, from their homeassistant/components/mqtt/update.py); the keys every MQTT platform shares,
the abbreviations, the device and the origin come from ha_reference.json itself."""
import json
import re

import ha
import meter
from p1dongle import VERSION, mqttout
from p1dongle.mqtt import MqttClient
from p1dongle.mqttout import MqttOutput
from procs import P1Reader, micropython_app, settings_file
from test_mqtt import ClientThread, Subscriber, broker, until  # noqa: F401 - broker is a fixture

# The update platform's discovery keys: those of ha_reference.json's sensor schema less the
# sensor's own (its PLATFORM_SCHEMA_MODERN in homeassistant/components/mqtt/sensor.py: what is
# left is MQTT_RO_SCHEMA and MQTT_ENTITY_COMMON_SCHEMA, which update.py extends too), plus the
# update's own (update.py's PLATFORM_SCHEMA_MODERN; display_precision came after 2024.1).
SENSOR_OWN = {"device_class", "expire_after", "force_update", "last_reset_value_template", "name", "options",
              "suggested_display_precision", "state_class", "unit_of_measurement"}
UPDATE_OWN = {"command_topic", "device_class", "entity_picture", "latest_version_template", "latest_version_topic",
              "name", "payload_install", "release_summary", "release_url", "retain", "title"}
UPDATE_OWN_LATER = {"display_precision"}
UPDATE_DEVICE_CLASSES = {"firmware"}                  # UpdateDeviceClass, the same in all three
# The state JSON (update.py's MQTT_JSON_UPDATE_SCHEMA in 2025.4 and 2026.2; 2024.1 reads the
# keys it knows and ignores the rest): any other key, or a value of the wrong kind, and Home
# Assistant refuses the whole message.
JSON_STATE = {"installed_version": str, "latest_version": str, "title": str, "release_summary": str,
              "release_url": str, "entity_picture": str, "in_progress": bool, "update_percentage": (int, float)}
# Home Assistant's discovery topic (homeassistant/components/mqtt/discovery.py), for an update
TOPIC = re.compile(r"^homeassistant/update/(?:[a-zA-Z0-9_-]+/)?[a-zA-Z0-9_-]+/config$")


def update_problems(topic, payload, release):
    """Every way an update config falls short on a release, as ha.check does for sensors."""
    ref = ha.REFERENCE[release]
    problems = []
    if not TOPIC.match(topic):
        problems.append("topic %r is not <prefix>/update/[<node>/]<object id>/config" % topic)
    config = ha.expand(json.loads(payload), ref)
    keys = set(ref["sensor_config_keys"]) - SENSOR_OWN | UPDATE_OWN
    if release != ha.OLDEST:
        keys |= UPDATE_OWN_LATER
    for key in sorted(set(config) - keys):
        if key != "default_entity_id" or "default_entity_id" in ref["sensor_config_keys"]:
            problems.append("key %r is dropped" % key)      # (the one expected drop: as ha.clean)
    if "state_topic" not in config:
        problems.append("required key 'state_topic' missing")
    if "availability" in config and "availability_topic" in config:
        problems.append("availability and availability_topic are exclusive")
    for key in sorted(set(config.get("device", {})) - set(ref["device_keys"])):
        problems.append("device key %r rejects the entity" % key)
    if not any(k in config.get("device", {}) for k in ref["device_requires_one_of"]):
        problems.append("device has neither identifiers nor connections")
    for key in sorted(set(config.get("origin", {})) - set(ref["origin_keys"])):
        problems.append("origin key %r rejects the message" % key)
    if config.get("device_class") not in UPDATE_DEVICE_CLASSES | {None}:
        problems.append("device class %r unknown" % config["device_class"])
    if config.get("entity_category") not in set(ref["entity_categories"]) | {None}:
        problems.append("entity category %r unknown" % config["entity_category"])
    domain, _, object_id = str(config.get("default_entity_id", "update.")).partition(".")
    if domain != "update" or object_id != config.get("object_id"):
        problems.append("default_entity_id %r is not update.<object id>" % config.get("default_entity_id"))
    return config, problems


def state_problems(payload):
    doc = json.loads(payload)
    problems = ["key %r refuses the state" % k for k in sorted(set(doc) - set(JSON_STATE))]
    for key, value in doc.items():
        if key in JSON_STATE and value is not None and not isinstance(value, JSON_STATE[key]):
            problems.append("%s: %r is not %s" % (key, value, JSON_STATE[key]))
    p = doc.get("update_percentage")
    if p is not None and (isinstance(p, bool) or not 0 <= p <= 100):
        problems.append("update_percentage %r is not 0-100" % p)
    if doc.get("installed_version") is None or doc.get("in_progress") is None:
        problems.append("installed_version and in_progress are null")   # strings and a boolean, never null
    return doc, problems


def state_is(topic, **expected):
    """The latest message on topic is a firmware state with these values."""
    def pred(msgs):
        seen = [p for t, p, _ in msgs if t == topic]
        return bool(seen) and all(json.loads(seen[-1]).get(k) == v for k, v in expected.items())
    return pred


class Dongle:
    """The firmware's MQTT side as the app wires it: an MqttClient whose connects call online(),
    an MqttOutput on it, run by their own event loop (ClientThread)."""

    def __init__(self, port, device_id="upd"):
        self.prefix = "p1dongle/" + device_id
        self.lines = []
        self.client = MqttClient("127.0.0.1", port, device_id, will=(self.prefix + "/status", "offline"),
                                 log=self.lines.append, on_connect=lambda client: self.out.online())
        self.out = MqttOutput(self.client, self.prefix, "homeassistant", device_id, log=self.lines.append)
        self.run = ClientThread(self.client)

    def stop(self):
        self.run.stop()


CONFIG = "homeassistant/update/upd/firmware/config"
STATE = "p1dongle/upd/firmware"


def test_the_update_config_and_the_running_version_are_retained_after_connect(broker):
    sub = Subscriber(broker.port)
    dongle = Dongle(broker.port)
    try:
        sub.wait(until(CONFIG, 1), what="the update config")
        sub.wait(until(STATE, 1), what="the firmware state")
    finally:
        dongle.stop()
        sub.close()
    fresh = Subscriber(broker.port)           # what Home Assistant finds when it (re)starts
    try:
        fresh.wait(lambda msgs: until(CONFIG, 1)(msgs) and until(STATE, 1)(msgs), what="the retained ones")
        assert [r for t, _, r in fresh.messages if t in (CONFIG, STATE)] == [True, True]
    finally:
        fresh.close()
    payload = fresh.payloads(CONFIG)[0]
    for release in ha.RELEASES:
        config, problems = update_problems(CONFIG, payload, release)
        assert problems == [], (release, payload)
    assert config["name"] == "Firmware" and config["unique_id"] == "p1dongle_dongle_upd_firmware"
    assert config["default_entity_id"] == "update.upd_firmware" == "update." + config["object_id"]
    assert config["state_topic"] == STATE and config["availability_topic"] == "p1dongle/upd/status"
    assert (config["entity_category"], config["device_class"]) == ("config", "firmware")
    assert config["device"]["identifiers"] == ["p1dongle_dongle_upd"] and config["device"]["sw_version"] == VERSION
    assert config["origin"] == {"name": "p1dongle", "sw_version": VERSION}
    assert "value_template" not in config                  # Home Assistant reads the JSON's keys
    assert "command_topic" not in config                   # an image comes over HTTP, never fetched
    doc, problems = state_problems(fresh.payloads(STATE)[0])
    assert problems == [] and doc == {"installed_version": VERSION, "latest_version": VERSION,
                                      "in_progress": False, "update_percentage": None}


def test_an_update_in_progress_is_said_again_after_the_broker_restarts(broker):
    sub = Subscriber(broker.port)
    dongle = Dongle(broker.port)
    try:
        sub.wait(state_is(STATE, installed_version=VERSION), what="the running version")
        dongle.run.call(dongle.out.firmware, "0.8.0", "0.9.0", 40)
        sub.wait(state_is(STATE, latest_version="0.9.0"), what="the update's state")
        doc, problems = state_problems(sub.payloads(STATE)[-1])
        assert problems == [] and doc == {"installed_version": "0.8.0", "latest_version": "0.9.0",
                                          "in_progress": True, "update_percentage": 40}
        # online() (each connect) says the last state, not the running version again
        n = len(sub.payloads(STATE))
        dongle.run.call(dongle.out.online)
        sub.wait(until(STATE, n + 1), what="the state from online()")
        assert json.loads(sub.payloads(STATE)[-1]) == doc
        # the broker restarts with nothing retained (it keeps nothing on disk): the dongle connects
        # again and says it all once more
        broker.kill()
        broker.start()
        fresh = Subscriber(broker.port)
        try:
            fresh.wait(lambda msgs: until(CONFIG, 1)(msgs) and until(STATE, 1)(msgs), what="config and state again")
            assert json.loads(fresh.payloads(STATE)[-1]) == doc
            assert update_problems(CONFIG, fresh.payloads(CONFIG)[-1], ha.NEWEST)[1] == []
        finally:
            fresh.close()
        assert dongle.run.call(lambda: dongle.client.connects) == 2, dongle.lines
        # the update ends: the new version runs, nothing in progress
        dongle.run.call(dongle.out.firmware, "0.9.0")
        sub.wait(state_is(STATE, installed_version="0.9.0"), what="the update's end")
        assert json.loads(sub.payloads(STATE)[-1]) == {"installed_version": "0.9.0", "latest_version": "0.9.0",
                                                       "in_progress": False, "update_percentage": None}
    finally:
        dongle.stop()
        sub.close()


def test_a_percentage_home_assistant_would_refuse_is_brought_into_0_to_100(broker):
    sub = Subscriber(broker.port)
    dongle = Dongle(broker.port)
    try:
        sub.wait(until(STATE, 1), what="the running version")
        for given, sent in ((-3, 0), (57.9, 57), (250, 100)):
            dongle.run.call(dongle.out.firmware, "0.8.0", "0.9.0", given)
            sub.wait(state_is(STATE, update_percentage=sent), what="%r as %r" % (given, sent))
            assert state_problems(sub.payloads(STATE)[-1])[1] == []
    finally:
        dongle.stop()
        sub.close()


def test_the_update_config_is_never_removed_as_a_reading_that_is_gone(broker, monkeypatch):
    """A reading the meter stops sending gets an empty config after 3 hours (test_ha.py); the
    update config, which is no reading, is announced again in that round and never emptied."""
    clock = [1000]
    monkeypatch.setattr(mqttout, "ticks_ms", lambda: clock[0])       # mqttout's clock only
    sub = Subscriber(broker.port)
    dongle = Dongle(broker.port)
    gas = "homeassistant/sensor/upd/mbus1Reading/config"
    lux = meter.telegram(meter.LUX_BODY)

    def three_hours_without_gas():
        for _ in range(200):
            clock[0] += 60000
            ha.tell(dongle.out, lux)
            dongle.out.check()
    try:
        sub.wait(until(CONFIG, 1), what="the update config")
        dongle.run.call(ha.tell, dongle.out, meter.telegram(meter.LUX_BODY + ["0-1:24.2.1(220614094500S)(00012.345*m3)"]))
        sub.wait(until(gas, 1), what="the gas reading's config")
        n = len(sub.payloads(CONFIG))
        dongle.run.call(three_hours_without_gas)
        sub.wait(lambda msgs: [p for t, p, _ in msgs if t == gas][-1] == b"", what="the gas config removed")
    finally:
        dongle.stop()
        sub.close()
    assert len(sub.payloads(CONFIG)) > n                  # announced in the round that removed gas
    assert all(p and update_problems(CONFIG, p, ha.NEWEST)[1] == [] for p in sub.payloads(CONFIG))


def test_the_update_entity_under_micropython(micropython, broker, tmp_path):
    """main.py on the dongle twin (its frozen firmware: `make firmware-unix` after a change):
    the update config and the running version, as clean as on the PC."""
    reader = P1Reader()
    sub = Subscriber(broker.port)
    cfg = tmp_path / "p1dongle.json"
    settings_file(cfg, reader.port, device_id="mpfw", mqtt={"host": "127.0.0.1", "port": broker.port})
    app = micropython_app(micropython, str(cfg))
    config, state = "homeassistant/update/mpfw/firmware/config", "p1dongle/mpfw/firmware"
    try:
        app.expect(r"mqtt mqtt://127.0.0.1:%d: connected" % broker.port)
        sub.wait(lambda msgs: until(config, 1)(msgs) and until(state, 1)(msgs), what="config and state")
    finally:
        app.stop()
        reader.close()
        sub.close()
    for release in ha.RELEASES:
        assert update_problems(config, sub.payloads(config)[-1], release)[1] == [], release
    doc, problems = state_problems(sub.payloads(state)[-1])
    assert problems == [] and doc["installed_version"] == VERSION and doc["in_progress"] is False
