# MQTT 3.1.1's packets as the dongle writes and reads them (the codec; mqtt.py is the session):
# CONNECT, PUBLISH's header (its payload follows as it is, never copied into one packet),
# SUBSCRIBE; a packet's remaining length as it comes from the broker, bounded by MAX_PACKET.

# The biggest packet the dongle takes from a broker. What it is sent is a few bytes (CONNACK,
# SUBACK, PUBACK, PINGRESP) and the one PUBLISH it subscribes to, Home Assistant's birth ("online"
# on <discovery prefix>/status): 1 KB holds that with a long prefix, and is a block the heap
# gives at any time. Anything larger ends the session (MQTT 3.1.1 allows 256 MB).
MAX_PACKET = 1024

# CONNACK's refusal codes 1 to 5, in order (a tuple: frozen, it costs the heap nothing; a dict
# is built in the heap when the module is imported)
_REFUSED = (
    "the broker does not speak MQTT 3.1.1",
    "the client id was refused",
    "the broker is unavailable",
    "bad user name or password",
    "not authorised",
)


def varlen(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def text_field(s):
    # an MQTT string: its length in 2 bytes, then its UTF-8
    if isinstance(s, str):
        s = s.encode()
    return bytes([len(s) >> 8, len(s) & 0xFF]) + s


def connect_packet(client_id, keepalive, user=None, password=None, will=None):
    flags = 0x02                                    # clean session
    payload = text_field(client_id)
    if will:
        flags |= 0x04 | 0x20 | 0x08                 # will, will retain, will QoS 1
        payload += text_field(will[0]) + text_field(will[1])
    if user is not None:
        flags |= 0x80
        payload += text_field(user)
        if password is not None:
            flags |= 0x40
            payload += text_field(password)
    body = text_field("MQTT") + bytes([4, flags, keepalive >> 8, keepalive & 0xFF]) + payload
    return b"\x10" + varlen(len(body)) + body


def publish_header(topic_field, size, retain, qos, pid, dup):
    """A PUBLISH packet up to its payload (of size bytes): fixed header, the topic as MQTT writes
    it (topic_field, from text_field), packet id."""
    rest = len(topic_field) + (2 if qos else 0) + size
    head = 0x30 | (0x01 if retain else 0) | (qos << 1) | (0x08 if dup else 0)
    if rest < 0x4000:                   # every message the dongle sends: two length bytes at most
        fixed = bytes((head, rest)) if rest < 0x80 else bytes((head, rest & 0x7F | 0x80, rest >> 7))
    else:
        fixed = bytes((head,)) + varlen(rest)
    if qos:
        return fixed + topic_field + bytes((pid >> 8, pid & 0xFF))
    return fixed + topic_field


def subscribe_packet(topics, pid=1):
    """SUBSCRIBE for topics, QoS 0 each."""
    body = bytes([pid >> 8, pid & 0xFF])
    for t in topics:
        body += text_field(t) + b"\x00"
    return b"\x82" + varlen(len(body)) + body


def text_bytes(s):
    return s.encode() if isinstance(s, str) else s


def refused(code):
    """What a CONNACK's refusal code means."""
    return _REFUSED[code - 1] if 1 <= code <= len(_REFUSED) else "code %d" % code


class MqttError(Exception):
    pass


async def remaining_length(reader):
    # A packet's remaining length: 7 bits a byte, low first, at most 4 bytes (MQTT 3.1.1, 2.2.3);
    # never more than MAX_PACKET here.
    n = 0
    for shift in (0, 7, 14, 21):
        b = (await reader.readexactly(1))[0]
        n |= (b & 0x7F) << shift
        if not b & 0x80:
            if n > MAX_PACKET:
                raise MqttError("the broker sent a %d-byte packet, more than the %d the dongle takes" % (n, MAX_PACKET))
            return n
    raise MqttError("the broker sent a malformed packet (its length runs past 4 bytes)")
