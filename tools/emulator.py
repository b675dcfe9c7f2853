"""An emulated Luxembourg smart meter (Sagemcom T210-D) behind an Ethernet P1 reader.

It makes realistic DSMR 5 telegrams (energy registers that advance with the power drawn, power that
wanders, per-phase voltages and currents, the current time with its S/W season letter, a correct
CRC), encrypts them as the meter does (AES-128-GCM, IV = system title || frame counter, AAD = 0x30 ||
authentication key, 12-byte tag, frame counter +1 per frame) and serves the frames to every TCP
client, as a serial-to-TCP bridge does. With faults on, it also sends what real lines do: noise
between frames, frames with a broken tag, frames cut short.
"""
import asyncio
import os
import random
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "firmware"))

from p1dongle.dlms import LUX_AUTH_KEY  # noqa: E402
from p1dongle.dsmr import crc16  # noqa: E402
from p1dongle.gcm import Gcm  # noqa: E402
from p1dongle.tcpserver import TcpServer  # noqa: E402

SYSTEM_TITLE = b"SAG" + bytes.fromhex("6770017A3F")
HEADER = "/Lux5\\253663629_D"
METER_NAME = "SAG1030700089953"
FAULTS = ("noise", "bad tag", "truncated")


def ber_length(n):
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return bytes([0x82, n >> 8, n & 0xFF])


class EmulatedMeter:
    def __init__(self, key, auth_key=LUX_AUTH_KEY, title=SYSTEM_TITLE, counter=1, faults=0, seed=None):
        self.gcm = Gcm(key)
        self.auth_key = auth_key
        self.title = title
        self.counter = counter
        self.faults = faults              # every `faults`-th frame comes with a fault; 0: never
        self.rng = random.Random(seed)
        self.imported = 23949.193         # kWh
        self.exported = 1.204
        self.reactive_in = 1138.874       # kvarh
        self.reactive_out = 3723.325
        self.power = 0.420                # kW, positive: drawn from the grid, negative: delivered
        self.last = None
        self.frames = 0

    def telegram(self, now=None):
        """The next DSMR 5 telegram, registers advanced by the time since the last one."""
        now = time.time() if now is None else now
        if self.last is not None:
            hours = max(0.0, now - self.last) / 3600
            if self.power >= 0:
                self.imported += self.power * hours
            else:
                self.exported -= self.power * hours
            self.reactive_in += 0.05 * abs(self.power) * hours
            self.reactive_out += 0.12 * abs(self.power) * hours
        self.last = now
        self.power = min(9.0, max(-4.0, self.power + self.rng.uniform(-0.25, 0.25)))
        t = time.localtime(now)
        stamp = "%02d%02d%02d%02d%02d%02d%s" % (t[0] % 100, t[1], t[2], t[3], t[4], t[5], "S" if t[8] > 0 else "W")
        use, give = max(self.power, 0.0), max(-self.power, 0.0)
        volts = [round(self.rng.uniform(228, 236), 1) for _ in range(3)]
        share = [0.5, 0.3, 0.2]
        lines = [
            "1-3:0.2.8(42)",
            "0-0:1.0.0(%s)" % stamp,
            "0-0:42.0.0(%s)" % METER_NAME.encode().hex().upper(),
            "1-0:1.8.0(%010.3f*kWh)" % self.imported,
            "1-0:2.8.0(%010.3f*kWh)" % self.exported,
            "1-0:3.8.0(%010.3f*kvarh)" % self.reactive_in,
            "1-0:4.8.0(%010.3f*kvarh)" % self.reactive_out,
            "1-0:1.7.0(%06.3f*kW)" % use,
            "1-0:2.7.0(%06.3f*kW)" % give,
            "1-0:3.7.0(00.000*kvar)",
            "1-0:4.7.0(%06.3f*kvar)" % (0.1 * abs(self.power)),
            "0-0:17.0.0(027.6*kVA)",
            "1-0:9.7.0(%06.3f*kVA)" % (use * 1.05),
            "1-0:10.7.0(%06.3f*kVA)" % (give * 1.05),
            "1-1:31.4.0(040*A)(-040*A)",
            "0-0:96.3.10(1)",
            "0-1:96.3.10(0)",
            "0-2:96.3.10(0)",
            "0-0:96.7.21(00016)",
            "1-0:32.32.0(00004)", "1-0:52.32.0(00004)", "1-0:72.32.0(00004)",
            "1-0:32.36.0(00000)", "1-0:52.36.0(00000)", "1-0:72.36.0(00000)",
            "0-0:96.13.0()", "0-0:96.13.2()", "0-0:96.13.3()", "0-0:96.13.4()", "0-0:96.13.5()",
        ]
        lines += ["1-0:%d.7.0(%05.1f*V)" % (c, v) for c, v in zip((32, 52, 72), volts)]
        lines += ["1-0:%d.7.0(%03d*A)" % (c, round(abs(self.power) * s * 1000 / v))
                  for c, s, v in zip((31, 51, 71), share, volts)]
        lines += ["1-0:%d.7.0(%06.3f*kW)" % (c, use * s) for c, s in zip((21, 41, 61), share)]
        lines += ["1-0:%d.7.0(%06.3f*kW)" % (c, give * s) for c, s in zip((22, 42, 62), share)]
        lines += ["1-0:%d.7.0(00.000*kvar)" % c for c in (23, 43, 63)]
        lines += ["1-0:%d.7.0(%06.3f*kvar)" % (c, 0.1 * abs(self.power) * s) for c, s in zip((24, 44, 64), share)]
        body = (HEADER + "\r\n\r\n" + "".join(line + "\r\n" for line in lines) + "!").encode()
        return body + ("%04X\r\n" % crc16(body)).encode()

    def encrypt(self, plaintext):
        """A general-glo-ciphering frame around plaintext; the frame counter moves on."""
        fc = self.counter.to_bytes(4, "big")
        self.counter += 1
        sealed = self.gcm.encrypt(self.title + fc, b"\x30" + self.auth_key, plaintext, 12)
        body = b"\x30" + fc + sealed
        return b"\xdb\x08" + self.title + ber_length(len(body)) + body

    def next_bytes(self, now=None):
        """What the meter puts on the line next: one frame, plus a fault now and then."""
        self.frames += 1
        frame = self.encrypt(self.telegram(now))
        if not self.faults or self.frames % self.faults:
            return frame
        fault = FAULTS[(self.frames // self.faults) % len(FAULTS)]
        if fault == "noise":
            return bytes(self.rng.getrandbits(8) for _ in range(37)) + frame
        if fault == "bad tag":
            bad = bytearray(frame)
            bad[-1] ^= 0x40
            return bytes(bad)
        # truncated: the line dropped the end of one frame; the next one follows at once
        return frame[:len(frame) // 2] + self.encrypt(self.telegram(now))


async def serve(meter, host, port, interval, count=0, log=print, on_listen=None):
    """Be an Ethernet P1 reader: every client gets every frame. Stops after count frames (0: never)."""
    server = TcpServer("meter", max_clients=16, queue_len=32, log=lambda msg: None)
    await server.start(host, port)
    if on_listen:
        on_listen(server.port)
    sent = 0
    try:
        while not count or sent < count:
            server.publish(meter.next_bytes())
            sent += 1
            await asyncio.sleep(interval)
    finally:
        await server.stop()
