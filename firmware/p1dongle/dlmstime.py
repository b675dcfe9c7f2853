# A DLMS date-time (12 bytes: year hi, lo, month, day, weekday, hour, minute, second, hundredths,
# deviation hi, lo, clock status), the meter's clock in a push: read in one place, written as ISO
# 8601 (the readings, MQTT, the web page) or as DSMR's YYMMDDhhmmssX (the rendered telegram).


def valid(dt):
    """Whether dt is a 12-byte date-time with a usable date and time (0xFF: not specified)."""
    if dt is None or len(dt) != 12:
        return False
    year = (dt[0] << 8) | dt[1]
    return year != 0xFFFF and 1 <= dt[2] <= 12 and 1 <= dt[3] <= 31 and dt[5] <= 23 and dt[6] <= 59 and dt[7] <= 59


def summer(dt):
    # the clock status's daylight-saving bit (status 0xFF: not specified)
    return dt[11] != 0xFF and dt[11] & 0x80


def iso_time(dt):
    """ISO 8601 with its UTC offset, or None when dt is no usable time. The offset is the
    deviation the meter sends (minutes from local time to UTC, so CET is -60); when it sends none
    (0x8000), CET/CEST by the daylight-saving bit, as DSMR assumes."""
    if not valid(dt):
        return None
    deviation = (dt[9] << 8) | dt[10]
    if deviation == 0x8000:
        offset = 120 if summer(dt) else 60
    else:
        offset = -(deviation - 0x10000 if deviation & 0x8000 else deviation)
    sign = "-" if offset < 0 else "+"
    offset = -offset if offset < 0 else offset
    return "%04d-%02d-%02dT%02d:%02d:%02d%s%02d:%02d" % (
        (dt[0] << 8) | dt[1], dt[2], dt[3], dt[5], dt[6], dt[7], sign, offset // 60, offset % 60)


def dsmr_time(dt):
    """DSMR's timestamp YYMMDDhhmmssX (X: S in summer time, else W), or None when unusable."""
    if not valid(dt):
        return None
    return "%02d%02d%02d%02d%02d%02d%s" % (((dt[0] << 8) | dt[1]) % 100, dt[2], dt[3], dt[5], dt[6], dt[7],
                                           "S" if summer(dt) else "W")
