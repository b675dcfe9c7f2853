# AES-128-GCM on top of a bare AES block function (the only crypto MicroPython's cryptolib has).
#
# Decryption checks before it decrypts: GHASH runs over the ciphertext, the tag is compared in
# constant time, and only a frame whose tag matches is turned into plaintext. A failed frame
# leaves nothing behind in the output buffer that was not there before.
#
# Buffers (counter blocks, key stream, GHASH state and table) are allocated once per key. The AES block function comes
# from compat.aes_ecb: cryptolib (hardware AES on the ESP32) or `cryptography` on CPython.
#
# The loops over bytes (GHASH, counter blocks, XOR, tag compare) live in compat.loops: machine code
# on the dongle, plain Python elsewhere. Everything takes offsets into the caller's buffers, so a
# frame is decrypted without a single new object on MicroPython's heap (open_into).
import struct

from .compat import aes_ecb, const, loops, native_gcm
from .errors import AuthError

_BATCH = const(32)          # counter blocks encrypted per cryptolib call
_J0_END = b"\x00\x00\x00\x01"


class Gcm:
    def __init__(self, key, native=True):
        # native: use the firmware's mbedTLS module when the build has one (same results, tested)
        self._native = native_gcm.GCM(key) if native and native_gcm is not None else None
        if self._native is not None:
            return
        self._ecb = aes_ecb(key)
        self._blk = bytearray(16)       # E_K(J0), then the tag
        self._y = bytearray(16)         # GHASH state
        self._lens = bytearray(16)      # the last GHASH block: bit lengths of aad and ciphertext
        self._ctr = bytearray(16 * _BATCH)
        self._ks = bytearray(16 * _BATCH)
        self._ecb.encrypt(bytes(16), self._blk)
        self._table = loops.ghash_table(self._blk)

    def _tag(self, iv, aad, src, start, end):
        """The full 16-byte tag of (aad, src[start:end]), left in self._blk."""
        y = self._y
        loops.xor_into(y, 0, y, 0, y, 16)        # y = 0
        loops.ghash(y, self._table, aad, 0, len(aad))
        loops.ghash(y, self._table, src, start, end)
        lens = self._lens
        struct.pack_into(">II", lens, 0, 0, len(aad) << 3)
        struct.pack_into(">II", lens, 8, 0, (end - start) << 3)
        loops.ghash(y, self._table, lens, 0, 16)
        blk = self._blk
        loops.copy(blk, 0, iv, 0, 12)
        loops.copy(blk, 12, _J0_END, 0, 4)      # J0 = IV || 1
        self._ecb.encrypt(blk, blk)
        loops.xor_into(blk, 0, blk, 0, y, 16)

    def _ctr_xor(self, iv, src, start, n, dst, doff):
        """dst[doff:doff+n] = src[start:start+n] XOR the key stream of counters J0 + 1, J0 + 2, ..."""
        ctr = self._ctr
        ks = self._ks
        counter = 2
        pos = 0
        while pos < n:
            # The whole batch every time: one cryptolib call, no slices (each one is an object
            # on MicroPython's heap); the few blocks past the end cost less than the objects.
            loops.fill_counters(ctr, iv, _BATCH, counter)
            self._ecb.encrypt(ctr, ks)
            size = n - pos
            if size > 16 * _BATCH:
                size = 16 * _BATCH
            loops.xor_into(dst, doff + pos, src, start + pos, ks, size)
            counter += _BATCH
            pos += size

    @staticmethod
    def _check_args(iv, tag_len):
        if len(iv) != 12:
            raise ValueError("GCM here takes a 96-bit IV")
        if not 12 <= tag_len <= 16:
            raise ValueError("GCM tag must be 12 to 16 bytes")

    def open_into(self, iv, aad, buf, start, end, tag_len, out):
        """Verify the tag that follows buf[start:end], then decrypt buf[start:end] into out[0:].

        The allocation-free form for frames: ciphertext and tag stay where they are in the frame.
        Returns the plaintext length. Raises AuthError on a bad tag; out then holds no plaintext
        (untouched here, cleared by the native module)."""
        self._check_args(iv, tag_len)
        _check_range(buf, start, end, tag_len, out)
        if self._native is not None:
            if self._native.open_into(iv, aad, buf, start, end, tag_len, out) < 0:
                raise AuthError("authentication failed: wrong key or authentication key")
            return end - start
        self._tag(iv, aad, buf, start, end)
        if not loops.equal(self._blk, 0, buf, end, tag_len):
            raise AuthError("authentication failed: wrong key or authentication key")
        self._ctr_xor(iv, buf, start, end - start, out, 0)
        return end - start

    def ctr_into(self, iv, buf, start, end, out):
        """Decrypt buf[start:end] into out[0:] WITHOUT checking any tag (GCM's counter mode, from
        J0 + 1). Only for frames that carry no tag (security 0x20) or whose authentication key the
        utility does not hand out; the caller says so to the user. Returns the length."""
        if len(iv) != 12:
            raise ValueError("GCM here takes a 96-bit IV")
        _check_range(buf, start, end, 0, out)
        if self._native is not None:
            return self._native.ctr_into(iv, buf, start, end, out)
        self._ctr_xor(iv, buf, start, end - start, out, 0)
        return end - start

    def decrypt_into(self, iv, aad, ct, tag, out):
        """Verify tag over (aad, ct), then write the plaintext to out[:len(ct)] and return its length.

        Raises AuthError when the tag does not match, and out holds no plaintext: untouched here,
        cleared by the native module."""
        self._check_args(iv, len(tag))
        n = len(ct)
        _check_range(ct, 0, n, 0, out)
        if self._native is not None:
            # mbedTLS wants the tag right behind the ciphertext (as it is in a frame)
            return self.open_into(iv, aad, bytes(ct) + bytes(tag), 0, n, len(tag), out)
        self._tag(iv, aad, ct, 0, n)
        if not loops.equal(self._blk, 0, tag, 0, len(tag)):
            raise AuthError("authentication failed: wrong key or authentication key")
        self._ctr_xor(iv, ct, 0, n, out, 0)
        return n

    def decrypt(self, iv, aad, ct, tag):
        out = bytearray(len(ct))
        self.decrypt_into(iv, aad, ct, tag, out)
        return bytes(out)

    def encrypt(self, iv, aad, pt, tag_len=16):
        """Return ciphertext || tag (the meter's side, for the emulator and the tests)."""
        self._check_args(iv, tag_len)
        if self._native is not None:
            return self._native.seal(iv, aad, pt, tag_len)
        n = len(pt)
        out = bytearray(n + tag_len)
        self._ctr_xor(iv, pt, 0, n, out, 0)
        self._tag(iv, aad, out, 0, n)
        loops.copy(out, n, self._blk, 0, tag_len)
        return bytes(out)


def _check_range(buf, start, end, extra, out):
    # buf[start:end] and `extra` bytes behind it (the tag) inside buf; out room for the plaintext.
    # The loops run as machine code on the dongle, without bounds checks of their own.
    if start < 0 or start > end or end + extra > len(buf):
        raise ValueError("GCM input range outside its buffer")
    if len(out) < end - start:
        raise ValueError("GCM output buffer too small")
