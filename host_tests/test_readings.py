"""The reading model on the dongle twin (32-bit, single-precision floats): every number in the
state JSON is the telegram's own digits, for Luxembourg, Dutch, Belgian and Austrian meters; the
old float path loses digits there, which is what makes this test able to fail. Text with bytes
outside ASCII reads the same on every interpreter. Adding a register is one row."""
import ast
import json
import os
import re
import sys
from decimal import Decimal

import austria as at
import ha
import meter
import pytest
from hypothesis import given, settings, strategies as st
from conftest import FIRMWARE
from p1dongle import dsmr, obis, state

LINE = re.compile(r"^(\d+-\d+:\d+\.\d+\.\d+)((?:\([^)]*\))+)\r?$")
NUMBER = re.compile(r"^([-+]?\d*\.?\d+)(?:\*.*)?$")


def telegram_numbers(telegram):
    """{name: [digits as written]} for every line of a NUM row: what the state JSON must say."""
    out = {}
    for line in telegram.decode().split("\n"):
        m = LINE.match(line.strip())
        if not m:
            continue
        row = obis.row(m.group(1))
        if row[obis.KIND] != obis.NUM:
            continue
        groups = re.findall(r"\(([^)]*)\)", m.group(2))
        digits = [NUMBER.match(g).group(1) for g in groups if NUMBER.match(g)]
        if digits:
            out[row[obis.NAME]] = digits
    return out


def state_numbers(text):
    """{name: [number tokens as written]} of a state JSON text, tokens untouched by any float."""
    doc = json.loads(text, parse_float=lambda s: ("num", s), parse_int=lambda s: ("num", s))
    out = {}
    for name, value in doc.items():
        flat = value if isinstance(value, list) else [value]
        tokens = [v[1] for v in flat if isinstance(v, tuple)]
        if tokens:
            out[name] = tokens
    return out


def austrian_stream():
    return at.mbus(at.glo(at.notification(at.NETZNOE_LIKE), counter=1))


def compact_stream():
    from dlms_cosem import dlms_data as dd
    values = [23949193, 12, 3456, 78, 1500, 0, 250, 5]
    note = at.notification([dd.OctetStringData(at.CLOCK)] + [dd.DoubleLongUnsignedData(v) for v in values])
    return at.hdlc(at.glo(note, counter=2, sc=0x20))


def big_registers():
    # registers whose digits a single-precision float cannot hold
    body = [line.replace("023949.193", "099999.999").replace("003723.325", "123456.789") for line in meter.LUX_BODY]
    return meter.telegram(body)


STREAMS = {
    "Luxembourg": lambda: meter.frame(meter.LUX_TELEGRAM),
    "Luxembourg, big registers": lambda: meter.frame(big_registers(), counter=2),
    "Netherlands": lambda: meter.NL_TELEGRAM,
    "Belgium (e-MUCS, peaks)": lambda: meter.BE_TELEGRAM,
    "Austria (OBIS, M-Bus)": austrian_stream,
    "Austria (compact, HDLC)": compact_stream,
}


@pytest.mark.parametrize("name", sorted(STREAMS))
def test_state_json_numbers_are_the_telegrams_digits_on_the_twin(name, run_job):
    result = run_job({"job": "pipeline", "key": meter.KEY.hex(), "stream": STREAMS[name]().hex(),
                      "chunks": [64], "state": True})
    events = [e for e in result["events"] if e[0] == "telegram"]
    assert len(events) == 1, result["events"]
    telegram, text = bytes.fromhex(events[0][2]), events[0][4]
    expected = telegram_numbers(telegram)
    got = state_numbers(text)
    assert len(expected) >= 6
    for reading_name, digits in expected.items():
        # the meter's digits, leading zeros dropped as JSON must: 023949.193 -> 23949.193
        assert got[reading_name] == [str(Decimal(d)) for d in digits], reading_name


def test_the_old_float_path_loses_digits_on_the_twin(micropython, tmp_path):
    """What the old model published (float(text) through json) is wrong on the dongle: the check
    above would have caught it."""
    from conftest import HERE, run_script
    numbers = ["023949.193", "099999.999", "123456.789", "00.231"]
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"job": "floats", "numbers": numbers}))
    old = run_script(micropython, os.path.join(HERE, "mp_job.py"), str(job))
    wrong = [n for n, o in zip(numbers, old) if Decimal(o) != Decimal(n)]
    assert "023949.193" in wrong and "099999.999" in wrong and "123456.789" in wrong, old


def test_austrian_readings_go_to_mqtt_as_made_not_parsed_back():
    """The state JSON of a DLMS meter is written from the readings the decoder made (more digits
    than the rendered telegram holds stay), not from the telegram text parsed again."""
    from dlms_cosem import dlms_data as dd
    from p1dongle.pipeline import TELEGRAM, Pipeline
    note = at.notification(at.reading("1-0:1.8.0", dd.DoubleLongUnsignedData(123456789), -1, at.WH)
                           + at.reading("1-0:32.7.0", dd.UnsignedLongData(23012), -2, at.V))
    pipe = Pipeline(meter.KEY)
    seen = []
    pipe.emit = lambda kind, pos, what, crc: seen.append((what, pipe.readings)) if kind == TELEGRAM else None
    pipe.push(at.mbus(at.glo(note)), 0)
    (telegram, readings), = seen
    assert b"1-0:1.8.0(012345.679*kWh)" in telegram       # the telegram rounds to DSMR's 3 decimals
    doc = json.loads(state.state_json(readings), parse_float=str)
    assert doc["totalImportedEnergyP"] == "12345.6789"     # the meter's own digits
    assert doc["voltageL1"] == "230.12"


def latin1_telegram():
    """Bytes >= 0x80 in text fields (a header, a message code), invalid UTF-8 among them, CRC right."""
    body = ("/ABC5 m\xe9ter \xff\r\n\r\n0-0:96.13.1(caf\xe9)\r\n0-0:96.13.0(4869E9)\r\n"
            "1-0:1.8.0(000001.000*kWh)\r\n!").encode("latin-1")
    return body + ("%04X\r\n" % meter.crc16_arc(body)).encode()


def test_bytes_outside_ascii_read_the_same_on_every_interpreter(run_job):
    t = latin1_telegram()
    result = run_job({"job": "dsmr", "telegrams": [t.hex()]})[0]
    assert result["check"] is True
    values = dict(result["values"])
    assert values["header"] == "ABC5 m\\xe9ter \\xff"
    assert values["messageCode"] == "caf\\xe9"
    assert values["message"] == "4869E9"                    # hex that is not printable: as written
    assert values["totalImportedEnergyP"] == [1000, -3, "kWh"]
    assert json.loads(result["state"])["messageCode"] == "caf\\xe9"


# Codes with a control character in them (noise a plain CRC lets through, or a meter's own odd
# line): a tab, a CR in the middle of a line, a unit with a tab.
CONTROL_LINES = ["1-0:1.8\t.0(000001.000*kWh)", "1-0:1\r.8.0(5)", "a\tb(text)", "9-9\t:1.2.3(7*k\tW)"]


def test_a_control_character_in_a_code_is_escaped_in_its_json_key(run_job):
    """The state is JSON whatever the codes hold: a key is escaped exactly as a value is, by the
    machine-code writers and the portable ones alike, on every interpreter."""
    t = meter.telegram(meter.LUX_BODY[:3] + CONTROL_LINES)
    result = run_job({"job": "dsmr", "telegrams": [t.hex()]})[0]
    assert result["check"] is True
    for made in ("state", "state_from_text", "state_small_writer"):
        doc = json.loads(result[made], parse_float=Decimal)
        assert doc["1-0:1.8\t.0"] == Decimal("1.000") and doc["units"]["1-0:1.8\t.0"] == "kWh", made
        assert doc["1-0:1\r.8.0"] == 5 and doc["a\tb"] == "text", made
        assert doc["9-9\t:1.2.3"] == 7 and doc["units"]["9-9\t:1.2.3"] == "k\tW", made
        assert doc["logicalDeviceName"] == "SAG1030700289953", made
    assert "\t" not in result["state"] and '"1-0:1.8\\u0009.0":1.000' in result["state"]   # as put_string writes it


LINES = st.one_of(
    st.builds(lambda c, v, u: "%s(%s*%s)" % (c, v, u),
              st.sampled_from(["1-0:1.8.0", "1-0:2.7.0", "1-0:32.7.0", "0-1:24.2.1", "9-9:9.9.9", "1-0:31.7.0"]),
              st.decimals(-99999, 999999, places=3).map(lambda d: "%010.3f" % d),
              st.sampled_from(["kWh", "kW", "V", "A", "m3", "Wh", "x\"y", ""])),
    st.builds(lambda c, v: "%s(%s)" % (c, v), st.sampled_from(["0-0:96.7.21", "0-0:96.14.0", "1-3:0.2.8", "0-0:96.1.0"]),
              st.integers(0, 10 ** 12).map(str)),
    st.sampled_from(["0-0:1.0.0(220614094609S)", "0-0:96.13.0(48656C6C6F)", "0-0:96.13.0()", "1-1:31.4.0(040*A)(-040*A)",
                     "1-0:1.6.0(200509134558S)(02.589*kW)", "0-1:24.2.1(170102161005W)(00000.107*m3)",
                     "1-0:99.97.0(1)(0-0:96.7.19)(101208152415W)(0000000240*s)", "odd line", "1-0:1.8.0(",
                     "0-0:96.1.1(4B384547303034303436333935353037)", "1-0:1.8.0(1234567890.123*kWh)"]))


@settings(max_examples=150, deadline=None)
@given(st.lists(LINES, max_size=40))
def test_the_state_written_from_the_text_is_the_readings_state(lines):
    """What MQTT sends for every telegram (JSON straight from the text) is byte for byte the state
    JSON of the telegram's readings, also when the writer's buffers must grow."""
    t = meter.telegram(lines)
    expected = state.state_json(dsmr.parse(t))
    assert state.telegram_json(t) == expected
    assert state.telegram_json(t, state.Writer(64)) == expected
    json.loads(expected)


TEXT_LINES = ["0-0:96.13.0()", "0-0:96.13.0(48656C6C6F)", "0-0:96.13.0(48656C6C7F)", "1-3:0.2.8(42)", "1-3:0.2.8(50)",
              "1-1:31.4.0(040*A)(-040*A)", "1-1:31.4.0(040*A)(-041*A)", "0-0:1.0.0(220614094609S)",
              "0-0:1.0.0(220614094610S)", "1-0:99.97.0(1)(0-0:96.7.19)(101208152415W)(0000000240*s)",
              "1-0:99.97.0(1)(0-0:96.7.19)(101208152415W)(0000000241*s)", "0-0:96.1.1(4B38)", "0-0:96.1.1(4B39)",
              "odd line", "9-9:9.9(odd)", "1-0:1.8.0(000001.000*kWh)"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from(TEXT_LINES), max_size=8), min_size=2, max_size=6),
       st.sampled_from(["/ISK5\\2M550T-1012", "/KFM5KAIFA-METER"]))
def test_a_line_kept_from_the_telegram_before_is_read_again_once_it_changes(telegrams, header):
    """The writer keeps the text lines it read (the header, ids, messages: most never change) and
    takes them again only when a line is byte for byte the same: in a stream whose lines change
    from telegram to telegram, every state is still the state of that telegram's readings."""
    w = state.Writer()
    for k, lines in enumerate(telegrams):
        t = meter.telegram(lines, header=header if k % 2 else "/Lux5\\253663629_D")
        assert state.telegram_json(t, w) == state.state_json(dsmr.parse(t)), lines
    assert len(w.memo) <= dsmr.MEMO_KEPT


def test_rows_of_the_table_are_known_and_rows_made_for_other_codes_are_not():
    """obis.known tells the table's rows (and M-Bus channels' rows made from them) from the rows
    made for codes it does not have: what bounds what MQTT keeps of the latter (mqttout)."""
    assert all(obis.known(r) for r in obis.ROWS)
    assert obis.known(obis.row("0-1:24.2.1")) and obis.known(obis.row("0-4:96.1.0"))
    assert not obis.known(obis.row("1-0:200.1.2")) and not obis.known(obis.row("9-9:1.2.3"))
    assert not obis.known(obis.row('odd "code"'))


def test_a_new_register_is_one_row(monkeypatch):
    """A row added to the table is parsed, published, rendered and announced with no other change."""
    row = ("1-0:15.8.0", "totalEnergyAbsolute", "Energy absolute", obis.NUM, "kWh", 6, 3, "energy", 30)
    monkeypatch.setitem(obis.BY_KEY, obis.key(row[0]), row)
    t = meter.telegram(["1-0:15.8.0(001234.567*kWh)"])
    readings = dsmr.parse(t)
    assert json.loads(state.state_json(readings), parse_float=str)["totalEnergyAbsolute"] == "1234.567"
    from p1dongle import render
    configs = dict(ha.announced(t))
    assert json.loads(configs["homeassistant/sensor/p1dongle/totalEnergyAbsolute/config"])["name"] == "Energy absolute"
    assert b"1-0:15.8.0(001234.567*kWh)" in render.telegram(readings)


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


@pytest.mark.parametrize("src", sorted(
    os.path.relpath(os.path.join(d, f), FIRMWARE)
    for d, _, files in os.walk(FIRMWARE) for f in files if f.endswith(".py")))
def test_no_float_and_no_decode_with_an_error_handler_in_the_firmware(src):
    """float() rounds readings on the dongle; decode(..., errors) raises there. Neither may come back."""
    with open(os.path.join(FIRMWARE, src)) as f:
        tree = ast.parse(f.read(), src)
    for call in _calls(tree):
        where = "%s:%d" % (src, call.lineno)
        assert not (isinstance(call.func, ast.Name) and call.func.id == "float"), where + ": float()"
        if isinstance(call.func, ast.Attribute) and call.func.attr == "decode":
            # str.decode(encoding, errors): an error handler as a keyword or a second string
            handler = [k for k in call.keywords if k.arg == "errors"] or [
                a for a in call.args[1:] if isinstance(a, ast.Constant) and isinstance(a.value, str)]
            assert not handler, where + ": decode with an error handler"


# -- scalers and exponents a push may carry (issue 22) ----------------------------------------------

def scaled_push(scaler, value=1234):
    """A capture-objects push: 1-0:1.8.0 (value, in Wh) with its own scaler-unit {scaler (an
    encoded item), enum Wh}, and a voltage with a right one (230.1 V)."""
    return at.capture_objects([
        (3, "1-0:1.8.0", 2, at.double_long_unsigned(value)),
        (3, "1-0:1.8.0", 3, at.structure([scaler, b"\x16" + bytes([at.WH])])),
        (3, "1-0:32.7.0", 2, b"\x12" + (2301).to_bytes(2, "big")),
        (3, "1-0:32.7.0", 3, at.structure([b"\x0f\xff", b"\x16" + bytes([at.V])]))])


def _events(result):
    telegrams = [(bytes.fromhex(e[2]), e[4]) for e in result["events"] if e[0] == "telegram"]
    problems = [e[2] for e in result["events"] if e[0] == "problem"]
    return telegrams, problems


def test_a_32_bit_scaler_is_no_scaler_and_costs_no_time(tmp_path, run_job):
    """A-XDR double-long in a scaler-unit, where DLMS has an integer (int8): the push is refused in
    one line, at once, and the next push comes out. (Before, 2**31 - 4 became the reading's
    exponent and render computed 10 ** (2**31 - 4): minutes and gigabytes on CPython, never an
    answer; here CPython must finish in 60 s.)"""
    from conftest import HERE, run_script
    stream = b"".join(at.hdlc(scaled_push(s)) for s in (b"\x05\x7f\xff\xff\xfc", b"\x05\x00\x00\x00\x00",
                                                       b"\x0f\x00"))
    job = {"job": "pipeline", "stream": stream.hex(), "chunks": [64], "state": True}
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    telegrams, problems = _events(run_script(sys.executable, os.path.join(HERE, "mp_job.py"), str(path), timeout=60))
    assert problems == ["capture objects: the scaler-unit of 1-0:1.8.0 is structure of 2 items, first 05 %d, "
                        "not {integer, enum}" % s for s in (2**31 - 4, 0)]
    (telegram, doc), = telegrams
    assert dsmr.check(telegram) is True and b"1-0:1.8.0(000001.234*kWh)" in telegram
    assert _events(run_job(job)) == (telegrams, problems)


@pytest.mark.parametrize("scaler, why", [
    (10, "more than 9 integer digits (DSMR writes 6), no meter's reading"),
    (40, "a power of ten no meter uses"), (100, "a power of ten no meter uses"),
    (127, "a power of ten no meter uses"), (-128, "a power of ten no meter uses")])
def test_a_scaler_no_meter_uses_leaves_its_reading_out(run_job, scaler, why):
    """An int8 scaler that makes the reading absurd (10**40 Wh, or more integer digits than DSMR
    gives the row and a current-transformer meter's three more), or a power of ten below any
    meter's: that reading is left out with one line; the push's other readings come out, in a
    telegram with a valid CRC, and MQTT's state is valid JSON without it. (Before, 1234 * 10**40
    Wh went out as 1-0:1.8.0(12340000000000000000000000000000000000000.000*kWh).) Each reading
    has its own scaler, so one that is wrong says nothing against the others; and a real
    register wider than DSMR's (the E570's 258.874 kW) is still a right number."""
    result = run_job({"job": "pipeline", "stream": at.hdlc(scaled_push(b"\x0f" + bytes([scaler & 0xFF]))).hex(),
                      "chunks": [64], "state": True})
    (telegram, state_text), = _events(result)[0]
    problems = _events(result)[1]
    assert dsmr.check(telegram) is True
    assert b"1-0:1.8.0" not in telegram and b"1-0:32.7.0(230.1*V)" in telegram
    doc = json.loads(state_text, parse_float=Decimal)
    assert "totalImportedEnergyP" not in doc and doc["voltageL1"] == Decimal("230.1")
    assert problems == ["1-0:1.8.0 not published: %s (scaler %d)" % (why, scaler)]


@pytest.mark.parametrize("scaler, value, line", [(3, 5, "1-0:1.8.0(000005.000*kWh)"),
                                                 (9, 999, "1-0:1.8.0(999000000.000*kWh)"),
                                                 (-12, 10 ** 9, "1-0:1.8.0(000000.000*kWh)")])
def test_a_big_register_of_a_right_scaler_comes_out(scaler, value, line):
    """What a meter may say is not refused: a register of 9 integer digits (a current-transformer
    meter's), a small one of a big scaler."""
    from p1dongle.pipeline import TELEGRAM, Pipeline
    out = []
    Pipeline(emit=lambda kind, pos, what, crc: out.append(what) if kind == TELEGRAM else None).push(
        at.hdlc(scaled_push(b"\x0f" + bytes([scaler & 0xFF]), value)), 0)
    (telegram,) = out
    assert line.encode() in telegram.split(b"\r\n")


def test_the_writers_never_raise_ten_to_a_power_without_bound():
    """reading.fixed and exact, whatever exponent they are given: a huge negative one rounds to 0
    without computing 10**n, a huge positive one is a FrameError, at once (checked in a process of
    its own that must finish in 30 s: before, each of these ran for minutes)."""
    import subprocess
    code = """if 1:
        from p1dongle import reading
        from p1dongle.errors import FrameError
        assert reading.fixed(5, -2**31, 3, 6) == "000000.000"
        assert reading.fixed(-5, -2**31, 3) == "0.000"
        assert reading.fixed(5, -4, 3) == "0.001" and reading.fixed(4, -4, 3) == "0.000"
        for args in ((1, 2**31 - 4, 3), (1, 2**31, 0)):
            try:
                reading.fixed(*args)
                raise AssertionError(args)
            except FrameError:
                pass
        try:
            reading.exact(1, 2**31)
            raise AssertionError("exact")
        except FrameError:
            pass
        print("ok")
    """
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, PYTHONPATH=FIRMWARE))
    assert proc.stdout.strip() == "ok", proc.stderr


def test_a_zero_with_a_positive_exponent_is_a_json_zero(run_job):
    """A DLMS reading 0 with a scaler-unit {1, V} (or {3, A}, {6, Wh}) is 0 in the state JSON
    (before: 00, 0000, not JSON: Home Assistant refused every reading of that telegram), on every
    interpreter, viper writers included; its telegram's digits are DSMR's."""
    from dlms_cosem import dlms_data as dd
    note = at.notification(at.reading("1-0:32.7.0", dd.UnsignedLongData(0), 1, at.V)
                           + at.reading("1-0:52.7.0", dd.UnsignedLongData(23), 1, at.V)
                           + at.reading("1-0:31.7.0", dd.UnsignedLongData(0), 3, at.A)
                           + at.reading("1-0:1.8.0", dd.DoubleLongUnsignedData(0), 6, at.WH)
                           + at.reading("1-0:2.8.0", dd.DoubleLongUnsignedData(0), 4, at.WH)
                           + at.reading("1-0:2.7.0", dd.DoubleLongUnsignedData(7), 5, at.W))
    result = run_job({"job": "pipeline", "key": meter.KEY.hex(), "stream": at.mbus(at.glo(note)).hex(),
                      "chunks": [64], "state": True})
    (telegram, text), = _events(result)[0]
    doc = json.loads(text, parse_float=Decimal, parse_int=Decimal)
    assert {k: doc[k] for k in ("voltageL1", "voltageL2", "currentL1", "totalImportedEnergyP",
                                "totalExportedEnergyP", "currentDelivery")} == {
        "voltageL1": 0, "voltageL2": 230, "currentL1": 0, "totalImportedEnergyP": 0,
        "totalExportedEnergyP": 0, "currentDelivery": 700}
    assert state_numbers(text)["voltageL1"] == ["0"] and state_numbers(text)["totalImportedEnergyP"] == ["0"]
    lines = telegram.split(b"\r\n")
    for line in (b"1-0:32.7.0(000.0*V)", b"1-0:52.7.0(230.0*V)", b"1-0:31.7.0(000.00*A)",
                 b"1-0:1.8.0(000000.000*kWh)", b"1-0:2.8.0(000000.000*kWh)", b"1-0:2.7.0(700.000*kW)"):
        assert line in lines, telegram
    assert dsmr.check(telegram) is True


def test_a_dlms_clock_is_read_in_one_place_and_says_the_same_both_ways():
    """dlmstime: the ISO time of the readings and DSMR's stamp in the rendered telegram agree on
    what is a usable time and on the season (a clock status 0xFF, not specified, is winter in
    both, as CET is what DSMR assumes)."""
    from p1dongle import dlmstime
    summer = bytes.fromhex("07EA0701030E0000FF8000" "80")      # 2026-07-01 14:00:00, DST bit set
    unspecified = bytes.fromhex("07EA0701030E0000FF8000" "FF")
    assert (dlmstime.iso_time(summer), dlmstime.dsmr_time(summer)) == ("2026-07-01T14:00:00+02:00", "260701140000S")
    assert (dlmstime.iso_time(unspecified), dlmstime.dsmr_time(unspecified)) == ("2026-07-01T14:00:00+01:00",
                                                                                "260701140000W")
    for bad in ("07EA0001030E0000FF800080", "07EA0700030E0000FF800080", "FFFF0701030E0000FF800080", "07EA07"):
        assert dlmstime.iso_time(bytes.fromhex(bad)) is None and dlmstime.dsmr_time(bytes.fromhex(bad)) is None
