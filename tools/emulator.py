"""An emulated smart meter behind an Ethernet P1 reader: Luxembourg (Sagemcom T210-D) by default,
or one of the Austrian families (profile).

It makes realistic DSMR 5 telegrams (energy registers that advance with the power drawn, power that
wanders, per-phase voltages and currents, the current time with its S/W season letter, a correct
CRC), encrypts them as the meter does (AES-128-GCM, IV = system title || frame counter, AAD = 0x30 ||
authentication key, 12-byte tag, frame counter +1 per frame) and serves the frames to every TCP
client, as a serial-to-TCP bridge does. With faults on, it also sends what real lines do: noise
between frames, frames with a broken tag, frames cut short.

The Austrian profiles send the same readings as a DLMS data-notification (A-XDR, written here)
the way those meters do: Netz NOE style in M-Bus segments with security 0x20, TINETZ style with a
GCM tag, Wiener Netze style as compact values in an HDLC frame, Linz style in HDLC frames carrying
general block transfer.
"""
import asyncio
import datetime
import os
import random
import sys
import time
import zoneinfo

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "firmware"))

from p1dongle.dlms import LUX_AUTH_KEY  # noqa: E402
from p1dongle.compat import loops  # noqa: E402
from p1dongle.dsmr import crc16  # noqa: E402
from p1dongle.gcm import Gcm  # noqa: E402
from p1dongle.tcpserver import TcpServer  # noqa: E402

SYSTEM_TITLE = b"SAG" + bytes.fromhex("6770017A3F")
HEADER = "/Lux5\\253663629_D"
METER_NAME = "SAG1030700089953"
FAULTS = ("noise", "bad tag", "truncated")

# profile: (link framing, security byte, content, system title, the meter's time zone)
PROFILES = {
    "lux": ("p1", 0x30, "dsmr", SYSTEM_TITLE, "Europe/Luxembourg"),
    "fluvius": ("plain", None, "dsmr", None, "Europe/Brussels"),
    "steiermark": ("p1", 0x30, "dsmr", b"SAG5" + bytes.fromhex("00033FE2"), "Europe/Vienna"),
    "netznoe": ("mbus", 0x20, "obis", b"KFM" + bytes.fromhex("6750000009"), "Europe/Vienna"),
    "tinetz": ("mbus", 0x30, "obis", b"KFM" + bytes.fromhex("1020000777"), "Europe/Vienna"),
    "wienernetze": ("hdlc", 0x20, "compact", b"ISK" + bytes.fromhex("6974A8D899"), "Europe/Vienna"),
    "linz": ("hdlc-blocks", 0x30, "obis", b"LGZ" + bytes.fromhex("1030000555"), "Europe/Vienna"),
}


def local_time(now, zone):
    """The meter's wall clock (it keeps its country's time, whatever the PC's): a struct_time-like
    (year, month, day, hour, minute, second, weekday 0 = Monday, is_dst)."""
    t = datetime.datetime.fromtimestamp(now, zoneinfo.ZoneInfo(zone))
    return (t.year, t.month, t.day, t.hour, t.minute, t.second, t.weekday(), bool(t.dst()))


def ber_length(n):
    if n < 0x80:
        return bytes([n])
    if n < 0x100:
        return bytes([0x81, n])
    return bytes([0x82, n >> 8, n & 0xFF])


def describe(profile):
    link, sc, content, _, _ = PROFILES[profile]
    if link == "plain":
        return "%s (plain DSMR 5 telegrams with the Belgian peak registers)" % profile
    return "%s (%s, security %02X, %s)" % (
        profile, {"p1": "DB frames on P1", "mbus": "M-Bus", "hdlc": "HDLC", "hdlc-blocks": "HDLC, block transfer"}[link],
        sc, "DSMR telegram" if content == "dsmr" else content + " data-notification")


class EmulatedMeter:
    def __init__(self, key, auth_key=LUX_AUTH_KEY, title=None, counter=1, faults=0, seed=None, profile="lux",
                 start=None, step=None):
        if profile not in PROFILES:
            raise ValueError("no emulated meter for profile %r (have: %s)" % (profile, ", ".join(sorted(PROFILES))))
        self.link, self.sc, self.content, default_title, self.zone = PROFILES[profile]
        self.gcm = Gcm(key)
        self.auth_key = auth_key
        self.title = title or default_title
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
        self.intact = []                  # the DSMR telegrams of the frames sent whole (content dsmr)
        # A fast clock (history's tests: days in minutes): the meter's clock starts at `start`
        # (UTC seconds) and moves `step` seconds with each telegram, its energy with it.
        self.start = start
        self.step = step
        self.tariffs = [7849.193, 16100.0]       # the Belgian profile's import registers, day and night (kWh)
        self.quarter = None               # ... its open quarter (UTC minute // 15) and import then (Wh)
        self.quarter_wh = 0
        self.month_peak = None            # ... (W, its DSMR time, its month) this month
        self.last_fluvius = None
        self.gas = 112.384                # ... its M-Bus gas meter (channel 1) and water meter
        self.water = 872.234              #     (channel 2), m3

    def clock(self, now=None):
        """The meter's time: now, else its fast clock's next tick, else the PC's."""
        if now is not None:
            return now
        if self.start is not None:
            return self.start if self.last is None else self.last + self.step
        return time.time()

    def telegram(self, now=None):
        """The next DSMR 5 telegram, registers advanced by the time since the last one."""
        now = self.clock(now)
        if self.last is not None:
            hours = max(0.0, now - self.last) / 3600
            if self.power >= 0:
                self.imported += self.power * hours
                t = local_time(now, self.zone)
                self.tariffs[0 if t[6] < 5 and 7 <= t[3] < 22 else 1] += self.power * hours
            else:
                self.exported -= self.power * hours
            self.reactive_in += 0.05 * abs(self.power) * hours
            self.reactive_out += 0.12 * abs(self.power) * hours
        self.last = now
        self.power = min(9.0, max(-4.0, self.power + self.rng.uniform(-0.25, 0.25)))
        t = local_time(now, self.zone)
        stamp = "%02d%02d%02d%02d%02d%02d%s" % (t[0] % 100, t[1], t[2], t[3], t[4], t[5], "S" if t[7] else "W")
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
        if self.link == "plain":
            return self._fluvius(now, stamp, use, give, volts)
        body = (HEADER + "\r\n\r\n" + "".join(line + "\r\n" for line in lines) + "!").encode()
        return body + ("%04X\r\n" % crc16(body)).encode()

    def _fluvius(self, now, stamp, use, give, volts):
        """A Belgian (Fluvius e-MUCS) telegram: day and night tariff registers, and the meter's own
        15-minute average (1-0:1.4.0: the quarter's energy so far times four, from 0 at each
        quarter) and this month's highest quarter (1-0:1.6.0, with the time its quarter ended)."""
        if self.last_fluvius is not None:
            hours = max(0.0, now - self.last_fluvius) / 3600
            self.gas += hours * self.rng.uniform(0.0, 0.4)
            self.water += hours * self.rng.uniform(0.0, 0.02)
        self.last_fluvius = now
        registers = ["%010.3f" % t for t in self.tariffs]
        wh = sum(int(r.replace(".", "")) for r in registers)
        minute = int(now) // 60
        q = minute // 15
        if q != self.quarter:
            if self.quarter is not None and q == self.quarter + 1:
                avg = (wh - self.quarter_wh) * 4
                t = local_time(self.quarter * 900, self.zone)      # the quarter's month: its start's
                ended = local_time(q * 900, self.zone)
                when = "%02d%02d%02d%02d%02d00%s" % (ended[0] % 100, ended[1], ended[2], ended[3], ended[4],
                                                     "S" if ended[7] else "W")
                if self.month_peak is None or self.month_peak[2] != t[:2] or avg > self.month_peak[0]:
                    self.month_peak = (avg, when, t[:2])
            self.quarter, self.quarter_wh = q, wh
        average = (wh - self.quarter_wh) * 4
        lines = [
            "0-0:96.1.4(50217)",
            "0-0:96.1.1(%s)" % "3153414731313035343430333031",
            "0-0:1.0.0(%s)" % stamp,
            "1-0:1.8.1(%s*kWh)" % registers[0],
            "1-0:1.8.2(%s*kWh)" % registers[1],
            "1-0:2.8.1(%010.3f*kWh)" % self.exported,
            "1-0:2.8.2(000000.000*kWh)",
            "0-0:96.14.0(0001)",
            "1-0:1.4.0(%02d.%03d*kW)" % divmod(average, 1000),
        ]
        t = local_time(now, self.zone)
        if self.month_peak is not None and self.month_peak[2] == t[:2]:
            lines.append("1-0:1.6.0(%s)(%02d.%03d*kW)" % ((self.month_peak[1],) + divmod(self.month_peak[0], 1000)))
        lines += [
            "1-0:1.7.0(%06.3f*kW)" % use,
            "1-0:2.7.0(%06.3f*kW)" % give,
            "1-0:21.7.0(%06.3f*kW)" % use,
            "1-0:22.7.0(%06.3f*kW)" % give,
            "1-0:32.7.0(%05.1f*V)" % volts[0],
            "1-0:31.7.0(%06.2f*A)" % (abs(self.power) * 1000 / volts[0]),
            "0-0:96.3.10(1)",
            "0-0:17.0.0(999.9*kW)",
            "1-0:31.4.0(999*A)",
            "0-0:96.13.0()",
            "0-1:24.1.0(003)",
            "0-1:96.1.1(37464C4F32313139303333373333)",
            "0-1:24.4.0(1)",
            "0-1:24.2.3(%s)(%09.3f*m3)" % (stamp, self.gas),
            "0-2:24.1.0(007)",
            "0-2:96.1.1(3853455430303030303030303030)",
            "0-2:24.2.1(%s)(%09.3f*m3)" % (stamp, self.water),
        ]
        body = ("/FLU5\\253770234_A\r\n\r\n" + "".join(line + "\r\n" for line in lines) + "!").encode()
        return body + ("%04X\r\n" % crc16(body)).encode()

    def notification(self, now=None):
        """The next readings as a DLMS data-notification (OBIS triples or the compact layout)."""
        self.telegram(now)                      # advances the registers like the P1 meters
        t = local_time(self.last, self.zone)
        clock = bytes([t[0] >> 8, t[0] & 255, t[1], t[2], t[6] + 1, t[3], t[4], t[5], 0,
                       0x80, 0x00, 0x80 if t[7] else 0x00])        # deviation not specified
        use, give = max(self.power, 0.0), max(-self.power, 0.0)
        wh = (int(self.imported * 1000), int(self.exported * 1000),
              int(self.reactive_in * 1000), int(self.reactive_out * 1000))
        if self.content == "compact":
            items = [_octets(clock)] + [_u32(v) for v in wh] + [_u32(int(use * 1000)), _u32(int(give * 1000)),
                                                                 _u32(0), _u32(int(100 * abs(self.power)))]
        else:
            volts = [int(self.rng.uniform(2280, 2360)) for _ in range(3)]
            items = _reading((0, 0, 1, 0, 0), _octets(clock))
            for code, v in zip(((1, 0, 1, 8, 0), (1, 0, 2, 8, 0), (1, 0, 3, 8, 0), (1, 0, 4, 8, 0)), wh):
                items += _reading(code, _u32(v), 0, 30 if code[2] <= 2 else 32)
            items += _reading((1, 0, 1, 7, 0), _u32(int(use * 1000)), 0, 27)
            items += _reading((1, 0, 2, 7, 0), _u32(int(give * 1000)), 0, 27)
            for c, v in zip((32, 52, 72), volts):
                items += _reading((1, 0, c, 7, 0), _u16(v), -1, 35)
            for c, share, v in zip((31, 51, 71), (0.5, 0.3, 0.2), volts):
                items += _reading((1, 0, c, 7, 0), _u16(int(abs(self.power) * share * 1e6 / v)), -2, 33)
            items += _reading((1, 0, 13, 7, 0), _u16(int(self.rng.uniform(900, 1000))), -3, 255)
            items.append(_octets(METER_NAME[-12:].encode()))
        return b"\x0f" + self.counter.to_bytes(4, "big") + b"\x0c" + clock + _struct(items)

    def encrypt(self, plaintext):
        """A general-glo-ciphering frame around plaintext; the frame counter moves on.
        Security 0x30: GCM with a 12-byte tag; 0x20: encrypted only, no tag."""
        fc = self.counter.to_bytes(4, "big")
        self.counter += 1
        sealed = self.gcm.encrypt(self.title + fc, bytes([self.sc]) + self.auth_key, plaintext, 12)
        if not self.sc & 0x10:
            sealed = sealed[:-12]
        body = bytes([self.sc]) + fc + sealed
        return b"\xdb\x08" + self.title + ber_length(len(body)) + body

    def frame(self, now=None):
        """One reading, encrypted and wrapped in the profile's link framing."""
        if self.content == "dsmr":
            self.plain = self.telegram(now)
            return self.plain if self.link == "plain" else self.encrypt(self.plain)
        apdu = self.encrypt(self.notification(now))
        if self.link == "mbus":
            return mbus_frames(apdu)
        if self.link == "hdlc":
            return hdlc_frames(apdu)
        return b"".join(hdlc_frames(block) for block in block_transfer(apdu, 120))

    def next_bytes(self, now=None):
        """What the meter puts on the line next: one frame, plus a fault now and then."""
        self.frames += 1
        frame = self.frame(now)
        if not self.faults or self.frames % self.faults:
            return self._intact(frame)
        fault = FAULTS[(self.frames // self.faults) % len(FAULTS)]
        if fault == "noise":
            return bytes(self.rng.getrandbits(8) for _ in range(37)) + self._intact(frame)
        if fault == "bad tag":
            bad = bytearray(frame)
            bad[-1] ^= 0x40
            return bytes(bad)
        # truncated: the line dropped the end of one frame; the next one follows at once
        return frame[:len(frame) // 2] + self._intact(self.frame(now))

    def _intact(self, frame):
        if self.content == "dsmr":
            self.intact.append(self.plain)
        return frame


# -- A-XDR and link framing, written out here (the firmware only ever reads them) -------------------

def _octets(b):
    return b"\x09" + ber_length(len(b)) + b


def _u32(v):
    return b"\x06" + (v & 0xFFFFFFFF).to_bytes(4, "big")


def _u16(v):
    return b"\x12" + (v & 0xFFFF).to_bytes(2, "big")


def _struct(items):
    return b"\x02" + ber_length(len(items)) + b"".join(items)


def _reading(code, value, scaler=None, unit=None):
    items = [_octets(bytes(code) + b"\xff"), value]
    if scaler is not None:
        items.append(b"\x02\x02\x0f" + (scaler & 0xFF).to_bytes(1, "big") + b"\x16" + bytes([unit]))
    return items


def mbus_frames(apdu, size=245):
    """M-Bus long frames (C 53, A FF, CI = segment number | 0x10 on the last, STSAP 01, DTSAP 67)."""
    parts = [apdu[i:i + size] for i in range(0, len(apdu), size)]
    out = b""
    for seq, data in enumerate(parts):
        body = bytes([0x53, 0xFF, seq | (0x10 if seq == len(parts) - 1 else 0), 0x01, 0x67]) + data
        out += bytes([0x68, len(body), len(body), 0x68]) + body + bytes([sum(body) & 0xFF, 0x16])
    return out


def hdlc_frames(apdu, size=200):
    """HDLC UI frames (dst CF, src 02 23, control 13), LLC E6 E7 00 first, segmentation bit 0x08."""
    data = b"\xe6\xe7\x00" + apdu
    parts = [data[i:i + size] for i in range(0, len(data), size)]
    out = b""
    for k, part in enumerate(parts):
        length = 2 + 3 + 1 + 2 + len(part) + 2          # format, addresses, control, HCS, info, FCS
        head = bytes([0xA0 | (0x08 if k < len(parts) - 1 else 0) | (length >> 8), length & 255, 0xCF, 0x02, 0x23, 0x13])
        hcs = loops.crc16_x25(head, 0, len(head)).to_bytes(2, "little")
        body = head + hcs + part
        out += b"\x7e" + body + loops.crc16_x25(body, 0, len(body)).to_bytes(2, "little") + b"\x7e"
    return out


def block_transfer(apdu, size):
    """General block transfer: E0, last-block bit 0x80, block number from 1, ack 0, length, data."""
    parts = [apdu[i:i + size] for i in range(0, len(apdu), size)]
    return [b"\xe0" + bytes([0x80 if k == len(parts) - 1 else 0]) + (k + 1).to_bytes(2, "big") + b"\x00\x00"
            + ber_length(len(part)) + part for k, part in enumerate(parts)]


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
