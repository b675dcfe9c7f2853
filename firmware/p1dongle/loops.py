# The hot loops of the data path, portable version: plain Python for CPython, and for a MicroPython
# built without the native emitter. loops_viper.py has the same functions compiled to machine code
# with @micropython.viper; compat.loops is whichever this interpreter can run. Both take offsets
# instead of slices, because on MicroPython every slice of a buffer is a new object on the heap.
# The viper versions do not check bounds: callers keep every range inside its buffer.
#
#   copy(dst, doff, src, soff, n)          dst[doff:doff+n] = src[soff:soff+n]  (ranges must not overlap)
#   xor_into(dst, doff, src, soff, ks, n)  dst[doff+i] = src[soff+i] ^ ks[i]   for i < n
#   equal(a, aoff, b, boff, n)             the n bytes match; time does not depend on where they differ
#   fill_counters(ctr, iv, blocks, first)  GCM counter blocks iv || first+i (big-endian), i < blocks
#   crc16(data, start, end, crc)           CRC-16/ARC of data[start:end], continuing crc
#   crc16_x25(data, start, end)            CRC-16/X-25 of data[start:end] (HDLC's HCS and FCS)
#   sum8(data, start, end)                 sum of data[start:end] mod 256 (the M-Bus checksum)
#   scan_line(buf, i, n, out)              one line of telegram text buf[i:n] (see below)
#   same(buf, pos, end, text)              buf[pos:end] is exactly text (bytes or ASCII str)
#   put(buf, pos, text)                    text (bytes or ASCII str) into buf at pos: the new pos, -1 if full
#   put_decimal(buf, pos, m, e)            m * 10**e, its exact digits (m within 30 bits), a JSON number
#                                          (0 at any exponent: 00 is none): new pos or -1
#   put_string(buf, pos, text)             text as a JSON string, quoted, escaped: new pos or -1
#   put_key(buf, pos, name)                ,"name":  (no comma right after '{'; a name needs no
#                                          escaping): new pos or -1
#   put_number(buf, pos, name, m, e, ubuf, u, unit)
#                                          put_key + put_decimal into buf; and, when unit is not
#                                          "", ,"name":"unit" into ubuf at u[0] (u[0] moves on,
#                                          -1 when ubuf is full): one call per reading
#   json_lines(t, i, n, o, rows, buf, pos, ubuf, u, seen)
#                                          put_number for each line from t[i] on that scans as
#                                          FAST and whose key is a NUM row in rows (its unit, or
#                                          none): the new pos; o[7] = the first line not written;
#                                          each row written into seen[u[1]], u[1] counting
#   printable(buf, start, end)             every byte of buf[start:end] is printable ASCII (0x20..0x7E),
#                                          tab, CR or LF
#   ghash_table(h)                         per-key table for ghash from H = E_K(0^128) (16 bytes)
#   ghash(y, table, data, start, end)      y = GHASH state (16 bytes, updated in place) folded over
#                                          data[start:end], the last block padded with zeros
#
# GHASH is Shoup's 4-bit table method with the GCM bit order: the most significant bit of a block
# is the coefficient of x^0. Read as a 128-bit big-endian integer, multiplying by x is a shift
# to the right, and what falls off the end comes back as R = 0xE1 << 120.
import struct

from .tables import FAST, ONE, SKIP, SLOW, crc16_table, crc16_x25_table, mulx

# scan_line and json_lines look for line ends with find(), which a memoryview has not: the text
# they read is bytes or a bytearray (dsmr.read copies a view first; machine code reads any buffer)
VIEWS = False

# scan_line(buf, i, n, out) reads the line that starts at buf[i] (DSMR telegram text, lines end in
# LF, CR before it ignored) and returns what it is; out (array of 32-bit ints, 7 long) gets:
#   out[0]  where the line ends (its LF, or n): the next line starts at out[0] + 1
#   out[1]  where its first '(' is;  out[2] its OBIS code A-B:C.D.E as one key (obis.key: A and B
#           up to 7, C, D, E up to 255), -1 when the code is not of that form
#   out[3]  where the first group's ')' is
#   out[4]  FAST only: the number in that group, as a mantissa ... out[5] its decimals, out[6]
#           where it ended: at ')' or at the '*' before the unit
# returns SKIP (empty, '/', '!', an orphan '(' line, no '(' after a code), FAST (one group that
# is a number of at most 9 significant digits, no continuation line), ONE (one group that is not
# such a number: text, an empty group, a longer number), or SLOW (several groups, no ')', or a
# continuation line follows). (The constants are in tables.py.)


def _reduction_table():
    # What the 4 low bits of Z turn into when Z is multiplied by x^4 and they fall off the end.
    # Only the top 16 bits of each entry are ever set.
    table = []
    for k in range(16):
        v = k
        for _ in range(4):
            v = mulx(v)
        table.append(v)
    return tuple(table)


R4 = _reduction_table()


def h_multiples(h):
    """m[n] = n * H for every 4-bit n, n read with its top bit as x^0 (so m[8] = H)."""
    m = [0] * 16
    m[8] = int.from_bytes(h, "big")
    m[4] = mulx(m[8])
    m[2] = mulx(m[4])
    m[1] = mulx(m[2])
    for n in (3, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15):
        low = n & -n
        m[n] = m[low] ^ m[n ^ low]
    return m


def ghash_table(h):
    return tuple(h_multiples(h))


def _mul_h(x, m, r):
    # x * H by Horner's rule over the 32 nibbles, least significant (x^124..x^127) first.
    z = 0
    for _ in range(32):
        z = (z >> 4) ^ r[z & 15] ^ m[x & 15]
        x >>= 4
    return z


def ghash(y, table, data, start, end):
    r = R4
    v = int.from_bytes(y, "big")
    i = start
    while i + 16 <= end:
        v = _mul_h(v ^ int.from_bytes(data[i:i + 16], "big"), table, r)
        i += 16
    if i < end:
        v = _mul_h(v ^ (int.from_bytes(data[i:end], "big") << (8 * (16 - end + i))), table, r)
    y[0:16] = v.to_bytes(16, "big")


def copy(dst, doff, src, soff, n):
    memoryview(dst)[doff:doff + n] = memoryview(src)[soff:soff + n]


def xor_into(dst, doff, src, soff, ks, n):
    x = int.from_bytes(src[soff:soff + n], "big") ^ int.from_bytes(ks[0:n], "big")
    memoryview(dst)[doff:doff + n] = x.to_bytes(n, "big")


def equal(a, aoff, b, boff, n):
    d = 0
    for i in range(n):
        d |= a[aoff + i] ^ b[boff + i]
    return d == 0


def fill_counters(ctr, iv, blocks, first):
    mv = memoryview(ctr)
    for i in range(blocks):
        o = i << 4
        mv[o:o + 12] = iv
        struct.pack_into(">I", ctr, o + 12, (first + i) & 0xFFFFFFFF)


_CRC = tuple(crc16_table())


def crc16(data, start, end, crc):
    table = _CRC
    for i in range(start, end):
        crc = (crc >> 8) ^ table[(crc ^ data[i]) & 0xFF]
    return crc


_X25 = tuple(crc16_x25_table())


def crc16_x25(data, start, end):
    table = _X25
    crc = 0xFFFF
    for i in range(start, end):
        crc = (crc >> 8) ^ table[(crc ^ data[i]) & 0xFF]
    return crc ^ 0xFFFF


def sum8(data, start, end):
    s = 0
    for i in range(start, end):
        s += data[i]
    return s & 0xFF


def scan_line(buf, i, n, out):
    eol = buf.find(b"\n", i, n)
    if eol < 0:
        eol = n
    out[0] = eol
    end = eol - 1 if eol > i and buf[eol - 1] == 13 else eol
    if end <= i or buf[i] in b"!/(":
        return SKIP
    p = buf.find(b"(", i, end)
    if p <= i:
        return SKIP
    out[1] = p
    out[2] = _key(buf, i, p)
    close = buf.find(b")", p, end)
    out[3] = close
    if close != end - 1 or (eol + 1 < n and buf[eol + 1] == 0x28):
        return SLOW
    m, decimals, stop = _decimal(buf, p + 1, close)
    if decimals < 0:
        return ONE
    out[4] = m
    out[5] = decimals
    out[6] = stop
    return FAST


_SEPS = b"-:.."


def _key(buf, start, end):
    key = 0
    v = -1
    f = 0
    for i in range(start, end):
        c = buf[i]
        if 0x30 <= c <= 0x39:
            v = c - 0x30 if v < 0 else v * 10 + c - 0x30
            if v > 255:
                return -1
        elif f < 4 and c == _SEPS[f] and v >= 0:
            if f < 2 and v > 7:
                return -1
            key = key * (8 if f == 1 else 256) + v if f else v
            f += 1
            v = -1
        else:
            return -1
    if f != 4 or v < 0:
        return -1
    return key * 256 + v


def _decimal(buf, i, end):
    # (mantissa, decimals, where it stopped); decimals -1: not a number we read here
    neg = i < end and buf[i] == 0x2D
    if i < end and buf[i] in b"+-":
        i += 1
    m = 0
    significant = 0
    seen = False
    dec = -1
    while i < end:
        c = buf[i]
        if 0x30 <= c <= 0x39:
            if m or c != 0x30:
                significant += 1
                if significant > 9:
                    return 0, -1, i
            m = m * 10 + c - 0x30
            seen = True
            if dec >= 0:
                dec += 1
        elif c == 0x2E and dec < 0:
            dec = 0
        elif c == 0x2A:
            break
        else:
            return 0, -1, i
        i += 1
    if not seen or dec == 0:
        return 0, -1, i
    return (-m if neg else m), (dec if dec > 0 else 0), i


def same(buf, pos, end, text):
    if isinstance(text, str):
        text = text.encode()
    return end - pos == len(text) and buf[pos:end] == text


def put(buf, pos, text):
    if isinstance(text, str):
        text = text.encode()
    n = len(text)
    if pos < 0 or pos + n > len(buf):
        return -1
    buf[pos:pos + n] = text
    return pos + n


def put_decimal(buf, pos, m, e):
    neg = m < 0
    digits = str(-m if neg else m)
    if e > 0 and m:                 # zero is 0 at any exponent: 00 is no JSON number
        digits += "0" * e
    elif e < 0:
        if len(digits) <= -e:
            digits = "0" * (1 - e - len(digits)) + digits
        digits = digits[:e] + "." + digits[e:]
    return put(buf, pos, ("-" if neg and m else "") + digits)


def put_key(buf, pos, name):
    # ,"name":  (no comma right after '{'); the name escaped as put_string escapes a value
    if pos < 1:
        return -1
    if buf[pos - 1] != 0x7B:
        pos = put(buf, pos, b",")
    return put(buf, put_string(buf, pos, name), b":")


def put_number(buf, pos, name, m, e, ubuf, u, unit):
    pos = put_decimal(buf, put_key(buf, pos, name), m, e)
    if pos >= 0 and unit:
        p = put_string(ubuf, put_key(ubuf, u[0], name), unit)
        u[0] = p
        if p < 0:
            return -1
    return pos


def json_lines(t, i, n, o, rows, buf, pos, ubuf, u, seen):
    while i < n:
        kind = scan_line(t, i, n, o)
        if kind == SKIP:
            i = o[0] + 1
            continue
        if kind not in (FAST, ONE) or o[2] < 0:
            break
        r = rows.get(o[2])
        if not r:
            break
        p, close = o[1] + 1, o[3]
        if r[3] == 0 and kind == FAST:
            stop = o[6]
            unit = ""
            if stop != close:
                unit = r[4]
                if not unit or not same(t, stop + 1, close, unit):
                    break
            pos = put_number(buf, pos, r[1], o[4], -o[5], ubuf, u, unit)
        elif r[3] == 1 or (r[3] == 2 and close == p):
            if not all(0x20 <= c <= 0x7E and c not in (0x22, 0x5C) for c in t[p:close]):
                break
            pos = put(buf, put_key(buf, pos, r[1]), b'"' + bytes(t[p:close]) + b'"')
        elif r[3] == 3 and close - p in (12, 13):
            stamp = bytes(t[p:close])
            zone = b"" if len(stamp) == 12 else {b"S": b"+02:00", b"W": b"+01:00"}.get(stamp[12:])
            if zone is None or not all(0x30 <= c <= 0x39 for c in stamp[:12]):
                break
            s = stamp
            pos = put(buf, put_key(buf, pos, r[1]), b'"20' + s[0:2] + b"-" + s[2:4] + b"-" + s[4:6] + b"T" + s[6:8] +
                      b":" + s[8:10] + b":" + s[10:12] + zone + b'"')
        else:
            break
        if pos < 0:
            break
        c = u[1]
        if c < len(seen):
            seen[c] = r
        else:
            seen.append(r)
        u[1] = c + 1
        i = o[0] + 1
    o[7] = i
    return pos


def put_string(buf, pos, text):
    if isinstance(text, str):
        text = text.encode()
    out = bytearray(b'"')
    for c in text:
        if c == 0x22 or c == 0x5C:
            out += b"\\" + bytes([c])
        elif c < 0x20:
            out += b"\\u%04x" % c
        else:
            out.append(c)
    out += b'"'
    return put(buf, pos, out)


def printable(buf, start, end):
    for i in range(start, end):
        c = buf[i]
        if (c < 0x20 and c not in (9, 10, 13)) or c > 0x7E:
            return False
    return True
