"""Real processes and real sockets for the application tests: no mocks, no sleeps for syncing.

A test waits for what a process says on its console (`Proc.expect`) or for bytes on a socket,
always with a deadline, so a broken program fails the test instead of hanging it.
"""
import asyncio
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time

from conftest import FIRMWARE, MICROPYPATH, ROOT
from dsmr_parser.clients.protocol import create_tcp_dsmr_reader

SIM = os.path.join(ROOT, "tools", "sim.py")
DEMO_KEY = "0123456789ABCDEF0123456789ABCDEF"


class Proc:
    """A child process whose console lines are collected as they come."""

    def __init__(self, argv, env=None, cwd=None):
        e = {k: v for k, v in os.environ.items() if not k.startswith("P1DONGLE_")}
        e.update(env or {})
        e["PYTHONUNBUFFERED"] = "1"
        self.p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=e,
                                  preexec_fn=_like_a_terminal, cwd=cwd)
        self.lines = queue.Queue()
        self.seen = []
        threading.Thread(target=self._pump, daemon=True).start()

    def _pump(self):
        for line in self.p.stdout:
            self.lines.put(line.rstrip("\n"))
        self.lines.put(None)

    def expect(self, pattern, timeout=20):
        """The first line (from now on) that matches pattern; fails after timeout seconds."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                line = self.lines.get(timeout=max(left, 0.01))
            except queue.Empty:
                raise AssertionError("no line matching %r within %ss; saw:\n%s" % (pattern, timeout, "\n".join(self.seen[-30:])))
            if line is None:
                raise AssertionError("process ended (rc %s) before %r; saw:\n%s" % (self.p.wait(), pattern, "\n".join(self.seen[-30:])))
            self.seen.append(line)
            m = re.search(pattern, line)
            if m:
                return m

    def stop(self, timeout=10):
        """Ctrl-C, as a user would; returns the exit code."""
        if self.p.poll() is None:
            self.p.send_signal(signal.SIGINT)
        try:
            return self.p.wait(timeout)
        finally:
            if self.p.poll() is None:
                self.p.kill()
            self.rest()

    def rest(self):
        while True:
            try:
                line = self.lines.get(timeout=2)
            except queue.Empty:
                return self.seen
            if line is None:
                return self.seen
            self.seen.append(line)


def _like_a_terminal():
    # CI may start us with SIGINT ignored (a background job); a user's Ctrl-C is not.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def sim(*args, env=None):
    if args and args[0] == "run" and "--http-port" not in args:
        args += ("--http-port", "0")        # never the fixed 8080: tests run side by side with anything
    return Proc([sys.executable, SIM, *args], env=env)


def micropython_app(micropython, config_path):
    return Proc([micropython, os.path.join(FIRMWARE, "main.py"), config_path], env={"MICROPYPATH": MICROPYPATH})


def settings_file(path, reader_port, **settings):
    """Write path (a pathlib.Path) as main.py's settings for reading the test's P1 reader on
    reader_port: the test meter's key, loopback, the telegram port on a free port, no status
    lines, the web server on any free port; settings add to those or replace them."""
    import json
    import meter
    s = {"key": meter.KEY.hex(), "source": "tcp:127.0.0.1:%d" % reader_port, "host": "127.0.0.1",
         "tcp_port": free_port(), "status_interval": 0, "http_port": 0}
    s.update(settings)
    path.write_text(json.dumps(s))
    return path


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class P1Reader:
    """The test plays the Ethernet P1 reader: a TCP server the dongle connects to for its bytes."""

    def __init__(self):
        self.server = socket.socket()
        self.server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.server.bind(("127.0.0.1", 0))
        self.server.listen(1)
        self.port = self.server.getsockname()[1]
        self.conn = None

    def accept(self, timeout=20):
        self.server.settimeout(timeout)
        self.conn, _ = self.server.accept()

    def send(self, data):
        self.conn.sendall(data)

    def close(self):
        for s in (self.conn, self.server):
            if s is not None:
                s.close()


def split_telegrams(data):
    """Complete telegrams in a byte stream, and the incomplete rest."""
    out = []
    while True:
        m = re.search(rb"/[^!]*![0-9A-Fa-f]{4}\r\n", data)
        if not m:
            return out, data
        out.append(m.group(0))
        data = data[m.end():]


def read_until_closed(sock, timeout=20):
    """Everything a connected client socket gets until the other side closes it."""
    sock.settimeout(timeout)
    data = b""
    while True:
        chunk = sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def read_telegrams(sock, n, timeout=20):
    """Read from a connected client socket until n telegrams have come."""
    sock.settimeout(timeout)
    buf = b""
    got = []
    deadline = time.monotonic() + timeout
    while len(got) < n:
        if time.monotonic() > deadline:
            raise AssertionError("only %d of %d telegrams within %ss" % (len(got), n, timeout))
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError("connection closed after %d of %d telegrams" % (len(got), n))
        buf += chunk
        more, buf = split_telegrams(buf)
        got += more
    return got


def connect(port, rcvbuf=None):
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    return s


def request_status(port, timeout=10):
    """Ask the dongle for its status line, as a user in telnet would."""
    with connect(port) as s:
        s.settimeout(timeout)
        s.sendall(b"status\r\n")
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(4096)
            if not chunk:
                break
            buf += chunk
        return buf.decode().strip()


def dsmr_reader(port, done, version="5L", got=None, timeout=30):
    """Home Assistant's DSMR integration in network mode (dsmr_parser's TCP reader, as its config
    flow and sensors run it), in an event loop of its own: the telegrams it reads until
    done(telegrams) says enough (appended to got as they come)."""
    got = [] if got is None else got

    async def main():
        enough = asyncio.Event()

        def on_telegram(t):
            got.append(t)
            if done(got):
                enough.set()

        transport, _ = await create_tcp_dsmr_reader("127.0.0.1", port, version, on_telegram)
        try:
            await asyncio.wait_for(enough.wait(), timeout)
        finally:
            transport.close()

    asyncio.run(main())
    return got
