# Fan each telegram out to every connected TCP client (telnet, Home Assistant's DSMR reader, ...).
#
# publish() is synchronous and never waits, so the UART side can never be held up by the network:
# a client that has nothing waiting gets the telegram handed to its socket at once (no task
# switch: with 8 clients that is most of the cost of a telegram); otherwise it goes into the
# client's bounded queue, and the client's writer task sends what waits, whole telegrams one after
# the other (never two interleaved). The same telegram bytes serve every client: nothing is
# copied per client but what a socket cannot take at once. A client's queue holds the numbers
# of the telegrams it waits for in the app's backlog (backlog.py), not their bytes. A client that
# stops reading fills its queue, or falls further behind than the backlog reaches, and is dropped;
# a client that resets, closes or vanishes only ends its own tasks.
#
# A client may send a line "status": it gets the status line back (the only thing ever sent that
# is not a telegram, and only on request). Everything else a client sends is ignored.
#
# Two outputs (output.py): the plaintext port, every telegram as passed on; and, when set, the
# raw port, every frame as it came from the meter.
import asyncio

from . import memory
from .compat import close_stream, listening_port, pending, send, small_send_buffer, wait_for
from .output import Output


def make(view):
    cfg = view.cfg
    out = [TcpServer("plaintext", cfg["max_clients"], cfg["queue_len"], view.status, view.log, cfg["tcp_port"],
                     view.backlog)]
    if cfg["raw_port"]:
        out.append(TcpServer("raw", cfg["max_clients"], cfg["queue_len"], view.status, view.log, cfg["raw_port"]))
    return out


class _Client:
    def __init__(self, writer, peer):
        self.writer = writer
        self.peer = peer
        self.queue = []       # what waits: a telegram's number in the backlog, or bytes
        self.ready = asyncio.Event()
        self.task = None
        self.gone = False
        self.busy = False     # a write is under way, or the socket holds a rest to send
        self.closing = False  # the client closed its side: finish the queue, then close


class TcpServer(Output):
    def __init__(self, name, max_clients=8, queue_len=8, status=None, log=print, port=None, backlog=None):
        self.name = name                  # "plaintext" (telegrams) or "raw" (frames)
        self.listen = port                # the port start() opens when it is given none
        self.max_clients = max_clients
        self.queue_len = queue_len        # telegrams a client may fall behind before it is dropped
        self.status = status              # callable giving the status line, or None
        self.backlog = backlog            # where the telegrams a client waits for are (backlog.py)
        self.log = log
        self.clients = []
        self.server = None
        self.port = None
        self.refused = 0                  # connections turned away: too many clients
        self.dropped = 0                  # clients dropped because they did not keep up

    async def start(self, host, port=None):
        port = self.listen if port is None else port
        self.server = await asyncio.start_server(self._serve, host, port)
        self.port = listening_port(self.server, port)

    def start_part(self):
        return ("plain telegrams on port %d" if self.name == "plaintext" else "raw frames on port %d") % self.port

    def telegram(self, t):
        if self.name == "plaintext":
            self.publish(t.data, t.number if self.backlog is not None else t.data)

    def frame(self, data):
        if self.name == "raw":
            self.publish(data)

    def connected(self):
        return len(self.clients)

    async def stop(self):
        # Close every client's socket here, not in its cancelled task: after an error the event
        # loop may never run that task again, and a restart must find nothing left open.
        for c in list(self.clients):
            self._drop(c)
            await close_stream(c.writer)
        self.clients = []
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    def idle(self):
        """True when every client has been sent everything queued for it."""
        for c in self.clients:
            if c.queue or c.busy:
                return False
        return True

    def publish(self, data, ref=None):
        """Send data (one whole telegram or frame) to every client, or queue ref for it (its number
        in the backlog; by default data itself, kept as it is). Never blocks."""
        if ref is None:
            ref = data
        for c in self.clients:
            if c.gone:
                continue
            if not c.queue and not c.busy:
                try:
                    send(c.writer, data)
                except Exception:   # noqa: BLE001 - reset, broken pipe: this client is gone
                    self._drop(c)
                    continue
                if pending(c.writer):
                    c.busy = True       # the socket took part of it: the writer task sends the rest
                    c.ready.set()
                continue
            if len(c.queue) >= self.queue_len:
                self.dropped += 1
                self.log("%s port: dropping %s, it stopped reading" % (self.name, c.peer))
                self._drop(c)
                continue
            try:
                c.queue.append(ref)
            except MemoryError:
                # What waits for this client is what fills the heap: let it go, not the telegram.
                memory.lost()
                self.dropped += 1
                self._drop(c)
                c.queue = []
                continue
            c.ready.set()

    def shed(self):
        """The heap is short: drop every client that has telegrams waiting (it fell behind)."""
        for c in self.clients:
            if c.queue and not c.gone:
                self.dropped += 1
                self.log("%s port: dropping %s, it fell behind and the memory is short" % (self.name, c.peer))
                self._drop(c)
                c.queue = []

    def _drop(self, c):
        # Ends the client's writer task; its clean-up closes the connection.
        if not c.gone:
            c.gone = True
            c.task.cancel()

    async def _serve(self, reader, writer):
        peer = _peer(writer)
        if len(self.clients) >= self.max_clients:
            self.refused += 1
            try:
                writer.write(b"p1dongle: too many clients (%d), try again later\r\n" % self.max_clients)
                await wait_for(writer.drain(), 2)
            except Exception:   # noqa: BLE001 - whatever the socket did, it is closed below
                pass
            await close_stream(writer)
            return
        small_send_buffer(writer)   # a client that stops reading shows in its queue within seconds
        c = _Client(writer, peer)
        self.clients.append(c)
        c.task = asyncio.create_task(self._pump(c))
        self.log("%s port: %s connected (%d clients)" % (self.name, peer, len(self.clients)))
        await self._listen(reader, c)

    async def _listen(self, reader, c):
        # Read what the client sends: "status" requests. End of stream means the client has gone:
        # a half-closed socket is indistinguishable from a closed one here, and keeping closed
        # ones until a write fails would let clients that come and go use up every slot.
        # Small reads and our own short line buffer: MicroPython's readline() would keep growing
        # for a client that never sends a newline, until the dongle runs out of memory.
        line = b""
        try:
            while not c.gone:
                data = await reader.read(64)
                if not data:
                    break
                line += data
                while b"\n" in line:
                    i = line.find(b"\n")
                    if line[:i].strip().lower() == b"status" and self.status is not None and not c.gone:
                        if len(c.queue) < self.queue_len:
                            c.queue.append((self.status() + "\r\n").encode())
                            c.ready.set()
                    line = line[i + 1:]
                if len(line) > 32:
                    line = b""              # no command is that long: noise, ignore it
        except Exception:   # noqa: BLE001 - a reset while reading
            self._drop(c)
            return
        # Closed by the client: send what is queued (a status reply), then close.
        c.closing = True
        c.ready.set()

    async def _pump(self, c):
        w = c.writer
        try:
            while True:
                while not c.queue and not c.busy:
                    if c.closing:
                        return
                    c.ready.clear()
                    await c.ready.wait()
                if not c.busy:
                    data = c.queue.pop(0)
                    if isinstance(data, int):
                        data = self.backlog.view(data)
                        if data is None:        # overwritten by newer telegrams: it fell behind
                            self.dropped += 1
                            self.log("%s port: dropping %s, it fell behind" % (self.name, c.peer))
                            return
                    c.busy = True
                    send(w, data)
                    data = None
                await w.drain()
                c.busy = False
        except Exception:   # noqa: BLE001 - reset, broken pipe, timeout: this client is gone
            pass
        finally:
            c.gone = True
            if c in self.clients:
                self.clients.remove(c)
            self.log("%s port: %s disconnected (%d clients)" % (self.name, c.peer, len(self.clients)))
            await close_stream(w)


def _peer(writer):
    # CPython gives (host, port); MicroPython's unix port a raw sockaddr: then just "a client".
    p = writer.get_extra_info("peername")
    if isinstance(p, tuple) and len(p) >= 2:
        return "%s:%s" % (p[0], p[1])
    return "a client"
