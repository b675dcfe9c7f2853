"""Recovery on the dongle twin, with failures injected into the running firmware: a MemoryError
costs the telegram at hand and is counted, never the app; an error that stops the app leaves
nothing open, so the restart serves on the same port at once; the same error again backs off,
saying so in one line each time."""
import os

import meter
from conftest import FIRMWARE
from procs import P1Reader, Proc, connect, free_port, read_telegrams, request_status, settings_file
from test_app import KEY_HEX, telegrams

# Runs firmware/main.py as the dongle would (from a folder of its own, so the frozen modules are
# the ones imported), after the injection in INJECT has patched the firmware; RESTART_S made short.
RUNNER = """
import sys
sys.path.append({firmware!r})         # for CPython; the twin finds its frozen modules first
from p1dongle import start
start.RESTART_S = 1
{inject}
exec(open("main_real.py").read(), {{"__name__": "__main__"}})   # main.py in a namespace of its own
"""


def dongle(micropython, tmp_path, inject, port, reader_port, http_port=0, **settings):
    dongle_files(tmp_path, inject, port, reader_port, http_port, **settings)
    return in_folder(tmp_path, [micropython, "-X", "heapsize=96K", "run.py", "p1dongle.json"])


def dongle_files(tmp_path, inject, port, reader_port, http_port=0, **settings):
    """main.py, the runner with its injection, and the settings, in tmp_path."""
    with open(os.path.join(FIRMWARE, "main.py")) as f:
        (tmp_path / "main_real.py").write_text(f.read())
    (tmp_path / "run.py").write_text(RUNNER.format(inject=inject, firmware=FIRMWARE))
    settings_file(tmp_path / "p1dongle.json", reader_port, key=KEY_HEX, tcp_port=port, http_port=http_port,
                  **settings)


def in_folder(folder, args):
    old = os.getcwd()
    os.chdir(folder)
    try:
        return Proc(args)
    finally:
        os.chdir(old)


MEMORY_ERRORS = """
from p1dongle.pipeline import Pipeline
_content = Pipeline._content
calls = [0]
def content(self, *args):
    calls[0] += 1
    if calls[0] % 3 == 0:
        raise MemoryError("injected: no room for this frame")
    return _content(self, *args)
Pipeline._content = content
"""


def test_a_memory_error_costs_one_telegram_not_the_app(micropython, tmp_path):
    tgs = telegrams(9)
    reader = P1Reader()
    port = free_port()
    app = dongle(micropython, tmp_path, MEMORY_ERRORS, port, reader.port)
    try:
        app.expect(r"plain telegrams on port %d" % port)
        reader.accept()
        client = connect(port)
        app.expect(r"connected \(1 clients\)")
        for i, t in enumerate(tgs):
            reader.send(meter.frame(t, counter=i + 1))
        got = read_telegrams(client, 6)
        assert got == [t for i, t in enumerate(tgs) if (i + 1) % 3]     # the 3rd, 6th, 9th are lost
        status = request_status(port)
        assert "telegrams 6," in status and "memory errors 3" in status, status
        assert app.p.poll() is None
        client.close()
    finally:
        reader.close()
        app.stop()
    console = "\n".join(app.seen)
    assert console.count("out of memory: the frame at hand is dropped") == 3
    assert "stopped by an error" not in console


A_BUG_ONCE = """
from p1dongle.app import App
_event = App._event
state = {"telegrams": 0, "raised": False}
def event(self, kind, pos, what, crc):
    _event(self, kind, pos, what, crc)
    if kind == 1:
        state["telegrams"] += 1
        if state["telegrams"] == 2 and not state["raised"]:
            state["raised"] = True
            raise RuntimeError("injected bug")
App._event = event
"""


def test_an_error_that_stops_the_app_leaves_its_port_free_for_the_restart(micropython, tmp_path):
    """The RX task dies of a bug after the 2nd telegram: the app closes its clients, its server
    and its source, main.py starts it again, and it serves on the same ports (the web page's too)."""
    tgs = telegrams(4)
    reader = P1Reader()
    port = free_port()
    http_port = free_port()
    app = dongle(micropython, tmp_path, A_BUG_ONCE, port, reader.port, http_port)
    try:
        app.expect(r"plain telegrams on port %d, web page on port %d" % (port, http_port))
        reader.accept()
        client = connect(port)
        app.expect(r"connected \(1 clients\)")
        for i in range(2):
            reader.send(meter.frame(tgs[i], counter=i + 1))
        assert read_telegrams(client, 2) == tgs[:2]
        line = app.expect(r"p1dongle: stopped by an error").string
        assert line == "p1dongle: stopped by an error (RuntimeError: injected bug); restarting in 1 s"
        client.settimeout(10)
        assert client.recv(100) == b""                   # closed by the stopping app, not left open
        reader.conn.close()
        app.expect(r"plain telegrams on port %d, web page on port %d" % (port, http_port))  # at once: no EADDRINUSE
        reader.accept()
        client = connect(port)
        app.expect(r"connected \(1 clients\)")
        for i in range(2, 4):
            reader.send(meter.frame(tgs[i], counter=i + 1))
        assert read_telegrams(client, 2) == tgs[2:]
        client.close()
    finally:
        reader.close()
        app.stop()
    assert not any("EADDRINUSE" in line or "Errno 98" in line for line in app.seen)


THE_SAME_ERROR = """
from p1dongle.tcpserver import TcpServer
_start = TcpServer.start
tries = [0]
async def start(self, host, port=None):
    tries[0] += 1
    if tries[0] <= 3:
        raise OSError("injected: the network is not up yet")
    await _start(self, host, port)
TcpServer.start = start
"""


def test_the_same_error_again_backs_off_and_says_so(micropython, tmp_path):
    reader = P1Reader()
    port = free_port()
    app = dongle(micropython, tmp_path, THE_SAME_ERROR, port, reader.port)
    try:
        lines = [app.expect(r"p1dongle: stopped by").string for _ in range(3)]
        assert lines == [
            "p1dongle: stopped by an error (OSError: injected: the network is not up yet); restarting in 1 s",
            "p1dongle: stopped by the same error again (OSError: injected: the network is not up yet); next start in 2 s",
            "p1dongle: stopped by the same error again (OSError: injected: the network is not up yet); next start in 4 s",
        ]
        app.expect(r"plain telegrams on port %d" % port, timeout=30)    # and then it runs
        reader.accept()
        client = connect(port)
        app.expect(r"connected \(1 clients\)")
        reader.send(meter.frame(meter.LUX_TELEGRAM))
        assert read_telegrams(client, 1) == [meter.LUX_TELEGRAM]
        client.close()
    finally:
        reader.close()
        app.stop()


def test_the_restart_logic_is_the_same_under_cpython(tmp_path):
    """main.py under CPython (the tools run it so): the same line, the same port reused."""
    import sys
    reader = P1Reader()
    port = free_port()
    app = dongle(sys.executable, tmp_path, A_BUG_ONCE, port, reader.port)
    try:
        app.expect(r"plain telegrams on port %d" % port)
        reader.accept()
        for i, t in enumerate(telegrams(2)):
            reader.send(meter.frame(t, counter=i + 1))
        app.expect(r"stopped by an error \(RuntimeError: injected bug\); restarting in 1 s")
        reader.conn.close()
        app.expect(r"plain telegrams on port %d" % port)
    finally:
        reader.close()
        app.stop()


# The old app holds half of what is free (as its buffers and clients' queues can), and the bug
# stops it after its 2nd telegram: the restart must not build the new app beside the old one.
# (Half: the app must still run in what is left; with two thirds it had some 16 KB, at the edge,
# and 176 bytes more of start-up code made its first telegrams fail. The old app kept, the new one
# finds no room either way.)
OLD_APP_HOLDS_THE_HEAP = """
import gc
from p1dongle.app import App
_init = App.__init__
_event = App._event
state = {"size": 0, "raised": False, "telegrams": 0}
def init(self, *args, **kwargs):
    _init(self, *args, **kwargs)
    if not state["size"]:
        gc.collect()
        state["size"] = gc.mem_free() // 2
    self.ballast = bytearray(state["size"])
def event(self, kind, pos, what, crc):
    _event(self, kind, pos, what, crc)
    if kind == 1:
        state["telegrams"] += 1
        if state["telegrams"] == 2 and not state["raised"]:
            state["raised"] = True
            raise RuntimeError("injected bug")
App.__init__ = init
App._event = event
"""


def test_the_restart_does_not_build_the_new_app_beside_the_old_one(micropython, tmp_path):
    tgs = telegrams(4)
    reader = P1Reader()
    port = free_port()
    app = dongle(micropython, tmp_path, OLD_APP_HOLDS_THE_HEAP, port, reader.port)
    try:
        app.expect(r"plain telegrams on port %d" % port)
        reader.accept()
        client = connect(port)
        app.expect(r"connected \(1 clients\)")
        for i in range(2):
            reader.send(meter.frame(tgs[i], counter=i + 1))
        assert read_telegrams(client, 2) == tgs[:2], "\n".join(app.seen)
        app.expect(r"p1dongle: stopped by an error \(RuntimeError: injected bug\)")
        reader.conn.close()
        client.close()
        app.expect(r"plain telegrams on port %d" % port)        # the new app, in the old one's heap
        reader.accept()
        client = connect(port)
        app.expect(r"connected \(1 clients\)")
        for i in range(2, 4):
            reader.send(meter.frame(tgs[i], counter=i + 1))
        assert read_telegrams(client, 2) == tgs[2:], "\n".join(app.seen)
        client.close()
    finally:
        reader.close()
        app.stop()
    assert not any("MemoryError" in line for line in app.seen), "\n".join(app.seen)


A_FAILED_BUILD = """
from p1dongle.app import App
_init = App.__init__
apps = [0]
def init(self, *args, **kwargs):
    apps[0] += 1
    if apps[0] == 2:
        raise MemoryError("injected: no room for the new app")
    _init(self, *args, **kwargs)
App.__init__ = init
""" + A_BUG_ONCE


def test_an_app_that_cannot_be_built_is_an_error_like_any_other(micropython, tmp_path):
    """The app stops (a bug), and building the next one fails (out of memory): one line, the
    backoff, and the one after that serves."""
    tgs = telegrams(4)
    reader = P1Reader()
    port = free_port()
    app = dongle(micropython, tmp_path, A_FAILED_BUILD, port, reader.port)
    try:
        app.expect(r"plain telegrams on port %d" % port)
        reader.accept()
        for i in range(2):
            reader.send(meter.frame(tgs[i], counter=i + 1))
        app.expect(r"p1dongle: stopped by an error \(RuntimeError: injected bug\); restarting in 1 s")
        reader.conn.close()
        line = app.expect(r"p1dongle: stopped by").string
        assert line == ("p1dongle: stopped by an error (MemoryError: injected: no room for the new app); "
                        "restarting in 1 s")
        app.expect(r"plain telegrams on port %d" % port)
        reader.accept()
        client = connect(port)
        app.expect(r"connected \(1 clients\)")
        for i in range(2, 4):
            reader.send(meter.frame(tgs[i], counter=i + 1))
        assert read_telegrams(client, 2) == tgs[2:]
        client.close()
    finally:
        reader.close()
        app.stop()


# An app method that fails in a task nobody awaits: the asyncio core keeps that task for its
# exception handler, and through its coroutine the object and its buffer.
DETACHED_FAILURE = """import gc, json, asyncio
from p1dongle.compat import new_loop


class Old:
    def __init__(self):
        self.buf = bytearray(30000)

    async def fail(self):
        await asyncio.sleep_ms(1)
        raise RuntimeError("a detached task of the old app")


async def main():
    old = Old()
    asyncio.create_task(old.fail())
    await asyncio.sleep_ms(20)


def run_old():
    # as start.py's _run_app: the app and its loop in a frame that is gone when this returns
    asyncio.run(main())


def measure():
    gc.collect()
    return gc.mem_alloc()


base = measure()
run_old()
held = measure() - base
new_loop()
print(json.dumps({"before": held, "after": measure() - base}))
"""


def test_a_new_loop_lets_go_of_the_old_apps_failed_tasks(micropython, tmp_path):
    """What start.py does between two apps (compat.new_loop, gc): the old app's buffers are free,
    even those a failed detached task of it kept (the restart then had no room for the new app's
    ring buffer, now and then, in the 96 KB test above)."""
    import json
    import subprocess
    script = tmp_path / "detached.py"
    script.write_text(DETACHED_FAILURE)
    proc = subprocess.run([micropython, "-X", "heapsize=96K", str(script)], capture_output=True, text=True,
                          timeout=60, env=dict(os.environ, MICROPYPATH=".frozen"))
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["before"] >= 30000 and r["after"] < 2000, r


NOTIFY_FAILS = """
from p1dongle.shelly import Face
_notify = Face.notify
calls = [0]
def notify(self, dst):
    calls[0] += 1
    if calls[0] == 1:
        raise MemoryError("injected: no room for this notification")
    return _notify(self, dst)
Face.notify = notify
"""


async def _notifications(http_port, want, timeout=30):
    """A WebSocket client of the Shelly face (as aioshelly opens one): says who it is, then reads
    the NotifyStatus frames pushed after telegrams, until want of them have come."""
    import asyncio
    import json
    import aiohttp
    got = []
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect("http://127.0.0.1:%d/rpc" % http_port) as ws:
            await ws.send_str(json.dumps({"id": 1, "src": "ha-test", "method": "Shelly.GetDeviceInfo"}))
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout
            while len(got) < want and loop.time() < deadline:
                msg = await ws.receive(timeout=max(deadline - loop.time(), 0.1))
                frame = json.loads(msg.data)
                if frame.get("method") == "NotifyStatus":
                    got.append(frame)
    return got


def test_a_memory_error_costs_one_notification_not_the_websocket(micropython, tmp_path):
    """The Shelly face's pusher loses a NotifyStatus to a MemoryError: counted, and the next
    telegram's notification still comes on the same WebSocket (it used to end the pusher for good,
    the session left open with nothing pushed)."""
    import asyncio
    import threading
    tgs = telegrams(40)
    reader = P1Reader()
    port, http_port = free_port(), free_port()
    app = dongle(micropython, tmp_path, NOTIFY_FAILS, port, reader.port, http_port, shelly=True, shelly_udp=[])
    stop = threading.Event()
    try:
        app.expect(r"web page on port %d" % http_port)
        reader.accept()

        def meter_sends():              # a telegram every 0.4 s, until the test has what it needs
            for i, t in enumerate(tgs):
                if stop.wait(0.4):
                    return
                reader.send(meter.frame(t, counter=i + 1))
        sender = threading.Thread(target=meter_sends, daemon=True)
        sender.start()
        got = asyncio.run(_notifications(http_port, 3))
        assert len(got) == 3 and all("em:0" in g["params"] for g in got), got
        assert "memory errors 1" in request_status(port)
    finally:
        stop.set()
        reader.close()
        app.stop()
    assert not any("Task exception" in line or "Traceback" in line for line in app.seen), "\n".join(app.seen)



# Most of the time in garbage collection, where a Ctrl-C could land: a heap of 20,000 live objects
# to mark, collected every 2 KB allocated (the Shelly face's GC_EVERY), and a task allocating.
BUSY_GC = """
import asyncio
from p1dongle.app import App
ballast = [bytearray(8) for _ in range(20000)]
_run = App.run
async def churn():
    while True:
        b = bytearray(100)
        await asyncio.sleep_ms(0)
async def run(self, *args, **kwargs):
    task = asyncio.create_task(churn())
    try:
        return await _run(self, *args, **kwargs)
    finally:
        task.cancel()
App.run = run
"""
REPL = """
exec(open("run.py").read(), {"__name__": "__main__"})
print("at the REPL", len(bytearray(2000)))     # the heap is there for what comes next
"""


def test_ctrl_c_leaves_the_repl_its_heap(micropython, tmp_path):
    """Ctrl-C (as tools/flash.py sends it) while the dongle is collecting its heap: the REPL that
    follows can allocate. (The unix port raised the KeyboardInterrupt from its signal handler, in
    the middle of a collection, and left the heap locked for good, the REPL too: the twin now takes
    Ctrl-C where the VM is at a safe point, as the ESP32 does: boards/twin/mpconfigvariant.h.)"""
    import signal
    (tmp_path / "repl.py").write_text(REPL)
    for _ in range(3):
        http_port = free_port()
        dongle_files(tmp_path, BUSY_GC, free_port(), free_port(), http_port, shelly=True, shelly_udp=[])
        app = in_folder(tmp_path, [micropython, "-X", "heapsize=2M", "repl.py", "p1dongle.json"])
        try:
            app.expect(r"web page on port %d" % http_port)
            app.p.send_signal(signal.SIGINT)
            app.expect(r"at the REPL 2000")
        finally:
            app.stop()
        assert not any("heap is locked" in line for line in app.seen), "\n".join(app.seen)
