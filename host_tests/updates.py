"""What the update tests share: a dongle that resets (a process that exits with
platform_host.REBOOT is started again, as the ESP32 boots again; killing it is a power cut) over a
fake flash (firmware/p1dongle/fakeflash.py), a meter line that survives its resets, TCP readers
that count telegrams, and app images as ESP-IDF lays them out."""
import json
import os
import random
import re
import socket
import sys
import threading
import time

import meter
from conftest import FIRMWARE
from procs import Proc, free_port
from test_app import KEY_HEX, telegrams

REBOOT = 75


def app_image(version, size=64 * 1024, chip=0, seed=1):
    """An ESP32 app image's layout (ota.py): header magic, chip id, the app description's magic and
    version; random bytes for the rest."""
    data = bytearray(random.Random(seed).randbytes(size))
    data[0] = 0xE9
    data[12:14] = chip.to_bytes(2, "little")
    data[32:36] = b"\x32\x54\xcd\xab"
    v = version.encode().ljust(32, b"\x00")
    data[48:80] = v
    return bytes(data)


def flash_by_usb(flash, image):
    """What esptool does: the image in the first app slot, which boots (no otadata yet)."""
    os.makedirs(flash, exist_ok=True)
    with open(os.path.join(flash, "ota_0.bin"), "wb") as f:
        f.write(image)


def otadata(flash):
    with open(os.path.join(flash, "otadata.json")) as f:
        return json.load(f)


class MeterLine:
    """The test plays the Ethernet P1 reader the dongle connects to, again after every reset, and
    sends it frame after frame (distinct telegrams, counters going up) while sending is on."""

    def __init__(self, interval=0.1, count=5000):
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.tgs = telegrams(count)
        self.interval = interval
        self.sent = 0                   # frames sent so far (frame i carries telegram i)
        self.sending = threading.Event()
        self.sending.set()
        self.running = True
        self.connections = 0
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        self.server.settimeout(0.2)
        while self.running:
            try:
                conn, _ = self.server.accept()
            except OSError:
                continue
            self.connections += 1
            try:
                while self.running:
                    if self.sending.wait(0.2):
                        conn.sendall(meter.frame(self.tgs[self.sent], counter=self.sent + 1))
                        self.sent += 1
                        time.sleep(self.interval)
            except OSError:
                pass                    # the dongle reset: it connects again
            finally:
                conn.close()

    def close(self):
        self.running = False
        self.thread.join(5)
        self.server.close()


class Reader(threading.Thread):
    """A TCP client of the dongle's telegram port: the telegrams' indices, until it is closed."""

    def __init__(self, port, tgs):
        super().__init__(daemon=True)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=60)
        self.index = {t: i for i, t in enumerate(tgs)}
        self.got = []
        self.start()

    def run(self):
        buf = b""
        try:
            while True:
                chunk = self.sock.recv(65536)
                if not chunk:
                    return
                buf += chunk
                while True:
                    m = re.search(rb"/[^!]*![0-9A-F]{4}\r\n", buf)
                    if not m:
                        break
                    self.got.append(self.index[m.group(0)])
                    buf = buf[m.end():]
        except OSError:
            return


class Dongle:
    """firmware/main.py over a fake flash in folder/flash, settings in folder/p1dongle.json, run by
    argv (CPython, or the dongle twin's frozen main)."""

    def __init__(self, folder, argv, line_port, **settings):
        self.folder = str(folder)
        self.flash = os.path.join(self.folder, "flash")
        self.argv = argv
        self.tcp_port = free_port()
        self.http_port = free_port()
        s = {"key": KEY_HEX, "source": "tcp:127.0.0.1:%d" % line_port, "host": "127.0.0.1",
             "tcp_port": self.tcp_port, "http_port": self.http_port, "status_interval": 0}
        s.update(settings)
        with open(self.settings_path, "w") as f:
            f.write(json.dumps(s))
        self.proc = None
        self.boots = 0

    @property
    def settings_path(self):
        return os.path.join(self.folder, "p1dongle.json")

    @property
    def host(self):
        return "127.0.0.1:%d" % self.http_port

    def settings(self):
        with open(self.settings_path) as f:
            return f.read()

    def boot(self):
        self.proc = Proc(self.argv, env={"P1DONGLE_FLASH": self.flash}, cwd=self.folder)
        self.boots += 1
        self.proc.expect(r"web page on port %d" % self.http_port, timeout=60)
        return self.proc

    def expect(self, pattern, timeout=20):
        """A line of this boot's console matching pattern: one already seen, or the next."""
        for line in self.proc.seen:
            if re.search(pattern, line):
                return line
        return self.proc.expect(pattern, timeout).string

    def expect_reset(self, timeout=60):
        """It resets by itself: its process ends with REBOOT; then it boots again."""
        try:
            rc = self.proc.p.wait(timeout)
        except Exception:
            raise AssertionError("no reset within %ds; saw:\n%s" % (timeout, "\n".join(self.proc.rest()[-30:])))
        lines = self.proc.rest()
        assert rc == REBOOT, "ended with %s, not a reset; saw:\n%s" % (rc, "\n".join(lines[-30:]))
        return lines

    def power_cut(self):
        self.proc.p.kill()
        self.proc.p.wait(10)
        return self.proc.rest()

    def stop(self):
        if self.proc is not None:
            self.proc.stop()


def cpython_dongle():
    return [sys.executable, os.path.join(FIRMWARE, "main.py"), "p1dongle.json"]


def twin_dongle(micropython, heap="96K"):
    # the dongle twin's frozen main.py and package, as the p1dongle image boots them
    return [micropython, "-X", "heapsize=" + heap, "-c", "import sys; sys.path.insert(0, '.frozen'); import main"]
