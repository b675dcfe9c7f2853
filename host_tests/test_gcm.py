"""AES-128-GCM: our portable implementation against `cryptography` and published vectors."""
import os

import cryptography_vectors
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from hypothesis import given, settings
from hypothesis import strategies as st

from meter import gcm_encrypt
from p1dongle.errors import AuthError
from p1dongle import loops
from p1dongle.gcm import Gcm

# McGrew & Viega, "The Galois/Counter Mode of Operation (GCM)", test cases 1-4 (AES-128).
K0 = "00000000000000000000000000000000"
K3 = "feffe9928665731c6d6a8f9467308308"
IV3 = "cafebabefacedbaddecaf888"
P3 = ("d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a72"
      "1c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255")
C3 = ("42831ec2217774244b7221b784d0d49ce3aa212f2c02a4e035c17e2329aca12e"
      "21d514b25466931c7d8f6a5aac84aa051ba30b396a0aac973d58e091473f5985")
MCGREW_VIEGA = [
    # (case, key, iv, plaintext, aad, ciphertext, tag)
    (1, K0, "000000000000000000000000", "", "", "", "58e2fccefa7e3061367f1d57a4e7455a"),
    (2, K0, "000000000000000000000000", "00000000000000000000000000000000", "",
     "0388dace60b6a392f328c2b971b2fe78", "ab6e47d42cec13bdf53a67b21257bddf"),
    (3, K3, IV3, P3, "", C3, "4d5c2af327cd64a62cf35abd2ba6fab4"),
    (4, K3, IV3, P3[:120], "feedfacedeadbeeffeedfacedeadbeefabaddad2", C3[:120],
     "5bc94fbc3221a5db94fae95ae7121a47"),
]


def _h(s):
    return bytes.fromhex(s)


@pytest.mark.parametrize("case,key,iv,pt,aad,ct,tag", MCGREW_VIEGA)
def test_mcgrew_viega(case, key, iv, pt, aad, ct, tag):
    g = Gcm(_h(key))
    assert g.encrypt(_h(iv), _h(aad), _h(pt), 16) == _h(ct) + _h(tag)
    assert g.decrypt(_h(iv), _h(aad), _h(ct), _h(tag)) == _h(pt)
    assert g.decrypt(_h(iv), _h(aad), _h(ct), _h(tag)[:12]) == _h(pt)
    bad = bytearray(_h(tag))
    bad[-1] ^= 1
    with pytest.raises(AuthError):
        g.decrypt(_h(iv), _h(aad), _h(ct), bytes(bad))


def nist_decrypt_vectors():
    """NIST CAVS gcmDecrypt128 (from cryptography_vectors): 96-bit IVs, 96- to 128-bit tags."""
    cases = []
    params = {}
    case = None
    with cryptography_vectors.open_vector_file(os.path.join("ciphers", "AES", "GCM", "gcmDecrypt128.rsp"), "r") as f:
        for line in f:
            line = line.strip()
            if line.startswith("["):
                name, _, value = line[1:-1].partition(" = ")
                params[name] = int(value)
            elif line.startswith("Count"):
                case = {"fail": False}
                if params["IVlen"] == 96 and params["Taglen"] >= 96:
                    cases.append(case)
            elif line == "FAIL":
                case["fail"] = True
            elif " = " in line or line.endswith("="):
                name, _, value = line.partition("=")
                case[name.strip()] = value.strip()
    return cases


NIST = nist_decrypt_vectors()


def test_nist_vectors_are_loaded():
    # 5 plaintext x 5 AAD lengths x 5 tag lengths (96 to 128 bits), 15 cases each
    assert len(NIST) == 5 * 5 * 5 * 15
    assert any(c["fail"] for c in NIST) and any(not c["fail"] for c in NIST)


def test_nist_gcm_decrypt_vectors():
    for c in NIST:
        g = Gcm(_h(c["Key"]))
        args = (_h(c["IV"]), _h(c["AAD"]), _h(c["CT"]), _h(c["Tag"]))
        if c["fail"]:
            with pytest.raises(AuthError):
                g.decrypt(*args)
        else:
            assert g.decrypt(*args) == _h(c["PT"]), c["Count"]


@settings(max_examples=150, deadline=None)
@given(key=st.binary(min_size=16, max_size=16), iv=st.binary(min_size=12, max_size=12),
       aad=st.binary(max_size=64), n=st.integers(min_value=0, max_value=2048), tag_len=st.sampled_from([12, 16]))
def test_against_cryptography(key, iv, aad, n, tag_len):
    pt = os.urandom(n)
    ref = AESGCM(key).encrypt(iv, pt, aad)          # ct || 16-byte tag
    ct, tag = ref[:-16], ref[-16:-16 + tag_len] if tag_len < 16 else ref[-16:]
    g = Gcm(key)
    assert g.decrypt(iv, aad, ct, tag) == pt
    assert g.encrypt(iv, aad, pt, tag_len) == ct + tag


@settings(max_examples=40, deadline=None)
@given(n=st.integers(min_value=0, max_value=300), aad=st.binary(min_size=0, max_size=40))
def test_every_single_bit_flip_is_rejected(n, aad):
    key, iv = os.urandom(16), os.urandom(12)
    ct, tag = gcm_encrypt(key, iv, aad, os.urandom(n))
    g = Gcm(key)
    out = bytearray(b"\xaa" * (n + 1))
    for name in ("iv", "aad", "ct", "tag"):
        parts = {"iv": iv, "aad": aad, "ct": ct, "tag": tag}
        orig = parts[name]
        for bit in range(len(orig) * 8):
            flipped = bytearray(orig)
            flipped[bit >> 3] ^= 0x80 >> (bit & 7)
            parts[name] = bytes(flipped)
            with pytest.raises(AuthError) as e:
                g.decrypt_into(parts["iv"], parts["aad"], parts["ct"], parts["tag"], out)
            assert "wrong key" in str(e.value)
            # nothing was released: the output buffer is untouched
            assert out == b"\xaa" * (n + 1)
        parts[name] = orig


def test_wrong_key_and_wrong_auth_key_fail():
    key, iv = os.urandom(16), os.urandom(12)
    ct, tag = gcm_encrypt(key, iv, b"\x30" + bytes(16), b"hello meter")
    with pytest.raises(AuthError):
        Gcm(os.urandom(16)).decrypt(iv, b"\x30" + bytes(16), ct, tag)
    with pytest.raises(AuthError):
        Gcm(key).decrypt(iv, b"\x30" + bytes(15) + b"\x01", ct, tag)
    assert Gcm(key).decrypt(iv, b"\x30" + bytes(16), ct, tag) == b"hello meter"


def test_bad_arguments_are_value_errors():
    g = Gcm(bytes(16))
    with pytest.raises(ValueError):
        g.decrypt(bytes(8), b"", b"", bytes(16))
    with pytest.raises(ValueError):
        g.decrypt(bytes(12), b"", b"", bytes(8))
    with pytest.raises(ValueError):
        Gcm(bytes(15))


def test_equal_is_exact():
    assert loops.equal(b"abcdef", 0, b"abcdef", 0, 6)
    assert loops.equal(b"abcdeX", 0, b"abcdef", 0, 5)
    assert loops.equal(b"xxabc", 2, b"abc", 0, 3)
    for i in range(6):
        other = bytearray(b"abcdef")
        other[i] ^= 0x40
        assert not loops.equal(b"abcdef", 0, other, 0, 6)


def test_micropython_agrees_with_cryptography(run_job):
    """The same GCM code under a real MicroPython: published vectors and random cases."""
    cases, expected = [], []
    for c in NIST[::7]:
        cases.append({"key": c["Key"], "iv": c["IV"], "aad": c["AAD"], "ct": c["CT"], "tag": c["Tag"]})
        expected.append("AuthError: authentication failed: wrong key or authentication key" if c["fail"] else c["PT"])
    for n in (0, 1, 15, 16, 17, 255, 511, 512, 513, 1200, 2048):
        key, iv, aad, pt = os.urandom(16), os.urandom(12), os.urandom(n % 33), os.urandom(n)
        ct, tag = gcm_encrypt(key, iv, aad, pt, 12 if n & 1 else 16)
        cases.append({"key": key.hex(), "iv": iv.hex(), "aad": aad.hex(), "ct": ct.hex(), "tag": tag.hex()})
        expected.append(pt.hex())
        bad = bytearray(ct + tag)
        bad[n // 2] ^= 4
        cases.append({"key": key.hex(), "iv": iv.hex(), "aad": aad.hex(), "ct": bytes(bad[:n]).hex(),
                      "tag": bytes(bad[n:]).hex()})
        expected.append("AuthError: authentication failed: wrong key or authentication key")
    assert run_job({"job": "gcm_decrypt", "cases": cases}) == expected

    enc = []
    for n in (0, 5, 16, 100, 1100):
        key, iv, aad, pt = os.urandom(16), os.urandom(12), os.urandom(17), os.urandom(n)
        enc.append({"key": key.hex(), "iv": iv.hex(), "aad": aad.hex(), "pt": pt.hex(), "tag_len": 12})
    got = run_job({"job": "gcm_encrypt", "cases": enc})
    for c, g in zip(enc, got):
        ct, tag = gcm_encrypt(_h(c["key"]), _h(c["iv"]), _h(c["aad"]), _h(c["pt"]), 12)
        assert g == (ct + tag).hex()


def test_ranges_are_checked_before_any_loop_runs():
    key, iv = os.urandom(16), os.urandom(12)
    sealed = Gcm(key).encrypt(iv, b"", b"x" * 40, 12)
    g = Gcm(key)
    assert g.open_into(iv, b"", sealed, 0, 40, 12, bytearray(40)) == 40      # exactly enough room
    with pytest.raises(ValueError):
        g.open_into(iv, b"", sealed, 0, 40, 12, bytearray(39))                # output too small
    with pytest.raises(ValueError):
        g.open_into(iv, b"", sealed, 0, 41, 12, bytearray(64))                # tag beyond the buffer
    with pytest.raises(ValueError):
        g.ctr_into(iv, sealed, 10, 60, bytearray(64))                         # input beyond the buffer
