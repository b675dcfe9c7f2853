"""The dongle's web server as its users' software reads it, against `tools/sim.py run` (the same
firmware modules as the dongle) and the dongle twin's main.py:

- the HomeWizard v1 API, read by python-homewizard-energy (the client Home Assistant's HomeWizard
  integration runs): the device, and every field equal to the telegram's value as dsmr_parser
  reads that telegram;
- the settings: secrets never in an answer, a bad value refused with its line and nothing saved,
  a good one saved to the settings file and the app restarted with it, backup and restore, the
  web password;
- clients that stall, send garbage or too much never hold up the meter side or the next request.
"""
import asyncio
import base64
import datetime
import http.client
import json
import os
import socket
import sys
from decimal import Decimal

import aiohttp
import meter
import pytest
from dsmr_parser import telegram_specifications
from dsmr_parser.parsers import TelegramParser
from homewizard_energy import HomeWizardEnergyV1, has_v2_api
from homewizard_energy.errors import RequestError, UnsupportedError
from procs import P1Reader, connect, free_port, micropython_app, read_telegrams, settings_file, sim

KEY_HEX = meter.KEY.hex().upper()


class Dongle:
    """tools/sim.py run reading the test's P1 reader (a TCP server it connects to), its web server
    and plain-telegram port on free ports, its settings in a file."""

    def __init__(self, tmp_path, env=None):
        self.settings_file = tmp_path / "p1dongle.json"
        self.reader = P1Reader()
        self.proc = sim("run", "--source", "tcp:127.0.0.1:%d" % self.reader.port, "--key", KEY_HEX,
                        "--tcp-port", "0", "--http-port", "0", "--status-interval", "0",
                        "--settings", str(self.settings_file), env=env)
        self.started()
        self.counter = 0

    def started(self):
        m = self.proc.expect(r"plain telegrams on port (\d+), web page on port (\d+)")
        self.tcp_port, self.port = int(m.group(1)), int(m.group(2))
        if self.reader.conn is not None:
            self.reader.conn.close()                # the app before the restart's
        self.reader.accept()

    def send(self, telegram):
        """One telegram, encrypted as the meter does; returns once the app has published it."""
        self.counter += 1
        self.reader.send(meter.frame(telegram, counter=self.counter))
        self.proc.expect(r"telegram \d+: %d bytes" % len(telegram))

    def close(self):
        self.proc.stop()
        self.reader.close()


@pytest.fixture
def dongle(tmp_path):
    d = Dongle(tmp_path)
    yield d
    d.close()


def request(port, method, path, body=None, headers=None):
    """(status, headers, body bytes) of one request; every body is kept in SEEN for the check
    that no secret is ever in one."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        data = r.read()
    finally:
        c.close()
    SEEN.append(data)
    return r.status, dict((k.lower(), v) for k, v in r.getheaders()), data


def get_json(port, path, headers=None):
    status, _, body = request(port, "GET", path, headers=headers)
    assert status == 200, (path, status, body)
    return json.loads(body)


def post_json(port, path, value, headers=None):
    status, _, body = request(port, "POST", path, json.dumps(value).encode(),
                              dict({"Content-Type": "application/json"}, **(headers or {})))
    return status, json.loads(body)


SEEN = []


def homewizard(port, *calls):
    """What python-homewizard-energy's HomeWizardEnergyV1 returns for each call (a method name),
    in one session, as Home Assistant's integration makes them."""
    async def main():
        async with aiohttp.ClientSession() as session:
            api = HomeWizardEnergyV1("127.0.0.1:%d" % port, clientsession=session)
            out = []
            for name in calls:
                name, kwargs = name if isinstance(name, tuple) else (name, {})
                try:
                    out.append(await getattr(api, name)(**kwargs))
                except (UnsupportedError, RequestError) as e:
                    out.append(e)
            return out
    return asyncio.run(main())


# -- the HomeWizard API ---------------------------------------------------------------------------

def parsed(telegram):
    """The telegram as dsmr_parser (Home Assistant's DSMR integration) reads it, independent of the
    dongle's own reading of it."""
    spec = {b"/FLU": telegram_specifications.BELGIUM_FLUVIUS,
            b"/Lux": telegram_specifications.LUXEMBOURG_SMARTY}.get(telegram[:4], telegram_specifications.V5)
    return TelegramParser(spec).parse(telegram.decode())


def kwh(obj):
    return float(obj.value)


def test_homewizard_reads_a_dutch_meter_as_from_a_homewizard_p1(dongle):
    t = meter.NL_TELEGRAM
    before = homewizard(dongle.port, "measurement", "telegram")
    assert before[0].energy_import_kwh is None                      # nothing before the first telegram
    assert isinstance(before[1], Exception)
    dongle.send(t)
    device, m, telegram, combined = homewizard(dongle.port, "device", "measurement", "telegram", "combined")
    p = parsed(t)

    assert device.product_type == "HWE-P1" and device.api_version.major == 1
    assert device.model_name == "Wi-Fi P1 Meter" and device.serial == "000000000000"
    assert telegram == t.decode()
    # every field Home Assistant's HomeWizard sensors read, equal to the telegram
    assert m.energy_import_t1_kwh == kwh(p.ELECTRICITY_USED_TARIFF_1)
    assert m.energy_import_t2_kwh == kwh(p.ELECTRICITY_USED_TARIFF_2)
    assert m.energy_export_t1_kwh == kwh(p.ELECTRICITY_DELIVERED_TARIFF_1)
    assert m.energy_export_t2_kwh == kwh(p.ELECTRICITY_DELIVERED_TARIFF_2)
    assert Decimal(str(m.energy_import_kwh)) == (p.ELECTRICITY_USED_TARIFF_1.value
                                                 + p.ELECTRICITY_USED_TARIFF_2.value)
    watts = (p.CURRENT_ELECTRICITY_USAGE.value - p.CURRENT_ELECTRICITY_DELIVERY.value) * 1000
    assert m.power_w == float(watts) and m.power_w != 0
    assert m.power_l1_w == float((p.INSTANTANEOUS_ACTIVE_POWER_L1_POSITIVE.value
                                  - p.INSTANTANEOUS_ACTIVE_POWER_L1_NEGATIVE.value) * 1000)
    assert m.voltage_l1_v == float(p.INSTANTANEOUS_VOLTAGE_L1.value)
    assert m.current_l1_a == float(p.INSTANTANEOUS_CURRENT_L1.value)
    assert m.tariff == int(p.ELECTRICITY_ACTIVE_TARIFF.value)
    assert m.any_power_fail_count == int(p.SHORT_POWER_FAILURE_COUNT.value)
    assert m.long_power_fail_count == int(p.LONG_POWER_FAILURE_COUNT.value)
    assert m.voltage_sag_l1_count == int(p.VOLTAGE_SAG_L1_COUNT.value)
    assert m.voltage_swell_l1_count == int(p.VOLTAGE_SWELL_L1_COUNT.value)
    assert m.protocol_version == int(p.P1_MESSAGE_HEADER.value)
    assert m.unique_id == bytes.fromhex(p.EQUIPMENT_IDENTIFIER.value).decode()
    assert m.meter_model == t.decode().split("\r\n")[0][1:]
    gas = p.get_mbus_device_by_channel(1).MBUS_METER_READING
    (ext,) = m.external_devices.values()
    assert ext.type.value == "gas_meter" and ext.unit == "m3"
    assert ext.value == float(gas.value)
    assert ext.timestamp == gas.datetime.astimezone(datetime.timezone(datetime.timedelta(hours=1))).replace(tzinfo=None)
    assert ext.unique_id == bytes.fromhex(p.get_mbus_device_by_channel(1).MBUS_EQUIPMENT_IDENTIFIER.value).decode()
    # Home Assistant's first call: what a P1 meter lacks (system, state) is unsupported, not an error
    assert combined.device.product_type == "HWE-P1" and combined.measurement.power_w == m.power_w
    assert combined.state is None and combined.system.wifi_ssid == ""         # (the simulator has no Wi-Fi)


def test_homewizard_power_is_negative_while_the_meter_delivers(dongle):
    lines = meter.NL_TELEGRAM.decode().split("\r\n")
    swap = {"1-0:1.7.0(00.244*kW)": "1-0:1.7.0(00.000*kW)", "1-0:2.7.0(00.000*kW)": "1-0:2.7.0(01.532*kW)",
            "1-0:21.7.0(00.244*kW)": "1-0:21.7.0(00.000*kW)", "1-0:22.7.0(00.000*kW)": "1-0:22.7.0(01.532*kW)"}
    t = meter.telegram([swap.get(line, line) for line in lines[2:-2]], header=lines[0])
    dongle.send(t)
    (m,) = homewizard(dongle.port, "measurement")
    p = parsed(t)
    assert m.power_w == -1532 == float(-p.CURRENT_ELECTRICITY_DELIVERY.value * 1000)
    assert m.power_l1_w == -1532


def test_homewizard_digits_are_the_telegrams_own(dongle):
    """The JSON carries the telegram's digits (written from the integer reading, never a float):
    23949.193 is 23949.193, not 23949.192 as the dongle's single-precision floats would say."""
    dongle.send(meter.LUX_TELEGRAM)
    _, _, body = request(dongle.port, "GET", "/api/v1/data")
    d = json.loads(body, parse_float=Decimal)
    p = parsed(meter.LUX_TELEGRAM)
    assert b'"total_power_import_kwh":23949.193' in body
    assert d["total_power_import_kwh"] == p.ELECTRICITY_IMPORTED_TOTAL.value
    assert d["total_power_export_kwh"] == p.ELECTRICITY_EXPORTED_TOTAL.value
    assert d["active_voltage_l2_v"] == p.INSTANTANEOUS_VOLTAGE_L2.value
    assert d["unique_id"] == p.LUXEMBOURG_EQUIPMENT_IDENTIFIER.value     # the meter's own hex, as HomeWizard sends it
    assert "wifi_ssid" in d


def test_homewizard_reads_a_belgian_meter_with_its_peaks_and_gas(dongle):
    t = meter.BE_TELEGRAM
    dongle.send(t)
    (m,) = homewizard(dongle.port, "measurement")
    p = parsed(t)
    assert m.energy_import_t1_kwh == kwh(p.ELECTRICITY_USED_TARIFF_1)
    assert m.energy_export_t2_kwh == kwh(p.ELECTRICITY_DELIVERED_TARIFF_2)
    assert m.average_power_15m_w == float(p.BELGIUM_CURRENT_AVERAGE_DEMAND.value * 1000)
    peak = p.BELGIUM_MAXIMUM_DEMAND_MONTH
    assert m.monthly_power_peak_w == float(peak.value * 1000)
    assert m.monthly_power_peak_timestamp == peak.datetime.astimezone(
        datetime.timezone(datetime.timedelta(hours=2))).replace(tzinfo=None)      # summer time (S)
    assert m.voltage_l3_v == float(p.INSTANTANEOUS_VOLTAGE_L3.value)
    assert m.tariff == 1
    (ext,) = m.external_devices.values()
    assert ext.type.value == "gas_meter"
    assert ext.value == float(p.get_mbus_device_by_channel(1).MBUS_METER_READING.value)
    assert m.unique_id == bytes.fromhex(p.BELGIUM_EQUIPMENT_IDENTIFIER.value).decode()


def test_homewizard_system_and_identify_as_home_assistant_calls_them(dongle):
    """The cloud switch and the Identify button Home Assistant shows for a HomeWizard P1: the
    system says there is no cloud (and stays so when asked to switch it on), identify answers and
    the dongle says what it did; the device takes a HomeWizard's name, not the MQTT device's."""
    dongle.send(meter.NL_TELEGRAM)
    device, system, switched, identified, combined = homewizard(
        dongle.port, "device", "system", ("system", {"cloud_enabled": True}), "identify", "combined")
    assert device.product_name == "P1 meter" and device.product_type == "HWE-P1"
    assert system.cloud_enabled is False and switched.cloud_enabled is False
    assert identified is True
    dongle.proc.expect(r"web: identify: no LED set \(led_pin\)")
    assert combined.system.cloud_enabled is False and combined.system.wifi_ssid == ""
    # what HomeWizard's v1 takes in a PUT, and nothing else
    for body in (b"not json", b"[]", b'{"cloud_enabled": "yes"}', b'{"api_v1_enabled": false}'):
        status, _, answer = request(dongle.port, "PUT", "/api/v1/system", body, {"Content-Type": "application/json"})
        assert status == 400 and json.loads(answer)["error"]["description"], body
    assert get_json(dongle.port, "/api/v1/system") == {"cloud_enabled": False}


def test_what_a_homewizard_p1_does_not_have_is_not_found(dongle):
    # Home Assistant's config flow asks first for the v2 API (HTTPS, a 401 without a token): the
    # dongle is a v1 device, and its HTTP server answers a TLS hello with a 400 and closes
    assert asyncio.run(has_v2_api("127.0.0.1:%d" % dongle.port)) is False
    for path in ("/api/v1/state", "/api/v2/nothing", "/nothing"):
        assert request(dongle.port, "GET", path)[0] == 404
    for method in ("PUT", "POST", "DELETE"):
        assert request(dongle.port, method, "/api/v1/data")[0] == 405       # there, but not for that
    assert request(dongle.port, "GET", "/api/v1/identify")[0] == 405
    status, headers, body = request(dongle.port, "HEAD", "/api")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0


def test_the_data_document_is_the_same_on_the_dongle(micropython, tmp_path):
    """GET /api/v1/data made on the twin (single-precision floats, 32-bit) is CPython's, byte
    for byte: every number from the readings' digits."""
    from conftest import HERE, run_script
    telegrams = [t.decode() for t in (meter.LUX_TELEGRAM, meter.NL_TELEGRAM, meter.BE_TELEGRAM, meter.DSMR22_TELEGRAM)]
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"job": "homewizard", "telegrams": telegrams}))
    twin = run_script(micropython, os.path.join(HERE, "mp_job.py"), str(job))
    host = run_script(sys.executable, os.path.join(HERE, "mp_job.py"), str(job))
    assert twin == host
    for doc in twin:
        assert json.loads(doc)["wifi_strength"] == 78
    assert '"total_power_import_kwh":23949.193,' in twin[0]
    assert '"total_gas_m3":0.107,"gas_timestamp":170102161005,' in twin[1]


def test_an_m_bus_device_type_given_as_text_never_breaks_the_data_document(run_job):
    """A device type line that holds text, not a number (a quote, a control character: found by
    make fuzz), says nothing about the device: its channel is left out of external[], and the
    document stays JSON, on every interpreter."""
    odd = []
    for text in ('3"}]', "\x00", "gas"):
        body = "/XMX5LGF0000000000\r\n\r\n0-1:24.1.0(%s)\r\n0-1:24.2.1(261205120000W)(00042.000*m3)\r\n" \
               "0-2:24.1.0(%s)\r\n0-2:24.2.1(261205120000W)(00007.000*GJ)\r\n!" % (text, text)
        odd.append(body + "%04X\r\n" % meter.crc16_arc(body.encode()))
    for doc in run_job({"job": "homewizard", "telegrams": odd}):
        data = json.loads(doc)
        # m3 is gas whatever the type line says; a GJ channel without a known type is no device
        assert [d["type"] for d in data["external"]] == ["gas_meter"] and data["total_gas_m3"] == 42


# -- the settings ---------------------------------------------------------------------------------

def saved(dongle):
    return json.loads(dongle.settings_file.read_text()) if dongle.settings_file.exists() else None


def test_settings_never_show_a_secret_and_a_bad_value_changes_nothing(dongle):
    SEEN.clear()
    s = get_json(dongle.port, "/api/settings")
    assert s["secrets"]["key"] is True and s["secrets"]["mqtt.password"] is False
    assert "key" not in s["settings"] and "lux" in s["meters"]
    status, answer = post_json(dongle.port, "/api/settings", {"key": "0" * 31})
    assert status == 400 and "key" in answer["error"] and "32" in answer["error"]
    status, answer = post_json(dongle.port, "/api/settings", {"no_such_setting": 1})
    assert status == 400 and "no_such_setting" in answer["error"]
    status, answer = post_json(dongle.port, "/api/settings", {"mqtt": {"port": "many"}})
    assert status == 400 and "mqtt" in answer["error"]
    # a source this target cannot open (a PC has no UART; the dongle no serial port: test_settings)
    status, answer = post_json(dongle.port, "/api/settings", {"source": "uart"})
    assert status == 400 and answer["error"].startswith("source uart is not on this device; use tcp:HOST:PORT")
    status, _, body = request(dongle.port, "POST", "/api/settings", b"{not json",
                              {"Content-Type": "application/json"})
    assert status == 400 and b"JSON" in body
    # another web site's form or text/plain POST (sent by a browser without asking) changes nothing
    for kind in ("text/plain", "application/x-www-form-urlencoded", None):
        status, _, body = request(dongle.port, "POST", "/api/settings", b'{"device_id": "evil"}',
                                  {"Content-Type": kind} if kind else {})
        assert status == 415 and b"application/json" in body
    assert saved(dongle) is None                                   # nothing was written
    # the status page's JSON and the pages themselves
    get_json(dongle.port, "/api/status")
    for path in ("/", "/settings", "/style.css", "/api/backup"):
        assert request(dongle.port, "GET", path)[0] == 200
    assert SEEN and not any(KEY_HEX.encode() in body or KEY_HEX.lower().encode() in body for body in SEEN)


def test_new_settings_are_saved_and_the_app_restarts_with_them(dongle):
    dongle.send(meter.LUX_TELEGRAM)
    status, answer = post_json(dongle.port, "/api/settings",
                               {"device_id": "kitchen", "max_clients": 3, "key": ""})   # "": keep the key
    assert status == 200 and "restarts" in answer["message"]
    dongle.proc.expect(r"restarting with the new settings")
    dongle.started()
    s = saved(dongle)
    assert s["device_id"] == "kitchen" and s["max_clients"] == 3
    assert s["key"].upper() == KEY_HEX                                     # kept, though the form sent none
    # the restarted app reads the meter with the same key and says who it is now
    dongle.send(meter.LUX_TELEGRAM)
    assert get_json(dongle.port, "/api/status")["device_id"] == "kitchen"
    assert get_json(dongle.port, "/api/settings")["settings"]["max_clients"] == 3


def test_a_backup_has_no_secrets_and_a_restore_keeps_them(dongle):
    post_json(dongle.port, "/api/settings", {"mqtt": {"host": "127.0.0.1", "password": "pw-never-shown"}})
    dongle.proc.expect(r"restarting with the new settings")
    dongle.started()
    status, headers, body = request(dongle.port, "GET", "/api/backup")
    assert status == 200 and "attachment" in headers["content-disposition"]
    backup = json.loads(body)
    assert "key" not in backup and "password" not in backup["mqtt"] and backup["mqtt"]["host"] == "127.0.0.1"
    assert b"pw-never-shown" not in body and KEY_HEX.encode() not in body
    backup["device_id"] = "restored"
    status, answer = post_json(dongle.port, "/api/restore", backup)
    assert status == 200
    dongle.proc.expect(r"restarting with the new settings")
    dongle.started()
    s = saved(dongle)
    assert s["device_id"] == "restored" and s["key"].upper() == KEY_HEX and s["mqtt"]["password"] == "pw-never-shown"
    status, answer = post_json(dongle.port, "/api/restore", ["not", "settings"])
    assert status == 400 and saved(dongle)["device_id"] == "restored"


def test_the_web_password_guards_the_settings_not_the_readings(tmp_path):
    d = Dongle(tmp_path, env={"P1DONGLE_WEB_PASSWORD": "letmein"})
    try:
        def basic(user, password):
            return {"Authorization": "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode()}
        for path in ("/settings", "/api/settings", "/api/backup"):
            status, headers, body = request(d.port, "GET", path)
            assert status == 401 and "basic" in headers["www-authenticate"].lower()
            assert request(d.port, "GET", path, headers=basic("admin", "wrong"))[0] == 401
            assert request(d.port, "GET", path, headers=basic("admin", "letmein"))[0] == 200
        assert request(d.port, "POST", "/api/settings", b'{"device_id": "x"}', basic("", "nope"))[0] == 401
        assert request(d.port, "GET", "/api/settings", headers={"Authorization": "Basic %%%"})[0] == 401
        assert saved(d) is None
        for path in ("/", "/api/status", "/api", "/api/v1/data"):
            assert request(d.port, "GET", path)[0] == 200
        assert get_json(d.port, "/api/settings", basic("", "letmein"))["secrets"]["web_password"] is True
    finally:
        d.close()


# -- clients that misbehave -----------------------------------------------------------------------

def test_stalled_garbage_and_oversized_requests_hold_up_nothing(dongle):
    client = connect(dongle.tcp_port)
    dongle.proc.expect(r"connected \(1 clients\)")
    stalled = [socket.create_connection(("127.0.0.1", dongle.port)) for _ in range(4)]   # never ask
    half = socket.create_connection(("127.0.0.1", dongle.port))
    half.sendall(b"GET /api/v1/data HTTP/1.1\r\nHost: dongle\r\n")                      # never ends
    try:
        # the meter side goes on, and every well-behaved request is answered
        dongle.send(meter.LUX_TELEGRAM)
        assert read_telegrams(client, 1) == [meter.LUX_TELEGRAM]
        for _ in range(3):
            assert get_json(dongle.port, "/api/v1/data")["total_power_import_kwh"] == 23949.193
        assert request(dongle.port, "GET", "/" + "x" * 5000)[0] == 431
        assert request(dongle.port, "POST", "/api/settings", b"{}" * 3000)[0] == 413
        for junk in (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + bytes(200) + b"\r\n\r\n",   # TLS
                     b"hello\r\n\r\n", b"GET / SPDY/3\r\n\r\n", b"GET /api HTTP/1.0\r\nContent-Length: -5\r\n\r\n"):
            with socket.create_connection(("127.0.0.1", dongle.port), timeout=10) as s:
                s.sendall(junk)
                assert s.recv(100).startswith(b"HTTP/1.0 400 ")
        with socket.create_connection(("127.0.0.1", dongle.port), timeout=10) as s:
            s.sendall(b"GET /api/v1/telegram HTTP/1.0\r\n\r\n")
            s.close()                                                                   # gone at once
        dongle.send(meter.LUX_TELEGRAM)
        assert read_telegrams(client, 1) == [meter.LUX_TELEGRAM]
        assert get_json(dongle.port, "/api")["product_type"] == "HWE-P1"
    finally:
        for s in stalled + [half, client]:
            s.close()


def test_the_dongle_twin_serves_the_page_and_the_api(micropython, tmp_path):
    """main.py on the dongle twin: the same web server in MicroPython's asyncio."""
    reader = P1Reader()
    cfg = tmp_path / "p1dongle.json"
    tcp_port, port = free_port(), free_port()       # (MicroPython's asyncio server cannot say which it got)
    settings_file(cfg, reader.port, key=KEY_HEX, tcp_port=tcp_port, http_port=port)
    app = micropython_app(micropython, str(cfg))
    try:
        app.expect(r"plain telegrams on port %d, web page on port %d" % (tcp_port, port))
        reader.accept()
        client = connect(tcp_port)
        app.expect(r"connected \(1 clients\)")
        reader.send(meter.frame(meter.NL_TELEGRAM))
        assert read_telegrams(client, 1) == [meter.NL_TELEGRAM]       # the app has it now
        client.close()
        device, m, telegram, switched, identified = homewizard(
            port, "device", "measurement", "telegram", ("system", {"cloud_enabled": True}), "identify")
        assert device.product_type == "HWE-P1" and device.product_name == "P1 meter"
        assert m.energy_import_t1_kwh == 4.426 and m.power_w == 244 and m.external_devices
        assert telegram == meter.NL_TELEGRAM.decode()
        assert switched.cloud_enabled is False and identified is True
        app.expect(r"web: identify: no LED set")
        status, _, page = request(port, "GET", "/")
        assert status == 200 and b"<html" in page.lower()
        status, answer = post_json(port, "/api/settings", {"key": "0" * 31})
        assert status == 400 and "key" in answer["error"]
        status, answer = post_json(port, "/api/settings", {"device_id": "twin"})
        assert status == 200
        app.expect(r"settings changed on the web page")
        assert json.loads(cfg.read_text())["device_id"] == "twin"
        assert json.loads(cfg.read_text())["key"].upper() == KEY_HEX
    finally:
        app.stop()
        reader.close()


@pytest.mark.parametrize("what", ["a port that is taken", "a file that is not there"])
def test_settings_the_app_cannot_start_with_leave_it_on_the_ones_that_ran(micropython, tmp_path, what):
    """Saved settings the app then cannot start with (they pass every check; the port or the file
    is only tried at start): the dongle twin starts again with the settings it ran with, says so in
    one line and on its status page, and its web page takes the fix."""
    reader = P1Reader()
    cfg = tmp_path / "p1dongle.json"
    tcp_port, port = free_port(), free_port()
    settings_file(cfg, reader.port, key=KEY_HEX, tcp_port=tcp_port, http_port=port)
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    bad = ({"tcp_port": taken.getsockname()[1]} if what == "a port that is taken"
           else {"source": "file:" + str(tmp_path / "missing.bin")})
    app = micropython_app(micropython, str(cfg))

    def reconnected():
        # each app that starts connects to the P1 reader: take the latest one's connection
        reader.conn.close()
        reader.accept()

    try:
        app.expect(r"plain telegrams on port %d, web page on port %d" % (tcp_port, port))
        reader.accept()
        assert post_json(port, "/api/settings", bad)[0] == 200
        line = app.expect(r"p1dongle: the new settings did not start").string
        assert line.endswith("started again with the previous ones: fix the new ones on the web page"), line
        app.expect(r"plain telegrams on port %d, web page on port %d" % (tcp_port, port))
        reconnected()
        status = get_json(port, "/api/status")
        assert "on the previous settings (the new ones did not start: " in status["line"], status["line"]
        assert get_json(port, "/api/settings")["settings"]["tcp_port"] == tcp_port     # the ones that run
        assert json.loads(cfg.read_text())[list(bad)[0]] == list(bad.values())[0]        # the new ones kept
        # the fix: the settings that ran, with what the user meant to change
        fixed = free_port()
        assert post_json(port, "/api/settings", {"tcp_port": fixed})[0] == 200
        app.expect(r"plain telegrams on port %d, web page on port %d" % (fixed, port))
        assert "previous" not in get_json(port, "/api/status")["line"]
        assert json.loads(cfg.read_text())["tcp_port"] == fixed
        assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("p1dongle.json")) == ["p1dongle.json"]
        reconnected()
        client = connect(fixed)
        app.expect(r"connected \(1 clients\)")
        reader.send(meter.frame(meter.LUX_TELEGRAM))
        assert read_telegrams(client, 1) == [meter.LUX_TELEGRAM]
        client.close()
    finally:
        app.stop()
        reader.close()
        taken.close()


DEEP = [b"[" * 2000 + b"]" * 2000, b'{"meter": ' + b"[" * 2000 + b"]" * 2000 + b"}",
        b'{"mqtt": {"host": {"a": {"b": 1}}}}', b'{"device_id": "' + b"[" * 3000 + b'"}']


def refuses_deep_settings(port):
    """Settings nested deeper than settings go (2000 arrays: a parser recursing into them runs out
    of stack or heap) get a 400 with one line, at once; a bracket inside a string is no nesting."""
    for body in DEEP[:3]:
        for path in ("/api/settings", "/api/restore"):
            status, _, answer = request(port, "POST", path, body, {"Content-Type": "application/json"})
            assert status == 400, (path, body[:40], status, answer[:200])
            line = json.loads(answer)["error"]
            assert "nest" in line and "\n" not in line, line
    status, _, answer = request(port, "POST", "/api/settings", DEEP[3], {"Content-Type": "application/json"})
    assert status == 400 and "device_id" in json.loads(answer)["error"]         # refused for what it is


def test_settings_nested_too_deep_get_one_line(dongle):
    refuses_deep_settings(dongle.port)
    assert saved(dongle) is None
    assert get_json(dongle.port, "/api")["product_type"] == "HWE-P1"


def test_settings_nested_too_deep_get_one_line_on_the_dongle(micropython, tmp_path):
    from conftest import FIRMWARE, MICROPYPATH
    from procs import Proc
    reader = P1Reader()
    cfg = tmp_path / "p1dongle.json"
    tcp_port, port = free_port(), free_port()
    settings_file(cfg, reader.port, key=KEY_HEX, tcp_port=tcp_port, http_port=port)
    before = cfg.read_text()
    app = Proc([micropython, "-X", "heapsize=96K", os.path.join(FIRMWARE, "main.py"), str(cfg)],
               env={"MICROPYPATH": MICROPYPATH})
    try:
        app.expect(r"plain telegrams on port %d, web page on port %d" % (tcp_port, port))
        refuses_deep_settings(port)
        assert get_json(port, "/api")["product_type"] == "HWE-P1"
        assert cfg.read_text() == before
    finally:
        app.stop()
        reader.close()
    assert not any("out of memory" in line or "failed" in line for line in app.seen), app.seen


def tls_hello():
    """The first bytes a TLS client sends (Home Assistant's HomeWizard setup asks https:// first)."""
    import ssl
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    outgoing = ssl.MemoryBIO()
    tls = context.wrap_bio(ssl.MemoryBIO(), outgoing, server_hostname="dongle")
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    assert hello[:2] == b"\x16\x03"
    return hello


def refuses_what_cannot_be_http_at_once(port):
    """A TLS hello, or bytes that cannot begin a request line, get their 400 as soon as they come:
    well within the 15 s a client has to send its request (the deadline below is a third of it),
    which Home Assistant's setup would otherwise sit through."""
    for junk in (tls_hello(), b"\x00\x01\x02", b"GET /api\x00 HTTP/1.1\r\n", b" GET / HTTP/1.0\r\n",
                 b"GET / SPDY/3\r\n"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(junk)
            assert s.recv(100).startswith(b"HTTP/1.0 400 "), junk[:20]
    # what can still become a request waits for the rest of it
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(b"GE")
        s.sendall(b"T /api HTT")
        s.sendall(b"P/1.0\r\nHost: dongle\r\n\r\n")
        assert s.recv(100).startswith(b"HTTP/1.0 200 ")


def test_a_tls_hello_gets_its_400_at_once(dongle):
    refuses_what_cannot_be_http_at_once(dongle.port)


def test_a_tls_hello_gets_its_400_at_once_on_the_dongle(micropython, tmp_path):
    reader = P1Reader()
    cfg = tmp_path / "p1dongle.json"
    tcp_port, port = free_port(), free_port()
    settings_file(cfg, reader.port, key=KEY_HEX, tcp_port=tcp_port, http_port=port)
    app = micropython_app(micropython, str(cfg))
    try:
        app.expect(r"plain telegrams on port %d, web page on port %d" % (tcp_port, port))
        refuses_what_cannot_be_http_at_once(port)
    finally:
        app.stop()
        reader.close()
