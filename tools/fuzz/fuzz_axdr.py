# The A-XDR decoder and the layouts (axdr.py, layouts/) and the telegram they are rendered
# into (render.py): a DLMS data-notification, as the pipeline has it once its link frames are
# joined and decrypted.
#
# Input: 1 byte, then the APDU (0F ...). The byte picks the layout (layouts.LAYOUTS: the meter
# profiles' layouts and auto) and (bit 7) whether the push came with a system title (the
# rendered header names the maker) or none.
# Oracles:
#   - decode raises FrameError alone, the layouts LayoutError or FrameError, render nothing
#   - the readings are numbers (integer mantissa, exponent, unit), text and lists
#   - the rendered telegram has a CRC-16/ARC that matches (computed here), dsmr.check and
#     dsmr.parse read it
#   - the state JSON of the readings is JSON, with each number the reading's own digits; the
#     discovery configs and HomeWizard's data are JSON (oracles.Outputs)
#   - no unbounded time or memory (libFuzzer's -timeout and -rss_limit_mb)
import fuzz_dsmr
import oracles
import seeds as corpus
from common import expect
from p1dongle import axdr, dsmr, layouts, meters, render, state
from p1dongle.errors import FrameError

DECLARED = ()
MAX_LEN = 4096
LAYOUTS = layouts.LAYOUTS


def check(data):
    if len(data) < 2:
        return
    oracles.fresh()
    layout = LAYOUTS[(data[0] & 0x7F) % len(LAYOUTS)]
    maker, ident = ("KFM", "6750001234") if data[0] & 0x80 else ("DLM", "")
    apdu = data[1:]
    try:
        note = axdr.decode(apdu, len(apdu))
    except FrameError:
        return
    try:
        readings, clock = layouts.Layouts(layout).readings(note)
    except FrameError:                  # LayoutError is one
        return
    fuzz_dsmr._readings(readings)
    t = render.telegram(readings, clock, maker, ident)
    expect(oracles.crc_verdict(t) == "crc", "crc", "the rendered telegram's CRC is %s: ...%r"
           % (oracles.crc_verdict(t), t[-12:]))
    expect(dsmr.check(t) is True, "crc", "dsmr.check does not take the rendered telegram")
    dsmr.parse(t)
    text = state.state_json(readings, state.Writer())
    oracles.document(text, "the state JSON", "state")
    fuzz_dsmr.numbers(text, readings)
    oracles.Outputs().telegram(t, readings)


def seeds():
    out = []
    for profile, apdu in corpus.apdus():
        layout = meters.profile(profile)[4]
        k = LAYOUTS.index(layout) if layout in LAYOUTS else 0
        out.append(bytes([k]) + apdu)
        out.append(bytes([0x80 | (k + 1) % len(LAYOUTS)]) + apdu)
    return out
