# The link layer (link.py): M-Bus segments, HDLC segments and general block transfer joined
# back into one APDU, from frames as frames.py cuts them out of the stream.
#
# Input: 1 byte for the tail (below), then records: <h> <n: 2 bytes> <n bytes>, each made into a
# link frame whose checksums are right (so that the fuzzer's bytes reach link.py, not only the
# checksum checks in front of it):
#   h bit 0 = 0  M-Bus long frame 68 n n 68 <bytes: C A CI ...> <checksum> 16
#   h bit 0 = 1  HDLC frame: format A0 (bit 1 of h: 08, more segments follow), then the bytes as
#                addresses and control (read as frames.py reads them), HCS, the rest as the
#                information field, FCS; bit 7 of h: it shares its opening flag with the frame
#                before
# The stream is cut by frames.FrameAssembler and each M-Bus or HDLC frame is added to a
# link.Reassembler as the pipeline adds it (block transfer when the APDU starts with E0); what
# looks like a DB frame or a telegram inside is rescanned (reject()), as the pipeline does with
# one that fails its tag or CRC.
# Oracles:
#   - FrameError alone (link.py's way to say an APDU was dropped)
#   - an APDU that comes out is the data of the frames that carried it, joined: the M-Bus data
#     or HDLC information fields of the last frames (the first one's LLC header left out)
#   - nothing good is lost: a push in link frames appended after the records (the byte picks
#     one: M-Bus in 2 segments, HDLC in 3 segments, HDLC in one frame, block transfer) comes out
#     whole, exactly once (a refused M-Bus frame is rescanned, as the pipeline does: see run())
import austria
import seeds as corpus
from common import Finding, expect
from p1dongle.errors import FrameError
from p1dongle.frames import DLMS, DSMR, HDLC, MBUS, NONE, FrameAssembler
from p1dongle.link import Reassembler

DECLARED = ()
MAX_LEN = 4096
_MAX = 4096          # the pipeline's default max_frame: the assembler's and the APDU's limit

_APDU = austria.glo(austria.notification(austria.NETZNOE_LIKE), counter=corpus.HIGH)
TAILS = (
    ("mbus-2", austria.mbus(_APDU), _APDU),
    ("hdlc-3", austria.hdlc(_APDU, size=110), _APDU),
    ("hdlc-1", austria.hdlc(_APDU, size=1000), _APDU),
    ("hdlc-blocks", b"".join(austria.hdlc(b) for b in austria.block_transfer(_APDU, 90)), _APDU),
)


def crc_x25(data):
    """CRC-16/X-25 (HDLC's HCS and FCS), written from the definition."""
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8408 if crc & 1 else crc >> 1
    return crc ^ 0xFFFF


def mbus(body):
    n = len(body) & 0xFF                # L mod 256 for a longer body, as some Sagemcom meters write it
    return bytes([0x68, n, n, 0x68]) + body + bytes([sum(body) & 0xFF, 0x16])


def hdlc(body, more, shared):
    # addresses and control as frames.py reads them: up to 4 bytes each, the last with bit 0
    i = 0
    for _ in range(2):
        k = 0
        while i < len(body) and not body[i] & 1 and k < 3:
            i += 1
            k += 1
        i += 1
    head, info = body[:i + 1], body[i + 1:]
    size = 2 + len(head) + 2 + len(info) + 2
    fmt = bytes([0xA0 | (0x08 if more else 0) | (size >> 8) & 0x07, size & 0xFF])
    hcs = crc_x25(fmt + head)
    frame = fmt + head + bytes([hcs & 0xFF, hcs >> 8]) + info
    fcs = crc_x25(frame)
    return (b"" if shared else b"\x7e") + frame + bytes([fcs & 0xFF, fcs >> 8, 0x7E])


def build(records):
    out = []
    i = 0
    while i + 3 <= len(records):
        h, n = records[i], ((records[i + 1] << 8) | records[i + 2]) & 0xFFF
        body = records[i + 3:i + 3 + n]
        i += 3 + n
        if h & 1:
            out.append(hdlc(body, h & 2, h & 0x80 and out and out[-1][-1:] == b"\x7e"))
        else:
            out.append(mbus(body))
    return b"".join(out)


_spans = []         # (start, end) of the M-Bus frames the last run() took as segments


def run(stream, genuine=None):
    """[(offset, APDU)] of what the Reassembler gives for the stream, each checked against the
    frames that carried it. As the pipeline does, an M-Bus frame that the link layer refuses, or
    that ends an APDU other than the genuine one (the pipeline refuses such an APDU downstream: a
    tag, a layout), is rescanned: its 8-bit checksum does not prove where it ends."""
    fa = FrameAssembler(_MAX)
    link = Reassembler(_MAX)
    del _spans[:]
    out = []
    parts = []                          # the data of the frames of the APDU being collected
    pos = 0
    i = 0
    n = len(stream)
    while True:
        took = fa.feed(stream, i, n) if i < n else 0
        i += took
        if i >= n:
            fa.flush()
        kind = fa.pop(0)
        if kind == NONE:
            if i >= n or not took:
                return out
            continue
        if kind in (DLMS, DSMR):
            fa.reject()             # not a link frame: what a pipeline does with one that fails its check
            continue
        if kind not in (MBUS, HDLC):
            continue
        frame = bytes(fa.frame)
        try:
            got = link.mbus(fa.buf, fa.frame_len) if kind == MBUS else link.hdlc(fa.buf, fa.frame_len)
        except FrameError:
            parts = []
            if kind == MBUS:
                fa.reject()
            continue
        if link.fresh:
            parts = []
            pos = fa.frame_pos
        if kind == MBUS:
            _spans.append((fa.frame_pos, fa.frame_pos + len(frame)))
        parts.append(_data(frame, kind))
        if got < 0:
            continue
        apdu = bytes(link.buf[:got])
        _carried(apdu, parts)
        parts = []
        if kind == MBUS and genuine is not None and apdu != genuine:
            fa.reject()
            continue
        if apdu[:1] == b"\xe0":
            try:
                got = link.block_transfer(link.buf, got)
            except FrameError:
                continue
            if got < 0:
                continue
            apdu = bytes(link.block[:got])
        out.append((pos, apdu))


def _data(frame, kind):
    if kind == MBUS:
        return frame[9:-2]
    i = 3
    for _ in range(2):
        while not frame[i] & 1:
            i += 1
        i += 1
    return frame[i + 3:-3]


def _carried(apdu, parts):
    joined = b"".join(parts)
    ok = apdu == joined or (apdu == joined[3:] and joined[:1] == b"\xe6")
    expect(ok, "joined", "an APDU of %d bytes that is not the data of its %d frames (%d bytes) joined"
           % (len(apdu), len(parts), len(joined)))


_expected = {}


def check(data):
    if len(data) < 1:
        return
    name, tail, apdu = TAILS[data[0] % len(TAILS)]
    if name not in _expected:
        _expected[name] = run(tail)
        if [a for _, a in _expected[name]] != [apdu]:
            raise Finding("tail", "the %s push alone gives %d APDUs, not itself" % (name, len(_expected[name])))
    stream = build(data[1:])
    got = [(pos - len(stream), a) for pos, a in run(stream + tail, apdu) if pos >= len(stream)]
    if any(start < len(stream) < end for start, end in _spans):
        # An M-Bus frame of the records, its 8-bit checksum passed, that reaches into the push and
        # was taken as a segment (so not refused): the push's first bytes went with it. A stream
        # cut by length fields cannot tell such a frame from a real one until a later segment
        # fails, when the bytes are gone (README: an 8-bit checksum is what M-Bus has); not a loss
        # this oracle can ask the link layer to prevent.
        return
    expect(got == _expected[name], "lost", "the %s push after the frames gave %d APDUs (%s), alone itself"
           % (name, len(got), ", ".join("%d bytes at %d" % (len(a), p) for p, a in got)), name)


def seeds():
    """The link frames of the streams in seeds.captures(), as records."""
    out = []
    for k, c in enumerate(corpus.captures()):
        if c.stream[:1] not in (b"\x68", b"\x7e"):
            continue
        out.append(bytes([k % len(TAILS)]) + _records(c.stream))
    return [s for s in out if len(s) > 1]


def _records(stream):
    # a stream's M-Bus and HDLC frames (as the assembler cuts them) as the records they come from
    fa = FrameAssembler(_MAX)
    fa.feed(stream, 0, len(stream))
    fa.flush()
    out = b""
    while True:
        kind = fa.pop(0)
        if kind == 0:
            return out
        f = bytes(fa.frame)
        if kind == MBUS:
            out += bytes([0]) + (len(f) - 6).to_bytes(2, "big") + f[4:-2]
        elif kind == HDLC:
            i = 3
            for _ in range(2):
                while not f[i] & 1:
                    i += 1
                i += 1
            body = f[3:i + 1] + f[i + 3:-3]
            out += bytes([1 | (f[1] & 0x08) >> 2]) + len(body).to_bytes(2, "big") + body
