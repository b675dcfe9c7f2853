"""What a hostile or broken line puts between a meter's good frames, and a hostile MQTT broker:
`make soak` sends these beside the emulated meter's frames and the real broker (tools/soak.py).

Each attack is one of the ways a dongle was once made to stop, lock the real meter out, lose its
good frames or put out something that is not JSON (issue 22). Nothing here needs the meter's key:
an attacker on the line has none. What the dongle must do with each: drop it (one line, counted),
keep every good frame that follows, never restart, never run out of memory.

    attacks = MeterAttacks(title=meter.title, seed=1)
    data = attacks.next()            # (name, bytes) in turn
"""
import asyncio
import os
import random
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "firmware"))

from p1dongle.compat import loops  # noqa: E402
from p1dongle.dsmr import crc16  # noqa: E402


def _ber(n):
    return bytes([n]) if n < 0x80 else (bytes([0x81, n]) if n < 0x100 else bytes([0x82, n >> 8, n & 0xFF]))


def _hdlc(info):
    """One HDLC UI frame (valid HCS and FCS) carrying LLC E6 E7 00 + info: what a plain push on an
    HDLC customer port looks like."""
    data = b"\xe6\xe7\x00" + info
    length = 2 + 3 + 1 + 2 + len(data) + 2
    head = bytes([0xA0 | (length >> 8), length & 255, 0xCF, 0x02, 0x23, 0x13])
    body = head + loops.crc16_x25(head, 0, len(head)).to_bytes(2, "little") + data
    return b"\x7e" + body + loops.crc16_x25(body, 0, len(body)).to_bytes(2, "little") + b"\x7e"


def _obis(code):
    return b"\x09\x06" + bytes(code)


def _push(items):
    """A plain data-notification: long invoke id, no time, a structure of items."""
    return b"\x0f\x00\x00\x00\x01\x00\x02" + _ber(len(items)) + b"".join(items)


class MeterAttacks:
    def __init__(self, title, seed=None):
        self.title = title              # the real meter's system title (it is sent in the clear)
        self.rng = random.Random(seed)
        self.k = 0
        self.attacks = (
            ("forged tagless frame, the meter's own title, counter FFFFFFFF", self.replay_lockout),
            ("DB byte in noise", self.db_in_noise),
            ("DB frame with a 64 KB length", self.huge_length),
            ("structure(12) push with a number for the meter number", self.structure12_bad_id),
            ("push with a 32-bit scaler", self.huge_scaler),
            ("push with ever new OBIS codes", self.new_codes),
            ("DSMR telegram with a unit-less power, a power factor with a unit, a tab in a code", self.odd_dsmr),
            ("DSMR 2/3-looking text without CRC", self.crcless_garbage),
        )

    def next(self):
        name, make = self.attacks[self.k % len(self.attacks)]
        self.k += 1
        return name, make()

    def _noise(self, n):
        return bytes(self.rng.getrandbits(8) for _ in range(n))

    def replay_lockout(self):
        # Security 0x20 carries no tag: only the content can tell it is not the meter's.
        body = b"\x20\xff\xff\xff\xff" + self._noise(300)
        return b"\xdb\x08" + self.title + _ber(len(body)) + body

    def db_in_noise(self):
        return self._noise(5) + b"\xdb\x08" + self._noise(8) + b"\x81\xf0" + self._noise(20)

    def huge_length(self):
        return b"\xdb\x08" + self.title + b"\x82\xff\xff\x30" + self._noise(40)

    def structure12_bad_id(self):
        # Iskra's structure(12) (push setup 0-6:25.9.0): the push setup's code, the meter number (an
        # octet string, where this one has an integer), date, time, six values, two more.
        items = [_obis((0, 6, 25, 9, 0, 255)), b"\x06\x00\x00\x00\x07", b"\x09\x05\x07\xea\x0c\x05\x05",
                 b"\x09\x04\x0c\x00\x00\x00"] + [b"\x06" + self._noise(4) for _ in range(8)]
        return _hdlc(_push(items))

    def huge_scaler(self):
        # OBIS, value, {scaler as a double-long (DLMS says integer -128..127), unit Wh}
        items = [_obis((1, 0, 1, 8, 0, 255)), b"\x06\x00\x00\x30\x39",
                 b"\x02\x02\x05\x7f\xff\xff\xfc\x16\x1e"]
        return _hdlc(_push(items))

    def new_codes(self):
        items = []
        for _ in range(4):
            code = (1, 0, self.rng.randrange(100, 200), self.rng.randrange(0, 250), self.rng.randrange(0, 250), 255)
            items += [_obis(code), b"\x06" + self._noise(4), b"\x02\x02\x0f\x00\x16\x1b"]
        return _hdlc(_push(items))

    def odd_dsmr(self):
        body = ("/XMX5LGF0000000000000\r\n\r\n1-3:0.2.8(50)\r\n0-0:1.0.0(261205120000W)\r\n"
                "1-0:1.8.1(000123.456*kWh)\r\n1-0:1.7.0(00.420)\r\n1-0:13.7.0(0.998*x)\r\n"
                "1-0:99\t.7.0(1*kW)\r\n!").encode()
        return body + ("%04X\r\n" % crc16(body)).encode()

    def crcless_garbage(self):
        return b"/" + bytes(self.rng.randrange(0x20, 0x7F) for _ in range(60)) + b"\r\n!\r\n"


# -- a hostile broker --------------------------------------------------------------------------------

# What it sends a client after its CONNECT, in turn: each of them once made a client build an
# ever larger number, wait for ever, or run out of memory.
BROKER_ATTACKS = (
    ("a remaining length of 12 bytes", b"\x20\x02\x00\x00" + b"\x30" + b"\xff" * 11 + b"\x7f"),
    ("a 256 MB PUBLISH announced, 10 bytes sent", b"\x20\x02\x00\x00" + b"\x30\xff\xff\xff\x7f" + b"x" * 10),
    ("garbage for a CONNACK", bytes(range(256))),
    ("CONNACK refused: not authorised", b"\x20\x02\x00\x05"),
    ("nothing at all", b""),
)


class HostileBroker:
    """A TCP server on the broker's port that answers every client with the next of BROKER_ATTACKS,
    then keeps the connection open and silent until the client leaves or the broker stops."""

    def __init__(self, port):
        self.port = port
        self.server = None
        self.k = 0
        self.served = []

    async def start(self):
        self.server = await asyncio.start_server(self._client, "127.0.0.1", self.port, reuse_address=True)
        return self

    async def _client(self, reader, writer):
        name, data = BROKER_ATTACKS[self.k % len(BROKER_ATTACKS)]
        self.k += 1
        self.served.append(name)
        try:
            await asyncio.wait_for(reader.read(1024), 5)       # its CONNECT
            writer.write(data)
            await writer.drain()
            while await reader.read(1024):
                pass
        except (OSError, asyncio.TimeoutError):
            pass
        finally:
            writer.close()

    async def stop(self):
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
