# The one place that knows which Python we run on. Everything else imports from here and stays
# identical on MicroPython (the dongle, the unix port) and CPython (the host tools and tests).
#
# What differs:
#   const        - micropython.const folds constants at compile time; a no-op on CPython
#   aes_ecb(key) - an AES-128 block encryptor with encrypt(src, dst) over whole blocks:
#                  cryptolib (hardware AES on the ESP32) or the `cryptography` package
#   ticks_ms / ticks_diff - a wrapping millisecond clock and the difference of two readings
#   MICROPYTHON  - True under MicroPython, for the few choices (viper fast paths) made at import
import sys

MICROPYTHON = sys.implementation.name == "micropython"

if MICROPYTHON:
    from micropython import const
    import cryptolib
    import time

    _ECB = const(1)

    class _Ecb:
        def __init__(self, key):
            self._aes = cryptolib.aes(key, _ECB)

        def encrypt(self, src, dst):
            # cryptolib wants whole blocks and writes into dst without allocating.
            self._aes.encrypt(src, dst)

    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff

else:
    import time
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    def const(x):
        return x

    class _Ecb:
        def __init__(self, key):
            self._enc = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()

        def encrypt(self, src, dst):
            dst[:] = self._enc.update(bytes(src))

    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b


def aes_ecb(key):
    if len(key) != 16:
        raise ValueError("AES-128 needs a 16-byte key")
    return _Ecb(key)
