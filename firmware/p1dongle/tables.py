# What both versions of the hot loops share (loops.py, loops_viper.py) and what their callers
# need to read scan_line's answer: the table builders and constants, in a module of their own so
# that the dongle, which runs the viper loops, never loads the portable ones. And pick(), how a
# table of (key, value) pairs is read: the tables are tuples of literals, which a frozen image
# keeps in flash, where a dict would be built in the heap at import.
_R = 0xE1 << 120


def pick(pairs, key, default=None):
    """The value paired with key in a table of (key, value) pairs, or default."""
    for k, value in pairs:
        if k == key:
            return value
    return default

# scan_line's answers (loops.py says what they mean)
SKIP = 0
FAST = 1
SLOW = 2
ONE = 3


def mulx(v):
    # GCM's multiply by x, on a block read as a 128-bit big-endian integer
    return (v >> 1) ^ _R if v & 1 else v >> 1


def reflected_crc_table(poly, bits=8):
    # A table for a reflected CRC-16 with the given (reflected) polynomial, `bits` at a time: 256
    # entries a byte at a time, or 16 a nibble at a time (32 bytes: the dongle's viper loops keep
    # these, 1 KB of heap less for a loop that runs twice as many steps)
    table = []
    for i in range(1 << bits):
        c = i
        for _ in range(bits):
            c = (c >> 1) ^ poly if c & 1 else c >> 1
        table.append(c)
    return table


def crc16_table():
    # CRC-16/ARC: polynomial 0x8005 reflected (0xA001), init 0, no final xor.
    return reflected_crc_table(0xA001)


def crc16_x25_table():
    # CRC-16/X-25: polynomial 0x1021 reflected (0x8408), init 0xFFFF, final xor 0xFFFF.
    return reflected_crc_table(0x8408)
