"""A frame captured from a real Luxembourg meter (see host_tests/vectors/README.md), end to end."""
import os
import subprocess
import sys

import meter
from conftest import HERE, ROOT
from dsmr_parser import telegram_specifications as specs
from dsmr_parser.parsers import TelegramParser
from p1dongle import dsmr
from p1dongle.pipeline import PROBLEM, TELEGRAM, Pipeline

SIM = os.path.join(ROOT, "tools", "sim.py")
CAPTURE = os.path.join(HERE, "vectors", "lux-smarty-t210d.hex")
KEY_HEX = "D491470F47126332B07D1923B3504188"
with open(CAPTURE) as _f:
    FRAME = bytes.fromhex(_f.read())


def decrypt(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("P1DONGLE_")}
    proc = subprocess.run([sys.executable, SIM, "decrypt", *args], capture_output=True, env=env, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr.decode()


def test_the_tool_recovers_the_telegram():
    rc, out, err = decrypt("--key", KEY_HEX, "--hex", CAPTURE)
    assert (rc, err) == (0, "")
    assert out.startswith(b"/Lux5\\253663629_D\r\n\r\n1-3:0.2.8(42)\r\n0-0:1.0.0(180130102122W)\r\n")
    assert out.endswith(b"1-0:71.7.0(000*A)\r\n!CFDE\r\n")
    # The reference parser accepts it, CRC included, and reads what the meter measured.
    ref = TelegramParser(specs.LUXEMBOURG_SMARTY).parse(out.decode())
    assert str(ref.ELECTRICITY_IMPORTED_TOTAL.value) == "6.695"
    values = meter.values(dsmr.parse(out))
    assert values["totalImportedEnergyP"] == (6695, -3, "kWh")
    assert values["totalExportedEnergyP"] == (25, -3, "kWh")
    assert values["logicalDeviceName"] == "SAG1030700114004"
    assert values["powerTs"] == "2018-01-30T10:21:22+01:00"


def test_every_tampered_byte_is_rejected(tmp_path):
    """Change any byte after the length field: no telegram, one clear line, exit 1."""
    cap = tmp_path / "bad.bin"
    for i in (13, 14, 17, 18, 100, 400, len(FRAME) - 13, len(FRAME) - 12, len(FRAME) - 1):
        bad = bytearray(FRAME)
        bad[i] ^= 0x01
        cap.write_bytes(bytes(bad))
        rc, out, err = decrypt("--key", KEY_HEX, str(cap))
        assert (rc, out) == (1, b""), i
        assert err.splitlines()[0] == ("offset 0: authentication failed: wrong key or authentication key "
                                       "(647 bytes dropped)")


def test_wrong_key_and_wrong_auth_key_say_so():
    for args in (["--key", KEY_HEX[:-2] + "00"], ["--key", KEY_HEX, "--auth-key", "00" * 16]):
        rc, out, err = decrypt(*args, "--hex", CAPTURE)
        assert (rc, out) == (1, b"")
        assert "authentication failed: wrong key or authentication key" in err
        assert KEY_HEX not in err


def test_in_a_noisy_stream_in_uart_chunks_on_both_interpreters(run_job):
    """Noise, the frame, the frame cut short, the frame again, 64-byte reads: two telegrams."""
    stream = os.urandom(50) + FRAME + FRAME[:300] + FRAME + b"\x00" * 20
    pipe = Pipeline(bytes.fromhex(KEY_HEX))
    events = meter.record(pipe)
    for chunk in meter.split(stream, [64]):
        pipe.push(chunk, 0)
    pipe.flush(0)
    telegrams = [e[2] for e in events if e[0] == TELEGRAM]
    assert len(telegrams) == 2 and telegrams[0] == telegrams[1] and dsmr.check(telegrams[0]) is True
    assert any(e[0] == PROBLEM and "truncated" in e[2] for e in events)
    result = run_job({"job": "pipeline", "key": KEY_HEX, "stream": stream.hex(), "chunks": [64]})
    assert [bytes.fromhex(e[2]) for e in result["events"] if e[0] == "telegram"] == telegrams
