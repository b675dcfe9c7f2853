# Cut complete frames out of the meter's byte stream.
#
# Four kinds of frame are recognised, by their content and length fields, never by timing gaps:
#   DLMS general-glo-ciphering (Luxembourg, Austria on P1):
#     DB 08 <system title: 8> <BER length: n | 81 n | 82 hi lo> <security byte> <frame counter: 4>
#     <ciphertext> [<tag: 12>]          the length counts everything after the length field
#   plain DSMR telegrams (NL, BE, unencrypted meters):
#     /XXXn<identification>\r\n ... !CRC4\r\n      (DSMR 2/3: "!\r\n" without a CRC; some
#                                                   meters: LF alone, a CRC of 3 digits)
#   M-Bus long frames (EN 13757-2; Austrian meters on their M-Bus customer port):
#     68 L L 68 <C A CI ...: L bytes> <checksum: sum of those mod 256> 16
#     Some Sagemcom meters put L mod 256 in the length bytes (0x01 for 257): when L does not make
#     checksum and stop byte fit, L + 256 is tried. That reading rests on 16 bits (the sum and the
#     stop byte), so it is refused when an M-Bus header starts inside it: a broken short frame
#     followed by good ones must not be read as one long frame that swallows them.
#   HDLC frames (IEC 62056-46; Wiener Netze, Linz, Wels):
#     7E <format: Ax xx = type 0xA, segmentation bit 0x08, 11-bit length> <dst, src addresses: bytes
#     up to one with bit 0 set> <control> <HCS: 2> <information> <FCS: 2> 7E
#     HCS and FCS are CRC-16/X-25, low byte first. Frames may share a flag (7E A0 ... 7E A0 ... 7E),
#     and extra flags between frames are fill, not garbage.
#
# Bytes stay in the ring until the consumer is done with a frame. A frame whose check fails later
# (GCM tag, CRC) is handed back with reject(): its first byte is dropped and the rest is scanned
# again, so a bogus length field in garbage, or a frame cut short by the next one, never swallows
# the good frames behind it. Every dropped byte is counted under one reason, and each contiguous
# dropped range is reported once, in stream order, as a DROPPED event.
#
# Use:
#   fa.feed(chunk[, start[, end]])     -> bytes taken (the ring refuses what does not fit)
#   ev = fa.pop(now_ms)                -> NONE (need more bytes), DLMS, DSMR, MBUS, HDLC or DROPPED
#     a frame: fa.buf[0:fa.frame_len] holds it until the next pop (fa.frame: the same as a
#              memoryview), fa.frame_pos is its stream offset; an HDLC frame that shared its
#              opening flag with the one before gets the flag put back in buf
#     DROPPED:     fa.drop_pos, fa.drop_len, fa.drop_reason (index into REASONS), fa.drop_error
#   fa.reject(err)                     the last frame was no good: rescan it
#   fa.flush()                         end of input: what is incomplete now will never complete
from .compat import const, loops, ticks_diff
from .errors import FrameError
from .ringbuf import RingBuffer

NONE = const(0)
DLMS = const(1)
DSMR = const(2)
DROPPED = const(3)
MBUS = const(4)
HDLC = const(5)

GARBAGE = const(0)     # bytes before any plausible frame start (noise, wrong baud, wrong key...)
TOO_LONG = const(1)    # a frame whose length is over max_frame
TRUNCATED = const(2)   # a frame cut short: the next frame starts inside it, or the input ended
TIMEOUT = const(3)     # a partial frame that did not complete within timeout_ms
REJECTED = const(4)    # a complete frame that failed its check downstream (see drop_error)
REASONS = ("garbage", "too long", "truncated", "timeout", "rejected")
# what the bytes of a data-notification sent without a link frame are dropped as (REJECTED)
UNFRAMED = FrameError("a DLMS data-notification without an M-Bus or HDLC frame around it and without a tag "
                      "(Sagemcom XT211 on RS485): nothing proves its bytes intact, not read")

_WAIT = const(0)    # a plausible frame starts at the head; more bytes needed
_BAD = const(1)     # the head byte starts no frame after all
_FRAME = const(2)   # a complete frame is at the head
_SKIP = const(3)    # no frame start in the first n bytes
_FILL = const(4)    # an HDLC flag between frames: step over it quietly

_SLASH = b"/"
_NOTIFICATION = b"\x0f"
_DB = b"\xdb"
_BANG = b"!"
_MBUS_START = b"\x68"
_FLAG = b"\x7e"


def _letter(b):
    return 0x41 <= (b & 0xDF) <= 0x5A


def _hexdigit(b):
    return 0x30 <= b <= 0x39 or 0x41 <= (b & 0xDF) <= 0x46


def ber_length(buf, i, n):
    """The BER length at buf[i] (buf[:n] holds the bytes there are): n | 81 n | 82 hi lo, as a DB
    frame, an A-XDR string or array, a block transfer's block write it; the one reader of them.
    Returns length * 4 + the length field's size (1-3), -1 when buf ends inside the field, -2 for
    a form that is none of these (an int, never a tuple: the frame scanner calls it per candidate)."""
    if i >= n:
        return -1
    b = buf[i]
    if b < 0x80:
        return b * 4 + 1
    if b == 0x81:
        return -1 if i + 1 >= n else buf[i + 1] * 4 + 2
    if b == 0x82:
        return -1 if i + 2 >= n else ((buf[i + 1] << 8) | buf[i + 2]) * 4 + 3
    return -2


def security_ok(sc):
    # Security control byte: suite 0-2 in the low nibble, authentication (0x10) and/or
    # encryption (0x20) set, no broadcast or compression bits. Anything else is not a meter frame.
    return (sc & 0xC0) == 0 and (sc & 0x30) != 0 and (sc & 0x0F) <= 2


class FrameAssembler:
    def __init__(self, max_frame=4096, ring_size=0, timeout_ms=5000):
        if ring_size < max_frame:
            # A whole frame, and a UART read behind it: the ring never holds more than one frame
            # being judged (push() feeds what fits, steps, then feeds the rest).
            ring_size = max_frame + 512
        self.ring = RingBuffer(ring_size)
        self.feed = self.ring.write     # feed(chunk[, start[, end]]): one call less per UART read
        self.max_frame = max_frame
        self.timeout_ms = timeout_ms
        self.buf = bytearray(max_frame)
        self._buf_mv = memoryview(self.buf)
        self.frame_len = 0
        self.dropped = [0] * len(REASONS)   # bytes dropped, per reason
        self.pos = 0                        # stream offset of the oldest byte in the ring
        self.frame_pos = 0
        self.drop_pos = 0
        self.drop_len = 0
        self.drop_reason = GARBAGE
        self.drop_error = None
        self._run_pos = 0       # the dropped range being collected
        self._run_len = 0
        self._run_reason = GARBAGE
        self._run_error = None
        self._sticky = GARBAGE  # reason for bytes skipped after a rejected candidate
        self._sticky_error = None
        self._reject_end = 0    # stream offset where the last rejected frame ended
        self._consume = 0       # length of the frame handed out last, still in the ring
        self._since = None      # when the candidate at the head was first seen
        self._scan = 1          # how far a plain telegram has been searched for its end
        self._eof = False
        self._n = 0             # what _judge found: a length, or a reason when the verdict is _BAD
        self._kind = NONE       # and the kind of frame
        self._need = 0          # length of the frame at the head while it is incomplete
        self._lead = 0          # 1: the HDLC frame at the head shares the flag that ended the last one
        self._copied = False    # the judge already copied the frame into buf (to check it)
        self._hdlc_end = -1     # stream offset just past the last HDLC frame's closing flag

    @property
    def frame(self):
        return self._buf_mv[:self.frame_len]

    def flush(self):
        self._eof = True

    def reject(self, error=None):
        n = self._consume
        self._consume = 0
        self._reject_end = self.pos + n
        self._sticky = REJECTED
        self._sticky_error = error
        # The range before this frame was reported before the frame was handed out, so
        # this starts a new range and there is nothing to report yet.
        self._drop(1)

    def pop(self, now_ms):
        if self._consume:
            self._advance(self._consume)
            self._consume = 0
        ring = self.ring
        if (self._need > ring.count and self._since is not None and not self._eof
                and ticks_diff(now_ms, self._since) <= self.timeout_ms):
            # The frame at the head is still incomplete, and its header was judged already:
            # the per-chunk case, kept short.
            return NONE
        while ring.count:
            verdict = self._judge()
            n = self._n
            if verdict == _WAIT:
                if self._eof:
                    verdict, n = _BAD, TRUNCATED
                elif self._since is None:
                    self._since = now_ms
                elif ticks_diff(now_ms, self._since) > self.timeout_ms:
                    verdict, n = _BAD, TIMEOUT
            if verdict == _BAD:
                # Not a frame after all: drop its first byte and look again right behind it.
                # A false start inside garbage or a rejected frame is more of the same range.
                if n != GARBAGE:
                    self._sticky = n
                    self._sticky_error = None
                if self._drop(1):
                    return DROPPED
                continue
            if verdict == _FILL:
                if self._run_len or self.pos != self._hdlc_end:
                    if self._drop(1):       # a flag that follows no HDLC frame: part of the garbage
                        return DROPPED
                else:
                    self._hdlc_end += 1     # fill behind an HDLC frame: step over it quietly
                    self._advance(1)
                continue
            if verdict == _SKIP:
                # No frame start in these bytes: garbage, or the rest of a dropped frame.
                if self._drop(n):
                    return DROPPED
                continue
            # A plausible frame starts at the head: the dropped range before it is complete.
            if self._run_len:
                return self._end_run()
            self._sticky = GARBAGE
            self._sticky_error = None
            if verdict == _WAIT:
                return NONE
            lead = self._lead
            if not self._copied:
                ring.copy_to(0, n, self.buf)
            self.frame_len = n + lead
            self.frame_pos = self.pos - lead
            self._consume = n
            if self._kind == HDLC:
                self._hdlc_end = self.pos + n
            return self._kind
        if self._eof and self._run_len:
            return self._end_run()
        return NONE

    # -- judging the head of the ring ------------------------------------------------------------

    def _verdict(self, verdict, n, kind):
        # Results go in attributes, not a tuple: a tuple is a heap object on MicroPython.
        self._n = n
        self._kind = kind
        return verdict

    def _judge(self):
        """The verdict on the bytes at the head of the ring; self._n, self._kind say the rest."""
        b = self.ring[0]
        self._lead = 0
        self._copied = False
        if b == 0xDB:
            return self._judge_dlms()
        if b == 0x2F:
            return self._judge_dsmr()
        if b == 0x68:
            return self._judge_mbus()
        if b == 0x7E:
            return self._judge_hdlc(0)
        if b & 0xF0 == 0xA0 and self.pos == self._hdlc_end:
            return self._judge_hdlc(1)
        if b == 0x0F and self._sticky == GARBAGE and self.pos >= self._reject_end:
            return self._judge_unframed()   # (not inside a frame being dropped: its own push)
        i = self._next_start(1, self.ring.count, True)
        return self._verdict(_SKIP, (self.ring.count if i < 0 else i), NONE)

    def _judge_unframed(self):
        # 0F, a 4-byte invoke id, a date-time (00, or 0C / 09 0C and 12 bytes), then XT211's
        # {enum, array of objects} (02 02 16): a DLMS data-notification sent as it is, without an
        # M-Bus or HDLC frame (Sagemcom's XT211 on RS485). No checksum and no tag: nothing proves
        # such bytes intact, so they are never read; they are dropped under one line that says
        # what they were, rather than as garbage of a wrong baud rate. (Only that shape: any
        # push has a 0F, and a link frame whose checksum failed is garbage here too.)
        ring = self.ring
        c = ring.count
        if c < 9:
            return self._verdict(_WAIT, 0, NONE)
        d = ring[5]
        at = 6 if d == 0 else 18 if d == 0x0C else 19 if d == 0x09 and ring[6] == 0x0C else -1
        if at + 3 > c:
            return self._verdict(_WAIT, 0, NONE)
        if at > 0 and ring[at] == 2 and ring[at + 1] == 2 and ring[at + 2] == 0x16:
            self._sticky = REJECTED
            self._sticky_error = UNFRAMED
            return self._verdict(_SKIP, 1, NONE)
        i = self._next_start(1, c, True)
        return self._verdict(_SKIP, (c if i < 0 else i), NONE)

    def _judge_dlms(self):
        ring = self.ring
        c = ring.count
        if c < 11:
            if c >= 2 and ring[1] != 8:
                return self._verdict(_BAD, GARBAGE, NONE)
            return self._verdict(_WAIT, 0, NONE)
        if ring[1] != 8:
            return self._verdict(_BAD, GARBAGE, NONE)
        v = ber_length(ring, 10, c)
        if v == -1:
            return self._verdict(_WAIT, 0, NONE)
        if v == -2:
            return self._verdict(_BAD, GARBAGE, NONE)
        length, h = v >> 2, 10 + (v & 3)
        if c <= h:
            return self._verdict(_WAIT, 0, NONE)
        sc = ring[h]
        if not security_ok(sc):
            return self._verdict(_BAD, GARBAGE, NONE)
        # security byte + frame counter, and the tag when the frame is authenticated
        if length < (17 if sc & 0x10 else 5):
            return self._verdict(_BAD, GARBAGE, NONE)
        total = h + length
        if total > self.max_frame:
            return self._verdict(_BAD, TOO_LONG, NONE)
        if c < total:
            self._need = total
            return self._verdict(_WAIT, 0, NONE)
        return self._verdict(_FRAME, total, DLMS)

    def _judge_dsmr(self):
        ring = self.ring
        c = ring.count
        # The identification line starts with a three-letter manufacturer id (IEC 62056-21).
        for i in (1, 2, 3):
            if i < c and not _letter(ring[i]):
                return self._verdict(_BAD, GARBAGE, NONE)
        if c < 5:
            return self._verdict(_WAIT, 0, NONE)
        if not 0x21 <= ring[4] <= 0x7E:
            return self._verdict(_BAD, GARBAGE, NONE)
        end = c if c < self.max_frame else self.max_frame
        bang = ring.find(_BANG, self._scan, end)
        # A new frame starting before the end means this telegram was cut short. Telegrams are
        # ASCII, so a DB byte ends it; a '/' does when a manufacturer id follows it.
        stop = end if bang < 0 else bang
        i = self._scan
        while True:
            nxt = self._next_start(i, stop)
            if nxt < 0:
                break
            if ring[nxt] == 0xDB:
                return self._verdict(_BAD, TRUNCATED, NONE)
            if nxt + 4 >= c:
                self._scan = nxt    # too few bytes behind that '/' to tell yet
                return self._verdict(_WAIT, 0, NONE)
            if self._header_at(nxt):
                return self._verdict(_BAD, TRUNCATED, NONE)
            i = nxt + 1
        if bang < 0:
            if c >= self.max_frame:
                return self._verdict(_BAD, TOO_LONG, NONE)
            self._scan = end
            return self._verdict(_WAIT, 0, NONE)
        self._scan = bang
        # '!', the CRC (4 hex digits; 3 from meters that drop a leading zero; none in DSMR 2/3),
        # then the line end: CR LF, or after a CRC LF alone, from meters and readers that send
        # only LF (the CRC, which dsmr.check verifies, is over what was sent).
        j = bang + 1
        while j < c and j < bang + 5 and _hexdigit(ring[j]):
            j += 1
        if j >= c:
            return self._verdict(_WAIT, 0, NONE)
        digits = j - bang - 1
        if digits in (1, 2):
            return self._verdict(_BAD, GARBAGE, NONE)
        if ring[j] == 10 and digits:    # (LF alone only where a CRC can prove the telegram)
            total = j + 1
        elif ring[j] == 13:
            if j + 1 >= c:
                return self._verdict(_WAIT, 0, NONE)
            if ring[j + 1] != 10:
                return self._verdict(_BAD, GARBAGE, NONE)
            total = j + 2
        else:
            return self._verdict(_BAD, GARBAGE, NONE)
        if total > self.max_frame:
            return self._verdict(_BAD, TOO_LONG, NONE)
        return self._verdict(_FRAME, total, DSMR)

    def _judge_mbus(self):
        ring = self.ring
        c = ring.count
        if c >= 3 and ring[1] != ring[2]:
            return self._verdict(_BAD, GARBAGE, NONE)
        if c < 4:
            return self._verdict(_WAIT, 0, NONE)
        if ring[3] != 0x68:
            return self._verdict(_BAD, GARBAGE, NONE)
        size = ring[1]
        while size < 0x300:
            total = size + 6
            if total > self.max_frame:
                return self._verdict(_BAD, TOO_LONG, NONE)
            if size > 0xFF and self._mbus_header_in(total if total < c else c):
                # A frame starts inside the L mod 256 reading (where the short one ends, or
                # further on when that one lost a byte): the short one is broken, not a long one
                # that would swallow the frames behind it if its checksum happened to fit.
                break
            if c < total:
                self._need = total
                return self._verdict(_WAIT, 0, NONE)
            if size >= 3 and ring[total - 1] == 0x16:
                buf = self.buf
                ring.copy_to(0, total, buf)
                if loops.sum8(buf, 4, 4 + size) == buf[4 + size]:
                    self._copied = True
                    return self._verdict(_FRAME, total, MBUS)
            size += 256
        return self._verdict(_BAD, GARBAGE, NONE)

    def _mbus_header_in(self, end):
        """Whether an M-Bus header (68 L L 68: 24 bits, one in 16 million in ciphertext) starts
        in ring[1:end]."""
        ring = self.ring
        c = ring.count
        i = ring.find(_MBUS_START, 1, end)
        while 0 <= i and i + 3 < c:
            if ring[i + 3] == 0x68 and ring[i + 1] == ring[i + 2]:
                return True
            i = ring.find(_MBUS_START, i + 1, end)
        return False

    def _judge_hdlc(self, o):
        # o = 1 when the opening flag is the closing flag of the frame before (no 7E at the head):
        # ring index i - o is frame byte i.
        ring = self.ring
        c = ring.count + o
        if c < 2:
            return self._verdict(_WAIT, 0, NONE)
        f = ring[1 - o]
        if f == 0x7E and not o:
            return self._verdict(_FILL, 1, NONE)
        if f & 0xF0 != 0xA0:
            return self._verdict(_BAD, GARBAGE, NONE)
        if c < 3:
            return self._verdict(_WAIT, 0, NONE)
        total = (((f & 0x07) << 8) | ring[2 - o]) + 2       # the length leaves out the flags
        if total < 11:
            return self._verdict(_BAD, GARBAGE, NONE)
        if total > self.max_frame:
            return self._verdict(_BAD, TOO_LONG, NONE)
        # Addresses: up to 4 bytes each, the last one with bit 0 set. Then control and HCS.
        i = 3
        for _ in range(2):
            k = 0
            while True:
                if i >= c:
                    return self._verdict(_WAIT, 0, NONE)
                k += 1
                if ring[i - o] & 1:
                    break
                if k == 4:
                    return self._verdict(_BAD, GARBAGE, NONE)
                i += 1
            i += 1
        hcs_at = i + 1          # after the control byte
        if hcs_at + 2 >= total - 3:
            return self._verdict(_BAD, GARBAGE, NONE)   # no information field: not a meter push
        if c < hcs_at + 2:
            return self._verdict(_WAIT, 0, NONE)
        buf = self.buf
        buf[0] = 0x7E
        ring.copy_to(0, hcs_at + 2 - o, buf, o)
        if loops.crc16_x25(buf, 1, hcs_at) != buf[hcs_at] | (buf[hcs_at + 1] << 8):
            return self._verdict(_BAD, GARBAGE, NONE)
        if c < total:
            self._need = total - o
            return self._verdict(_WAIT, 0, NONE)
        if ring[total - 1 - o] != 0x7E:
            return self._verdict(_BAD, GARBAGE, NONE)
        ring.copy_to(0, total - o, buf, o)
        if loops.crc16_x25(buf, 1, total - 3) != buf[total - 3] | (buf[total - 2] << 8):
            return self._verdict(_BAD, GARBAGE, NONE)
        self._copied = True
        self._lead = o
        return self._verdict(_FRAME, total - o, HDLC)

    def _header_at(self, i):
        ring = self.ring
        return (_letter(ring[i + 1]) and _letter(ring[i + 2]) and _letter(ring[i + 3])
                and 0x21 <= ring[i + 4] <= 0x7E)

    def _next_start(self, start, end, links=False):
        """Logical index of the next byte in [start, end) that could start a frame, or -1.

        links: M-Bus and HDLC starts too (not inside a DSMR telegram, where 'h' and '~' are text)."""
        ring = self.ring
        first = ring.find(_DB, start, end)
        if first >= 0:
            end = first
        b = ring.find(_SLASH, start, end)
        if b >= 0:
            first = end = b
        if links:
            b = ring.find(_MBUS_START, start, end)
            if b >= 0:
                first = end = b
            b = ring.find(_FLAG, start, end)
            if b >= 0:
                first = end = b
            b = ring.find(_NOTIFICATION, start, end)    # an unframed push, to name it
            if b >= 0:
                first = b
        return first

    # -- moving the head -------------------------------------------------------------------------

    def _advance(self, n):
        self.ring.discard(n)
        self.pos += n
        self._since = None
        self._need = 0
        self._scan = 1

    def _drop(self, n):
        """Drop n bytes under the sticky reason. True when a finished range is ready to report."""
        ready = False
        if self._run_len and (self._run_reason != self._sticky or self._run_error is not self._sticky_error):
            self._end_run()
            ready = True
        if not self._run_len:
            self._run_pos = self.pos
            self._run_reason = self._sticky
            self._run_error = self._sticky_error
        self._run_len += n
        self.dropped[self._sticky] += n
        self._advance(n)
        return ready

    def _end_run(self):
        reason = self._run_reason
        if reason == REJECTED and self._run_pos + self._run_len < self._reject_end:
            # A frame started inside the rejected one: the rejected one was cut short.
            reason = TRUNCATED
            self.dropped[REJECTED] -= self._run_len
            self.dropped[TRUNCATED] += self._run_len
        self.drop_pos = self._run_pos
        self.drop_len = self._run_len
        self.drop_reason = reason
        self.drop_error = self._run_error if reason == REJECTED else None
        self._run_len = 0
        return DROPPED
