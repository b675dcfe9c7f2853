# The meter's clock as history (history.py) counts with it: a reading's ISO 8601 time stamp (what
# DSMR's 0-0:1.0.0 and a DLMS push's date-time become, reading.py) as whole minutes, in integers
# only, with no time zone database: the stamp carries its own offset.
#
#   minute   minutes since 1970-01-01 00:00 UTC: what orders readings across a DST change (the
#            hour from 02:00 to 03:00 summer time and the one from 02:00 to 03:00 winter time
#            are two hours, not one)
#   local    minutes since 1970-01-01 00:00 in the meter's own wall time: what names a day and a
#            month (a day is the meter's day, 23 or 25 hours long when the clocks change)
#   offset   local - minute, as the stamp says (+60 in CET, +120 in CEST; 0 when it says none)


def days_from_civil(y, m, d):
    """Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm, integers only)."""
    y -= m <= 2
    era = (y if y >= 0 else y - 399) // 400
    yoe = y - era * 400
    doy = (153 * (m + (-3 if m > 2 else 9)) + 2) // 5 + d - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return era * 146097 + doe - 719468


def civil_from_days(z):
    """(year, month, day) of a day number since 1970-01-01."""
    z += 719468
    era = (z if z >= 0 else z - 146096) // 146097
    doe = z - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    d = doy - (153 * mp + 2) // 5 + 1
    m = mp + (3 if mp < 10 else -9)
    return yoe + era * 400 + (m <= 2), m, d


def parse(stamp):
    """'2026-11-25T15:50:53+01:00' -> (minute, offset); None when it is no time stamp a clock
    could have written (a meter whose clock is not set sends 2000-01-01 or zeros). Read from its
    bytes: one copy, not a string for every field (it is every telegram's)."""
    if not isinstance(stamp, str) or len(stamp) < 19:
        return None
    b = stamp.encode()
    if b[4] != 45 or b[7] != 45 or b[10] != 84 or b[13] != 58:         # - - T :
        return None
    y, mo, d, h, mi = _int(b, 0, 4), _int(b, 5, 7), _int(b, 8, 10), _int(b, 11, 13), _int(b, 14, 16)
    if y < 2010 or not 1 <= mo <= 12 or not 1 <= d <= 31 or not 0 <= h <= 23 or not 0 <= mi <= 59:
        return None                     # (a field that is no number is -1)
    offset = 0
    if len(b) == 25 and b[19] in (43, 45) and b[22] == 58:               # +hh:mm, -hh:mm
        hh, mm = _int(b, 20, 22), _int(b, 23, 25)
        if hh >= 0 and mm >= 0:
            offset = -(hh * 60 + mm) if b[19] == 45 else hh * 60 + mm
    local = days_from_civil(y, mo, d) * 1440 + h * 60 + mi
    return local - offset, offset


def _int(b, start, end):
    # the decimal number b[start:end], or -1 when it is not all digits
    n = 0
    for i in range(start, end):
        c = b[i] - 48
        if not 0 <= c <= 9:
            return -1
        n = n * 10 + c
    return n


def month_of(local):
    """The month a local minute is in, as year * 12 + month - 1 (a month's key)."""
    y, m, _ = civil_from_days(local // 1440)
    return y * 12 + m - 1


def iso(local, offset, seconds=True):
    """A local minute and its offset as ISO 8601: '2026-11-25T15:45:00+01:00' (seconds False:
    '2026-11-25T15:45+01:00')."""
    buf = bytearray(25)
    return buf[:put_iso(buf, 0, local, offset, seconds)].decode()


def put_iso(buf, pos, local, offset, seconds):
    """iso() written into buf at pos, and seconds None for the date only ('2026-11-25'): the new
    pos. (What the history's answers are written with, a record at a time into one buffer.)"""
    y, m, d = civil_from_days(local // 1440)
    pos = put_digits(buf, pos, y, 4)
    buf[pos] = 45                       # -
    pos = put_digits(buf, pos + 1, m, 2)
    buf[pos] = 45
    pos = put_digits(buf, pos + 1, d, 2)
    if seconds is None:
        return pos
    buf[pos] = 84                       # T
    pos = put_digits(buf, pos + 1, local // 60 % 24, 2)
    buf[pos] = 58                       # :
    pos = put_digits(buf, pos + 1, local % 60, 2)
    if seconds:
        buf[pos] = 58                   # :00
        pos = put_digits(buf, pos + 1, 0, 2)
    buf[pos] = 45 if offset < 0 else 43
    off = -offset if offset < 0 else offset
    pos = put_digits(buf, pos + 1, off // 60, 2)
    buf[pos] = 58
    return put_digits(buf, pos + 1, off % 60, 2)


def put_digits(buf, pos, n, width):
    """n in exactly width digits, leading zeros, into buf at pos: the new pos. (A while loop: a
    range would be an object each time.)"""
    i = pos + width
    while i > pos:
        i -= 1
        buf[i] = 48 + n % 10
        n //= 10
    return pos + width


def homewizard(local):
    """A local minute as HomeWizard writes a time stamp: YYMMDDhhmmss as a number."""
    y, m, d = civil_from_days(local // 1440)
    return "%02d%02d%02d%02d%02d00" % (y % 100, m, d, local // 60 % 24, local % 60)
