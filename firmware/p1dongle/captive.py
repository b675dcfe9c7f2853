# The first setup's captive portal: while the dongle is its own access point (p1dongle-XXXX), a
# phone that joins it asks DNS for its connectivity check (connectivitycheck.gstatic.com,
# captive.apple.com, www.msftconnecttest.com...); every name is answered with the dongle's own
# address, and the web server answers the check's URL with a redirect to the settings page, which
# makes the phone open it by itself (web.PROBES). Imported only while the access point is up.
#
# DNS (RFC 1035) as far as this needs it: a standard query (QR 0, opcode 0) for one name gets a
# response with the question and, for type A (or ANY) class IN, one A record; other types get an
# answer-less NOERROR, anything else no reply (a name over 255 bytes or a label over 63 too: echoed,
# they would make a reply no resolver reads). Responses are made in one buffer kept for good.
import socket

from . import udp

TTL = 60          # seconds; short, so that a phone asks again once the dongle has joined Wi-Fi
_MAX = 512        # a DNS message over UDP
_NAME = 255       # a name's bytes at most, its lengths and the root's zero included (RFC 1035 2.3.4)


def answer(query, ip, out=None):
    """The response to a DNS query (bytes-like) naming ip (dotted quad), as bytes, or None when
    the query is not one to answer (a response, another opcode, several questions, cut short)."""
    n = len(query)
    if n < 12 or query[2] & 0xF8 or query[4] != 0 or query[5] != 1:
        return None                     # QR=1 or opcode!=0, or QDCOUNT != 1
    i = 12
    while True:                         # the name: labels up to a zero length
        if i >= n or i - 12 >= _NAME:
            return None                 # cut short, or no room left for the root's zero
        size = query[i]
        if size == 0:
            i += 1
            break
        if size > 63:
            return None                 # a label is 63 bytes at most; and no compression in a question
        i += 1 + size
    if i + 4 > n:
        return None
    qtype = (query[i] << 8) | query[i + 1]
    qclass = (query[i + 2] << 8) | query[i + 3]
    question_end = i + 4
    address = bytes(int(part) for part in ip.split("."))
    with_a = qclass in (1, 255) and qtype in (1, 255)
    out = out if out is not None else bytearray(_MAX)
    size = question_end + (16 if with_a else 0)
    if size > len(out):
        return None
    out[0:2] = query[0:2]               # the query's id
    out[2] = 0x84 | (query[2] & 0x01)   # QR, AA, the query's RD
    out[3] = 0x80                       # RA, NOERROR
    out[4:6] = b"\x00\x01"              # one question
    out[6:8] = b"\x00\x01" if with_a else b"\x00\x00"
    out[8:12] = b"\x00\x00\x00\x00"
    out[12:question_end] = query[12:question_end]
    if with_a:
        # the name by pointer to the question (0xC00C), type A, class IN, TTL, 4 bytes
        out[question_end:size] = b"\xc0\x0c\x00\x01\x00\x01" + bytes([0, 0, TTL >> 8, TTL & 255, 0, 4]) + address
    return bytes(out[:size])


class DnsResponder:
    """Answers every DNS query on host:port (53 on the dongle) with ip. Counts what it answered
    and what it could not read; a bad packet never stops it."""

    def __init__(self, ip, log=print):
        self.ip = ip
        self.log = log
        self.answered = 0
        self.ignored = 0
        self.sock = None
        self.port = None
        self._out = bytearray(_MAX)

    def open(self, host="0.0.0.0", port=53):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(socket.getaddrinfo(host, port)[0][-1])
        s.setblocking(False)
        self.sock = s
        self.port = s.getsockname()[1] if hasattr(s, "getsockname") else port
        return self

    def serve(self):
        return udp.serve(self.sock, self._answer, self, _MAX, "dns", self.log)

    def _answer(self, sock, query, peer):
        reply = answer(query, self.ip, self._out)
        if reply is None:
            return False
        sock.sendto(reply, peer)
        self.answered += 1
        return True

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None
