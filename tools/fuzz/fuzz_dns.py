# The first setup's DNS responder (captive.answer): a datagram that came to port 53 -> the reply
# sent back, or none. With one reply buffer for every query, as DnsResponder keeps it.
#
# Input: the datagram (what recvfrom(512) gives).
# Oracles (RFC 1035, read by dnspython, a real DNS library, not by captive's own code):
#   - no exception
#   - a reply only to a standard query (QR 0, opcode 0) with one question, and then one
#     dnspython reads: the query's id, QR, AA, RD as asked, NOERROR, the question as asked, and
#     for type A or ANY of class IN or ANY the one A record of the dongle's address (TTL
#     captive.TTL), else no answer; at most 512 bytes
#   - every standard query for one name that dnspython reads (and that writes its name without
#     compression, as resolvers do) gets its reply: a phone must find the dongle
import dns.exception
import dns.flags
import dns.message
import dns.name
import dns.opcode
import dns.rcode
import dns.rdatatype

from common import Finding, expect
from p1dongle import captive

DECLARED = ()
MAX_LEN = 512
IP = "192.168.4.1"
_OUT = bytearray(512)


def question(q):
    """(name bytes as written, qtype, qclass) of the datagram's first question, or None when it is
    cut short or compressed."""
    i = 12
    while i < len(q):
        size = q[i]
        if size == 0:
            if i + 5 > len(q):
                return None
            return bytes(q[12:i + 1]), (q[i + 1] << 8) | q[i + 2], (q[i + 3] << 8) | q[i + 4]
        if size & 0xC0:
            return None
        i += 1 + size
    return None


def check(data):
    reply = captive.answer(data, IP, _OUT)
    standard = len(data) >= 12 and not data[2] & 0xF8 and data[4:6] == b"\x00\x01"
    asked = question(data) if standard else None
    if reply is None:
        try:
            m = dns.message.from_wire(data)
        except (dns.exception.DNSException, ValueError, IndexError):
            return
        readable = asked is not None and len(m.question) == 1 and not m.flags & dns.flags.QR \
            and m.opcode() == dns.opcode.QUERY
        if readable:
            raise Finding("unanswered", "no reply to a standard query for %s" % m.question[0].name, "query")
        return
    expect(isinstance(reply, bytes) and len(reply) <= 512, "reply", "a reply of %r, %d bytes"
           % (type(reply), len(reply)), "size")
    expect(standard and asked is not None, "reply", "a reply to a datagram that is no standard query for "
           "one name (%r...)" % data[:16], "not-a-query")
    try:
        r = dns.message.from_wire(reply)
    except (dns.exception.DNSException, ValueError, IndexError) as e:
        raise Finding("reply", "a reply dnspython cannot read: %s: %s" % (type(e).__name__, e), type(e).__name__)
    name, qtype, qclass = asked
    expect(r.id == (data[0] << 8 | data[1]), "reply", "the reply's id is not the query's", "id")
    expect(r.flags & dns.flags.QR and r.flags & dns.flags.AA and r.opcode() == dns.opcode.QUERY
           and r.rcode() == dns.rcode.NOERROR and bool(r.flags & dns.flags.RD) == bool(data[2] & 1), "reply",
           "the reply's flags %s, rcode %s" % (dns.flags.to_text(r.flags), r.rcode()), "flags")
    expect(len(r.question) == 1 and r.question[0].name.to_wire() == name and r.question[0].rdtype == qtype
           and r.question[0].rdclass == qclass, "reply", "the reply's question is not the one asked", "question")
    want_a = qtype in (1, 255) and qclass in (1, 255)
    if want_a:
        expect(len(r.answer) == 1 and r.answer[0].rdtype == dns.rdatatype.A and r.answer[0].ttl == captive.TTL
               and [rd.address for rd in r.answer[0]] == [IP], "reply", "the answer is not the dongle's address: %s"
               % r.answer, "answer")
    else:
        expect(not r.answer, "reply", "an answer to a question of type %d class %d" % (qtype, qclass), "answer")


def seeds():
    out = []
    for name, rdtype in (("connectivitycheck.gstatic.com", "A"), ("captive.apple.com", "A"),
                         ("www.msftconnecttest.com", "AAAA"), ("p1dongle.local", "ANY"), ("example", "TXT")):
        q = dns.message.make_query(name, rdtype)
        q.id = 0x1234
        out.append(q.to_wire())
        q = dns.message.make_query(name, rdtype, use_edns=0)
        q.flags &= ~dns.flags.RD
        out.append(q.to_wire())
    r = dns.message.make_response(dns.message.make_query("a.example", "A"))
    out.append(r.to_wire())                                  # a response: never answered
    out.append(b"\x00\x01\x01\x00\x00\x02\x00\x00\x00\x00\x00\x00\x01a\x00\x00\x01\x00\x01\x01b\x00\x00\x01\x00\x01")
    out.append(b"\x12\x34\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + b"\x3f" + b"a" * 63 + b"\x00\x00\x01\x00\x01")
    return out
