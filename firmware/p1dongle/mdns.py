# The dongle found by itself on the home network: multicast DNS (RFC 6762) with DNS-SD (RFC 6763).
# Home Assistant's HomeWizard integration and Zendure batteries browse _hwenergy._tcp for a
# HomeWizard P1 meter; Marstek's app and Home Assistant's Shelly integration browse _shelly._tcp
# (and _http._tcp for names shelly*) for a Shelly Pro 3EM (the Shelly face, shelly.py). A browser
# opens http://p1dongle-XXXX.local/.
#
# MicroPython's own responder (ESP-IDF's) announces the host name and nothing else, and holds the
# port: the p1dongle image is built without it (boards/*/mpconfigboard.h), and this one answers
# for the host name and the services. On a stock image the dongle is found by its address only.
#
# What it answers, to a query on 224.0.0.251:5353 (one message may ask several questions):
#   PTR  _hwenergy._tcp.local (and the Shelly face's types)  -> the service: PTR, SRV, TXT, A
#   SRV/TXT/ANY  <instance>.<type>.local                     -> SRV, TXT, A
#   A/ANY  <host>.local                                      -> A
#   PTR  _services._dns-sd._udp.local                        -> a PTR per service type
# The answer goes to the group, to the asker's port when it asked for a unicast answer (QU), and
# as a legacy unicast answer (the query's id, its questions, a 10 s TTL) to a querier that did not
# ask from port 5353 (RFC 6762 6.7: `dig -p 5353 @224.0.0.251`). The records are announced twice
# when the dongle gets its address, and withdrawn (TTL 0) when the app stops. Not done: probing
# for a name in use (the names carry the MAC's digits), known-answer suppression (an answer too
# many is allowed), IPv6.
#
# Answers are written into one buffer made once; a question read is a few small strings.
import errno
import socket
import sys

from . import udp
from .compat import MICROPYTHON, const, sleep_ms
from .output import Output

GROUP = "224.0.0.251"
PORT = const(5353)
TTL = const(120)           # seconds, for every record (RFC 6762 10: 120 s for those naming a host)
_LEGACY_TTL = const(10)    # a legacy unicast answer's (RFC 6762 6.7)
_MAX = const(512)          # a datagram's bytes at most, in and out (one service's records and the
                           # host's: ~400 B; the questions come first in a query, the rest can go)
_WATCH_MS = const(5000)    # how often the address is looked at (the dongle's Wi-Fi comes and goes)
_A = const(1)
_PTR = const(12)
_TXT = const(16)
_SRV = const(33)
_ANY = const(255)
_FLUSH = const(0x8000)     # the cache-flush bit of a record only we answer for (RFC 6762 10.2)
_SERVICES = "_services._dns-sd._udp.local"
# The socket options by the socket module's names, else Linux's numbers on Linux (MicroPython's
# unix port names few of them); the ESP32's lwIP has other numbers, and only its module's names
_LINUX = sys.platform == "linux"
_IPPROTO_IP = getattr(socket, "IPPROTO_IP", 0)
_IP_ADD_MEMBERSHIP = getattr(socket, "IP_ADD_MEMBERSHIP", 35 if _LINUX else None)
_IP_MULTICAST_IF = getattr(socket, "IP_MULTICAST_IF", 32 if _LINUX else None)     # the answers
_IP_MULTICAST_TTL = getattr(socket, "IP_MULTICAST_TTL", 33 if _LINUX else None)   # leave by the
_SO_REUSEPORT = getattr(socket, "SO_REUSEPORT", 15 if _LINUX else None)           # dongle's address


def service(kind, instance, port, data):
    """One DNS-SD service (a tuple: smaller than an object): its type ("_hwenergy._tcp.local"),
    its instance's full name, port, TXT record's data (made by txt())."""
    kind += ".local"
    return kind, instance + "." + kind, port, data


_KIND, _NAME, _PORT, _TXT_DATA = 0, 1, 2, 3


def services(cfg, serial, shelly_id=None):
    """The services the settings offer: HomeWizard's on the web port; the Shelly face's (shelly_id:
    its device id) when it is on. The same list make() announces and the tests check."""
    found = []
    if cfg.get("http_port"):
        found.append(service("_hwenergy._tcp", label(cfg["device_id"]), cfg["http_port"], txt((
            ("api_enabled", "1"), ("path", "/api/v1"), ("serial", serial),
            ("product_type", "HWE-P1"), ("product_name", "P1 meter")))))
        if shelly_id:
            from . import shelly
            data = txt(shelly.mdns_txt(serial))
            found.append(service("_shelly._tcp", shelly_id, cfg["http_port"], data))
            found.append(service("_http._tcp", shelly_id, cfg["http_port"], data))
    return found


def make(view):
    cfg = view.cfg
    if not cfg.get("mdns"):
        return ()
    shelly_id = None
    if cfg.get("shelly"):
        from . import shelly
        shelly_id = shelly.device_id(view.serial)
    return (Responder(label(cfg["device_id"]) + ".local", services(cfg, view.serial, shelly_id),
                      lambda: _address(view), view.log),)


def label(name):
    """The dongle's name (device_id: any 64 characters) as one DNS label: letters, digits and '-',
    63 at most (a host name's; a dot would make it several labels), else p1dongle."""
    out = "".join(c for c in name if "a" <= c.lower() <= "z" or "0" <= c <= "9" or c == "-")[:63].strip("-")
    return out or "p1dongle"


def _address(view):
    # the address to announce: the dongle's on its Wi-Fi (the platform's info), else the one the
    # settings serve on when it is one address (a PC)
    ip = view.info().get("ip") if view.info else None
    if ip:
        return ip
    host = view.cfg.get("host")
    return host if host and host != "0.0.0.0" else None


def lookup(host, timeout_s=2):
    """The IPv4 address of a .local name (the MQTT broker's, homeassistant.local), asked of the
    network as a legacy unicast query (RFC 6762 6.7: any responder answers it to the asker): the
    p1dongle image has no other way to it, its firmware's mDNS being off. None when nobody
    answers in time. It blocks (timeout_s at most), as every name lookup on MicroPython does:
    callers do it once."""
    import os
    host = host.rstrip(".").lower()
    qid = os.urandom(2)                 # (an answer to another query is not taken for this one's)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout_s / 4)
        s.sendto(qid + b"\x00\x00\x00\x01" + bytes(6) + _name(host) + b"\x00\x01\x00\x01",
                 socket.getaddrinfo(GROUP, PORT)[0][-1])
        for _ in range(4):              # (other answers may come first)
            found = address_in(s.recv(_MAX), host, qid)
            if found:
                return found
    except (OSError, ValueError):
        pass                            # nobody answered in time; a name not to be asked
    finally:
        s.close()
    return None


def address_in(msg, host, qid):
    """The A record's address for host (lower case) in a DNS response to query qid, or None."""
    if len(msg) < 12 or msg[0:2] != qid or not msg[2] & 0x80:
        return None
    i = 12
    for _ in range((msg[4] << 8) | msg[5]):         # the questions, repeated
        name, i = read_name(msg, i)
        if name is None:
            return None
        i += 4
    for _ in range((msg[6] << 8) | msg[7]):
        name, i = read_name(msg, i)
        if name is None or i + 10 > len(msg):
            return None
        kind = (msg[i] << 8) | msg[i + 1]
        size = (msg[i + 8] << 8) | msg[i + 9]
        i += 10
        if kind == _A and size == 4 and name == host and i + 4 <= len(msg):
            return "%d.%d.%d.%d" % (msg[i], msg[i + 1], msg[i + 2], msg[i + 3])
        i += size
    return None


def questions(msg):
    """The questions of an mDNS query: [(name in lower case, type, wants unicast)] and where they
    end; None for what is not a query (a response, another opcode) or is cut short."""
    n = len(msg)
    if n < 12 or msg[2] & 0xF8:
        return None                     # QR set (a response) or an opcode other than QUERY
    asked = []
    i = 12
    for _ in range((msg[4] << 8) | msg[5]):
        name, i = read_name(msg, i)
        if name is None or i + 4 > n:
            return None
        asked.append((name, (msg[i] << 8) | msg[i + 1], bool(msg[i + 2] & 0x80)))
        i += 4
    return asked, i


def read_name(msg, i):
    """The name at msg[i:] in lower case, compression pointers followed, and the index after it;
    (None, 0) for one that is malformed. Pointers only go back, so a run of them ends, and a loop
    through labels grows the name past its 255 bytes, where the reading stops."""
    labels = []  # type: list
    end = None
    size = 0
    while i < len(msg):
        n = msg[i]
        if n == 0:
            return ".".join(labels), (i + 1 if end is None else end)
        if n & 0xC0 == 0xC0:
            if i + 1 >= len(msg):
                break
            to = ((n & 0x3F) << 8) | msg[i + 1]
            if to >= i:
                break                   # a pointer forward (or to itself) could loop
            if end is None:
                end = i + 2
            i = to
            continue
        if n > 63 or i + 1 + n > len(msg):
            break
        size += n + 1
        if size > 255:
            break
        try:
            labels.append(bytes(msg[i + 1:i + 1 + n]).decode().lower())
        except UnicodeError:
            break
        i += 1 + n
    return None, 0


class Responder(Output):
    name = "mdns"

    def __init__(self, host, offered, address, log=print, port=PORT):
        self.host = host                # "p1dongle-ab12.local"
        self.offered = offered          # [service()]
        self.address = address          # () -> the dongle's IPv4 address, or None while it has none
        self.log = log
        self.port = port                # 5353; another in tests that cannot have it
        self.sock = None
        self.group = None
        self.joined = None              # the address the group was joined on
        self._failed = None             # the address it could not be joined on (said once)
        self.answered = 0
        self.ignored = 0
        self._out = bytearray(_MAX)

    async def start(self, host):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if _SO_REUSEPORT is not None:
                s.setsockopt(socket.SOL_SOCKET, _SO_REUSEPORT, 1)   # beside avahi on a PC
            s.bind(socket.getaddrinfo("0.0.0.0", self.port)[0][-1])
        except OSError as e:
            # the port held by a responder that does not share it (a stock image's own): the
            # dongle is then found by its address; everything else runs on
            s.close()
            self.log("mdns: port %d: %r: not announced" % (self.port, e))
            return
        s.setblocking(False)
        self.sock = s
        self.group = socket.getaddrinfo(GROUP, PORT)[0][-1]
        self._join()

    def tasks(self):
        if self.sock is None:
            return ()
        return (udp.serve(self.sock, self._reply, self, _MAX, "mdns", self.log), self._watch())

    def start_part(self):
        return "mdns %s" % self.host

    def count(self, d):
        d["mdns_answered"] = self.answered

    async def stop(self):
        if self.sock is None:
            return
        try:
            if self.joined:
                self._send_all(0)       # goodbye
        except (OSError, ValueError):
            pass
        self.sock.close()
        self.sock = None

    def _each(self, wanted):
        # wanted (bits of _wanted) as one answer per service, each with the host's A when it is
        # wanted: every one fits a datagram of _MAX
        host = wanted & 1
        alone = True
        for k in range(len(self.offered)):
            bits = wanted & (15 << (1 + 4 * k))
            if bits:
                alone = False
                yield bits | host
        if alone and host:
            yield 1

    def _all(self):
        return (1 << (1 + 4 * len(self.offered))) - 1

    def _send_all(self, ttl=TTL):
        for bits in self._each(self._all()):
            self._send(self._answer(None, 0, bits, ttl), self.group)

    def _join(self):
        # the group on the interface of the dongle's address, once it has one (before Wi-Fi has
        # joined, the ESP32 has no interface to join it on)
        ip = self.address()
        if ip is None or ip == self.joined:
            return False
        try:
            here = _ip_bytes(ip)
            self.sock.setsockopt(_IPPROTO_IP, _IP_ADD_MEMBERSHIP, _ip_bytes(GROUP) + here)
            if _IP_MULTICAST_IF is not None:
                self.sock.setsockopt(_IPPROTO_IP, _IP_MULTICAST_IF, here)
            if _IP_MULTICAST_TTL is not None:
                self.sock.setsockopt(_IPPROTO_IP, _IP_MULTICAST_TTL, 255)   # RFC 6762 11
        except OSError as e:
            if e.errno != errno.EADDRINUSE:    # joined on it before (the same address again)
                if ip != self._failed:
                    self.log("mdns: cannot join %s on %s: %r" % (GROUP, ip, e))
                self._failed = ip
                return False
        self.joined = ip
        return True

    async def _watch(self):
        # a new address: joined on it and announced, twice a second apart (RFC 6762 8.3)
        while True:
            if self._join():
                for _ in range(2):
                    try:
                        self._send_all()
                    except (OSError, ValueError) as e:
                        self.log("mdns: announce: %r" % e)
                    await sleep_ms(1000)
            await sleep_ms(_WATCH_MS)

    def _reply(self, sock, msg, peer):
        # True when msg was a query (answered when it asked for something of ours)
        asked = questions(msg)
        if asked is None or self.joined is None:
            return False
        asked, end = asked
        legacy = _port_of(peer) != PORT     # legacy unicast: its id and questions back, short TTLs
        if legacy and end > 128:
            return False                # questions that would leave no room for the answers; ours
                                        # are shorter
        wanted = 0
        unicast = True
        for name, kind, qu in asked:
            wanted |= self._wanted(name, kind)
            unicast = unicast and qu
        if not wanted:
            return True                 # another device's name: not ours to answer
        for bits in self._each(wanted):
            if legacy:
                self._send(self._answer(msg, end, bits, _LEGACY_TTL), peer)
            else:
                self._send(self._answer(None, 0, bits), peer if unicast else self.group)
        self.answered += 1
        return True

    def _wanted(self, name, kind):
        # the records a question asks for, as bits: 1 << 0 the host's A; for service k, 1 << (1 +
        # 4k) its PTR, 2 + 4k its SRV, 3 + 4k its TXT, 4 + 4k its type's PTR in the type list
        bits = 0
        if name == self.host.lower() and kind in (_A, _ANY):
            bits |= 1
        for k, s in enumerate(self.offered):
            at = 1 + 4 * k
            if name == s[_KIND].lower() and kind in (_PTR, _ANY):
                bits |= 7 << at | 1      # its PTR, SRV, TXT and the A
            elif name == s[_NAME].lower() and kind in (_SRV, _TXT, _ANY):
                bits |= 6 << at | 1      # its SRV, TXT and the A
            elif name == _SERVICES and kind in (_PTR, _ANY):
                bits |= 8 << at
        return bits

    def _answer(self, query, end, wanted, ttl=TTL):
        """The answer (a view of the buffer) with the records wanted (bits of _wanted; all of them:
        1 + 4 * services ones); a legacy answer (query given) repeats its id and questions."""
        out = self._out
        legacy = query is not None
        out[0:12] = bytes(12)
        if legacy:
            out[0:2] = query[0:2]
            out[4:6] = query[4:6]
            out[12:end] = query[12:end]
        else:
            end = 12
        out[2] = 0x84                   # a response, authoritative
        flush = 0 if legacy else _FLUSH
        ip = _ip_bytes(self.joined)
        i = end
        count = 0
        written = {}  # type: dict
        for k, s in enumerate(self.offered):
            at = 1 + 4 * k
            kind, name, port, data = s
            if wanted >> at & 1:
                i = _record(out, i, kind, _PTR, 0, ttl, name, written)
                count += 1
            if wanted >> (at + 1) & 1:
                # (the SRV's target uncompressed, as RFC 2782 asks of it)
                i = _record(out, i, name, _SRV, flush, ttl,
                            bytes((0, 0, 0, 0, port >> 8, port & 255)) + _name(self.host), written)
                count += 1
            if wanted >> (at + 2) & 1:
                i = _record(out, i, name, _TXT, flush, ttl, data, written)
                count += 1
            if wanted >> (at + 3) & 1:
                i = _record(out, i, _SERVICES, _PTR, 0, ttl, kind, written)
                count += 1
        if wanted & 1:
            i = _record(out, i, self.host, _A, flush, ttl, ip, written)
            count += 1
        out[6] = count >> 8
        out[7] = count & 255
        return memoryview(out)[:i]

    def _send(self, data, to):
        self.sock.sendto(data if MICROPYTHON else bytes(data), to)


def _record(out, i, name, kind, flush, ttl, data, written):
    """A resource record at out[i:]: name, type, class IN, TTL, data (bytes, or a name: a PTR's);
    the index after it. A name written before in this answer (written: name -> offset) is a
    pointer to it (RFC 1035 4.1.4): the whole announcement fits one datagram."""
    i = _put_name(out, i, name, written)
    at = i
    _put(out, i, bytes((kind >> 8, kind & 255, (1 | flush) >> 8, 1, ttl >> 24 & 255, ttl >> 16 & 255,
                        ttl >> 8 & 255, ttl & 255, 0, 0)))
    i += 10
    if isinstance(data, str):
        end = _put_name(out, i, data, written)
    else:
        end = _put(out, i, data)
    out[at + 8] = (end - i) >> 8
    out[at + 9] = (end - i) & 255
    return end


def _put_name(out, i, name, written):
    if name in written:
        at = written[name]
        return _put(out, i, bytes((0xC0 | at >> 8, at & 255)))
    if i < 0x3FFF:
        written[name] = i
    return _put(out, i, _name(name))


def _put(out, i, data):
    if i + len(data) > len(out):
        raise ValueError("an mDNS answer too long")    # (a slice past the end would grow it)
    out[i:i + len(data)] = data
    return i + len(data)


def _name(dotted):
    # "p1dongle-ab12.local" -> b"\x0dp1dongle-ab12\x05local\x00"
    out = b""
    for label in dotted.split("."):
        b = label.encode()
        out += bytes((len(b),)) + b
    return out + b"\x00"


def txt(items):
    """A TXT record's data: each "key=value" after its length."""
    out = b""
    for key, value in items:
        b = (key + "=" + value).encode()
        out += bytes((len(b),)) + b
    return out


def _ip_bytes(ip):
    return bytes(int(part) for part in ip.split("."))


def _port_of(peer):
    # (address, port) on CPython and the ESP32; a raw sockaddr_in on MicroPython's unix port
    if isinstance(peer, tuple):
        return peer[1]
    return (peer[2] << 8) | peer[3]
