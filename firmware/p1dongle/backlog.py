# The telegrams the outputs may still have to send, in one buffer made once: the bounded
# drop-oldest queue that the TCP clients and MQTT share (Hinch's RingbufQueue, for whole
# telegrams of any length, each kept once however many outputs wait for it).
#
# A telegram is put in at the head; what it needs room for is taken from the oldest ones. An
# output keeps a telegram's number (a small int: nothing allocated per client) and asks for it
# when it can send it: view(number) is a memoryview of its bytes, or None when it has been
# overwritten since (the output fell that far behind). So a telegram costs no block of its own
# on the heap: a heap broken up by everything else cannot refuse it (make soak at 96 KB lost a
# frame now and then over the 1.1 KB a Luxembourg telegram needed), and what a stalled client
# keeps is bounded by this buffer, not by its queue's length times a telegram.
#
# A telegram is never split: one that does not fit before the end starts again at 0 and the
# tail is left unused until the next turn. Every telegram written after another is newer, so
# the oldest are always the ones just ahead of where the next goes, and dropping the oldest
# first frees exactly the room it needs.
from .compat import loops


class Backlog:
    def __init__(self, size, slots=16):
        self.buf = bytearray(size)
        self._view = memoryview(self.buf)
        self._starts = [0] * slots      # telegram number n is in slot n % slots
        self._ends = [0] * slots
        self.first = 0                  # the oldest telegram still held
        self.next = 0                   # the number the next put() gives
        self.latest = None              # a view of the newest, made once
        self._head = 0                  # where the next telegram goes, if it fits before the end

    def put(self, data, n=-1):
        """Copy data[0:n] (all of it by default) in as the newest telegram; returns its number.
        Raises ValueError when it is longer than the whole buffer."""
        n = len(data) if n < 0 else n
        size = len(self.buf)
        if n > size:
            raise ValueError("a telegram of %d bytes is longer than the backlog (%d)" % (n, size))
        at = self._head
        wrapped = at + n > size
        if wrapped:
            at = 0
        # (made before anything changes: a MemoryError here leaves every telegram as it was)
        latest = self._view[at:at + n]
        slots = len(self._starts)
        while self.first < self.next:
            k = self.first % slots
            s = self._starts[k]
            if not (self.next - self.first >= slots or (wrapped and s >= self._head)
                    or (s < at + n and at < self._ends[k])):
                break
            self.first += 1             # dropped: the oldest, in the way
        loops.copy(self.buf, at, data, 0, n)
        k = self.next % slots
        self._starts[k] = at
        self._ends[k] = at + n
        self._head = at + n
        self.latest = latest
        self.next += 1
        return self.next - 1

    def view(self, number):
        """The telegram numbered `number`, or None when it has been dropped for newer ones."""
        if not self.first <= number < self.next:
            return None
        if number == self.next - 1:
            return self.latest
        k = number % len(self._starts)
        return self._view[self._starts[k]:self._ends[k]]
