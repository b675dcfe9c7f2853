"""The first setup without a PC, on the host: the captive portal's DNS responder (plain UDP, asked
by dnspython as a phone's resolver would), the access point's plan (when the dongle opens
p1dongle-XXXX, when it closes it; the radio itself is behind platform_esp32), and the web server
in setup mode sending the phones' connectivity checks to the settings page."""
import asyncio
import http.client
import os
import socket
import subprocess
import threading

import dns.flags
import dns.message
import dns.query
import dns.rcode
import dns.rdatatype
import pytest
from conftest import MICROPYPATH
from p1dongle import captive, wifiplan
from p1dongle.captive import DnsResponder
from procs import sim


class Responder:
    """The responder on 127.0.0.1 (a free port), serving in an event loop of its own thread."""

    def __init__(self, ip="192.168.4.1"):
        self.loop = asyncio.new_event_loop()
        self.dns = DnsResponder(ip, log=lambda line: None).open("127.0.0.1", 0)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        asyncio.set_event_loop(self.loop)
        self.task = self.loop.create_task(self.dns.serve())
        try:
            self.loop.run_until_complete(self.task)
        except asyncio.CancelledError:
            pass

    def ask(self, name, rdtype="A"):
        return dns.query.udp(dns.message.make_query(name, rdtype), "127.0.0.1", port=self.dns.port, timeout=10)

    def close(self):
        self.loop.call_soon_threadsafe(self.task.cancel)
        self.thread.join(10)
        self.dns.close()


@pytest.fixture
def responder():
    r = Responder()
    yield r
    r.close()


def test_every_name_is_the_dongle(responder):
    for name in ("connectivitycheck.gstatic.com", "captive.apple.com", "www.msftconnecttest.com",
                 "example.org", "a.b.c.d.e.f.g.very-long-label-" + "x" * 30 + ".net"):
        r = responder.ask(name)
        assert r.rcode() == dns.rcode.NOERROR and r.flags & dns.flags.QR and r.flags & dns.flags.AA
        (rrset,) = r.answer
        assert str(rrset.name) == name + "." and rrset.rdtype == dns.rdatatype.A
        assert [item.address for item in rrset] == ["192.168.4.1"] and rrset.ttl == captive.TTL


def test_other_types_get_no_address_and_bad_packets_no_answer(responder):
    r = responder.ask("captive.apple.com", "AAAA")       # a phone asks both: A must win
    assert r.rcode() == dns.rcode.NOERROR and r.answer == []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        for junk in (b"", b"\x00" * 5, b"\xff" * 40, dns.message.make_response(dns.message.make_query("x.org", "A")).to_wire(),
                     dns.message.make_query("x.org", "A").to_wire()[:20]):
            s.sendto(junk, ("127.0.0.1", responder.dns.port))
        # none of those is answered, and the next good query is
        query = dns.message.make_query("after.example", "A")
        s.sendto(query.to_wire(), ("127.0.0.1", responder.dns.port))
        reply = dns.message.from_wire(s.recv(512))
        assert reply.id == query.id and reply.answer[0][0].address == "192.168.4.1"
    assert responder.dns.ignored >= 4 and responder.dns.answered == 2


def test_answer_is_rfc1035():
    query = dns.message.make_query("p1dongle.setup", "A", want_dnssec=False)
    query.flags |= dns.flags.RD
    wire = query.to_wire()
    reply = dns.message.from_wire(captive.answer(wire, "10.0.0.7"))
    assert reply.id == query.id and reply.flags & dns.flags.RD and reply.flags & dns.flags.RA
    assert reply.question == query.question and reply.answer[0][0].address == "10.0.0.7"
    any_query = dns.message.make_query("p1dongle.setup", "ANY").to_wire()
    assert dns.message.from_wire(captive.answer(any_query, "10.0.0.7")).answer
    compressed = wire[:12] + b"\xc0\x0c" + wire[-4:]
    assert captive.answer(compressed, "10.0.0.7") is None


# -- when the access point is up ------------------------------------------------------------------

MIN = 60 * 1000


def test_no_wifi_settings_means_the_access_point():
    plan = wifiplan.WifiPlan(None, now=0)
    assert plan.access_point(False, 0) and plan.access_point(False, 10 * MIN)
    assert wifiplan.WifiPlan("", now=0).access_point(False, 0)


def test_the_access_point_opens_after_five_minutes_off_the_network_and_closes_on_joining():
    plan = wifiplan.WifiPlan("home", now=1000)
    assert not plan.access_point(False, 1000)
    assert not plan.access_point(False, 1000 + 5 * MIN - 1)
    assert plan.access_point(False, 1000 + 5 * MIN)           # a new router, a changed password
    assert not plan.access_point(True, 1000 + 6 * MIN)        # joined: closed at once
    assert not plan.access_point(False, 1000 + 7 * MIN)       # a short outage is not five minutes
    assert not plan.access_point(False, 1000 + 12 * MIN - 1)
    assert plan.access_point(False, 1000 + 12 * MIN)


def test_the_access_point_plan_survives_the_tick_counter_wrapping(micropython):
    # the dongle's ticks_ms wraps (at 2**30 on the twin and the ESP32): the plan counts with ticks_diff
    script = """
import time
from p1dongle import wifiplan
M = 60000
start = time.ticks_add(0, -M)              # a minute before the wrap
plan = wifiplan.WifiPlan("home", start)
print(plan.access_point(False, time.ticks_add(start, 4 * M)), plan.access_point(False, time.ticks_add(start, 5 * M)))
"""
    out = subprocess.run([micropython, "-c", script], capture_output=True, text=True, timeout=30,
                         env=dict(os.environ, MICROPYPATH=MICROPYPATH))
    assert out.stdout.split() == ["False", "True"], out.stdout + out.stderr


def test_the_access_points_name_is_the_macs_last_digits():
    assert wifiplan.name(bytes.fromhex("a0b765c4f10e")) == "p1dongle-f10e"


# -- setup mode in the web server -----------------------------------------------------------------

def test_setup_sends_connectivity_checks_to_the_settings_page():
    app = sim("run", "--source", "meter", "--interval", "5", "--tcp-port", "0", "--http-port", "0", "--setup", "-q")
    try:
        dns_port = int(app.expect(r"setup: DNS on 127.0.0.1:(\d+)").group(1))
        port = int(app.expect(r"web: http://localhost:(\d+)/").group(1))
        reply = dns.query.udp(dns.message.make_query("connectivitycheck.gstatic.com", "A"), "127.0.0.1",
                              port=dns_port, timeout=10)
        assert reply.answer[0][0].address == "127.0.0.1"
        settings = "http://127.0.0.1:%d/settings" % port
        for host, path in (("connectivitycheck.gstatic.com", "/generate_204"), ("captive.apple.com", "/hotspot-detect.html"),
                           ("www.msftconnecttest.com", "/connecttest.txt"), ("example.org", "/"),
                           ("127.0.0.1:%d" % port, "/generate_204")):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", path, headers={"Host": host})
            r = c.getresponse()
            r.read()
            c.close()
            assert (r.status, r.getheader("Location")) == (302, settings), (host, path)
        # the dongle's own pages, by its address or its .local name, are served as they are
        for host in ("127.0.0.1:%d" % port, "p1dongle-f10e.local"):
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            c.request("GET", "/settings", headers={"Host": host})
            r = c.getresponse()
            assert r.status == 200 and b"<form" in r.read()
            c.close()
    finally:
        app.stop()


def query_wire(labels, qid=0x1234):
    """A query as a phone would send it, but for any name (dnspython will not make one over 255
    bytes): header with RD, one question, type A class IN."""
    name = b"".join(bytes([len(label)]) + label for label in labels) + b"\x00"
    return qid.to_bytes(2, "big") + b"\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00" + name + b"\x00\x01\x00\x01"


LONGEST = [b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 61]      # 255 bytes with the lengths and the root
TOO_LONG = [b"a" * 63, b"b" * 63, b"c" * 63, b"d" * 62]     # 256
FAR_TOO_LONG = [b"e" * 63] * 7                              # 449: still fits a 512-byte datagram


def test_a_name_over_255_bytes_gets_no_reply_and_the_next_query_is_answered(responder):
    """RFC 1035 2.3.4: a name is 255 bytes or less (lengths and root included). Echoed, a longer
    one made a reply no resolver can read."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.settimeout(10)
        for labels in (TOO_LONG, FAR_TOO_LONG):
            s.sendto(query_wire(labels, qid=0xBAD), ("127.0.0.1", responder.dns.port))
        s.sendto(query_wire(LONGEST, qid=0x600D), ("127.0.0.1", responder.dns.port))
        reply = dns.message.from_wire(s.recv(512))          # the first reply: the good query's
        assert reply.id == 0x600D and str(reply.question[0].name) == ".".join(x.decode() for x in LONGEST) + "."
        assert reply.answer[0][0].address == "192.168.4.1"
    assert responder.dns.ignored == 2       # (counted before the next query is read)


def test_the_dongle_refuses_names_over_255_bytes(micropython):
    script = """
from p1dongle import captive
for q in %r:
    r = captive.answer(bytes.fromhex(q), "192.168.4.1")
    print(None if r is None else len(r))
""" % [query_wire(labels).hex() for labels in (TOO_LONG, FAR_TOO_LONG, LONGEST)]
    out = subprocess.run([micropython, "-c", script], capture_output=True, text=True, timeout=30,
                         env=dict(os.environ, MICROPYPATH=MICROPYPATH))
    assert out.stdout.split() == ["None", "None", str(len(query_wire(LONGEST)) + 16)], out.stdout + out.stderr
