# AES-128-GCM on top of a bare AES block function (the only crypto MicroPython's cryptolib has).
#
# Decryption checks before it decrypts: GHASH runs over the ciphertext, the tag is compared in
# constant time, and only a frame whose tag matches is turned into plaintext. A failed frame
# leaves nothing behind in the output buffer that was not there before.
#
# Buffers (counter blocks, key stream) are allocated once per key. The AES block function comes
# from compat.aes_ecb: cryptolib (hardware AES on the ESP32) or `cryptography` on CPython.
#
# GHASH is the portable 4-bit table method (Shoup) on Python integers, with the bit order of the
# GCM spec: the most significant bit of a block is the coefficient of x^0.
import struct

from .compat import aes_ecb, const
from .errors import AuthError

_BATCH = const(32)          # counter blocks encrypted per cryptolib call
_R = 0xE1 << 120            # x^128 = x^7 + x^2 + x + 1, in the reflected bit order


def _mulx(v):
    # v * x: one step towards x^127 is one bit to the right.
    return (v >> 1) ^ _R if v & 1 else v >> 1


def _reduction_table():
    # What the 4 low bits of Z turn into when Z is multiplied by x^4 and they fall off the end.
    table = []
    for k in range(16):
        v = k
        for _ in range(4):
            v = _mulx(v)
        table.append(v)
    return tuple(table)


_R4 = _reduction_table()


def equal(a, b, n):
    """Constant-time comparison of the first n bytes of a and b."""
    d = 0
    for i in range(n):
        d |= a[i] ^ b[i]
    return d == 0


class Gcm:
    def __init__(self, key):
        self._ecb = aes_ecb(key)
        self._blk = bytearray(16)
        self._ctr = bytearray(16 * _BATCH)
        self._ks = bytearray(16 * _BATCH)
        self._ctr_mv = memoryview(self._ctr)
        self._ks_mv = memoryview(self._ks)
        self._ecb.encrypt(bytes(16), self._blk)
        self._m = self._h_table(int.from_bytes(self._blk, "big"))

    @staticmethod
    def _h_table(h):
        # m[n] = n * H for every 4-bit n, n read with its top bit as x^0 (so m[8] = H).
        m = [0] * 16
        m[8] = h
        m[4] = _mulx(m[8])
        m[2] = _mulx(m[4])
        m[1] = _mulx(m[2])
        for n in (3, 5, 6, 7, 9, 10, 11, 12, 13, 14, 15):
            low = n & -n
            m[n] = m[low] ^ m[n ^ low]
        return tuple(m)

    def _mul_h(self, x):
        # x * H by Horner's rule over the 32 nibbles, least significant (x^124..x^127) first.
        m = self._m
        r = _R4
        z = 0
        for _ in range(32):
            z = (z >> 4) ^ r[z & 15] ^ m[x & 15]
            x >>= 4
        return z

    def _ghash(self, y, data):
        n = len(data)
        full = n - (n & 15)
        for i in range(0, full, 16):
            y = self._mul_h(y ^ int.from_bytes(data[i:i + 16], "big"))
        if full < n:
            y = self._mul_h(y ^ (int.from_bytes(data[full:n], "big") << (8 * (16 - n + full))))
        return y

    def _tag(self, iv, aad, ct):
        """The full 16-byte tag of (aad, ct), left in self._blk."""
        y = self._ghash(0, aad)
        y = self._ghash(y, ct)
        y = self._mul_h(y ^ ((len(aad) << 67) | (len(ct) << 3)))
        blk = self._blk
        blk[0:12] = iv
        blk[12:16] = b"\x00\x00\x00\x01"        # J0 = IV || 1
        self._ecb.encrypt(blk, blk)
        blk[:] = (int.from_bytes(blk, "big") ^ y).to_bytes(16, "big")

    def _ctr_xor(self, iv, src, dst):
        """dst = src XOR key stream, counters J0 + 1, J0 + 2, ..."""
        n = len(src)
        ctr = self._ctr
        for o in range(0, 16 * _BATCH, 16):
            ctr[o:o + 12] = iv
        counter = 2
        pos = 0
        while pos < n:
            size = n - pos
            if size > 16 * _BATCH:
                size = 16 * _BATCH
            blocks = (size + 15) >> 4
            for o in range(0, blocks << 4, 16):
                struct.pack_into(">I", ctr, o + 12, counter & 0xFFFFFFFF)
                counter += 1
            self._ecb.encrypt(self._ctr_mv[:blocks << 4], self._ks_mv[:blocks << 4])
            x = int.from_bytes(src[pos:pos + size], "big") ^ int.from_bytes(self._ks_mv[:size], "big")
            dst[pos:pos + size] = x.to_bytes(size, "big")
            pos += size

    @staticmethod
    def _check_args(iv, tag_len):
        if len(iv) != 12:
            raise ValueError("GCM here takes a 96-bit IV")
        if not 12 <= tag_len <= 16:
            raise ValueError("GCM tag must be 12 to 16 bytes")

    def decrypt_into(self, iv, aad, ct, tag, out):
        """Verify tag over (aad, ct), then write the plaintext to out[:len(ct)] and return its length.

        Raises AuthError, and leaves out untouched, when the tag does not match."""
        self._check_args(iv, len(tag))
        self._tag(iv, aad, ct)
        if not equal(self._blk, tag, len(tag)):
            raise AuthError("authentication failed: wrong key or authentication key")
        n = len(ct)
        self._ctr_xor(iv, ct, memoryview(out)[:n])
        return n

    def decrypt(self, iv, aad, ct, tag):
        out = bytearray(len(ct))
        self.decrypt_into(iv, aad, ct, tag, out)
        return bytes(out)

    def encrypt(self, iv, aad, pt, tag_len=16):
        """Return ciphertext || tag (the meter's side, for the emulator and the tests)."""
        self._check_args(iv, tag_len)
        out = bytearray(len(pt) + tag_len)
        mv = memoryview(out)
        self._ctr_xor(iv, pt, mv[:len(pt)])
        self._tag(iv, aad, mv[:len(pt)])
        mv[len(pt):] = self._blk[:tag_len]
        return bytes(out)
