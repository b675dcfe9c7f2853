"""MQTT with a real broker (mosquitto, else amqtt) started here on a free port, and a real client
(paho-mqtt) subscribing: every telegram byte-exact, parsed state, Home Assistant discovery; a broker
that is absent, dies, comes back or refuses the password never stops the dongle or its TCP clients."""
import json
import os
from decimal import Decimal
import signal
import sys
import threading
import uuid

import ha
import meter
import paho.mqtt.client as paho
import pytest
from conftest import ROOT
from p1dongle import dsmr
from procs import P1Reader, connect, free_port, micropython_app, read_telegrams, settings_file, sim

sys.path.insert(0, os.path.join(ROOT, "tools"))
from broker import LocalBroker  # noqa: E402


class Subscriber:
    """paho-mqtt, subscribed to everything, reconnecting by itself; messages kept in order."""

    def __init__(self, port, user=None, password=None):
        self.messages = []                  # (topic, payload, retain)
        self.cond = threading.Condition()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="test-" + uuid.uuid4().hex[:8])
        if user:
            self.client.username_pw_set(user, password)
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([("p1dongle/#", 1), ("homeassistant/#", 1)])
        self.subscribed = threading.Event()
        self.client.on_subscribe = lambda c, u, mid, rc, p: self.subscribed.set()
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(0.1, 1)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, msg):
        with self.cond:
            self.messages.append((msg.topic, msg.payload, msg.retain))
            self.cond.notify_all()

    def wait(self, pred, timeout=30, what="messages"):
        with self.cond:
            if not self.cond.wait_for(lambda: pred(self.messages), timeout):
                raise AssertionError("no %s within %ss; got %s" % (
                    what, timeout, [(t, p[:40]) for t, p, _ in self.messages[-20:]]))

    def payloads(self, topic):
        with self.cond:
            return [p for t, p, _ in self.messages if t == topic]

    def count(self, topic):
        return lambda msgs: sum(1 for t, _, _ in msgs if t == topic)

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


def until(topic, n):
    return lambda msgs: sum(1 for t, _, _ in msgs if t == topic) >= n


def last_is(topic, payload):
    def pred(msgs):
        seen = [p for t, p, _ in msgs if t == topic]
        return bool(seen) and seen[-1] == payload
    return pred


@pytest.fixture
def broker():
    b = LocalBroker().start()
    yield b
    b.stop()


@pytest.fixture(params=["mosquitto", "amqtt"])
def any_broker(request):
    """Both brokers the tools may start: mosquitto (Debian) and the amqtt fallback (PyPI)."""
    import shutil
    if request.param == "mosquitto" and not shutil.which("mosquitto"):
        pytest.fail("mosquitto is not installed: make test installs it (apt-get install mosquitto)")
    b = LocalBroker(kind=request.param).start()
    yield b
    b.stop()


def run_dongle(port, *extra):
    return sim("run", "--source", "meter", "--mqtt", "127.0.0.1:%d" % port, "--interval", "0.3",
               "--tcp-port", "0", "--status-interval", "0", "--device-id", "test1", *extra)


def test_telegrams_state_and_home_assistant_discovery(any_broker):
    broker = any_broker
    sub = Subscriber(broker.port)
    app = run_dongle(broker.port, "--count", "4")
    try:
        port = int(app.expect(r"connect: telnet localhost (\d+)").group(1))
        client = connect(port)
        tcp = read_telegrams(client, 2)
        sub.wait(until("p1dongle/test1/telegram", 4), what="4 telegrams")
        sub.wait(until("p1dongle/test1/state", 4), what="4 states")
        assert app.p.wait(30) == 0
    finally:
        app.stop()
        sub.close()
    telegrams = sub.payloads("p1dongle/test1/telegram")
    for t in telegrams:                                       # byte-exact: CRC still right
        assert t.startswith(b"/Lux5") and int(t[-6:-2], 16) == meter.crc16_arc(t[:t.index(b"!") + 1])
    assert set(tcp) <= set(telegrams)                         # the same bytes on TCP and MQTT
    for t, s in zip(telegrams, sub.payloads("p1dongle/test1/state")):
        state = json.loads(s, parse_float=Decimal)
        for name, v in meter.values(dsmr.parse(t)).items():
            if isinstance(v, tuple):                                   # a number: its exact digits
                assert state[name] == meter.decimal(v), name
                assert state["units"].get(name) == v[2]
            elif isinstance(v, str):
                assert state[name] == v, name
    assert sub.payloads("p1dongle/test1/status")[-1] in (b"online", b"offline")
    diag = json.loads(sub.payloads("p1dongle/test1/diagnostics")[-1])
    for key in ("uptime", "telegrams", "tag_failures", "crc_failures", "dropped_bytes", "tcp_clients",
                "free_heap", "wifi_rssi", "mqtt_dropped"):
        assert key in diag
    # discovery: retained configs Home Assistant takes cleanly (test_ha.py checks them in detail),
    # each reading a value of the state, all on one device for the meter
    configs = {}
    for topic, payload, _ in sub.messages:
        if topic.startswith("homeassistant/sensor/test1/") and topic.endswith("/config"):
            assert ha.clean(topic, payload) == [], payload
            configs[topic] = ha.expand(json.loads(payload), ha.REFERENCE[ha.NEWEST])
    last_state = json.loads(sub.payloads("p1dongle/test1/state")[-1])
    meters = set()
    for topic, c in configs.items():
        name = topic.split("/")[-2]
        if name.startswith("dongle_"):
            assert c["state_topic"] == "p1dongle/test1/diagnostics"
            continue
        if name.startswith("peaks_"):           # the dongle's own peaks (history.py), on the meter
            assert c["state_topic"] == "p1dongle/test1/peaks"
            assert name[6:] in json.loads(sub.payloads("p1dongle/test1/peaks")[-1])
            meters.add(c["device"]["identifiers"][0])
            continue
        assert c["state_topic"] == "p1dongle/test1/state"
        assert "['%s']" % name in c["value_template"] and name in last_state
        meters.add(c["device"]["identifiers"][0])
    assert meters == {"p1dongle_test1_SAG1030700089953"}       # one HA device per meter, by its id
    energy = configs["homeassistant/sensor/test1/totalImportedEnergyP/config"]
    assert (energy["device_class"], energy["state_class"], energy["unit_of_measurement"]) == \
        ("energy", "total_increasing", "kWh")


def test_broker_absent_at_start_then_there_and_tcp_never_waits():
    port = free_port()
    app = run_dongle(port)
    b = None
    sub = None
    try:
        tcp_port = int(app.expect(r"connect: telnet localhost (\d+)").group(1))
        app.expect(r"mqtt mqtt://127.0.0.1:%d: cannot connect.*retrying in 1 s" % port)
        client = connect(tcp_port)
        assert len(read_telegrams(client, 3, timeout=10)) == 3    # MQTT down: TCP on time
        b = LocalBroker(port=port).start()
        sub = Subscriber(port)
        app.expect(r"mqtt mqtt://127.0.0.1:%d: connected" % port, timeout=40)
        sub.wait(last_is("p1dongle/test1/status", b"online"), what="status online")
        sub.wait(until("p1dongle/test1/telegram", 2), what="telegrams after the broker came")
        assert app.p.poll() is None
    finally:
        app.stop()
        if sub:
            sub.close()
        if b:
            b.stop()


def test_broker_dies_and_returns_then_the_will_says_offline(broker):
    sub = Subscriber(broker.port)
    app = run_dongle(broker.port)
    try:
        tcp_port = int(app.expect(r"connect: telnet localhost (\d+)").group(1))
        client = connect(tcp_port)
        sub.wait(until("p1dongle/test1/telegram", 1), what="a telegram")
        broker.kill()                                            # mid-stream, no goodbye
        app.expect(r"mqtt mqtt://127.0.0.1:%d: .*retrying" % broker.port)
        assert len(read_telegrams(client, 4, timeout=10)) == 4   # TCP clients never notice
        broker.start()
        app.expect(r"mqtt mqtt://127.0.0.1:%d: connected" % broker.port, timeout=40)
        n = len(sub.payloads("p1dongle/test1/telegram"))
        sub.wait(until("p1dongle/test1/telegram", n + 2), what="telegrams after the restart")
        sub.wait(last_is("p1dongle/test1/status", b"online"), what="status online again")
        # a second outage starts with a short wait again: the backoff restarts after a good connection
        broker.kill()
        app.expect(r"mqtt mqtt://127.0.0.1:%d: .*retrying in 1 s" % broker.port)
        broker.start()
        app.expect(r"mqtt mqtt://127.0.0.1:%d: connected" % broker.port, timeout=40)
        sub.wait(last_is("p1dongle/test1/status", b"online"), what="status online after the second restart")
        assert app.p.poll() is None
        app.p.send_signal(signal.SIGKILL)                        # the dongle dies: its will speaks
        sub.wait(last_is("p1dongle/test1/status", b"offline"), what="the will: offline")
    finally:
        app.stop()
        sub.close()


def test_wrong_credentials_one_clear_line_backoff_and_no_crash():
    b = LocalBroker(users={"meter": "right-password"}).start()
    app = run_dongle(b.port, "--mqtt-user", "meter", "--mqtt-password", "wrong-password")
    try:
        tcp_port = int(app.expect(r"connect: telnet localhost (\d+)").group(1))
        line = app.expect(r"mqtt .*retrying in 1 s").string
        assert "bad user name or password" in line or "not authorised" in line or "connection" in line
        app.expect(r"mqtt .*retrying in 2 s", timeout=30)                  # backing off
        assert len(read_telegrams(connect(tcp_port), 2, timeout=10)) == 2
        assert app.p.poll() is None
        assert "wrong-password" not in "\n".join(app.seen)
    finally:
        app.stop()
    # the right password, from the environment (where it stays out of the shell history)
    ok = sim("run", "--source", "meter", "--mqtt", "127.0.0.1:%d" % b.port,
             "--mqtt-user", "meter", "--interval", "0.3", "--tcp-port", "0", "--status-interval", "0",
             env={"P1DONGLE_MQTT_PASSWORD": "right-password"})
    try:
        ok.expect(r"mqtt mqtt://127.0.0.1:%d: connected" % b.port)
    finally:
        ok.stop()
        b.stop()


def test_the_mqtt_client_under_micropython(micropython, broker, tmp_path):
    """main.py in the MicroPython unix port publishes to the broker like the CPython tools."""
    tgs = [meter.telegram(meter.LUX_BODY[:5] + ["1-0:1.7.0(00.%03d*kW)" % i]) for i in range(3)]
    reader = P1Reader()
    sub = Subscriber(broker.port)
    cfg = tmp_path / "p1dongle.json"
    settings_file(cfg, reader.port, device_id="mp", mqtt={"host": "localhost", "port": broker.port})
    app = micropython_app(micropython, str(cfg))
    try:
        app.expect(r"mqtt mqtt://localhost:%d: connected" % broker.port)
        reader.accept()
        for i, t in enumerate(tgs):
            reader.send(meter.frame(t, counter=i + 1))
            sub.wait(until("p1dongle/mp/telegram", i + 1), what="telegram %d" % (i + 1))
        assert sub.payloads("p1dongle/mp/telegram") == tgs
        sub.wait(until("p1dongle/mp/state", 3), what="states")
        assert json.loads(sub.payloads("p1dongle/mp/state")[-1])["currentUsage"] == 0.002
        assert sub.payloads("p1dongle/mp/status")[-1] == b"online"
        assert any(t.startswith("homeassistant/sensor/mp/") for t, _, _ in sub.messages)
    finally:
        app.stop()
        reader.close()
        sub.close()


class FreezingProxy:
    """A TCP relay between the dongle and the broker that can stop passing bytes while keeping
    both connections open: a half-open link, as when Wi-Fi drops without a FIN."""

    def __init__(self, target_port):
        import socket
        self.target = target_port
        self.flowing = threading.Event()
        self.flowing.set()
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(4)
        self.port = self.server.getsockname()[1]
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        while True:
            try:
                a, _ = self.server.accept()
            except OSError:
                return
            b = socket.create_connection(("127.0.0.1", self.target))
            self.socks += [a, b]
            for src, dst in ((a, b), (b, a)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src, dst):
        try:
            while True:
                data = src.recv(4096)
                if not data:
                    break
                self.flowing.wait()          # frozen: hold the bytes, keep the sockets open
                dst.sendall(data)
        except OSError:
            pass

    def close(self):
        self.flowing.set()
        for s in self.socks + [self.server]:
            s.close()


def test_a_half_open_connection_is_noticed_and_replaced(broker, tmp_path):
    """No PINGRESP within the keepalive: the client gives the connection up and connects again."""
    proxy = FreezingProxy(broker.port)
    reader = P1Reader()
    cfg = tmp_path / "p1dongle.json"
    settings_file(cfg, reader.port, mqtt={"host": "127.0.0.1", "port": proxy.port, "keepalive": 5})
    app = micropython_app(sys.executable, str(cfg))      # main.py under CPython
    try:
        app.expect(r"mqtt mqtt://127.0.0.1:%d: connected" % proxy.port)
        proxy.flowing.clear()
        app.expect(r"no answer to ping .*half-open.*retrying", timeout=30)
        proxy.flowing.set()
        app.expect(r"mqtt mqtt://127.0.0.1:%d: connected" % proxy.port, timeout=30)
        assert app.p.poll() is None
    finally:
        app.stop()
        proxy.close()
        reader.close()


def test_while_the_broker_is_away_the_newest_telegrams_wait_and_the_rest_are_counted():
    from p1dongle.mqtt import MqttClient
    c = MqttClient("127.0.0.1", free_port(), queue_len=3, log=lambda m: None)
    for i in range(10):
        c.publish("t", b"%d" % i)
    c.publish("s", b"online", retain=True, qos=1)
    c.publish("s", b"still online", retain=True, qos=1)     # retained: only the latest, never dropped
    assert [p for _, p, _ in c._queue] == [b"7", b"8", b"9"] and c.dropped == 7
    assert c._retained == {"s": (b"still online", 1)}


def test_a_state_that_must_wait_is_made_again_when_it_goes_never_copied(broker):
    """A payload that is a view of a buffer its owner writes again (the state JSON) is not copied
    when it must wait: what waits is the function that writes it, called when it goes (the newest
    state then); a newer one of its topic takes the older's place."""
    from p1dongle.mqtt import MqttClient
    buf = bytearray(b"state 0")
    made = []

    def remake():
        made.append(bytes(buf))
        return memoryview(buf)

    client = MqttClient("127.0.0.1", broker.port, "remake", log=lambda m: None)
    for i in range(1, 4):                   # not connected yet: each must wait
        buf[6:7] = b"%d" % i
        client.publish("p1dongle/remake/state", memoryview(buf), latest=True, remake=remake)
    assert [p for _, p, _ in client._queue] == [remake] and client.dropped == 0
    buf[6:7] = b"9"                         # the owner writes its buffer again meanwhile
    sub = Subscriber(broker.port)
    assert sub.subscribed.wait(30)
    run = ClientThread(client)
    try:
        sub.wait(until("p1dongle/remake/state", 1), what="the state")
        run.call(client.publish, "p1dongle/remake/telegram", b"after")
        sub.wait(until("p1dongle/remake/telegram", 1), what="a message after it")
    finally:
        run.stop()
        sub.close()
    assert sub.payloads("p1dongle/remake/state") == [b"state 9"] and made == [b"state 9"]


def test_a_state_that_finds_no_memory_when_it_goes_costs_that_message_not_the_session(broker):
    from p1dongle import memory
    from p1dongle.mqtt import MqttClient

    def no_room():
        raise MemoryError

    lines = []
    lost = memory.count()
    client = MqttClient("127.0.0.1", broker.port, "noroom", log=lines.append)
    client.publish("p1dongle/noroom/state", b"{}", latest=True, remake=no_room)    # waits: not connected
    sub = Subscriber(broker.port)
    assert sub.subscribed.wait(30)
    run = ClientThread(client)
    try:
        run.call(client.publish, "p1dongle/noroom/telegram", b"after")
        sub.wait(until("p1dongle/noroom/telegram", 1), what="the message after it")
        assert run.call(lambda: (client.connects, client.dropped)) == (1, 1), lines
    finally:
        run.stop()
        sub.close()
    assert sub.payloads("p1dongle/noroom/state") == [] and memory.count() == lost + 1
    assert "mqtt: out of memory, a state lost" in lines


class ClientThread:
    """The firmware's MqttClient run by its own event loop in a thread, as the app runs it; the
    test talks to it only through the loop (call), and watches the broker with a Subscriber."""

    def __init__(self, client):
        import asyncio
        self.client = client
        self.loop = asyncio.new_event_loop()
        self.task = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.call(lambda: setattr(self, "task", self.loop.create_task(client.run())))

    def call(self, fn, *args):
        import concurrent.futures
        done = concurrent.futures.Future()

        def run():
            try:
                done.set_result(fn(*args))
            except Exception as e:   # noqa: BLE001 - handed to the test
                done.set_exception(e)
        self.loop.call_soon_threadsafe(run)
        return done.result(10)

    def stop(self):
        import asyncio
        asyncio.run_coroutine_threadsafe(self.client.stop(), self.loop).result(10)
        self.call(self.task.cancel)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)


def test_an_announcement_that_cannot_be_made_never_ends_the_session(broker):
    """A source that fails while making a message (a bug, a reading nobody foresaw) costs the rest
    of that round and one line; the connection stays, telegrams go on, the next round is made."""
    from p1dongle.mqtt import MqttClient
    lines = []
    rounds = []

    def source():
        rounds.append(1)
        yield "homeassistant/sensor/guard/first/config", b"{}"
        raise RuntimeError("no config for this one")

    sub = Subscriber(broker.port)
    client = MqttClient("127.0.0.1", broker.port, "guard", log=lines.append)
    client.announce(source)
    run = ClientThread(client)
    first = "homeassistant/sensor/guard/first/config"
    try:
        sub.wait(until(first, 1), what="the first config")
        run.call(client.publish, "p1dongle/guard/telegram", b"telegram 1")
        sub.wait(until("p1dongle/guard/telegram", 1), what="a telegram after the failure")
        run.call(client.announce_again)
        sub.wait(until(first, 2), what="the next round")
        run.call(client.publish, "p1dongle/guard/telegram", b"telegram 2")
        sub.wait(until("p1dongle/guard/telegram", 2), what="a telegram after the second failure")
        assert run.call(lambda: client.connects) == 1, lines
    finally:
        run.stop()
        sub.close()
    failed = [ln for ln in lines if "RuntimeError" in ln]
    assert len(failed) == len(rounds) == 2, lines
    assert "no config for this one" in failed[0] and not [ln for ln in lines if "retrying" in ln], lines


def test_a_failing_on_connect_never_ends_the_session(broker):
    """What the app publishes on every connect (status, diagnostics) is made by on_connect: if
    making it fails, one line, and the connection carries the rest."""
    from p1dongle.mqtt import MqttClient
    lines = []

    def on_connect(client):
        raise ValueError("diagnostics nobody can write")

    sub = Subscriber(broker.port)
    client = MqttClient("127.0.0.1", broker.port, "guard2", log=lines.append, on_connect=on_connect)
    client.publish("p1dongle/guard2/status", b"online", retain=True, qos=1)
    run = ClientThread(client)
    try:
        sub.wait(until("p1dongle/guard2/status", 1), what="the retained status")
        run.call(client.publish, "p1dongle/guard2/telegram", b"telegram")
        sub.wait(until("p1dongle/guard2/telegram", 1), what="a telegram")
        assert run.call(lambda: client.connects) == 1, lines
    finally:
        run.stop()
        sub.close()
    assert len([ln for ln in lines if "ValueError" in ln and "diagnostics nobody can write" in ln]) == 1, lines
    assert not [ln for ln in lines if "retrying" in ln], lines


class HostileBroker:
    """A broker on a loopback socket that answers every CONNECT with a CONNACK, then sends the
    bytes it was given (what MQTT does not allow) and keeps the connection open."""

    def __init__(self, after_connack):
        import socket
        self.after = after_connack
        self.connections = 0
        self.server = socket.socket()
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(4)
        self.port = self.server.getsockname()[1]
        self.socks = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.socks.append(conn)
            self.connections += 1
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        try:
            conn.recv(4096)                                  # CONNECT (small: one segment)
            conn.sendall(b"\x20\x02\x00\x00" + self.after)   # accepted, then the malformed bytes
            while conn.recv(4096):                           # whatever the client sends, until it goes
                pass
        except OSError:
            pass

    def close(self):
        for s in self.socks + [self.server]:
            s.close()


@pytest.mark.parametrize("interpreter", ["cpython", "twin"])
@pytest.mark.parametrize("packet, why", [
    (b"\x30" + b"\xff" * 65536, r"the broker sent a malformed packet \(its length runs past 4 bytes\)"),
    (b"\x30\xff\xff\xff\x7f", r"the broker sent a 268435455-byte packet, more than the 1024 the dongle takes")],
    ids=["endless-length", "268MB"])
def test_a_broker_that_sends_a_malformed_packet_gets_one_line_and_the_backoff(tmp_path, request, interpreter,
                                                                               packet, why):
    """After CONNACK a remaining length of more than 4 bytes (MQTT 3.1.1 allows 4), or one larger
    than any packet the dongle takes: the session ends at once with one line saying why, and the
    client connects again with its backoff (1 s, then 2 s: the broker misbehaves every time).
    (Before, it built an ever larger integer, or waited for 268 MB: no line, and on the dongle a
    MemoryError.) main.py under CPython and on the dongle twin."""
    python = sys.executable if interpreter == "cpython" else request.getfixturevalue("micropython")
    hostile = HostileBroker(packet)
    reader = P1Reader()
    cfg = tmp_path / "p1dongle.json"
    settings_file(cfg, reader.port, mqtt={"host": "127.0.0.1", "port": hostile.port})
    app = micropython_app(python, str(cfg))
    try:
        line = "mqtt mqtt://127.0.0.1:%d: " % hostile.port
        app.expect(line + "connected")
        reader.accept()
        client = connect(json.loads(cfg.read_text())["tcp_port"])
        app.expect(line + why + ", retrying in 1 s", timeout=10)
        app.expect(line + "connected", timeout=10)
        app.expect(line + why + ", retrying in 2 s", timeout=10)
        assert hostile.connections == 2 and app.p.poll() is None
        reader.send(meter.frame(meter.telegram(meter.LUX_BODY), counter=1))      # the meter side never noticed
        assert read_telegrams(client, 1, timeout=10) == [meter.telegram(meter.LUX_BODY)]
        client.close()
    finally:
        app.stop()
        reader.close()
        hostile.close()
    seen = "\n".join(app.seen)
    assert "Traceback" not in seen and "MemoryError" not in seen, seen
