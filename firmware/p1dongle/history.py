# History and peaks, kept on the dongle from the meter's own registers and clock.
#
#   per hour   the last 48 hours      energy imported, exported, gas, water; the highest 15-minute
#   per day    the last 62 days       average import power; the day's highest hour (Norway's
#   per month  the last 60 months     tariff counts hours), and the month's three highest
#
# Energy is booked from the registers, never from power: an hour is the import register at the
# first telegram of the next hour minus the one at the first telegram of this hour (the same
# rule the meter applies to its quarter hours, so a Belgian meter's own 1-0:1.4.0 and 1-0:1.6.0
# come out equal). Integers of the register's unit: Wh, and litres of gas and water. The clock is the
# meter's (meterclock.py): an hour is a UTC hour, a day and a month are the meter's local ones.
#
# What it does not know it does not make up. An hour whose end the dongle did not see (it was off,
# the meter silent) holds the energy of the gap, and is marked "gap"; the hour after it began
# unseen and is marked "part". Neither counts for the hourly peaks; both count in the day's and
# month's energy, which stay right. A meter swap (another identifier) or a register going back
# starts a new series ("swap"): the hour gets what the old register had counted, never a negative
# amount. A quarter hour is measured only from its first telegram to the first of the next one.
#
# Flash: three files beside the settings (history.hours, .days, .months), each written whole or
# not at all (a new file, then a rename: a power cut keeps the previous one) and at most once an
# hour, when an hour ends: the days and months first, then the hours file, which says the hour is
# booked (a cut between them books it again, and the day and month take it only once: _BOOKED).
# The hours file also holds the open hour's start (series, registers, its peak so far), so a
# restart within the hour goes on where it was. In RAM: the open hour and quarter, the month's
# peaks (the live power of the last minutes the page keeps itself, from the readings it asks for
# every 3 s). Answers are read from the files a record at a time (pieces()).
import os
import struct
from array import array

from . import meterclock
from .compat import MICROPYTHON, const, loops
from .dsmr import clock_at, crc16, read as read_telegram
from .meterclock import put_digits, put_iso
from .obis import NAME
from .reading import IDENTIFIERS

_JSON_MOST = const(360)  # a record's JSON at the most (a month's with all its fields: ~330 bytes)
_HOURS = const(48)
_DAYS = const(62)
_MONTHS = const(60)

# A record (an hour, a day or a month): 13 int32 fields
_KEY = const(0)          # hour: UTC minute // 60; day: local day number; month: year * 12 + month - 1
_FLAGS = const(1)
_IMPORT = const(2)       # Wh
_EXPORT = const(3)       # Wh
_GAS = const(4)          # litres
_PEAK = const(5)         # W: the highest 15-minute average import power
_PEAK_AT = const(6)      # local minute its quarter ended
_OFF = const(7)          # hour: its UTC offset (minutes); day, month: _PEAK_AT's offset
_HPEAK = const(8)        # W: hour: its import if whole (no flag); day: its highest such hour;
                         # month: the average of the three highest days' _HPEAK (Norway)
_HPEAK_AT = const(9)     # local minute that hour began
_HPEAK_OFF = const(10)
_BOOKED = const(11)      # day, month: the number of the last hour's close booked into it (_CLOSES)
_WATER = const(12)       # litres
_FIELDS = const(13)
_SIZE = const(52)
_EMPTY = const(-1)
# The layouts by name, for what reads the files (tests, tools): the fields of a record, of the
# open hour's state in the hours file, the files (their magic, their slots) and the flags.
RECORD = ("key", "flags", "import", "export", "gas", "peak", "peak_at", "off", "hour_peak", "hour_peak_at",
          "hour_peak_off", "booked", "water")

_GAP = const(1)          # holds energy of a time after its end that the dongle did not see
_PART = const(2)         # began before the dongle saw it: less than the whole hour
_SWAP = const(4)         # the meter was swapped, or its register went back: a new series
_CLOCK = const(8)        # the meter's clock went back

# The open hour, kept in the hours file: 64-bit fields (a register may pass 2**31 Wh)
_SERIES = const(0)
_METER = const(1)        # crc16 of the meter's identifier (0: none seen)
_HKEY = const(2)         # the open hour (-1: none yet)
_HOFF = const(3)
_HFLAGS = const(4)
_IMP0 = const(5)         # the registers at the open hour's first telegram (gas -1: none)
_EXP0 = const(6)
_GAS0 = const(7)
_LAST = const(8)         # the UTC minute of the latest register reading
_EVERY = const(9)        # minutes between the meter's register readings (an hourly list: 60)
_HPK = const(10)         # the open hour's highest quarter so far, W, its local end and offset
_HPK_AT = const(11)
_HPK_OFF = const(12)
_CLOSES = const(13)      # hours closed so far: each close's number marks the day and month it
                         # went to (_BOOKED), so that one redone after a power cut is not taken twice
_WAT0 = const(14)
_STATE = "<15q"
_STATE_SIZE = const(120)
STATE = ("series", "meter", "hour", "offset", "flags", "import", "export", "gas", "last", "every", "peak", "peak_at",
         "peak_off", "closes", "water")
SERIES = ("hours", "days", "months")
_MAGIC = (b"P1H1", b"P1D1", b"P1M1")
_HEADS = (124, 4, 4)    # where a file's records begin: after the magic (and the hours file's state)
_SLOTS = (_HOURS, _DAYS, _MONTHS)
_NAMES = ("history.hours", "history.days", "history.months")
_ORDER = (1, 2, 0)      # an hour's end is written to the days, the months, then the hours file


# The readings history takes: the registers (import, export; their tariffs summed where the total
# is not sent), the units it books in (a power of ten from the reading's). Tuples: frozen, they
# cost the heap nothing.
_ENERGY = ("totalImportedEnergyP", "totalExportedEnergyP")
_TARIFFS = ("totalImportedEnergyT1", "totalImportedEnergyT2", "totalImportedEnergyT3", "totalImportedEnergyT4",
            "totalExportedEnergyT1", "totalExportedEnergyT2", "totalExportedEnergyT3", "totalExportedEnergyT4")
_UNITS = ("Wh", "kWh", "MWh", "W", "kW", "m3")
_SHIFTS = (0, 3, 6, 0, 3, 3)


def scaled(m, e, unit):
    """A reading (mantissa, exponent, unit) in Wh, W or litres, as an integer (rounded down);
    None in a unit that is none of theirs."""
    if unit not in _UNITS:
        return None
    shift = _SHIFTS[_UNITS.index(unit)]
    e += shift
    if e >= 0:
        return m * 10 ** e
    return m // 10 ** -e


def _fill(rec, key):
    # an empty record for a key
    rec[0] = key
    for i in range(1, _FIELDS):
        rec[i] = 0


class History:
    """Books each telegram's registers into hours, days and months, and keeps the peaks. It reads
    a DSMR telegram itself, as dsmr.read's sink (skip, number, value): the registers in Wh and
    litres, the clock, the meter's name; the other lines are not read. (One object, few methods:
    on the dongle a class's methods and an object's attributes are what it costs the heap.)"""

    def __init__(self, folder="", log=print):
        self.log = log
        self.writes = [0, 0, 0]         # files written, per series (SERIES): the tests count them
        self.state = [0] * 15
        self.state[_HKEY] = self.state[_GAS0] = self.state[_WAT0] = -1
        self.last = [0, 0, -1, -1]      # the latest registers read: import, export, gas, water
        self.v = [None] * 6             # a telegram's import, export, import tariffs, export
                                        # tariffs, gas, water; its clock and meter (crc16 of its
                                        # name); what its M-Bus channels are (EN 13757-3 types)
        self._kinds = bytearray(5)
        self._minute = bytearray(11)    # the clock (YYMMDDhhmm, and its S or W) of the last DSMR
                                        # telegram read
        self._stamp = None
        self._meter = 0
        self._rec = array("i", [0] * _FIELDS)     # a record read, or on its way into a new file
        self._folder = folder
        self._quarter = [-1, 0, 0]      # the open quarter (UTC minute // 15), its first import,
                                        # whether that was the quarter's first telegram
        self._month = None              # _months once read for the open hour's month
        self._months = [0] * 7          # [key, peak, at, off, hpeak, its at, its off] of the month
        self.clock = None               # [minute, offset] of the latest telegram with a clock
        self.unclocked = 0              # telegrams with registers and no clock: not booked
        self._pending = False           # an hour's end not yet written (the write failed)
        self._booked = None             # the hour that ended, until written: (hour, local start,
                                        # offset, flags, amounts, whole-hour import, peak)
        self._done = 3                  # how many of _ORDER's files it is written to
        self._load()

    # -- files ------------------------------------------------------------------------------------

    def _load(self):
        for name in _NAMES:
            try:
                os.remove(self._folder + name + ".new")     # a write a power cut broke off
            except OSError:
                pass
        try:
            with open(self._folder + _NAMES[0], "rb") as f:
                head = f.read(4 + _STATE_SIZE)
        except OSError:
            return
        if len(head) != 4 + _STATE_SIZE or head[:4] != _MAGIC[0] or self._size(0) is None:
            self.log("p1dongle: history: the hours file is not one: a new history begins")
            return
        self.state = list(struct.unpack_from(_STATE, head, 4))
        self.last = [self.state[_IMP0], self.state[_EXP0], self.state[_GAS0], self.state[_WAT0]]

    def _size(self, k):
        # series k's file's record count when it is whole, else None
        try:
            size = os.stat(self._folder + _NAMES[k])[6]
        except OSError:
            return None
        return _SLOTS[k] if size == _HEADS[k] + _SLOTS[k] * _SIZE else None

    def records(self, series):
        """Each slot's record of a series file, as a tuple, in slot order."""
        k = SERIES.index(series)
        if self._size(k) is None:
            return
        for slot in range(_SLOTS[k]):
            r = self.record(k, slot)
            if r is None:
                return
            yield tuple(r)

    def record(self, k, slot):
        """Series k's record in a slot, or None: an array of int32 (native: every target is
        little-endian), the same one each time. The file is opened for each: the answer that
        reads them is sent a piece at a time, and the hour may end (the file renamed) meanwhile."""
        rec = self._rec                 # (nothing waits between the read and its use)
        try:
            with open(self._folder + _NAMES[k], "rb") as f:
                f.seek(_HEADS[k] + slot * _SIZE)
                n = f.readinto(rec)
        except OSError:
            return None
        return rec if n == _SIZE else None

    def _rewrite(self, series, key, change):
        """Write the series file again with slot key's record changed by change(record): the
        other records copied a record at a time, into a new file renamed over the old one."""
        k = SERIES.index(series)
        path = self._folder + _NAMES[k]
        slots = _SLOTS[k]
        whole = self._size(k) is not None
        rec = self._rec
        st = self.state
        local = st[_HKEY] * 60 + st[_HOFF]
        newest = st[_HKEY] if k == 0 else local // 1440 if k == 1 else meterclock.month_of(local)
        old = open(path, "rb") if whole else None
        try:
            with open(path + ".new", "wb") as f:
                f.write(_MAGIC[k])
                if k == 0:
                    f.write(struct.pack(_STATE, *self.state))
                if old is not None:
                    old.seek(_HEADS[k])
                for slot in range(slots):
                    if old is None or old.readinto(rec) != _SIZE or (st[_HKEY] >= 0 and rec[_KEY] > newest):
                        _fill(rec, _EMPTY)      # none yet, or ahead of the clock
                    if change is not None and slot == key % slots:
                        if rec[_KEY] != key:
                            _fill(rec, key)
                        change(rec)
                    f.write(rec)
        finally:
            if old is not None:
                old.close()
        os.rename(path + ".new", path)
        self.writes[SERIES.index(series)] += 1

    # -- telegrams --------------------------------------------------------------------------------

    def telegram(self, t):
        """A telegram passed on (telegram.Telegram): its registers booked. A DSMR meter's are read
        from the first telegram of each minute of its clock, the history's grain (that telegram
        begins an hour or a quarter when one begins); the others of the minute are not read at all
        (reading every one of them took as much CPU as the rest of the app), so the open hour's
        figures and the running average are a minute behind at most."""
        at = clock_at(t.data) if t.pushed is None else -1
        seen = self._minute             # (the season letter too: the autumn's 02:mm comes twice)
        if at >= 0 and not self._pending and loops.equal(seen, 0, t.data, at, 10) and seen[10] == t.data[at + 12]:
            return
        v = self.v
        for k in range(6):
            v[k] = None
        self._stamp = None
        self._meter = 0
        if t.pushed is None:
            read_telegram(t.data, self)
        else:
            for row, value in t.pushed:
                self.value(row, value)
        clock = meterclock.parse(self._stamp)
        self._stamp = None              # (nothing of the telegram kept: it would break the heap up)
        if clock is not None:
            if self.clock is None:
                self.clock = [0, 0]
            self.clock[0], self.clock[1] = clock
        imp = v[0] if v[0] is not None else v[2]
        if imp is None:
            return
        if clock is None:
            self.unclocked += 1
            return
        exp = v[1] if v[1] is not None else v[3]
        self.book(clock[0], clock[1], imp, exp or 0, -1 if v[4] is None else v[4], self._meter,
                  -1 if v[5] is None else v[5])
        if at >= 0:                     # (once booked: a read that failed is not skipped)
            loops.copy(seen, 0, t.data, at, 10)
            seen[10] = t.data[at + 12]

    # dsmr.read's sink, and the readings of a DLMS push

    def skip(self, row):
        name = row[NAME]
        return not (name == "powerTs" or name in IDENTIFIERS or name.startswith("mbus"))

    def number(self, row, m, e, unit):
        name = row[NAME]
        v = self.v
        if name in _ENERGY:
            v[_ENERGY.index(name)] = scaled(m, e, unit)
        elif name in _TARIFFS:
            wh = scaled(m, e, unit)
            if wh is not None:
                k = 2 + _TARIFFS.index(name) // 4
                v[k] = wh if v[k] is None else v[k] + wh
        elif name.startswith("mbus") and "1" <= name[4:5] <= "4":
            # an M-Bus channel: its type (3 gas, 6 and 7 water) comes before its reading in a
            # DSMR telegram; a reading in m3 of a channel that says none is gas, as DSMR's is
            n = ord(name[4]) - 48
            if name.endswith("DeviceType") and e == 0 and 0 <= m < 256:
                self._kinds[n] = m
            elif name.endswith("Reading") and unit == "m3":
                k = 5 if self._kinds[n] in (6, 7) else 4
                if v[k] is None:
                    v[k] = scaled(m, e, unit)

    def value(self, row, value):
        name = row[NAME]
        if isinstance(value, tuple):
            if len(value) >= 3 and isinstance(value[0], int):
                self.number(row, value[0], value[1], value[2])
        elif isinstance(value, str):
            if name == "powerTs":
                self._stamp = value
            elif not self._meter and name in IDENTIFIERS and value:
                self._meter = crc16(value.encode()) or 1

    def book(self, minute, offset, imp, exp, gas, meter=0, water=-1):
        """A register reading at a UTC minute (the meter's clock, offset its local time's); gas
        and water -1: none in this telegram."""
        st = self.state
        last = self.last
        if st[_HKEY] < 0:
            self._open(minute, offset, imp, exp, gas, water, meter, _PART if minute % 60 else 0)
            self._write_all()
            return
        if gas < 0:
            gas = last[2]               # (a list without the gas reading: the last one holds)
        if water < 0:
            water = last[3]
        swapped = (meter and st[_METER] and meter != st[_METER]) or imp < last[0] or exp < last[1] or \
            (0 <= gas < last[2]) or (0 <= water < last[3])
        gap = minute - st[_LAST]
        if swapped:
            # what the old register counted goes to the open hour; the new one starts from here
            self._close(last[0], last[1], last[2], last[3], _SWAP)
            st[_SERIES] += 1
            self._quarter[0] = -1       # (before _open, which starts the quarter from the new one)
            self._open(minute, offset, imp, exp, gas, water, meter, _PART)
            self._write_all()
            return
        hkey = minute // 60
        if hkey < st[_HKEY]:
            # The meter's clock went back (set right after it had run ahead): the open hour is
            # this hour now, and keeps what it has counted. Records ahead of the clock go with
            # the next write (_rewrite): time coming to them would add to what a wrong clock booked.
            st[_HKEY], st[_HOFF], st[_HFLAGS] = hkey, offset, st[_HFLAGS] | _CLOCK | _PART
            st[_LAST] = minute
            q = self._quarter           # a quarter from here, not measured (its start unseen)
            q[0], q[1], q[2] = minute // 15, imp, False
            last[0], last[1], last[2], last[3] = imp, exp, gas, water
            self._write_all()
            return
        q = self._quarter
        if minute // 15 != q[0]:
            steady = q[0] >= 0 and minute // 15 == q[0] + 1 and 0 <= gap <= 5
            if steady and q[2]:
                # the quarter that ended: its average power is its energy times four
                avg = (imp - q[1]) * 4
                if avg > st[_HPK] or st[_HPK_AT] == 0:
                    st[_HPK], st[_HPK_AT], st[_HPK_OFF] = avg, minute // 15 * 15 + offset, offset
            # measured from this reading when it is the quarter's first (the one before was in
            # the quarter before), or came in its first minute
            q[0], q[1], q[2] = minute // 15, imp, steady or minute % 15 == 0
        if hkey != st[_HKEY]:
            # The hour ends. Its end was seen when this reading came as soon as the meter sends
            # them (every minute or so; an hourly list's once an hour) after the one before.
            seen = hkey == st[_HKEY] + 1 and 0 <= gap <= max(5, st[_EVERY] + 5)
            self._close(imp, exp, gas, water, 0 if seen else _GAP)
            self._open(minute, offset, imp, exp, gas, water, meter, 0 if seen else _PART)
            self._write_all()
        elif gap < 0:
            st[_HFLAGS] |= _CLOCK         # the clock went back within the hour
        if 0 < gap <= 70:
            st[_EVERY] = gap if gap < 5 else max(st[_EVERY], gap)
        if meter and not st[_METER]:
            st[_METER] = meter
        if self._pending:
            self._write_all()
        st[_LAST] = minute
        last[0], last[1], last[2], last[3] = imp, exp, gas, water

    def _open(self, minute, offset, imp, exp, gas, water, meter, flags):
        st = self.state
        st[_HKEY], st[_HOFF], st[_HFLAGS] = minute // 60, offset, flags
        st[_IMP0], st[_EXP0], st[_GAS0], st[_WAT0] = imp, exp, gas, water
        st[_LAST] = minute
        st[_HPK] = st[_HPK_AT] = st[_HPK_OFF] = 0
        if meter:
            st[_METER] = meter
        self.last[0], self.last[1], self.last[2], self.last[3] = imp, exp, gas, water
        q = self._quarter
        if q[0] < 0:
            q[0], q[1], q[2] = minute // 15, imp, minute % 15 == 0

    def _close(self, imp, exp, gas, water, flags):
        """The open hour ends with these registers: its amounts booked into its hour, day and
        month (written by _write_all)."""
        st = self.state
        flags |= st[_HFLAGS]
        local = st[_HKEY] * 60 + st[_HOFF]
        amounts = (max(0, imp - st[_IMP0]), max(0, exp - st[_EXP0]), max(0, gas - st[_GAS0]) if st[_GAS0] >= 0 else 0,
                   max(0, water - st[_WAT0]) if st[_WAT0] >= 0 else 0)
        whole = amounts[0] if not flags else 0
        if self._booked is not None:
            self.log("p1dongle: history: an hour not written to the %s file is lost" % _NAMES[_ORDER[self._done]])
        st[_CLOSES] += 1
        booking = st[_CLOSES] & 0x3FFFFFFF
        self._booked = (st[_HKEY], local, st[_HOFF], flags, amounts, whole, (st[_HPK], st[_HPK_AT], st[_HPK_OFF]), booking)
        self._done = 0

    def _add(self, r, series, top=None):
        # the booked hour's amounts and peaks into its hour's, day's or month's record r
        hkey, local, off, flags, amounts, whole, peak, booking = self._booked
        if series != "hours":
            if r[_BOOKED] == booking:
                return                  # booked before a power cut kept the hours file from saying so
            r[_BOOKED] = booking
        r[_FLAGS] |= flags
        r[_IMPORT] += amounts[0]
        r[_EXPORT] += amounts[1]
        r[_GAS] += amounts[2]
        r[_WATER] += amounts[3]
        if peak[1] and (not r[_PEAK_AT] or peak[0] > r[_PEAK]):
            r[_PEAK], r[_PEAK_AT], r[_OFF] = peak
        if series == "hours":
            r[_OFF] = off                # (an hour's offset is its own; its peak's is the same)
            r[_HPEAK] = whole if not r[_FLAGS] else 0
            r[_HPEAK_AT], r[_HPEAK_OFF] = (local, off) if not r[_FLAGS] else (0, 0)
        elif series == "days":
            if whole and (not r[_HPEAK_AT] or whole > r[_HPEAK]):
                r[_HPEAK], r[_HPEAK_AT], r[_HPEAK_OFF] = whole, local, off
        elif top is not None:
            r[_HPEAK], r[_HPEAK_AT], r[_HPEAK_OFF] = top

    def _write_all(self):
        """The hour that ended (_close) into the three files, hours last: it also holds the new
        open hour, and a power cut before it is written books the hour again after the restart
        (days and months know it: _BOOKED). A write that fails (flash full, no heap) is tried
        again with the next telegram, the files not yet written only; an hour that ends before
        then replaces it, and _close says which file lost it."""
        booked = self._booked
        try:
            if booked is None:
                self._rewrite("hours", -1, None)
            else:
                local = booked[1]
                keys = {"hours": booked[0], "days": local // 1440, "months": meterclock.month_of(local)}
                while self._done < 3:
                    series = SERIES[_ORDER[self._done]]
                    top = self._top3(keys["months"]) if series == "months" else None
                    self._rewrite(series, keys[series], lambda r: self._add(r, series, top))
                    self._done += 1
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
            if r[_KEY] >= 0 and meterclock.month_of(r[_KEY] * 1440) == month and r[_HPEAK_AT]:
                best.append((r[_HPEAK], r[_HPEAK_AT], r[_HPEAK_OFF]))
        if not best:
            return None
        best.sort(reverse=True)
        best = best[:3]
        return sum(b[0] for b in best) // len(best), best[0][1], best[0][2]

    # -- what the outputs ask ---------------------------------------------------------------------

    def average(self):
        """The running 15-minute average import power, W (as a Belgian meter's 1-0:1.4.0: the
        quarter's energy so far times four); None before a quarter's start was seen, and for a
        meter that does not send its register every few minutes."""
        q = self._quarter
        # Only from a meter that sends its register every few minutes: a meter that sends it
        # once an hour (Kaifa's, Aidon's hourly list) would show 0 W for the whole quarter.
        if not q[2] or not 0 < self.state[_EVERY] <= 5:
            return None
        return (self.last[0] - q[1]) * 4

    def month(self):
        """This month's (peak W, its local minute, offset, average of the 3 highest hours W, the
        highest's local minute, offset), the open hour's quarters included; None before any."""
        st = self.state
        if st[_HKEY] < 0:
            return None
        key = meterclock.month_of(st[_HKEY] * 60 + st[_HOFF])
        if self._month is None or self._month[0] != key:
            # (in place: a tuple made anew after every hour's end would be one more block kept
            # among the garbage, where the heap breaks up)
            r = self.record(2, key % _MONTHS)
            m = self._months
            m[0] = key
            for i, f in enumerate(_MONTH_FIELDS):
                m[i + 1] = r[f] if r is not None and r[_KEY] == key else 0
            self._month = m
        m = self._month
        peak = m[1:4]
        if st[_HPK_AT] and (not peak[1] or st[_HPK] > peak[0]):
            peak = (st[_HPK], st[_HPK_AT], st[_HPK_OFF])
        if not peak[1] and not m[5]:
            return None
        return peak[0], peak[1], peak[2], m[4], m[5], m[6]

    # -- the history as JSON ----------------------------------------------------------------------

    def pieces(self, series=("hours", "days", "months")):
        """GET /api/p1dongle/history a few bytes at a time: the peaks, and the hours, days and
        months oldest first (the open ones with what the open hour has so far); series: which of
        them (none: the peaks only, what the page asks often). Each record is written into one
        buffer made for the answer and sent from there: a history's 170 records made 170 KB of
        garbage as strings (the heap collected every 2 KB with the Shelly face on: 85 times)."""
        st = self.state
        yield '{"units":{"energy":"Wh","gas":"L","water":"L","power":"W"},"series":%d' % st[_SERIES]
        clock = self.clock
        yield ',"meter_time":%s' % ('"%s"' % (meterclock.iso(clock[0] + clock[1], clock[1])) if clock else "null")
        yield ',"peaks":' + self.peaks_json()
        local = st[_HKEY] * 60 + st[_HOFF]
        buf = bytearray(_JSON_MOST)
        view = memoryview(buf)
        for name in series:
            k = SERIES.index(name)
            yield ',"%s":[' % name
            if st[_HKEY] < 0:
                yield "]"
                continue
            first = True
            newest = st[_HKEY] if k == 0 else local // 1440 if k == 1 else meterclock.month_of(local)
            slots = _SLOTS[k]
            for key in range(newest - slots + 1, newest + 1):
                r = self.record(k, key % slots)
                if r is not None and r[_KEY] != key:
                    r = None
                if key == newest:
                    r = self._with_open(None if r is None else list(r), key, name)
                if r is None:
                    continue
                n = _record_json(buf, k, r, first, key == newest)
                # (the stream copies what it is given, and the next record is written once it has
                # gone: a view of the buffer; CPython's transport may keep a view, so it gets bytes)
                yield view[:n] if MICROPYTHON else bytes(buf[:n])
                first = False
            yield "]"
        yield "}"

    def _with_open(self, r, key, series):
        # the open hour's amounts so far added to its own record (and to today's, this month's)
        st = self.state
        if r is None:
            r = [key] + [0] * (_FIELDS - 1)
            if series == "hours":
                r[_OFF] = st[_HOFF]
        last = self.last
        r[_FLAGS] |= st[_HFLAGS]
        r[_IMPORT] += max(0, last[0] - st[_IMP0])
        r[_EXPORT] += max(0, last[1] - st[_EXP0])
        if st[_GAS0] >= 0 and last[2] >= st[_GAS0]:
            r[_GAS] += last[2] - st[_GAS0]
        if st[_WAT0] >= 0 and last[3] >= st[_WAT0]:
            r[_WATER] += last[3] - st[_WAT0]
        if st[_HPK_AT] and (not r[_PEAK_AT] or st[_HPK] > r[_PEAK]):
            r[_PEAK], r[_PEAK_AT], r[_OFF] = st[_HPK], st[_HPK_AT], st[_HPK_OFF]
        if series == "hours":
            r[_OFF] = st[_HOFF]
        return r

    def peaks_json(self):
        """The peaks as JSON, every key always there (null: not known yet): the running quarter's
        average, this month's highest quarter, and the average of its three highest hours on
        different days (W, with their local times)."""
        avg = self.average()
        m = self.month() or (0, 0, 0, 0, 0, 0)
        return '{"average_w":%s,"month_peak_w":%s,"month_peak_time":%s,"hour_peaks_average_w":%s,"hour_peak_time":%s}' % (
            "null" if avg is None else avg, m[0] if m[1] else "null", '"%s"' % (meterclock.iso(m[1], m[2])) if m[1] else "null",
            m[3] if m[4] else "null", '"%s"' % (meterclock.iso(m[4], m[5])) if m[4] else "null")


_MONTH_FIELDS = (_PEAK, _PEAK_AT, _OFF, _HPEAK, _HPEAK_AT, _HPEAK_OFF)
_FLAG_NAMES = ((_GAP, b'"gap"'), (_PART, b'"part"'), (_SWAP, b'"swap"'), (_CLOCK, b'"clock"'))
_SMALL = const(1 << 29)     # what loops.put_decimal takes (machine code on the dongle: a small int)


def _record_json(buf, k, r, first, is_open):
    """Series k's record r as JSON (a comma before it unless first), written into buf: its end."""
    put = loops.put
    pos = 0 if first else put(buf, 0, b",")
    if k == 0:
        pos = put_iso(buf, put(buf, pos, b'{"start":"'), r[_KEY] * 60 + r[_OFF], r[_OFF], False)
    elif k == 1:
        pos = put_iso(buf, put(buf, pos, b'{"date":"'), r[_KEY] * 1440, 0, None)
    else:
        pos = put_digits(buf, put(buf, pos, b'{"month":"'), r[_KEY] // 12, 4)
        pos = put_digits(buf, put(buf, pos, b"-"), r[_KEY] % 12 + 1, 2)
    pos = _number(buf, put(buf, pos, b'","import":'), r[_IMPORT])
    pos = _number(buf, put(buf, pos, b',"export":'), r[_EXPORT])
    pos = _number(buf, put(buf, pos, b',"gas":'), r[_GAS])
    pos = _number(buf, put(buf, pos, b',"water":'), r[_WATER])
    if r[_PEAK_AT]:
        pos = _number(buf, put(buf, pos, b',"peak_w":'), r[_PEAK])
        pos = put(buf, put_iso(buf, put(buf, pos, b',"peak_time":"'), r[_PEAK_AT], r[_OFF], True), b'"')
    if r[_HPEAK_AT] and k:
        pos = _number(buf, put(buf, pos, b',"hour_peaks_average_w":' if k == 2 else b',"hour_peak_w":'), r[_HPEAK])
        pos = put(buf, put_iso(buf, put(buf, pos, b',"hour_peak_time":"'), r[_HPEAK_AT], r[_HPEAK_OFF], True), b'"')
    if r[_FLAGS]:
        pos = put(buf, pos, b',"flags":[')
        comma = False
        for bit, name in _FLAG_NAMES:
            if r[_FLAGS] & bit:
                pos = put(buf, put(buf, pos, b",") if comma else pos, name)
                comma = True
        pos = put(buf, pos, b"]")
    if is_open:
        pos = put(buf, pos, b',"open":true')
    return put(buf, pos, b"}")


def _number(buf, pos, n):
    if -_SMALL < n < _SMALL:
        return loops.put_decimal(buf, pos, n, 0)
    return loops.put(buf, pos, str(n))

