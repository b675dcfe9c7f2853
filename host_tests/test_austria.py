"""Austrian meters: M-Bus, HDLC and block-transfer framing, security 0x20 and key-only mode, DLMS
data-notifications rendered as DSMR telegrams. Published example frames first, then frames built
by the tests for every framing (segmented and not, broken, run together with garbage), the same
streams under MicroPython."""
import os
import subprocess
import sys

import austria as at
import meter
import pytest
from conftest import ROOT
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from dlms_cosem.dlms_data import DlmsDataParser
from dsmr_parser import obis_references as obis_ref
from dsmr_parser import telegram_specifications
from dsmr_parser.parsers import TelegramParser
from p1dongle import dsmr, reading
from p1dongle.pipeline import PROBLEM, TELEGRAM, Pipeline

VECTORS = os.path.join(os.path.dirname(__file__), "vectors")


def vector(name):
    with open(os.path.join(VECTORS, name)) as f:
        return bytes.fromhex(f.read().strip())


def run(pipe, stream, sizes=(64,)):
    events = meter.record(pipe)
    for chunk in meter.split(stream, list(sizes)):
        pipe.push(chunk, 0)
    pipe.flush(0)
    return [e[2] for e in events if e[0] == TELEGRAM], [e[2] for e in events if e[0] == PROBLEM]


def lines(telegram):
    return telegram.decode().split("\r\n")


# -- published frames --------------------------------------------------------------------------

EVN_KEY = bytes.fromhex("36C66639E48A8CA4D6BC8B282A793BBB")


@pytest.mark.parametrize("sizes", [(1,), (7,), (64,), (4096,)])
def test_netz_noe_documented_example(sizes):
    """Netz NOE's own example (Kundenschnittstelle document): two M-Bus segments, security 0x20.
    The document's values: +A 12937 Wh, voltage L1 233.7 V, power factor 1.000, 2021-09-27 09:47:15."""
    pipe = Pipeline(EVN_KEY)
    telegrams, problems = run(pipe, vector("netznoe-evn-doc.hex"), sizes)
    assert problems == [] and len(telegrams) == 1
    t = telegrams[0]
    assert dsmr.check(t) is True
    got = lines(t)
    for line in ("0-0:1.0.0(210927094715S)", "1-0:1.8.0(000012.937*kWh)", "1-0:32.7.0(233.7*V)",
                 "1-0:13.7.0(1.000)", "0-0:96.1.0(181220000009)"):
        assert line in got
    assert got[0].startswith("/KFM5")
    assert "1 not authenticated" in pipe.status()       # 0x20 carries no tag: the status says so


def test_netz_noe_wrong_key_gives_a_clear_line():
    telegrams, problems = run(Pipeline(bytes(16)), vector("netznoe-evn-doc.hex"))
    assert telegrams == [] and len(problems) == 1
    assert "data-notification" in problems[0] or "not" in problems[0]


def test_wiener_netze_am550_example_matches_dlms_cosem():
    """An Iskra AM550 HDLC frame published with its key: our values against dlms_cosem's reading
    of the same plaintext (decrypted here with `cryptography`'s AES-CTR)."""
    frame = vector("wienernetze-am550.hex")
    key = bytes.fromhex("62DC84B413AF3E16AA271CE9ED04AC74")
    telegrams, problems = run(Pipeline(key), frame)
    assert problems == [] and len(telegrams) == 1
    # reference: DB frame starts after 7E A0 67 CF 02 23 13 HCS(2) E6 E7 00
    db = frame[12:-3]
    assert db[:2] == b"\xdb\x08" and db[11] == 0x20
    iv = db[2:10] + db[12:16] + b"\x00\x00\x00\x02"
    plain = Cipher(algorithms.AES(key), modes.CTR(iv)).decryptor().update(db[16:])
    assert plain[0] == 0x0F
    body = DlmsDataParser().parse(plain[18:])[0]        # after 0F, invoke id, 0C + date-time
    numbers = [item.value for item in body.value if isinstance(item.value, int)]
    assert len(numbers) == 8
    names = ["1-0:1.8.0", "1-0:2.8.0", "1-0:3.8.0", "1-0:4.8.0", "1-0:1.7.0", "1-0:2.7.0", "1-0:3.7.0", "1-0:4.7.0"]
    units = ["kWh", "kWh", "kvarh", "kvarh", "kW", "kW", "kvar", "kvar"]
    got = lines(telegrams[0])
    for name, number, unit in zip(names, numbers, units):
        width, _ = (6, 3) if unit.endswith("h") else (2, 3)
        assert "%s(%s*%s)" % (name, reading.fixed(number, -3, 3, width), unit) in got
    assert "1-0:1.8.0(020870.819*kWh)" in got


def test_steiermark_key_only_mode():
    """Energie Steiermark gives customers the encryption key only: --auth-key none decrypts the
    real frame without checking its tag, and the DSMR CRC inside checks it; with an authentication
    key that is not the meter's, the tag check refuses it."""
    frame = vector("steiermark-t210dr.hex")
    key = bytes.fromhex("A8C74F67ECA8EF9C55C4743FF6F4F031")
    pipe = Pipeline(key, None)
    telegrams, problems = run(pipe, frame)
    assert problems == [] and len(telegrams) == 1
    got = lines(telegrams[0])
    assert got[0] == "/EST5\\253717584_A"
    assert "1-0:1.8.0(007112944*Wh)" in got and "1-0:2.8.0(033153972*Wh)" in got   # the published values
    assert "key-only mode" in pipe.status()
    telegrams, problems = run(Pipeline(key, bytes.fromhex("F6089912E1CC910884DFC86E9F028201")), frame)
    assert telegrams == [] and "authentication failed" in problems[0]


def test_steiermark_through_the_tool():
    env = dict(os.environ, P1DONGLE_KEY="A8C74F67ECA8EF9C55C4743FF6F4F031")
    cmd = [sys.executable, os.path.join(ROOT, "tools", "sim.py"), "decrypt", "--hex", "-v",
           os.path.join(VECTORS, "steiermark-t210dr.hex")]
    plain = subprocess.run(cmd + ["--auth-key", "none"], capture_output=True, env=env, timeout=60)
    assert plain.returncode == 0 and plain.stdout.startswith(b"/EST5")
    assert b"key-only mode" in plain.stderr and b"A8C74F67" not in plain.stderr
    refused = subprocess.run(cmd, capture_output=True, env=env, timeout=60)
    assert refused.returncode == 1 and refused.stdout == b""
    assert b"--auth-key none" in refused.stderr          # the hint for utilities without a GAK


# -- built frames ---------------------------------------------------------------------------------

NOTE = at.notification(at.NETZNOE_LIKE)


def assert_netznoe_like(telegram):
    assert dsmr.check(telegram) is True
    got = lines(telegram)
    for line in at.NETZNOE_LINES:
        assert line in got, line
    assert got[0] in ("/KFM56750001234", "/DLM5")     # maker and serial from the system title, if any


STREAMS = {
    "M-Bus, GCM, 2 segments": lambda c: at.mbus(at.glo(NOTE, counter=c)),
    "M-Bus, GCM, 4 segments": lambda c: at.mbus(at.glo(NOTE, counter=c), size=80),
    "M-Bus, 0x20, 1 segment": lambda c: at.mbus(at.glo(NOTE, counter=c, sc=0x20), size=250),
    "M-Bus, L mod 256 quirk": lambda c: at.mbus(at.glo(NOTE, counter=c), size=400, quirk=True),
    "M-Bus, L = 0x01 (257)": lambda c: at.mbus(at.glo(NOTE, counter=c), size=252, quirk=True),
    "HDLC, GCM, 1 frame": lambda c: at.hdlc(at.glo(NOTE, counter=c), size=1000),
    "HDLC, GCM, 3 segments": lambda c: at.hdlc(at.glo(NOTE, counter=c), size=110),
    "HDLC, shared flags": lambda c: at.hdlc(at.glo(NOTE, counter=c), size=110, shared_flags=True),
    "HDLC, block transfer": lambda c: b"".join(at.hdlc(b) for b in at.block_transfer(at.glo(NOTE, counter=c), 90)),
    "HDLC, plain notification": lambda c: at.hdlc(NOTE),
    "M-Bus, plain notification": lambda c: at.mbus(NOTE),
}


@pytest.mark.parametrize("name", sorted(STREAMS))
@pytest.mark.parametrize("sizes", [(1,), (64,), (5, 300)])
def test_every_framing_in_chunks_between_garbage(name, sizes):
    make = STREAMS[name]
    prefix, noise = b"\x00\x68\x7e\xa0 noise ", b"more line noise 1234"   # false starts, then none
    stream = prefix + make(1) + b"\x7e\x7e" + make(2) + noise + make(3)
    pipe = Pipeline(None if "plain" in name else meter.KEY)     # plain pushes: a meter without a key
    telegrams, problems = run(pipe, stream, sizes)
    assert len(telegrams) == 3, problems
    for t in telegrams:
        assert_netznoe_like(t)
    # Only the garbage was dropped (flags between frames may count): every frame was read as what
    # it is, not rescued from the inside.
    garbage = pipe.frames.dropped[0]
    assert len(prefix) + len(noise) <= garbage <= len(prefix) + len(noise) + 2, pipe.status()
    assert pipe.frames.dropped[1:] == [0, 0, 0, 0] and pipe.bad_frames == 0, pipe.status()


def test_broken_link_frames_are_dropped_and_the_next_comes_through():
    good = at.mbus(at.glo(NOTE, counter=5))
    bad_sum = bytearray(at.mbus(at.glo(NOTE, counter=3)))
    bad_sum[30] ^= 0x01                                  # checksum no longer fits
    h = bytearray(at.hdlc(at.glo(NOTE, counter=4), size=110))
    h[40] ^= 0x01                                        # FCS no longer fits
    telegrams, problems = run(Pipeline(meter.KEY), bytes(bad_sum) + bytes(h) + good)
    assert len(telegrams) == 1
    assert_netznoe_like(telegrams[0])
    assert problems and all("dropped" in p or "segment" in p or "LLC" in p for p in problems)


def test_a_lost_segment_is_reported_and_the_next_apdu_decodes():
    first = at.mbus(at.glo(NOTE, counter=1), size=80)
    frames = []
    i = 0
    while i < len(first):                                # cut into its M-Bus frames
        n = first[i + 1] + 6
        frames.append(first[i:i + n])
        i += n
    stream = frames[0] + frames[2] + at.mbus(at.glo(NOTE, counter=2))
    telegrams, problems = run(Pipeline(meter.KEY), stream)
    assert len(telegrams) == 1 and "segment 2 out of order (expected 1)" in problems[0]


def test_wrong_key_on_m_bus_is_one_clear_line_per_frame():
    pipe = Pipeline(os.urandom(16))
    telegrams, problems = run(pipe, at.mbus(at.glo(NOTE, counter=1)) + at.mbus(at.glo(NOTE, counter=2)))
    assert telegrams == [] and pipe.auth_failures == 2
    assert all(p.startswith("authentication failed: wrong key or authentication key") for p in problems)


def test_compact_layout_without_obis_codes():
    from dlms_cosem import dlms_data as dd
    values = [9876543, 12, 3456, 78, 1500, 0, 250, 5]
    note = at.notification([dd.OctetStringData(at.CLOCK)] + [dd.DoubleLongUnsignedData(v) for v in values])
    telegrams, problems = run(Pipeline(meter.KEY), at.hdlc(at.glo(note, sc=0x20)))
    assert problems == []
    got = lines(telegrams[0])
    for line in ("0-0:1.0.0(261125143045W)", "1-0:1.8.0(009876.543*kWh)", "1-0:2.8.0(000000.012*kWh)",
                 "1-0:3.8.0(000003.456*kvarh)", "1-0:4.8.0(000000.078*kvarh)", "1-0:1.7.0(01.500*kW)",
                 "1-0:2.7.0(00.000*kW)", "1-0:3.7.0(00.250*kvar)", "1-0:4.7.0(00.005*kvar)"):
        assert line in got


def test_rendered_telegrams_read_by_dsmr_parser():
    """Home Assistant's parser reads what we render from DLMS values."""
    telegrams, _ = run(Pipeline(meter.KEY), at.mbus(at.glo(NOTE)))
    parsed = TelegramParser(telegram_specifications.V5).parse(telegrams[0].decode())
    assert str(parsed[obis_ref.ELECTRICITY_IMPORTED_TOTAL].value) == "123456.789"
    assert str(parsed[obis_ref.CURRENT_ELECTRICITY_USAGE].value) == "1.234"
    assert str(parsed[obis_ref.INSTANTANEOUS_VOLTAGE_L1].value) == "230.1"
    assert str(parsed[obis_ref.INSTANTANEOUS_CURRENT_L3].value) == "12.00"
    values = meter.values(dsmr.parse(telegrams[0]))
    assert values["totalImportedEnergyP"] == (123456789, -3, "kWh")


@pytest.mark.parametrize("m, e, d, w, text", [
    (123456789, -3, 3, 6, "123456.789"), (999999999999, -3, 3, 6, "999999999.999"), (42, -3, 3, 6, "000000.042"),
    (0, 0, 3, 2, "00.000"), (-987, -3, 3, 1, "-0.987"), (2301, -1, 1, 3, "230.1"), (15, 2, 3, 6, "001500.000"),
    (12345, -5, 2, 3, "000.12"), (12355, -5, 3, 1, "0.124"), (-5, -4, 3, 1, "-0.001"), (-4, -4, 3, 1, "0.000"),
])
def test_numbers_are_written_from_integers(m, e, d, w, text):
    assert reading.fixed(m, e, d, w) == text


def test_the_same_streams_under_micropython(run_job):
    stream = b"".join(STREAMS[name](k + 1) for k, name in enumerate(sorted(STREAMS)) if "plain" not in name)
    stream += vector("netznoe-evn-doc.hex")[:100] + b"junk" + at.hdlc(NOTE)
    result = run_job({"job": "pipeline", "key": meter.KEY.hex(), "stream": stream.hex(), "chunks": [64, 3]})
    telegrams = [bytes.fromhex(e[2]) for e in result["events"] if e[0] == "telegram"]
    assert len(telegrams) == len(STREAMS) - 2                      # all but the plain ones:
    assert "plain data-notification refused" in result["events"][-1][2]   # a key is set
    plain = run_job({"job": "pipeline", "stream": (at.hdlc(NOTE) + at.mbus(NOTE)).hex(), "chunks": [64, 3]})
    telegrams += [bytes.fromhex(e[2]) for e in plain["events"] if e[0] == "telegram"]
    assert len(telegrams) == len(STREAMS)
    for t in telegrams:
        assert_netznoe_like(t)
    evn = run_job({"job": "pipeline", "key": EVN_KEY.hex(), "stream": vector("netznoe-evn-doc.hex").hex(),
                   "chunks": [17]})
    assert evn["counters"]["unauthenticated"] == 1
    styria = run_job({"job": "pipeline", "key": "A8C74F67ECA8EF9C55C4743FF6F4F031", "key_only": True,
                      "stream": vector("steiermark-t210dr.hex").hex(), "chunks": [64]})
    assert [e[0] for e in styria["events"]] == ["telegram"]


def test_with_a_key_a_plain_push_is_refused_without_one_it_is_read():
    """A meter whose key is set encrypts its pushes: a plain one on its line is noise that passed an
    FCS or someone else's, and nothing proves it is the meter's. It is refused in one line, counted
    as a bad frame, and the meter's next push comes out; without a key, plain pushes are what a
    meter sends (Norway, Sweden) and are read."""
    for plain in (at.hdlc(NOTE), at.mbus(NOTE)):
        pipe = Pipeline(meter.KEY)
        telegrams, problems = run(pipe, plain + at.mbus(at.glo(NOTE, counter=1)))
        assert len(telegrams) == 1 and pipe.bad_frames == 1 and pipe.unauthenticated == 0
        line = ("plain data-notification refused: a key is set, so this meter's pushes are encrypted (without "
                "a key, plain pushes are read)")
        # (a refused M-Bus frame is rescanned, its 8-bit checksum is no proof of where it ends)
        assert len(problems) == 1 and problems[0].startswith(line), problems
        assert plain[0] == 0x7E and problems[0] == line or problems[0].endswith(" bytes dropped)")
        pipe = Pipeline()
        telegrams, problems = run(pipe, plain)
        assert len(telegrams) == 1 and problems == [] and pipe.unauthenticated == 1
        assert_netznoe_like(telegrams[0])


def test_the_link_buffer_is_as_big_as_the_meters_pushes():
    """The reassembly buffer starts at 512 bytes and doubles only for an APDU that needs it: a stray
    link frame on a P1 line (or a meter of short lists) does not cost max_frame (4 KB) of heap.
    (The captures' long pushes, up to block transfers of a few KB, decode through it: test_captures.)"""
    pipe = Pipeline()
    telegrams, _ = run(pipe, at.hdlc(NOTE))
    assert len(telegrams) == 1 and len(NOTE) < 512 and len(pipe.link.buf) == 512
    pipe = Pipeline(meter.KEY)
    longer = at.glo(at.notification(at.NETZNOE_LIKE * 3), counter=2)      # ~800 bytes, in 200s
    telegrams, problems = run(pipe, at.hdlc(longer))
    assert 512 < len(longer) <= 1024 and len(pipe.link.buf) == 1024 and len(telegrams) == 1, problems


def test_l_01_is_what_the_stream_really_says():
    assert at.mbus(at.glo(NOTE), size=252, quirk=True)[:4] == b"\x68\x01\x01\x68"


def test_meter_profiles_and_key_only_in_the_settings():
    from p1dongle import config
    from p1dongle.errors import ConfigError
    cfg = config.check({"meter": "netznoe", "key": EVN_KEY.hex()})
    assert (cfg["uart"]["baud"], cfg["uart"]["bits"], cfg["uart"]["parity"]) == (2400, 8, "even")
    assert cfg["layout"] == "obis" and cfg["auth_key"] == meter.LUX_AUTH_KEY
    cfg = config.check({"meter": "netznoe", "uart": {"baud": 9600}})
    assert cfg["uart"]["baud"] == 9600 and cfg["uart"]["parity"] == "even"     # the user's setting wins
    assert config.check({"meter": "steiermark", "auth_key": "none"})["auth_key"] is None
    assert config.check({})["auth_key"] == meter.LUX_AUTH_KEY                    # never key-only by default
    with pytest.raises(ConfigError, match="meter must be one of: aidon, aidon-se, auto, "):
        config.check({"meter": "graz"})


def test_the_firmware_app_reads_an_austrian_meter_under_micropython(micropython, tmp_path):
    """main.py in the MicroPython unix port, profile netznoe, the documented frame from a P1 reader."""
    from procs import P1Reader, connect, free_port, micropython_app, read_telegrams, request_status, settings_file
    reader = P1Reader()
    port = free_port()
    cfg = tmp_path / "p1dongle.json"
    settings_file(cfg, reader.port, meter="netznoe", key=EVN_KEY.hex(), tcp_port=port)
    app = micropython_app(micropython, str(cfg))
    try:
        app.expect(r"plain telegrams on port %d" % port)
        reader.accept()
        client = connect(port)
        app.expect(r"connected \(1 clients\)")
        for chunk in meter.split(vector("netznoe-evn-doc.hex"), [40]):
            reader.send(chunk)
        got = read_telegrams(client, 1)
        assert b"1-0:1.8.0(000012.937*kWh)" in got[0] and dsmr.check(got[0]) is True
        assert "telegrams 1 (1 not authenticated)" in request_status(port)
        client.close()
    finally:
        reader.close()
        app.stop()


@pytest.mark.parametrize("profile", ["lux", "steiermark", "netznoe", "tinetz", "wienernetze", "linz"])
def test_emulated_meters_of_every_family_lose_no_good_frame(profile):
    """`sim.py meter --profile`: each family's frames, with noise, a broken frame and a cut every
    2nd frame, through the pipeline in UART chunks: every frame that was not broken comes out."""
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import emulator
    key = os.urandom(16)
    m = emulator.EmulatedMeter(key, profile=profile, faults=2, seed=7)
    pipe = Pipeline(key)
    stream = b"".join(m.next_bytes(1_790_000_000 + 10 * i) for i in range(12))
    telegrams, problems = run(pipe, stream, (64,))
    # 12 readings + 2 extra frames after the cuts; at most the 2 broken and the 2 cut are lost
    assert 10 <= len(telegrams) <= 14 and pipe.telegrams == len(telegrams)
    energies = [meter.decimal(meter.values(dsmr.parse(t))["totalImportedEnergyP"]) for t in telegrams]
    assert energies == sorted(energies) and energies[0] > 20000
    assert all(dsmr.check(t) is True for t in telegrams)


def test_sim_run_with_an_austrian_emulated_meter():
    from procs import connect, read_until_closed, sim, split_telegrams
    app = sim("run", "--source", "meter", "--meter", "netznoe", "--interval", "0.2", "--count", "3",
              "--tcp-port", "0", "--status-interval", "0")
    app.expect(r"emulated meter: netznoe \(M-Bus, security 20")
    port = int(app.expect(r"connect: telnet localhost (\d+)").group(1))
    data = read_until_closed(connect(port))
    assert app.p.wait(20) == 0
    got, rest = split_telegrams(data)
    assert rest == b"" and got
    for t in got:
        assert t.startswith(b"/KFM5") and dsmr.check(t) is True and b"1-0:32.7.0(" in t


# -- issue 22: what a broken or forged link frame may not cost -----------------------------------

def on_twin(run_job, stream, key=meter.KEY, **job):
    """The stream through the pipeline under CPython and every MicroPython twin (run_job asserts
    they agree): ([(offset, telegram)], [(offset, problem)], counters)."""
    result = run_job(dict(job, job="pipeline", key=key.hex(), stream=stream.hex(), chunks=[64, 3]))
    telegrams = [(e[1], bytes.fromhex(e[2])) for e in result["events"] if e[0] == "telegram"]
    problems = [(e[1], e[2]) for e in result["events"] if e[0] == "problem"]
    return telegrams, problems, result["counters"]


def mbus_frames(stream):
    """An M-Bus stream cut into its frames (by their length bytes: no L mod 256 here)."""
    out, i = [], 0
    while i < len(stream):
        n = stream[i + 1] + 6
        out.append(stream[i:i + n])
        i += n
    return out


def test_a_forged_tagless_push_cannot_lock_the_meter_out(run_job):
    """Security 0x20 carries no tag, and an M-Bus checksum is no secret: a push with the meter's
    system title and counter FFFFFFFF whose content is noise must not make every later push a
    replay. Its counter would count only once its content was a valid APDU."""
    body = b"\x20\xff\xff\xff\xff" + bytes((i * 37 + 11) & 0xFF for i in range(200))
    forged = at.mbus(b"\xdb\x08" + at.TITLE + meter.ber_length(len(body)) + body)
    first, nxt = (at.mbus(at.glo(NOTE, counter=c, sc=0x20)) for c in (1, 2))
    stream = first + forged + nxt
    pipe = Pipeline(meter.KEY)
    telegrams, problems = run(pipe, stream)
    assert len(telegrams) == 2 and pipe.replays == 0, problems
    got, problems, counters = on_twin(run_job, stream)
    assert [g[0] for g in got] == [0, len(first + forged)] and counters["replays"] == 0


def test_the_l_mod_256_reading_swallows_no_good_frame(run_job):
    """A short M-Bus frame that lost its stop byte, then a good push: read as L + 256 (the Sagemcom
    L mod 256 quirk) the short frame would end exactly where the good push's first segment ends,
    and this short frame's checksum byte was made so that the sum fits too. The good push's
    header lies inside that reading, so it is no long frame: the good push comes out at its offset."""
    good = at.mbus(at.glo(NOTE, counter=7, sc=0x20), size=246)      # first segment: L = 251
    assert good[1] == 251
    body = bytes([0x53, 0xFF, 0x10, 0x01, 0x67]) + b"short"
    cs = -(sum(body) + 2 * 0x68 + 2 * good[1]) & 0xFF
    short = bytes([0x68, len(body), len(body), 0x68]) + body + bytes([cs])     # stop byte lost
    long_end = len(body) + 256 + 6
    assert len(short) + len(mbus_frames(good)[0]) == long_end
    assert sum(short[4:] + good[:long_end - len(short) - 2]) & 0xFF == good[long_end - len(short) - 2]
    stream = short + good + at.mbus(at.glo(NOTE, counter=8, sc=0x20))
    pipe = Pipeline(meter.KEY)
    telegrams, problems = run(pipe, stream)
    assert len(telegrams) == 2, problems
    got, problems, _ = on_twin(run_job, stream)
    assert [g[0] for g in got] == [len(short), len(short + good)]
    assert problems == [(0, "%d bytes dropped: garbage, no frame start (noise, or wrong baud rate or RX inversion)"
                         % len(short))]


def test_a_push_whose_last_segments_were_lost_costs_only_itself(run_job):
    """HDLC: a push in three segments loses its last ones to noise; the next push's first frame
    (LLC header E6 E7 00) starts a new APDU. The orphaned segments are dropped with one line, and
    the next push comes out at its offset."""
    cut = at.hdlc(at.glo(NOTE, counter=1), size=110)
    frames, i = [], 0
    while i < len(cut):                                  # cut into its HDLC frames
        n = (((cut[i + 1] & 7) << 8) | cut[i + 2]) + 2
        frames.append(cut[i:i + n])
        i += n
    assert len(frames) == 3
    for lost in (frames[:1], frames[:2]):
        orphan = b"".join(lost)
        nxt = at.hdlc(at.glo(NOTE, counter=2), size=1000)
        stream = orphan + nxt + at.hdlc(at.glo(NOTE, counter=3), size=110)
        telegrams, problems = run(Pipeline(meter.KEY), stream)
        assert len(telegrams) == 2, problems
        got, problems, counters = on_twin(run_job, stream)
        assert [g[0] for g in got] == [len(orphan), len(orphan + nxt)]
        assert len(problems) == 1 and problems[0][0] == 0 and "dropped" in problems[0][1], problems
        assert counters["bad_frames"] == 1


def test_an_m_bus_push_whose_last_segment_was_lost_says_so(run_job):
    """M-Bus: segment 0 of a new push while one was being collected: the unfinished one is dropped
    with one line (it was dropped without a word), the new one decodes."""
    orphan = mbus_frames(at.mbus(at.glo(NOTE, counter=1), size=80))[0]
    nxt = at.mbus(at.glo(NOTE, counter=2))
    got, problems, counters = on_twin(run_job, orphan + nxt)
    assert [g[0] for g in got] == [len(orphan)]
    assert len(problems) == 1 and problems[0][0] == 0 and "dropped" in problems[0][1], problems
    assert counters["bad_frames"] == 1


def _forged_mbus_over(push, ci=0x08):
    """Noise holding an M-Bus frame whose checksum and stop byte pass, and whose length reaches into
    push: its checksum byte and stop byte are push's own bytes (a byte of the noise is chosen to
    make the sum come right). CI: segment 8, which the link layer refuses."""
    head = bytes([0x53, 0xFF, ci, 0x01, 0x67, 0x00])           # C A CI STSAP DTSAP, one free byte
    j = next(j for j in range(2, 200) if push[j] == 0x16)       # the stop byte: a 16 in the push
    body_len = len(head) + j - 1                                # head, then push[0:j-1] in the frame
    free = (push[j - 1] - sum(head) - sum(push[:j - 1])) & 0xFF
    head = head[:-1] + bytes([free])
    assert sum(head + push[:j - 1]) & 0xFF == push[j - 1] and body_len <= 255
    return bytes([0x68, body_len, body_len, 0x68]) + head


def test_an_m_bus_frame_in_noise_never_takes_the_push_behind_it(run_job):
    """An M-Bus frame's checksum is an 8-bit sum: noise can hold a frame that passes it and whose
    length reaches over the next push (make fuzz found one). The link layer refuses it (segment 8),
    and it is rescanned, as a DB frame that fails its tag is: the push behind it comes out. (Its
    bytes were skipped whole: the push was lost.)"""
    push = at.mbus(at.glo(NOTE, counter=1), size=250)
    forged = _forged_mbus_over(push)
    nxt = at.mbus(at.glo(NOTE, counter=2), size=250)
    got, problems, counters = on_twin(run_job, forged + push + nxt)
    assert [g[0] for g in got] == [len(forged), len(forged + push)], problems


def test_a_frame_of_the_other_link_ends_an_unfinished_push(run_job):
    """An HDLC segment with more to follow, then a whole M-Bus push, then an HDLC frame without the
    LLC header (found by make fuzz): the M-Bus push decodes on its own, and the HDLC frame is no
    continuation of it (they shared the buffer): refused. And the reverse: M-Bus segment 0, then
    an HDLC push."""
    hdlc_cut = at.hdlc(at.glo(NOTE, counter=1), size=110)
    first = hdlc_cut[:(((hdlc_cut[1] & 7) << 8) | hdlc_cut[2]) + 2]
    second = hdlc_cut[len(first):len(first) + (((hdlc_cut[len(first) + 1] & 7) << 8) | hdlc_cut[len(first) + 2]) + 2]
    push = at.mbus(at.glo(NOTE, counter=2))
    got, problems, counters = on_twin(run_job, first + push + second)
    assert [g[0] for g in got] == [len(first)]
    assert problems[0] == (0, "APDU of %d bytes dropped: a new one started before its last HDLC segment came"
                           % (110 - 3))                 # the first segment's 110 bytes, LLC header off
    assert len(problems) == 2 and problems[1][0] == len(first + push) and "LLC" in problems[1][1], problems
    orphan = mbus_frames(at.mbus(at.glo(NOTE, counter=3), size=80))[0]
    nxt = at.hdlc(at.glo(NOTE, counter=4))
    got, problems, counters = on_twin(run_job, orphan + nxt)
    assert [g[0] for g in got] == [len(orphan)]
    assert problems == [(0, "APDU of 80 bytes dropped: a new one started before M-Bus segment 1 came")]  # its 80


def test_a_block_transfer_whose_last_blocks_were_lost_says_so(run_job):
    """General block transfer, one HDLC frame per block: block 1 of a new push while blocks of one
    were being collected: the unfinished one is dropped with one line, the new one decodes."""
    def blocks(counter):
        return [at.hdlc(b) for b in at.block_transfer(at.glo(NOTE, counter=counter), 90)]
    orphan = b"".join(blocks(1)[:2])
    nxt = b"".join(blocks(2))
    got, problems, counters = on_twin(run_job, orphan + nxt)
    assert [g[0] for g in got] == [len(orphan)]
    assert problems == [(0, "APDU of 180 bytes dropped: a new one started before block 3 came")]
    assert counters["bad_frames"] == 1


def test_a_decrypted_telegram_without_crc_is_not_published(run_job):
    """Security 0x20: a push whose plaintext reads '/...!' (a corrupt or wrong-key push, one in
    65536) is not taken for a DSMR 2/3 telegram: decrypted text must carry its CRC."""
    bad = at.mbus(at.glo(b"/XYZ5\x8f\x00\xfe ... noise ... \x01!\r\n", counter=1, sc=0x20))
    good = at.mbus(at.glo(NOTE, counter=2, sc=0x20))
    got, problems, counters = on_twin(run_job, bad + good)
    assert [g[0] for g in got] == [len(bad)] and counters["no_crc"] == 0
    # the M-Bus frame refused is rescanned (its checksum is 8 bits): the bare DB frame inside it is
    # then refused again, for the same reason
    assert all(pos < len(bad) for pos, _ in problems) and any("no CRC after '!'" in p for _, p in problems), problems
