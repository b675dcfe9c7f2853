"""The faces that batteries, chargers and Home Assistant find and read (issue 26): the dongle
announced by mDNS as a HomeWizard P1 meter, and answering as a Shelly Pro 3EM, checked with the
clients that read them: zeroconf (Home Assistant's discovery) on a network of two namespaces,
aioshelly (Home Assistant's Shelly library) over HTTP and its WebSocket, a battery's exact UDP
request. On the simulator and on the dongle twin.
"""
import asyncio
import json
import os
import re
import socket
import sys
from decimal import Decimal

import aiohttp
import dns.message
import dns.query
import dns.rdatatype
import pytest
from aioshelly.common import ConnectionOptions, get_info
from aioshelly.rpc_device import RpcDevice
from conftest import FIRMWARE, MICROPYPATH, ROOT
from netns import Lan
from procs import DEMO_KEY, SIM, Proc, connect, free_port, read_telegrams, sim

sys.path.insert(0, FIRMWARE)
from p1dongle import config, mdns, shelly  # noqa: E402

BROWSE = os.path.join(ROOT, "host_tests", "browse.py")
# A Marstek Venus's request, as its firmware writes it (no src; docs/research/shelly-pro-3em.md)
BATTERY = b'{"id":%d,"method":"EM.GetStatus","params":{"id":0}}'
POWERS = ("a_act_power", "b_act_power", "c_act_power", "total_act_power")


def udp_call(port, request, host="127.0.0.1", timeout=5):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(timeout)
        s.sendto(request, (host, port))
        data, peer = s.recvfrom(4096)
        return data


def http_get(port, path, host="127.0.0.1", method="GET", body=None):
    async def main():
        async with aiohttp.ClientSession() as session:
            async with session.request(method, "http://%s:%d%s" % (host, port, path), data=body) as r:
                return r.status, await r.text()
    return asyncio.run(main())


def expected(telegram):
    """The Shelly face's values worked out from the telegram's own lines (not the dongle's
    readings): per-phase net power in W, voltages, currents, and the energy totals in Wh."""
    lines = {}
    for line in telegram.decode().split("\r\n"):
        m = re.match(r"^(\d-\d:[\d.]+)\((.*)\)$", line)
        if m:
            lines[m.group(1)] = m.group(2).split("*")[0]

    def num(code):
        return Decimal(lines[code]) if code in lines else None

    out = {}
    for p, n in (("a", 21), ("b", 41), ("c", 61)):
        used, given = num("1-0:%d.7.0" % n), num("1-0:%d.7.0" % (n + 1))
        if used is not None:
            out[p + "_act_power"] = (used - (given or 0)) * 1000
    for p, code in (("a", "1-0:32.7.0"), ("b", "1-0:52.7.0"), ("c", "1-0:72.7.0")):
        if num(code) is not None:
            out[p + "_voltage"] = num(code)
    for p, code in (("a", "1-0:31.7.0"), ("b", "1-0:51.7.0"), ("c", "1-0:71.7.0")):
        if num(code) is not None:
            out[p + "_current"] = num(code)
    out["total_act_power"] = (num("1-0:1.7.0") - num("1-0:2.7.0")) * 1000
    imported = num("1-0:1.8.0") if "1-0:1.8.0" in lines else num("1-0:1.8.1") + num("1-0:1.8.2")
    exported = num("1-0:2.8.0") if "1-0:2.8.0" in lines else num("1-0:2.8.1") + num("1-0:2.8.2")
    out["total_act"] = imported * 1000
    out["total_act_ret"] = exported * 1000
    return out


def same(result, want):
    for name, value in want.items():
        assert Decimal(str(result[name])) == value, (name, result.get(name), value)


def decimal_points(text):
    """Every active power in the answer's text written with a decimal point (a B2500 crashes on
    one written as an integer)."""
    for name in POWERS:
        m = re.search(r'"%s":(-?[0-9.eE+]+)' % name, text)
        assert m and re.fullmatch(r"-?\d+\.\d+", m.group(1)), (name, text)


# -- the Shelly face on the simulator: UDP, HTTP, aioshelly ---------------------------------------

def between_telegrams(port, read):
    """read() and the telegram it was read from: retried until the telegram before and after it
    is the same one (a new one comes every 2 s)."""
    for _ in range(20):
        before = http_get(port, "/api/v1/telegram")
        got = read()
        if before[0] == 200 and http_get(port, "/api/v1/telegram") == before:
            return got, before[1].encode()
    raise AssertionError("no telegram stayed long enough to be read")


def _sim_with_shelly(udp_port, interval="2"):
    app = sim("run", "--key", DEMO_KEY, "--tcp-port", "0", "--interval", interval, "--shelly", str(udp_port))
    port = int(app.expect(r"web page on port (\d+), shelly \(udp %d\)" % udp_port).group(1))
    return app, port


def test_a_battery_and_the_http_rpc_read_the_telegrams_values():
    udp = free_port()
    app, port = _sim_with_shelly(udp)
    try:
        app.expect(r"\d+ bytes|telegram \d", timeout=30)
        for n in (1, 65535):
            raw, telegram = between_telegrams(port, lambda: udp_call(udp, BATTERY % n).decode())
            want = expected(telegram)
            frame = json.loads(raw)
            assert frame["id"] == n and frame["src"] == "shellypro3em-000000000000" and frame["dst"] == "unknown"
            decimal_points(raw)
            same(frame["result"], {k: v for k, v in want.items() if not k.startswith("total_act")})
        (status, text), telegram = between_telegrams(port, lambda: http_get(port, "/rpc/EM.GetStatus?id=0"))
        assert status == 200
        decimal_points(text)
        want = expected(telegram)
        same(json.loads(text), {k: v for k, v in want.items() if not k.startswith("total_act")})
        (status, text), telegram = between_telegrams(port, lambda: http_get(port, "/rpc/EMData.GetStatus?id=0"))
        want = expected(telegram)
        same(json.loads(text), {"total_act": want["total_act"], "total_act_ret": want["total_act_ret"]})
        status, text = http_get(port, "/rpc", method="POST",
                                body=b'{"id":9,"src":"evcc","method":"EM.GetStatus","params":{"id":0}}')
        assert status == 200 and json.loads(text)["dst"] == "evcc" and json.loads(text)["id"] == 9
        # what a Shelly says to what it does not know, on each way in
        status, text = http_get(port, "/rpc/EM.GetStatus?id=1")
        assert status == 400 and json.loads(text)["code"] == -105
        status, text = http_get(port, "/rpc/Switch.Set")
        assert status == 404 and json.loads(text) == {"code": 404, "message": "No handler for Switch.Set"}
        assert json.loads(udp_call(udp, b'{"id":2,"method":"Nope"}'))["error"]["code"] == 404
        # a datagram that is not a request gets nothing, and the next one its answer
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.sendto(b"\xff\x00 not json", ("127.0.0.1", udp))
            s.sendto(b'{"method":"EM.GetStatus"}', ("127.0.0.1", udp))     # no id: a notification
        assert json.loads(udp_call(udp, BATTERY % 3))["id"] == 3
        status, text = http_get(port, "/shelly")
        info = json.loads(text)
        assert info["gen"] == 2 and info["model"] == "SPEM-003CEBEU" and info["mac"] == "000000000000"
    finally:
        app.stop()


def test_without_a_telegram_a_battery_gets_no_power():
    """No telegram (none yet, or none for 30 s): a battery's UDP request gets no answer (it sees its
    meter gone, as with a Shelly switched off), and em:0 over HTTP says power_meter_failure: never a
    0 W made up, on which a battery would steer."""
    udp = free_port()
    nobody = free_port()                # a P1 reader that is not there
    app = sim("run", "--source", "tcp:127.0.0.1:%d" % nobody, "--tcp-port", "0", "--shelly", str(udp))
    try:
        port = int(app.expect(r"web page on port (\d+), shelly \(udp %d\)" % udp).group(1))
        with pytest.raises(socket.timeout):
            udp_call(udp, BATTERY % 1, timeout=2)
        for path in ("/rpc/EM.GetStatus?id=0", "/rpc/EM1.GetStatus?id=0"):
            status, text = http_get(port, path)
            assert status == 200 and json.loads(text) == {"id": 0, "errors": ["power_meter_failure"]}, text
        status, text = http_get(port, "/rpc/Shelly.GetStatus")
        assert json.loads(text)["em:0"]["errors"] == ["power_meter_failure"]
        assert http_get(port, "/shelly")[0] == 200         # what it is, it still says
    finally:
        app.stop()


def test_a_websocket_from_another_web_site_is_refused():
    app, port = _sim_with_shelly(free_port())
    try:
        async def main():
            async with aiohttp.ClientSession() as session:
                with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                    await session.ws_connect("http://127.0.0.1:%d/rpc" % port, origin="http://evil.example")
                assert refused.value.status == 403
                async with session.ws_connect("http://127.0.0.1:%d/rpc" % port,
                                              origin="http://127.0.0.1:%d" % port) as ws:   # its own page
                    await ws.send_str('{"id":1,"src":"page","method":"Shelly.GetDeviceInfo"}')
                    assert json.loads(await ws.receive_str(timeout=10))["result"]["gen"] == 2
        asyncio.run(main())
    finally:
        app.stop()


def test_the_face_is_off_unless_asked():
    app = sim("run", "--key", DEMO_KEY, "--tcp-port", "0", "--interval", "60")
    try:
        port = int(app.expect(r"web page on port (\d+)").group(1))
        assert http_get(port, "/shelly")[0] == 404
        assert http_get(port, "/rpc/EM.GetStatus?id=0")[0] == 404
    finally:
        app.stop()


async def _aioshelly(port, updates):
    """What Home Assistant's Shelly integration does with a device added by address: /shelly, then
    the RPC device over its WebSocket; then the NotifyStatus pushed after telegrams."""
    async with aiohttp.ClientSession() as session:
        info = await get_info(session, "127.0.0.1", port=port)
        options = ConnectionOptions("127.0.0.1", port=port, device_mac=info["mac"])
        device = await RpcDevice.create(session, None, options)
        seen = []
        device.subscribe_updates(lambda d, kind: seen.append((kind, dict(d.status.get("em:0", {})))))
        await device.initialize()
        try:
            first = dict(device.status["em:0"])
            found = (info, device.firmware_supported, device.model, device.name, first, device.status)
            for _ in range(200):
                if len([1 for kind, _ in seen if "STATUS" in str(kind)]) >= updates:
                    break
                await asyncio.sleep(0.1)
            return found, seen
        finally:
            await device.shutdown()


def test_home_assistants_shelly_library_reads_the_face():
    app, port = _sim_with_shelly(free_port(), interval="1")
    try:
        app.expect(r"telegram \d", timeout=30)
        (info, supported, model, name, em, status), seen = asyncio.run(_aioshelly(port, 2))
        assert info["gen"] == 2 and supported and model == "SPEM-003CEBEU" and name == "p1dongle Shelly"
        assert set(status) >= {"sys", "wifi", "em:0", "emdata:0"}
        for field in POWERS:
            assert isinstance(em[field], float)
        pushed = [em for kind, em in seen if "STATUS" in str(kind)]
        assert len(pushed) >= 2, seen          # NotifyStatus after the telegrams that came
        assert all(set(POWERS) <= set(p) for p in pushed)
    finally:
        app.stop()


# -- the same on the dongle twin -------------------------------------------------------------------

def test_the_dongle_twin_answers_as_a_shelly(micropython, tmp_path):
    """main.py on the twin with the face on: a battery's UDP, the HTTP RPC and aioshelly's
    WebSocket (its SHA-1 handshake computed in Python: the twin's hashlib has none)."""
    meter_port, tcp_port, http_port, udp = free_port(), free_port(), free_port(), free_port()
    emulated = Proc([sys.executable, SIM, "meter", "--port", str(meter_port), "--interval", "1"])
    cfg = tmp_path / "p1dongle.json"
    cfg.write_text(json.dumps({"key": DEMO_KEY, "source": "tcp:127.0.0.1:%d" % meter_port, "host": "127.0.0.1",
                               "tcp_port": tcp_port, "http_port": http_port, "status_interval": 0,
                               "shelly": True, "shelly_udp": [udp]}))
    app = Proc([micropython, os.path.join(FIRMWARE, "main.py"), str(cfg)], env={"MICROPYPATH": MICROPYPATH})
    try:
        app.expect(r"shelly \(udp %d\)" % udp)
        app.expect(r"connected", timeout=30)
        # the face answers a battery only while a telegram is fresh: wait for the first one
        with connect(tcp_port) as client:
            read_telegrams(client, 1, timeout=30)
        for _ in range(100):
            frame = json.loads(udp_call(udp, BATTERY % 1))
            if frame["result"]["total_act_power"] != 0:
                break
        decimal_points(udp_call(udp, BATTERY % 2).decode())
        status, telegram = http_get(http_port, "/api/v1/telegram")
        want = expected(telegram.encode())
        status, text = http_get(http_port, "/rpc/EMData.GetStatus?id=0")
        assert Decimal(str(json.loads(text)["total_act"])) >= want["total_act"]
        (info, supported, model, name, em, status), seen = asyncio.run(_aioshelly(http_port, 1))
        assert supported and model == "SPEM-003CEBEU" and set(POWERS) <= set(em)
        assert any("STATUS" in str(kind) for kind, _ in seen)
    finally:
        app.stop()
        emulated.stop()


# -- found by mDNS -------------------------------------------------------------------------------

def _browse(lan, types, timeout=15):
    import subprocess
    out = subprocess.run(lan.in_home([sys.executable, BROWSE, lan.home_ip, str(timeout), *types]),
                         capture_output=True, text=True, timeout=timeout + 30)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def _check_found(lan, found, http_port, serial="000000000000"):
    hw = [f for f in found if f["type"] == "_hwenergy._tcp.local."]
    assert len(hw) == 1, found
    hw = hw[0]
    # what Home Assistant's HomeWizard zeroconf step reads: all five, path exactly /api/v1
    assert hw["resolved"] and hw["port"] == http_port and hw["addresses"] == [lan.dongle_ip]
    assert hw["properties"] == {"api_enabled": "1", "path": "/api/v1", "serial": serial,
                                "product_type": "HWE-P1", "product_name": "P1 meter"}
    assert hw["server"] == "p1dongle.local."
    sh = [f for f in found if f["type"] == "_shelly._tcp.local."]
    assert len(sh) == 1 and sh[0]["name"] == "shellypro3em-%s._shelly._tcp.local." % serial
    assert sh[0]["properties"]["gen"] == "2" and sh[0]["properties"]["id"] == "shellypro3em-" + serial
    assert sh[0]["addresses"] == [lan.dongle_ip] and sh[0]["port"] == http_port
    # a legacy unicast query (dig -p 5353), asked of the dongle's address: the host name's A
    q = dns.message.make_query("p1dongle.local", dns.rdatatype.A)
    import subprocess
    code = ("import dns.message,dns.query,sys;q=dns.message.from_wire(bytes.fromhex(sys.argv[1]));"
            "r=dns.query.udp(q,sys.argv[2],port=5353,timeout=5);print(r.answer[0][0].address)")
    out = subprocess.run(lan.in_home([sys.executable, "-c", code, q.to_wire().hex(), lan.dongle_ip]),
                         capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == lan.dongle_ip, out.stderr


def test_zeroconf_finds_the_simulator_as_a_homewizard_and_a_shelly():
    with Lan() as lan:
        app = Proc(lan.in_dongle([sys.executable, SIM, "run", "--key", DEMO_KEY, "--host", lan.dongle_ip,
                                  "--http-port", "8080", "--interval", "2", "--mdns", "--shelly", "1010", "2220"]))
        try:
            app.expect(r"mdns p1dongle.local")
            app.expect(r"telegram \d", timeout=30)
            found = _browse(lan, ["_hwenergy._tcp.local.", "_shelly._tcp.local."])
            _check_found(lan, found, 8080)
            # and a battery on the home network polls the face's UDP as it does a Shelly
            code = ("import socket,sys;s=socket.socket(socket.AF_INET,socket.SOCK_DGRAM);s.settimeout(5);"
                    "s.sendto(sys.argv[1].encode(),(sys.argv[2],int(sys.argv[3])));print(s.recvfrom(4096)[0].decode())")
            import subprocess
            for port in (1010, 2220):
                out = subprocess.run(lan.in_home([sys.executable, "-c", code, (BATTERY % 7).decode(), lan.dongle_ip,
                                                  str(port)]), capture_output=True, text=True, timeout=30)
                assert json.loads(out.stdout)["id"] == 7, out.stderr
        finally:
            app.stop()


def test_zeroconf_finds_the_dongle_twin(micropython, tmp_path):
    with Lan() as lan:
        emulated = Proc(lan.in_dongle([sys.executable, SIM, "meter", "--port", "3000", "--interval", "60"]))
        cfg = tmp_path / "p1dongle.json"
        cfg.write_text(json.dumps({"key": DEMO_KEY, "source": "tcp:127.0.0.1:3000", "host": lan.dongle_ip,
                                   "tcp_port": 23, "http_port": 80, "status_interval": 0,
                                   "mdns": True, "shelly": True}))
        app = Proc(lan.in_dongle([micropython, os.path.join(FIRMWARE, "main.py"), str(cfg)]),
                   env={"MICROPYPATH": MICROPYPATH})
        try:
            app.expect(r"mdns p1dongle.local")
            _check_found(lan, _browse(lan, ["_hwenergy._tcp.local.", "_shelly._tcp.local."]), 80)
        finally:
            app.stop()
            emulated.stop()


def test_the_dongle_finds_the_brokers_local_name(micropython):
    """The p1dongle image has its firmware's mDNS off (mdns.py answers instead): the MQTT broker's
    homeassistant.local is asked of the network by mdns.lookup, on the twin and on CPython."""
    import subprocess
    with Lan() as lan:
        home = subprocess.Popen(lan.in_home([sys.executable, os.path.join(ROOT, "host_tests", "announce.py"),
                                             lan.home_ip, "broker"]),
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            assert home.stdout.readline().strip() == "announced"
            code = "from p1dongle.mdns import lookup; print(lookup('broker.local'), lookup('nobody.local', 1))"
            for argv, env in (([micropython, "-c", code], {"MICROPYPATH": MICROPYPATH}),
                              ([sys.executable, "-c", "import sys; sys.path.insert(0, %r); " % FIRMWARE + code], {})):
                out = subprocess.run(lan.in_dongle(argv), capture_output=True, text=True, timeout=30,
                                     env=dict(os.environ, **env))
                assert out.stdout.split() == [lan.home_ip, "None"], out.stdout + out.stderr
        finally:
            home.stdin.close()
            home.wait(10)


# -- the parts, and what a hostile network sends ----------------------------------------------------

def _query(*questions, qid=0):
    out = bytes((qid >> 8, qid & 255, 0, 0, 0, len(questions), 0, 0, 0, 0, 0, 0))
    for name, kind in questions:
        out += mdns._name(name) + bytes((0, kind, 0, 1))
    return out


def _responder():
    cfg = config.check({"device_id": "p1dongle-ab12", "http_port": 80})
    r = mdns.Responder("p1dongle-ab12.local", mdns.services(cfg, "aabbccddeeff", shelly.device_id("aabbccddeeff")),
                       lambda: "192.168.1.9")
    r.joined = "192.168.1.9"
    return r


def test_answers_are_read_by_a_dns_library():
    r = _responder()
    for question, want in ((("_hwenergy._tcp.local", 12), {"PTR", "SRV", "TXT", "A"}),
                           (("p1dongle-ab12.local", 1), {"A"}),
                           (("shellypro3em-aabbccddeeff._shelly._tcp.local", 33), {"SRV", "TXT", "A"}),
                           (("_services._dns-sd._udp.local", 12), {"PTR"}),
                           (("P1DONGLE-AB12.LOCAL", 255), {"A"})):
        msg = _query(question, qid=77)
        asked, end = mdns.questions(msg)
        wanted = 0
        for name, kind, _ in asked:
            wanted |= r._wanted(name, kind)
        answer = dns.message.from_wire(bytes(r._answer(msg, end, wanted, 10)))
        assert answer.id == 77
        assert {dns.rdatatype.to_text(rr.rdtype) for rr in answer.answer} == want
    assert r._wanted("other.local", 1) == 0
    # the announcement: a datagram per service, each with the host's A, all within _MAX bytes
    each = [dns.message.from_wire(bytes(r._answer(None, 0, bits))) for bits in r._each(r._all())]
    assert [sum(len(rrset) for rrset in m.answer) for m in each] == [5, 5, 5]
    assert max(len(r._answer(None, 0, bits)) for bits in r._each(r._all())) <= mdns._MAX


@pytest.mark.parametrize("msg", [
    b"", b"\x00" * 11, b"\x00\x00\x84\x00\x00\x01" + b"\x00" * 6,                  # a response
    b"\x00" * 5 + b"\x01" + b"\x00" * 6 + b"\x05local",                             # cut short
    b"\x00" * 5 + b"\x01" + b"\x00" * 6 + b"\xc0\x0c\x00\x01\x00\x01",              # a pointer to itself
    b"\x00" * 5 + b"\x01" + b"\x00" * 6 + b"\xc0\x20\x00\x01\x00\x01",              # a pointer forward
    b"\x00" * 5 + b"\x01" + b"\x00" * 6 + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01",   # a label too long
    b"\x00" * 5 + b"\x01" + b"\x00" * 6 + b"\x02\xff\xfe\x00\x00\x01\x00\x01",     # not UTF-8
    b"\x00" * 4 + b"\xff\xff" + b"\x00" * 6 + b"\x00\x00\x01\x00\x01",             # 65535 questions, one there
])
def test_what_is_not_a_query_is_left(msg):
    assert mdns.questions(msg) is None


def test_the_dongles_name_is_one_dns_label():
    assert mdns.label("p1dongle-ab12") == "p1dongle-ab12"
    assert mdns.label("Mijn P1.dongle \u00e9") == "MijnP1dongle"
    assert mdns.label("///") == "p1dongle" and len(mdns.label("x" * 64)) == 63
    # the longest name still gives answers that fit, legacy ones too
    cfg = config.check({"device_id": "y" * 64, "http_port": 80})
    r = mdns.Responder(mdns.label(cfg["device_id"]) + ".local",
                       mdns.services(cfg, "aabbccddeeff", shelly.device_id("aabbccddeeff")), lambda: "10.0.0.2")
    r.joined = "10.0.0.2"
    msg = _query(("y" * 63 + "._hwenergy._tcp.local", 33), qid=5)
    asked, end = mdns.questions(msg)
    wanted = r._wanted(*asked[0][:2])
    assert wanted and all(dns.message.from_wire(bytes(r._answer(msg, end, bits, 10))).id == 5 for bits in r._each(wanted))
    assert all(len(r._answer(None, 0, bits)) <= mdns._MAX for bits in r._each(r._all()))


def test_the_settings_say_what_is_wrong():
    for bad, word in (({"shelly": "yes"}, "shelly"), ({"mdns": 1}, "mdns"), ({"shelly_udp": [0]}, "shelly_udp"),
                      ({"shelly_udp": "1010"}, "shelly_udp"), ({"shelly_udp": [1, 2, 3, 4, 5]}, "shelly_udp")):
        with pytest.raises(config.ConfigError, match=word):
            config.check(bad)
    assert config.check({})["shelly"] is False and config.check({})["shelly_udp"] == [1010, 2220]


@pytest.mark.parametrize("value, text", [((2301, -1), "230.1"), ((5, 0), "5.0"), ((-1234, -3), "-1.234"),
                                         ((0, -3), "0.000"), ((12, 2), "1200.0"), ((-5, -1), "-0.5")])
def test_every_number_has_a_decimal_point_and_all_its_digits(value, text):
    assert shelly.decimal(value) == text
