# The telegram passed on to the outputs and its readings: one holder, made once, that every
# output reads (the TCP ports, MQTT, the web page and the local API), so that they all say the
# same.
#
# A DLMS meter's readings are the pipeline's (what it rendered the telegram from). Meters that
# push several lists (Kaifa, Aidon, Kamstrup: the power every few seconds, the energy and the
# ids once an hour) send each reading in some lists only: the holder keeps the latest value of
# each reading and when it came, so every output has the energy of the hourly list until it
# comes again. A reading the meter stops sending goes from every output alike once it has been
# missing for twice the meter's longest list interval (the longest time seen between two of the
# same reading, a silence of the meter not counted; KEPT_MIN_MS at least), or, seen only once so
# far, for HELD_MS. Of codes outside the
# OBIS table (noise that passed a plain HDLC checksum can invent any number of them) a push's
# own are kept, and the OTHERS_KEPT seen last before it.
#
# A DSMR telegram carries all its readings every time: they are read from its text when an
# output first asks, and that one list is what every output gets until the next telegram. (Read
# again for each, a Luxembourg telegram's 49 readings are 2.5 KB: the faces' clients, a few a
# second, each held their own while their answer went out, and the heap they took together was
# the dongle's whole margin.) The outputs only read the list.
from . import dsmr, obis
from .compat import ticks_diff, ticks_ms

HELD_MS = 3 * 3600 * 1000   # an hourly list's reading seen once: kept beyond twice its interval
KEPT_MIN_MS = 30000         # a reading missing from a push or two is not gone
OTHERS_KEPT = 8             # the real captures push 4 codes outside the table at most, while noise
                            # that passes a plain HDLC FCS brings ever new ones, and keeping all of
                            # them ran the dongle out of heap; on the twin (host_tests/values_heap.py)
                            # 8 cost 1.7 KB, state and buffers included


class Telegram:
    """The latest telegram (data: its bytes, None before the first) and its readings."""

    def __init__(self):
        self.data = None        # the telegram's bytes, as passed on (a DSMR telegram): a view
                                # of the backlog's, good until the next telegram
        self.number = -1        # its number in the backlog (backlog.py), which outputs that
                                # queue it keep
        self.at = ticks_ms()    # ms (ticks) it came
        self.pushed = None      # a DLMS meter's readings of this push [(row, value)]; None: DSMR
        self._read = None       # this telegram's readings once an output asked for them
        self.count = 0          # telegrams taken
        self.longest = 0        # ms: the longest the meter took to send a reading again
        self._last = None       # ms: the last push, and the time between it and the one before
        self._gap = 0
        self._counted = True    # this push's intervals count (it came after no silence)
        # The latest of each reading (DLMS), in the order they first came, in three lists side by
        # side (lists, not dicts: a third of the heap for a meter's hundred readings, and a slot
        # updated in place allocates nothing):
        self._names = []        # its name (the OBIS row's)
        self._pairs = []        # (row, value)
        self._seen = []         # ms it was seen last, or ~ms while seen only once
        self._others = []       # the names of codes outside the table, the one seen last at the end

    @property
    def rendered(self):
        """Whether the dongle wrote the telegram from a DLMS push's readings."""
        return self.pushed is not None

    def take(self, data, pushed=None, now=None, number=-1):
        """The next telegram, and for a DLMS meter the readings of its push."""
        self.data = data
        self.number = number
        self.pushed = pushed
        self._read = None
        self.at = ticks_ms() if now is None else now
        self.count += 1
        if pushed is None:
            if self._names:
                self._clear()           # a DSMR telegram holds all its readings itself
            return
        now = ticks_ms() if now is None else now
        # After a silence (a push more than 3 of the usual gaps after the last: the meter or its
        # line was away) the times between two of a reading say nothing of its list's interval.
        gap = ticks_diff(now, self._last) if self._last is not None else 0
        self._counted = not self._gap or gap <= max(3 * self._gap, KEPT_MIN_MS)
        if gap:
            self._gap = gap
        self._last = now
        self._forget_others(OTHERS_KEPT)
        for row, value in pushed:
            self._remember(row, value, now)
        self._forget_gone(now)

    def readings(self):
        """What every output publishes: [(row, value)], or None before the first telegram. The
        same list for every output until the next telegram: not to be changed."""
        if self.data is None:
            return None
        if self._read is None:
            # (a DLMS meter's: a copy, as the next push changes the holder's lists)
            self._read = dsmr.parse(self.data) if self.pushed is None else list(self._pairs)
        return self._read

    def release(self):
        """Let go of the readings read for the outputs (out of memory): read again when asked."""
        self._read = None

    # -- the latest of each reading ---------------------------------------------------------------

    def _remember(self, row, value, now):
        name = row[obis.NAME]
        names = self._names
        if name in names:
            k = names.index(name)
            seen = self._seen[k]
            at = seen if seen >= 0 else ~seen
            if at != now:               # (twice in one push is once)
                interval = ticks_diff(now, at)
                if interval > self.longest and self._counted:
                    self.longest = min(interval, HELD_MS)
                self._seen[k] = now
            self._pairs[k] = (row, value)
        else:
            names.append(name)
            self._pairs.append((row, value))
            self._seen.append(~now)
        if not obis.known(row):
            others = self._others
            if name in others:
                others.remove(name)
            others.append(name)         # the one seen last goes last

    def _forget_gone(self, now):
        seen = self._seen
        twice = max(2 * self.longest, KEPT_MIN_MS)
        k = len(seen) - 1
        while k >= 0:
            at = seen[k]
            if ticks_diff(now, at if at >= 0 else ~at) > (twice if at >= 0 else HELD_MS):
                self._drop(self._names[k])
            k -= 1

    def _forget_others(self, keep):
        # before a push is taken: its own codes outside the table join the `keep` seen last
        others = self._others
        while len(others) > keep:
            self._drop(others[0])

    def _drop(self, name):
        names = self._names
        if name in names:
            k = names.index(name)
            names.pop(k)
            self._pairs.pop(k)
            self._seen.pop(k)
        if name in self._others:
            self._others.remove(name)

    def _clear(self):
        self._names = []
        self._pairs = []
        self._seen = []
        self._others = []
        self.longest = 0
        self._last = None
        self._gap = 0
