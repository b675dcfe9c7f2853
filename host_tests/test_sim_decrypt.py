"""`tools/sim.py decrypt` as a user runs it: a real process, real files and pipes."""
import os
import subprocess
import sys

import meter
from conftest import ROOT

SIM = os.path.join(ROOT, "tools", "sim.py")
KEY_HEX = meter.KEY.hex().upper()
LUX = meter.LUX_TELEGRAM


def decrypt(*args, stdin=None, env=None):
    e = {k: v for k, v in os.environ.items() if not k.startswith("P1DONGLE_")}
    e.update(env or {})
    proc = subprocess.run([sys.executable, SIM, "decrypt", *args], input=stdin, capture_output=True, env=e, timeout=60)
    return proc.returncode, proc.stdout, proc.stderr.decode()


def test_binary_capture_to_exact_telegrams(tmp_path):
    frames = [meter.frame(LUX, counter=i) for i in (1, 2, 3)]
    cap = tmp_path / "capture.bin"
    cap.write_bytes(frames[0][700:] + b"".join(frames))    # a capture starts mid-frame
    rc, out, err = decrypt("--key", KEY_HEX, str(cap))
    assert rc == 0
    assert out == LUX * 3
    assert err.splitlines() == ["offset 0: %d bytes dropped: garbage, no frame start (noise, or wrong baud "
                                "rate or RX inversion)" % (len(frames[0]) - 700)]
    assert KEY_HEX not in err.upper()


def test_hex_capture_from_stdin_with_other_auth_key():
    auth = os.urandom(16)
    frame = meter.frame(LUX, auth_key=auth)
    text = " ".join("%02x" % b for b in frame)
    text = "\n".join(text[i:i + 48] for i in range(0, len(text), 48)) + "\n"
    rc, out, err = decrypt("--key", KEY_HEX.lower(), "--auth-key", auth.hex(), "--hex", "-", stdin=text.encode())
    assert (rc, out, err) == (0, LUX, "")


def test_keys_from_the_environment():
    rc, out, err = decrypt("-", stdin=meter.frame(LUX), env={"P1DONGLE_KEY": KEY_HEX})
    assert (rc, out) == (0, LUX)


def test_wrong_key_exit_1_with_one_line_per_frame(tmp_path):
    cap = tmp_path / "c.bin"
    cap.write_bytes(meter.frame(LUX, counter=1) + meter.frame(LUX, counter=2))
    wrong = "00" * 16
    rc, out, err = decrypt("--key", wrong, str(cap))
    assert rc == 1 and out == b""
    lines = err.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("offset 0: authentication failed: wrong key or authentication key")
    assert lines[1].startswith("offset %d: authentication failed" % len(meter.frame(LUX)))
    assert lines[2] == ("decrypt: no telegram recovered: every encrypted frame failed authentication: check --key "
                        "and --auth-key (a utility that gives out no authentication key: --auth-key none)")
    assert wrong not in err and KEY_HEX not in err.upper()


def test_tampered_frame_is_reported_and_the_rest_comes_out(tmp_path):
    a, b, c = (meter.frame(LUX, counter=i) for i in (1, 2, 3))
    b = bytearray(b)
    b[-1] ^= 0x80                          # the tag
    cap = tmp_path / "c.bin"
    cap.write_bytes(a + bytes(b) + c)
    rc, out, err = decrypt("--key", KEY_HEX, "--verbose", str(cap))
    assert rc == 0 and out == LUX * 2
    lines = err.splitlines()
    assert lines[0] == "offset %d: authentication failed: wrong key or authentication key (%d bytes dropped)" % (len(a), len(b))
    assert lines[1].startswith("decrypt: telegrams 2, tag failures 1, CRC failures 0")


def test_bad_arguments_exit_2_without_echoing_the_key(tmp_path):
    cap = tmp_path / "c.bin"
    cap.write_bytes(meter.frame(LUX))
    for args in (["--key", "0123"], ["--key", KEY_HEX[:-1] + "G"], ["--key", KEY_HEX, "--auth-key", "xyz"], []):
        rc, out, err = decrypt(*args, str(cap))
        assert rc == 2 and out == b"", args
        lines = err.strip().splitlines()                   # usage, then exactly one error line
        assert lines[0].startswith("usage:") and lines[-1].startswith("sim.py decrypt: error: ")
        assert sum("error" in line for line in lines) == 1
        for a in args[1::2]:
            assert a not in err
    rc, _, err = decrypt(str(cap), env={"P1DONGLE_KEY": "123"})
    assert rc == 2 and "$P1DONGLE_KEY must be 32 hex digits" in err and "123" not in err


def test_no_frames_in_input_exit_1(tmp_path):
    cap = tmp_path / "c.txt"
    cap.write_bytes(b"hello, this is not a meter\n")
    rc, out, err = decrypt("--key", KEY_HEX, str(cap))
    assert rc == 1 and out == b""
    assert err.splitlines()[-1].startswith("decrypt: no telegram recovered: no frame found in 27 bytes")


def test_not_hex_text_is_a_clear_error(tmp_path):
    cap = tmp_path / "c.hex"
    cap.write_text("db 08 zz")
    rc, out, err = decrypt("--key", KEY_HEX, "--hex", str(cap))
    assert rc == 1 and "not hex text" in err and "Traceback" not in err


def test_missing_file_is_a_clear_error(tmp_path):
    rc, out, err = decrypt("--key", KEY_HEX, str(tmp_path / "nope.bin"))
    assert rc == 1 and err.startswith("decrypt: cannot read") and "Traceback" not in err


def test_plain_telegrams_pass_through(tmp_path):
    cap = tmp_path / "c.bin"
    cap.write_bytes(meter.NL_TELEGRAM + meter.DSMR22_TELEGRAM)
    rc, out, err = decrypt("--key", KEY_HEX, str(cap))
    assert (rc, out, err) == (0, meter.NL_TELEGRAM + meter.DSMR22_TELEGRAM, "")


def test_help_explains_itself():
    proc = subprocess.run([sys.executable, SIM, "decrypt", "--help"], capture_output=True, text=True)
    assert proc.returncode == 0
    for word in ("--key", "--auth-key", "--hex", "exit status", "P1DONGLE_KEY"):
        assert word in proc.stdout
