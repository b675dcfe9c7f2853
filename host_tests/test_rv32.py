"""The RV32 twin: the firmware on the ESP32-C3's instruction set, bare metal under QEMU, in about
the C3's heap (make firmware-rv32; host_tests/rv32.py runs it). Every run_job job also runs there
(conftest); these tests check that the image is built like the C3 and that what only it can show
holds: viper as rv32imc code on a CPU without Zba, the test cryptolib, the real capture in 140 KB."""
import json
import os
import sys

import meter
import pytest
import rv32
from conftest import HERE, run_script
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from test_loops import CASES, DECIMALS, EXPECTED, STRINGS, TEXT_LINES
from test_real_capture import FRAME, KEY_HEX


@pytest.fixture(scope="module")
def session(rv32_elf):
    """One QEMU for this file's tests (it spins a host core while it waits: not for the session)."""
    with rv32.Rv32(rv32_elf) as dev:
        yield dev


@pytest.fixture
def dev(session, rv32_elf):
    """The twin with a fresh interpreter and heap: soft reset, or a new QEMU if the last one died."""
    if not session.alive():
        session.start()
    session.soft_reset()
    return session


def facts(dev, code):
    """code leaves a dict in r; it comes back as JSON."""
    return json.loads(dev.exec(code + "\nimport json\nprint(json.dumps(r))"))


def test_built_like_the_c3(dev):
    r = facts(dev, """
import sys, gc, os
from p1dongle import compat
from p1dongle.gcm import Gcm
try:
    import _p1gcm
    p1gcm = True
except ImportError:
    p1gcm = False
def on_a_file_system(path):
    try:
        os.stat(path)
        return True
    except OSError:
        return False
g = Gcm(bytes(16))
gc.collect()
r = {"maxsize": sys.maxsize, "arch": sys.implementation._mpy >> 10, "platform": sys.platform,
     "single_float": 1.0 + 1e-8 == 1.0, "third": repr(1 / 3), "loops": compat.loops.__name__,
     "p1gcm": p1gcm, "native_gcm": compat.native_gcm is not None, "gcm_native": g._native is not None,
     "aes": type(g._ecb._aes).__name__, "aes_module": compat.cryptolib.__name__,
     "files": [m.__file__ for m in (compat, compat.loops)],
     "on_fs": [on_a_file_system(m.__file__) for m in (compat, compat.loops)],
     "heap": gc.mem_free() + gc.mem_alloc()}
""")
    assert r["maxsize"] == 2 ** 31 - 1                   # 32-bit machine words, as the C3's
    assert r["arch"] == 11                               # MP_NATIVE_ARCH_RV32IMC
    assert r["platform"] == "qemu"                       # really the bare-metal image
    assert r["single_float"] and r["third"] == "0.33333334"  # single-precision floats
    assert r["loops"] == "p1dongle.loops_viper"          # compat chose the machine-code loops
    assert r["files"] == ["p1dongle/compat.py", "p1dongle/loops_viper.py"]
    assert r["on_fs"] == [False, False]                  # frozen: no file system behind them
    # No _p1gcm (the C3 image has it; this build shows the Python GCM on a bare cryptolib)
    assert (r["p1gcm"], r["native_gcm"], r["gcm_native"]) == (False, False, False)
    assert (r["aes_module"], r["aes"]) == ("cryptolib", "aes")
    assert 136 * 1024 <= r["heap"] <= 140 * 1024         # the port's 140 KB heap, about the C3's


def test_every_viper_loop_runs_as_rv32imc_without_zba(rv32_elf):
    """The loops job runs every viper loop (frozen with -march=rv32imc, no Zba) on a CPU without
    Zba, where one Zba instruction would stop QEMU (see the next test), and gets the reference's
    bytes; so do the portable loops."""
    result = rv32.run_job({"job": "loops", "cases": CASES}, rv32_elf)
    assert result["chosen"] == "p1dongle.loops_viper"
    assert result["files"]["viper"] == "p1dongle/loops_viper.py"
    assert result["viper"] == EXPECTED
    assert result["portable"] == EXPECTED


def test_text_and_json_loops_agree_on_rv32(rv32_elf, tmp_path):
    job = {"job": "text_loops", "lines": [ln.hex() for ln in TEXT_LINES], "decimals": DECIMALS,
           "strings": STRINGS, "telegram": meter.LUX_TELEGRAM.hex()}
    on_rv32 = rv32.run_job(job, rv32_elf)
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    host = run_script(sys.executable, os.path.join(HERE, "mp_job.py"), str(path))
    assert on_rv32["viper"] == on_rv32["portable"] == host["portable"]


SH1ADD = """
@micropython.asm_rv32
def sh1add(a0, a1):
    data(4, 0x20B52533)     # sh1add a0, a0, a1 (Zba), as a raw word: the assembler refuses it
print(sh1add(10, 20))
"""


def test_a_zba_instruction_stops_this_cpu(rv32_elf):
    """The check above can fail: on rv32.CPU a Zba instruction is illegal and QEMU exits; on
    QEMU's default rv32 (with Zba) the same code gives 10 * 2 + 20."""
    with rv32.Rv32(rv32_elf, cpu="rv32") as dev:
        assert dev.exec(SH1ADD) == b"40\r\n"
    with rv32.Rv32(rv32_elf) as dev:
        with pytest.raises(rv32.Rv32Error, match="Illegal instruction"):
            dev.exec(SH1ADD)
        assert not dev.alive()


def test_code_compiled_on_the_device_has_no_zba_either(dev):
    """The port lets its own compiler use Zba; boards/rv32/mpconfigport.h turns that off, as the
    C3's port has it: the inline assembler refuses sh1add, and viper made here runs here."""
    with pytest.raises(rv32.Rv32Error, match="invalid RV32 instruction 'sh1add'"):
        dev.exec("@micropython.asm_rv32\ndef f(a0, a1):\n    sh1add(a0, a0, a1)\n")
    out = dev.exec("""
@micropython.viper
def total(b) -> int:
    p = ptr32(b)
    s = 0
    for i in range(4):
        s += p[i]
    p[3] = s
    return s
b = bytearray(16)
for i in range(4):
    b[4 * i] = i + 1
print(total(b), b[12])
""")
    assert out == b"10 10\r\n"


def ecb(key, data):
    enc = Cipher(algorithms.AES(key), modes.ECB()).encryptor()
    return enc.update(data) + enc.finalize()


def test_the_test_cryptolib_is_aes_ecb(dev):
    """boards/testmods/cryptolib against the cryptography package: FIPS-197's example, random keys
    and multi-block buffers (gcm.py's 512-byte batch among them), into a new buffer, into another
    one and in place."""
    key = bytes(range(16))
    cases = [(key, bytes.fromhex("00112233445566778899aabbccddeeff"))]
    cases += [(os.urandom(16), os.urandom(n)) for n in (16, 32, 48, 512, 1024 + 16, 4096)]
    code = ["from cryptolib import aes", "from binascii import hexlify, unhexlify", "r = []"]
    for k, data in cases:
        code.append("a = aes(unhexlify('%s'), 1)\nd = unhexlify('%s')\nout = bytearray(len(d) + 5)\n"
                    "b = bytearray(d)\na.encrypt(d, out)\na.encrypt(b, b)\n"
                    "r.append([hexlify(a.encrypt(d)), hexlify(out), hexlify(b)])" % (k.hex(), data.hex()))
    r = facts(dev, "\n".join(code) + "\nr = [[x.decode() for x in c] for c in r]")
    assert r[0][0] == "69c4e0d86a7b0430d8cdb78070b4c55a"     # FIPS-197 appendix C.1
    for (k, data), (new, into, in_place) in zip(cases, r):
        want = ecb(k, data)
        assert bytes.fromhex(new) == want
        assert bytes.fromhex(into) == want + bytes(5)        # the rest of out untouched
        assert bytes.fromhex(in_place) == want


@pytest.mark.parametrize("code", [
    "aes(bytes(16), 2)",                    # CBC: not in the test module
    "aes(bytes(16), 6)",                    # CTR
    "aes(bytes(32), 1)",                    # AES-256
    "aes(bytes(15), 1)",
    "aes(bytes(16), 1).encrypt(bytes(17))",
    "aes(bytes(16), 1).encrypt(bytes(15))",
    "aes(bytes(16), 1).encrypt(bytes(32), bytearray(16))",
])
def test_the_test_cryptolib_refuses_what_it_does_not_do(dev, code):
    with pytest.raises(rv32.Rv32Error, match="ValueError"):
        dev.exec("from cryptolib import aes\n" + code)


def test_the_real_luxembourg_capture_in_140_kb(dev):
    """The captured frame decrypted by the data path on RV32: its telegram, CRC CFDE. The heap
    figures are printed (pytest -s): free after boot, held by the imported firmware, and held by
    the data path (pipeline, GCM state, buffers, the telegram) after the decrypt. Each step is its
    own exec, so the source and code of one step are garbage by the next measure."""
    boot_free = int(dev.exec("import gc\ngc.collect()\nprint(gc.mem_free())"))
    modules = int(dev.exec("from binascii import unhexlify, hexlify\nfrom p1dongle.pipeline import Pipeline, TELEGRAM\n"
                           "from p1dongle import dsmr\nimport json\ngc.collect()\nprint(gc.mem_alloc())"))
    dev.exec("""
out = []
def emit(kind, pos, what, has_crc):
    out.append([kind == TELEGRAM, bytes(what) if kind == TELEGRAM else what])
pipe = Pipeline(unhexlify('%s'), emit=emit)
pipe.push(unhexlify('%s'), 0)
pipe.flush(0)
""" % (KEY_HEX, FRAME.hex()))
    r = facts(dev, """
gc.collect()
r = {"alloc": gc.mem_alloc(), "free": gc.mem_free(),
     "events": [[t, hexlify(w).decode() if t else w] for t, w in out],
     "check": dsmr.check(out[0][1]) if out and out[0][0] else None}
""")
    assert len(r["events"]) == 1 and r["events"][0][0], r["events"]
    telegram = bytes.fromhex(r["events"][0][1])
    assert telegram.startswith(b"/Lux5\\253663629_D\r\n")
    assert telegram.endswith(b"1-0:71.7.0(000*A)\r\n!CFDE\r\n")
    assert r["check"] is True
    data_path = r["alloc"] - modules
    print("\nRV32 twin heap: %d bytes free at boot; the imported data path's modules hold %d; after "
          "decrypting the Luxembourg capture (%d-byte telegram) the pipeline holds %d more, %d free"
          % (boot_free, modules, len(telegram), data_path, r["free"]))
    assert 120 * 1024 <= boot_free <= 140 * 1024
    assert 0 < modules <= 40 * 1024
    assert len(telegram) <= data_path <= 32 * 1024
