"""Test data the way a meter makes it, built independently of the firmware's own code.

Telegrams get their CRC from a bit-by-bit CRC-16/ARC written here, and frames are encrypted with
`cryptography`'s AES-GCM, so the firmware is checked against references, not against itself.
"""
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

LUX_AUTH_KEY = bytes.fromhex("00112233445566778899AABBCCDDEEFF")
KEY = bytes.fromhex("AE4F1D0F8F0B5E7C1E0C2A33B4D5E6F7")
SYSTEM_TITLE = b"SAG" + bytes.fromhex("1030000123")


def crc16_arc(data):
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc


def telegram(body_lines, header="/Lux5\\253663629_D", crc=True, lower=False):
    """A DSMR telegram: header, empty line, body lines, '!' and the CRC over '/'..'!'."""
    text = header + "\r\n\r\n" + "".join(line + "\r\n" for line in body_lines) + "!"
    raw = text.encode()
    if not crc:
        return raw + b"\r\n"
    digits = "%04X" % crc16_arc(raw)
    return raw + (digits.lower() if lower else digits).encode() + b"\r\n"


LUX_BODY = [
    "1-3:0.2.8(42)",
    "0-0:1.0.0(220614094609S)",
    "0-0:42.0.0(53414731303330373030323839393533)",
    "1-0:1.8.0(023949.193*kWh)",
    "1-0:2.8.0(000000.002*kWh)",
    "1-0:3.8.0(001138.874*kvarh)",
    "1-0:4.8.0(003723.325*kvarh)",
    "1-0:1.7.0(00.231*kW)",
    "1-0:2.7.0(00.000*kW)",
    "1-0:3.7.0(00.000*kvar)",
    "1-0:4.7.0(00.075*kvar)",
    "0-0:17.0.0(027.6*kVA)",
    "1-0:9.7.0(00.251*kVA)",
    "1-0:10.7.0(00.000*kVA)",
    "1-1:31.4.0(040*A)(-040*A)",
    "0-0:96.3.10(1)",
    "0-1:96.3.10(0)",
    "0-2:96.3.10(0)",
    "0-0:96.7.21(00016)",
    "1-0:32.32.0(00004)",
    "1-0:52.32.0(00004)",
    "1-0:72.32.0(00004)",
    "1-0:32.36.0(00000)",
    "1-0:52.36.0(00000)",
    "1-0:72.36.0(00000)",
    "0-0:96.13.0()",
    "0-0:96.13.2()",
    "0-0:96.13.3()",
    "0-0:96.13.4()",
    "0-0:96.13.5()",
    "1-0:32.7.0(233.0*V)",
    "1-0:52.7.0(232.0*V)",
    "1-0:72.7.0(233.0*V)",
    "1-0:31.7.0(000*A)",
    "1-0:51.7.0(000*A)",
    "1-0:71.7.0(000*A)",
    "1-0:21.7.0(00.118*kW)",
    "1-0:41.7.0(00.091*kW)",
    "1-0:61.7.0(00.021*kW)",
    "1-0:22.7.0(00.000*kW)",
    "1-0:42.7.0(00.000*kW)",
    "1-0:62.7.0(00.000*kW)",
    "1-0:23.7.0(00.000*kvar)",
    "1-0:43.7.0(00.000*kvar)",
    "1-0:63.7.0(00.000*kvar)",
    "1-0:24.7.0(00.030*kvar)",
    "1-0:44.7.0(00.014*kvar)",
    "1-0:64.7.0(00.030*kvar)",
]

# A Luxembourg (Smarty) DSMR 5 telegram as the T210-D sends it.
LUX_TELEGRAM = telegram(LUX_BODY)

NL_TELEGRAM = telegram([
    "1-3:0.2.8(50)",
    "0-0:1.0.0(170102192002W)",
    "0-0:96.1.1(4B384547303034303436333935353037)",
    "1-0:1.8.1(000004.426*kWh)",
    "1-0:1.8.2(000002.399*kWh)",
    "1-0:2.8.1(000002.444*kWh)",
    "1-0:2.8.2(000000.000*kWh)",
    "0-0:96.14.0(0002)",
    "1-0:1.7.0(00.244*kW)",
    "1-0:2.7.0(00.000*kW)",
    "0-0:96.7.21(00013)",
    "0-0:96.7.9(00000)",
    "1-0:99.97.0(0)(0-0:96.7.19)",
    "1-0:32.32.0(00000)",
    "1-0:32.36.0(00000)",
    "0-0:96.13.0()",
    "1-0:32.7.0(0230.0*V)",
    "1-0:31.7.0(001*A)",
    "1-0:21.7.0(00.244*kW)",
    "1-0:22.7.0(00.000*kW)",
    "0-1:24.1.0(003)",
    "0-1:96.1.0(3232323241424344313233343536373839)",
    "0-1:24.2.1(170102161005W)(00000.107*m3)",
], header="/ISk5\\2MT382-1000")

DSMR22_TELEGRAM = telegram([
    "0-0:96.1.1(39373936373836373331373137303637)",
    "1-0:1.8.1(00185.000*kWh)",
    "1-0:1.8.2(00084.000*kWh)",
    "1-0:2.8.1(00013.000*kWh)",
    "1-0:2.8.2(00019.000*kWh)",
    "0-0:96.14.0(0001)",
    "1-0:1.7.0(0000.98*kW)",
    "1-0:2.7.0(0000.00*kW)",
    "0-0:17.0.0(999*A)",
    "0-0:96.3.10(1)",
    "0-0:96.13.1()",
    "0-0:96.13.0()",
    "0-1:24.1.0(3)",
    "0-1:96.1.0(3238313031353431303031333733353937)",
    "0-1:24.3.0(121030140000)(00)(60)(1)(0-1:24.2.1)(m3)",
    "(00001.001)",
    "0-1:24.4.0(1)",
], header="/KMP5 KA6U001585575011", crc=False)

# A Belgian e-MUCS (Fluvius) telegram: tariff registers, average and peak demand with its 13-month
# history, limiter, breaker state, gas in not temperature-corrected m3 on 0-1:24.2.3.
BE_TELEGRAM = telegram([
    "0-0:96.1.4(50217)",
    "0-0:96.1.1(3153414733313031303231363035)",
    "0-0:1.0.0(200512135409S)",
    "1-0:1.8.1(000000.034*kWh)",
    "1-0:1.8.2(000015.758*kWh)",
    "1-0:2.8.1(000000.000*kWh)",
    "1-0:2.8.2(000000.011*kWh)",
    "1-0:1.4.0(02.351*kW)",
    "1-0:1.6.0(200509134558S)(02.589*kW)",
    "0-0:98.1.0(3)(1-0:1.6.0)(1-0:1.6.0)(200501000000S)(200423192538S)(03.695*kW)(200401000000S)"
    "(200305122139W)(05.980*kW)(200301000000W)(200210035421W)(04.318*kW)",
    "0-0:96.14.0(0001)",
    "1-0:1.7.0(00.000*kW)",
    "1-0:2.7.0(00.000*kW)",
    "1-0:21.7.0(00.000*kW)",
    "1-0:41.7.0(00.000*kW)",
    "1-0:61.7.0(00.000*kW)",
    "1-0:22.7.0(00.000*kW)",
    "1-0:42.7.0(00.000*kW)",
    "1-0:62.7.0(00.000*kW)",
    "1-0:32.7.0(234.7*V)",
    "1-0:52.7.0(234.7*V)",
    "1-0:72.7.0(234.7*V)",
    "1-0:31.7.0(000.00*A)",
    "1-0:51.7.0(000.00*A)",
    "1-0:71.7.0(000.00*A)",
    "0-0:96.3.10(1)",
    "0-0:17.0.0(999.9*kW)",
    "1-0:31.4.0(999*A)",
    "0-0:96.13.0()",
    "0-1:24.1.0(003)",
    "0-1:96.1.1(37464C4F32313139303333373333)",
    "0-1:24.4.0(1)",
    "0-1:24.2.3(200512134558S)(00112.384*m3)",
], header="/FLU5\\253769484_A")


def ber_length(n, form=None):
    """BER length octets for n: short form below 128, else 81 n or 82 hi lo (form forces 1, 2 or 3 octets)."""
    if form is None:
        form = 1 if n < 0x80 else 2 if n < 0x100 else 3
    if form == 1:
        assert n < 0x80
        return bytes([n])
    if form == 2:
        assert n < 0x100
        return bytes([0x81, n])
    return bytes([0x82, n >> 8, n & 0xFF])


def gcm_encrypt(key, iv, aad, plaintext, tag_len=12):
    enc = Cipher(algorithms.AES(key), modes.GCM(iv)).encryptor()
    enc.authenticate_additional_data(aad)
    ct = enc.update(plaintext) + enc.finalize()
    return ct, enc.tag[:tag_len]


def frame(plaintext, key=KEY, auth_key=LUX_AUTH_KEY, title=SYSTEM_TITLE, counter=1, sc=0x30, form=None):
    """A DLMS general-glo-ciphering frame as the meter sends it."""
    fc = counter.to_bytes(4, "big")
    ct, tag = gcm_encrypt(key, title + fc, bytes([sc]) + auth_key, plaintext)
    body = bytes([sc]) + fc + ct + tag
    return b"\xdb\x08" + title + ber_length(len(body), form) + body


def split(data, sizes):
    """Cut data into chunks whose sizes cycle through `sizes`."""
    out = []
    i = k = 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        out.append(data[i:i + n])
        i += n
        k += 1
    return out


def record(pipe):
    """Make pipe emit its events into the returned list, as (kind, offset, what, has_crc) tuples."""
    events = []
    pipe.emit = lambda *event: events.append(event)
    return events


def values(readings):
    """A telegram's readings (dsmr.parse, axdr) as {name: value}, for tests to look values up."""
    return {row[1]: value for row, value in readings}


def decimal(value):
    """A number reading (mantissa, exponent, unit...) as an exact Decimal."""
    from decimal import Decimal
    return Decimal(value[0]).scaleb(value[1])
