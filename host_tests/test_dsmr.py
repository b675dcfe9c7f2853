"""DSMR telegrams: CRC check against an independent CRC and dsmr_parser, values against dsmr_parser."""
import datetime
from decimal import Decimal

import meter
from dsmr_parser import telegram_specifications as specs
from dsmr_parser.exceptions import InvalidChecksumError
from dsmr_parser.parsers import TelegramParser
from hypothesis import given, settings, strategies as st
from p1dongle import dsmr, reading
from p1dongle.errors import CrcError, TelegramError
from p1dongle.pipeline import Pipeline

import pytest


def test_crc16_arc_check_value():
    # The catalogue check value of CRC-16/ARC.
    assert dsmr.crc16(b"123456789") == 0xBB3D
    assert dsmr.crc16(b"") == 0


@given(st.binary(max_size=300), st.integers(0, 300))
def test_crc16_matches_bitwise_reference_and_continues(data, cut):
    assert dsmr.crc16(data) == meter.crc16_arc(data)
    assert dsmr.crc16(data[cut:], dsmr.crc16(data[:cut])) == meter.crc16_arc(data)


@pytest.mark.parametrize("t", [meter.LUX_TELEGRAM, meter.NL_TELEGRAM, meter.telegram(meter.LUX_BODY, lower=True)])
def test_good_crc(t):
    assert dsmr.check(t) is True
    assert dsmr.check(bytearray(t)) is True
    assert dsmr.check(memoryview(t)) is True


def test_telegram_without_crc_is_accepted_and_marked():
    assert dsmr.check(meter.DSMR22_TELEGRAM) is False
    assert dsmr.check(b"/KFM5 EQUIPMENT\n\n1-0:1.8.1(00012.345*kWh)\n!\n") is False     # LF line ends too


NOT_DSMR23 = [b"/AbOb/IE?1+k|e+V343T\\iOd)tWJ(n)Z4T>yfKVqc_r\r\n!\r\n",   # make soak's hostile line
              b"/ISk5\\2MT382-1000\r\n1-0:1.8.1(00012.345*kWh)\r\n!\r\n",   # no empty line
              b"/IS25 header\r\n\r\n!\r\n",                                  # maker's letters
              b"/ISkX header\r\n\r\n!\r\n",                                  # baud rate digit
              b"/ISk5\r\n!\r\n"]


@pytest.mark.parametrize("text", NOT_DSMR23)
def test_text_without_crc_needs_a_dsmr_2_3_telegrams_shape(text):
    """Without a CRC, the shape is all that says it is a telegram: '/', the maker's three letters,
    the baud rate digit, the header line, an empty line. '/' ... '!' around line noise was published
    as a telegram (found by make soak's hostile line)."""
    with pytest.raises(TelegramError, match="no CRC, and not the shape of a DSMR 2/3 telegram"):
        dsmr.check(text)
    pipe = Pipeline()
    events = meter.record(pipe)
    pipe.push(text + meter.NL_TELEGRAM, 0)
    assert [e[2] for e in events if e[0] == 1] == [meter.NL_TELEGRAM]


def test_every_bit_flip_before_the_crc_is_caught():
    t = meter.LUX_TELEGRAM
    end = t.index(b"!")
    for i in range(1, end + 5):            # not '/': that is "no telegram", tested below
        for bit in range(8):
            bad = bytearray(t)
            bad[i] ^= 1 << bit
            if i > end and bytes(bad[i:i + 1]).lower() == t[i:i + 1].lower():
                assert dsmr.check(bad) is True      # 'C' -> 'c': the same CRC, any case is fine
                continue
            with pytest.raises((CrcError, TelegramError)):
                dsmr.check(bad)


def test_crc_message_names_both_values():
    bad = meter.LUX_TELEGRAM.replace(b"233.0*V", b"234.0*V", 1)
    with pytest.raises(CrcError) as e:
        dsmr.check(bad)
    assert str(e.value).startswith("CRC mismatch: telegram says C560, content gives ")


@pytest.mark.parametrize("bad, why", [
    (b"", "does not start with '/'"),
    (b"1-0:1.8.0(1*kWh)\r\n!1234\r\n", "does not start with '/'"),
    (b"/ABC5 x\r\n\r\n1-0:1.8.0(1*kWh)\r\n", "no '!' end line"),
    (b"/ABC5 x\r\n\r\n!12G4\r\n", "CRC after '!' is not 4 hex digits"),
    (b"/ABC5 x\r\n\r\n!+123\r\n", "CRC after '!' is not 4 hex digits"),
    (b"/ABC5 x\r\n\r\n!0x12\r\n", "CRC after '!' is not 4 hex digits"),
])
def test_not_a_telegram(bad, why):
    with pytest.raises(TelegramError) as e:
        dsmr.check(bad)
    assert str(e.value) == why


def test_trailing_bytes_after_the_crc_line_are_tolerated():
    # Decrypted payloads in the wild end in "!XXXX\r\n", "!XXXX" or with padding.
    t = meter.LUX_TELEGRAM
    assert dsmr.check(t[:-2]) is True
    assert dsmr.check(t + b"\x00\x00") is True


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["1-0:1.8.1", "1-0:2.7.0", "1-0:32.7.0", "0-0:96.7.21"]),
                          st.decimals(0, 99999, places=3)), min_size=1, max_size=30),
       st.booleans())
def test_crc_verdict_agrees_with_dsmr_parser(lines, corrupt):
    t = meter.telegram(["%s(%010.3f*kWh)" % (o, v) for o, v in lines])
    if corrupt:
        t = t.replace(b"(", b"[", 1)
    parser = TelegramParser(specs.V5)
    try:
        parser.validate_checksum(t.decode())
        reference = True
    except InvalidChecksumError:
        reference = False
    try:
        ours = dsmr.check(t)
    except CrcError:
        ours = False
    assert ours == reference == (not corrupt)


# ---- parser ---------------------------------------------------------------------------------

def test_luxembourg_values():
    v = meter.values(dsmr.parse(meter.LUX_TELEGRAM))
    assert v["header"] == "Lux5\\253663629_D"
    assert v["p1Version"] == "42"
    assert v["powerTs"] == "2022-06-14T09:46:09+02:00"
    assert v["logicalDeviceName"] == "SAG1030700289953"
    assert v["totalImportedEnergyP"] == (23949193, -3, "kWh")
    assert v["totalExportedEnergyQ"] == (3723325, -3, "kvarh")
    assert v["currentUsage"] == (231, -3, "kW")
    assert v["voltageL2"] == (2320, -1, "V")
    assert v["currentUsageL3"] == (21, -3, "kW")
    assert v["currentLimit"] == [(40, 0, "A"), (-40, 0, "A")]
    assert v["breakerControlState"] == (1, 0, None)
    assert v["relay2ControlState"] == (0, 0, None)
    assert v["powerFailures"] == (16, 0, None)
    assert v["message"] == ""
    # every line of the telegram is accounted for, none silently lost
    assert len(dsmr.parse(meter.LUX_TELEGRAM)) == 1 + len(meter.LUX_BODY)


def test_dutch_values_and_gas():
    v = meter.values(dsmr.parse(meter.NL_TELEGRAM))
    assert v["meterId"] == "K8EG004046395507"
    assert v["totalImportedEnergyT2"] == (2399, -3, "kWh")
    assert v["currentTariff"] == (2, 0, None)
    assert v["powerTs"] == "2017-01-02T19:20:02+01:00"
    assert v["mbus1DeviceType"] == (3, 0, None)
    assert v["mbus1EquipmentId"] == "2222ABCD123456789"
    assert v["mbus1Reading"] == (107, -3, "m3", "2017-01-02T16:10:05+01:00")
    assert v["powerFailureLog"] == []


def test_dsmr22_gas_reading_on_the_next_line():
    v = meter.values(dsmr.parse(meter.DSMR22_TELEGRAM))
    assert v["mbus1Reading"] == (1001, -3, "m3", "2012-10-30T14:00:00")
    assert v["mbus1ValvePosition"] == (1, 0, None)
    assert v["header"] == "KMP5 KA6U001585575011"


def test_power_failure_log_unknown_codes_and_belgian_peaks():
    t = meter.telegram([
        "1-0:99.97.0(2)(0-0:96.7.19)(101208152415W)(0000000240*s)(101208151004S)(0000000301*s)",
        "0-0:96.13.0(48656C6C6F)",
        "1-0:1.6.0(200509134558S)(02.589*kW)",
        "7-0:99.99.9(12*Hz)",
        "1-0:0.0.0(3 ABC)",
        "0-3:24.2.1(200512134558S)(00872.234*m3)",
        "0-0:98.1.0(2)(1-0:1.6.0)(1-0:1.6.0)(200501000000S)(200423192538S)(03.695*kW)"
        "(200401000000S)(200305122139W)(05.980*kW)",
        "0-0:96.1.0(030700089953)",
    ], header="/FLU5\\253769484_A")
    v = meter.values(dsmr.parse(t))
    assert v["powerFailureLog"] == [["2010-12-08T15:24:15+01:00", (240, 0, "s")],
                                    ["2010-12-08T15:10:04+02:00", (301, 0, "s")]]
    assert v["message"] == "Hello"
    assert v["maximumDemandMonth"] == (2589, -3, "kW", "2020-05-09T13:45:58+02:00")
    assert v["7-0:99.99.9"] == (12, 0, "Hz")
    assert v["1-0:0.0.0"] == "3 ABC"
    assert v["mbus3Reading"] == (872234, -3, "m3", "2020-05-12T13:45:58+02:00")
    assert v["maximumDemandHistory"] == [
        ["2020-05-01T00:00:00+02:00", "2020-04-23T19:25:38+02:00", (3695, -3, "kW")],
        ["2020-04-01T00:00:00+02:00", "2020-03-05T12:21:39+01:00", (5980, -3, "kW")]]
    assert v["meterNumber"] == "030700089953"          # a meter number keeps its leading zero


def test_parse_never_raises_on_odd_lines():
    t = b"/ABC5\r\n\r\n1-0:1.8.0(\r\nnoparen\r\n(orphan)\r\n0-0:1.0.0(9913999999W)\r\n1-0:2.8.0(x*y*z)\r\n!\r\n"
    v = meter.values(dsmr.parse(t))
    assert v["header"] == "ABC5"
    assert v["totalImportedEnergyP"] == ""
    assert v["powerTs"] == "9913999999W"            # not a time stamp: kept as written
    assert v["totalExportedEnergyP"] == "x*y*z"      # not a number: kept as written
    with pytest.raises(TelegramError):
        dsmr.parse(b"no telegram")


@pytest.mark.parametrize("text, expected", [
    ("023949.193", (23949193, -3)), ("00016", (16, 0)), ("-040", (-40, 0)), ("099999.999", (99999999, -3)),
    ("0.5", (5, -1)), ("-0.987", (-987, -3)), (".5", (5, -1)), ("12.", None), ("", None), ("-", None),
    ("1e3", None), ("1.2.3", None), ("x", None), ("123456789012.345", (123456789012345, -3)),
])
def test_numbers_are_integers_and_exponents(text, expected):
    assert reading.number(text) == expected


@pytest.mark.parametrize("m, e, text", [
    (23949193, -3, "23949.193"), (99999999, -3, "99999.999"), (2330, -1, "233.0"), (16, 0, "16"),
    (0, -3, "0.000"), (-987, -3, "-0.987"), (5, 2, "500"), (-40, 0, "-40"), (1, -4, "0.0001"),
])
def test_json_numbers_are_the_meters_digits(m, e, text):
    assert reading.exact(m, e) == text
    assert Decimal(text) == Decimal(m).scaleb(e)


# dsmr_parser attribute -> our name, for the cross-check below
REFERENCE_NAMES = {
    "CURRENT_ELECTRICITY_DELIVERY": "currentDelivery",
    "CURRENT_ELECTRICITY_USAGE": "currentUsage",
    "ELECTRICITY_EXPORTED_TOTAL": "totalExportedEnergyP",
    "ELECTRICITY_IMPORTED_TOTAL": "totalImportedEnergyP",
    "ELECTRICITY_USED_TARIFF_1": "totalImportedEnergyT1",
    "ELECTRICITY_USED_TARIFF_2": "totalImportedEnergyT2",
    "ELECTRICITY_DELIVERED_TARIFF_1": "totalExportedEnergyT1",
    "ELECTRICITY_DELIVERED_TARIFF_2": "totalExportedEnergyT2",
    "ELECTRICITY_ACTIVE_TARIFF": "currentTariff",
    "SHORT_POWER_FAILURE_COUNT": "powerFailures",
    "LONG_POWER_FAILURE_COUNT": "longPowerFailures",
    "P1_MESSAGE_HEADER": "p1Version",
    "EQUIPMENT_IDENTIFIER": "meterId",
    "LUXEMBOURG_EQUIPMENT_IDENTIFIER": "logicalDeviceName",
    "MBUS_DEVICE_TYPE": "mbus1DeviceType",
    "DEVICE_TYPE": "mbus1DeviceType",
    "MBUS_EQUIPMENT_IDENTIFIER": "mbus1EquipmentId",
    "EQUIPMENT_IDENTIFIER_GAS": "mbus1EquipmentId",
    "MBUS_METER_READING": "mbus1Reading",
    "GAS_METER_READING": "mbus1Reading",
    "ACTUAL_TRESHOLD_ELECTRICITY": "powerLimit",
    "P1_MESSAGE_TIMESTAMP": "powerTs",
}
for _l in (1, 2, 3):
    REFERENCE_NAMES.update({
        "INSTANTANEOUS_ACTIVE_POWER_L%d_NEGATIVE" % _l: "currentDeliveryL%d" % _l,
        "INSTANTANEOUS_ACTIVE_POWER_L%d_POSITIVE" % _l: "currentUsageL%d" % _l,
        "INSTANTANEOUS_CURRENT_L%d" % _l: "currentL%d" % _l,
        "INSTANTANEOUS_VOLTAGE_L%d" % _l: "voltageL%d" % _l,
        "VOLTAGE_SAG_L%d_COUNT" % _l: "voltageSagsL%d" % _l,
        "VOLTAGE_SWELL_L%d_COUNT" % _l: "voltageSwellsL%d" % _l,
    })


@pytest.mark.parametrize("spec, t", [
    (specs.LUXEMBOURG_SMARTY, meter.LUX_TELEGRAM),
    (specs.V5, meter.NL_TELEGRAM),
    (specs.V2_2, meter.DSMR22_TELEGRAM),
])
def test_values_agree_with_dsmr_parser(spec, t):
    ref = TelegramParser(spec).parse(t.decode())
    ours = meter.values(dsmr.parse(t))
    compared = 0
    for attr, name in REFERENCE_NAMES.items():
        obj = getattr(ref, attr, None)
        if obj is None:
            continue
        value = ours[name]
        theirs = obj.value
        if isinstance(theirs, Decimal):
            # the same digits, exactly: a Decimal against our integer and exponent
            assert (meter.decimal(value), value[2]) == (theirs, obj.unit), attr
            assert reading.exact(value[0], value[1]) == str(theirs), attr     # as JSON writes it
        elif isinstance(theirs, datetime.datetime):
            assert datetime.datetime.fromisoformat(value) == theirs, attr
        elif attr == "P1_MESSAGE_HEADER":
            assert value == theirs
        elif "IDENTIFIER" in attr:
            assert value == bytes.fromhex(theirs).decode(), attr
        else:
            assert value[:2] == (int(theirs), 0), attr
        if hasattr(obj, "datetime") and obj.datetime and spec is not specs.V2_2:
            assert datetime.datetime.fromisoformat(value[3]) == obj.datetime
        compared += 1
    assert compared >= 12


def test_same_results_under_micropython(run_job):
    bad = meter.LUX_TELEGRAM.replace(b"233.0*V", b"234.0*V", 1)
    odd = meter.telegram(["1-0:99.97.0(1)(0-0:96.7.19)(101208152415W)(0000000240*s)", "0-0:96.13.0(48656C6C6F)",
                          "1-0:1.6.0(200509134558S)(02.589*kW)", "x-y(1)(2)(3)"])
    cases = [meter.LUX_TELEGRAM, meter.NL_TELEGRAM, meter.DSMR22_TELEGRAM, bad, odd, b"nope", b"/X\r\n!12\r\n"] + NOT_DSMR23
    result = run_job({"job": "dsmr", "telegrams": [t.hex() for t in cases]})
    assert result[0]["check"] is True and result[2]["check"] is False
    assert result[3]["check"].startswith("CrcError: CRC mismatch")
    assert ["totalImportedEnergyP", [23949193, -3, "kWh"]] in result[0]["values"]
    for r in result:
        if "state" in r:                  # JSON straight from the text: the same, on every interpreter
            assert r["state"] == r["state_from_text"] == r["state_small_writer"]
    assert result[5]["check"] == "TelegramError: does not start with '/'"
    assert all(r["check"].startswith("TelegramError: no CRC, and not the shape") for r in result[-len(NOT_DSMR23):])
