#!/usr/bin/env python3
"""make soak: the whole dongle program in the dongle's heap, under the load a dongle sees.

Runs firmware/main.py on the dongle twin (build/micropython-p1dongle: 32-bit, single-precision
floats, firmware frozen) with `-X heapsize=` the budget (default 96K, a margin below the ESP32's
112 KB), for a set time. With --load files it runs the way a stock MicroPython image runs it: on
the stock-image twin (build/micropython-stock: no p1dongle frozen, no _p1gcm), from the .mpy files
`tools/flash.py install` writes, so the code itself lives in the heap (default heap: the
FILES_HEAP that install asks of a board). Against:
  - an emulated Luxembourg meter (a frame every 0.5 s, faults: noise, a bad tag, a cut frame),
    served like an Ethernet P1 reader, which the dongle reads over TCP;
  - 7 TCP clients that read every telegram, 1 that never reads (replaced once the dongle drops
    it), and clients that connect and leave (close, reset, or send "status");
  - MQTT with Home Assistant discovery to a real mosquitto, killed and restarted several times;
  - the web server: the HomeWizard API polled every second, the status page's requests every 3 s;
  - the faces batteries and Home Assistant read: 3 clients each polling every second the HomeWizard
    API, the Shelly face over HTTP and over UDP (a battery's request) and mDNS (a legacy unicast
    query), and a WebSocket session as Home Assistant's Shelly library keeps open;
  - the history (history.py): the meter's clock a minute a frame, so that an hour ends every 30 s
    and its three files are written; the status page's history polled (all of it every 10 s, its
    peaks every 3 s);
  - updates over Wi-Fi (frozen: the image way, over a fake flash): --updates times a 1.4 MB image
    streamed in at Wi-Fi pace (100 KB/s), written block by block into the other slot, and refused
    at its end (its SHA-256 does not match: an update taken would reset the dongle, which the soak
    counts as a failure; the heap's work is the same).
It prints telegrams per client and over MQTT against what the meter sent, MemoryErrors, restarts,
and the live heap after gc over time (from the dongle's status lines), and exits 1 when a target
is missed: any MemoryError or restart, a reading client missing a telegram, a heap that grows.

    tools/soak.py [--seconds 600] [--heap 96K] [--load frozen|files] [--json FILE]
    tools/soak.py --find-min [--seconds 60] [--load both]    the smallest heap that still holds, per
                                                             way (8K steps down from --heap)
"""
import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "firmware"))
sys.path.insert(0, HERE)

import emulator  # noqa: E402
import flash  # noqa: E402
import hostile  # noqa: E402
from broker import LocalBroker, free_port  # noqa: E402
from p1dongle import FILES_HEAP, meters, pages  # noqa: E402
from p1dongle.pipeline import TELEGRAM, Pipeline  # noqa: E402

TWIN = os.path.join(ROOT, "build", "micropython-p1dongle")
STOCK = os.path.join(ROOT, "build", "micropython-stock")
# per way of loading the code: (the interpreter, the default heap)
LOADS = {"frozen": (TWIN, "96K"), "files": (STOCK, "%dK" % (FILES_HEAP // 1024))}
KEY = bytes.fromhex("0123456789ABCDEF0123456789ABCDEF")
INTERVAL = 0.5
PAGES = {"/": pages.STATUS, "/style.css": pages.STYLE, "/settings": pages.SETTINGS}   # what a browser loads
READERS = 7
TELEGRAM_RE = re.compile(rb"/[^!]*!(?:[0-9A-Fa-f]{4})?\r\n")      # DSMR 2/3: no CRC
HEAP_RE = re.compile(r"heap used ([\d.]+) KB, free ([\d.]+) KB")
MEMORY_RE = re.compile(r"memory errors (\d+)")


def start_twin(micropython, heap, workdir, settings, files=None, flash_dir=None):
    """firmware/main.py on the twin in a heap of `heap`, with these settings, its console piped.
    It runs from workdir, a folder of its own: beside firmware/ it would import the .py files,
    not the frozen modules the dongle runs. files: what `flash.py install` would write there
    ({path: bytes}); the app then runs from them, its heap check off (the soak measures what
    they need)."""
    shutil.copy(os.path.join(ROOT, "firmware", "main.py"), workdir)
    for path, data in (files or {}).items():
        os.makedirs(os.path.dirname(os.path.join(workdir, path)), exist_ok=True)
        with open(os.path.join(workdir, path), "wb") as f:
            f.write(data)
    with open(os.path.join(workdir, "p1dongle.json"), "w") as f:
        json.dump(settings, f)
    extra = ["--no-heap-check"] if files else []
    env = {k: v for k, v in os.environ.items() if k != "MICROPYPATH" and not k.startswith("P1DONGLE_")}
    if flash_dir:
        env["P1DONGLE_FLASH"] = flash_dir       # the image way's two slots (fakeflash.py)
    return subprocess.Popen([micropython, "-X", "heapsize=" + heap, "main.py", "p1dongle.json"] + extra,
                            cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)


def stop_twin(proc):
    """Ctrl-C, as a user would; killed if it has not stopped within 10 s."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


class Console:
    """The dongle's console, line by line, in a thread; what the soak counts in it."""

    def __init__(self, proc, t0, echo):
        self.proc = proc
        self.t0 = t0
        self.echo = echo
        self.lines = []
        self.heap = []              # (seconds since start, KB used after gc)
        self.memory_errors = 0
        self.restarts = 0
        self.drops = 0              # clients the dongle dropped because they stopped reading
        self.cond = threading.Condition()
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for raw in self.proc.stdout:
            line = raw.rstrip("\n")
            t = time.monotonic() - self.t0
            with self.cond:
                self.lines.append(line)
                if "MemoryError" in line or "out of memory" in line:
                    self.memory_errors += 1
                m = MEMORY_RE.search(line)
                if m and line.startswith("status:"):
                    self.memory_errors = max(self.memory_errors, int(m.group(1)))
                if "restarting" in line or "stopped by an error" in line or "stopped by the same error" in line:
                    self.restarts += 1
                if "port: dropping" in line:
                    self.drops += 1
                m = HEAP_RE.search(line)
                if m and line.startswith("status:"):
                    self.heap.append((round(t, 1), float(m.group(1))))
                self.cond.notify_all()
            if self.echo:
                print("  dongle: " + line, flush=True)
        with self.cond:
            self.lines.append(None)
            self.cond.notify_all()

    def wait_for(self, pattern, timeout=30):
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self.cond:
            seen = 0
            while True:
                for line in self.lines[seen:]:
                    if line is None:
                        raise RuntimeError("the dongle ended before %r:\n%s" % (pattern, self.tail()))
                    m = rx.search(line)
                    if m:
                        return m
                seen = len(self.lines)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError("no %r from the dongle within %d s:\n%s" % (pattern, timeout, self.tail()))
                self.cond.wait(left)

    async def wait_async(self, pattern, timeout=30):
        # in a thread: the clients of the soak run on this event loop meanwhile
        return await asyncio.get_running_loop().run_in_executor(None, self.wait_for, pattern, timeout)

    def tail(self, n=30):
        return "\n".join(line for line in self.lines[-n:] if line is not None)


class Mqtt:
    """paho-mqtt subscribed to the dongle's topics; counts what arrives."""

    def __init__(self, port):
        import paho.mqtt.client as paho
        self.telegrams = []
        self.states = 0
        self.bad_states = 0
        self.configs = {}
        self.config_messages = 0        # configs received, announced again or not
        self.lock = threading.Lock()
        self.client = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="soak-watcher")
        self.subscribed = threading.Event()
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe([("p1dongle/#", 0), ("homeassistant/#", 0)])
        self.client.on_subscribe = lambda c, u, mid, rc, p: self.subscribed.set()
        self.client.on_message = self._message
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect_async("127.0.0.1", port)
        self.client.loop_start()

    def _message(self, client, userdata, msg):
        with self.lock:
            if msg.topic.endswith("/telegram"):
                self.telegrams.append(bytes(msg.payload))
            elif msg.topic.endswith("/state"):
                self.states += 1
                try:
                    json.loads(msg.payload)
                except ValueError:
                    self.bad_states += 1
            elif msg.topic.startswith("homeassistant/") and msg.topic.endswith("/config"):
                self.configs[msg.topic] = msg.payload
                self.config_messages += 1

    def close(self):
        self.client.loop_stop()
        self.client.disconnect()


class Soak:
    def __init__(self, args):
        self.args = args
        self.sent = b""                 # every byte the meter put on the line
        self.frames = 0
        self.readers = []               # [telegrams] per reading client
        self.churned = 0
        self.stalled = 0
        self.broker_restarts = 0
        self.reference_error = None     # CPython's pipeline could not read the stream (a bug)
        self.attacks = {}               # hostile meter input sent: {what: times}
        self.broker_attacks = []        # what the hostile broker answered each connection with
        self.emulated = None
        self.reference = None
        self.web = {"ok": 0, "bad": 0, "failed": 0}     # web requests answered right, wrong, not at all
        self.faces = {}                 # {face: {"ok": n, "bad": n, "failed": n}}
        self.updates = []               # (start, end) seconds of each update streamed in, as refused
        self.update_failures = []       # what went wrong with one (an answer not the expected one)

    # -- the meter ------------------------------------------------------------------------------

    async def meter(self, ready, stop):
        """The emulated meter behind its P1 reader: one client (the dongle) gets every frame; with
        --hostile N, every Nth frame comes after one of hostile.py's attacks on the line."""
        # its clock fast (a minute a frame): an hour ends every 30 s, and the history writes its files
        m = self.emulated = emulator.EmulatedMeter(KEY, faults=self.args.faults, seed=1, profile=self.args.meter,
                                                   start=HISTORY_START, step=60)
        attacks = hostile.MeterAttacks(m.title, seed=2)
        conn = asyncio.get_running_loop().create_future()

        async def on_client(reader, writer):
            if not conn.done():
                conn.set_result(writer)

        server = await asyncio.start_server(on_client, "127.0.0.1", 0)
        ready.set_result(server.sockets[0].getsockname()[1])
        writer = await conn
        await self.start_sending.wait()
        try:
            while not stop.is_set():
                data = m.next_bytes()
                if self.args.hostile and self.frames % self.args.hostile == self.args.hostile - 1:
                    name, attack = attacks.next()
                    self.attacks[name] = self.attacks.get(name, 0) + 1
                    data = attack + data
                self.sent += data
                self.frames += 1
                writer.write(data)
                await writer.drain()
                await asyncio.sleep(INTERVAL)
        finally:
            writer.close()
            server.close()

    # -- TCP clients ----------------------------------------------------------------------------

    async def reader(self, port, got):
        r, w = await asyncio.open_connection("127.0.0.1", port)
        buf = b""
        try:
            while True:
                data = await r.read(65536)
                if not data:
                    return
                buf += data
                while True:
                    m = TELEGRAM_RE.search(buf)
                    if not m:
                        break
                    got.append(m.group(0))
                    buf = buf[m.end():]
        finally:
            w.close()

    async def stalled_client(self, port, stop, console):
        """A client that never reads; once the dongle drops it (its console says so: the FIN
        waits behind what the client never read), another one takes its place."""
        while not stop.is_set():
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 2048)
            s.setblocking(False)
            await asyncio.get_running_loop().sock_connect(s, ("127.0.0.1", port))
            self.stalled += 1
            drops = console.drops
            while not stop.is_set() and console.drops == drops:
                await asyncio.sleep(0.5)
            s.close()

    async def churn(self, port, stop):
        """Clients that come and go: close at once, reset mid-stream, ask for the status line."""
        k = 0
        while not stop.is_set():
            await asyncio.sleep(2)
            k += 1
            try:
                r, w = await asyncio.open_connection("127.0.0.1", port)
            except OSError:
                continue
            try:
                if k % 3 == 0:
                    w.write(b"status\r\n")
                    await asyncio.wait_for(r.readline(), 5)
                elif k % 3 == 1:
                    await asyncio.wait_for(r.read(100), 5)
                    sock = w.get_extra_info("socket")
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except (OSError, asyncio.TimeoutError):
                pass
            w.close()
            self.churned += 1

    # -- the web page and the local API ---------------------------------------------------------

    async def web_client(self, port, stop):
        """What a user's tools do: the HomeWizard API polled every second (Home Assistant's
        integration polls every 5 s), the status page's two requests every 3 s, and a browser
        opening the status page (with its style sheet) every 15 s and the settings page (9.6 KB,
        more than lwIP's send buffer takes at once) every 30 s."""
        k = 0
        while not stop.is_set():
            await asyncio.sleep(1)
            k += 1
            paths = ["/api/v1/data"] + (["/api/status", "/api/v1/telegram"] if k % 3 == 0 else [])
            paths += (["/", "/style.css"] if k % 15 == 0 else []) + (["/settings"] if k % 30 == 0 else [])
            for path in paths:
                try:
                    status, body = await asyncio.wait_for(http_get(port, path), 10)
                except (OSError, asyncio.TimeoutError, ValueError):
                    self.web["failed"] += 1
                    continue
                if path in PAGES:
                    good = status == 200 and body == PAGES[path]
                else:
                    good = status == 200 and (path == "/api/v1/telegram" or _json_object(body))
                if path == "/api/v1/data" and good and self.frames > 4:
                    good = b'"total_power_import_kwh":' in body
                self.web["ok" if good else "bad"] += 1

    # -- the faces: HomeWizard, Shelly (HTTP, UDP, WebSocket), mDNS ------------------------------

    def _face(self, name, outcome):
        self.faces.setdefault(name, {"ok": 0, "bad": 0, "failed": 0, "no power": 0})[outcome] += 1

    async def face_clients(self, http_port, udp_port, stop):
        # Three clients of each face, each on its own beat within the second (clients that do not
        # know one another): of the HomeWizard API two besides web_client's; of the Shelly face a
        # battery on UDP, evcc over HTTP and Home Assistant's WebSocket; of mDNS three queriers.
        polls = [self._shelly_session(http_port, stop)]
        for k, at in enumerate((0.2, 0.55, 0.9)):
            polls.append(self._poll_mdns(stop, at))
            if k < 2:
                polls.append(self._poll_http(http_port, "/api/v1/data", "homewizard", b'"total_power_import_kwh":',
                                             stop, at))
        polls.append(self._poll_udp(udp_port, 0, stop, 0.4))
        polls.append(self._poll_http(http_port, "/rpc/EM.GetStatus?id=0", "shelly http", b'"total_act_power":', stop, 0.7))
        # the status page's history: its peaks every 10 s, the hours, days and months every 60 s
        # (here every 10 s, and the peaks every 3 s: pages open on several phones)
        if self.args.history and not os.environ.get("NOPOLL"):
            polls.append(self._poll_http(http_port, "/api/p1dongle/history", "history", b'"hours":[', stop, 0.3, 10))
            polls.append(self._poll_http(http_port, "/api/p1dongle/history?peaks", "history peaks", b'"peaks":', stop, 0.8, 3))
        await asyncio.gather(*polls)

    async def _poll_http(self, port, path, name, needs, stop, at, every=1):
        await asyncio.sleep(at)
        while not stop.is_set():
            await asyncio.sleep(every)
            try:
                status, body = await asyncio.wait_for(http_get(port, path), 10)
            except (OSError, asyncio.TimeoutError, ValueError, IndexError):
                self._face(name, "failed")
                continue
            if status == 200 and b"power_meter_failure" in body:
                self._face(name, "no power")    # the latest telegram had none (the hostile one)
                continue
            self._face(name, "ok" if status == 200 and _json_object(body) and (self.frames < 5 or needs in body)
                       else "bad")

    async def _poll_udp(self, port, k, stop, at):
        # a Marstek battery's request, as its firmware writes it
        await asyncio.sleep(at)
        loop = asyncio.get_running_loop()
        n = 0
        while not stop.is_set():
            await asyncio.sleep(1)
            n = (n + 1) % 65536
            got = loop.create_future()
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Datagram(got), remote_addr=("127.0.0.1", port))
            except OSError:
                self._face("shelly udp", "failed")
                continue
            try:
                transport.sendto(b'{"id":%d,"method":"EM.GetStatus","params":{"id":0}}' % n)
                answer = json.loads(await asyncio.wait_for(got, 5))
                if "power_meter_failure" in str(answer.get("result")):
                    self._face("shelly udp", "no power")
                    continue
                good = answer.get("id") == n and "." in str(answer["result"]["total_act_power"])
                self._face("shelly udp", "ok" if good else "bad")
            except (asyncio.TimeoutError, ValueError, KeyError, TypeError):
                self._face("shelly udp", "failed")
            finally:
                transport.close()

    async def _poll_mdns(self, stop, at):
        # a legacy unicast query (dig -p 5353) for the dongle's HomeWizard service
        await asyncio.sleep(at)
        import dns.exception
        import dns.message
        import dns.rdatatype
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            await asyncio.sleep(1)
            got = loop.create_future()
            try:
                transport, _ = await loop.create_datagram_endpoint(
                    lambda: _Datagram(got), remote_addr=("127.0.0.1", 5353))
            except OSError:
                self._face("mdns", "failed")
                continue
            try:
                q = dns.message.make_query("_hwenergy._tcp.local", dns.rdatatype.PTR)
                transport.sendto(q.to_wire())
                answer = dns.message.from_wire(await asyncio.wait_for(got, 5))
                kinds = {dns.rdatatype.to_text(rr.rdtype) for rr in answer.answer}
                self._face("mdns", "ok" if answer.id == q.id and kinds == {"PTR", "SRV", "TXT", "A"} else "bad")
            except (asyncio.TimeoutError, ValueError, dns.exception.DNSException):
                self._face("mdns", "failed")
            finally:
                transport.close()

    async def _shelly_session(self, port, stop):
        # Home Assistant's Shelly connection: one WebSocket kept open, Shelly.GetStatus every
        # second, the NotifyStatus the dongle pushes after telegrams
        import aiohttp
        while not stop.is_set():
            try:
                async with aiohttp.ClientSession() as session:
                    async with session.ws_connect("http://127.0.0.1:%d/rpc" % port, heartbeat=55) as ws:
                        n = 0
                        while not stop.is_set():
                            n += 1
                            await ws.send_str(json.dumps({"id": n, "src": "soak", "method": "Shelly.GetStatus"}))
                            while True:
                                frame = json.loads(await asyncio.wait_for(ws.receive_str(), 10))
                                if frame.get("method") == "NotifyStatus":
                                    self._face("shelly websocket notify", "ok")
                                    continue
                                good = frame.get("id") == n and "em:0" in frame.get("result", {})
                                self._face("shelly websocket", "ok" if good else "bad")
                                break
                            await asyncio.sleep(1)
            except (OSError, asyncio.TimeoutError, ValueError, TypeError, aiohttp.ClientError):
                self._face("shelly websocket", "failed")
                await asyncio.sleep(1)

    # -- updates over Wi-Fi -----------------------------------------------------------------------

    async def update_streams(self, port, t0, stop):
        """args.updates images streamed in, each at 100 KB/s (Wi-Fi's pace): the first at once,
        in the warm-up (what the first update makes once, on first use, stays live after it: 2-7 KB
        on the twin, which in the second half of a short run read as growth), the others spread
        over the rest of the run, where a second update costing more would show. The SHA-256 sent
        is not theirs: the dongle writes each whole, then refuses it."""
        n = self.args.updates
        period = self.args.seconds / (n + 1)
        image = update_image(UPDATE_KB * 1024)
        for k in range(n):
            try:
                await asyncio.wait_for(stop.wait(), 1 if k == 0 else period)
                return
            except asyncio.TimeoutError:
                pass
            start = time.monotonic() - t0
            try:
                status, body = await asyncio.wait_for(stream_update(port, image), 60)
            except (OSError, asyncio.TimeoutError, ValueError) as e:
                self.update_failures.append("%s: %s" % (e.__class__.__name__, e))
                continue
            if status != 400 or b"SHA-256 is not the one sent" not in body:
                self.update_failures.append("answered %d: %r" % (status, body[:120]))
            self.updates.append((start, time.monotonic() - t0))

    # -- the broker -----------------------------------------------------------------------------

    async def broker_outages(self, broker, stop):
        """The broker killed and started again; with --hostile, every other time a hostile broker
        (hostile.py) takes its port meanwhile, for the dongle to reconnect to and be attacked by."""
        n = self.args.broker_restarts
        if not n:
            return
        period = self.args.seconds / (n + 1)
        for k in range(n):
            try:
                await asyncio.wait_for(stop.wait(), period)
                return
            except asyncio.TimeoutError:
                pass
            broker.kill()
            if self.args.hostile and k % 2 == 0:
                bad = await hostile.HostileBroker(broker.port).start()
                await asyncio.sleep(8)
                await bad.stop()
                self.broker_attacks += bad.served
            else:
                await asyncio.sleep(3)
            broker.start()
            self.broker_restarts += 1

    # -- the run --------------------------------------------------------------------------------

    async def run(self):
        args = self.args
        broker = LocalBroker().start()
        mqtt = Mqtt(broker.port)
        if not mqtt.subscribed.wait(20):
            raise RuntimeError("the MQTT watcher could not subscribe to the soak's broker")
        workdir = tempfile.mkdtemp(prefix="p1dongle-soak-")
        stop = asyncio.Event()
        self.start_sending = asyncio.Event()
        meter_port = asyncio.get_running_loop().create_future()
        meter_task = asyncio.create_task(self.meter(meter_port, stop))
        tcp_port = free_port()
        http_port = free_port()
        settings = {"key": KEY.hex(), "meter": self.args.meter, "source": "tcp:127.0.0.1:%d" % await meter_port, "host": "127.0.0.1",
                    "tcp_port": tcp_port, "status_interval": args.status_interval, "max_clients": args.readers + 4,
                    "device_id": "soak", "mqtt": {"host": "127.0.0.1", "port": broker.port},
                    "http_port": http_port if args.web else None}
        udp_port = free_udp_port()
        if args.web and args.faces:
            settings.update({"shelly": True, "shelly_udp": [udp_port], "mdns": True})
        if args.queue_len:
            settings["queue_len"] = args.queue_len
        if not args.history:
            settings["history"] = False
        files = flash.build(flash.native_arch(args.micropython)) if args.load == "files" else None
        flash_dir = None
        if args.load == "frozen":
            # the image way's slots, the running one holding an ESP32 image (as the dongle's does)
            flash_dir = os.path.join(workdir, "flash")
            os.makedirs(flash_dir)
            with open(os.path.join(flash_dir, "ota_0.bin"), "wb") as f:
                f.write(update_image(64 * 1024))
        proc = start_twin(args.micropython, args.heap, workdir, settings, files, flash_dir)
        t0 = time.monotonic()
        console = Console(proc, t0, args.verbose)
        tasks = [meter_task]
        try:
            wait = console.wait_async
            await wait(r"plain telegrams on port %d" % tcp_port)
            for _ in range(args.readers):
                got = []
                self.readers.append(got)
                tasks.append(asyncio.create_task(self.reader(tcp_port, got)))
            await wait(r"connected \(%d clients\)" % args.readers)
            tasks.append(asyncio.create_task(self.stalled_client(tcp_port, stop, console)))
            await wait(r"connected \(%d clients\)" % (args.readers + 1))
            self.start_sending.set()
            tasks.append(asyncio.create_task(self.churn(tcp_port, stop)))
            tasks.append(asyncio.create_task(self.broker_outages(broker, stop)))
            if args.web:
                tasks.append(asyncio.create_task(self.web_client(http_port, stop)))
                if args.faces:
                    tasks.append(asyncio.create_task(self.face_clients(http_port, udp_port, stop)))
                if args.updates and args.load == "frozen":
                    tasks.append(asyncio.create_task(self.update_streams(http_port, t0, stop)))
            await asyncio.sleep(args.seconds)
            stop.set()
            await asyncio.sleep(0)
            try:
                self.reference = self._reference()
            except Exception as e:      # noqa: BLE001 - CPython's pipeline failed on the stream: say so
                self.reference_error = "%s: %s" % (e.__class__.__name__, e)
                self.reference = []
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline and (
                    min(len(g) for g in self.readers) < len(self.reference) or proc.poll() is not None):
                await asyncio.sleep(0.2)
        finally:
            stop.set()
            stop_twin(proc)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            mqtt.close()
            broker.stop()
            shutil.rmtree(workdir, ignore_errors=True)
        return self.report(console, mqtt, time.monotonic() - t0)

    def _reference(self):
        """The telegrams the meter's bytes hold, by CPython's pipeline: what every reader must get."""
        out = []
        pipe = Pipeline(KEY, emit=lambda kind, pos, what, crc: out.append(bytes(what)) if kind == TELEGRAM else None,
                        layout=meters.profile(self.args.meter)[4])
        pipe.push(self.sent, 0)
        pipe.flush(0)
        return out

    def report(self, console, mqtt, elapsed):
        ref = self.reference or []
        heap = console.heap
        r = {
            "heap_budget": self.args.heap, "load": self.args.load, "seconds": round(elapsed), "frames_sent": self.frames,
            "telegrams_expected": len(ref),
            "readers": [len(g) for g in self.readers],
            "readers_exact": [g == ref for g in self.readers],
            "reader_missing": _lacking(self.readers[0] if self.readers else [], ref),
            "mqtt_telegrams": len(mqtt.telegrams),
            "mqtt_telegrams_genuine": sum(1 for t in mqtt.telegrams if t in set(ref)),
            "mqtt_states": mqtt.states, "mqtt_bad_states": mqtt.bad_states,
            "discovery_configs": len(mqtt.configs),
            "broker_restarts": self.broker_restarts, "stalled_clients": self.stalled, "churned_clients": self.churned,
            "memory_errors": console.memory_errors, "restarts": console.restarts,
            "memory_lines": [line for line in console.lines if line and ("out of memory" in line or "MemoryError" in line)],
            "web_requests_ok": self.web["ok"], "web_requests_bad": self.web["bad"],
            "web_requests_failed": self.web["failed"], "web": self.args.web,
            "faces": self.faces, "faces_on": self.args.web and self.args.faces,
            "heap_used_kb": heap,
            "reference_error": self.reference_error,
            "hostile_every": self.args.hostile, "attacks": self.attacks, "broker_attacks": self.broker_attacks,
            "intact_sent": len(self.emulated.intact) if self.emulated else 0,
            "intact_lost": _missing(self.emulated.intact if self.emulated else [], ref),
            "updates": len(self.updates), "update_failures": self.update_failures, "update_kb": UPDATE_KB,
            "update_seconds": [round(b - a) for a, b in self.updates],
            # the live heap sampled while an update streamed in
            "heap_during_updates_kb": [kb for t, kb in heap if any(a <= t <= b for a, b in self.updates)],
        }
        # The heap is flat when the second half of the run holds no more than the second quarter:
        # compared by their floors (what is live with nothing in flight), since what is in flight
        # when a sample is taken (a reconnect's discovery, a web request) lifts single samples in
        # either. The first quarter is the warm-up: what is made once, on first use (the link
        # layer's buffer when the first M-Bus or HDLC frame comes, hostile or not), is no growth.
        half = sorted(kb for t, kb in heap if t > elapsed / 2)
        first = sorted(kb for t, kb in heap if elapsed / 4 < t <= elapsed / 2)
        r["heap_first_half_max_kb"] = first[-1] if first else None
        r["heap_second_half_max_kb"] = half[-1] if half else None
        r["heap_first_half_median_kb"] = first[len(first) // 2] if first else None
        r["heap_second_half_median_kb"] = half[len(half) // 2] if half else None
        r["heap_first_half_min_kb"] = first[0] if first else None
        r["heap_second_half_min_kb"] = half[0] if half else None
        r["heap_flat"] = bool(first and half and half[0] <= first[0] + 2.0)
        r["ok"] = (r["memory_errors"] == 0 and r["restarts"] == 0 and all(r["readers_exact"]) and len(ref) > 0
                   and r["intact_lost"] == 0 and r["reference_error"] is None
                   and r["heap_flat"] and r["mqtt_telegrams_genuine"] == r["mqtt_telegrams"] > 0
                   and r["mqtt_bad_states"] == 0 and not r["update_failures"]
                   and (not self.args.web or (r["web_requests_ok"] > 0 and r["web_requests_bad"] == 0
                                              and r["web_requests_failed"] == 0))
                   and (not r["faces_on"] or _faces_held(self.faces)))
        r["console_tail"] = console.tail(12)
        return r


UPDATE_KB = 1400
HISTORY_START = 1792836000          # 2026-10-24T12:00:00+02:00: the clocks go back the next night
FACE_CLIENTS = 3
FACES = ("homewizard", "shelly http", "shelly udp", "mdns", "shelly websocket", "shelly websocket notify",
         "history", "history peaks")


def _faces_held(faces):
    # every face answered, and never wrongly; a poll not answered is allowed one in a hundred (a
    # connection refused while every one of the web server's three was taken). "No power"
    # (power_meter_failure) is the right answer while the latest telegram is the hostile one
    # with a unit-less power, and only then: a few in a hundred at most.
    for name in FACES:
        if name.startswith("history") and name not in faces:
            continue                    # (--no-history)
        f = _face_counts(faces, name)
        if f["ok"] == 0 or f["bad"] or f["failed"] * 100 > f["ok"] + f["failed"] or f["no power"] * 20 > f["ok"]:
            return False
    return True


def _face_counts(faces, name):
    counts = {"ok": 0, "bad": 0, "failed": 0, "no power": 0}
    counts.update(faces.get(name, {}))
    return counts


class _Datagram(asyncio.DatagramProtocol):
    def __init__(self, got):
        self.got = got

    def datagram_received(self, data, addr):
        if not self.got.done():
            self.got.set_result(data)


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def update_image(size):
    """An ESP32 app image's layout (ota.py: magic, chip 0, app description, version), zeros after."""
    data = bytearray(size)
    data[0] = 0xE9
    data[32:36] = b"\x32\x54\xcd\xab"
    data[48:53] = b"9.9.9"
    return bytes(data)


async def stream_update(port, image, pace_s=0.04, chunk=4096):
    """POST /api/update of image at chunk/pace_s bytes a second, with a SHA-256 that is not its own.
    Returns (status, body)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(("POST /api/update HTTP/1.0\r\nContent-Type: application/octet-stream\r\n"
                      "Content-Length: %d\r\nX-SHA256: %s\r\n\r\n" % (len(image), "00" * 32)).encode())
        for at in range(0, len(image), chunk):
            writer.write(image[at:at + chunk])
            await writer.drain()
            await asyncio.sleep(pace_s)         # Wi-Fi's pace, not synchronisation
        answer = await reader.read()
    finally:
        writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _lacking(got, ref, show=5):
    """[(index in ref, its first 60 bytes)] of the first `show` reference telegrams a reader lacks."""
    out = []
    k = 0
    for i, t in enumerate(ref):
        if k < len(got) and got[k] == t:
            k += 1
        elif len(out) < show:
            out.append((i, t[:60].decode("ascii", "replace")))
    return out


def _missing(intact, ref):
    """How many of the meter's intact telegrams are not among the pipeline's, in order: what a bad
    input before them made the pipeline lose (the reference comes from the same code as the
    dongle's, so it alone would not tell)."""
    k = 0
    lost = 0
    for t in intact:
        j = k
        while j < len(ref) and ref[j] != t:
            j += 1
        if j == len(ref):
            lost += 1
        else:
            k = j + 1
    return lost


async def http_get(port, path):
    """(status, body) of GET path on 127.0.0.1:port: a plain HTTP/1.0 client, as small as the
    tools that poll a P1 meter."""
    r, w = await asyncio.open_connection("127.0.0.1", port)
    try:
        w.write(("GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n" % path).encode())
        data = await r.read()
    finally:
        w.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), body


def _json_object(body):
    try:
        return isinstance(json.loads(body), dict)
    except ValueError:
        return False


def print_report(r):
    print("soak: %s heap, code %s, %d s, %d frames sent, %d telegrams in them" % (
        r["heap_budget"], "frozen" if r["load"] == "frozen" else "from .mpy files", r["seconds"], r["frames_sent"],
        r["telegrams_expected"]))
    for i, (n, exact) in enumerate(zip(r["readers"], r["readers_exact"])):
        print("  TCP reader %d: %d telegrams%s" % (i + 1, n, "" if exact else "  <- not every telegram, in order"))
    for i, head in r["reader_missing"]:
        print("    reader 1 lacks telegram %d of %d: %r" % (i, r["telegrams_expected"], head))
    print("  stalled clients: %d (each dropped by the dongle, then replaced); clients that came and went: %d"
          % (r["stalled_clients"], r["churned_clients"]))
    print("  MQTT: %d telegrams (%d genuine), %d states (%d bad), %d discovery configs; broker restarted %d times"
          % (r["mqtt_telegrams"], r["mqtt_telegrams_genuine"], r["mqtt_states"], r["mqtt_bad_states"],
             r["discovery_configs"], r["broker_restarts"]))
    if r["web"]:
        print("  web: %d requests answered (%d wrong, %d not answered)" % (
            r["web_requests_ok"], r["web_requests_bad"], r["web_requests_failed"]))
    for name in FACES if r["faces_on"] else ():
        f = _face_counts(r["faces"], name)
        print("  %s: %d answered (%d wrong, %d not answered)%s" % (
            name, f["ok"], f["bad"], f["failed"], ", %d with no power" % f["no power"] if f["no power"] else ""))
    if r["hostile_every"]:
        print("  hostile meter input before every %dth frame: %s" % (
            r["hostile_every"], ", ".join("%s x%d" % kv for kv in sorted(r["attacks"].items()))))
        print("  hostile broker answered: %s" % (", ".join(r["broker_attacks"]) or "nobody"))
    print("  the meter's intact frames: %d, their telegrams lost: %d" % (r["intact_sent"], r["intact_lost"]))
    if r["updates"] or r["update_failures"]:
        during = r["heap_during_updates_kb"]
        print("  updates streamed in: %d of %d KB (%s s each), refused at their end as meant; live heap meanwhile: %s"
              % (r["updates"], r["update_kb"], "/".join(str(s) for s in r["update_seconds"]),
                 "%.1f-%.1f KB" % (min(during), max(during)) if during else "no sample"))
        for why in r["update_failures"]:
            print("    an update went wrong: " + why)
    if r["reference_error"]:
        print("  CPython's pipeline failed on the same stream: %s" % r["reference_error"])
    print("  MemoryErrors: %d, restarts: %d" % (r["memory_errors"], r["restarts"]))
    for line in r["memory_lines"][:10]:
        print("    " + line)
    heap = r["heap_used_kb"]
    if heap:
        step = max(1, len(heap) // 12)
        print("  live heap after gc (KB used at second): " + ", ".join("%.1f@%d" % (kb, t) for t, kb in heap[::step]))
    print("  heap flat: %s (floor %s KB in the second quarter, %s KB in the second half; medians %s and %s KB; "
          "peaks %s and %s KB)" % (r["heap_flat"], r["heap_first_half_min_kb"], r["heap_second_half_min_kb"],
                          r["heap_first_half_median_kb"], r["heap_second_half_median_kb"],
                          r["heap_first_half_max_kb"], r["heap_second_half_max_kb"]))
    print("soak: %s" % ("held" if r["ok"] else "FAILED"))
    if not r["ok"]:
        print("  last lines of the dongle's console:\n    " + r["console_tail"].replace("\n", "\n    "))


def main(argv=None):
    p = argparse.ArgumentParser(prog="soak.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--seconds", type=int, default=600, help="how long (default: 600)")
    p.add_argument("--load", choices=["frozen", "files", "both"], default="frozen",
                   help="how the code is loaded: frozen into the image (default; the dongle twin), "
                        "files: .mpy files on the stock-image twin, as on a stock MicroPython; both: one then the other")
    p.add_argument("--heap", help="the twin's heap, e.g. 96K (default: 96K frozen, FILES_HEAP from files)")
    p.add_argument("--faults", type=int, default=5, help="every Nth frame is faulty (default: 5)")
    p.add_argument("--meter", default="lux", choices=sorted(emulator.PROFILES),
                   help="the emulated meter, and the dongle's meter setting (default: lux)")
    p.add_argument("--hostile", type=int, default=4, metavar="N",
                   help="an attack on the line (tools/hostile.py) before every Nth frame, and a hostile broker "
                        "in every other broker outage (default: 4; 0: none)")
    p.add_argument("--broker-restarts", type=int, default=4, help="mosquitto killed and restarted (default: 4)")
    p.add_argument("--status-interval", type=int, default=5, help="seconds between the dongle's status lines")
    p.add_argument("--micropython", help="the interpreter (default: the dongle twin; files: the stock-image twin)")
    p.add_argument("--queue-len", type=int, default=0, help="the dongle's queue_len setting (default: its own)")
    p.add_argument("--find-min", action="store_true", help="step the heap down from --heap: the smallest that holds")
    p.add_argument("--no-web", dest="web", action="store_false",
                   help="without the web server (default: on, the HomeWizard API polled every second)")
    p.add_argument("--no-faces", dest="faces", action="store_false",
                   help="without the faces batteries and Home Assistant read (default: mDNS and the Shelly "
                        "face on, 3 clients of each face: HomeWizard, Shelly, mDNS)")
    p.add_argument("--no-history", dest="history", action="store_false",
                   help="with the history off (its cost: the difference)")
    p.add_argument("--readers", type=int, default=READERS, help="TCP clients reading every telegram (default: %d)" % READERS)
    p.add_argument("--updates", type=int, default=1, metavar="N",
                   help="update images streamed in over the run (frozen, with the web server; default 1)")
    p.add_argument("--json", help="write the figures here")
    p.add_argument("-v", "--verbose", action="store_true", help="echo the dongle's console")
    args = p.parse_args(argv)
    loads = ["frozen", "files"] if args.load == "both" else [args.load]
    results = []
    ok = True
    smallest = {}
    for load in loads:
        run = argparse.Namespace(**vars(args))
        run.load = load
        run.micropython = args.micropython or LOADS[load][0]
        run.heap = args.heap or LOADS[load][1]
        if not os.path.exists(run.micropython):
            print("soak: %s is missing: make firmware-unix (firmware-stock for files) builds it" % run.micropython,
                  file=sys.stderr)
            return 2
        top = int(run.heap.rstrip("Kk"))
        heaps = [run.heap] if not args.find_min else ["%dK" % k for k in range(top, 31, -8)]
        mine = []
        for h in heaps:
            run.heap = h
            r = asyncio.run(Soak(run).run())
            print_report(r)
            mine.append(r)
            if args.find_min and not r["ok"]:
                break
        if args.find_min:
            held = [r["heap_budget"] for r in mine if r["ok"]]
            smallest[load] = held[-1] if held else "none"
            ok = ok and bool(held) and all(r["ok"] for r in mine[:-1])
        else:
            ok = ok and mine[-1]["ok"]
        results += mine
    for load in smallest:
        print("soak: smallest heap that held, code %s: %s" % (load, smallest[load]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results if len(results) > 1 else results[0], f, indent=1)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
