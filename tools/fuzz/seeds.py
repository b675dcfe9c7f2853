# The harnesses' first corpus: the real captures in host_tests/vectors (with the keys their
# sources published, dlms/manifest.json) and frames built the way the tests build them
# (host_tests/meter.py: DSMR telegrams, GCM frames; austria.py: A-XDR pushes, M-Bus, HDLC, block
# transfer; austria.py needs dlms_cosem, as the tests do).
import json
import os

from common import VECTORS

try:
    import austria
    import meter
except ImportError as e:            # pragma: no cover - said once, where it happens
    raise SystemExit("the fuzz seeds are built with host_tests/austria.py, which needs %s "
                     "(pip install dlms-cosem, as the test suite does)" % e.name)

LUX_AUTH = meter.LUX_AUTH_KEY
HIGH = 0x7FFFFFF0          # frame counter of the frames built here: above every capture's


class Capture:
    """A stream of one meter, and what a user of that meter sets: key, authentication key (None:
    key-only mode), meter profile. negative: corrupt on purpose (no telegram expected)."""

    def __init__(self, name, stream, key=None, auth=LUX_AUTH, profile="auto", negative=False):
        self.name = name
        self.stream = stream
        self.key = key
        self.auth = auth
        self.profile = profile
        self.negative = negative


def hexfile(path):
    with open(path) as f:
        return bytes.fromhex("".join(f.read().split()))


def _profile(e):
    # the profile a user of that meter sets (as host_tests/test_captures.py picks it)
    family, country = e["family"], e["country"]
    if family == "landisgyr" and e["layout"] == "capture-objects":
        for model in ("E450", "E570", "E360"):
            if model in e["meter"]:
                return "landisgyr-" + model.lower()
    if family == "kamstrup":
        return {"NO": "kamstrup-no", "SE": "kamstrup-se", "DK": "kamstrup-dk"}.get(country, "kamstrup")
    if family == "kaifa" and e["layout"] == "kaifa":
        return "kaifa"
    if family == "aidon":
        return "aidon-se" if country == "SE" else "aidon"
    return "auto"


_CACHE = {}


def captures():
    """Every stream a pipeline can take: the built ones, the four captures of host_tests/vectors,
    then dlms/manifest.json's in its order (a capture added there comes last: the index a
    harness input names a capture by stays the same, and so do the reproducers')."""
    if "captures" in _CACHE:
        return _CACHE["captures"]
    v = VECTORS
    out = built() + [
        Capture("lux-smarty-t210d", hexfile(os.path.join(v, "lux-smarty-t210d.hex")),
                bytes.fromhex("D491470F47126332B07D1923B3504188"), LUX_AUTH, "lux"),
        Capture("netznoe-evn-doc", hexfile(os.path.join(v, "netznoe-evn-doc.hex")),
                bytes.fromhex("36C66639E48A8CA4D6BC8B282A793BBB"), LUX_AUTH, "netznoe"),
        Capture("wienernetze-am550", hexfile(os.path.join(v, "wienernetze-am550.hex")),
                bytes.fromhex("62DC84B413AF3E16AA271CE9ED04AC74"), LUX_AUTH, "wienernetze"),
        Capture("steiermark-t210dr", hexfile(os.path.join(v, "steiermark-t210dr.hex")),
                bytes.fromhex("A8C74F67ECA8EF9C55C4743FF6F4F031"), None, "steiermark"),
    ]
    with open(os.path.join(v, "dlms", "manifest.json")) as f:
        manifest = json.load(f)
    for e in manifest:
        if e["framing"] == "bare":
            continue                    # a bare APDU is no stream (the axdr harness takes them)
        key = bytes.fromhex(e["key"]) if e.get("key") else None
        auth = bytes.fromhex(e["auth_key"]) if e.get("auth_key") else LUX_AUTH
        if key and e.get("security") == "0x30" and not e.get("auth_key"):
            auth = None                 # the utility gives out no authentication key
        out.append(Capture(e["file"][:-4], hexfile(os.path.join(v, "dlms", e["file"])), key, auth,
                           _profile(e), bool(e.get("negative"))))
    _CACHE["captures"] = out
    return out


def built():
    """Frames the tests build: DSMR telegrams plain and in GCM frames, A-XDR pushes in M-Bus,
    HDLC and block transfer, tagged (30) and tagless (20), and telegrams in tagless frames."""
    at = austria
    key = meter.KEY
    note = at.notification(at.NETZNOE_LIKE)
    glo = at.glo(note, counter=HIGH)
    glo20 = at.glo(note, counter=HIGH, sc=0x20)
    lux = meter.frame(meter.LUX_TELEGRAM, counter=HIGH)
    dsmr22 = meter.telegram(["0-0:96.1.1(12345678)", "1-0:1.8.1(00123.456*kWh)", "1-0:1.7.0(0001.23*kW)"],
                            header="/ISk5\\2MT382-1000", crc=False)
    blocks = at.block_transfer(glo, 90)
    return [
        Capture("nl-dsmr5", meter.NL_TELEGRAM),
        Capture("be-emucs", meter.BE_TELEGRAM),
        Capture("lux-telegram", meter.LUX_TELEGRAM),
        Capture("dsmr22-no-crc", dsmr22),
        Capture("lux-gcm", lux, key, LUX_AUTH, "lux"),
        Capture("lux-gcm-lower-crc", meter.frame(meter.telegram(meter.LUX_BODY, lower=True), counter=HIGH),
                key, LUX_AUTH, "lux"),
        Capture("telegram-in-20", at.glo(meter.LUX_TELEGRAM, title=meter.SYSTEM_TITLE, counter=HIGH, sc=0x20),
                key, LUX_AUTH),
        Capture("key-only-telegram", lux, key, None, "steiermark"),
        Capture("mbus-gcm-2", at.mbus(glo), key, LUX_AUTH, "netznoe"),
        Capture("mbus-gcm-4", at.mbus(glo, size=80), key, LUX_AUTH, "tinetz"),
        Capture("mbus-20", at.mbus(glo20, size=250), key, LUX_AUTH, "netznoe"),
        Capture("mbus-quirk-257", at.mbus(glo, size=252, quirk=True), key, LUX_AUTH, "netznoe"),
        Capture("mbus-telegram-20", at.mbus(at.glo(meter.LUX_TELEGRAM, counter=HIGH, sc=0x20)), key, LUX_AUTH),
        Capture("mbus-plain", at.mbus(note), None, LUX_AUTH, "netznoe"),
        Capture("hdlc-gcm-1", at.hdlc(glo, size=1000), key, LUX_AUTH, "linz"),
        Capture("hdlc-gcm-3", at.hdlc(glo, size=110), key, LUX_AUTH, "linz"),
        Capture("hdlc-shared-flags", at.hdlc(glo, size=110, shared_flags=True), key, LUX_AUTH, "linz"),
        Capture("hdlc-blocks", b"".join(at.hdlc(b) for b in blocks), key, LUX_AUTH, "linz"),
        Capture("hdlc-blocks-llc-once", at.hdlc(blocks[0]) + b"".join(at.hdlc(b, llc=b"") for b in blocks[1:]),
                key, LUX_AUTH, "landisgyr-e450"),
        Capture("hdlc-plain", at.hdlc(note), None, LUX_AUTH, "auto"),
        Capture("hdlc-telegram-20", at.hdlc(at.glo(meter.LUX_TELEGRAM, counter=HIGH, sc=0x20), size=300),
                key, LUX_AUTH),
    ]


def telegrams():
    """DSMR telegrams: the built ones, and every telegram the pipeline gives for the streams
    (the Luxembourg and Styrian ones decrypted, the DLMS meters' rendered)."""
    if "telegrams" in _CACHE:
        return _CACHE["telegrams"]
    from p1dongle import meters
    from p1dongle.pipeline import TELEGRAM, Pipeline

    out = []
    for c in captures():
        pipe = Pipeline(c.key, c.auth, replay_check=False, layout=meters.profile(c.profile)[4],
                        emit=lambda kind, pos, what, crc: out.append(bytes(what)) if kind == TELEGRAM else None)
        try:
            pipe.push(c.stream, 0)
            pipe.flush(0)
        except Exception:   # noqa: BLE001 - a seed the firmware cannot take is still a seed
            pass
    out = sorted(set(out))
    _CACHE["telegrams"] = out
    return out


def apdus():
    """Plain data-notifications (0F ...): the bare captures, and every push of the streams
    above as the pipeline sees it once its frames are joined and decrypted."""
    if "apdus" in _CACHE:
        return _CACHE["apdus"]
    from p1dongle import meters
    from p1dongle.pipeline import Pipeline

    out = []
    with open(os.path.join(VECTORS, "dlms", "manifest.json")) as f:
        for e in json.load(f):
            if e["framing"] == "bare":      # (an LLC PDU's header before the 0F goes)
                data = hexfile(os.path.join(VECTORS, "dlms", e["file"]))
                out.append((_profile(e), data[data.index(b"\x0f"):]))

    class Tap(Pipeline):
        # what _content is given: the plaintext of each push
        def _content(self, frame, data, n):
            if n and data[0] == 0x0F:
                out.append((self.profile, bytes(data[:n])))
            return Pipeline._content(self, frame, data, n)

    for c in captures():
        pipe = Tap(c.key, c.auth, replay_check=False, layout=meters.profile(c.profile)[4])
        pipe.profile = c.profile
        try:
            pipe.push(c.stream, 0)
            pipe.flush(0)
        except Exception:   # noqa: BLE001 - a seed the firmware cannot take is still a seed
            pass
    out.append(("auto", austria.notification(austria.NETZNOE_LIKE)))
    out.append(("auto", austria.notification(austria.NETZNOE_LIKE, clock=None)))
    _CACHE["apdus"] = out
    return out
