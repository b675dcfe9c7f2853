# The hot loops of the data path as machine code (@micropython.viper), for the dongle. Same
# functions, arguments and results as loops.py (read that file first: it says what each one does
# and how GHASH is laid out); host_tests check that the two agree byte for byte.
#
# Viper integers are machine words: 32 bits on the ESP32, 64 on a PC. Everything here is written
# for 32-bit words and never lets a value grow past 32 bits, so it means the same on both. A
# 128-bit GHASH value is four words w0..w3, w0 the most significant (it holds x^0..x^31).
import micropython
from array import array

from . import loops

_CRC = array("H", loops.crc16_table())
_X25 = array("H", loops.crc16_x25_table())


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
        m[bit] = loops.mulx(m[bit << 1])
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
            v = loops.mulx(v)
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
    for i in range(start, end):
        crc = (crc >> 8) ^ table[(crc ^ data[i]) & 0xFF]
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
