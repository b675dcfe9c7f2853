"""tools/flash.py against a fake dongle (fakedevice.py: a MicroPython unix port on a pseudo-terminal,
spoken to over the raw REPL by mpremote), and its errors without one.

The fake dongle runs the twins with an ESP32's heap: the dongle twin is the p1dongle image (firmware
and main.py frozen), the stock-image twin is MicroPython's own image (no p1dongle, no _p1gcm). An
ESP32 without PSRAM has ~112 KB of heap once Wi-Fi runs; a board with PSRAM has megabytes."""
import json
import os
import pty
import re
import subprocess
import sys
import time
import tty
import urllib.request

import meter
import pytest
import serial
from conftest import FIRMWARE, ROOT, firmware_modules, mpy_arch
from fakedevice import FakeDevice
from procs import P1Reader, connect, free_port, read_telegrams, request_status

sys.path.insert(0, os.path.join(ROOT, "tools"))
from broker import LocalBroker  # noqa: E402
from soak import Mqtt  # noqa: E402

from p1dongle import FILES_HEAP, VERSION  # noqa: E402

FLASH = os.path.join(ROOT, "tools", "flash.py")
KEY = meter.KEY.hex()
ESP32_HEAP = "112K"


def flash(*args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("P1DONGLE_")}
    e.update(env or {})
    r = subprocess.run([sys.executable, FLASH, *args], capture_output=True, text=True, timeout=180, env=e)
    return r.returncode, r.stdout, r.stderr


@pytest.fixture
def make_device(tmp_path):
    made = []

    def make(interpreter, heap=None, files=False):
        """files: boots with what an older install on a stock image wrote (main.py, p1dongle/*.mpy)."""
        root = tmp_path / ("dongle%d" % len(made))
        root.mkdir()
        arch = mpy_arch(interpreter)            # the twins are 32-bit x86: what install compiles for
        if files:
            stale_install(str(root), arch)
        d = FakeDevice(interpreter, str(root), heap=heap)
        d.arch = arch
        made.append(d)
        return d
    yield make
    for d in made:
        d.close()


@pytest.fixture
def device(make_device, micropython):
    """The p1dongle image on an ESP32's heap."""
    return make_device(micropython, ESP32_HEAP)


def files_of(root):
    return sorted(os.path.relpath(os.path.join(d, f), root) for d, _, fs in os.walk(root) for f in fs)


def stale_install(root, arch):
    """What `install` on a stock image wrote: main.py and p1dongle/*.mpy, as an older install left them."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import flash as tool
    for path, data in tool.build(arch).items():
        os.makedirs(os.path.dirname(os.path.join(root, path)) or root, exist_ok=True)
        with open(os.path.join(root, path), "wb") as f:
            f.write(data)


def serve_a_while(device, seconds, mqtt=True):
    """config as the README says, then the dongle reads a meter (a frame every 0.5 s) for `seconds`
    with a TCP reader, MQTT with discovery to a real broker (if mqtt) and a client polling the
    HomeWizard API every second. Every telegram must reach the reader and MQTT, every API answer
    must hold the energy total, and the console must show no MemoryError."""
    reader = P1Reader()
    broker = LocalBroker().start() if mqtt else None
    watcher = Mqtt(broker.port) if mqtt else None
    tcp_port, http_port = free_port(), free_port()
    args = ["config", "--port", device.path, "--source", "tcp:127.0.0.1:%d" % reader.port, "--meter", "lux",
            "--tcp-port", str(tcp_port), "--http-port", str(http_port), "--device-id", "fake"]
    if mqtt:
        assert watcher.subscribed.wait(20)
        args += ["--mqtt", "127.0.0.1:%d" % broker.port]
    try:
        start = len(device.console)
        rc, out, err = flash(*args, env={"P1DONGLE_KEY": KEY})
        assert rc == 0, err
        reader.accept(timeout=60)                       # it listens before it reads
        device.expect(rb"plain telegrams on port %d" % tcp_port, start=start)
        client = connect(tcp_port)
        device.expect(rb"connected \(1 clients\)", start=start)
        n = int(seconds / 0.5)
        api_ok = 0
        for i in range(n):
            reader.send(meter.frame(meter.LUX_TELEGRAM, counter=i + 1))
            time.sleep(0.5)             # the meter's pace (a frame every 0.5 s), not synchronisation
            if i % 2 and i > 2:
                with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/data" % http_port, timeout=10) as r:
                    assert r.status == 200 and b'"total_power_import_kwh":' in r.read()
                    api_ok += 1
        assert read_telegrams(client, n, timeout=30) == [meter.LUX_TELEGRAM] * n
        status = request_status(tcp_port)
        assert "telegrams %d," % n in status and "memory errors" not in status, status   # (said only when some)
        client.close()
        if mqtt:
            deadline = time.monotonic() + 20
            while len(watcher.telegrams) < n and time.monotonic() < deadline:
                time.sleep(0.2)
            assert watcher.telegrams == [meter.LUX_TELEGRAM] * n and len(watcher.configs) > 20
        console = bytes(device.console[start:])
        assert b"MemoryError" not in console and b"memory allocation failed" not in console, console[-2000:]
        assert api_ok >= n // 2 - 2
        return n
    finally:
        reader.close()
        if mqtt:
            watcher.close()
            broker.stop()


def test_the_readmes_steps_on_the_p1dongle_image_at_an_esp32s_heap(device):
    """install, config: a dongle that serves every telegram, with MQTT and the web page, in 112 KB.
    A p1dongle/ folder an install on a stock image left (which used to shadow the frozen package,
    and did not fit) is removed, and even before that it never runs: the frozen package comes first."""
    root = device.root
    stale_install(root, device.arch)        # as if an older install had run (the app is up already)
    rc, out, err = flash("install", "--port", device.path)
    assert rc == 0, err
    assert "p1dongle %s runs frozen in this image (main.py too): nothing to copy" % VERSION in out
    assert "removed p1dongle/" in out
    assert not os.path.exists(os.path.join(root, "p1dongle"))
    assert "this checkout is" not in out                    # the image is the checkout's version

    serve_a_while(device, 60)

    rc, out, err = flash("status", "--port", device.path)
    assert rc == 0, err
    assert "firmware: p1dongle %s frozen in the image" % VERSION in out
    heap, free = map(int, re.search(r"heap (\d+) KB \((\d+) KB free\)", out).groups())
    assert 100 <= heap <= 112 and free > heap - 16         # stopped, the app leaves the REPL its heap
    assert "settings: meter lux, key set" in out and KEY not in out


def test_on_a_stock_image_at_an_esp32s_heap_install_refuses_and_changes_nothing(make_device, stock_micropython):
    device = make_device(stock_micropython, ESP32_HEAP)
    before = files_of(device.root)
    rc, out, err = flash("install", "--port", device.path)
    assert rc == 1
    line = err.strip()
    assert line.startswith("install: this board has 1") and "KB of heap; p1dongle loaded from files needs %d KB" % (
        FILES_HEAP // 1024) in line and "flash the p1dongle image" in line and "PSRAM" in line, line
    assert "\n" not in line and files_of(device.root) == before
    rc, out, err = flash("status", "--port", device.path)          # and it still answers
    assert rc == 0 and "firmware: not installed" in out, out + err


def test_files_from_an_older_install_on_a_small_stock_image_never_take_the_repl(make_device, stock_micropython):
    """A stock image at 112 KB that has the files anyway (copied by hand, an older install): the
    app does not start, says why in one line, and the REPL stays reachable for flash.py."""
    device = make_device(stock_micropython, ESP32_HEAP, files=True)
    m = device.expect(rb"p1dongle: not started: [^\r\n]*")
    assert b"it needs %d KB of heap" % (FILES_HEAP // 1024) in m.group(0) and b"flash the p1dongle image" in m.group(0)
    rc, out, err = flash("status", "--port", device.path)
    assert rc == 0, err
    assert "firmware: p1dongle %s from files" % VERSION in out


def test_on_a_stock_image_with_psram_the_files_install_and_run(make_device, stock_micropython):
    device = make_device(stock_micropython, "2048K")
    rc, out, err = flash("install", "--port", device.path)
    assert rc == 0, err
    modules = sorted(p[9:-3] + ".mpy" for p in firmware_modules())
    on_device = []
    for folder, subs, names in os.walk(os.path.join(device.root, "p1dongle")):
        on_device += [os.path.relpath(os.path.join(folder, n), os.path.join(device.root, "p1dongle")) for n in names]
    assert sorted(on_device) == modules
    for m in modules:                                          # compiled for the device's CPU
        with open(os.path.join(device.root, "p1dongle", m), "rb") as f:
            assert f.read(1) == b"M"
    with open(os.path.join(device.root, "main.py"), "rb") as f, open(os.path.join(FIRMWARE, "main.py"), "rb") as g:
        assert f.read() == g.read()
    assert "%d files copied, 0 unchanged (%s) for a stock MicroPython with 2001 KB of heap" % (   # (of 2048 KB: GC tables)
        len(modules) + 1, device.arch) in out

    # Again: nothing changed, nothing copied; a module left from an older build goes.
    # (a module in a folder of its own too: the folder goes with it)
    os.makedirs(os.path.join(device.root, "p1dongle", "retired"))
    for name in ("retired.mpy", "retired/module.mpy"):
        with open(os.path.join(device.root, "p1dongle", name), "wb") as f:
            f.write(b"M old")
    rc, out, err = flash("install", "--port", device.path)
    assert rc == 0 and "0 files copied, %d unchanged, 2 stale removed" % (len(modules) + 1) in out, out + err
    assert not os.path.exists(os.path.join(device.root, "p1dongle", "retired.mpy"))
    assert not os.path.exists(os.path.join(device.root, "p1dongle", "retired"))
    assert os.path.exists(os.path.join(device.root, "p1dongle", "layouts", "kaifa.mpy"))

    serve_a_while(device, 20)
    rc, out, err = flash("status", "--port", device.path)
    assert rc == 0, err
    assert "firmware: p1dongle %s from files: %d modules in p1dongle/, main.py" % (VERSION, len(modules)) in out


def test_monitor_follows_the_console(device):
    """What the dongle prints while monitor runs shows up on monitor's output."""
    mon = subprocess.Popen([sys.executable, FLASH, "monitor", "--port", device.path, "--for", "20"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert mon.stderr.readline().startswith(b"monitor: ")       # it has the port open
        with serial.Serial(device.path, 115200, timeout=1) as s:     # a second user types
            s.write(b"print('hello from the ' + 'dongle')\r")
        seen = b""
        while b"hello from the dongle" not in seen:
            line = mon.stdout.readline()
            assert line, "monitor ended without showing the output: %r" % seen
            seen += line
    finally:
        mon.kill()
        mon.wait()


def test_bad_settings_are_refused_before_the_port_is_touched():
    rc, out, err = flash("config", "--port", "/dev/nonexistent-dongle", "--key", "0123")
    assert rc == 2 and "key must be 32 hex digits" in err and "0123" not in out + err
    rc, out, err = flash("config", "--port", "/dev/nonexistent-dongle", "--key", KEY, "--mqtt", "broker:99999")
    assert rc == 2 and "mqtt port must be" in err and KEY not in err
    rc, out, err = flash("config", "--port", "/dev/nonexistent-dongle")
    assert rc == 2 and "--key is required" in err


def test_a_missing_port_says_so():
    for cmd in (["status"], ["install", "--arch", "x64"], ["monitor"], ["config", "--key", KEY]):
        rc, out, err = flash(cmd[0], "--port", "/dev/nonexistent-dongle", *cmd[1:])
        assert rc == 1 and "no such port /dev/nonexistent-dongle" in err, (cmd, err)


def test_a_busy_port_says_so(device):
    with serial.Serial(device.path, exclusive=True):
        rc, out, err = flash("status", "--port", device.path)
    assert rc == 1 and "is busy" in err


def test_a_device_without_micropython_says_so():
    m, s = pty.openpty()
    tty.setraw(s)
    try:
        rc, out, err = flash("status", "--port", os.ttyname(s))
    finally:
        os.close(m)
        os.close(s)
    assert rc == 1 and "does not answer MicroPython's raw REPL" in err


def test_flash_needs_an_image(tmp_path):
    rc, out, err = flash("flash", "--port", "/dev/nonexistent-dongle", "--image", str(tmp_path / "none.bin"))
    assert rc == 1 and "no image" in err and "make firmware" in err
    image = tmp_path / "firmware.bin"
    image.write_bytes(b"\xe9" + bytes(100))
    rc, out, err = flash("flash", "--port", "/dev/nonexistent-dongle", "--image", str(image))
    assert rc == 1 and "no such port" in err


def test_config_leaves_the_uart_to_the_chip_and_keeps_secrets(device):
    rc, out, err = flash("config", "--port", device.path, "--wifi", "home",
                         env={"P1DONGLE_KEY": KEY, "P1DONGLE_WIFI_PASSWORD": "wifi-secret",
                              "P1DONGLE_WEB_PASSWORD": "web-secret"})
    assert rc == 0, err
    with open(os.path.join(device.root, "p1dongle.json")) as f:
        written = json.load(f)
    assert "uart" not in written                # the dongle takes its own chip's pins (chips.py)
    assert written["wifi"] == {"ssid": "home", "password": "wifi-secret"}
    assert written["web_password"] == "web-secret"
    assert "wifi-secret" not in out + err and "web-secret" not in out + err and "Wi-Fi 'home'" in out


@pytest.mark.parametrize("machine, pins", [
    ("p1dongle ESP32 with ESP32", "UART 2, RX GPIO16"),
    ("Generic ESP32 module with SPIRAM with ESP32", "UART 2, RX GPIO4"),            # WROVER: 16/17 are PSRAM
    ("Generic ESP32S3 module with Octal-SPIRAM with ESP32S3", "UART 2, RX GPIO16"),
    ("p1dongle ESP32-C3 with ESP32C3", "UART 1, RX GPIO5"),                          # UART 0 and 1 only
])
def test_status_names_the_chips_own_p1_input(machine, pins):
    """What status says a board reads P1 on (chips.py, the same table the dongle picks from)."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import flash as tool
    probe = {"version": "1.28.0", "platform": "esp32", "machine": machine, "heap": 8 << 20, "free": 8 << 20,
             "frozen": None, "files_version": None, "files": None, "main": False, "config": None, "status": None}
    assert "P1 input: %s" % pins in tool.describe(probe)
    probe["config"] = {"key": KEY, "uart": {"rx": 21}}
    lines = tool.describe(probe)
    assert "P1 input: %s" % pins.replace(pins.split("GPIO")[1], "21") in lines and not any(KEY in x for x in lines)
