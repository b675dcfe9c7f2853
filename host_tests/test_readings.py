"""The reading model on the dongle twin (32-bit, single-precision floats): every number in the
state JSON is the telegram's own digits, for Luxembourg, Dutch, Belgian and Austrian meters; the
old float path loses digits there, which is what makes this test able to fail. Text with bytes
outside ASCII reads the same on every interpreter. Adding a register is one row."""
import ast
import json
import os
import re
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
