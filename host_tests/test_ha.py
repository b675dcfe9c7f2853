"""Home Assistant as its users run it.

Discovery: every config the dongle announces, for the Luxembourg meter and for every real capture
of a DLMS meter, is checked against the MQTT sensor schema and the sensor tables of Home
Assistant 2024.1 (the oldest release we support), 2025.4 and 2026.2 (ha.py, from the releases'
own source); its value template, run by jinja2 as Home Assistant runs it, gives the meter's number.
Availability: a clean stop says offline, a silent meter makes its readings unavailable and the next
telegram brings them back, Home Assistant's birth message brings the configs again. DSMR: Home
Assistant's DSMR integration (dsmr_parser, DSMR 5L) reads every telegram rendered for a DLMS meter
and finds the equipment identifier its config flow waits for."""
import json
import os
import signal
import sys
import time
from decimal import Decimal

import ha
import jinja2
import meter
import pytest
from conftest import FIRMWARE, MICROPYPATH, ROOT
from dsmr_parser import obis_references as obis_ref
from dsmr_parser import telegram_specifications
from dsmr_parser.parsers import TelegramParser
from p1dongle import VERSION, dsmr, mqttout, obis, reading, render, state
from p1dongle.mqtt import MqttClient
from p1dongle.mqttout import MqttOutput
from p1dongle.pipeline import TELEGRAM
from p1dongle.telegram import OTHERS_KEPT
from procs import DEMO_KEY, SIM, P1Reader, Proc, dsmr_reader, free_port, settings_file, sim
from test_captures import UNKNOWN, WIRE, pipeline, stream
from test_mqtt import Subscriber, broker, last_is, until  # noqa: F401 - broker is a fixture

sys.path.insert(0, os.path.join(ROOT, "tools"))
import emulator  # noqa: E402

LUX = meter.telegram(meter.LUX_BODY)
DIAGNOSTICS = {"uptime": 12, "telegrams": 3, "tag_failures": 0, "crc_failures": 0, "bad_frames": 0,
               "dropped_bytes": 0, "memory_errors": 0, "mqtt_dropped": 0, "tcp_clients": 1,
               "free_heap": None, "wifi_rssi": None}


def capture_telegrams(e):
    """[(telegram, readings)] the pipeline makes of a real capture."""
    out = []
    holder = []
    pipe = pipeline(e, lambda kind, pos, what, crc: out.append((bytes(what), holder[0].readings))
                    if kind == TELEGRAM else None)
    holder.append(pipe)
    data = stream(e)
    for i in range(0, len(data), 64):
        pipe.push(data[i:i + 64], 0)
    pipe.flush(0)
    return out


CAPTURES = [e for e in WIRE if e["file"] not in UNKNOWN]


def announced_for(e, clock, device_id="p1dongle"):
    """What a dongle announces after the whole capture (an MqttOutput fed each telegram), the state
    JSON it publishes then, and the readings that state holds (the latest of each: meters that push
    several lists send each one in turn)."""
    client = MqttClient("127.0.0.1", 1, device_id)
    out = MqttOutput(client, "p1dongle/" + device_id, "homeassistant", device_id, log=lambda line: None)
    latest = {}
    for telegram, readings in capture_telegrams(e):
        ha.tell(out, telegram, readings)
        clock[0] += 10000                      # the meters' usual interval
        for row, value in readings:
            latest[row[obis.NAME]] = (row, value)
    clock[0] += mqttout.NAME_WAIT_MS           # and long enough for a name that never comes
    out.check()
    readings = list(latest.values())
    configs = [(t, p.encode() if isinstance(p, str) else p) for t, p in out.discovery()]
    return configs, bytes(state.state_json(readings)), readings


def test_the_announced_configs_are_the_discovery_configs(clock):
    """What the client sends (each config written into the one kept buffer, jsonbuf.py) is, read
    as JSON, what discovery() gives: for every capture's configs and the update entity's."""
    kaifa = [e for e in CAPTURES if e["file"] == "kaifa-no-stream-list1-2-3.hex"][0]
    for e, telegrams in (("lux", [(LUX, None)]), ("kaifa", capture_telegrams(kaifa))):
        client = MqttClient("127.0.0.1", 1, "p1dongle")
        out = MqttOutput(client, "p1dongle/p1dongle", "homeassistant", "p1dongle", log=lambda line: None)
        for telegram, readings in telegrams:
            ha.tell(out, telegram, readings)
            clock[0] += 10000
        clock[0] += mqttout.NAME_WAIT_MS
        out.diagnostics({"uptime": 5, "telegrams": 1, "free_heap": 2048})
        expected = [(t, json.loads(p) if p else None) for t, p in out.discovery()]
        sent = [(t, json.loads(bytes(p)) if p else None) for t, p in out._announcements()]
        assert sent[0][0] == "homeassistant/update/p1dongle/firmware/config" and sent[0][1]["dev_cla"] == "firmware"
        assert sent[1:] == expected and len(expected) > 10, e


def test_json_written_into_a_kept_buffer_reads_as_json_on_every_interpreter(run_job):
    """(Dicts of one key here: MicroPython keeps a dict's keys in an order of its own.)"""
    objects = [{"name": 'Energy "import"\\ \u00b3 \x01 \u00fc'}, {"unit_of_meas": "m\u00b3"}, [-12, 10 ** 12, -(10 ** 11)],
               [True, False, None, [1, "a", [], {}]], {"nested": {"k": [{"t": "x/status"}]}}, [], {}, "x" * 300, 0,
               [1, [2, [3]]]]
    texts = run_job({"job": "jsonbuf", "objects": objects})
    assert [json.loads(text) for text in texts] == objects


TEMPLATES = jinja2.Environment()


def template_value(config, state):
    """What Home Assistant's state becomes: the value template run on the state JSON."""
    return TEMPLATES.from_string(config["value_template"]).render(value_json=json.loads(state))


def check_configs(configs, state, readings, peaks=None):
    """Every config clean; a reading's shows the meter's number from the state JSON, a peak's (on its
    own topic, from the dongle's history) the number in the peaks JSON, when given."""
    by_name = {}
    for topic, payload in configs:
        assert ha.clean(topic, payload) == [], payload
        config = ha.expand(json.loads(payload), ha.REFERENCE[ha.NEWEST])
        name = topic.split("/")[-2]
        by_name[name] = config
        if name.startswith("peaks_"):
            assert config["state_topic"].endswith("/peaks"), config
            if peaks is not None:           # null (not known yet) is "None": HA's MQTT sensor shows unknown
                assert template_value(config, peaks) == str(json.loads(peaks)[name[6:]]), (name, peaks)
        elif state is not None and not name.startswith("dongle_"):
            value = dict((row[obis.NAME], v) for row, v in readings).get(name)
            shown = template_value(config, state)
            if isinstance(value, tuple):       # the meter's number, in the unit HA shows
                exact = meter.decimal(value)
                if config.get("unit_of_measurement") != value[2] and value[2] not in (None, "m3"):
                    exact = exact.scaleb(obis.unit_shift(value[2], config["unit_of_measurement"]))
                assert Decimal(shown) == exact, (name, shown, value)
            else:
                assert shown == value, (name, shown, value)
    return by_name


def test_the_luxembourg_meter_announces_clean_discovery_on_every_release():
    configs = ha.announced(LUX, diagnostics=DIAGNOSTICS)
    readings = dsmr.parse(LUX)
    doc = bytes(state.state_json(readings))
    by_name = check_configs(configs, doc, readings)
    energy = by_name["totalImportedEnergyP"]
    assert (energy["name"], energy["device_class"], energy["state_class"], energy["unit_of_measurement"]) == \
        ("Energy import", "energy", "total_increasing", "kWh")
    assert by_name["currentUsageL1"]["name"] == "Power import L1"
    assert by_name["currentUsage"]["unit_of_measurement"] == "kW"           # kept, as the meter says
    q = by_name["currentReactiveUsage"]
    assert (q["device_class"], q["unit_of_measurement"]) == ("reactive_power", "var")    # kvar -> var
    assert (by_name["currentApparentUsage"]["device_class"], by_name["currentApparentUsage"]["unit_of_measurement"]) \
        == ("apparent_power", "VA")
    # reactive energy: 2024.1 has no reactive_energy class, so none; still a total
    qe = by_name["totalImportedEnergyQ"]
    assert "device_class" not in qe and qe["state_class"] == "total_increasing" and qe["unit_of_measurement"] == "kvarh"
    # counters, thresholds, the meter's clock, its identifier
    for name in ("powerFailures", "voltageSagsL1", "voltageSwellsL3"):
        assert by_name[name]["state_class"] == "total_increasing" and "unit_of_measurement" not in by_name[name]
    assert "state_class" not in by_name["powerLimit"]
    assert by_name["powerTs"]["device_class"] == "timestamp" and by_name["powerTs"]["entity_category"] == "diagnostic"
    assert template_value(by_name["powerTs"], doc) == "2022-06-14T09:46:09+02:00"
    assert "breakerControlState" in by_name
    # availability: the dongle and the meter; the diagnostics only the dongle
    assert energy["availability"] == [{"topic": "p1dongle/p1dongle/status"}, {"topic": "p1dongle/p1dongle/meter"}]
    assert energy["availability_mode"] == "all"
    uptime = by_name["dongle_uptime"]
    assert uptime["availability_topic"] == "p1dongle/p1dongle/status" and uptime["entity_category"] == "diagnostic"
    assert "dongle_wifi_rssi" not in by_name and "dongle_free_heap" not in by_name    # a PC has neither
    # the devices: the meter as what it is, the dongle with its firmware
    dev = energy["device"]
    assert (dev["manufacturer"], dev["model"]) == ("Sagemcom", "T210-D")
    assert dev["name"] == "Sagemcom SAG1030700289953"
    assert dev["via_device"] == uptime["device"]["identifiers"][0]
    assert uptime["device"]["sw_version"] == VERSION and energy["origin"] == {"name": "p1dongle", "sw_version": VERSION}
    # the ids: unique, and the entity id names the dongle and the quantity
    assert len({c["unique_id"] for c in by_name.values()}) == len(by_name)
    assert energy["default_entity_id"] == "sensor.p1dongle_energy_import" == "sensor." + energy["object_id"]


@pytest.mark.parametrize("e", CAPTURES, ids=[e["file"] for e in CAPTURES])
def test_every_dlms_meter_announces_clean_discovery(e, clock):
    configs, doc, readings = announced_for(e, clock)
    by_name = check_configs(configs, doc, readings)
    for row, value in readings:       # every number Home Assistant has a kind for is announced
        if isinstance(value, tuple) and row[obis.HA] in ("energy", "power", "voltage", "current"):
            assert row[obis.NAME] in by_name, row


@pytest.fixture
def clock(monkeypatch):
    """mqttout's millisecond clock, moved on by the test."""
    now = [1000]
    monkeypatch.setattr(mqttout, "ticks_ms", lambda: now[0])
    return now


def test_a_dlms_meter_is_announced_once_it_has_named_itself(clock):
    """Aidon's and Kaifa's short lists carry no identifier: the readings wait for the list that
    does, so that their ids never change (a meter that never names itself: after a minute)."""
    aidon = [e for e in CAPTURES if e["file"] == "aidon-no-list1-7d-in-data.hex"][0]
    list2 = [e for e in CAPTURES if e["file"] == "aidon-no-list2-1phase.hex"][0]
    client = MqttClient("127.0.0.1", 1, "p1dongle")
    out = MqttOutput(client, "p1dongle/p1dongle", "homeassistant", "p1dongle", log=lambda line: None)
    for telegram, readings in capture_telegrams(aidon):
        ha.tell(out, telegram, readings)
    assert not [t for t, _ in out.discovery() if "/dongle_" not in t]
    clock[0] += 10000
    for telegram, readings in capture_telegrams(list2):
        ha.tell(out, telegram, readings)
    configs = [json.loads(p) for t, p in out.discovery() if "/dongle_" not in t]
    assert configs and all("7359992890941742" in c["uniq_id"] for c in configs)
    assert any(c["name"] == "Power import" for c in configs)      # list 1's reading, kept


def test_two_dongles_on_the_same_meter_have_disjoint_ids():
    kitchen = [json.loads(p) for _, p in ha.announced(LUX, device_id="kitchen", diagnostics=DIAGNOSTICS)]
    garage = [json.loads(p) for _, p in ha.announced(LUX, device_id="Garage-2", diagnostics=DIAGNOSTICS)]
    for key in ("uniq_id", "default_entity_id", "obj_id"):
        assert not {c[key] for c in kitchen} & {c[key] for c in garage}, key
    assert not {c["dev"]["ids"][0] for c in kitchen} & {c["dev"]["ids"][0] for c in garage}
    assert {c["default_entity_id"] for c in garage} >= {"sensor.garage_2_energy_import", "sensor.garage_2_uptime"}
    topics_k = {t for t, _ in ha.announced(LUX, device_id="kitchen")}
    topics_g = {t for t, _ in ha.announced(LUX, device_id="Garage-2")}
    assert not topics_k & topics_g


def test_meter_numbers_keep_their_leading_zeros():
    t = meter.telegram(["0-0:96.1.0(030700089953)", "1-0:1.8.0(000012.937*kWh)"], header="/ISk5\\2MT382-1000")
    assert json.loads(state.telegram_json(t))["meterNumber"] == "030700089953"
    configs = [json.loads(p) for _, p in ha.announced(t)]
    energy = [c for c in configs if c["name"] == "Energy import"][0]
    assert "030700089953" in energy["uniq_id"] and energy["dev"]["name"] == "Iskraemeco 030700089953"
    assert energy["dev"]["ids"] == ["p1dongle_p1dongle_030700089953"]


def test_a_reading_the_meter_stops_sending_is_removed(monkeypatch):
    clock = [1000]
    monkeypatch.setattr(mqttout, "ticks_ms", lambda: clock[0])
    client = MqttClient("127.0.0.1", 1, "p1dongle")
    out = MqttOutput(client, "p1dongle/p1dongle", "homeassistant", "p1dongle", log=lambda line: None)
    with_gas = meter.telegram(meter.LUX_BODY + ["0-1:24.2.1(220614094500S)(00012.345*m3)"])
    ha.tell(out, with_gas)
    gas = "homeassistant/sensor/p1dongle/mbus1Reading/config"
    assert gas in dict(out.discovery())
    for _ in range(200):                 # three hours of telegrams without gas, a minute apart
        clock[0] += 60000
        ha.tell(out, LUX)
        out.check()
    configs = list(out.discovery())
    assert (gas, b"") in configs                               # the empty retained config: removed
    assert [t for t, p in configs if t == gas and p] == []
    assert "homeassistant/sensor/p1dongle/totalImportedEnergyP/config" in dict(configs)
    assert (gas, b"") not in list(out.discovery())             # said once


def test_a_dsmr_telegram_after_an_unnamed_dlms_push_never_breaks_the_watch(monkeypatch):
    """A DLMS push without its name (it may come in a later list), then a DSMR telegram on the
    same line (as make soak's hostile line does): the meter's watch once asked the DSMR telegram's
    readings (none: it is parsed later) for a name, and its TypeError ended the watch for good."""
    clock = [0]
    monkeypatch.setattr(mqttout, "ticks_ms", lambda: clock[0])
    client = MqttClient("127.0.0.1", 1, "p1dongle")
    out = MqttOutput(client, "p", "homeassistant", "p1dongle", log=lambda line: None)
    e = next(e for e in CAPTURES if e["file"].startswith("kaifa-no-list1"))
    telegram, readings = capture_telegrams(e)[0]
    assert reading.identifier(readings) is None         # list 1: the power alone, no name
    ha.tell(out, telegram, readings)
    clock[0] += 1000
    ha.tell(out, LUX)
    out.check()
    assert "homeassistant/sensor/p1dongle/totalImportedEnergyP/config" in dict(out.discovery())


def test_the_meter_is_silent_after_three_of_its_intervals(monkeypatch):
    clock = [0]
    monkeypatch.setattr(mqttout, "ticks_ms", lambda: clock[0])
    client = MqttClient("127.0.0.1", 1, "p1dongle")
    sent = []
    monkeypatch.setattr(client, "publish", lambda topic, payload, **kw: sent.append((topic, payload)))
    out = MqttOutput(client, "p", "homeassistant", "p1dongle", log=lambda line: None)
    meter_msgs = lambda: [p for t, p in sent if t == "p/meter"]  # noqa: E731
    out.online()                         # connected, nothing heard yet (the cable is out)
    assert meter_msgs() == ["offline"]
    for _ in range(3):                   # a meter of the 10 s kind
        ha.tell(out, LUX)
        clock[0] += 10000
    assert meter_msgs() == ["offline", "online"]
    clock[0] += 19000                    # 29 s since the last: not yet (30 s at least)
    out.check()
    assert meter_msgs() == ["offline", "online"]
    clock[0] += 2000
    out.check()
    assert meter_msgs() == ["offline", "online", "offline"]
    ha.tell(out, LUX)
    assert meter_msgs() == ["offline", "online", "offline", "online"]
    # a meter that pushes every 60 s: 3 intervals is 180 s
    for _ in range(3):
        clock[0] += 60000
        ha.tell(out, LUX)
    clock[0] += 179000
    out.check()
    assert meter_msgs()[-1] == "online"
    clock[0] += 2000
    out.check()
    assert meter_msgs()[-1] == "offline"


@pytest.mark.parametrize("e", CAPTURES, ids=[e["file"] for e in CAPTURES])
def test_home_assistants_dsmr_integration_reads_every_rendered_telegram_as_5L(e):
    """The DSMR config flow with version 5L waits for LUXEMBOURG_EQUIPMENT_IDENTIFIER (0-0:42.0.0);
    its sensors for 5L read the energy totals from 1-0:1.8.0 and 1-0:2.8.0. A user who picks 5
    gets the same meter: version 5 waits for EQUIPMENT_IDENTIFIER (0-0:96.1.1), the same id."""
    parser = TelegramParser(telegram_specifications.LUXEMBOURG_SMARTY)
    parser5 = TelegramParser(telegram_specifications.V5)
    telegrams = capture_telegrams(e)
    assert telegrams
    for t, _ in telegrams:
        assert parser.parse(t.decode()).P1_MESSAGE_HEADER.value == "50"
    named = False
    ids = set()
    for t, readings in telegrams:
        telegram = parser.parse(t.decode())
        named = named or bool(reading.identifier(readings)) or not t.startswith(b"/DLM5")
        if not named:
            continue        # an unciphered meter's short list before it has named itself
        assert obis_ref.LUXEMBOURG_EQUIPMENT_IDENTIFIER in telegram, t
        codes = {row[obis.CODE] for row, _ in readings}
        if "1-0:1.8.0" in codes:
            assert telegram.ELECTRICITY_IMPORTED_TOTAL.unit == "kWh"
        ident = bytes.fromhex(telegram.LUXEMBOURG_EQUIPMENT_IDENTIFIER.value).decode()
        as5 = parser5.parse(t.decode())
        assert obis_ref.EQUIPMENT_IDENTIFIER in as5, t
        if not any(row[obis.CODE].endswith(":96.1.1") for row, _ in readings):
            # (else the meter's own: an E450's 0-0:96.1.1; or, as dsmr_parser's pattern takes any
            # A-B, a Kamstrup's meter type 1-0:96.1.1, later in the telegram, is what it keeps)
            assert as5.EQUIPMENT_IDENTIFIER.value == telegram.LUXEMBOURG_EQUIPMENT_IDENTIFIER.value
        ids |= {v for row, v in readings if row[obis.NAME] in ("logicalDeviceName", "meterNumber", "gs1Number",
                                                               "meterSerial", "meterId") and v}
        if ids:
            assert ident in ids                       # the meter's own number, leading zeros and all
        else:
            assert ident[:3].isalpha() and len(ident) >= 8    # its maker and serial, from its system title


def test_render_keeps_a_meters_own_identifier_and_version():
    row = obis.BY_KEY[obis.key("0-0:42.0.0")]
    version = obis.BY_KEY[obis.key("1-3:0.2.8")]
    t = render.telegram([(version, "42"), (row, "KFM1200200000001")], None, "KFM", "1200200000001").decode()
    assert t.count("0-0:42.0.0(") == 1 and "0-0:42.0.0(4B464D31323030323030303030303031)" in t
    assert t.count("1-3:0.2.8(") == 1 and "1-3:0.2.8(42)" in t


@pytest.fixture
def pc_in_new_york(monkeypatch):
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


def test_the_emulated_meter_keeps_its_countrys_time(pc_in_new_york):
    # 2026-07-01 12:00 UTC is 14:00 summer time in Luxembourg, 08:00 on this PC; 2026-12-01 12:00
    # UTC is 13:00 winter time in Vienna
    summer, winter = 1782907200, 1796126400
    assert time.localtime(summer).tm_hour == 8
    assert "0-0:1.0.0(260701140000S)" in emulator.EmulatedMeter(meter.KEY, profile="lux").telegram(summer).decode()
    assert emulator.local_time(winter, "Europe/Vienna")[3:6] == (13, 0, 0)
    assert emulator.local_time(winter, "Europe/Vienna")[7] is False
    notification = emulator.EmulatedMeter(meter.KEY, profile="netznoe").notification(winter)
    assert bytes([2026 >> 8, 2026 & 255, 12, 1, 2, 13, 0, 0]) in notification      # Tuesday 13:00


# -- with a broker, the simulator and a client, as a user runs them -----------------------------------

def run_dongle(port, *extra):
    return sim("run", "--mqtt", "127.0.0.1:%d" % port, "--tcp-port", "0", "--status-interval", "0",
               "--device-id", "ha1", *extra)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_a_clean_stop_says_offline(broker, how):
    sub = Subscriber(broker.port)
    app = run_dongle(broker.port, "--interval", "0.3")
    try:
        sub.wait(until("p1dongle/ha1/telegram", 2), what="telegrams")
        assert sub.payloads("p1dongle/ha1/status")[-1] == b"online"
        app.p.send_signal(how)
        assert app.p.wait(30) == 0
    finally:
        app.stop()
        sub.close()
    fresh = Subscriber(broker.port)           # what Home Assistant finds when it (re)starts
    try:
        fresh.wait(last_is("p1dongle/ha1/status", b"offline"), what="the retained offline")
        assert [r for t, _, r in fresh.messages if t == "p1dongle/ha1/status"] == [True]
        config = "homeassistant/sensor/ha1/totalImportedEnergyP/config"
        fresh.wait(until(config, 1), what="the retained configs")
        assert [r for t, _, r in fresh.messages if t == config] == [True]
    finally:
        fresh.close()


def test_a_silent_meter_makes_its_readings_unavailable_and_back(broker):
    """The meter process is stopped (SIGSTOP: the line stays open, nothing comes, as with a pulled
    cable) for longer than the stated 30 s; then it goes on."""
    port = free_port()
    emu = Proc([sys.executable, SIM, "meter", "--port", str(port), "--interval", "0.5"])
    sub = Subscriber(broker.port)
    app = None
    try:
        emu.expect(r"emulated meter: .* on 127.0.0.1:%d" % port)
        app = run_dongle(broker.port, "--source", "tcp:127.0.0.1:%d" % port, "--key", DEMO_KEY, "-q")
        sub.wait(last_is("p1dongle/ha1/meter", b"online"), what="meter online")
        sub.wait(until("homeassistant/sensor/ha1/totalImportedEnergyP/config", 1), what="discovery")
        emu.p.send_signal(signal.SIGSTOP)
        stopped = len(sub.payloads("p1dongle/ha1/telegram"))
        sub.wait(last_is("p1dongle/ha1/meter", b"offline"), timeout=45, what="meter offline")
        assert len(sub.payloads("p1dongle/ha1/telegram")) <= stopped + 1
        app.expect(r"the meter has sent nothing for 30 s")
        assert sub.payloads("p1dongle/ha1/status")[-1] == b"online"      # the dongle: still there
        emu.p.send_signal(signal.SIGCONT)
        sub.wait(last_is("p1dongle/ha1/meter", b"online"), timeout=20, what="meter online again")
        # what the two availabilities mean to Home Assistant, from the retained configs
        configs = {t: json.loads(p) for t, p, _ in sub.messages if t.endswith("/config") and p}
        energy = ha.expand(configs["homeassistant/sensor/ha1/totalImportedEnergyP/config"], ha.REFERENCE[ha.NEWEST])
        uptime = ha.expand(configs["homeassistant/sensor/ha1/dongle_uptime/config"], ha.REFERENCE[ha.NEWEST])
        assert {a["topic"] for a in energy["availability"]} == {"p1dongle/ha1/status", "p1dongle/ha1/meter"}
        assert energy["availability_mode"] == "all" and uptime["availability_topic"] == "p1dongle/ha1/status"
    finally:
        emu.p.send_signal(signal.SIGCONT)
        if app:
            app.stop()
        emu.stop()
        sub.close()


def test_home_assistants_birth_brings_the_configs_again(broker):
    import paho.mqtt.publish as publish
    sub = Subscriber(broker.port)
    app = run_dongle(broker.port, "--interval", "0.3", "-q")
    topic = "homeassistant/sensor/ha1/totalImportedEnergyP/config"
    try:
        sub.wait(until(topic, 1), what="discovery")
        sub.wait(until("p1dongle/ha1/telegram", 3), what="telegrams")
        before = len(sub.payloads(topic))
        publish.single("homeassistant/status", "online", hostname="127.0.0.1", port=broker.port)
        sub.wait(until(topic, before + 1), what="the configs again")
        n = len(sub.payloads(topic))
        publish.single("homeassistant/status", "offline", hostname="127.0.0.1", port=broker.port)
        sub.wait(until("p1dongle/ha1/telegram", len(sub.payloads("p1dongle/ha1/telegram")) + 3), what="telegrams")
        assert len(sub.payloads(topic)) == n                     # offline asks for nothing
    finally:
        app.stop()
        sub.close()


def test_the_dsmr_integration_takes_an_austrian_meter_as_5L():
    """What Home Assistant's DSMR config flow does in network mode (homeassistant/components/dsmr/
    config_flow.py): connect, wait for a telegram with the 5L equipment identifier; then its
    sensors read the energy totals."""
    app = sim("run", "--meter", "netznoe", "--interval", "0.3", "--tcp-port", "0", "--status-interval", "0")
    try:
        hint = app.expect(r"connect: telnet localhost (\d+)")
        port = int(hint.group(1))
        assert "DSMR version 5L" in hint.string                # what the console tells the user

        # the config flow: the first telegram with the 5L equipment identifier
        telegrams = dsmr_reader(port, lambda ts: obis_ref.LUXEMBOURG_EQUIPMENT_IDENTIFIER in ts[-1])
    finally:
        app.stop()
    telegram = telegrams[-1]
    serial = bytes.fromhex(telegram.LUXEMBOURG_EQUIPMENT_IDENTIFIER.value).decode()
    assert serial == emulator.METER_NAME[-12:] == "030700089953"    # the meter number, its zero kept
    assert telegram.ELECTRICITY_IMPORTED_TOTAL.unit == "kWh" and telegram.ELECTRICITY_EXPORTED_TOTAL.unit == "kWh"
    assert telegram.ELECTRICITY_IMPORTED_TOTAL.value >= 0


def test_discovery_through_the_broker_under_micropython(micropython, broker, tmp_path):
    """The dongle twin's configs, as the broker hands them on, are as clean as the PC's; it hears
    Home Assistant's birth, and Ctrl-C (as flash.py sends to change the settings) says offline."""
    import paho.mqtt.publish as publish
    reader = P1Reader()
    sub = Subscriber(broker.port)
    cfg = tmp_path / "p1dongle.json"
    settings_file(cfg, reader.port, device_id="mp", mqtt={"host": "localhost", "port": broker.port})
    # main.py as the dongle runs it, and after it returns the REPL (the process, its sockets) lives on
    repl = tmp_path / "repl.py"
    repl.write_text("import sys, time\nsys.argv[:] = ['main.py', %r]\nexec(open(%r).read())\n"
                    "print('at the REPL')\ntime.sleep(60)\n" % (str(cfg), os.path.join(FIRMWARE, "main.py")))
    app = Proc([micropython, str(repl)], env={"MICROPYPATH": MICROPYPATH})
    try:
        app.expect(r"mqtt mqtt://localhost:%d: connected" % broker.port)
        reader.accept()
        reader.send(meter.frame(LUX, counter=1))
        sub.wait(until("homeassistant/sensor/mp/totalImportedEnergyP/config", 1), what="discovery")
        sub.wait(until("homeassistant/sensor/mp/currentReactiveDeliveryL3/config", 1), what="all of it")
        sub.wait(until("p1dongle/mp/state", 1), what="state")
        state = sub.payloads("p1dongle/mp/state")[-1]
        configs = [(t, p) for t, p, _ in sub.messages if t.startswith("homeassistant/sensor/mp/")]
        assert len(configs) > 30
        sub.wait(until("p1dongle/mp/peaks", 1), what="the peaks")
        check_configs(configs, state, dsmr.parse(LUX), sub.payloads("p1dongle/mp/peaks")[-1])
        diag = [json.loads(p) for t, p in configs if "/dongle_" in t]
        assert {c["name"] for c in diag} >= {"Uptime", "Free heap", "Telegrams"}
        publish.single("homeassistant/status", "online", hostname="127.0.0.1", port=broker.port)
        sub.wait(lambda msgs: all(until(t, 2)(msgs) for t, _ in configs), what="all the configs again")
        # the dongle idle, waiting for the meter (where a Ctrl-C lands outside the app's tasks)
        app.p.send_signal(signal.SIGINT)
        app.expect("at the REPL")
        # now, not once the broker gives up on a silent link (the will, after 1.5 keepalives)
        fresh = Subscriber(broker.port)
        try:
            fresh.wait(last_is("p1dongle/mp/status", b"offline"), timeout=10, what="the retained offline")
        finally:
            fresh.close()
    finally:
        app.p.kill()        # a Ctrl-C would end only the app: the REPL's sleep(60) would outlast stop()
        app.stop()
        sub.close()


# -- readings Home Assistant cannot take as their row says (issue 22) ---------------------------------

# A power line without its unit (DSMR 2.2 meters and some others write none) and a power factor
# with one: neither is in a unit Home Assistant takes for the row's kind.
ODD_UNITS = ["1-0:1.7.0(00.420)", "1-0:13.7.0(0.998*x)"]
ODD_TELEGRAM = meter.telegram(ODD_UNITS + [ln for ln in meter.LUX_BODY if not ln.startswith("1-0:1.7.0(")])


def test_a_reading_not_in_its_rows_unit_is_not_announced_as_that_kind():
    """Announced only what can be announced correctly: the two odd readings get no config (a power
    sensor without a unit, a power factor in 'x', would be wrong); everything else does, cleanly;
    the state still carries both, with the meter's digits and units."""
    assert obis.unit_shift(None, "kW") is None and obis.unit_shift("x", None) is None
    assert obis.unit_shift("kW", "W") == 3 and obis.unit_shift("Wh", "kWh") == -3 and obis.unit_shift(None, None) == 0
    configs = ha.announced(ODD_TELEGRAM)
    names = {t.split("/")[-2] for t, _ in configs}
    assert "currentUsage" not in names and "powerFactor" not in names
    assert {"totalImportedEnergyP", "currentUsageL1", "voltageL1", "currentReactiveDeliveryL3"} <= names
    readings = dsmr.parse(ODD_TELEGRAM)
    check_configs(configs, bytes(state.state_json(readings)), readings)
    doc = json.loads(state.telegram_json(ODD_TELEGRAM), parse_float=Decimal)
    assert doc["currentUsage"] == Decimal("0.420") and "currentUsage" not in doc["units"]
    assert doc["powerFactor"] == Decimal("0.998") and doc["units"]["powerFactor"] == "x"


def test_a_config_that_cannot_be_made_is_skipped_with_one_line():
    """Whatever goes wrong making one reading's config costs that config and one line, not the
    other configs (and, in the client, never the session: test_mqtt.py)."""
    lines = []
    client = MqttClient("127.0.0.1", 1, "p1dongle")
    out = MqttOutput(client, "p1dongle/p1dongle", "homeassistant", "p1dongle", log=lines.append)
    readings = dsmr.parse(LUX)
    broken = ("1-0:99.99.0", "broken", "Broken", obis.NUM, None, 1, 3, "no such kind", None)
    ha.tell(out, LUX, readings[:3] + [(broken, (1, 0, None))] + readings[3:])
    names = [t.split("/")[-2] for t, _ in out.discovery()]
    assert "broken" not in names and {"totalImportedEnergyP", "voltageL3"} <= set(names)
    assert len(lines) == 1 and "broken" in lines[0] and "KeyError" in lines[0], lines


@pytest.mark.parametrize("interpreter", ["cpython", "twin"])
def test_odd_units_never_end_the_mqtt_session(broker, tmp_path, request, interpreter):
    """main.py (under CPython and on the dongle twin) with a real broker: telegrams with the two
    odd readings are published and announced without them, on one connection that stays up."""
    python = sys.executable if interpreter == "cpython" else request.getfixturevalue("micropython")
    reader = P1Reader()
    sub = Subscriber(broker.port)
    cfg = tmp_path / "p1dongle.json"
    settings_file(cfg, reader.port, device_id="odd", mqtt={"host": "127.0.0.1", "port": broker.port})
    app = Proc([python, os.path.join(FIRMWARE, "main.py"), str(cfg)], env={"MICROPYPATH": MICROPYPATH})
    try:
        app.expect(r"mqtt mqtt://127.0.0.1:%d: connected" % broker.port)
        reader.accept()
        for i in range(3):
            reader.send(meter.frame(ODD_TELEGRAM, counter=i + 1))
            sub.wait(until("p1dongle/odd/state", i + 1), what="state %d" % (i + 1))
        # the last reading's config: every config was made, none ended the connection
        sub.wait(until("homeassistant/sensor/odd/currentReactiveDeliveryL3/config", 1), what="all the configs")
        reader.send(meter.frame(ODD_TELEGRAM, counter=4))
        sub.wait(until("p1dongle/odd/telegram", 4), what="the next telegram")
    finally:
        app.stop()
        reader.close()
        sub.close()
    topics = {t for t, _, _ in sub.messages}
    assert "homeassistant/sensor/odd/currentUsage/config" not in topics
    assert "homeassistant/sensor/odd/powerFactor/config" not in topics
    assert json.loads(sub.payloads("p1dongle/odd/state")[-1])["currentUsage"] == 0.42
    assert len([ln for ln in app.seen if ln.startswith("mqtt ") and ln.endswith(": connected")]) == 1, app.seen
    assert not [ln for ln in app.seen if "retrying" in ln or "failed" in ln], app.seen


# -- what a DLMS meter's readings keep (issue 22) ------------------------------------------------------

def state_sent(client):
    """The latest state the output handed the (unconnected) client: what the broker would get
    (what waits for it is the function that writes it when it goes)."""
    waiting = [p for t, p, _ in client._queue if t.endswith("/state")][-1]
    return json.loads(bytes(waiting() if callable(waiting) else waiting))


def test_codes_outside_the_table_are_kept_within_a_bound():
    """The latest of every reading of the table is kept (lists come in turn: an hourly one stays);
    of codes outside the table a push's own and the OTHERS_KEPT seen last before it. Pushes with
    ever new codes (noise that passes a plain HDLC FCS) never grow the state."""
    client = MqttClient("127.0.0.1", 1, "p1dongle")
    out = MqttOutput(client, "p1dongle/p1dongle", "homeassistant", "p1dongle", log=lambda line: None)
    telegram = b"/DLM5\r\n\r\n!0000\r\n"
    hourly = [(obis.row("1-0:2.8.0"), (5, 0, "kWh"))]
    fast = [(obis.row("1-0:1.7.0"), (420, -3, "kW")), (obis.row("1-0:32.7.0"), (2330, -1, "V")),
            (obis.row("1-0:94.31.1"), (7, 0, None))]                 # the meter's own, every push
    ha.tell(out, telegram, hourly + fast)

    def noise(i):
        return [(obis.row("1-0:%d.%d.%d" % (200 + k, i >> 8, i & 255)), (i, 0, None)) for k in range(5)]

    for i in range(300):
        ha.tell(out, telegram, fast + noise(i))
    state = state_sent(client)
    assert state["totalExportedEnergyP"] == 5 and state["currentUsage"] == 0.42 and state["1-0:94.31.1"] == 7
    others = {name for name in state if name.startswith("1-0:2")}
    newest = [row[obis.NAME] for i in (297, 298, 299) for row, _ in noise(i)]
    own = 1                                                          # 1-0:94.31.1, seen last but 5
    assert others == set(newest[-(5 + OTHERS_KEPT - own):])  # this push's 5, and the 8 seen last
    ha.tell(out, telegram, fast)
    state = state_sent(client)
    assert len([name for name in state if name.startswith("1-0:2")]) == OTHERS_KEPT - own
    assert len(state) == 1 + 4 + OTHERS_KEPT - own          # units, the table's 3, the others


def test_codes_outside_the_table_never_run_the_twin_out_of_heap(micropython):
    """On the dongle twin in the dongle's heap: every quantity of the table, then 3000 pushes of 8
    new codes each. Without a bound the state and the kept readings grow until a MemoryError;
    with it the heap stays where the first pushes left it (host_tests/values_heap.py)."""
    import subprocess
    proc = subprocess.run([micropython, "-X", "heapsize=96K", os.path.join(os.path.dirname(__file__), "values_heap.py"),
                           "3000"], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, MICROPYPATH=MICROPYPATH))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    r = json.loads(proc.stdout)
    assert r["state_readings"] <= r["table_readings"] + OTHERS_KEPT + 8, r
    assert r["peak"] - r["after_table"] <= 8 * 1024, r             # 3000 x 8 codes kept: megabytes
