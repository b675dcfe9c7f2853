"""The whole data path: bytes in, verified telegrams and one-line problems out."""
import os

import meter
from p1dongle import memory
from p1dongle.dlms import DlmsCipher, parse_key
from p1dongle.errors import ConfigError
from p1dongle.pipeline import PROBLEM, TELEGRAM, Pipeline

import pytest

LUX = meter.LUX_TELEGRAM
KEY = meter.KEY


def run(pipe, chunks, now=0):
    events = meter.record(pipe)
    for c in chunks:
        pipe.push(c, now)
    pipe.flush(now)
    telegrams = [e[2] for e in events if e[0] == TELEGRAM]
    problems = [(e[1], e[2]) for e in events if e[0] == PROBLEM]
    return telegrams, problems


def test_luxembourg_end_to_end_in_uart_chunks():
    """A DSMR 5 telegram, encrypted as the meter does, cut into UART reads: out comes the same telegram."""
    frame = meter.frame(LUX)
    for size in (1, 16, 64, 120, 256, 4096):
        pipe = Pipeline(KEY)
        telegrams, problems = run(pipe, meter.split(frame * 3, [size]))
        assert problems == []
        assert telegrams == [LUX] * 3
    t = telegrams[0]
    assert t.startswith(b"/Lux5") and t.endswith(b"!C560\r\n")
    assert int(t[-6:-2], 16) == meter.crc16_arc(t[:t.index(b"!") + 1])
    assert pipe.telegrams == 3 and pipe.auth_failures == 0


def test_other_system_titles_auth_keys_and_lengths():
    auth = os.urandom(16)
    key = os.urandom(16)
    pipe = Pipeline(key, auth)
    # 0 to 120 lines: bodies from 34 bytes to 3.3 KB, so every BER length form (n, 81 n, 82 hi lo)
    plain = [meter.telegram(["1-0:1.8.0(%010.3f*kWh)" % i] * i, header="/Ene5\\T210-D ESMR5.0")
             for i in (0, 2, 3, 7, 40, 120)]
    frames = [meter.frame(p, key=key, auth_key=auth, title=os.urandom(8), counter=7) for p in plain]
    telegrams, problems = run(pipe, meter.split(b"".join(frames), [61]))
    assert telegrams == plain and problems == []


def test_wrong_key_says_so_in_one_line_per_frame():
    frames = [meter.frame(LUX, counter=i) for i in (1, 2)]
    pipe = Pipeline(os.urandom(16))
    telegrams, problems = run(pipe, [b"".join(frames)])
    assert telegrams == []
    assert problems == [
        (0, "authentication failed: wrong key or authentication key (%d bytes dropped)" % len(frames[0])),
        (len(frames[0]), "authentication failed: wrong key or authentication key (%d bytes dropped)" % len(frames[1])),
    ]
    assert pipe.auth_failures == 2
    assert KEY.hex() not in repr(problems).lower()


def test_wrong_auth_key_fails_authentication():
    pipe = Pipeline(KEY, bytes(16))
    telegrams, problems = run(pipe, [meter.frame(LUX)])
    assert telegrams == [] and pipe.auth_failures == 1
    assert "wrong key or authentication key" in problems[0][1]


def test_tampered_frame_is_dropped_and_the_next_still_comes_out():
    a, b, c = (meter.frame(LUX, counter=i) for i in (1, 2, 3))
    bad = bytearray(b)
    bad[500] ^= 0x01
    pipe = Pipeline(KEY)
    telegrams, problems = run(pipe, meter.split(a + bytes(bad) + c, [64]))
    assert telegrams == [LUX, LUX]
    assert problems == [(len(a), "authentication failed: wrong key or authentication key (%d bytes dropped)" % len(b))]
    assert pipe.auth_failures == 1


def test_garbage_between_frames_is_reported_and_counted():
    a, b = meter.frame(LUX, counter=1), meter.frame(LUX, counter=2)
    pipe = Pipeline(KEY)
    telegrams, problems = run(pipe, [b"\x00" * 5 + a + b"\xff\xfe" + b])
    assert telegrams == [LUX, LUX]
    assert [p[0] for p in problems] == [0, 5 + len(a)]
    assert problems[0][1].startswith("5 bytes dropped: garbage")
    assert "dropped bytes 7 (garbage 7)" in pipe.status()


def test_frame_counter_going_backwards_is_refused():
    frames = [meter.frame(LUX, counter=c) for c in (5, 6, 6, 4, 7)]
    pipe = Pipeline(KEY)
    telegrams, problems = run(pipe, [b"".join(frames)])
    assert len(telegrams) == 4     # 5, 6, 6 again (a repeat carries the same reading), 7
    assert problems == [(sum(map(len, frames[:3])),
                         "frame counter 4 went backwards (last 6): replayed frame dropped (%d bytes dropped)" % len(frames[3]))]
    assert pipe.replays == 1
    # configured otherwise
    telegrams, problems = run(Pipeline(KEY, replay_check=False), [b"".join(frames)])
    assert len(telegrams) == 5 and problems == []


def test_replay_check_is_per_meter():
    a = meter.frame(LUX, counter=100, title=b"SAG\x00\x00\x00\x00\x01")
    b = meter.frame(LUX, counter=3, title=b"SAG\x00\x00\x00\x00\x02")
    telegrams, problems = run(Pipeline(KEY), [a + b])
    assert len(telegrams) == 2 and problems == []


def test_bad_crc_inside_a_good_frame():
    bad = bytearray(LUX)
    bad[50] ^= 0x02                     # the meter encrypted a corrupt telegram
    frame = meter.frame(bytes(bad))
    pipe = Pipeline(KEY)
    telegrams, problems = run(pipe, [frame + meter.frame(LUX, counter=2)])
    assert telegrams == [LUX]
    assert len(problems) == 1 and problems[0][0] == 0
    assert problems[0][1].startswith("decrypted telegram: CRC mismatch")
    assert pipe.crc_failures == 1


def test_decrypted_payload_that_is_not_dsmr():
    pipe = Pipeline(KEY)
    telegrams, problems = run(pipe, [meter.frame(b"\x0f\x00\x00\x00\x01 not a telegram")])
    assert telegrams == [] and pipe.bad_frames == 1
    assert problems[0][1].startswith("decrypted frame: data-notification")


def test_plain_telegrams_pass_through_with_or_without_key():
    stream = meter.NL_TELEGRAM + meter.DSMR22_TELEGRAM
    for key in (None, KEY):
        pipe = Pipeline(key)
        telegrams, problems = run(pipe, [stream])
        assert telegrams == [meter.NL_TELEGRAM, meter.DSMR22_TELEGRAM] and problems == []
        assert pipe.no_crc == 1


def test_plain_telegram_with_bad_crc_is_dropped():
    bad = bytearray(meter.NL_TELEGRAM)
    bad[30] ^= 0x01
    pipe = Pipeline(None)
    telegrams, problems = run(pipe, [bytes(bad) + meter.NL_TELEGRAM])
    assert telegrams == [meter.NL_TELEGRAM]
    assert len(problems) == 1 and problems[0][1].startswith("CRC mismatch")
    assert pipe.crc_failures == 1


def test_encrypted_frame_without_key():
    pipe = Pipeline(None)
    frame = meter.frame(LUX)
    telegrams, problems = run(pipe, [frame])
    assert telegrams == [] and problems == [(0, "encrypted frame, but no key is configured (%d bytes dropped)" % len(frame))]
    assert pipe.no_key == 1 and pipe.bad_frames == 0


def test_status_line():
    pipe = Pipeline(KEY)
    run(pipe, [b"xx" + meter.frame(LUX)])
    assert pipe.status() == ("telegrams 1, tag failures 0, CRC failures 0, replays 0, bad frames 0, "
                             "dropped bytes 2 (garbage 2), overflow 0")


def test_parse_key_messages_never_show_the_key():
    assert parse_key("00112233445566778899aabbccddeeff") == meter.LUX_AUTH_KEY
    assert parse_key("00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF") == meter.LUX_AUTH_KEY
    for bad in ("0011", "00112233445566778899aabbccddeefg", "00112233445566778899aabbccddeeff00"):
        with pytest.raises(ConfigError) as e:
            parse_key(bad)
        assert bad not in str(e.value) and "32 hex digits" in str(e.value)


def test_cipher_rejects_bad_key_sizes():
    with pytest.raises(ConfigError):
        DlmsCipher(bytes(15))


def test_same_results_under_micropython(run_job):
    """One messy stream through the pipeline under CPython and MicroPython: identical events."""
    a, b, c, d = (meter.frame(LUX, counter=i) for i in (1, 2, 3, 4))
    bad = bytearray(c)
    bad[-3] ^= 0x10
    stream = (b"\x00junk" + a + os.urandom(300) + b[:200] + b + bytes(bad) + meter.NL_TELEGRAM
              + meter.frame(LUX, counter=1) + d + meter.DSMR22_TELEGRAM + b"tail")
    result = run_job({"job": "pipeline", "key": KEY.hex(), "stream": stream.hex(), "chunks": [1, 64, 7, 300, 4096]})
    telegrams = [bytes.fromhex(e[2]) for e in result["events"] if e[0] == "telegram"]
    assert telegrams == [LUX, LUX, meter.NL_TELEGRAM, LUX, meter.DSMR22_TELEGRAM]
    problems = [e[2] for e in result["events"] if e[0] == "problem"]
    assert any("authentication failed" in p for p in problems)
    assert any("went backwards" in p for p in problems)
    assert any("truncated" in p for p in problems)
    assert result["counters"]["pos"] == len(stream)
    assert result["counters"]["auth_failures"] == 1 and result["counters"]["replays"] == 1


def test_raw_frames_are_the_genuine_ones_each_just_before_its_telegram():
    from p1dongle.pipeline import FRAME
    good, older = meter.frame(LUX, counter=2), meter.frame(LUX, counter=1)
    bad = bytearray(meter.frame(LUX, counter=3))
    bad[-1] ^= 1
    pipe = Pipeline(KEY, raw_frames=True)
    events = meter.record(pipe)
    pipe.push(good + older + bytes(bad), 0)
    pipe.flush(0)
    assert [(e[0], e[2]) for e in events if e[0] != PROBLEM] == [(FRAME, good), (TELEGRAM, LUX)]
    assert pipe.replays == 1 and pipe.auth_failures == 1
    # without a key nothing can be checked: every frame goes to the raw port
    pipe = Pipeline(None, raw_frames=True)
    events = meter.record(pipe)
    pipe.push(good + older, 0)
    assert [e[2] for e in events if e[0] == FRAME] == [good, older]


# -- issue 22: frames that cannot be proved must not cost good ones ------------------------------

def forged(sc, counter=0xFFFFFFFF, title=meter.SYSTEM_TITLE, size=120):
    """A DB frame anyone can write without the key: a system title, a frame counter, security byte
    sc and bytes that decrypt to noise (with a 0x30 byte a made-up tag that only key-only mode
    leaves unchecked)."""
    body = bytes([sc]) + counter.to_bytes(4, "big") + bytes((i * 37 + 11) & 0xFF for i in range(size))
    return b"\xdb\x08" + title + meter.ber_length(len(body)) + body


def on_twin(run_job, stream, key, **job):
    """The stream through the pipeline under CPython and every MicroPython twin (run_job asserts
    they agree): (telegrams, [(offset, problem)], counters)."""
    result = run_job(dict(job, job="pipeline", key=key.hex() if key else None, stream=stream.hex(),
                          chunks=[64, 7]))
    telegrams = [(e[1], bytes.fromhex(e[2])) for e in result["events"] if e[0] == "telegram"]
    problems = [(e[1], e[2]) for e in result["events"] if e[0] == "problem"]
    return telegrams, problems, result["counters"]


@pytest.mark.parametrize("auth_key", [meter.LUX_AUTH_KEY, None], ids=["gcm", "key-only"])
def test_a_forged_frame_cannot_lock_the_meter_out(run_job, auth_key):
    """A frame nobody proved (tagless 0x20, or any frame in key-only mode) with the meter's own
    system title and counter FFFFFFFF, or another title: the meter's next frames still come out,
    and an old frame played after it is still refused. A counter counts only once its frame was
    accepted."""
    first, nxt, old, last = (meter.frame(LUX, counter=c) for c in (5, 6, 4, 7))
    lies = forged(0x20) + forged(0x30)
    other = forged(0x20, counter=0, title=b"XYZ\x00\x00\x00\x00\x09")
    stream = first + lies + nxt + other + old + last
    pipe = Pipeline(KEY, auth_key)
    telegrams, problems = run(pipe, meter.split(stream, [64, 7]))
    assert telegrams == [LUX] * 3, problems
    assert pipe.replays == 1, problems
    assert [p for p in problems if "went backwards" in p[1]] == [
        (len(first + lies + nxt + other), "frame counter 4 went backwards (last 6): replayed frame dropped (%d bytes dropped)"
         % len(old))]
    assert pipe.cipher.frame_counter == 7
    got, problems, counters = on_twin(run_job, stream, KEY, key_only=auth_key is None)
    assert [g[0] for g in got] == [0, len(first + lies), len(stream) - len(last)] and counters["replays"] == 1


def test_without_a_key_a_db_in_noise_swallows_no_telegram(run_job):
    """A plain DSMR dongle (no key): line noise that reads as a DB frame header whose length covers
    the telegrams behind it. The frame cannot be opened, so like a frame whose tag failed it is
    rescanned: both telegrams come out, at their offsets."""
    noise = b"\xdb\x08" + b"GARBAGE!" + b"\x82\x01\x80" + b"\x30" + b"\x00\x00\x00\x01"
    stream = noise + meter.NL_TELEGRAM + meter.DSMR22_TELEGRAM + b"\x00" * 400
    pipe = Pipeline(None)
    telegrams, problems = run(pipe, meter.split(stream, [64]))
    assert telegrams == [meter.NL_TELEGRAM, meter.DSMR22_TELEGRAM], problems
    assert pipe.no_key == 1 and problems[0][0] == 0
    got, problems, _ = on_twin(run_job, stream, None)
    t0 = len(noise)
    assert got == [(t0, meter.NL_TELEGRAM), (t0 + len(meter.NL_TELEGRAM), meter.DSMR22_TELEGRAM)]


@pytest.mark.parametrize("plain", [b"/XYZ5\x8f\x00\xfe ... noise ... \x01!\r\n", meter.DSMR22_TELEGRAM],
                         ids=["noise", "dsmr22"])
def test_a_decrypted_telegram_must_carry_its_crc(run_job, plain):
    """Key-only mode: a frame whose plaintext starts with '/' and ends with '!' (one in 65536 with
    a wrong key or a corrupt frame) is no DSMR 2/3 telegram: only a CRC proves decrypted text, and
    meters that encrypt speak DSMR 4+, which always has one. The good frame behind it comes out."""
    bad, good = meter.frame(plain, counter=1), meter.frame(LUX, counter=2)
    pipe = Pipeline(KEY, None)
    telegrams, problems = run(pipe, [bad + good])
    assert telegrams == [LUX] and pipe.no_crc == 0
    assert problems[0][0] == 0 and "CRC" in problems[0][1], problems
    got, problems, counters = on_twin(run_job, bad + good, KEY, key_only=True)
    assert got == [(len(bad), LUX)] and counters["no_crc"] == 0


@pytest.mark.parametrize("plain", [False, True])
def test_a_frame_that_finds_no_memory_costs_itself_alone(monkeypatch, plain):
    """A MemoryError while a frame is read costs that frame and one line: the next one still
    comes out, and the count says it."""
    import p1dongle.pipeline as pipeline_module
    failures = [1]

    def short_once(make):
        def made(*args):
            if failures[0]:
                failures[0] -= 1
                raise MemoryError("memory allocation failed, allocating 32 bytes")
            return make(*args)
        return made
    if plain:
        monkeypatch.setattr(pipeline_module, "canonical", short_once(pipeline_module.canonical))
        stream = LUX * 2
    else:
        monkeypatch.setattr(DlmsCipher, "decrypt", short_once(DlmsCipher.decrypt))
        stream = meter.frame(LUX, counter=1) + meter.frame(LUX, counter=2)
    lost = memory.count()
    telegrams, problems = run(Pipeline(KEY), [stream])
    assert telegrams == [LUX] and memory.count() == lost + 1
    assert [p for _, p in problems] == ["out of memory: the frame at hand is dropped (see memory errors in the status)"]


@pytest.mark.parametrize("shared", [False, True])
def test_a_telegram_is_handed_on_from_where_the_frame_was_read(shared):
    """shared=True (the app): the telegram is a view of the buffer its frame was decrypted in (or
    cut out of), no block of its own; otherwise bytes of its own, that a tool may keep."""
    got = []
    pipe = Pipeline(KEY, shared=shared)
    pipe.emit = lambda kind, pos, what, crc: got.append((what, bytes(what))) if kind == TELEGRAM else None
    pipe.push(meter.frame(LUX, counter=1) + LUX + meter.frame(LUX, counter=2), 0)
    pipe.flush(0)
    assert [copy for _, copy in got] == [LUX] * 3
    if shared:
        assert all(isinstance(what, memoryview) for what, _ in got)
        assert got[0][0].obj is got[1][0].obj is pipe.frames.buf     # the assembler's, reused
    else:
        assert all(isinstance(what, bytes) for what, _ in got)

def _ended(telegram, line_end, digits=4):
    # a DSMR telegram's lines ended with line_end, its CRC over what is then sent, written with
    # `digits` hex digits (3: a meter that drops a leading zero)
    body = telegram[:telegram.rindex(b"!") + 1].replace(b"\r\n", line_end)
    crc = meter.crc16_arc(body)
    return body + (b"%0*X" % (digits, crc)) + line_end


def _three_digit_crc():
    # the NL telegram with its gas reading moved on until its CRC has a leading zero
    for i in range(20000):
        t = _ended(meter.NL_TELEGRAM.replace(b"(00000.107*m3)", b"(%09.3f*m3)" % (0.107 + i / 1000)), b"\r\n")
        if t[-6:-5] == b"0":
            return t[:-6] + t[-5:], t
    raise AssertionError("no CRC below 0x1000")


def test_lf_line_ends_and_a_three_digit_crc_are_read_and_passed_on_in_dsmr_form(run_job):
    """Some meters and readers end lines with LF alone (the CRC is over what was sent), a heat
    meter writes its CRC with 3 digits: once the CRC checks, the telegram is passed on in DSMR's
    form (CR LF, a 4-digit CRC), which Home Assistant's reader wants; a flipped bit in one is
    still refused, and a CRC-less one with LF (no proof at all) too."""
    from dsmr_parser.clients.telegram_buffer import TelegramBuffer
    lf = _ended(meter.NL_TELEGRAM, b"\n")
    three, three_canonical = _three_digit_crc()
    bad = bytearray(lf)
    bad[100] ^= 0x01
    no_crc_lf = meter.DSMR22_TELEGRAM.replace(b"\r\n", b"\n")
    stream = lf + bytes(bad) + three + no_crc_lf + meter.NL_TELEGRAM
    telegrams, problems = run(Pipeline(None), meter.split(stream, [64, 7]))
    assert telegrams == [meter.NL_TELEGRAM, three_canonical, meter.NL_TELEGRAM], problems
    at = len(lf + bad + three)
    assert [p for _, p in problems if "CRC mismatch" in p] and [o for o, _ in problems if o == at], problems
    buf = TelegramBuffer()                  # Home Assistant's DSMR reader finds each of them
    buf.append(b"".join(telegrams).decode())
    assert len(list(buf.get_all())) == 3
    got, _, _ = on_twin(run_job, stream, None)
    assert [t for _, t in got] == telegrams
