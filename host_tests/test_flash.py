"""tools/flash.py against a fake dongle (fakedevice.py: the MicroPython unix port on a pseudo-terminal,
spoken to over the raw REPL by mpremote), and its errors without one."""
import json
import os
import pty
import subprocess
import sys
import tty

import meter
import pytest
import serial
from conftest import FIRMWARE, ROOT, mpy_arch
from fakedevice import FakeDevice
from procs import P1Reader, connect, free_port, read_telegrams

FLASH = os.path.join(ROOT, "tools", "flash.py")
KEY = meter.KEY.hex()


def flash(*args, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("P1DONGLE_")}
    e.update(env or {})
    r = subprocess.run([sys.executable, FLASH, *args], capture_output=True, text=True, timeout=180, env=e)
    return r.returncode, r.stdout, r.stderr


@pytest.fixture
def device(micropython, tmp_path):
    root = tmp_path / "dongle"
    root.mkdir()
    d = FakeDevice(micropython, str(root))
    d.arch = mpy_arch(micropython)              # the twin is 32-bit x86: what install compiles for
    yield d
    d.close()


def test_install_config_status_and_the_firmware_runs_there(device):
    root = device.root
    rc, out, err = flash("install", "--port", device.path, "--arch", device.arch)
    assert rc == 0, err
    modules = sorted(n[:-3] + ".mpy" for n in os.listdir(os.path.join(FIRMWARE, "p1dongle")) if n.endswith(".py"))
    assert sorted(os.listdir(os.path.join(root, "p1dongle"))) == modules
    for m in modules:                                          # compiled, not copied sources
        with open(os.path.join(root, "p1dongle", m), "rb") as f:
            assert f.read(1) == b"M"
    with open(os.path.join(root, "main.py"), "rb") as f, open(os.path.join(FIRMWARE, "main.py"), "rb") as g:
        assert f.read() == g.read()
    assert "%d files copied, 0 unchanged" % (len(modules) + 1) in out

    # Again: nothing changed, nothing copied; a module left from an older build goes.
    with open(os.path.join(root, "p1dongle", "retired.mpy"), "wb") as f:
        f.write(b"M old")
    rc, out, err = flash("install", "--port", device.path, "--arch", device.arch)
    assert rc == 0 and "0 files copied, %d unchanged, 1 stale removed" % (len(modules) + 1) in out, out + err
    assert not os.path.exists(os.path.join(root, "p1dongle", "retired.mpy"))

    # Settings: written after the dongle's own checks; the key is never printed.
    reader = P1Reader()
    tcp_port = free_port()
    rc, out, err = flash("config", "--port", device.path, "--source", "tcp:127.0.0.1:%d" % reader.port,
                         "--tcp-port", str(tcp_port), "--meter", "lux", env={"P1DONGLE_KEY": KEY})
    assert rc == 0, err
    assert KEY not in out + err and KEY.upper() not in out + err and "key set" in out
    with open(os.path.join(root, "p1dongle.json")) as f:
        written = json.load(f)
    assert written["key"] == KEY and written["source"] == "tcp:127.0.0.1:%d" % reader.port

    # The dongle restarted with them: the installed firmware reads the meter and serves telegrams.
    try:
        reader.accept(timeout=60)                           # it listens before it reads
        client = connect(tcp_port)
        frames = [meter.frame(meter.LUX_TELEGRAM, counter=i) for i in (1, 2)]
        for f in frames:
            reader.send(f)
        assert read_telegrams(client, 2, timeout=30) == [meter.LUX_TELEGRAM] * 2
        client.close()
    finally:
        reader.close()

    rc, out, err = flash("status", "--port", device.path)
    assert rc == 0, err
    assert "firmware: %d modules in p1dongle/, main.py" % len(modules) in out
    assert "settings: meter lux, key set, source tcp:127.0.0.1:%d" % reader.port in out
    assert KEY not in out


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


def test_an_esp32_c3_gets_a_uart_it_has(device):
    rc, out, err = flash("config", "--port", device.path, "--chip", "esp32c3", "--wifi", "home",
                         env={"P1DONGLE_KEY": KEY, "P1DONGLE_WIFI_PASSWORD": "wifi-secret",
                              "P1DONGLE_WEB_PASSWORD": "web-secret"})
    assert rc == 0, err
    with open(os.path.join(device.root, "p1dongle.json")) as f:
        written = json.load(f)
    assert written["uart"] == {"id": 1, "rx": 5} and written["wifi"] == {"ssid": "home", "password": "wifi-secret"}
    assert written["web_password"] == "web-secret"
    assert "wifi-secret" not in out + err and "web-secret" not in out + err and "Wi-Fi 'home'" in out
