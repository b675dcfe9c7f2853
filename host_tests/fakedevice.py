"""A fake dongle for tools/flash.py: the MicroPython unix port running its REPL on a pseudo-terminal,
so flash.py (and mpremote under it) talk the real raw-REPL protocol over a real serial device path.

    dev = FakeDevice(micropython, root)    # dev.path: the "USB serial port"; root: its file system
    ...
    dev.close()

Like a dongle, it "reboots" when its program ends or on a soft reset (Ctrl-D): the process is
started again and runs main.py as the ESP32 does, a frozen one (the p1dongle image's: the dongle
twin has it) before one on its file system (a stock image: what install wrote), and the REPL
follows when main.py stops (`micropython -i`, as on the ESP32 after Ctrl-C). Its module path is its
own root and its frozen modules (no MICROPYPATH): it runs what was installed, not the repository's
firmware/.
Set FAKE_LOG=/path to record every byte both ways, for debugging.
"""
import os
import pty
import re
import select
import signal
import subprocess
import termios
import threading
import time
import tty


# The ESP32's boot: main.py, frozen before the file (pyexec_file_if_exists), none at all is fine.
# machine.reset() (the unix port has none: main.py and platform_host end with SystemExit(75)
# instead) prints what the ESP32's ROM prints after a software reset, and the fake restarts.
RESET = b"rst:0xc (SW_CPU_RESET)"
BOOT = """import sys
sys.path.insert(0, '.frozen')
try:
    import main
except ImportError as e:
    if e.args[0] != "no module named 'main'":
        raise
except SystemExit as e:
    if e.args and e.args[0] == 75:
        print("%s")
    else:
        raise
""" % RESET.decode()


class FakeDevice:
    def __init__(self, micropython, root, heap=None):
        """heap: its MicroPython heap, e.g. "112K" (an ESP32's once Wi-Fi runs); None: the port's."""
        self.micropython = micropython
        self.root = root
        self.heap = ["-X", "heapsize=" + heap] if heap else []
        self.env = {k: v for k, v in os.environ.items() if k != "MICROPYPATH"}
        self.dev_m, self.dev_s = pty.openpty()      # the device's side
        self.host_m, self.host_s = pty.openpty()    # the side flash.py opens, by path
        for fd in (self.dev_s, self.host_s):
            tty.setraw(fd)                          # plain byte pipes, like a USB serial port
        self.path = os.ttyname(self.host_s)
        os.set_blocking(self.host_m, False)
        self.console = bytearray()                  # everything the device printed, every boot
        self.seen = threading.Condition()
        self.boots = 0
        self.resets = 0                             # software resets (machine.reset())
        self.at_repl = False
        self.running = True
        self._boot()
        self.thread = threading.Thread(target=self._bridge, daemon=True)
        self.thread.start()

    def _boot(self):
        self.proc = subprocess.Popen([self.micropython, *self.heap, "-i", "-c", BOOT], stdin=self.dev_s,
                                     stdout=self.dev_s, stderr=self.dev_s, cwd=self.root, env=self.env)
        self.boots += 1

    def _bridge(self):
        log = os.environ.get("FAKE_LOG")
        while self.running:
            r, _, _ = select.select([self.dev_m, self.host_m], [], [], 0.1)
            for fd in r:
                try:
                    data = os.read(fd, 4096)
                except OSError:
                    continue
                if fd == self.dev_m:
                    with self.seen:
                        self.console += data
                        self.seen.notify_all()
                    self._to_host(data)
                else:
                    os.write(self.dev_m, data)
                if log:
                    with open(log, "ab") as f:
                        f.write((b"\n<<dev " if fd == self.dev_m else b"\n>>host ") + data)
                if fd == self.dev_m:
                    self.at_repl = data.endswith(b">>> ") or data.endswith(b">")
                    if self.console.count(RESET) > self.resets:
                        self.resets += 1
                        self.proc.kill()            # the chip resets: it boots again below
                        self.proc.wait()
                elif b"\x03" in data and not self.at_repl and self.proc.poll() is None:
                    # The ESP32's UART turns a Ctrl-C into KeyboardInterrupt while a program runs;
                    # the unix port needs SIGINT for that (at the REPL it is just a key).
                    self.proc.send_signal(signal.SIGINT)
            if self.running and self.proc.poll() is not None:
                self._boot()                        # the dongle restarts

    def _to_host(self, data):
        # To the "USB serial port". When nobody has read it for a while (no flash.py, no monitor:
        # its buffer stays full), what waits there is dropped, as a USB serial adapter drops what no
        # program reads: the device never blocks on its console.
        while data:
            try:
                data = data[os.write(self.host_m, data):]
            except BlockingIOError:
                if not select.select([], [self.host_m], [], 0.5)[1]:
                    termios.tcflush(self.host_s, termios.TCIFLUSH)

    def expect(self, pattern, timeout=60, start=0):
        """The first match of pattern (bytes, a regular expression) in the console from offset
        start on; fails after timeout seconds."""
        deadline = time.monotonic() + timeout
        rx = re.compile(pattern)
        with self.seen:
            while True:
                m = rx.search(self.console, start)
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError("the device did not print %r within %ds; its console ends:\n%s" % (
                        pattern, timeout, bytes(self.console[-1500:]).decode("utf-8", "replace")))
                self.seen.wait(left)

    def close(self):
        self.running = False
        self.thread.join(5)
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        for fd in (self.dev_m, self.dev_s, self.host_m, self.host_s):
            try:
                os.close(fd)
            except OSError:
                pass
