"""Frame assembler and ring buffer: framing by length fields, resync, drop accounting."""
import os
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import meter
from p1dongle import frames as F
from p1dongle.ringbuf import RingBuffer

LUX = meter.LUX_TELEGRAM


def collect(fa, chunks, now=0, good=None, flush=True):
    """Feed chunks, pop everything. A consumer that knows the good frames rejects the rest,
    like the real pipeline does when a tag or CRC fails. Returns (frames, drops)."""
    out, drops = [], []

    def drain():
        while True:
            ev = fa.pop(now)
            if ev == F.NONE:
                return
            if ev == F.DROPPED:
                drops.append((fa.drop_pos, fa.drop_len, F.REASONS[fa.drop_reason]))
                continue
            data = bytes(fa.frame)
            if good is not None and data not in good:
                fa.reject()
                continue
            out.append((ev, fa.frame_pos, data))

    for chunk in chunks:
        mv = memoryview(chunk)
        while len(mv):
            n = fa.feed(mv)
            mv = mv[n:]
            drain()
    drain()
    if flush:
        fa.flush()
        drain()
    return out, drops


def dlms_frames(n, size=LUX, **kw):
    return [meter.frame(size, counter=i + 1, **kw) for i in range(n)]


# -- ring buffer ---------------------------------------------------------------------------------

def test_ring_wraps_and_finds_across_the_end():
    r = RingBuffer(16)
    assert r.write(b"0123456789") == 10
    r.discard(8)
    assert r.write(b"abcdefghij") == 10          # wraps: physical 10..15, then 0..3
    assert r.count == 12
    assert bytes(r[i] for i in range(12)) == b"89abcdefghij"
    assert r.find(b"a") == 2 and r.find(b"i") == 10 and r.find(b"j") == 11
    assert r.find(b"i", 0, 10) == -1 and r.find(b"8", 1) == -1
    dst = bytearray(12)
    r.copy_to(1, 11, dst)
    assert dst[:11] == b"9abcdefghij"


def test_ring_overflow_is_counted_not_raised():
    r = RingBuffer(8)
    assert r.write(b"12345") == 5
    assert r.write(b"6789abc") == 3
    assert r.overflow == 4
    assert r.free() == 0
    assert r.write(b"x") == 0 and r.overflow == 5


# -- DLMS frames ---------------------------------------------------------------------------------

@pytest.mark.parametrize("form", [1, 2, 3])
def test_all_ber_length_forms(form):
    # short form needs a length below 128: a short telegram
    plain = meter.telegram(["1-0:1.7.0(00.231*kW)"])
    assert len(plain) + 17 < 128
    frames = [meter.frame(plain, counter=i, form=form) for i in (1, 2)]
    assert frames[0][10] == {1: len(plain) + 17, 2: 0x81, 3: 0x82}[form]
    got, drops = collect(F.FrameAssembler(), [b"".join(frames)])
    assert [g[2] for g in got] == frames and drops == []


def test_back_to_back_frames_in_every_chunk_size():
    frames = dlms_frames(3) + [meter.NL_TELEGRAM] + dlms_frames(2)
    stream = b"".join(frames)
    for size in (1, 2, 3, 7, 64, 100, 1000, 4096):
        got, drops = collect(F.FrameAssembler(), meter.split(stream, [size]))
        assert [g[2] for g in got] == frames, size
        assert [g[0] for g in got] == [F.DLMS] * 3 + [F.DSMR] + [F.DLMS] * 2
        assert drops == []
        assert got[1][1] == len(frames[0])          # stream offsets


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_random_splits_and_garbage_lose_no_frame(data):
    rnd = random.Random(data.draw(st.integers(0, 2**32)))
    pieces, good, garbage = [], [], 0
    for i in range(data.draw(st.integers(1, 6))):
        g = rnd.randbytes(rnd.choice([0, 0, 1, 5, 50, 700]))
        garbage += len(g)
        pieces.append(g)
        if rnd.random() < 0.3:
            f = meter.NL_TELEGRAM if rnd.random() < 0.5 else meter.DSMR22_TELEGRAM
        else:
            f = meter.frame(LUX[: rnd.randint(0, len(LUX))], counter=i, form=rnd.choice([None, 3]))
        pieces.append(f)
        good.append(f)
    tail = rnd.randbytes(rnd.choice([0, 3, 300]))
    pieces.append(tail)
    garbage += len(tail)
    stream = b"".join(pieces)
    sizes = data.draw(st.lists(st.integers(1, 4096), min_size=1, max_size=5))
    fa = F.FrameAssembler()
    got, drops = collect(fa, meter.split(stream, sizes), good=set(good))
    assert [g[2] for g in got] == good
    # every byte is either in a frame handed out or dropped, once
    assert sum(fa.dropped) == garbage
    assert sum(d[1] for d in drops) == garbage
    assert fa.pos == len(stream)


def test_garbage_before_between_after_is_counted_with_offsets():
    a, b = dlms_frames(2)
    stream = b"\x00\x01noise" + a + b"\xff" * 10 + b + b"zz"
    got, drops = collect(F.FrameAssembler(), [stream])
    assert [g[2] for g in got] == [a, b]
    assert drops == [(0, 7, "garbage"), (7 + len(a), 10, "garbage"), (17 + len(a) + len(b), 2, "garbage")]


def test_truncated_frame_then_good_frame():
    a, b, c = dlms_frames(3)
    stream = a[:400] + b + c
    fa = F.FrameAssembler()
    got, drops = collect(fa, meter.split(stream, [64]), good={a, b, c})
    assert [g[2] for g in got] == [b, c]
    assert drops == [(0, 400, "truncated")]
    assert fa.dropped[F.TRUNCATED] == 400 and sum(fa.dropped) == 400


def test_truncated_plain_telegram_then_good_one():
    t = meter.NL_TELEGRAM
    stream = t[:300] + t + LUX
    got, drops = collect(F.FrameAssembler(), meter.split(stream, [64]))
    assert [g[2] for g in got] == [t, LUX]
    assert drops == [(0, 300, "truncated")]


def test_plain_telegram_cut_by_a_dlms_frame():
    f = meter.frame(LUX)
    stream = LUX[:500] + f
    got, drops = collect(F.FrameAssembler(), [stream])
    assert [g[2] for g in got] == [f]
    assert drops == [(0, 500, "truncated")]


def test_bogus_length_in_garbage_does_not_swallow_good_frames():
    # A plausible header claiming 3000 bytes, followed by good frames that fit inside that length.
    bogus = b"\xdb\x08" + b"GARBAGE!" + b"\x82\x0b\xb8" + b"\x30" + b"\x00\x00\x00\x01"
    frames = dlms_frames(2) + [meter.NL_TELEGRAM]
    stream = bogus + b"".join(frames) + os.urandom(3000)
    fa = F.FrameAssembler()
    got, drops = collect(fa, meter.split(stream, [64]), good=set(frames))
    assert [g[2] for g in got] == frames
    assert drops[0][:2] == (0, len(bogus))
    assert drops[0][2] in ("rejected", "truncated")


def test_bogus_length_is_resolved_at_end_of_input():
    bogus = b"\xdb\x08" + b"GARBAGE!" + b"\x82\x0f\xa0" + b"\x30" + b"\x00\x00\x00\x01"
    frames = dlms_frames(2)
    got, drops = collect(F.FrameAssembler(), [bogus + b"".join(frames)])
    assert [g[2] for g in got] == frames
    assert drops == [(0, len(bogus), "truncated")]


def test_oversized_frame_is_dropped_as_too_long():
    big = meter.frame(LUX * 4)                     # ~4.4 KB
    small = meter.frame(LUX, counter=9)
    fa = F.FrameAssembler(max_frame=2048)
    got, drops = collect(fa, meter.split(big + small, [64]))
    assert [g[2] for g in got] == [small]
    assert drops == [(0, len(big), "too long")]
    assert fa.dropped[F.TOO_LONG] == len(big)


def test_plain_telegram_without_end_is_too_long():
    junk = b"/ABC5 never ends\r\n" + b"1-0:1.8.0(000001.000*kWh)\r\n" * 100
    fa = F.FrameAssembler(max_frame=1024)
    got, drops = collect(fa, [junk + meter.NL_TELEGRAM])
    assert [g[2] for g in got] == [meter.NL_TELEGRAM]
    assert drops == [(0, len(junk), "too long")]


def test_partial_frame_times_out():
    a, b = dlms_frames(2)
    fa = F.FrameAssembler(timeout_ms=1000)
    got, drops = collect(fa, [a[:200]], now=0, flush=False)
    assert got == [] and drops == []
    got, drops = collect(fa, [], now=900, flush=False)
    assert got == [] and drops == []               # not old enough yet
    got, drops = collect(fa, [], now=2500, flush=False)
    assert drops == [] and fa.dropped[F.TIMEOUT] == 200   # counted now, reported when the range ends
    got, drops = collect(fa, [b], now=2600)
    assert [g[2] for g in got] == [b]
    assert drops == [(0, 200, "timeout")]


def test_timeout_uses_a_wrapping_clock_difference():
    fa = F.FrameAssembler(timeout_ms=1000)
    a = meter.frame(LUX)
    collect(fa, [a[:100]], now=(1 << 30) - 10, flush=False)
    collect(fa, [], now=500, flush=False)           # a wrapped ticks_ms on MicroPython would be small here
    # CPython's ticks never wrap, so 500 is "before" the start: nothing times out
    assert fa.dropped[F.TIMEOUT] == 0


def test_rejected_frame_is_counted_as_rejected():
    a, b = dlms_frames(2)
    fa = F.FrameAssembler()
    got, drops = collect(fa, [a + b], good={b})
    assert [g[2] for g in got] == [b]
    assert drops == [(0, len(a), "rejected")]


def test_interleaved_plain_and_encrypted_with_one_byte_chunks():
    frames = [meter.NL_TELEGRAM, meter.frame(LUX), meter.DSMR22_TELEGRAM, meter.frame(LUX, counter=2), LUX]
    stream = b"".join(frames)
    got, _ = collect(F.FrameAssembler(), meter.split(stream, [1]))
    assert [g[2] for g in got] == frames


def test_lowercase_crc_and_no_crc_telegrams_are_cut():
    low = meter.telegram(["1-0:1.8.1(000004.426*kWh)"], header="/ISk5\\2MT382-1000", lower=True)
    got, drops = collect(F.FrameAssembler(), [low + meter.DSMR22_TELEGRAM])
    assert [g[2] for g in got] == [low, meter.DSMR22_TELEGRAM] and drops == []


def test_a_slash_without_manufacturer_id_is_garbage():
    stream = b"1/2 /x/" + meter.NL_TELEGRAM
    got, drops = collect(F.FrameAssembler(), [stream])
    assert [g[2] for g in got] == [meter.NL_TELEGRAM]
    assert drops == [(0, 7, "garbage")]


def test_frames_are_copied_out_once_and_never_shared():
    a, b = dlms_frames(2)
    fa = F.FrameAssembler()
    fa.feed(a + b)
    assert fa.pop(0) == F.DLMS
    first = fa.frame
    assert isinstance(first, memoryview) and bytes(first) == a
    assert fa.pop(0) == F.DLMS and bytes(fa.frame) == b


def test_ring_full_counts_overflow_and_keeps_going():
    a, b = dlms_frames(2)
    fa = F.FrameAssembler(max_frame=2048, ring_size=2048)
    assert fa.feed(a + a) == 2048                  # the caller did not pop in time
    assert fa.ring.overflow == 2 * len(a) - 2048
    got, drops = collect(fa, [b], good={a, b})
    assert [g[2] for g in got] == [a, b]
    assert drops == [(len(a), 2048 - len(a), "truncated")]   # the part of the second a that fitted


# -- M-Bus ---------------------------------------------------------------------------------------

def mbus_frame(data, ci=0x10):
    body = bytes([0x53, 0xFF, ci, 0x01, 0x67]) + data
    return bytes([0x68, len(body), len(body), 0x68]) + body + bytes([sum(body) & 0xFF, 0x16])


@pytest.mark.parametrize("gap", [0, 1, 40])
def test_the_l_mod_256_reading_never_swallows_the_frames_behind(gap):
    """A short M-Bus frame that lost its stop byte, some noise, then good frames. The L + 256
    reading (for meters that write L mod 256) would end on a good frame's stop byte, and the short
    frame's checksum byte is such that its sum fits: a header inside it says it is no long frame."""
    body = bytes([0x53, 0xFF, 0x10, 0x01, 0x67]) + b"short"
    noise = bytes(range(0x20, 0x20 + gap))
    long_end = len(body) + 256 + 6
    first = mbus_frame(bytes((i * 7) & 0xFF for i in range(long_end - len(body) - 5 - gap - 11)))
    cs = -(sum(body) + sum(noise) + sum(first[:4])) & 0xFF
    short = bytes([0x68, len(body), len(body), 0x68]) + body + bytes([cs])
    assert len(short + noise + first) == long_end and first[-1] == 0x16
    assert sum((short + noise + first)[4:-2]) & 0xFF == first[-2]          # the long reading checks out
    good = [first, mbus_frame(b"next", ci=0x11)]
    stream = short + noise + b"".join(good)
    for size in (1, 64, 4096):
        got, drops = collect(F.FrameAssembler(), meter.split(stream, [size]))
        assert [g[2] for g in got] == good, size
        assert got[0][1] == len(short + noise)
        assert drops == [(0, len(short + noise), "garbage")]


def test_a_long_m_bus_frame_written_as_l_mod_256_is_read():
    data = bytes((i * 13 + 5) & 0xFF for i in range(300))
    body = bytes([0x53, 0xFF, 0x10, 0x01, 0x67]) + data
    quirk = bytes([0x68, len(body) & 0xFF, len(body) & 0xFF, 0x68]) + body + bytes([sum(body) & 0xFF, 0x16])
    nxt = mbus_frame(b"next", ci=0x11)
    got, drops = collect(F.FrameAssembler(), meter.split(quirk + nxt, [64]))
    assert [g[2] for g in got] == [quirk, nxt] and drops == []


def test_one_ber_length_reader_for_frames_strings_and_blocks():
    """frames.ber_length, which the DB frame scanner, dlms.header, A-XDR and the block transfer
    all use: n | 81 n | 82 hi lo; -1 while the field is cut short, -2 for any other form (80: the
    indefinite form, 83 and up: longer than any frame)."""
    from p1dongle.frames import ber_length
    assert ber_length(b"\x05", 0, 1) == 5 * 4 + 1 and ber_length(b"\x7f", 0, 1) == 127 * 4 + 1
    assert ber_length(b"\x00\x81\xc8", 1, 3) == 200 * 4 + 2
    assert ber_length(b"\x82\x01\x04", 0, 3) == 260 * 4 + 3
    assert ber_length(b"\x82\x01", 0, 2) == -1 and ber_length(b"\x81", 0, 1) == -1 and ber_length(b"", 0, 0) == -1
    assert ber_length(b"\x80\x00", 0, 2) == -2 and ber_length(b"\x83\x00\x00\x01", 0, 4) == -2
