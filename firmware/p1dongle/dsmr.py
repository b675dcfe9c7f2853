# DSMR telegrams: the CRC check that decides whether a telegram is passed on, and a parser that
# turns the OBIS lines into named values with units for the JSON/MQTT outputs.
#
#   /Lux5\253663629_D            header: '/', 3-letter maker, baud digit, identification
#                                (empty line)
#   1-0:1.8.0(023949.193*kWh)    OBIS code, then one or more (value[*unit]) groups
#   ...
#   !C560                        '!' and CRC-16/ARC over '/'..'!' as 4 hex digits (any case);
#                                DSMR 2.2/3 telegrams end with a bare '!' and carry no CRC
#
# The telegram bytes themselves are never changed: consumers get exactly what the meter sent.
from .compat import loops
from .errors import CrcError, TelegramError


def crc16(data, crc=0):
    """CRC-16/ARC of data (bytes, bytearray or memoryview); pass crc to continue a running one."""
    return loops.crc16(data, 0, len(data), crc)


_TRAILING = b"\r\n\x00 "


def _hex_value(c):
    # 0-15 for an ASCII hex digit of either case, -1 for anything else
    if 0x30 <= c <= 0x39:
        return c - 0x30
    c |= 0x20
    if 0x61 <= c <= 0x66:
        return c - 0x57
    return -1


def check(telegram, n=-1):
    """True when the telegram in telegram[0:n] has the right CRC, False for one without a CRC
    (DSMR 2.2/3). n defaults to the whole buffer.

    Raises CrcError when the CRC does not match and TelegramError when this is no telegram.
    Trailing CR/LF/NUL/space after the CRC are tolerated (decrypted payloads vary)."""
    if n < 0:
        n = len(telegram)
    if n == 0 or telegram[0] != 0x2F:    # '/'
        raise TelegramError("does not start with '/'")
    end = n
    while end > 1 and telegram[end - 1] in _TRAILING and n - end < 8:
        end -= 1
    if telegram[end - 1] == 0x21:       # '!': no CRC
        return False
    bang = end - 5
    if bang < 1 or telegram[bang] != 0x21:
        raise TelegramError("no '!' end line")
    sent = 0
    for i in range(bang + 1, end):
        d = _hex_value(telegram[i])
        if d < 0:
            raise TelegramError("CRC after '!' is not 4 hex digits")
        sent = (sent << 4) | d
    got = loops.crc16(telegram, 0, bang + 1, 0)
    if sent != got:
        raise CrcError("CRC mismatch: telegram says %04X, content gives %04X" % (sent, got))
    return True


# ---- parser ----------------------------------------------------------------------------------
# Names follow the JSON fields our first users already know (smartmeter2mqtt: header, p1Version,
# powerTs, totalImportedEnergyP, currentUsage, voltageL1, ...), extended in the same style.
# Units are the meter's own (kWh, kW, kvarh, kvar, kVA, V, A, m3, s); codes not listed here are
# still reported, under the OBIS code itself, so nothing the meter sends is lost.
NAMES = {
    "1-3:0.2.8": "p1Version",
    "0-0:96.1.4": "versionInfo",
    "0-0:1.0.0": "powerTs",
    "0-0:96.1.1": "meterId",
    "0-0:42.0.0": "logicalDeviceName",
    "1-0:1.8.0": "totalImportedEnergyP",
    "1-0:2.8.0": "totalExportedEnergyP",
    "1-0:3.8.0": "totalImportedEnergyQ",
    "1-0:4.8.0": "totalExportedEnergyQ",
    "1-0:1.8.1": "totalImportedEnergyT1",
    "1-0:1.8.2": "totalImportedEnergyT2",
    "1-0:2.8.1": "totalExportedEnergyT1",
    "1-0:2.8.2": "totalExportedEnergyT2",
    "0-0:96.14.0": "currentTariff",
    "1-0:1.7.0": "currentUsage",
    "1-0:2.7.0": "currentDelivery",
    "1-0:3.7.0": "currentReactiveUsage",
    "1-0:4.7.0": "currentReactiveDelivery",
    "1-0:9.7.0": "currentApparentUsage",
    "1-0:10.7.0": "currentApparentDelivery",
    "1-0:1.4.0": "currentAverageDemand",
    "1-0:1.6.0": "maximumDemandMonth",
    "0-0:98.1.0": "maximumDemandHistory",
    "0-0:17.0.0": "powerLimit",
    "1-1:31.4.0": "currentLimit",
    "0-0:96.3.10": "breakerControlState",
    "0-1:96.3.10": "relay1ControlState",
    "0-2:96.3.10": "relay2ControlState",
    "0-0:96.7.21": "powerFailures",
    "0-0:96.7.9": "longPowerFailures",
    "1-0:99.97.0": "powerFailureLog",
    "1-0:32.32.0": "voltageSagsL1",
    "1-0:52.32.0": "voltageSagsL2",
    "1-0:72.32.0": "voltageSagsL3",
    "1-0:32.36.0": "voltageSwellsL1",
    "1-0:52.36.0": "voltageSwellsL2",
    "1-0:72.36.0": "voltageSwellsL3",
    "0-0:96.13.0": "message",
    "0-0:96.13.1": "messageCode",
    "0-0:96.13.2": "message2",
    "0-0:96.13.3": "message3",
    "0-0:96.13.4": "message4",
    "0-0:96.13.5": "message5",
    "1-0:32.7.0": "voltageL1",
    "1-0:52.7.0": "voltageL2",
    "1-0:72.7.0": "voltageL3",
    "1-0:31.7.0": "currentL1",
    "1-0:51.7.0": "currentL2",
    "1-0:71.7.0": "currentL3",
    "1-0:21.7.0": "currentUsageL1",
    "1-0:41.7.0": "currentUsageL2",
    "1-0:61.7.0": "currentUsageL3",
    "1-0:22.7.0": "currentDeliveryL1",
    "1-0:42.7.0": "currentDeliveryL2",
    "1-0:62.7.0": "currentDeliveryL3",
    "1-0:23.7.0": "currentReactiveUsageL1",
    "1-0:43.7.0": "currentReactiveUsageL2",
    "1-0:63.7.0": "currentReactiveUsageL3",
    "1-0:24.7.0": "currentReactiveDeliveryL1",
    "1-0:44.7.0": "currentReactiveDeliveryL2",
    "1-0:64.7.0": "currentReactiveDeliveryL3",
}

# M-Bus devices (gas, water, heat) hang off channels 0-1 .. 0-4: "0-<n>:<code>" -> "mbus<n><suffix>".
MBUS = {
    "24.1.0": "DeviceType",
    "96.1.0": "EquipmentId",
    "96.1.1": "EquipmentId",
    "24.2.1": "Reading",      # DSMR 4/5: (timestamp)(value*m3)
    "24.2.3": "Reading",      # Belgium: (timestamp)(value*m3), not temperature corrected
    "24.3.0": "Reading",      # DSMR 2.2/3: (ts)(..)(..)(..)(obis)(unit) then (value), maybe on the next line
    "24.4.0": "ValvePosition",
}

# Values that are text written as hex digits.
_HEX_TEXT = ("0-0:96.1.1", "0-0:42.0.0", "0-0:96.13.0", "0-0:96.13.2", "0-0:96.13.3",
             "0-0:96.13.4", "0-0:96.13.5")
_TEXT = ("1-3:0.2.8", "0-0:96.1.4", "0-0:96.13.1")   # keep as written ("42", "50217")


def name_of(obis):
    """The value name for an OBIS code (the code itself when we have no name for it)."""
    name = NAMES.get(obis)
    if name:
        return name
    if len(obis) > 4 and obis[0] == "0" and obis[1] == "-" and obis[3] == ":" and "1" <= obis[2] <= "4":
        suffix = MBUS.get(obis[4:])
        if suffix:
            return "mbus" + obis[2] + suffix
    return obis


def timestamp(text):
    """DSMR time 'YYMMDDhhmmssX' (X: S summer, W winter, absent in DSMR 2.2) -> ISO 8601, or None."""
    n = len(text)
    if n < 12 or n > 13 or not text[:12].isdigit():
        return None
    iso = "20%s-%s-%sT%s:%s:%s" % (text[0:2], text[2:4], text[4:6], text[6:8], text[8:10], text[10:12])
    if n == 12:
        return iso
    zone = text[12]
    if zone == "S":
        return iso + "+02:00"
    if zone == "W":
        return iso + "+01:00"
    return None


def number(text):
    """'023949.193' -> 23949.193, '00016' -> 16, '-040' -> -40; None when it is not a number."""
    digits = text[1:] if text[:1] == "-" else text
    if not digits:
        return None
    if digits.isdigit():
        return int(text)
    dot = digits.find(".")
    if dot >= 0 and (dot == 0 or digits[:dot].isdigit()) and digits[dot + 1:].isdigit():
        return float(text)
    return None


def hex_text(text):
    """'53414731' -> 'SAG1' when the hex digits spell printable text; else the digits unchanged."""
    if len(text) % 2:
        return text
    try:
        raw = bytes(int(text[i:i + 2], 16) for i in range(0, len(text), 2))
    except ValueError:
        return text
    for b in raw:
        if b < 0x20 or b > 0x7E:
            return text
    return raw.decode()


def value(group):
    """One '(...)' group -> (value, unit): numbers become int/float, timestamps ISO strings."""
    star = group.find("*")
    if star >= 0:
        v = number(group[:star])
        return (group[:star] if v is None else v), group[star + 1:]
    v = number(group)
    if v is not None:
        return v, None
    if len(group) == 13:            # a time stamp carries its S/W zone letter
        ts = timestamp(group)
        if ts is not None:
            return ts, None
    return group, None


def lines(telegram):
    """Yield (obis, [groups]) per data line; continuation lines '(…)' join the line before."""
    text = bytes(telegram).decode("ascii", "replace") if not isinstance(telegram, str) else telegram
    obis = None
    groups = []
    for line in text.split("\n"):
        line = line.strip()
        if not line or line[0] in "/!":
            continue
        if line[0] == "(":
            if obis is not None:
                groups.extend(_groups(line))
            continue
        if obis is not None:
            yield obis, groups
        paren = line.find("(")
        if paren <= 0:
            obis = None
            continue
        obis = line[:paren]
        groups = _groups(line[paren:])
    if obis is not None:
        yield obis, groups


def _groups(text):
    # "(a)(b*c)" -> ["a", "b*c"]; values never contain parentheses.
    out = []
    i = 0
    n = len(text)
    while i < n and text[i] == "(":
        j = text.find(")", i)
        if j < 0:
            break
        out.append(text[i + 1:j])
        i = j + 1
    return out


def parse(telegram):
    """Telegram (bytes or str) -> {name: (value, unit)}; unit is None for values without one.

    Besides the OBIS values: "header" (the identification line without '/'). A value given with
    its own time stamp (gas readings, monthly peaks) also yields "<name>Ts". The power failure log
    becomes a list of [ISO end time, duration in seconds]."""
    if not isinstance(telegram, str):
        telegram = bytes(telegram).decode("ascii", "replace")
    out = {}  # type: dict
    eol = telegram.find("\n")
    header = telegram[1:eol if eol >= 0 else len(telegram)].strip()
    if telegram[:1] != "/":
        raise TelegramError("does not start with '/'")
    out["header"] = (header, None)
    for obis, groups in lines(telegram):
        name = name_of(obis)
        if obis in _HEX_TEXT and len(groups) == 1:
            out[name] = (hex_text(groups[0]), None)
        elif obis in _TEXT and len(groups) == 1:
            out[name] = (groups[0], None)
        elif name == "powerFailureLog":
            out[name] = (_failure_log(groups), "s")
        elif obis.endswith(":24.3.0") and len(groups) >= 7:
            # DSMR 2.2/3 gas: (ts)(status)(interval)(count)(obis)(unit)(value)
            v = number(groups[6])
            out[name] = ((groups[6] if v is None else v), groups[5] or None)
            out[name + "Ts"] = (timestamp(groups[0]) or groups[0], None)
        elif "EquipmentId" in name and len(groups) == 1:
            out[name] = (hex_text(groups[0]), None)
        elif len(groups) == 1:
            out[name] = value(groups[0])
        elif len(groups) == 2 and timestamp(groups[0]) is not None:
            out[name] = value(groups[1])
            out[name + "Ts"] = (timestamp(groups[0]), None)
        elif not groups:
            out[name] = ("", None)
        else:
            vals = [value(g) for g in groups]
            unit = None
            for v in vals:
                unit = unit or v[1]
            out[name] = ([v[0] for v in vals], unit)
    return out


def _failure_log(groups):
    # (count)(0-0:96.7.19)(end ts)(duration*s)...
    events = []
    i = 2
    while i + 1 < len(groups):
        seconds = value(groups[i + 1])[0]
        events.append([timestamp(groups[i]) or groups[i], seconds])
        i += 2
    return events
