# Where the meter's bytes come from, when not from the dongle's own UART (platform_esp32 has that).
#
# A source has one coroutine, readinto(buf), that puts the next bytes into the caller's buffer and
# returns how many: as soon as some are there, up to len(buf). The buffer is the app's, allocated
# once, so a UART read on the dongle allocates nothing. It returns 0 only when the input has ended
# for good (end of a file); a network source never ends: it reconnects, and says so in the log.
#
#   tcp:HOST:PORT   an Ethernet P1 reader (serial-to-TCP bridge), or `sim.py meter`
#   file:PATH       a raw capture, replayed at the UART's pace
# (the setting's syntax is config.source_parts', checked with the other settings)
import asyncio

from . import config
from .compat import close_stream, sleep_ms, stream_readinto, ticks_diff, ticks_ms
from .errors import ConfigError


class TcpSource:
    def __init__(self, host, port, log=print, idle_s=60, backoff_max_s=30):
        self.host = host
        self.port = port
        self.log = log
        self.idle_s = idle_s              # no byte for this long: the connection is half-open
        self.backoff_max_s = backoff_max_s
        self.reader = None
        self.writer = None
        self.fresh = False
        self.delay = 1                    # seconds before the next attempt; doubles, capped
        self.connects = 0
        self._last = ticks_ms()           # when bytes last came
        self._idle = False                # the watch closed the connection: nothing came
        self._watch = None

    def describe(self):
        return "tcp:%s:%d" % (self.host, self.port)

    async def readinto(self, buf):
        while True:
            if self.reader is None:
                try:
                    self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
                    self.fresh = True
                    self._last = ticks_ms()
                    self._idle = False
                    if self._watch is None:
                        self._watch = asyncio.create_task(self._watch_idle())
                except OSError as e:
                    await self._retry("cannot connect: %s" % _why(e))
                    continue
            try:
                # No wait_for per read: on MicroPython it is a task of its own each time, which
                # costs more than the frame. _watch_idle closes a connection that went quiet.
                n = await stream_readinto(self.reader, buf)
                why = "closed by the other end"
            except OSError as e:
                n = 0
                why = _why(e)
            if self._idle:
                n = 0
                why = "nothing received for %d s" % self.idle_s
            if n:
                self._last = ticks_ms()
                if self.fresh:
                    # Only the first bytes prove the connection (MicroPython connects lazily).
                    self.fresh = False
                    self.connects += 1
                    self.delay = 1
                    self.log("source %s: connected" % self.describe())
                return n
            await self._disconnect()
            await self._retry(why)

    async def _watch_idle(self):
        # A half-open connection (the reader's power went, Wi-Fi dropped) sends nothing and no
        # FIN: close it once it has been quiet for idle_s, and the read above fails.
        while True:
            await sleep_ms(1000)
            w = self.writer
            if w is not None and not self._idle and ticks_diff(ticks_ms(), self._last) > self.idle_s * 1000:
                self._idle = True
                await close_stream(w)

    async def _retry(self, why):
        self.log("source %s: %s, retrying in %d s" % (self.describe(), why, self.delay))
        await asyncio.sleep(self.delay)
        self.delay = min(self.delay * 2, self.backoff_max_s)

    async def _disconnect(self):
        w = self.writer
        self.reader = self.writer = None
        if w is not None:
            await close_stream(w)

    async def close(self):
        if self._watch is not None:
            self._watch.cancel()
            self._watch = None
        await self._disconnect()


class FileSource:
    """A capture file, fed in UART-sized chunks at the pace the UART would deliver them."""

    def __init__(self, path, baud=115200, chunk=64):
        self.path = path
        self.chunk = chunk
        self.delay_ms = chunk * 10 * 1000 // baud if baud else 0   # 10 bits per byte on the wire
        self.f = open(path, "rb")

    def describe(self):
        return "file:" + self.path

    async def readinto(self, buf):
        n = self.f.readinto(memoryview(buf)[:self.chunk])
        if not n:
            return 0
        await sleep_ms(self.delay_ms)
        return n

    async def close(self):
        self.f.close()


def parse_source(text, log=print):
    """'tcp:HOST:PORT' or 'file:PATH' -> a source. Raises ConfigError with a usable message."""
    kind, where, number = config.source_parts(text)
    if kind == "tcp":
        return TcpSource(where, number, log)
    if kind == "file":
        try:
            return FileSource(where)
        except OSError:
            raise ConfigError("source file: cannot open %s" % where)
    raise ConfigError("source %s is not on this device; use tcp:HOST:PORT or file:PATH" % kind)


def _why(e):
    # OSError text differs between CPython ("[Errno 111] Connection refused") and MicroPython
    # ("[Errno 111] ECONNREFUSED"); both start with the errno.
    return str(e) or e.__class__.__name__
