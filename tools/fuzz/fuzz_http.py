# The web server as a client meets it: httpd.HttpServer reading what the client sends (its
# request reader, limits, answers) with the dongle's own pages and API behind it (web.Web over
# an App that has a telegram), on an in-process connection: the bytes the client sent, then
# either nothing more (the client waits) or the client's close.
#
# Input: 1 byte, then what the client sends. The byte: bit 0 a web password is set (the
# client's Authorization is what it sends), bit 1 the pages are private too, bit 2 the dongle
# is its own access point (first setup: redirects), bit 3 a Luxembourg telegram came (else a
# DLMS meter's, with the readings the pipeline made).
# Oracles:
#   - no request ends in a 500 (the server's answer when a page raised: what it logged says
#     which exception) or an error of the server itself (server.errors)
#   - bytes that cannot begin a request line (a method starts with a letter: a TLS hello, noise)
#     are answered at once, not held until the client gives up or the timeout (15 s) ends them
#   - the answer, once the client has closed: one whenever it sent anything; HTTP/1.0, a status
#     the server knows, headers of one line each, Content-Length equal to the body (or no body,
#     to a HEAD), a JSON body where it says application/json
#   - no secret of the settings (key, passwords) in any answer, unless the request carries it
import asyncio
import copy
import re

import oracles
import seeds as corpus
from common import expect
from p1dongle import app as app_module
from p1dongle import config, httpd
from p1dongle.web import Web

DECLARED = ()
MAX_LEN = httpd.MAX_HEAD + httpd.MAX_BODY + 512

SECRETS_RAW = {"key": "AE4F1D0F8F0B5E7C1E0C2A33B4D5E6F7", "auth_key": "00112233445566778899AABBCCDDEEFF",
               "meter": "lux", "source": "tcp:127.0.0.1:3000",
               "wifi": {"ssid": "home", "password": "wifi-secret-1"},
               "mqtt": {"host": "127.0.0.1", "user": "p1", "password": "mqtt-secret-2"}}
PASSWORD = "web-secret-3"


class App(app_module.App):
    """The app behind the web page, without its loop: a change of settings is only noted."""

    def restart_soon(self):
        self.restarts = getattr(self, "restarts", 0) + 1


def _app(c):
    """An app that has had capture c's telegram (its pipeline opened with c's keys)."""
    a = App(config.check(SECRETS_RAW), None, log=_quiet)
    a.pipeline = type(a.pipeline)(c.key, c.auth, emit=a._event, layout="auto")
    a.pipeline.push(c.stream, 0)
    a.pipeline.flush(0)
    return a


_LUX = [c for c in corpus.captures() if c.name == "lux-gcm"][0]
_DLMS = [c for c in corpus.captures() if c.name == "mbus-gcm-2"][0]
_APPS = {}


class Client:
    """The client's end of the connection: what it sent, then it waits, or it closes."""

    def __init__(self, data):
        self.data = data
        self.i = 0
        self.closed = False
        self.blocked = asyncio.Event()         # the server wants more than the client sent
        self._more = None

    async def read(self, n):
        while self.i >= len(self.data) and not self.closed:
            self.blocked.set()
            self._more = asyncio.get_running_loop().create_future()
            await self._more
        chunk = self.data[self.i:self.i + n]
        self.i += len(chunk)
        return chunk

    def close(self):
        self.closed = True
        if self._more is not None and not self._more.done():
            self._more.set_result(None)


class Transport:
    def __init__(self):
        self.aborted = False

    def abort(self):
        self.aborted = True

    def get_write_buffer_size(self):
        return 0

    def set_write_buffer_limits(self, high=None, low=None):
        pass                                # (compat.flushed: everything is taken at once here)


class Writer:
    """The server's end: what it wrote."""

    def __init__(self):
        self.out = bytearray()
        self.transport = Transport()

    def write(self, data):
        self.out += data

    async def drain(self):
        pass

    def close(self):
        pass

    async def wait_closed(self):
        pass

    def get_extra_info(self, name):
        return None


async def exchange(server, data):
    """(held, answer bytes): whether the server waited for more than data, then what it wrote
    once the client closed."""
    client = Client(data)
    writer = Writer()
    task = asyncio.ensure_future(server._serve(client, writer))
    blocked = asyncio.ensure_future(client.blocked.wait())
    await asyncio.wait([task, blocked], return_when=asyncio.FIRST_COMPLETED)
    held = not task.done()
    client.close()
    await task
    blocked.cancel()
    return held, bytes(writer.out)


_LOOP = asyncio.new_event_loop()


def check(data):
    if not data:
        return
    mode, sent = data[0], data[1:]
    oracles.fresh()
    key = bool(mode & 8)
    if key not in _APPS:
        _APPS[key] = _app(_LUX if key else _DLMS)
    raw = copy.deepcopy(SECRETS_RAW)
    if mode & 1:
        raw["web_password"] = PASSWORD
    if mode & 2:
        raw["web_private"] = True
    logged = []
    web = Web(_APPS[key], config.Settings(raw, None), log=logged.append)
    if mode & 4:
        web.setup = "192.168.4.1"
    server = httpd.HttpServer(web.handle, log=logged.append, streams=web.http.streams)
    held, answer = _LOOP.run_until_complete(exchange(server, sent))
    first = sent.lstrip(b"\r\n")     # empty lines before a request line are allowed (RFC 9112 2.2)
    expect(not (held and first and not _letter(first[0])), "held",
           "the server waits for more after %r, which begins no request" % sent[:16])
    expect(server.errors == 0, "server", "the server's own error count went up: %s" % logged)
    if not sent:
        return
    expect(answer, "silent", "no answer to %d bytes" % len(sent))
    status, body = _parse(answer, sent)
    expect(status != 500, "500", "a page failed: %s" % "; ".join(logged))
    secrets = [s for s in _secrets(raw) if s.lower().encode() not in sent.lower()]
    oracles.no_secret(answer, secrets, "the answer")


def _letter(b):
    return 0x41 <= b <= 0x5A or 0x61 <= b <= 0x7A


_STATUS = re.compile(rb"HTTP/1\.0 (\d{3}) ([^\r\n]*)\Z")
_HEADER = re.compile(rb"([A-Za-z0-9-]+): ([^\r\n]*)\Z")


def _parse(answer, sent):
    """The answer's status and body; Finding when it is no well-formed HTTP/1.0 answer."""
    end = answer.find(b"\r\n\r\n")
    expect(end > 0, "answer", "an answer without the end of its head: %r" % answer[:80])
    lines = answer[:end].split(b"\r\n")
    m = _STATUS.match(lines[0])
    expect(m is not None, "answer", "a status line that is not HTTP/1.0: %r" % lines[0][:80])
    status = int(m.group(1))
    reasons = dict(httpd.REASONS)
    expect(status in reasons and m.group(2) == reasons[status].encode(), "answer",
           "status %d %r" % (status, m.group(2)))
    headers = {}
    for line in lines[1:]:
        h = _HEADER.match(line)
        expect(h is not None, "answer", "a header line %r" % line[:80])
        headers[h.group(1).lower()] = h.group(2)
    body = answer[end + 4:]
    head = sent[:5].upper() == b"HEAD " and not body      # a HEAD's answer: the head alone
    if b"content-length" in headers:
        size = int(headers[b"content-length"])
        expect(len(body) == size or head, "answer", "Content-Length %d, body %d bytes" % (size, len(body)))
    if headers.get(b"content-type", b"").startswith(b"application/json") and not head:
        oracles.document(body, "the answer's JSON body", "answer", kind=None)
    return status, body


def _secrets(raw):
    out = [raw["key"], raw["wifi"]["password"], raw["mqtt"]["password"]]
    if raw.get("web_password"):
        out.append(raw["web_password"])
    return out


def _quiet(*args):
    pass


def seeds():
    import base64
    import json
    auth = b"Authorization: Basic " + base64.b64encode(b"me:" + PASSWORD.encode()) + b"\r\n"
    body = json.dumps({"mqtt": {"host": "10.0.0.2"}, "tcp_port": 2323}).encode()
    backup = json.dumps(config.public(SECRETS_RAW)[0]).encode()
    requests = [
        b"GET / HTTP/1.1\r\nHost: p1dongle.local\r\n\r\n",
        b"GET /settings HTTP/1.1\r\nHost: 192.168.4.1\r\n\r\n",
        b"GET /style.css HTTP/1.0\r\n\r\n",
        b"HEAD /api/status HTTP/1.0\r\n\r\n",
        b"GET /api/status HTTP/1.0\r\n\r\n",
        b"GET /api/settings HTTP/1.0\r\n" + auth + b"\r\n",
        b"GET /api/backup HTTP/1.0\r\n" + auth + b"\r\n",
        b"GET /api HTTP/1.1\r\nHost: 10.0.0.5\r\n\r\n",
        b"GET /api/v1/data HTTP/1.1\r\nHost: 10.0.0.5\r\n\r\n",
        b"GET /api/v1/telegram HTTP/1.1\r\n\r\n",
        b"GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n\r\n",
        b"GET /nothing?x=1 HTTP/1.1\r\n\r\n",
        b"DELETE /api/settings HTTP/1.1\r\n\r\n",
        b"POST /api/settings HTTP/1.1\r\nContent-Type: application/json\r\n" + auth
        + b"Content-Length: %d\r\n\r\n" % len(body) + body,
        b"POST /api/restore HTTP/1.1\r\nContent-Type: application/json\r\n" + auth
        + b"Content-Length: %d\r\n\r\n" % len(backup) + backup,
        b"POST /api/settings HTTP/1.1\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\n{}",
        b"POST /api/settings HTTP/1.1\r\nContent-Length: 10\r\n\r\n{}",
        b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03",                   # a TLS hello
        b"GET / HTTP/1.1\r\nHost: x\r\n",                                   # a half request
    ]
    return [bytes([m]) + r for r in requests for m in (0, 1 | 8, 2 | 4)]
