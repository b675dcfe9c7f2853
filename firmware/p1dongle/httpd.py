# A small HTTP/1.0 server on asyncio, for the dongle's web page and local API (web.py).
#
# Why not microdot: it was measured in `make soak` on the dongle twin. Its import alone holds
# 6.5 KB of the heap (its classes, their dicts), a request a few KB more; with it the whole app
# ran at 65 KB live in the 96 KB budget, and the heap, too broken up for the next telegram's
# 1.2 KB, cost 4 telegrams a minute. With this one the whole web side (server, pages, API) holds
# 3.5 KB: it reads only what the dongle's pages and API need (the request line, Host,
# Authorization, Content-Length, Content-Type; a body up to 4 KB) and writes answers a piece at a time, so no
# request needs a large block of the heap.
#
#   server = HttpServer(handle)         handle(request) -> Response, called for every request
#   await server.start(host, port)      server.port: the port it listens on
#
# One request per connection (Connection: close). At most max_connections at a time, each given
# timeout_s to be read and answered: a client that stalls or resets ends only its own request,
# never the meter side or the others. When all are taken, a new connection makes the oldest one
# that has not sent its request yet give way (a browser's speculative connection, a stalled
# client); when every one is being answered, the new one is closed at once. A request that is not HTTP, or
# too large, gets 400/413/431 and its connection closed; one whose first bytes cannot begin a
# request line (a TLS hello) gets its 400 as soon as they come.
import asyncio

from . import memory
from .compat import close_stream, flushed, listening_port, send, small_send_buffer, wait_for
from .tables import pick

MAX_HEAD = 2048         # the request line and headers (a phone's browser sends ~500 bytes)
_WRITE = 512            # a page is written this much at a time (see finish_response)
_READ = 256             # a read of the head: each is a new block of this size, which a heap broken up
                        # by everything else finds more easily than one of 512 (make soak lost requests)
MAX_BODY = 4096         # settings, a backup
_KEEP = ("host", "authorization", "content-length", "content-type", "x-sha256", "upgrade", "sec-websocket-key",
         "origin")
MAX_SESSIONS = 1        # upgraded connections (a WebSocket: 1.5 KB of the heap each) at a time, beside
                        # max_connections: Home Assistant keeps one; a new one makes the oldest give
                        # way (a half-open one, its client gone with the Wi-Fi, would hold it)
REASONS = ((200, "OK"), (302, "Found"), (400, "Bad Request"), (401, "Unauthorized"), (403, "Forbidden"),
           (404, "Not Found"), (405, "Method Not Allowed"), (409, "Conflict"), (411, "Length Required"),
           (413, "Payload Too Large"), (415, "Unsupported Media Type"), (431, "Request Header Fields Too Large"),
           (500, "Internal Server Error"), (503, "Service Unavailable"))


class Request:
    def __init__(self, method, path, query, headers, body):
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers          # lower-case names: host, authorization, content-length,
                                        # content-type
        self.body = body


class Response:
    """body: bytes (or a memoryview: sent without a copy), str, or a generator of str/bytes pieces
    (sent as they come, without a Content-Length). session: the coroutine function (reader,
    writer) that takes over the connection (an upgrade: it writes its own 101 answer), for as long
    as it likes."""

    def __init__(self, body=b"", status=200, content_type="text/plain; charset=utf-8", headers=None,
                 session=None):
        self.body = body
        self.status = status
        self.content_type = content_type
        self.headers = headers
        self.session = session


def redirect(location):
    return Response(b"", 302, headers={"Location": location})


class Body:
    """A streamed request's body (HttpServer streams=...): what came with the head first, then the
    connection; read(n) and readinto(buf) as a stream's (compat.stream_readinto reads it)."""

    def __init__(self, reader, first):
        self.reader = reader
        self.first = first

    async def read(self, n):
        if self.first:
            piece, self.first = self.first[:n], self.first[n:]
            return piece
        return await self.reader.read(n)

    async def readinto(self, buf):
        if self.first:
            k = min(len(buf), len(self.first))
            buf[:k] = self.first[:k]
            self.first = self.first[k:]
            return k
        return await self.reader.readinto(buf)


class HttpServer:
    def __init__(self, handle, max_connections=3, timeout_s=15, log=print, streams=()):
        """streams: the (method, path) whose body is not read into the request (an update of a
        megabyte): the request's body is a Body, handle() returns a coroutine that reads it and
        gives the Response; it sets its own pace and timeouts."""
        self.handle = handle
        self.streams = streams
        self.max_connections = max_connections
        self.timeout_s = timeout_s
        self.log = log
        self.server = None
        self.port = None
        self.connections = 0
        self.refused = 0                # connections closed at once: max_connections were busy
        self.gave_way = 0               # connections closed before their request for a new one
        self._waiting = []              # the tasks of connections yet to send their request,
                                        # oldest first
        self.errors = 0                 # requests that ended without their answer (one lost
                                        # for want of heap is counted by memory.lost())
        self._sessions = []             # the tasks of upgraded connections (outside max_connections)

    async def start(self, host, port):
        self.server = await asyncio.start_server(self._serve, host, port)
        self.port = listening_port(self.server, port)

    async def stop(self):
        for task in self._sessions:
            task.cancel()               # (a WebSocket would keep the server's connections open)
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
            self.server = None

    async def _serve(self, reader, writer):
        small_send_buffer(writer)       # as lwIP's on the dongle: a few KB (a PC's takes megabytes)
        if self.connections >= self.max_connections:
            if not self._waiting:
                self.refused += 1
                await close_stream(writer)
                return
            self.gave_way += 1
            self._waiting.pop(0).cancel()   # its own finally closes it
        task = asyncio.current_task()
        self.connections += 1
        self._waiting.append(task)
        try:
            await self._exchange(reader, writer, task)
        except MemoryError:             # this request is lost; the meter side never noticed
            memory.lost(self.log, "web: out of memory, a request lost")
        except Exception:   # noqa: BLE001 - a client that stalled or reset: its request only
            self.errors += 1
        finally:
            self.connections -= 1
            if task in self._waiting:
                self._waiting.remove(task)
            await close_stream(writer)

    async def _exchange(self, reader, writer, task):
        req = await wait_for(read_request(reader, self.streams), self.timeout_s)
        if task in self._waiting:
            self._waiting.remove(task)  # asked: it is answered, whoever comes next
        if req is None:
            return                      # closed before it asked anything
        if isinstance(req, Response):
            res, head_only = req, False
        else:
            try:
                res = self.handle(req)
                if hasattr(res, "send"):
                    res = await res     # a streamed request's handler
            except MemoryError:
                raise
            except Exception as e:   # noqa: BLE001 - a bug in one page must not end the server
                self.log("web: %s %s failed: %r" % (req.method, req.path, e))
                res = Response("internal error\n", 500)
            head_only = req.method == "HEAD"
        # The head, and a body that is a view of a buffer written again (the outputs' backlog), go
        # to the stream now: MicroPython's wait_for runs what it waits for as a task of its own,
        # and the RX task could put a newer telegram where the view points before that task ran.
        if res.session is not None:
            session = res.session
            req = res = None            # (not held for as long as the session lasts)
            await self._session(reader, writer, session, task)
            return
        body = start_response(writer, res, head_only)
        await wait_for(finish_response(writer, body, head_only), self.timeout_s)

    async def _session(self, reader, writer, session, task):
        # an upgraded connection (its 101 answer is in the session's hands): no longer one of the
        # requests max_connections bounds, nor under their timeout
        if len(self._sessions) >= MAX_SESSIONS:
            self._sessions.pop(0).cancel()
        self._sessions.append(task)
        self.connections -= 1
        try:
            await session(reader, writer)
        finally:
            if task in self._sessions:
                self._sessions.remove(task)
            self.connections += 1       # (taken off again by _serve's finally)


async def read_request(reader, streams=()):
    """The next request on the stream: a Request, a Response saying what is wrong with it, or None
    when the client closed without sending one. A request for one of streams gets its body as a
    Body to read."""
    head = b""
    while True:
        end = head.find(b"\r\n\r\n")
        if end >= 0:
            break
        if len(head) > MAX_HEAD:
            return Response("request too large\n", 431)
        chunk = await reader.read(_READ)
        if not chunk:
            return None if not head else Response("incomplete request\n", 400)
        head += chunk
        if not _may_be_request(head):
            return Response("not an HTTP request\n", 400)     # now: nothing more could make it one
    body = head[end + 4:]
    try:
        lines = head[:end].decode().split("\r\n")
        method, target, version = lines[0].split(" ")
        headers = {}
        for line in lines[1:]:
            colon = line.find(":")
            name = line[:colon].strip().lower()
            if colon > 0 and name in _KEEP:
                headers[name] = line[colon + 1:].strip()
        length = int(headers.get("content-length") or "0")
    except (UnicodeError, ValueError):
        return Response("not an HTTP request\n", 400)
    if not version.startswith("HTTP/") or length < 0:
        return Response("not an HTTP request\n", 400)
    q = target.find("?")
    path, query = (target[:q], target[q + 1:]) if q >= 0 else (target, "")
    method = method.upper()
    if (method, path) in streams:
        return Request(method, path, query, headers, Body(reader, body[:length]))
    if length > MAX_BODY:
        return Response("request too large\n", 413)
    while len(body) < length:
        chunk = await reader.read(length - len(body))
        if not chunk:
            return Response("incomplete request\n", 400)
        body += chunk
    return Request(method, path, query, headers, body[:length])


def _may_be_request(head):
    """False once the first bytes cannot begin a request line (METHOD SP TARGET SP HTTP/x.y, in
    printable ASCII): a TLS hello (0x16 0x03...), say, which would otherwise be held until the
    timeout for the blank line that never comes (Home Assistant's HomeWizard setup waits for it)."""
    nl = head.find(b"\n")
    line = head[:nl] if nl >= 0 else head
    if nl >= 0 and line[-1:] == b"\r":
        line = line[:-1]
    for b in line:
        if not 32 <= b < 127:
            return False
    space = line.find(b" ")
    if not (line[:space] if space >= 0 else line).isalpha():
        return False                    # a method is a word (GET, POST, HEAD...)
    return nl < 0 or line.count(b" ") == 2 and line[line.rfind(b" ") + 1:].startswith(b"HTTP/")


def start_response(writer, res, head_only=False):
    """Hand the head to the stream, and a body that is a view of a buffer written again (the
    outputs' backlog) with it: nothing here waits, so nothing can write that buffer first (what
    the socket does not take at once the stream copies). Returns the body for finish_response."""
    body = res.body
    if isinstance(body, str):
        body = body.encode()
    lines = ["HTTP/1.0 %d %s" % (res.status, pick(REASONS, res.status, "")),
             "Content-Type: " + res.content_type, "Connection: close"]
    if isinstance(body, (bytes, bytearray, memoryview)):
        lines.append("Content-Length: %d" % len(body))
    if res.headers:
        for name in res.headers:
            lines.append("%s: %s" % (name, res.headers[name]))
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    if isinstance(body, (bytearray, memoryview)) and len(body) and not head_only:
        send(writer, body)
    return body


async def finish_response(writer, body, head_only=False):
    """The rest of an answer start_response began: a page a piece at a time, a generator's pieces
    as they come; done once the socket took it all."""
    if head_only or body is None or isinstance(body, (bytearray, memoryview)):
        pass                            # start_response handed over all there is
    elif isinstance(body, bytes):
        # A page (bytes frozen into flash) a piece at a time: what the socket does not take at
        # once the stream copies, and lwIP takes about 5.7 KB, so the 9.6 KB settings page whole
        # would leave a block of 4 KB to find in the heap.
        await writer.drain()
        view = memoryview(body)
        for i in range(0, len(body), _WRITE):
            writer.write(view[i:i + _WRITE])
            await writer.drain()
    else:
        await writer.drain()
        for piece in body:
            writer.write(piece.encode() if isinstance(piece, str) else piece)
            await writer.drain()
    await flushed(writer)
