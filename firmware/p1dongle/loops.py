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
#   ghash_table(h)                         per-key table for ghash from H = E_K(0^128) (16 bytes)
#   ghash(y, table, data, start, end)      y = GHASH state (16 bytes, updated in place) folded over
#                                          data[start:end], the last block padded with zeros
#
# GHASH is Shoup's 4-bit table method with the GCM bit order: the most significant bit of a block
# is the coefficient of x^0. Read as a 128-bit big-endian integer, multiplying by x is a shift
# to the right, and what falls off the end comes back as R = 0xE1 << 120.
import struct

_R = 0xE1 << 120


def mulx(v):
    return (v >> 1) ^ _R if v & 1 else v >> 1


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


def reflected_crc_table(poly):
    # A byte-at-a-time table for a reflected CRC-16 with the given (reflected) polynomial.
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


def crc16_table():
    # CRC-16/ARC: polynomial 0x8005 reflected (0xA001), init 0, no final xor.
    return reflected_crc_table(0xA001)


_CRC = tuple(crc16_table())


def crc16(data, start, end, crc):
    table = _CRC
    for i in range(start, end):
        crc = (crc >> 8) ^ table[(crc ^ data[i]) & 0xFF]
    return crc


def crc16_x25_table():
    # CRC-16/X-25: polynomial 0x1021 reflected (0x8408), init 0xFFFF, final xor 0xFFFF.
    return reflected_crc_table(0x8408)


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
