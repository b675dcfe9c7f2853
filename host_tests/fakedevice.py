"""A fake dongle for tools/flash.py: the MicroPython unix port running its REPL on a pseudo-terminal,
so flash.py (and mpremote under it) talk the real raw-REPL protocol over a real serial device path.

    dev = FakeDevice(micropython, root)    # dev.path: the "USB serial port"; root: its file system
    ...
    dev.close()

Like a dongle, it "reboots" when its program ends or on a soft reset (Ctrl-D): the process is
started again, running main.py if one was installed (`micropython -i main.py`: the REPL follows
when main.py stops, as on the ESP32 after Ctrl-C). Its module path is its own root only (no
MICROPYPATH): it runs what was installed, not the repository's firmware/.
Set FAKE_LOG=/path to record every byte both ways, for debugging.
"""
import os
import pty
import select
import signal
import subprocess
import threading
import tty


class FakeDevice:
    def __init__(self, micropython, root):
        self.micropython = micropython
        self.root = root
        self.env = {k: v for k, v in os.environ.items() if k != "MICROPYPATH"}
        self.dev_m, self.dev_s = pty.openpty()      # the device's side
        self.host_m, self.host_s = pty.openpty()    # the side flash.py opens, by path
        for fd in (self.dev_s, self.host_s):
            tty.setraw(fd)                          # plain byte pipes, like a USB serial port
        self.path = os.ttyname(self.host_s)
        self.boots = 0
        self.at_repl = False
        self.running = True
        self._boot()
        self.thread = threading.Thread(target=self._bridge, daemon=True)
        self.thread.start()

    def _boot(self):
        main = os.path.exists(os.path.join(self.root, "main.py"))
        argv = [self.micropython, "-i", "main.py"] if main else [self.micropython]
        self.proc = subprocess.Popen(argv, stdin=self.dev_s, stdout=self.dev_s, stderr=self.dev_s,
                                     cwd=self.root, env=self.env)
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
                os.write(self.host_m if fd == self.dev_m else self.dev_m, data)
                if log:
                    with open(log, "ab") as f:
                        f.write((b"\n<<dev " if fd == self.dev_m else b"\n>>host ") + data)
                if fd == self.dev_m:
                    self.at_repl = data.endswith(b">>> ") or data.endswith(b">")
                elif b"\x03" in data and not self.at_repl and self.proc.poll() is None:
                    # The ESP32's UART turns a Ctrl-C into KeyboardInterrupt while a program runs;
                    # the unix port needs SIGINT for that (at the REPL it is just a key).
                    self.proc.send_signal(signal.SIGINT)
            if self.running and self.proc.poll() is not None:
                self._boot()                        # the dongle restarts

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
