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
    could have written (a meter whose clock is not set sends 2000-01-01 or zeros)."""
    if not isinstance(stamp, str) or len(stamp) < 19 or stamp[4] != "-" or stamp[10] != "T":
        return None
    digits = stamp[0:4] + stamp[5:7] + stamp[8:10] + stamp[11:13] + stamp[14:16]
    if not digits.isdigit():
        return None
    y, mo, d, h, mi = int(stamp[0:4]), int(stamp[5:7]), int(stamp[8:10]), int(stamp[11:13]), int(stamp[14:16])
    if y < 2010 or not 1 <= mo <= 12 or not 1 <= d <= 31 or h > 23 or mi > 59:
        return None
    offset = 0
    zone = stamp[19:]
    if len(zone) == 6 and zone[0] in "+-" and zone[1:3].isdigit() and zone[4:6].isdigit():
        offset = int(zone[1:3]) * 60 + int(zone[4:6])
        if zone[0] == "-":
            offset = -offset
    local = days_from_civil(y, mo, d) * 1440 + h * 60 + mi
    return local - offset, offset


def month_of(local):
    """The month a local minute is in, as year * 12 + month - 1 (a month's key)."""
    y, m, _ = civil_from_days(local // 1440)
    return y * 12 + m - 1


def iso(local, offset, seconds=True):
    """A local minute and its offset as ISO 8601: '2026-11-25T15:45:00+01:00'."""
    y, m, d = civil_from_days(local // 1440)
    sign = "-" if offset < 0 else "+"
    off = -offset if offset < 0 else offset
    return "%04d-%02d-%02dT%02d:%02d%s%s%02d:%02d" % (y, m, d, local // 60 % 24, local % 60, ":00" if seconds else "",
                                                    sign, off // 60, off % 60)


def homewizard(local):
    """A local minute as HomeWizard writes a time stamp: YYMMDDhhmmss as a number."""
    y, m, d = civil_from_days(local // 1440)
    return "%02d%02d%02d%02d%02d00" % (y % 100, m, d, local // 60 % 24, local % 60)
