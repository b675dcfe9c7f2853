# The hot loops of the data path as machine code (@micropython.viper), for the dongle. Same
# functions, arguments and results as loops.py (read that file first: it says what each one does
# and how GHASH is laid out); host_tests check that the two agree byte for byte.
#
# Viper integers are machine words: 32 bits on the ESP32, 64 on a PC. Everything here is written
# for 32-bit words and never lets a value grow past 32 bits, so it means the same on both. A
# 128-bit GHASH value is four words w0..w3, w0 the most significant (it holds x^0..x^31).
import micropython
from array import array

from .tables import mulx, reflected_crc_table

VIEWS = True        # every loop reads any buffer, a memoryview too (see loops.py)

_CRC = array("H", reflected_crc_table(0xA001, 4))    # CRC-16/ARC (tables.crc16_table)
_X25 = array("H", reflected_crc_table(0x8408, 4))    # CRC-16/X-25


def ghash_table(h):
    # A byte at a time (Shoup's method with 8-bit entries: 16 steps per block instead of 32).
    # Words 0..1023: n * H as w0..w3 for every byte n (top bit = x^0). Words 1024..1279: the
    # reduction of 8 bits falling off the end; it only touches the top 16 bits, so one word (w0).
    # 5 KB per key, allocated once.
    t = array("I", bytes(4 * 1280))
    m = [0] * 256
    m[128] = int.from_bytes(h, "big")
    bit = 64
    while bit:
        m[bit] = mulx(m[bit << 1])
        bit >>= 1
    for n in range(1, 256):
        low = n & -n
        if n != low:
            m[n] = m[low] ^ m[n ^ low]
    for n in range(256):
        v = m[n]
        for w in range(4):
            t[4 * n + w] = (v >> (96 - 32 * w)) & 0xFFFFFFFF
    for k in range(256):
        v = k
        for _ in range(8):
            v = mulx(v)
        t[1024 + k] = v >> 96
    return t


@micropython.viper
def ghash(y: ptr8, table, data: ptr8, start: int, end: int):
    t = ptr32(table)
    z0 = (uint(y[0]) << 24) | (uint(y[1]) << 16) | (uint(y[2]) << 8) | uint(y[3])
    z1 = (uint(y[4]) << 24) | (uint(y[5]) << 16) | (uint(y[6]) << 8) | uint(y[7])
    z2 = (uint(y[8]) << 24) | (uint(y[9]) << 16) | (uint(y[10]) << 8) | uint(y[11])
    z3 = (uint(y[12]) << 24) | (uint(y[13]) << 16) | (uint(y[14]) << 8) | uint(y[15])
    i = start
    while i < end:
        # x = z ^ the next block (zero-padded past end), one byte at a time into its word
        x0 = z0
        x1 = z1
        x2 = z2
        x3 = z3
        j = 0
        while j < 16 and i + j < end:
            b = uint(data[i + j]) << ((3 - (j & 3)) << 3)
            if j < 4:
                x0 ^= b
            elif j < 8:
                x1 ^= b
            elif j < 12:
                x2 ^= b
            else:
                x3 ^= b
            j += 1
        i += 16
        # z = x * H: Horner's rule over the 16 bytes, from the low byte of x3 up
        z0 = uint(0)
        z1 = uint(0)
        z2 = uint(0)
        z3 = uint(0)
        w = 0
        while w < 4:
            if w == 0:
                x = x3
            elif w == 1:
                x = x2
            elif w == 2:
                x = x1
            else:
                x = x0
            k = 0
            while k < 4:
                r = int(z3 & 255)
                z3 = (z3 >> 8) | ((z2 & 255) << 24)
                z2 = (z2 >> 8) | ((z1 & 255) << 24)
                z1 = (z1 >> 8) | ((z0 & 255) << 24)
                z0 = (z0 >> 8) ^ uint(t[1024 + r])
                n = int(x & 255) << 2
                z0 ^= uint(t[n])
                z1 ^= uint(t[n + 1])
                z2 ^= uint(t[n + 2])
                z3 ^= uint(t[n + 3])
                x = x >> 8
                k += 1
            w += 1
    y[0] = z0 >> 24
    y[1] = z0 >> 16
    y[2] = z0 >> 8
    y[3] = z0
    y[4] = z1 >> 24
    y[5] = z1 >> 16
    y[6] = z1 >> 8
    y[7] = z1
    y[8] = z2 >> 24
    y[9] = z2 >> 16
    y[10] = z2 >> 8
    y[11] = z2
    y[12] = z3 >> 24
    y[13] = z3 >> 16
    y[14] = z3 >> 8
    y[15] = z3


@micropython.viper
def copy(dst: ptr8, doff: int, src: ptr8, soff: int, n: int):
    # Forward, byte by byte: callers never copy between overlapping ranges.
    for i in range(n):
        dst[doff + i] = src[soff + i]


@micropython.viper
def xor_into(dst: ptr8, doff: int, src: ptr8, soff: int, ks: ptr8, n: int):
    for i in range(n):
        dst[doff + i] = src[soff + i] ^ ks[i]


@micropython.viper
def equal(a: ptr8, aoff: int, b: ptr8, boff: int, n: int) -> bool:
    d = 0
    for i in range(n):
        d |= a[aoff + i] ^ b[boff + i]
    return d == 0


@micropython.viper
def fill_counters(ctr: ptr8, iv: ptr8, blocks: int, first: int):
    for i in range(blocks):
        o = i << 4
        for j in range(12):
            ctr[o + j] = iv[j]
        c = uint(first + i)
        ctr[o + 12] = c >> 24
        ctr[o + 13] = c >> 16
        ctr[o + 14] = c >> 8
        ctr[o + 15] = c


@micropython.viper
def _crc16(data: ptr8, start: int, end: int, crc: int, table: ptr16) -> int:
    # a nibble at a time (tables.reflected_crc_table(poly, 4)): the low four bits, then the high four
    for i in range(start, end):
        crc ^= data[i]
        crc = (crc >> 4) ^ table[crc & 0xF]
        crc = (crc >> 4) ^ table[crc & 0xF]
    return crc


def crc16(data, start, end, crc):
    return _crc16(data, start, end, crc, _CRC)


def crc16_x25(data, start, end):
    return _crc16(data, start, end, 0xFFFF, _X25) ^ 0xFFFF


@micropython.viper
def sum8(data: ptr8, start: int, end: int) -> int:
    s = 0
    for i in range(start, end):
        s += data[i]
    return s & 0xFF


@micropython.viper
def scan_line(buf: ptr8, i: int, n: int, out: ptr32) -> int:
    eol = i
    while eol < n and buf[eol] != 10:
        eol += 1
    out[0] = eol
    end = eol
    if end > i and buf[end - 1] == 13:
        end -= 1
    if end <= i:
        return 0                                    # SKIP
    c = buf[i]
    if c == 0x21 or c == 0x2F or c == 0x28:         # '!', '/', an orphan '('
        return 0
    # the code, A-B:C.D.E, up to the first '('
    p = i
    key = 0
    v = -1
    f = 0
    bad = 0
    while p < end and buf[p] != 0x28:
        c = buf[p]
        if 0x30 <= c <= 0x39:
            v = c - 0x30 if v < 0 else v * 10 + c - 0x30
            if v > 255:
                bad = 1
        elif v >= 0 and ((f == 0 and c == 0x2D) or (f == 1 and c == 0x3A) or ((f == 2 or f == 3) and c == 0x2E)):
            if f < 2 and v > 7:
                bad = 1
            if f == 0:
                key = v
            elif f == 1:
                key = key * 8 + v
            else:
                key = key * 256 + v
            f += 1
            v = -1
        else:
            bad = 1
        p += 1
    if p >= end or p == i:
        return 0
    out[1] = p
    if bad or f != 4 or v < 0:
        out[2] = -1
    else:
        out[2] = key * 256 + v
    close = p + 1
    while close < end and buf[close] != 0x29:
        close += 1
    if close >= end:
        close = -1                                  # no ')': as find() says it
    out[3] = close
    if close != end - 1 or (eol + 1 < n and buf[eol + 1] == 0x28):
        return 2                                    # SLOW
    # one group: a decimal number, then '*' and the unit, or ')'; else text (ONE)
    j = p + 1
    neg = 0
    if j < close and (buf[j] == 0x2D or buf[j] == 0x2B):
        if buf[j] == 0x2D:
            neg = 1
        j += 1
    m = 0
    significant = 0
    seen = 0
    dec = -1
    while j < close:
        c = buf[j]
        if 0x30 <= c <= 0x39:
            if m or c != 0x30:
                significant += 1
                if significant > 9:
                    return 3
            m = m * 10 + c - 0x30
            seen = 1
            if dec >= 0:
                dec += 1
        elif c == 0x2E and dec < 0:
            dec = 0
        elif c == 0x2A:
            break
        else:
            return 3
        j += 1
    if not seen or dec == 0:
        return 3
    out[4] = 0 - m if neg else m
    out[5] = dec if dec > 0 else 0
    out[6] = j
    return 1                                        # FAST


@micropython.viper
def same(buf: ptr8, pos: int, end: int, text) -> bool:
    n = int(len(text))
    t = ptr8(text)
    if isinstance(text, str):
        for k in range(n):
            if t[k] >= 0x80:
                text = text.encode()        # more bytes than characters: see put_string
                n = int(len(text))
                t = ptr8(text)
                break
    if end - pos != n:
        return False
    for k in range(n):
        if buf[pos + k] != t[k]:
            return False
    return True


@micropython.viper
def put(out, pos: int, text) -> int:
    if isinstance(text, str):
        text = text.encode()                # bytes, not characters (see put_string)
    n = int(len(text))
    if pos < 0 or pos + n > int(len(out)):
        return -1
    buf = ptr8(out)
    t = ptr8(text)
    for k in range(n):
        buf[pos + k] = t[k]
    return pos + n


@micropython.viper
def put_decimal(out, pos: int, m: int, e: int) -> int:
    if pos < 0:
        return -1
    if m == 0 and e > 0:
        e = 0                                       # zero is 0 at any exponent: 00 is no JSON number
    neg = 0
    if m < 0:
        neg = 1
        m = 0 - m
    digits = 1
    x = m
    while x >= 10:
        x = x // 10
        digits += 1
    frac = 0 - e if e < 0 else 0
    if digits < frac + 1:
        digits = frac + 1                           # 0.001: zeros before the digits
    size = neg + digits + (1 if frac else 0) + (e if e > 0 else 0)
    if pos + size > int(len(out)):
        return -1
    buf = ptr8(out)
    if neg:
        buf[pos] = 0x2D
    k = pos + size - 1
    z = e
    while z > 0:                                    # 10**e: zeros behind the digits
        buf[k] = 0x30
        k -= 1
        z -= 1
    written = 0
    while written < digits:
        if frac and written == frac:
            buf[k] = 0x2E
            k -= 1
        buf[k] = 0x30 + m % 10
        m = m // 10
        k -= 1
        written += 1
    return pos + size


@micropython.viper
def put_string(out, pos: int, text) -> int:
    if pos < 0:
        return -1
    n = int(len(text))
    t = ptr8(text)
    size = 2
    for k in range(n):
        c = t[k]
        if c >= 0x80 and isinstance(text, str):
            # A str's len() counts characters, not the bytes of its UTF-8 ("m³" is 2 and 3): a
            # lead byte before the n-th means there are more bytes than n (rare: made as bytes).
            return int(put_string(out, pos, text.encode()))
        if c == 0x22 or c == 0x5C:
            size += 2
        elif c < 0x20:
            size += 6
        else:
            size += 1
    if pos + size > int(len(out)):
        return -1
    buf = ptr8(out)
    buf[pos] = 0x22
    j = pos + 1
    for k in range(n):
        c = t[k]
        if c == 0x22 or c == 0x5C:
            buf[j] = 0x5C
            buf[j + 1] = c
            j += 2
        elif c < 0x20:
            buf[j] = 0x5C
            buf[j + 1] = 0x75
            buf[j + 2] = 0x30
            buf[j + 3] = 0x30
            buf[j + 4] = 0x30 + (c >> 4)
            d = c & 15
            buf[j + 5] = 0x30 + d if d < 10 else 0x57 + d
            j += 6
        else:
            buf[j] = c
            j += 1
    buf[j] = 0x22
    return j + 1


@micropython.viper
def put_key(out, pos: int, name) -> int:
    # ,"name":  (no comma right after '{'); the name escaped as put_string escapes a value
    if pos < 1:
        return -1
    cap = int(len(out))
    buf = ptr8(out)
    j = pos
    if buf[pos - 1] != 0x7B:
        if j >= cap:
            return -1
        buf[j] = 0x2C
        j += 1
    j = int(put_string(out, j, name))
    if j < 0 or j >= cap:
        return -1
    buf[j] = 0x3A
    return j + 1


@micropython.viper
def put_number(out, pos: int, name, m: int, e: int, uout, u: ptr32, unit) -> int:
    # ,"name":<m * 10**e> into out; and ,"name":"unit" into uout at u[0] when there is a unit
    # (the keys as put_key writes them, the unit as put_string)
    j = int(put_key(out, pos, name))
    if j < 0:
        return -1
    cap = int(len(out))
    buf = ptr8(out)
    # the number (as put_decimal)
    if m == 0 and e > 0:
        e = 0
    neg = 0
    if m < 0:
        neg = 1
        m = 0 - m
    digits = 1
    x = m
    while x >= 10:
        x = x // 10
        digits += 1
    frac = 0 - e if e < 0 else 0
    if digits < frac + 1:
        digits = frac + 1
    size = neg + digits + (1 if frac else 0) + (e if e > 0 else 0)
    if j + size > cap:
        return -1
    if neg:
        buf[j] = 0x2D
    k = j + size - 1
    z = e
    while z > 0:
        buf[k] = 0x30
        k -= 1
        z -= 1
    written = 0
    while written < digits:
        if frac and written == frac:
            buf[k] = 0x2E
            k -= 1
        buf[k] = 0x30 + m % 10
        m = m // 10
        k -= 1
        written += 1
    end = j + size
    # the unit
    if int(len(unit)) == 0:
        return end
    p = int(put_string(uout, int(put_key(uout, u[0], name)), unit))
    u[0] = p
    if p < 0:
        return -1
    return end


@micropython.viper
def json_lines(t, i: int, n: int, obj, rows, buf, pos: int, ubuf, u: ptr32, seen) -> int:
    # As many lines from t[i] on as are one number of a known NUM row, or the plain text of a
    # TEXT row (an empty HEX one), or a TIME row's DSMR time stamp (as reading.iso_time writes it),
    # written as put_number and put_key + put_string would: returns
    # the new pos (-1: full); o[7] is where the first line it left is. Each row written goes into
    # seen[u[1]], u[1] counting.
    #
    # This is most of what a DSMR telegram costs MQTT, so the put_* are written out here, not
    # called: a call from machine code to machine code still goes through the interpreter's, and
    # a pointer passed on is boxed as an int (on a 32-bit dongle an address is a big one,
    # allocated every time: which is why o comes as an object). A table row's name and unit need
    # no escaping (test_loops checks the table); a text that would is left to Python.
    o = ptr32(obj)
    src = ptr8(t)
    out = ptr8(buf)
    cap = int(len(buf))
    uo = ptr8(ubuf)
    ucap = int(len(ubuf))
    while i < n:
        kind = int(scan_line(t, i, n, obj))
        if kind == 0:                               # SKIP
            i = o[0] + 1
            continue
        if (kind != 1 and kind != 3) or o[2] < 0:   # FAST or ONE, of an OBIS code
            break
        r = rows.get(o[2])
        if not r:
            break                                   # not a row of the table
        rkind = int(r[3])
        # what goes behind the key: a number (m, e), or the text src[p:close]
        p = o[1] + 1
        close = o[3]
        ulen = 0
        up = ptr8(b"")
        m = 0
        e = 0
        neg = 0
        digits = 0
        frac = 0
        size = 0
        if rkind == 0 and kind == 1:                # NUM
            stop = o[6]
            if stop != close:
                unit = r[4]
                if not unit:
                    break                           # a unit the row does not have: read as text
                ulen = int(len(unit))
                if close - stop - 1 != ulen:
                    break
                up = ptr8(unit)
                k = 0
                while k < ulen and src[stop + 1 + k] == up[k]:
                    k += 1
                if k < ulen:
                    break
            m = o[4]
            e = 0 - o[5]
            if m == 0 and e > 0:
                e = 0                               # zero is 0 at any exponent (as put_decimal)
            if m < 0:
                neg = 1
                m = 0 - m
            digits = 1
            x = m
            while x >= 10:
                x = x // 10
                digits += 1
            frac = 0 - e if e < 0 else 0
            if digits < frac + 1:
                digits = frac + 1
            size = neg + digits + (1 if frac else 0) + (e if e > 0 else 0)
        elif rkind == 1 or (rkind == 2 and close == p):     # TEXT, or an empty HEX
            k = p
            while k < close and 0x20 <= src[k] <= 0x7E and src[k] != 0x22 and src[k] != 0x5C:
                k += 1
            if k < close:
                break                               # to be escaped: read as text
            size = close - p + 2
        elif rkind == 3 and (close - p == 12 or close - p == 13):  # TIME: YYMMDDhhmmss[S|W]
            k = p
            while k < p + 12 and 0x30 <= src[k] <= 0x39:
                k += 1
            if k < p + 12:
                break
            zone = 0                                # as reading.iso_time: none, S +02:00, W +01:00
            if close - p == 13:
                zone = 0x32 if src[p + 12] == 0x53 else (0x31 if src[p + 12] == 0x57 else 0)
                if not zone:
                    break
            size = 21 + (6 if zone else 0)
        else:
            break                                   # other kinds are read in Python
        # ,"name":  (as put_key)
        name = r[1]
        nlen = int(len(name))
        np = ptr8(name)
        if pos < 1:
            pos = -1
            break
        comma = 0 if out[pos - 1] == 0x7B else 1
        j = pos
        if j + comma + nlen + 3 + size > cap:
            pos = -1
            break
        if comma:
            out[j] = 0x2C
            j += 1
        out[j] = 0x22
        for k in range(nlen):
            out[j + 1 + k] = np[k]
        j += nlen + 1
        out[j] = 0x22
        out[j + 1] = 0x3A
        j += 2
        pos = j + size
        if rkind == 3:                              # "20YY-MM-DDThh:mm:ss+0Z:00"
            out[j] = 0x22
            out[j + 1] = 0x32
            out[j + 2] = 0x30
            j += 3
            for k in range(6):                      # YY MM DD hh mm ss, and what follows each
                out[j] = src[p + 2 * k]
                out[j + 1] = src[p + 2 * k + 1]
                out[j + 2] = 0x2D if k < 2 else (0x54 if k == 2 else 0x3A)
                j += 3
            j -= 1                                  # (nothing follows the seconds)
            if zone:
                out[j] = 0x2B
                out[j + 1] = 0x30
                out[j + 2] = zone
                out[j + 3] = 0x3A
                out[j + 4] = 0x30
                out[j + 5] = 0x30
            out[pos - 1] = 0x22
        elif rkind != 0:                            # "text" (as put_string)
            out[j] = 0x22
            for k in range(size - 2):
                out[j + 1 + k] = src[p + k]
            out[pos - 1] = 0x22
        else:                                       # the number, from its last digit (as put_decimal)
            if neg:
                out[j] = 0x2D
            k = pos - 1
            z = e
            while z > 0:
                out[k] = 0x30
                k -= 1
                z -= 1
            written = 0
            while written < digits:
                if frac and written == frac:
                    out[k] = 0x2E
                    k -= 1
                out[k] = 0x30 + m % 10
                m = m // 10
                k -= 1
                written += 1
        # ,"name":"unit" into ubuf at u[0] (as put_key and put_string)
        if ulen:
            q = u[0]
            if q < 1:
                u[0] = -1
                pos = -1
                break
            comma = 0 if uo[q - 1] == 0x7B else 1
            if q + comma + nlen + 5 + ulen > ucap:
                u[0] = -1
                pos = -1
                break
            if comma:
                uo[q] = 0x2C
                q += 1
            uo[q] = 0x22
            for k in range(nlen):
                uo[q + 1 + k] = np[k]
            q += nlen + 1
            uo[q] = 0x22
            uo[q + 1] = 0x3A
            uo[q + 2] = 0x22
            q += 3
            for k in range(ulen):
                uo[q + k] = up[k]
            q += ulen
            uo[q] = 0x22
            u[0] = q + 1
        c = u[1]
        if c < int(len(seen)):
            seen[c] = r
        else:
            seen.append(r)
        u[1] = c + 1
        i = o[0] + 1
    o[7] = i
    return pos


@micropython.viper
def printable(buf: ptr8, start: int, end: int) -> bool:
    for i in range(start, end):
        c = buf[i]
        if (c < 0x20 and c != 9 and c != 10 and c != 13) or c > 0x7E:
            return False
    return True
