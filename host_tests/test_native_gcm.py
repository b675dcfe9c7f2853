"""Our GCM module in the firmware build (boards/usermod/p1gcm.c, on mbedTLS): MicroPython's unix
port built with it (`make firmware-unix`, part of `make test`) runs the GCM vectors and the whole
frame pipeline, and must give exactly what CPython (with `cryptography` as the reference) gives."""
import json
import os
import sys

import austria as at
import meter
import pytest
from conftest import HERE, MICROPYPATH, ROOT, run_script
from test_gcm import NIST, gcm_encrypt

NATIVE = os.path.join(ROOT, "build", "micropython-p1dongle")    # the dongle twin (make firmware-unix)
JOB = os.path.join(HERE, "mp_job.py")
FAIL = "AuthError: authentication failed: wrong key or authentication key"


@pytest.fixture(scope="module")
def native():
    if not os.path.exists(NATIVE):
        pytest.fail("%s is missing: `make test` builds it (make firmware-unix)" % NATIVE)
    return NATIVE


def both(native, tmp_path, job):
    """The job's result from the native build, checked equal to CPython's."""
    path = tmp_path / "job.json"
    path.write_text(json.dumps(job))
    got = run_script(native, JOB, str(path), micropypath=MICROPYPATH)
    assert got == run_script(sys.executable, JOB, str(path))
    return got


def test_the_build_has_the_module_and_gcm_uses_it(native, tmp_path):
    key, iv = os.urandom(16), os.urandom(12)
    ct, tag = gcm_encrypt(key, iv, b"\x30", b"secret reading")
    bad = bytes([tag[0] ^ 1]) + tag[1:]
    path = tmp_path / "job.json"
    path.write_text(json.dumps({"job": "native", "cases": [
        {"key": key.hex(), "iv": iv.hex(), "aad": "30", "ct": ct.hex(), "tag": bad.hex()}]}))
    r = run_script(native, JOB, str(path), micropypath=MICROPYPATH)
    assert r["native_module"] and r["gcm_native"]
    leftover = bytes.fromhex(r["leftovers"][0])
    assert leftover in (b"\xaa" * len(ct), bytes(len(ct)))     # a failed tag releases no plaintext


def test_vectors_and_random_cases(native, tmp_path):
    cases, expected = [], []
    for c in NIST[::3]:
        cases.append({"key": c["Key"], "iv": c["IV"], "aad": c["AAD"], "ct": c["CT"], "tag": c["Tag"]})
        expected.append(FAIL if c["fail"] else c["PT"])
    for n in (0, 1, 15, 16, 17, 255, 1200, 2048):
        key, iv, aad, pt = os.urandom(16), os.urandom(12), os.urandom(n % 33), os.urandom(n)
        ct, tag = gcm_encrypt(key, iv, aad, pt, 12 if n & 1 else 16)
        cases.append({"key": key.hex(), "iv": iv.hex(), "aad": aad.hex(), "ct": ct.hex(), "tag": tag.hex()})
        expected.append(pt.hex())
        cases.append({"key": key.hex(), "iv": iv.hex(), "aad": aad.hex(), "ct": ct.hex(),
                      "tag": bytes([tag[0] ^ 0x80]).hex() + tag[1:].hex()})
        expected.append(FAIL)
    assert both(native, tmp_path, {"job": "gcm_decrypt", "cases": cases}) == expected
    enc = [{"key": os.urandom(16).hex(), "iv": os.urandom(12).hex(), "aad": os.urandom(17).hex(),
            "pt": os.urandom(n).hex(), "tag_len": 12} for n in (0, 5, 16, 100, 1100)]
    got = both(native, tmp_path, {"job": "gcm_encrypt", "cases": enc})
    for c, g in zip(enc, got):
        ct, tag = gcm_encrypt(bytes.fromhex(c["key"]), bytes.fromhex(c["iv"]), bytes.fromhex(c["aad"]),
                              bytes.fromhex(c["pt"]), 12)
        assert g == (ct + tag).hex()


def test_the_frame_pipeline_luxembourg_and_austria(native, tmp_path):
    lux = [meter.frame(meter.LUX_TELEGRAM, counter=i) for i in (1, 2, 3)]
    bad = bytearray(lux[1])
    bad[-2] ^= 1
    stream = b"noise" + lux[0] + bytes(bad) + lux[2][:100] + lux[2]
    r = both(native, tmp_path, {"job": "pipeline", "key": meter.KEY.hex(), "stream": stream.hex(), "chunks": [64]})
    assert [bytes.fromhex(e[2]) for e in r["events"] if e[0] == "telegram"] == [meter.LUX_TELEGRAM] * 2
    assert r["counters"]["auth_failures"] == 1
    note = at.notification(at.NETZNOE_LIKE)
    stream = at.mbus(at.glo(note, sc=0x20, counter=1)) + at.hdlc(at.glo(note, counter=2), size=90)
    r = both(native, tmp_path, {"job": "pipeline", "key": meter.KEY.hex(), "stream": stream.hex(), "chunks": [17]})
    assert sum(1 for e in r["events"] if e[0] == "telegram") == 2 and r["counters"]["unauthenticated"] == 1
    with open(os.path.join(HERE, "vectors", "steiermark-t210dr.hex")) as f:
        styria = f.read().strip()
    r = both(native, tmp_path, {"job": "pipeline", "key": "A8C74F67ECA8EF9C55C4743FF6F4F031", "key_only": True,
                                "stream": styria, "chunks": [64]})
    assert [e[0] for e in r["events"]] == ["telegram"]
