# A DLMS data-notification (what meters on M-Bus and HDLC customer ports push), read as A-XDR.
#
#   0F <long-invoke-id-and-priority: 4> <date-time: 00 | 0C + 12 bytes | 09 0C + 12 bytes> <data>
#
# decode() reads the data as a tree of items, exactly to the last byte: a push that does not
# parse to its end, nests too deep or carries a type we do not know is a bad frame, never half
# read. What the items mean (which value is which, in which unit) is the layouts' job
# (layouts/). An item is a tuple:
#   (ARRAY, [items])  (STRUCT, [items])  (STR, bytes, tag)  (INT, value, tag)  (NULL,)
# where tag is the A-XDR type (09 octet-string, 0A visible-string, 06 double-long-unsigned...).
#
# Sagemcom's XT211 (Czechia: EG.D's "Komunikacni rozhrani RS485", CEZ) writes each object as a
# structure of 2 whose first element is its COSEM descriptor without type tags: class id (2
# bytes), OBIS code (6), attribute index (1), then the tagged value. A push that does not parse
# as plain A-XDR is read once more allowing that form (a structure of 2 that starts 00, its class
# id's high byte); only a push that then parses to its last byte is taken. Such a descriptor is
# the item (UNTAGGED, class id, OBIS code, attribute index).
from .compat import const
from .errors import FrameError
from .frames import ber_length

ARRAY = const(1)
STRUCT = const(2)
STR = const(3)
INT = const(4)
NULL = const(5)
UNTAGGED = const(7)

# A-XDR fixed-size integer types: (tag, bytes, signed)
_INTS = (
    (0x03, 1, False),   # boolean
    (0x05, 4, True),    # double-long
    (0x06, 4, False),   # double-long-unsigned
    (0x0F, 1, True),    # integer
    (0x10, 2, True),    # long
    (0x11, 1, False),   # unsigned
    (0x12, 2, False),   # long-unsigned
    (0x14, 8, True),    # long64
    (0x15, 8, False),   # long64-unsigned
    (0x16, 1, False),   # enum
)
_STRINGS = (0x09, 0x0A, 0x0C)     # octet-string, visible-string, utf8-string
_MAX_DEPTH = const(8)
_MAX_ITEMS = const(400)           # a push is a few dozen values; more is no push we know


class Notification:
    def __init__(self, clock, body):
        self.clock = clock      # the 12-byte date-time of the header, or None
        self.body = body        # the data: an item as above


def decode(apdu, n=-1):
    """The data-notification in apdu[0:n]. Raises FrameError when it is none, or when its data
    does not parse exactly to its last byte."""
    if n < 0:
        n = len(apdu)
    if n < 7 or apdu[0] != 0x0F:
        raise FrameError("not a DLMS data-notification (expected 0F)")
    i = 5                               # after the tag and the long invoke id
    clock = None
    b = apdu[i]
    if b == 0x09 and i + 1 < n and apdu[i + 1] == 0x0C:   # some meters tag it as octet-string
        i += 1
        b = 0x0C
    if b == 0x0C:
        if i + 13 > n:
            raise FrameError("data-notification cut short in its date-time")
        clock = bytes(apdu[i + 1:i + 13])
        i += 13
    elif b == 0x00:
        i += 1
    else:
        raise FrameError("data-notification date-time of length %d" % b)
    try:
        return Notification(clock, _data(apdu, n, i, False))
    except FrameError as e:
        try:
            return Notification(clock, _data(apdu, n, i, True))
        except FrameError:
            raise e                     # the plain reading's complaint says more


def _data(apdu, n, i, untagged):
    reader = _Reader(apdu, n, untagged)
    body = reader.item(i, 0)
    if reader.i != n:
        raise FrameError("data-notification: %d bytes after its data" % (n - reader.i))
    if untagged and not reader.untagged:
        raise FrameError("no untagged descriptor")
    return body


class _Reader:
    def __init__(self, apdu, n, untagged=False):
        self.apdu = apdu
        self.n = n
        self.i = 0
        self.items = 0
        self.allow_untagged = untagged
        self.untagged = 0               # how many were read

    def item(self, i, depth):
        """The item at apdu[i]; self.i is where it ends."""
        apdu = self.apdu
        n = self.n
        if i >= n:
            raise FrameError("data-notification cut short")
        if depth > _MAX_DEPTH:
            raise FrameError("data-notification nested too deep")
        self.items += 1
        if self.items > _MAX_ITEMS:
            raise FrameError("data-notification with more than %d values" % _MAX_ITEMS)
        tag = apdu[i]
        i += 1
        if tag == 0x01 or tag == 0x02:          # array, structure
            count, i = self.length(i)
            if tag == 0x02 and count == 2 and self.allow_untagged and i < n and apdu[i] == 0x00:
                return self.described(i, depth)
            items = []
            for _ in range(count):
                items.append(self.item(i, depth + 1))
                i = self.i
            self.i = i
            return (ARRAY if tag == 0x01 else STRUCT, items)
        if tag in _STRINGS:
            size, i = self.length(i)
            if i + size > n:
                raise FrameError("data-notification cut short in a string")
            self.i = i + size
            return (STR, bytes(apdu[i:i + size]), tag)
        if tag == 0x19:                         # date-time, 12 bytes without a length
            if i + 12 > n:
                raise FrameError("data-notification cut short in a date-time")
            self.i = i + 12
            return (STR, bytes(apdu[i:i + 12]), 0x09)
        if tag == 0x00:                         # null-data
            self.i = i
            return (NULL,)
        for kind, size, signed in _INTS:
            if kind == tag:
                break
        else:
            raise FrameError("data-notification: A-XDR type 0x%02X not supported" % tag)
        if i + size > n:
            raise FrameError("data-notification cut short in a number")
        v = 0
        for k in range(size):
            v = (v << 8) | apdu[i + k]
        if signed and v >= 1 << (8 * size - 1):
            v -= 1 << (8 * size)
        self.i = i + size
        return (INT, v, tag)

    def described(self, i, depth):
        """A structure of 2 at apdu[i]: an untagged descriptor and the tagged value."""
        if i + 9 > self.n:
            raise FrameError("data-notification cut short in a descriptor")
        apdu = self.apdu
        descriptor = (UNTAGGED, (apdu[i] << 8) | apdu[i + 1], bytes(apdu[i + 2:i + 8]), apdu[i + 8])
        self.untagged += 1
        value = self.item(i + 9, depth + 1)
        return (STRUCT, [descriptor, value])

    def length(self, i):
        # BER-style length (frames.ber_length); returns (length, index after it)
        v = ber_length(self.apdu, i, self.n)
        if v == -1 and i >= self.n:
            raise FrameError("data-notification cut short")
        if v < 0:
            raise FrameError("data-notification: bad length 0x%02X" % self.apdu[i])
        return v >> 2, i + (v & 3)


def describe(item):
    """A short description of an item for one-line messages: 'structure of 13 items, first
    09 07 KFM_001'."""
    if item[0] == ARRAY or item[0] == STRUCT:
        items = item[1]
        first = (", first " + describe(items[0])) if items else ""
        return "%s of %d items%s" % ("array" if item[0] == ARRAY else "structure", len(items), first)
    if item[0] == STR:
        raw = item[1]
        shown = raw[:16]
        text = "".join(chr(c) if 0x20 <= c < 0x7F else "." for c in shown)
        return "%02X %02X %s" % (item[2], len(raw), text)
    if item[0] == INT:
        return "%02X %d" % (item[2], item[1])
    if item[0] == UNTAGGED:
        return "descriptor %d %d-%d:%d.%d.%d/%d" % ((item[1],) + tuple(item[2][:5]) + (item[3],))
    return "00 (null)"
