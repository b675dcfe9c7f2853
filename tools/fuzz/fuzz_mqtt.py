# The MQTT client's packet reader (mqtt.MqttClient._listen): what a broker sends once the
# client is connected, then the broker closes. The client has Home Assistant's birth topic
# subscribed (as MqttOutput subscribes it) and QoS 1 messages in flight.
#
# Input: the bytes the broker sends.
# Oracles, against a reading of the same bytes written here from MQTT 3.1.1 (section 2):
#   - the client acts (a PUBACK ends a message in flight, a PINGRESP answers its ping, a PUBLISH
#     on a subscribed topic is handed on) on every well-formed packet a broker may send a client,
#     in order, and on nothing else: a packet it ignores or misreads, or a reader that stops
#     (an exception inside it ends the connection) on a well-formed stream, is a finding
#   - after a malformed packet (a remaining length over 4 bytes) it acts on nothing more: the
#     protocol says to close the connection there, and what follows is not packets; nor after
#     a packet over the biggest the client says it takes (mqttpacket.MAX_PACKET, where it has one)
#   - packets a broker must not send (CONNECT, SUBSCRIBE, QoS 1 and 2 PUBLISH to a QoS 0
#     subscription, reserved flags...) may be ignored or end the connection: after one, what
#     the client does is left open
#   - no exception escapes (an exception inside the reader ends the link)
import asyncio

from common import expect
from p1dongle import mqtt, mqttpacket
from p1dongle.mqttout import MqttOutput

DECLARED = ()
MAX_LEN = 2048
BIRTH = "homeassistant/status"
OTHER = "p1dongle/fuzz/cmd"
INFLIGHT = (1, 2, 0x1234, 0xFFFF)
LIMIT = getattr(mqttpacket, "MAX_PACKET", None)
# packet types a broker sends a client (3.1.1, 2.2.1), and their flags (2.2.2); PUBLISH apart
_FROM_BROKER = {2: 0, 4: 0, 5: 0, 6: 2, 7: 0, 9: 0, 11: 0, 13: 0}
_LENGTHS = {2: 2, 4: 2, 5: 2, 6: 2, 7: 2, 11: 2, 13: 0}         # fixed remaining lengths


class Log(list):
    """What the client did, in order: ("puback", id), ("pong",), ("message", topic, payload)."""


class Inflight(dict):
    def __init__(self, log, ids):
        dict.__init__(self, {i: ("t", b"x", False) for i in ids})
        self.log = log

    def pop(self, pid, *default):
        self.log.append(("puback", pid))
        return dict.pop(self, pid, *default)


class Client(mqtt.MqttClient):
    def __setattr__(self, name, value):
        if name == "_pong" and value and "acts" in self.__dict__:
            self.__dict__["acts"].append(("pong",))
        object.__setattr__(self, name, value)


def reference(data):
    """(actions, end): what a client acts on in data, by MQTT 3.1.1, and how the stream ends:
    "eof" (every packet whole, well-formed), "cut" (the last one cut short by the close),
    "malformed" (a remaining length over 4 bytes, or over LIMIT: nothing after it counts) or
    "foreign" (a packet a broker must not send: after it the client may do anything)."""
    out = []
    i = 0
    n = len(data)
    while i < n:
        first = data[i]
        kind, flags = first >> 4, first & 0x0F
        i += 1
        size = shift = 0
        count = 0
        while True:
            if i >= n:
                return out, "cut"
            b = data[i]
            i += 1
            count += 1
            if count > 4:
                return out, "malformed"
            size |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                break
        if LIMIT is not None and size > LIMIT:
            return out, "malformed"
        if i + size > n:
            return out, "cut"
        body = data[i:i + size]
        i += size
        if kind == 3:
            if flags & 0x0E or size < 2 or (body[0] << 8 | body[1]) + 2 > size:
                return out, "foreign"   # QoS 1/2 on a QoS 0 subscription, DUP, or a cut topic
            t = body[2:2 + (body[0] << 8 | body[1])]
            if t in (BIRTH.encode(), OTHER.encode()):
                out.append(("message", t.decode("latin-1"), bytes(body[2 + len(t):])))
            continue
        if _FROM_BROKER.get(kind) != flags or _LENGTHS.get(kind, size) != size:
            return out, "foreign"
        if kind == 4:
            out.append(("puback", body[0] << 8 | body[1]))
        elif kind == 13:
            out.append(("pong",))
    return out, "eof"


_LOOP = asyncio.new_event_loop()


async def _listen(client, data):
    reader = asyncio.StreamReader()
    reader.feed_data(data)
    reader.feed_eof()
    await client._listen(reader)
    return reader


def check(data):
    log = Log()
    c = Client("127.0.0.1", 1883, "fuzz", log=lambda line: log.append(("log", line)))
    c.__dict__["acts"] = log
    c._inflight = Inflight(log, INFLIGHT)
    MqttOutput(c, "p1dongle/fuzz", "homeassistant", "fuzz", log=lambda line: None)  # subscribes BIRTH
    for topic in (BIRTH, OTHER):
        c.subscribe(topic, lambda t, payload: log.append(("message", t, bytes(payload))))
    c._pong = False
    del log[:]
    reader = _LOOP.run_until_complete(_listen(c, data))
    acts = [a for a in log if a[0] != "log"]
    want, end = reference(data)
    if end == "foreign":
        expect(acts[:len(want)] == want, "acted", "acted on %s, the packets before the first foreign one "
               "say %s" % (_show(acts), _show(want)), "before-foreign")
        return
    expect(acts == want, "acted", "acted on %s, the packets say %s (%s)" % (_show(acts), _show(want), end), end)
    if end == "eof":
        expect(reader.at_eof(), "stopped", "the reader stopped before the end of a well-formed stream "
               "(%d bytes left): %s" % (len(reader._buffer), [a[1] for a in log if a[0] == "log"]))


def _show(acts):
    return "[%s]" % ", ".join(a[0] + ("(%r)" % (a[1:],) if len(a) > 1 else "") for a in acts[:8])


def seeds():
    def pub(topic, payload):
        t = topic.encode()
        body = bytes([len(t) >> 8, len(t) & 255]) + t + payload
        return b"\x30" + mqttpacket.varlen(len(body)) + body
    return [
        b"\x40\x02\x00\x01\xd0\x00",                                     # PUBACK 1, PINGRESP
        pub(BIRTH, b"online") + b"\xd0\x00" + pub(OTHER, b"x" * 200),
        b"\x90\x03\x00\x01\x00" + b"\x40\x02\x12\x34",                    # SUBACK, PUBACK
        pub(BIRTH, b"offline") + b"\x40\x02\xff\xff",
        b"\xd0\x80\x80\x80\x80\x00\xd0\x00",                             # a 5-byte remaining length
        b"\x20\x02\x00\x00",                                             # a second CONNACK
        pub("other/topic", b"1") + b"\xd0\x00",
        b"\x32\x08\x00\x04abcd\x00\x07",                                 # a QoS 1 PUBLISH
    ]
