"""Austrian meters' frames, built the way the meters build them and independently of the firmware:
A-XDR data with `dlms_cosem`'s encoders, HDLC frames with `dlms_cosem`'s HDLC frames (HCS/FCS by
its own CRC), encryption with `cryptography`, M-Bus frames and block transfer written out here."""
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from dlms_cosem import dlms_data as dd
from dlms_cosem.hdlc import address as hdlc_address
from dlms_cosem.hdlc import frames as hdlc_frames

import meter

# DLMS units (IEC 62056-62)
W, WH, VAR, VARH, A, V, NO_UNIT = 27, 30, 29, 32, 33, 35, 255

CLOCK = bytes.fromhex("07EA0B1903") + bytes.fromhex("0E1E2D00FFC400")   # 2026-11-25 14:30:45, winter


def obis(code):
    """'1-0:1.8.0' -> the 6-byte OBIS octet string (F = 255)."""
    a, rest = code.split("-")
    b, rest = rest.split(":")
    c, d, e = rest.split(".")
    return bytes([int(a), int(b), int(c), int(d), int(e), 255])


def reading(code, value, scaler=None, unit=None):
    """The A-XDR items for one reading: OBIS, value [, scaler/unit structure]."""
    items = [dd.OctetStringData(obis(code)), value]
    if scaler is not None:
        items.append(dd.DataStructure([dd.IntegerData(scaler), dd.EnumData(unit)]))
    return items


def notification(items, clock=CLOCK, invoke=0x80000001):
    """A data-notification: 0F, long invoke id, date-time (0C + 12 bytes), a structure of items."""
    body = dd.DataStructure(items).to_bytes()
    return b"\x0f" + invoke.to_bytes(4, "big") + (b"\x0c" + clock if clock else b"\x00") + body


NETZNOE_LIKE = (
    reading("0-0:1.0.0", dd.OctetStringData(CLOCK))
    + reading("1-0:1.8.0", dd.DoubleLongUnsignedData(123456789), 0, WH)
    + reading("1-0:2.8.0", dd.DoubleLongUnsignedData(42), 0, WH)
    + reading("1-0:1.7.0", dd.DoubleLongUnsignedData(1234), 0, W)
    + reading("1-0:2.7.0", dd.DoubleLongUnsignedData(0), 0, W)
    + reading("1-0:32.7.0", dd.UnsignedLongData(2301), -1, V)
    + reading("1-0:52.7.0", dd.UnsignedLongData(2299), -1, V)
    + reading("1-0:72.7.0", dd.UnsignedLongData(2317), -1, V)
    + reading("1-0:31.7.0", dd.UnsignedLongData(153), -2, A)
    + reading("1-0:51.7.0", dd.UnsignedLongData(7), -2, A)
    + reading("1-0:71.7.0", dd.UnsignedLongData(1200), -2, A)
    + reading("1-0:13.7.0", dd.LongData(-987), -3, NO_UNIT)
    + [dd.OctetStringData(b"123456789012")]
)
# What those readings must look like in the rendered telegram.
NETZNOE_LINES = [
    "0-0:1.0.0(261125143045W)",
    "1-0:1.8.0(123456.789*kWh)", "1-0:2.8.0(000000.042*kWh)",
    "1-0:1.7.0(01.234*kW)", "1-0:2.7.0(00.000*kW)",
    "1-0:32.7.0(230.1*V)", "1-0:52.7.0(229.9*V)", "1-0:72.7.0(231.7*V)",
    "1-0:31.7.0(001.53*A)", "1-0:51.7.0(000.07*A)", "1-0:71.7.0(012.00*A)",
    "1-0:13.7.0(-0.987)", "0-0:96.1.0(123456789012)",
]

TITLE = b"KFM" + bytes.fromhex("6750001234")


def glo(plain, key=meter.KEY, auth_key=meter.LUX_AUTH_KEY, title=TITLE, counter=1, sc=0x30):
    """A general-glo-ciphering APDU. sc 0x30: GCM with a 12-byte tag; 0x20: encrypted, no tag."""
    fc = counter.to_bytes(4, "big")
    sealed = AESGCM(key).encrypt(title + fc, plain, bytes([sc]) + auth_key)
    body = bytes([sc]) + fc + (sealed[:-4] if sc & 0x10 else sealed[:-16])
    return b"\xdb\x08" + title + meter.ber_length(len(body)) + body


def mbus(apdu, size=245, quirk=False, c=0x53, a=0xFF):
    """M-Bus long frames carrying apdu in segments of `size` data bytes (Netz NOE: 245).
    quirk: write L mod 256 into the length bytes, as some Sagemcom meters do."""
    parts = [apdu[i:i + size] for i in range(0, len(apdu), size)] or [b""]
    out = b""
    for seq, data in enumerate(parts):
        ci = seq | (0x10 if seq == len(parts) - 1 else 0)
        body = bytes([c, a, ci, 0x01, 0x67]) + data
        length = len(body) & 0xFF if quirk else len(body)
        assert quirk or length <= 255
        out += bytes([0x68, length, length, 0x68]) + body + bytes([sum(body) & 0xFF, 0x16])
    return out


def hdlc(apdu, size=200, llc=b"\xe6\xe7\x00", shared_flags=False, server=(1, 17)):
    """HDLC UI frames (dlms_cosem's) carrying llc + apdu in segments of `size` bytes, from the
    server (logical, physical) address `server`."""
    data = llc + apdu
    parts = [data[i:i + size] for i in range(0, len(data), size)]
    frames = []
    for k, part in enumerate(parts):
        f = hdlc_frames.UnnumberedInformationFrame(
            destination_address=hdlc_address.HdlcAddress(0x10, None, "client"),
            source_address=hdlc_address.HdlcAddress(server[0], server[1], "server"),
            payload=part, segmented=k < len(parts) - 1, final=True)
        frames.append(f.to_bytes())
    if shared_flags:                     # 7E ... 7E ... 7E: one flag between frames
        return frames[0] + b"".join(f[1:] for f in frames[1:])
    return b"".join(frames)


def block_transfer(apdu, size=100):
    """General block transfer: E0 <control: 0x80 on the last block> <number: 2> <ack: 2> <len> <data>."""
    parts = [apdu[i:i + size] for i in range(0, len(apdu), size)]
    out = []
    for k, part in enumerate(parts):
        ctrl = 0x80 if k == len(parts) - 1 else 0x00
        out.append(b"\xe0" + bytes([ctrl]) + (k + 1).to_bytes(2, "big") + b"\x00\x00"
                   + meter.ber_length(len(part)) + part)
    return out


# A-XDR written out by hand, for what dlms_cosem will not encode (null-data, visible-string) and
# for pushes that are wrong on purpose (an item of another type than its layout says).
NULL = b"\x00"


def visible(text):
    return b"\x0a" + bytes([len(text)]) + text


def octets(raw):
    return b"\x09" + bytes([len(raw)]) + raw


def double_long_unsigned(v):
    return b"\x06" + v.to_bytes(4, "big")


def structure(items):
    """An A-XDR structure of encoded items."""
    return bytes([0x02, len(items)]) + b"".join(items)


def raw_notification(data, clock=CLOCK, invoke=0x80000001):
    """A data-notification of already encoded data."""
    return b"\x0f" + invoke.to_bytes(4, "big") + (b"\x0c" + clock if clock else b"\x00") + data


def structure12(number=None, time=None, date=None, values=(29468830, 0, 887, 2116972, 73, 0), texts=True):
    """Kaernten Netz's structure(12) (eww Wels: (10), texts=False): 0-6:25.9.0, meter number, time,
    date, +A, -A, +R, -R (Wh, varh), +P, -P (W), two texts; each item encoded (values: numbers, or
    items encoded), defaults as the IM350 capture's."""
    items = [octets(obis("0-6:25.9.0")),
             octets(b"2221202033801") if number is None else number,
             octets(bytes([14, 55, 33, 0])) if time is None else time,
             octets(bytes([0x07, 0xE5, 3, 7, 7])) if date is None else date]
    items += [v if isinstance(v, bytes) else double_long_unsigned(v) for v in values]
    if texts:
        items += [visible(b"info 1"), visible(b"info 2")]
    return raw_notification(structure(items), clock=None)


def capture_objects(objects, setup="0-8:25.9.0"):
    """A push with its capture objects: an array of {class, OBIS, attribute, index} for the push
    setup and each (class, code, attribute, encoded value) of objects, then the values."""
    def descriptor(cls, code, attr):
        return dd.DataStructure([dd.UnsignedLongData(cls), dd.OctetStringData(obis(code)), dd.IntegerData(attr),
                                 dd.UnsignedLongData(0)]).to_bytes()
    descriptors = [descriptor(40, setup, 2)] + [descriptor(c, code, a) for c, code, a, _ in objects]
    array = bytes([0x01, len(descriptors)]) + b"".join(descriptors)
    return raw_notification(structure([array] + [v for _, _, _, v in objects]), clock=None)
