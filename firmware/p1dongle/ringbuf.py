# A fixed ring of bytes between the UART and the frame assembler.
#
# Allocated once. Writing never raises: what does not fit is refused and counted in `overflow`
# (like a UART FIFO that overruns). Bytes stay in the ring until the reader discards them, so the
# assembler can look at a candidate frame, hand it out, and still rescan it if it turns out bad.
# Reading copies exactly the bytes asked for, into a buffer the caller owns. Copies go through
# compat.loops with offsets, never through slices (a slice is a new heap object on MicroPython).
from .compat import loops


class RingBuffer:
    def __init__(self, size):
        self.size = size
        self._buf = bytearray(size)
        self._head = 0      # physical index of the oldest byte
        self.count = 0      # bytes held
        self.overflow = 0   # bytes refused because the ring was full

    def free(self):
        return self.size - self.count

    def write(self, data, start=0, end=-1):
        """Append as much of data[start:end] as fits; return how many bytes were taken."""
        if end < 0 or end > len(data):
            end = len(data)
        n = end - start
        room = self.size - self.count
        if n > room:
            self.overflow += n - room
            n = room
        if n <= 0:
            return 0
        tail = self._head + self.count
        if tail >= self.size:
            tail -= self.size
        first = self.size - tail
        if first > n:
            first = n
        loops.copy(self._buf, tail, data, start, first)
        if first < n:
            loops.copy(self._buf, 0, data, start + first, n - first)
        self.count += n
        return n

    def __getitem__(self, i):
        # Logical index: 0 is the oldest byte. The caller keeps i < count.
        i += self._head
        if i >= self.size:
            i -= self.size
        return self._buf[i]

    def find(self, sub, start=0, end=-1):
        """Logical index of the one-byte bytes `sub` in [start, end), or -1."""
        if end < 0 or end > self.count:
            end = self.count
        if start >= end:
            return -1
        size = self.size
        a = self._head + start
        b = self._head + end
        if a < size:
            i = self._buf.find(sub, a, b if b < size else size)
            if i >= 0:
                return i - self._head
            a = size
        if b > size:
            i = self._buf.find(sub, a - size, b - size)
            if i >= 0:
                return i + size - self._head
        return -1

    def copy_to(self, start, n, dst, doff=0):
        """Copy logical bytes [start, start + n) into dst[doff:doff + n]."""
        if start < 0 or n < 0 or start + n > self.count or doff < 0 or doff + n > len(dst):
            raise ValueError("ring copy out of range")
        a = self._head + start
        if a >= self.size:
            a -= self.size
        first = self.size - a
        if first >= n:
            loops.copy(dst, doff, self._buf, a, n)
        else:
            loops.copy(dst, doff, self._buf, a, first)
            loops.copy(dst, doff + first, self._buf, 0, n - first)

    def discard(self, n):
        """Forget the n oldest bytes."""
        if n >= self.count:
            # Empty: start over at 0 so the next frames are contiguous and copies stay single.
            self._head = 0
            self.count = 0
            return
        self._head += n
        if self._head >= self.size:
            self._head -= self.size
        self.count -= n
