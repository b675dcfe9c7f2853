"""Real captures of meters pushing DLMS (host_tests/vectors/dlms/, provenance in the README there):
every one decodes to the values its source states, as a DSMR telegram with a valid CRC that
dsmr_parser reads; a one-bit flip anywhere gives no telegram that was not in the capture; the
corrupt ones give none at all; pushes of a layout that is not known give one clear line."""
import json
import os
import random
from decimal import Decimal

import austria as at
import meter
import pytest
from dsmr_parser import telegram_specifications
from dsmr_parser.parsers import TelegramParser
from p1dongle import axdr, dsmr, memory, meters
from p1dongle.layouts import LayoutError, Layouts
from p1dongle.pipeline import PROBLEM, TELEGRAM, Pipeline

HERE = os.path.join(os.path.dirname(__file__), "vectors", "dlms")
with open(os.path.join(HERE, "manifest.json")) as f:
    MANIFEST = json.load(f)
WIRE = [e for e in MANIFEST if not e.get("negative") and e["framing"] != "bare"]
NEGATIVE = [e for e in MANIFEST if e.get("negative")]
BARE = [e for e in MANIFEST if not e.get("negative") and e["framing"] == "bare"]

# Values the dongle does not publish for a capture, and (part of) the line that says so: never a guess.
WITHHELD = {
    # the push carries no scaler, and no document gives one for this list
    "landisgyr-e450-enc-gbt.hex": "1-0:1.8.0: the push gives no scaler or unit for it",
    # a Kamstrup of a country its source does not name: energy in Wh or 10 Wh, nobody can say
    "kamstrup-omnipower-enc-push1.hex": "Kamstrup energy registers not published: their unit depends on the country",
    # CEZ documents its XT211 list's codes but not their units (EG.D's list, which does, names
    # its push setup): the powers and energies are withheld, the ids and states come out
    "sagemcom-xt211-cz-cez-bare.hex": "XT211 powers and energies not published",
    # Netz Burgenland's specification gives the order of its E450's values, not their units
    "landisgyr-e450-at-burgenland-enc.hex": "Netz Burgenland E450: voltages, currents, powers and energies not published",
    # the 15-minute push captures the M-Bus registers' values (attribute 2), not their scaler-units
    # (attribute 3), and no document gives those: the sub-meters' ids come out, their counts do not
    "landisgyr-e450-ch-mbus-subregister.hex": "0-1:24.2.1: the push gives no scaler or unit for it",
}
# Layouts no document describes: the push gives no telegram, and one line says what it was.
UNKNOWN = {
    "iskra-am550-si-gh615.hex": "structure of 18 items",
    "iskra-am550-si-gh956.hex": "structure of 18 items",
}


# Pushes that describe what a meter pushes instead of pushing it: one line, no telegram.
DESCRIPTIONS = {
    "energomera-push-object-list-bare.hex": "a push-object list (per object: class id, OBIS code, attribute, data index, "
                                            "restriction, columns)",
}


def profile(e):
    """The meter profile a user of that meter sets (meters.py)."""
    family, country = e["family"], e["country"]
    if family == "landisgyr" and e["layout"] == "capture-objects":
        for model in ("E450", "E570", "E360"):
            if model in e["meter"]:
                return "landisgyr-" + model.lower()
    if family == "kamstrup":
        return {"NO": "kamstrup-no", "SE": "kamstrup-se", "DK": "kamstrup-dk"}.get(country, "kamstrup")
    if family == "kaifa" and e["layout"] == "kaifa":
        return "kaifa"
    if family == "aidon":
        return "aidon-se" if country == "SE" else "aidon"
    return "auto"


def stream(e):
    with open(os.path.join(HERE, e["file"])) as f:
        return bytes.fromhex("".join(f.read().split()))


def pipeline(e, emit):
    key = bytes.fromhex(e["key"]) if e.get("key") else None
    auth = bytes.fromhex(e["auth_key"]) if e.get("auth_key") else meter.LUX_AUTH_KEY
    if key and e.get("security") == "0x30" and not e.get("auth_key"):
        auth = None                     # the utility gives out no authentication key
    return Pipeline(key, auth, replay_check=False, emit=emit, layout=meters.profile(profile(e))[4])


def run(e, data, sizes=(64,)):
    events = []
    pipe = pipeline(e, lambda kind, pos, what, crc: events.append((kind, bytes(what) if kind == TELEGRAM else what)))
    for part in meter.split(data, sizes):
        pipe.push(part, 0)
    pipe.flush(0)
    return [w for kind, w in events if kind == TELEGRAM], [w for kind, w in events if kind == PROBLEM]


def close(ours, stated):
    """ours (a Decimal) says what the source states: to the digits it gives (and within float32
    rounding, for sources whose decoder works in single precision)."""
    step = Decimal(1).scaleb(stated.as_tuple().exponent)
    return abs(ours - stated) <= max(step, abs(stated) * Decimal("2e-7"))


def same_text(code, ours, stated):
    if code == "0-0:1.0.0":                 # sources state the meter's local time without its offset
        return ours[:19].replace("T", " ") == stated[:19].replace("T", " ")
    return ours == stated


def dsmr_values(telegram):
    """{code: (Decimal or text)} as dsmr_parser reads the rendered telegram (DSMR 5)."""
    parser = TelegramParser(telegram_specifications.V5)
    parser.validate_checksum(telegram.decode())
    out = {}
    for row, value in dsmr.parse(telegram):
        code = row[0]
        if isinstance(value, tuple):
            out[code] = meter.decimal(value)
        else:
            out[code] = value
    parser.parse(telegram.decode())           # and dsmr_parser takes every line of it
    return out


def _code(e, code):
    # the stated code as the dongle writes it: electricity of the meter's own channel is B = 0;
    # what a source calls a Kamstrup's meter id is its GS1 number
    if e["family"] == "kamstrup" and code == "0-0:96.1.0":
        return "1-0:0.0.5"
    return "1-0:" + code[4:] if code.startswith("1-1:") else code


@pytest.mark.parametrize("e", WIRE, ids=[e["file"] for e in WIRE])
def test_a_real_capture_decodes_to_what_its_source_states(e):
    telegrams, problems = run(e, stream(e))
    if e["file"] in UNKNOWN:
        assert telegrams == []
        assert any(p.startswith("unknown value layout: " + UNKNOWN[e["file"]]) for p in problems), problems
        if e["country"] == "SI":        # the line says what it is and what would let it be read
            assert any("as Slovenian utilities configure them" in p for p in problems), problems
        return
    assert telegrams, problems
    if e["file"] in WITHHELD:
        assert any(WITHHELD[e["file"]] in p for p in problems), problems
    values = {}
    for t in telegrams:
        assert t.startswith(b"/") and dsmr.check(t) is True
        values.update(dsmr_values(t))
    for code, (text, unit) in (e.get("stated") or {}).items():
        code = _code(e, code)
        if e["file"] in WITHHELD and unit:
            assert code not in values, (code, WITHHELD[e["file"]])
            continue
        assert code in values, (code, sorted(values))
        if unit is None:
            assert same_text(code, values[code], text), (code, values[code], text)
        else:
            assert close(values[code], Decimal(text)), (code, values[code], text, unit)
    for code, raw in ({} if e["file"] in WITHHELD else e.get("stated_raw") or {}).items():
        # a source that gives the raw number: the layout put it where the document says, in the
        # unit the document gives (Wh, varh, W): that is the number before the shift to kWh or kW
        ours = values[_code(e, code)]
        if isinstance(ours, str):
            assert same_text(code, ours, raw), (code, ours, raw)
        else:
            assert ours.scaleb(3) == Decimal(raw), (code, ours, raw)


@pytest.mark.parametrize("e", BARE, ids=[e["file"] for e in BARE])
def test_a_decrypted_push_a_reader_printed_decodes_to_what_it_states(e):
    """Plaintexts dumped by a reader (no link frame around them): the value layout alone."""
    data = stream(e)
    start = data.index(b"\x0f")
    if e["file"] in DESCRIPTIONS:
        # attribute indices beside OBIS codes are no meter number: no readings at all, one line
        with pytest.raises(LayoutError) as refused:
            Layouts(meters.profile(profile(e))[4]).readings(axdr.decode(data[start:]))
        assert str(refused.value).startswith(DESCRIPTIONS[e["file"]]), refused.value
        assert str(refused.value).endswith("not its values: no telegram")
        return
    reader = Layouts(meters.profile(profile(e))[4])
    readings, _ = reader.readings(axdr.decode(data[start:]))
    ours = {row[0]: (meter.decimal(v) if isinstance(v, tuple) else v) for row, v in readings}
    assert e["stated"]
    if e["file"] in WITHHELD:
        assert WITHHELD[e["file"]] in reader.notice, reader.notice
        assert not set(e.get("stated_raw") or ()) & set(ours), sorted(ours)
    for code, (text, unit) in e["stated"].items():
        code = _code(e, code)
        assert code in ours, (code, sorted(ours))
        assert same_text(code, ours[code], text) if unit is None else close(ours[code], Decimal(text)), (code, ours[code], text)


@pytest.mark.parametrize("e", NEGATIVE, ids=[e["file"] for e in NEGATIVE])
def test_a_corrupt_capture_gives_no_telegram(e):
    telegrams, problems = run(e, stream(e))
    assert telegrams == [] and problems


@pytest.mark.parametrize("e", [e for e in WIRE if e["file"] not in UNKNOWN], ids=lambda e: e["file"])
def test_a_flipped_bit_never_gives_a_telegram_the_meter_did_not_send(e):
    """Any one bit flipped in the stream: what comes out is at most the capture's own telegrams,
    byte for byte; the frame that held the bit is lost (and said so), never read with it. (Byte
    for byte but the meter's name, which a short list carries from the list before it: with that
    list lost, the name may not have come yet.)"""
    data = stream(e)
    good, _ = run(e, data)
    good = good + [_unnamed(t) for t in good]
    rnd = random.Random(e["file"])
    for _ in range(24):
        i = rnd.randrange(len(data))
        bad = bytearray(data)
        bad[i] ^= 1 << rnd.randrange(8)
        telegrams, problems = run(e, bytes(bad))
        for t in telegrams:
            assert t in good, (i, t)
        assert len(telegrams) < len(good) or bytes(bad) == data or problems, i


def _unnamed(t):
    """The telegram as it is rendered before the meter has named itself: without its identifier
    (0-0:42.0.0, and the same under 0-0:96.1.1)."""
    lines = t.split(b"\r\n")[:-2]
    named = [line[10:] for line in lines if line.startswith(b"0-0:42.0.0(")]
    lines = [line for line in lines if not line.startswith(b"0-0:42.0.0(")
             and not (line.startswith(b"0-0:96.1.1(") and line[10:] in named)]
    body = b"\r\n".join(lines) + b"\r\n!"
    return body + b"%04X\r\n" % meter.crc16_arc(body)


def test_every_family_and_framing_has_a_capture():
    families = {e["family"] for e in WIRE}
    assert {"kamstrup", "aidon", "kaifa", "landisgyr", "iskra", "siemens", "sagemcom"} <= families
    framings = {e["framing"] for e in WIRE}
    assert {"hdlc", "hdlc-segmented", "hdlc-blocks", "mbus-segmented"} <= framings
    layouts = {e["layout"] for e in WIRE + BARE}
    assert {"kamstrup", "aidon", "kaifa", "capture-objects", "structure12", "structure10", "obis-scaler"} <= layouts


def _by_file(name):
    return next(e for e in MANIFEST if e["file"] == name)


def test_without_its_profile_a_meter_gets_only_what_its_push_says():
    """An E450 on `meter: auto`: its currents (0.01 A, or A on an E570) are left out, once said;
    a Kamstrup on `meter: kamstrup`: its energy registers (Wh or 10 Wh by country) likewise."""
    e450 = _by_file("landisgyr-e450-ch-vse2026.hex")
    events = []
    pipe = Pipeline(emit=lambda kind, pos, what, crc: events.append((kind, what)), layout="auto")
    data = stream(e450)
    pipe.push(data + data, 0)
    telegrams = [w for kind, w in events if kind == TELEGRAM]
    lines = [w for kind, w in events if kind == PROBLEM]
    assert len(telegrams) == 2 and b"1-0:31.7.0" not in telegrams[0] and b"1-0:32.7.0(236.0*V)" in telegrams[0]
    assert lines == ["currents not published: a Landis+Gyr E450 sends them in 0.01 A, an E570 in A "
                     "(set meter: landisgyr-e450 or landisgyr-e570)"]        # once, not per push
    kamstrup = _by_file("kamstrup-no-hourly-em001.hex")
    events.clear()
    pipe = Pipeline(emit=lambda kind, pos, what, crc: events.append((kind, what)), layout="kamstrup")
    pipe.push(stream(kamstrup), 0)
    (telegram,) = [w for kind, w in events if kind == TELEGRAM]
    assert b"1-0:1.8.0" not in telegram and b"1-0:31.7.0(001.89*A)" in telegram
    assert any("Kamstrup energy registers not published" in w for kind, w in events if kind == PROBLEM)


def test_a_single_phase_kamstrup_list_skips_its_null_pairs():
    """A single-phase Kamstrup keeps the three-phase list's 25 items, with a null-data code and a
    null-data value where IL2, IL3, UL2, UL3 would be (issue 24: before, 'item 15 is not an OBIS
    code' and no telegram): L1's current, and its voltage after the first two null pairs, come out
    in their place (their values: the capture's stated ones), and no row for L2 or L3."""
    e = _by_file("kamstrup-no-1phase-obinsect.hex")
    (telegram,) = run(e, stream(e))[0]
    rows = sorted(code for code in dsmr_values(telegram) if code.startswith("1-0:") and code.endswith(".7.0"))
    assert rows == ["1-0:1.7.0", "1-0:2.7.0", "1-0:3.7.0", "1-0:31.7.0", "1-0:32.7.0", "1-0:4.7.0"], rows


@pytest.mark.parametrize("flip", [20, 40, 60, 90])
def test_a_tagless_frame_cut_out_of_a_broken_link_frame_is_never_read(flip):
    """Wiener Netze (security 0x20, no tag, one HDLC frame): a bit flipped inside the ciphertext
    breaks the FCS; the DB frame inside is found again by the rescan, but with no tag and no link
    checksum nothing proves it intact: no telegram (before, one with an altered value and a fresh
    valid CRC came out), one line."""
    with open(os.path.join(os.path.dirname(HERE), "wienernetze-am550.hex")) as f:
        data = bytearray(bytes.fromhex(f.read().strip()))
    data[flip] ^= 0x10
    events = []
    pipe = Pipeline(bytes.fromhex("62DC84B413AF3E16AA271CE9ED04AC74"),
                    emit=lambda kind, pos, what, crc: events.append((kind, what)))
    pipe.push(bytes(data), 0)
    pipe.flush(0)
    assert [w for kind, w in events if kind == TELEGRAM] == []
    assert any("a frame without a tag outside an M-Bus or HDLC frame" in w for kind, w in events if kind == PROBLEM)


def test_a_push_must_parse_to_its_last_byte():
    e = _by_file("kaifa-no-list2-gh180.hex")
    data = stream(e)
    start = data.index(b"\x0f")
    apdu = data[start:-3]                            # the data-notification, without FCS and flag
    axdr.decode(apdu)
    with pytest.raises(Exception, match="1 bytes after its data"):
        axdr.decode(apdu + b"\x00")
    with pytest.raises(Exception, match="cut short"):
        axdr.decode(apdu[:-1])


def test_untagged_descriptors_are_read_only_where_plain_a_xdr_fails_and_only_to_the_last_byte():
    """The XT211's objects {class id, OBIS code, attribute without tags, value}: read as such only
    when the push does not parse as plain A-XDR, and then exactly to its last byte; a push cut
    short or with a byte more is refused with the plain reading's complaint. A plain push that
    starts a structure of 2 with null-data stays plain."""
    e = _by_file("sagemcom-xt211-cz-cez-bare.hex")
    apdu = stream(e)
    body = axdr.decode(apdu).body
    first = body[1][1][1][0][1]
    assert first[0][:1] == (axdr.UNTAGGED,) and first[0][1:] == (1, bytes.fromhex("0000600101FF"), 2)
    for bad in (apdu[:-1], apdu + b"\x00"):
        with pytest.raises(Exception) as refused:
            axdr.decode(bad)
        assert "A-XDR type 0x60 not supported" in str(refused.value), refused.value
    plain = bytes.fromhex("0F0000000100" "0202" "00" "0600000005")   # {null-data, 5}
    assert axdr.decode(plain).body == (axdr.STRUCT, [(axdr.NULL,), (axdr.INT, 5, 0x06)])


@pytest.mark.parametrize("chunk", [1, 7, 64, 4096])
def test_a_push_without_a_link_frame_is_named_never_read_and_the_next_frame_comes_out(chunk):
    """An XT211 on RS485 sends its data-notifications bare: no M-Bus or HDLC frame, no checksum,
    no tag. Nothing proves them intact: no telegram, and the line says what they are (not
    "garbage, wrong baud rate"), once for pushes in a row; a framed push after them comes out."""
    bare = stream(_by_file("sagemcom-xt211-cz-cez-bare.hex"))
    kaifa = _by_file("kaifa-no-list2-gh180.hex")
    good, _ = run(kaifa, stream(kaifa))
    telegrams, problems = run(kaifa, bare + bare + stream(kaifa), sizes=(chunk,))
    assert telegrams == good
    assert problems == ["a DLMS data-notification without an M-Bus or HDLC frame around it and without a tag "
                        "(Sagemcom XT211 on RS485): nothing proves its bytes intact, not read (%d bytes dropped)"
                        % (2 * len(bare))], problems


def test_a_broken_link_frame_is_not_taken_for_a_push_without_one():
    """A push inside an HDLC frame whose checksum fails: its bytes are that frame's, dropped as
    such, never named a push without a link frame (its data-notification starts 0F too)."""
    e = _by_file("kaifa-no-list2-gh180.hex")
    data = bytearray(stream(e))
    data[-2] ^= 0x01                                    # the FCS
    telegrams, problems = run(e, bytes(data))
    assert telegrams == [] and problems
    assert not any("without an M-Bus or HDLC frame" in p for p in problems), problems


def test_the_same_captures_on_the_twin(run_job):
    """The layouts on the dongle twin (and the 64-bit MicroPython): the same events as CPython."""
    picks = ["kamstrup-no-hourly-em001.hex", "aidon-se-27items.hex", "kaifa-no-stream-list1-2-3.hex",
             "landisgyr-e570-ch-vse2026-load.hex", "iskra-am550-ch-vse2026.hex", "siemens-im350-at-wels-enc.hex",
             "iskra-am550-at-kaernten-enc.hex", "kaifa-ma309-at-tinetz-enc.hex", "iskra-am550-si-gh615.hex",
             "kamstrup-no-1phase-obinsect.hex", "kaifa-se-obis-list.hex", "landisgyr-e450-at-burgenland-enc.hex"]
    for name in picks:
        e = _by_file(name)
        job = {"job": "pipeline", "stream": stream(e).hex(), "chunks": [64], "layout": meters.profile(profile(e))[4],
               "key": e.get("key"), "auth_key": e.get("auth_key"), "state": True, "replay_check": False}
        if e.get("key") and e.get("security") == "0x30" and not e.get("auth_key"):
            job["key_only"] = True
        result = run_job(job)
        telegrams = [bytes.fromhex(ev[2]) for ev in result["events"] if ev[0] == "telegram"]
        assert telegrams == run(e, stream(e))[0], name


def test_the_printed_pushes_on_the_twin(run_job):
    """The pushes readers printed (no link frame: the layouts alone, the XT211's untagged
    descriptors among them) read on the dongle twin as under CPython."""
    for e in BARE:
        data = stream(e)
        apdu = data[data.index(b"\x0f"):]
        layout = meters.profile(profile(e))[4]
        reader = Layouts(layout)
        try:
            readings, _ = reader.readings(axdr.decode(apdu))
            expected = [[[row[0], list(v) if isinstance(v, tuple) else v] for row, v in readings], reader.notice]
        except LayoutError as refused:
            expected = ["error", str(refused)]
        assert run_job({"job": "layouts", "apdus": [apdu.hex()], "layout": layout}) == [expected], e["file"]


# -- pushes a broken meter writes (issue 22) --------------------------------------------------------
# Each bad push is encrypted with the IM350's own key (security 0x20, as the IM350's), so that it is
# opened and read (a plain push is refused where a key is set, before it is read), from another
# system title; a real IM350 capture follows it, whose telegram must still come out.

IM350 = _by_file("siemens-im350-at-structure12-enc.hex")
_NUMBER = at.double_long_unsigned(5)
WRONG_TYPES = {
    # what is wrong: (the push, what its one line says)
    "structure12, meter number null-data": (at.structure12(number=at.NULL),
                                            "0-6:25.9.0 structure: item 1 is 00 (null), not a string"),
    "structure12, meter number a number": (at.structure12(number=_NUMBER),
                                           "0-6:25.9.0 structure: item 1 is 06 5, not a string"),
    "structure10, meter number null-data": (at.structure12(number=at.NULL, texts=False), "item 1 is 00 (null)"),
    "structure12, time null-data": (at.structure12(time=at.NULL), "item 2 is 00 (null), not a string"),
    "structure12, date a number": (at.structure12(date=_NUMBER), "item 3 is 06 5, not a string"),
    "structure12, +A a string": (at.structure12(values=(at.octets(b"12345678"), 0, 887, 2116972, 73, 0)),
                                 "item 4 is 09 08 12345678, not a number"),
    "structure12, -P null-data": (at.structure12(values=(29468830, 0, 887, 2116972, 73, at.NULL)),
                                  "item 9 is 00 (null), not a number"),
    "kaifa list, meter id a number": (at.raw_notification(at.structure([at.visible(b"KFM_001"), _NUMBER] + [_NUMBER] * 11),
                                                          clock=None), "Kaifa list: item 1 is 06 5, not a string"),
    "kamstrup list, code a number": (at.raw_notification(at.structure([at.visible(b"Kamstrup_V0001"), _NUMBER, _NUMBER]),
                                                         clock=None), "Kamstrup list: item 1 is not an OBIS code"),
    # a null placeholder is a null code and a null value; a value after a null code has no code
    "kamstrup list, null code before a value": (at.raw_notification(at.structure([at.visible(b"Kamstrup_V0001"), at.NULL,
                                                                                  _NUMBER]), clock=None),
                                                "Kamstrup list: item 1 is null-data, but its value, item 2, is 06 5"),
}


def _sealed(bad):
    """A bad push as the IM350's line would carry it: encrypted with its key (0x20), in HDLC."""
    return at.hdlc(at.glo(bad, key=bytes.fromhex(IM350["key"]), title=b"SMS\x00\x00\x00\x00\x63", sc=0x20),
                   server=(1, 99))


def _with_capture(bad, e=IM350):
    """The bad push, then the capture: (telegrams, problems, pipeline)."""
    events = []
    pipe = pipeline(e, lambda kind, pos, what, crc: events.append((kind, bytes(what) if kind == TELEGRAM else what)))
    for part in meter.split(_sealed(bad) + stream(e), [64]):
        pipe.push(part, 0)      # an exception out of here would stop the dongle's RX loop
    pipe.flush(0)
    return [w for kind, w in events if kind == TELEGRAM], [w for kind, w in events if kind == PROBLEM], pipe


@pytest.mark.parametrize("name", sorted(WRONG_TYPES))
def test_an_item_of_the_wrong_type_is_one_line_and_the_next_push_comes_out(name):
    """A push of a known layout with an item of another type than the layout's (null-data or a
    number for the meter number, a string for a value): one line naming the item and what it was,
    counted as a bad frame, no telegram from it; the next push gives its telegram. (Before, a
    structure(12) with a null or numeric meter number raised IndexError / TypeError out of
    Pipeline.push, which stopped the app, and the same push again backed its restarts off.)"""
    bad, line = WRONG_TYPES[name]
    good, _ = run(IM350, stream(IM350))
    telegrams, problems, pipe = _with_capture(bad)
    assert telegrams == good and len(good) == 1
    assert dsmr.check(telegrams[0]) is True
    assert len(problems) == 1 and line in problems[0], problems
    assert pipe.bad_frames == 1 and pipe.telegrams == 1


def test_items_of_the_wrong_type_on_the_twin(run_job):
    """The same on the dongle twin, the RV32 twin and the 64-bit MicroPython: every bad push one
    line, every good one its telegram."""
    data = b"".join(_sealed(bad) + stream(IM350) for bad, _ in WRONG_TYPES.values())
    result = run_job({"job": "pipeline", "stream": data.hex(), "chunks": [64], "key": IM350["key"],
                      "replay_check": False, "state": True})
    telegrams = [bytes.fromhex(ev[2]) for ev in result["events"] if ev[0] == "telegram"]
    good, _ = run(IM350, stream(IM350))
    assert telegrams == good * len(WRONG_TYPES)
    assert result["counters"]["bad_frames"] == len(WRONG_TYPES)


@pytest.mark.parametrize("where", ["axdr.decode", "layouts.structure12.read", "render.telegram"])
@pytest.mark.parametrize("fault", [IndexError, TypeError, KeyError, ZeroDivisionError])
def test_a_bug_in_reading_a_push_costs_that_push_never_the_app(monkeypatch, where, fault):
    """Defense in depth: whatever reading a verified frame's content raises that is no P1Error (a
    bug in a layout, the decoder, the renderer) is a bad frame with one line naming it, never an
    exception out of Pipeline.push; the next push comes out. The bug is put in on purpose here."""
    from p1dongle import axdr as axdr_module, render
    from p1dongle.layouts import structure12
    module, name = {"axdr": (axdr_module, "decode"), "layouts": (structure12, "read"),
                    "render": (render, "telegram")}[where.split(".")[0]]
    real = getattr(module, name)
    calls = []

    def buggy(*args):
        calls.append(1)
        if len(calls) == 1:
            raise fault("a bug")
        return real(*args)
    good, _ = run(IM350, stream(IM350))
    monkeypatch.setattr(module, name, buggy)
    events = []
    pipe = pipeline(IM350, lambda kind, pos, what, crc: events.append((kind, what)))
    lost = memory.count()
    pipe.push(stream(IM350) + stream(IM350), 0)
    assert [bytes(w) for kind, w in events if kind == TELEGRAM] == good
    problems = [w for kind, w in events if kind == PROBLEM]
    assert len(problems) == 1 and fault.__name__ in problems[0], problems
    assert pipe.bad_frames == 1 and memory.count() == lost


def test_running_out_of_memory_in_a_push_stays_a_memory_error(monkeypatch):
    """A MemoryError while a push is read keeps its own handling: counted as a memory error (not
    a bad frame), and the next push comes out."""
    from p1dongle.layouts import structure12
    real = structure12.read
    calls = []

    def starved(reader, body, layout):
        calls.append(1)
        if len(calls) == 1:
            raise MemoryError()
        return real(reader, body, layout)
    monkeypatch.setattr(structure12, "read", starved)
    events = []
    pipe = pipeline(IM350, lambda kind, pos, what, crc: events.append((kind, what)))
    lost = memory.count()
    pipe.push(stream(IM350) + stream(IM350), 0)
    assert len([w for kind, w in events if kind == TELEGRAM]) == 1
    assert memory.count() == lost + 1 and pipe.bad_frames == 0


def _identifier(telegram):
    """The 0-0:42.0.0 of a rendered telegram, as text (None when it has none)."""
    for line in telegram.split(b"\r\n"):
        if line.startswith(b"0-0:42.0.0("):
            return bytes.fromhex(line[11:-1].decode()).decode()
    return None


def _named_streams():
    """With a key: our meter (encrypted, its system title) names itself in its long list only; a
    third meter (another system title) never names itself; plain pushes (refused where a key is
    set) come between. Without a key: a foreign meter pushes plain from another HDLC address and
    names itself; a plain push from our meter's address never does."""
    from dlms_cosem import dlms_data as dd
    short = at.reading("1-0:1.7.0", dd.DoubleLongUnsignedData(1234), 0, at.W)
    ours = at.notification(at.NETZNOE_LIKE)                     # meter number 123456789012, last
    named = at.notification(short + [dd.OctetStringData(b"FOREIGN00001")])
    unnamed = at.notification(short)
    keyed = [("ours, named", at.hdlc(at.glo(ours, counter=1))),
             ("foreign, named", at.hdlc(named, server=(1, 99))),
             ("ours", at.hdlc(at.glo(unnamed, counter=2))),
             ("third", at.hdlc(at.glo(unnamed, title=b"XYZ\x00\x00\x00\x00\x09", counter=1))),
             ("ours again", at.hdlc(at.glo(unnamed, counter=3)))]
    plain = [("foreign, named", at.hdlc(named, server=(1, 99))),
             ("plain from our address", at.hdlc(unnamed)),
             ("foreign", at.hdlc(unnamed, server=(1, 99)))]
    return keyed, plain


# what 0-0:42.0.0 each push must carry: its own name, the one its sender said, else its system
# title (maker and serial), else none; a plain push where a key is set: none, it is refused
NAMED = {"ours, named": "123456789012", "ours": "123456789012", "third": "XYZ0000000009",
         "ours again": "123456789012", "foreign, named": "FOREIGN00001", "foreign": "FOREIGN00001",
         "plain from our address": None}


def test_a_foreign_push_never_names_the_meter(run_job):
    """A meter that names itself only in some lists is named in the others once it has, but only
    by what it said itself: the identifier is bound to the system title (or, for a plain push, the
    link address) that said it. (Before, one foreign plain push in the stream put another meter's
    0-0:42.0.0, the id Home Assistant's DSMR integration keys the device by, into every later
    telegram until a restart; where a key is set, a plain push is now refused before it is read.)"""
    from p1dongle.pipeline import Pipeline
    keyed, plain = _named_streams()
    for key, pushes in ((meter.KEY, keyed), (None, plain)):
        events = []
        pipe = Pipeline(key, emit=lambda kind, pos, what, crc: events.append((kind, what)))
        for _, data in pushes:
            pipe.push(data, 0)
        telegrams = [bytes(w) for kind, w in events if kind == TELEGRAM]
        read = [name for name, _ in pushes if key is None or name not in dict(plain)]
        assert [_identifier(t) for t in telegrams] == [NAMED[name] for name in read], events
        for t in telegrams:
            assert dsmr.check(t) is True
        job = {"job": "pipeline", "stream": b"".join(d for _, d in pushes).hex(), "chunks": [64]}
        if key:
            job["key"] = key.hex()
        result = run_job(job)
        assert [bytes.fromhex(ev[2]) for ev in result["events"] if ev[0] == "telegram"] == telegrams


def test_the_names_of_other_meters_are_bounded():
    """Every sender that names itself takes a place, up to a few: many foreign senders cost the
    oldest place, never memory, and never lend a name to another sender."""
    from dlms_cosem import dlms_data as dd
    from p1dongle.pipeline import Pipeline
    short = at.reading("1-0:1.7.0", dd.DoubleLongUnsignedData(1234), 0, at.W)
    events = []
    pipe = Pipeline(emit=lambda kind, pos, what, crc: events.append((kind, what)))
    for k in range(40):
        name = b"METER%07d" % k
        pipe.push(at.hdlc(at.notification(short + [dd.OctetStringData(name)]), server=(1, 20 + k)), 0)
        pipe.push(at.hdlc(at.notification(short), server=(1, 20 + k)), 0)
    telegrams = [bytes(w) for kind, w in events if kind == TELEGRAM]
    assert [_identifier(t) for t in telegrams] == ["METER%07d" % (k // 2) for k in range(80)]
    assert len(pipe._names) <= 4


def test_every_energy_and_power_register_comes_with_its_unit():
    """Energy (D = 8) and power (D = 7) registers of electricity, whether the table has a row for
    the code or not (a tariff's reactive energy, a phase's apparent energy): in every telegram a
    capture gives, each carries its unit; one the push gives without scaler or unit is withheld,
    never written as a count (the E450's code-value pairs gave 1-0:3.8.1(1358750.000))."""
    import re
    seen = 0
    for e in WIRE:
        telegrams, _ = run(e, stream(e))
        for t in telegrams:
            for code, c, d, value in re.findall(rb"\n(1-\d+:(\d+)\.([78])\.\d+)\(([^)]*)\)", t):
                if int(c) % 20 in (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 15, 16):
                    seen += 1
                    assert b"*" in value, (e["file"], code, value)
    assert seen > 100


def test_danish_kamstrup_energy_is_not_published_until_settled():
    """kamstrup-dk: the push carries no scaler and Kamstrup's HAN specification leaves it to the
    meter's configuration (Wh or 10 Wh): its energy registers are withheld with one line, its
    powers, currents and voltages (documented) come out."""
    e = _by_file("kamstrup-se-hourly-gh239.hex")           # an hourly list, with energies
    dk = dict(e, country="DK")
    telegrams, problems = run(dk, stream(e))
    assert telegrams and not any(b"1-0:1.8.0" in t for t in telegrams)
    assert any(b"1-0:1.7.0" in t for t in telegrams)
    assert any(p.startswith("Danish Kamstrup energy registers not published") for p in problems), problems
    se, _ = run(e, stream(e))
    assert any(b"1-0:1.8.0" in t for t in se)                # the same list as a Swedish meter: Wh
