# The data path: Pipeline.push with a meter's byte stream in chunks, and the outputs of what it
# passes on (MQTT's state and discovery, HomeWizard's data).
#
# Input: 3 bytes of setup, then the stream.
#   [0] the meter (seeds.captures()): its key, authentication key or key-only mode, profile;
#       its own stream is the good tail (below)
#   [1] the profile: 0 the meter's own, else meters.names()[k - 1] (every layout of meters.py)
#   [2] chunk sizes (bits 0-2), raw frames on (bit 3), the tail a second after the stream (bit 4)
# Oracles, beside "no exception but P1Error's family":
#   - each telegram: its CRC-16/ARC right, or without a CRC one that came verbatim in the stream
#     (oracles.telegram); a FRAME event: bytes that came in the stream
#   - the state JSON, the discovery configs and HomeWizard's data of each telegram are JSON, and
#     MqttOutput's memory bounded (oracles.Outputs)
#   - no key (hex, either case; the authentication key too) in any telegram, problem line,
#     message or the status line, unless the stream itself carries it
#   - a problem is one line
#   - nothing good is lost: the meter's own capture appended after the fuzzed stream gives the
#     telegram it gives alone, at its offset. For the captures that are one push (a stream of
#     several may legitimately read differently after others: Kaifa's list 1, the counters of
#     pushes in order), and that name themselves or come encrypted (a plain push may take the
#     name of the plain push before it, Aidon's and Kamstrup's lists do); the seeds' frame
#     counters are each meter's highest, and a frame the fuzzer makes cannot pass a GCM tag.
import oracles
import seeds as corpus
from common import Finding, expect
from p1dongle import meters
from p1dongle.errors import P1Error
from p1dongle.pipeline import FRAME, PROBLEM, TELEGRAM, Pipeline
from p1dongle.reading import identifier

DECLARED = (P1Error,)
MAX_LEN = 8192
CHUNKS = ((1 << 30,), (1,), (7,), (64,), (512,), (3, 300), (1, 2, 61), (1024,))
PROFILES = meters.names()

_METERS = corpus.captures()
_expected = {}


def setup(data):
    """(capture, profile name, options) that data's first 3 bytes pick."""
    c = _METERS[data[0] % len(_METERS)]
    k = data[1] % (len(PROFILES) + 1)
    return c, (c.profile if k == 0 else PROFILES[k - 1]), data[2]


def make(c, profile, emit, raw=False):
    return Pipeline(c.key, c.auth, raw_frames=raw, emit=emit, layout=meters.profile(profile)[4])


def run(pipe, parts):
    """Push (chunk, now_ms) in order, then flush."""
    now = 0
    for chunk, now in parts:
        pipe.push(chunk, now)
    pipe.flush(now)


def tail(c, profile):
    """[(offset, telegram)] the capture gives alone under that profile, or [] when it cannot be
    the good tail (see the top)."""
    got = _expected.get((c.name, profile))
    if got is None:
        oracles.fresh()
        events = []
        pipe = make(c, profile, lambda kind, pos, what, crc: events.append(
            (pos, bytes(what), pipe.readings)) if kind == TELEGRAM else None)
        run(pipe, [(c.stream, 0)])
        named = len(events) == 1 and (c.key or events[0][2] is None or identifier(events[0][2]))
        got = [(pos, t) for pos, t, _ in events] if named and not c.negative else []
        _expected[(c.name, profile)] = got
    return got


def check(data):
    if len(data) < 3:
        return
    c, profile, options = setup(data)
    stream = data[3:]
    good = tail(c, profile)
    oracles.fresh()
    whole = stream + c.stream
    # the keys (an authentication key too, unless it is Luxembourg's, which is public)
    secrets = oracles.secrets_of(c.key, c.auth if c.auth != corpus.LUX_AUTH else None, stream=whole)
    outputs = oracles.Outputs(secrets)
    telegrams = []

    def emit(kind, pos, what, has_crc):
        if kind == TELEGRAM:
            oracles.telegram(what, has_crc, whole)
            oracles.no_secret(what, secrets, "a telegram")
            outputs.telegram(bytes(what), pipe.readings)
            telegrams.append((pos, bytes(what)))
        elif kind == PROBLEM:
            expect(isinstance(what, str) and "\n" not in what and "\r" not in what, "problem",
                   "a problem that is not one line of text: %r" % (what,))
            oracles.no_secret(what, secrets, "a problem line")
        elif kind == FRAME:
            expect(bytes(what) in whole, "frame", "a raw frame that did not come in the stream")

    pipe = make(c, profile, emit, raw=bool(options & 8))
    sizes = CHUNKS[options & 7]
    later = 1000 if options & 16 else 0
    run(pipe, _cut(stream, sizes, 0) + _cut(c.stream, sizes, later))
    oracles.no_secret(pipe.status(), secrets, "the status line")
    if good:
        at = len(stream)
        got = [(pos - at, t) for pos, t in telegrams if pos >= at]
        if got != good:
            raise Finding("lost", "the meter's own capture after the stream gave %s, alone %s"
                          % (_show(got), _show(good)), _framing(c))


def _cut(data, sizes, now):
    out = []
    i = k = 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        out.append((data[i:i + n], now))
        i += n
        k += 1
    return out


def _framing(c):
    # e.g. "hdlc-key": how the capture comes, and how it is opened
    how = "plain" if not c.key else "key-only" if c.auth is None else "key"
    return "%s-%s" % ({0xDB: "db", 0x2F: "dsmr", 0x68: "mbus", 0x7E: "hdlc"}.get(c.stream[0], "?"), how)


def _show(telegrams):
    return "[%s]" % ", ".join("%d: %r...%r" % (pos, t[:16], t[-8:]) for pos, t in telegrams)


def seeds():
    out = []
    for i, c in enumerate(_METERS):
        out.append(bytes([i, 0, 0]) + c.stream)                    # each meter's stream, twice
        out.append(bytes([i, 0, 3 | 8]) + b"\x00\x68\x7e\xa0 noise " + c.stream[:len(c.stream) // 2])
    for k in range(len(PROFILES)):                                   # every profile
        out.append(bytes([k % len(_METERS), k + 1, k & 7]) + _METERS[k % len(_METERS)].stream)
    return out

