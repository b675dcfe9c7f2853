# Put a DLMS APDU back together from the link frames that carried it (frames.py cuts and checks
# them; their checksums are already right when they get here).
#
#   M-Bus (EN 13757-2):  68 L L 68 C A CI STSAP DTSAP <data> CS 16
#       CI: low nibble = segment number (0, 1, 2, ...), bit 4 = last segment
#   HDLC (IEC 62056-46): 7E <format> <dst> <src> <control> <HCS> <information> <FCS> 7E
#       format bit 0x0800 = more segments follow; the first segment's information starts with the
#       LLC header E6 E7 00 (E6 E6 00 seen too), which is not part of the APDU; in a block transfer
#       sent as one HDLC frame per block (Landis+Gyr E450 / E570) only the first block has it
#   General block transfer (E0, inside either): E0 <control: bit 7 last block> <block number: 2>
#       <acknowledged block: 2> <BER length> <block data>; blocks numbered from 1
#
# One APDU is assembled at a time, in a buffer that grows (doubling, from 512 bytes) to the size the
# meter's APDUs need and then stays: most meters' lists are a few hundred bytes, and a P1 dongle
# that sees one stray link frame should not keep max_apdu for ever. A segment out of order, a missing
# first segment or an APDU over max_apdu drops what was collected with a FrameError that says so.
# A new APDU's first segment while one is being collected (its last segments were lost to noise)
# starts over: M-Bus segment 0, an HDLC frame whose information starts with the LLC header and an
# APDU tag, block 1 of a block transfer; and a frame of the other link (M-Bus after HDLC segments,
# or the reverse: a line does not mix them, noise does). The unfinished APDU is dropped and
# `orphan` says so in one line (the new frame is taken, so this is no exception; the caller
# reports and clears it).
from .compat import loops
from .errors import FrameError
from .frames import ber_length

# APDUs that start a push: glo-ciphered, data-notification, general block transfer
_APDU_TAGS = (0xDB, 0x0F, 0xE0)
_FIRST_SIZE = 512           # bytes: the link buffers' first size (they double as a meter needs)


class Reassembler:
    def __init__(self, max_apdu=4096):
        self.max_apdu = max_apdu
        self.buf = None             # made with the first link frame (P1 meters never need it), grown as needed
        self.n = 0                  # bytes collected for the APDU in progress
        self.fresh = False          # the last frame added started a new APDU
        self.orphan = None          # what the last frame added dropped when it started over
        self._next = -1             # M-Bus: the segment number expected next; -1: none started
        self._hdlc = False          # HDLC: segments of an APDU are being collected
        self.block = None           # made with the first block transfer, grown as needed
        self.block_n = 0
        self.block_fresh = False    # the last block added started a new block transfer
        self._next_block = 1

    def mbus(self, frame, n):
        """Add an M-Bus frame (frame[0:n]); the APDU's length when it is complete, else -1."""
        if self._hdlc:
            # An M-Bus frame cannot continue an HDLC push: whatever comes next, that one is over
            # (even when this one is refused below: the next HDLC frame must not join it).
            self._orphaned(self.n, "its last HDLC segment")
            self._hdlc = False
            self.n = 0
        if n < 11:
            raise FrameError("M-Bus frame too short for CI and SAPs")
        ci = frame[6]
        seq = ci & 0x0F
        self.fresh = seq == 0
        if seq == 0:
            if self._next > 0:
                self._orphaned(self.n, "M-Bus segment %d" % self._next)
            self.n = 0
        elif seq != self._next:
            expected = self._next if self._next >= 0 else 0
            self._next = -1
            self.n = 0
            raise FrameError("M-Bus segment %d out of order (expected %d): APDU dropped" % (seq, expected))
        self._add(frame, 9, n - 2)
        if ci & 0x10:
            self._next = -1
            return self.n
        self._next = seq + 1
        return -1

    def hdlc(self, frame, n):
        """Add an HDLC frame (frame[0:n], flags included); the APDU's length when it is complete,
        else -1."""
        i = 3
        while not frame[i] & 1:     # destination address
            i += 1
        i += 1
        while not frame[i] & 1:     # source address
            i += 1
        start = i + 4               # control, HCS
        end = n - 3                 # FCS, flag
        first = _llc(frame, start, end)
        if self._next > 0:
            # Nor can an HDLC frame continue an M-Bus push (they share the buffer).
            self._orphaned(self.n, "M-Bus segment %d" % self._next)
            self._next = -1
            self.n = 0
        if self._hdlc and first and end - start > 3 and frame[start + 3] in _APDU_TAGS:
            # A new push while the segments of one are being collected: its last ones were lost.
            self._orphaned(self.n, "its last HDLC segment")
            self._hdlc = False
        self.fresh = not self._hdlc
        if not self._hdlc:
            self.n = 0
            if end > start and frame[start] == 0xE0 and self._next_block > 1:
                pass        # the next block of a block transfer: only the first one has the LLC header
            elif not first:
                raise FrameError("HDLC frame without the LLC header E6 E7 00")
            else:
                start += 3
        self._hdlc = bool(frame[1] & 0x08)
        self._add(frame, start, end)
        return -1 if self._hdlc else self.n

    def _orphaned(self, n, missing):
        self.orphan = "APDU of %d bytes dropped: a new one started before %s came" % (n, missing)

    def _add(self, frame, start, end):
        size = end - start
        if size < 0:
            raise FrameError("link frame too short")
        if self.n + size > self.max_apdu:
            self.n = 0
            self._next = -1
            self._hdlc = False
            raise FrameError("APDU longer than %d bytes: dropped" % self.max_apdu)
        self.buf = self._room(self.buf, self.n, self.n + size)
        loops.copy(self.buf, self.n, frame, start, size)
        self.n += size

    def _room(self, buf, kept, need):
        """buf, or a bigger one (kept bytes copied over) when need does not fit in it."""
        if buf is not None and need <= len(buf):
            return buf
        size = len(buf) if buf is not None else _FIRST_SIZE
        while size < need:
            size *= 2
        bigger = bytearray(min(size, self.max_apdu))
        if kept:
            loops.copy(bigger, 0, buf, 0, kept)
        return bigger

    def block_transfer(self, apdu, n):
        """Add a general-block-transfer APDU (E0 ...); the whole APDU's length in self.block when
        the last block is in, else -1."""
        if n < 7:
            raise FrameError("general block transfer too short")
        last = apdu[1] & 0x80
        number = (apdu[2] << 8) | apdu[3]
        v = ber_length(apdu, 6, n)
        if v < 0:
            raise FrameError("general block transfer: bad length 0x%02X" % apdu[6])
        size, i = v >> 2, 6 + (v & 3)
        if i + size > n:
            raise FrameError("general block transfer: block data longer than the APDU")
        self.block_fresh = number == 1
        if number == 1:
            if self._next_block > 1:
                self._orphaned(self.block_n, "block %d" % self._next_block)
            self.block_n = 0
        elif number != self._next_block:
            expected = self._next_block
            self._next_block = 1
            self.block_n = 0
            raise FrameError("block %d out of order (expected %d): APDU dropped" % (number, expected))
        if self.block_n + size > self.max_apdu:
            self._next_block = 1
            self.block_n = 0
            raise FrameError("APDU longer than %d bytes: dropped" % self.max_apdu)
        self.block = self._room(self.block, self.block_n, self.block_n + size)
        loops.copy(self.block, self.block_n, apdu, i, size)
        self.block_n += size
        if last:
            self._next_block = 1
            return self.block_n
        self._next_block = number + 1
        return -1


def _llc(frame, start, end):
    # The LLC header that opens an APDU's first HDLC segment: E6 E7 00 (E6 E6 00 seen too)
    return (end - start >= 3 and frame[start] == 0xE6 and frame[start + 1] in (0xE6, 0xE7)
            and frame[start + 2] == 0x00)
