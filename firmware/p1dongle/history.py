# History and peaks, kept on the dongle from the meter's own registers and clock.
#
#   per hour   the last HOURS hours        energy imported, exported, gas; the hour's highest
#   per day    the last DAYS days          15-minute average import power; the day's highest
#   per month  the last MONTHS months      hour (Norway's tariff counts hours)
#
# Energy is booked from the registers, never from power: an hour is the import register at the
# first telegram of the next hour minus the one at the first telegram of this hour (the same
# rule the meter applies to its quarter hours, so a Belgian meter's own 1-0:1.4.0 and 1-0:1.6.0
# come out equal). Integers of the register's unit: Wh, and litres of gas. The clock is the
# meter's (meterclock.py): an hour is a UTC hour, a day and a month are the meter's local ones.
#
# What it does not know it does not make up. An hour whose end the dongle did not see (it was off,
# the meter silent) holds the energy of the gap, and is marked GAP; the hour after it began unseen
# and is marked PART. Neither counts for the hourly peaks; both count in the day's and month's
# energy, which stay right. A meter swap (another identifier) or a register going back starts a
# new series (SWAP): the hour gets what the old register had counted, never a negative amount.
# A quarter hour is measured only from its first telegram to the first of the next one.
#
# Flash: three files beside the settings (history.hours, .days, .months), each written whole or
# not at all (a new file, then a rename: a power cut keeps the previous one) and at most once an
# hour, when an hour ends: the days and months first, then the hours file, which says the hour
# is booked (a cut between them books it again, and the day and month take it only once). The hours file also holds the open hour's start (series, registers,
# its peak so far), so a restart within the hour goes on where it was. In RAM: the open hour and
# quarter, the month's peaks, and the live power of the last minutes. Answers are read from the
# files a record at a time (pieces()).
import os
import struct
from array import array

from . import meterclock
from .compat import const, ticks_diff, ticks_ms
from .dsmr import crc16, read as read_telegram
from .obis import NAME

HOURS = const(48)
DAYS = const(62)
MONTHS = const(60)

# A record (an hour, a day or a month): 12 int32 fields
KEY = const(0)          # hour: UTC minute // 60; day: local day number; month: year * 12 + month - 1
FLAGS = const(1)
IMPORT = const(2)       # Wh
EXPORT = const(3)       # Wh
GAS = const(4)          # litres
PEAK = const(5)         # W: the highest 15-minute average import power
PEAK_AT = const(6)      # local minute its quarter ended
OFF = const(7)          # hour: its UTC offset (minutes); day, month: PEAK_AT's offset
HPEAK = const(8)        # W: hour: its import if whole (no flag); day: its highest such hour;
                        # month: the average of the three highest days' HPEAK (Norway)
HPEAK_AT = const(9)     # local minute that hour began
HPEAK_OFF = const(10)
BOOKED = const(11)      # day, month: the number of the last hour's close booked into it (CLOSES)
FIELDS = const(12)
_REC = "<12i"
_SIZE = const(48)
EMPTY = -1

GAP = const(1)          # holds energy of a time after its end that the dongle did not see
PART = const(2)         # began before the dongle saw it: less than the whole hour
SWAP = const(4)         # the meter was swapped, or its register went back: a new series
CLOCK = const(8)        # the meter's clock went back

# The open hour, kept in the hours file: 64-bit fields (a register may pass 2**31 Wh)
SERIES = const(0)
METER = const(1)        # crc16 of the meter's identifier (0: none seen)
HKEY = const(2)         # the open hour (-1: none yet)
HOFF = const(3)
HFLAGS = const(4)
IMP0 = const(5)         # the registers at the open hour's first telegram (gas -1: none)
EXP0 = const(6)
GAS0 = const(7)
LAST = const(8)         # the UTC minute of the latest register reading
EVERY = const(9)        # minutes between the meter's register readings (an hourly list: 60)
HPK = const(10)         # the open hour's highest quarter so far, W, its local end and offset
HPK_AT = const(11)
HPK_OFF = const(12)
CLOSES = const(13)      # hours closed so far: each close's number marks the day and month it
                        # went to (BOOKED), so that one redone after a power cut is not taken twice
_STATE = "<14q"
_STATE_SIZE = const(112)

MAGIC = {"hours": b"P1H1", "days": b"P1D1", "months": b"P1M1"}
SLOTS = {"hours": HOURS, "days": DAYS, "months": MONTHS}

LIVE = const(60)        # live power samples kept: one every LIVE_MS
LIVE_MS = const(10000)
NONE = -0x40000000      # no value (a live sample's phase the meter does not send)

# readings -> what history takes of them
_ENERGY = {"totalImportedEnergyP": 0, "totalExportedEnergyP": 1,
           "totalImportedEnergyT1": 2, "totalImportedEnergyT2": 2, "totalImportedEnergyT3": 2, "totalImportedEnergyT4": 2,
           "totalExportedEnergyT1": 3, "totalExportedEnergyT2": 3, "totalExportedEnergyT3": 3, "totalExportedEnergyT4": 3}
_POWER = {"currentUsage": (0, 1), "currentDelivery": (0, -1), "currentUsageL1": (1, 1), "currentDeliveryL1": (1, -1),
          "currentUsageL2": (2, 1), "currentDeliveryL2": (2, -1), "currentUsageL3": (3, 1), "currentDeliveryL3": (3, -1)}
_IDS = ("logicalDeviceName", "meterId", "meterNumber", "gs1Number", "meterSerial")
_SCALE = {"kWh": 3, "Wh": 0, "MWh": 6, "kW": 3, "W": 0, "m3": 3}


def scaled(m, e, unit):
    """A reading (mantissa, exponent, unit) in Wh, W or litres, as an integer (rounded down);
    None in a unit that is none of theirs."""
    shift = _SCALE.get(unit)
    if shift is None:
        return None
    e += shift
    if e >= 0:
        return m * 10 ** e
    return m // 10 ** -e


def _nothing(r):
    pass


class _Sink:
    """What one telegram says that history needs, read without making its readings: the
    registers (Wh, litres), the power (W, net and per phase), the clock and the meter's name."""

    def __init__(self):
        self.memo = {}                  # dsmr.read's memo: the unchanging text lines, read once
        self.v = [None] * 5             # import, export, import tariffs, export tariffs, gas
        self.p = array("i", [0] * 4)    # net power W: total, L1-L3
        self.seen = array("i", [0] * 4)
        self.stamp = None
        self.meter = None

    def clear(self):
        v = self.v
        for k in range(5):
            v[k] = None
        for k in range(4):
            self.p[k] = 0
            self.seen[k] = 0
        self.stamp = None
        self.meter = None

    def number(self, row, m, e, unit):
        name = row[NAME]
        k = _ENERGY.get(name)
        if k is not None:
            wh = scaled(m, e, unit)
            if wh is not None:
                v = self.v
                v[k] = wh if k < 2 or v[k] is None else v[k] + wh
            return
        p = _POWER.get(name)
        if p is not None:
            w = scaled(m, e, unit)
            if w is not None:
                self.p[p[0]] += w * p[1]
                self.seen[p[0]] = 1
            return
        if unit == "m3" and self.v[4] is None and name.startswith("mbus") and name.endswith("Reading"):
            self.v[4] = scaled(m, e, unit)

    def value(self, row, value):
        name = row[NAME]
        if isinstance(value, tuple):
            if len(value) >= 3 and isinstance(value[0], int):
                self.number(row, value[0], value[1], value[2])
        elif isinstance(value, str):
            if name == "powerTs":
                self.stamp = value
            elif self.meter is None and name in _IDS and value:
                self.meter = crc16(value.encode()) or 1


class History:
    """Books each telegram's registers into hours, days and months, and keeps the peaks."""

    def __init__(self, folder="", log=print):
        self.folder = folder
        self.log = log
        self.writes = {"hours": 0, "days": 0, "months": 0}
        self.state = [0] * 14
        self.state[HKEY] = -1
        self.state[GAS0] = -1
        self.last = [0, 0, -1]          # the latest registers read: import, export, gas
        self._sink = _Sink()
        self._rec = bytearray(_SIZE)
        self._q = -1                    # the open quarter (UTC minute // 15), its first import
        self._q0 = 0
        self._q_whole = False           # its first telegram was the first of the quarter
        self._month = None              # (key, peak, at, off, hpeak) of the month, from the file
        self.clock = None               # (minute, offset) of the latest telegram with a clock
        self.unclocked = 0              # telegrams with registers and no clock: not booked
        self.live = array("i", [NONE] * (4 * LIVE))
        self.live_at = [None] * LIVE    # ticks of each sample
        self._live_next = 0
        self._pending = False           # an hour's end not yet written (the write failed)
        self._booked = None             # the hour that ended, until written: (hour, local start,
                                        # offset, flags, amounts, whole-hour import, peak)
        self._todo = []                 # the files it is still to be written to
        self._load()

    # -- files ------------------------------------------------------------------------------------

    def path(self, series):
        return self.folder + "history." + series

    def _load(self):
        for series in ("hours", "days", "months"):
            try:
                os.remove(self.path(series) + ".new")   # a write a power cut broke off
            except OSError:
                pass
        try:
            with open(self.path("hours"), "rb") as f:
                head = f.read(4 + _STATE_SIZE)
        except OSError:
            return
        if len(head) != 4 + _STATE_SIZE or head[:4] != MAGIC["hours"] or self._size("hours") is None:
            self.log("p1dongle: history: the hours file is not one: a new history begins")
            return
        self.state = list(struct.unpack_from(_STATE, head, 4))
        self.last = [self.state[IMP0], self.state[EXP0], self.state[GAS0]]

    def _size(self, series):
        # the file's record count when it is whole, else None
        try:
            size = os.stat(self.path(series))[6]
        except OSError:
            return None
        head = 4 + (_STATE_SIZE if series == "hours" else 0)
        return SLOTS[series] if size == head + SLOTS[series] * _SIZE else None

    def records(self, series):
        """Each slot's record of a series file, as a tuple, in slot order."""
        if self._size(series) is None:
            return
        for k in range(SLOTS[series]):
            r = self.record(series, k)
            if r is None:
                return
            yield r

    def record(self, series, slot):
        """One slot's record (a tuple), or None. The file is opened for each: the answer that
        reads them is sent a piece at a time, and the hour may end (the file renamed) meanwhile."""
        head = 4 + (_STATE_SIZE if series == "hours" else 0)
        rec = bytearray(_SIZE)
        try:
            with open(self.path(series), "rb") as f:
                f.seek(head + slot * _SIZE)
                n = f.readinto(rec)
        except OSError:
            return None
        return struct.unpack(_REC, rec) if n == _SIZE else None

    def _rewrite(self, series, key, change):
        """Write the series file again with slot key's record changed by change(list): the other
        records copied a record at a time, into a new file renamed over the old one."""
        path = self.path(series)
        slots = SLOTS[series]
        whole = self._size(series) is not None
        head = 4 + (_STATE_SIZE if series == "hours" else 0)
        rec = self._rec
        st = self.state
        local = st[HKEY] * 60 + st[HOFF]
        newest = st[HKEY] if series == "hours" else local // 1440 if series == "days" else meterclock.month_of(local)
        old = open(path, "rb") if whole else None
        try:
            with open(path + ".new", "wb") as f:
                f.write(MAGIC[series])
                if series == "hours":
                    f.write(struct.pack(_STATE, *self.state))
                if old is not None:
                    old.seek(head)
                for k in range(slots):
                    if old is None or old.readinto(rec) != _SIZE or (st[HKEY] >= 0 and struct.unpack_from("<i", rec)[0] > newest):
                        struct.pack_into(_REC, rec, 0, *([EMPTY] + [0] * (FIELDS - 1)))    # (or ahead of the clock)
                    if key >= 0 and k == key % slots:
                        r = list(struct.unpack(_REC, rec))
                        if r[KEY] != key:
                            r = [key] + [0] * (FIELDS - 1)
                        change(r)
                        struct.pack_into(_REC, rec, 0, *r)
                    f.write(rec)
        finally:
            if old is not None:
                old.close()
        os.rename(path + ".new", path)
        self.writes[series] += 1

    # -- telegrams --------------------------------------------------------------------------------

    def telegram(self, t):
        """A telegram passed on (telegram.Telegram): its registers booked, its power sampled."""
        s = self._sink
        s.clear()
        if t.pushed is None:
            read_telegram(t.data, s)
        else:
            for row, value in t.pushed:
                s.value(row, value)
        self._sample(s, t.at)
        clock = meterclock.parse(s.stamp)
        if clock is not None:
            self.clock = clock
        imp = s.v[0] if s.v[0] is not None else s.v[2]
        if imp is None:
            return
        if clock is None:
            self.unclocked += 1
            return
        exp = s.v[1] if s.v[1] is not None else s.v[3]
        self.book(clock[0], clock[1], imp, exp or 0, -1 if s.v[4] is None else s.v[4], s.meter or 0)

    def book(self, minute, offset, imp, exp, gas, meter=0):
        """A register reading at a UTC minute (the meter's clock, offset its local time's)."""
        st = self.state
        last = self.last
        if st[HKEY] < 0:
            self._open(minute, offset, imp, exp, gas, meter, PART if minute % 60 else 0)
            self._write_all()
            return
        if gas < 0:
            gas = last[2]               # (a list without the gas reading: the last one holds)
        swapped = (meter and st[METER] and meter != st[METER]) or imp < last[0] or exp < last[1] or \
            (0 <= gas < last[2])
        gap = minute - st[LAST]
        if swapped:
            # what the old register counted goes to the open hour; the new one starts from here
            self._close(last[0], last[1], last[2], SWAP)
            st[SERIES] += 1
            self._open(minute, offset, imp, exp, gas, meter, PART)
            self._q = -1
            self._write_all()
            return
        hkey = minute // 60
        if hkey < st[HKEY]:
            # The meter's clock went back (set right after it had run ahead): the open hour is
            # this hour now, and keeps what it has counted. Records ahead of the clock go with
            # the next write (_rewrite): time coming to them would add to what a wrong clock booked.
            st[HKEY], st[HOFF], st[HFLAGS] = hkey, offset, st[HFLAGS] | CLOCK | PART
            st[LAST] = minute
            self._q = -1
            last[0], last[1], last[2] = imp, exp, gas
            self._write_all()
            return
        self._quarter(minute, offset, imp, gap)
        if hkey != st[HKEY]:
            # The hour ends. Its end was seen when this reading came as soon as the meter sends
            # them (every minute or so; an hourly list's once an hour) after the one before.
            seen = hkey == st[HKEY] + 1 and 0 <= gap <= max(5, st[EVERY] + 5)
            self._close(imp, exp, gas, 0 if seen else GAP)
            self._open(minute, offset, imp, exp, gas, meter, 0 if seen else PART)
            self._write_all()
        elif gap < 0:
            st[HFLAGS] |= CLOCK         # the clock went back within the hour
        if 0 < gap <= 70:
            st[EVERY] = gap if gap < 5 else max(st[EVERY], gap)
        if meter and not st[METER]:
            st[METER] = meter
        if self._pending:
            self._write_all()
        st[LAST] = minute
        last[0], last[1], last[2] = imp, exp, gas

    def _quarter(self, minute, offset, imp, gap):
        q = minute // 15
        if q == self._q:
            return
        steady = self._q >= 0 and q == self._q + 1 and 0 <= gap <= 5
        if steady and self._q_whole:
            # the quarter that ended: its average power is its energy times four
            avg = (imp - self._q0) * 4
            st = self.state
            if avg > st[HPK] or st[HPK_AT] == 0:
                st[HPK], st[HPK_AT], st[HPK_OFF] = avg, minute // 15 * 15 + offset, offset
        # measured from this reading when it is the quarter's first (the one before was in the
        # quarter before), or came in its first minute
        self._q_whole = steady or minute % 15 == 0
        self._q = q
        self._q0 = imp

    def _open(self, minute, offset, imp, exp, gas, meter, flags):
        st = self.state
        st[HKEY], st[HOFF], st[HFLAGS] = minute // 60, offset, flags
        st[IMP0], st[EXP0], st[GAS0] = imp, exp, gas
        st[LAST] = minute
        st[HPK] = st[HPK_AT] = st[HPK_OFF] = 0
        if meter:
            st[METER] = meter
        self.last[0], self.last[1], self.last[2] = imp, exp, gas
        if self._q < 0:
            self._q, self._q0, self._q_whole = minute // 15, imp, minute % 15 == 0

    def _close(self, imp, exp, gas, flags):
        """The open hour ends with these registers: its amounts booked into its hour, day and
        month (written by _write_all)."""
        st = self.state
        flags |= st[HFLAGS]
        local = st[HKEY] * 60 + st[HOFF]
        amounts = (max(0, imp - st[IMP0]), max(0, exp - st[EXP0]), max(0, gas - st[GAS0]) if st[GAS0] >= 0 else 0)
        whole = amounts[0] if not flags else 0
        if self._booked is not None:
            self.log("p1dongle: history: an hour not written to the %s file is lost" % self._todo[0])
        st[CLOSES] += 1
        booking = st[CLOSES] & 0x3FFFFFFF
        self._booked = (st[HKEY], local, st[HOFF], flags, amounts, whole, (st[HPK], st[HPK_AT], st[HPK_OFF]), booking)
        self._todo = ["days", "months", "hours"]

    def _add(self, r, series, top=None):
        # the booked hour's amounts and peaks into its hour's, day's or month's record r
        hkey, local, off, flags, amounts, whole, peak, booking = self._booked
        if series != "hours":
            if r[BOOKED] == booking:
                return                  # booked before a power cut kept the hours file from saying so
            r[BOOKED] = booking
        r[FLAGS] |= flags
        r[IMPORT] += amounts[0]
        r[EXPORT] += amounts[1]
        r[GAS] += amounts[2]
        if peak[1] and (not r[PEAK_AT] or peak[0] > r[PEAK]):
            r[PEAK], r[PEAK_AT], r[OFF] = peak
        if series == "hours":
            r[OFF] = off                # (an hour's offset is its own; its peak's is the same)
            r[HPEAK] = whole if not r[FLAGS] else 0
            r[HPEAK_AT], r[HPEAK_OFF] = (local, off) if not r[FLAGS] else (0, 0)
        elif series == "days":
            if whole and (not r[HPEAK_AT] or whole > r[HPEAK]):
                r[HPEAK], r[HPEAK_AT], r[HPEAK_OFF] = whole, local, off
        elif top is not None:
            r[HPEAK], r[HPEAK_AT], r[HPEAK_OFF] = top

    def _write_all(self):
        """The hour that ended (_close) into the three files, hours last: it also holds the new
        open hour, and a power cut before it is written books the hour again after the restart
        (days and months know it: BOOKED). A write that fails (flash full, no heap) is tried again at the next telegram,
        only the files not yet written; an hour that ends before then is booked in the hours file
        only (said once)."""
        booked = self._booked
        try:
            if booked is None:
                self._rewrite("hours", -1, _nothing)
            else:
                local = booked[1]
                keys = {"hours": booked[0], "days": local // 1440, "months": meterclock.month_of(local)}
                while self._todo:
                    series = self._todo[0]
                    top = self._top3(keys["months"]) if series == "months" else None
                    self._rewrite(series, keys[series], lambda r: self._add(r, series, top))
                    self._todo.pop(0)
                self._booked = None
                self._month = None
            self._pending = False
        except (OSError, MemoryError) as e:
            if not self._pending:
                self.log("p1dongle: history not written (%r): tried again with the next telegram" % e)
            self._pending = True

    def _top3(self, month):
        """Norway's figure for the month: the average of its three highest hours on different
        days (each day's highest), with the highest's time; None before a whole hour."""
        best = []
        for r in self.records("days") or ():
            if r[KEY] >= 0 and meterclock.month_of(r[KEY] * 1440) == month and r[HPEAK_AT]:
                best.append((r[HPEAK], r[HPEAK_AT], r[HPEAK_OFF]))
        if not best:
            return None
        best.sort(reverse=True)
        best = best[:3]
        return sum(b[0] for b in best) // len(best), best[0][1], best[0][2]

    # -- live power -------------------------------------------------------------------------------

    def _sample(self, s, at):
        if not s.seen[0] and not s.seen[1]:
            return
        k = self._live_next
        last = self.live_at[(k - 1) % LIVE]
        if last is not None and 0 <= ticks_diff(at, last) < LIVE_MS:
            return
        for i in range(4):
            self.live[4 * k + i] = s.p[i] if s.seen[i] else NONE
        self.live_at[k] = at
        self._live_next = (k + 1) % LIVE

    # -- what the outputs ask ---------------------------------------------------------------------

    def average(self):
        """The running 15-minute average import power, W (as a Belgian meter's 1-0:1.4.0: the
        quarter's energy so far times four); None before a quarter's start was seen."""
        if not self._q_whole:
            return None
        return (self.last[0] - self._q0) * 4

    def month(self):
        """This month's (peak W, its local minute, offset, average of the 3 highest hours W, the
        highest's local minute, offset), the open hour's quarters included; None before any."""
        st = self.state
        if st[HKEY] < 0:
            return None
        key = meterclock.month_of(st[HKEY] * 60 + st[HOFF])
        if self._month is None or self._month[0] != key:
            found = (key, 0, 0, 0, 0, 0, 0)
            for r in self.records("months") or ():
                if r[KEY] == key:
                    found = (key, r[PEAK], r[PEAK_AT], r[OFF], r[HPEAK], r[HPEAK_AT], r[HPEAK_OFF])
            self._month = found
        m = self._month
        peak = m[1:4]
        if st[HPK_AT] and (not peak[1] or st[HPK] > peak[0]):
            peak = (st[HPK], st[HPK_AT], st[HPK_OFF])
        if not peak[1] and not m[5]:
            return None
        return peak + m[4:7]

    # -- the history as JSON ----------------------------------------------------------------------

    def pieces(self, series=("hours", "days", "months")):
        """GET /api/p1dongle/history a few bytes at a time: the peaks, the live power, and the
        hours, days and months oldest first (the open ones with what the open hour has so far);
        series: which of them (none: the peaks and live power only, what the page asks often)."""
        st = self.state
        yield '{"units":{"energy":"Wh","gas":"L","power":"W"},"series":%d' % st[SERIES]
        clock = self.clock
        yield ',"meter_time":%s' % (_q(meterclock.iso(clock[0] + clock[1], clock[1])) if clock else "null")
        yield ',"peaks":' + self.peaks_json()
        for piece in self._live_pieces():
            yield piece
        local = st[HKEY] * 60 + st[HOFF]
        now = {"hours": st[HKEY], "days": local // 1440, "months": meterclock.month_of(local)}
        for name in series:
            yield ',"%s":[' % name
            if st[HKEY] < 0:
                yield "]"
                continue
            first = True
            newest = now[name]
            for key in range(newest - SLOTS[name] + 1, newest + 1):
                r = self.record(name, key % SLOTS[name])
                r = list(r) if r is not None and r[KEY] == key else None
                if key == newest:
                    r = self._with_open(r, key, name)
                if r is None:
                    continue
                yield ("" if first else ",") + _record_json(name, r, key == newest)
                first = False
            yield "]"
        yield "}"

    def _with_open(self, r, key, series):
        # the open hour's amounts so far added to its own record (and to today's, this month's)
        st = self.state
        if r is None:
            r = [key] + [0] * (FIELDS - 1)
            if series == "hours":
                r[OFF] = st[HOFF]
        last = self.last
        r[FLAGS] |= st[HFLAGS]
        r[IMPORT] += max(0, last[0] - st[IMP0])
        r[EXPORT] += max(0, last[1] - st[EXP0])
        if st[GAS0] >= 0 and last[2] >= st[GAS0]:
            r[GAS] += last[2] - st[GAS0]
        if st[HPK_AT] and (not r[PEAK_AT] or st[HPK] > r[PEAK]):
            r[PEAK], r[PEAK_AT], r[OFF] = st[HPK], st[HPK_AT], st[HPK_OFF]
        if series == "hours":
            r[OFF] = st[HOFF]
        return r

    def peaks_json(self):
        """The peaks as JSON, every key always there (null: not known yet): the running quarter's
        average, this month's highest quarter, and the average of its three highest hours on
        different days (W, with their local times)."""
        avg = self.average()
        m = self.month() or (0, 0, 0, 0, 0, 0)
        return '{"average_w":%s,"month_peak_w":%s,"month_peak_time":%s,"hour_peaks_average_w":%s,"hour_peak_time":%s}' % (
            "null" if avg is None else avg, m[0] if m[1] else "null", _q(meterclock.iso(m[1], m[2])) if m[1] else "null",
            m[3] if m[4] else "null", _q(meterclock.iso(m[4], m[5])) if m[4] else "null")

    def _live_pieces(self):
        order = [(self._live_next + k) % LIVE for k in range(LIVE)]
        order = [k for k in order if self.live_at[k] is not None]
        now = ticks_ms()
        yield ',"live":{"every_s":%d,"age_s":[%s]' % (LIVE_MS // 1000, ",".join(
            str(max(0, ticks_diff(now, self.live_at[k])) // 1000) for k in order))
        for i, name in enumerate(("power_w", "l1_w", "l2_w", "l3_w")):
            values = [self.live[4 * k + i] for k in order]
            if any(v != NONE for v in values):
                yield ',"%s":[%s]' % (name, ",".join("null" if v == NONE else str(v) for v in values))
        yield "}"


_FLAG_NAMES = ((GAP, "gap"), (PART, "part"), (SWAP, "swap"), (CLOCK, "clock"))


def _q(text):
    return '"' + text + '"'


def _record_json(series, r, is_open):
    if series == "hours":
        head = '"start":"%s"' % meterclock.iso(r[KEY] * 60 + r[OFF], r[OFF], False)
    elif series == "days":
        y, m, d = meterclock.civil_from_days(r[KEY])
        head = '"date":"%04d-%02d-%02d"' % (y, m, d)
    else:
        head = '"month":"%04d-%02d"' % (r[KEY] // 12, r[KEY] % 12 + 1)
    out = ["{" + head, ',"import":%d,"export":%d,"gas":%d' % (r[IMPORT], r[EXPORT], r[GAS])]
    if r[PEAK_AT]:
        out.append(',"peak_w":%d,"peak_time":%s' % (r[PEAK], _q(meterclock.iso(r[PEAK_AT], r[OFF]))))
    if r[HPEAK_AT] and series != "hours":
        out.append(',"%s":%d,"hour_peak_time":%s' % ("hour_peaks_average_w" if series == "months" else "hour_peak_w",
                                                       r[HPEAK], _q(meterclock.iso(r[HPEAK_AT], r[HPEAK_OFF]))))
    flags = [name for bit, name in _FLAG_NAMES if r[FLAGS] & bit]
    if flags:
        out.append(',"flags":["%s"]' % '","'.join(flags))
    if is_open:
        out.append(',"open":true')
    out.append("}")
    return "".join(out)
