# Runs firmware code on a job described in JSON and prints the results as JSON, one line.
# The same file runs under CPython and under MicroPython (`micropython host_tests/mp_job.py JOB`
# with MICROPYPATH=firmware), so the tests can compare the two interpreters result for result.
# run(job) -> result is the same thing as a module: the RV32 twin (boards/rv32) has this file
# frozen and no file system, and host_tests/rv32.py calls it there.
import json
import sys
from binascii import hexlify, unhexlify

from p1dongle import dsmr, state
from p1dongle.errors import P1Error
from p1dongle.gcm import Gcm
from p1dongle.pipeline import TELEGRAM, Pipeline


def hx(b):
    return hexlify(b).decode()


def gcm_decrypt(cases):
    out = []
    for c in cases:
        g = Gcm(unhexlify(c["key"]))
        try:
            pt = g.decrypt(unhexlify(c["iv"]), unhexlify(c["aad"]), unhexlify(c["ct"]), unhexlify(c["tag"]))
            out.append(hx(pt))
        except P1Error as e:
            out.append("%s: %s" % (type(e).__name__, e))
    return out


def gcm_encrypt(cases):
    out = []
    for c in cases:
        g = Gcm(unhexlify(c["key"]))
        out.append(hx(g.encrypt(unhexlify(c["iv"]), unhexlify(c["aad"]), unhexlify(c["pt"]), c["tag_len"])))
    return out


def pipeline(job):
    key = unhexlify(job["key"]) if job.get("key") else None
    auth = unhexlify(job["auth_key"]) if job.get("auth_key") else unhexlify("00112233445566778899AABBCCDDEEFF")
    if job.get("key_only"):
        auth = None
    events = []
    with_state = job.get("state")
    pipe = None

    def emit(kind, pos, what, has_crc):
        if kind == TELEGRAM:
            events.append(["telegram", pos, hx(what), has_crc])
            if with_state:
                # as the app does it: the pipeline's own readings (DLMS), else the telegram parsed
                readings = pipe.readings if pipe.readings is not None else dsmr.parse(what)
                events[-1].append(state.state_json(readings).decode())
        else:
            events.append(["problem", pos, what])

    pipe = Pipeline(key, auth, max_frame=job.get("max_frame", 4096), timeout_ms=job.get("timeout_ms", 5000),
                    replay_check=job.get("replay_check", True),
                    emit=emit, layout=job.get("layout", "auto"), shared=True)   # as the app reads it
    data = unhexlify(job["stream"])
    sizes = job.get("chunks") or [len(data) or 1]
    i = k = 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        pipe.push(data[i:i + n], 0)
        i += n
        k += 1
    pipe.flush(0)
    fa = pipe.frames
    counters = {
        "telegrams": pipe.telegrams, "no_crc": pipe.no_crc, "auth_failures": pipe.auth_failures,
        "crc_failures": pipe.crc_failures, "replays": pipe.replays, "bad_frames": pipe.bad_frames,
        "dropped": list(fa.dropped), "overflow": fa.ring.overflow, "pos": fa.pos,
        "unauthenticated": pipe.unauthenticated,
    }
    return {"events": events, "counters": counters, "status": pipe.status()}


def loops_job(cases):
    """Every hot loop, in every implementation this interpreter can run, on the same cases."""
    from p1dongle import compat, loops
    impls = [("portable", loops)]
    if sys.implementation.name == "micropython":
        from p1dongle import loops_viper
        impls.append(("viper", loops_viper))
    out = {"chosen": compat.loops.__name__, "files": {}}
    for name, mod in impls:
        out["files"][name] = getattr(mod, "__file__", "")
        res = []
        for c in cases:
            data = unhexlify(c["data"])
            s, e = c["start"], c["end"]
            y = bytearray(unhexlify(c["y"]))
            mod.ghash(y, mod.ghash_table(unhexlify(c["h"])), data, s, e)
            dst = bytearray(unhexlify(c["dst"]))
            mod.xor_into(dst, c["doff"], data, s, unhexlify(c["ks"]), e - s)
            cp = bytearray(unhexlify(c["dst"]))
            mod.copy(cp, c["doff"], data, s, e - s)
            ctr = bytearray(16 * c["blocks"])
            mod.fill_counters(ctr, unhexlify(c["iv"]), c["blocks"], c["first"])
            other = bytearray(data)
            if c["flip"] >= 0:
                other[c["flip"]] ^= 0x80
            res.append([hx(y), hx(dst), hx(cp), hx(ctr), mod.crc16(data, s, e, c["crc"]),
                        mod.equal(data, s, other, s, e - s), mod.crc16_x25(data, s, e), mod.sum8(data, s, e)])
        out[name] = res
    return out


def text_loops_job(job):
    """The telegram-text and JSON loops, in every implementation this interpreter can run."""
    from array import array
    from p1dongle import loops, obis
    impls = [("portable", loops)]
    if sys.implementation.name == "micropython":
        from p1dongle import loops_viper
        impls.append(("viper", loops_viper))
    out = {}
    for name, mod in impls:
        res = []
        for line in job["lines"]:
            b = unhexlify(line)
            o = array("i", [0] * 8)
            kind = mod.scan_line(b, 0, len(b), o)
            # what a caller may read: out[0..3] always, 4..6 for FAST
            res.append([kind, list(o[:4]), list(o[4:7]) if kind == 1 else None,
                        mod.printable(b, 0, len(b))])
        for m, e in job["decimals"]:
            buf = bytearray(24)
            p = mod.put_decimal(buf, 2, m, e)
            # and the same number as put_number writes it, after a key
            nbuf = bytearray(b"{" + bytes(31))
            q = mod.put_number(nbuf, 1, "n", m, e, bytearray(8), array("i", [1, 0]), "")
            res.append([p, hx(buf[2:p]) if p > 0 else None, hx(nbuf[:q]) if q > 0 else None])
        for text in job["strings"]:
            buf = bytearray(64)
            p = mod.put_string(buf, 1, text)
            res.append([p, hx(buf[1:p]) if p > 0 else None, mod.same(b"x" + text.encode() + b"y", 1,
                                                                    1 + len(text), text)])
        for size in (8, 30, 200):
            buf = bytearray(size)
            ubuf = bytearray(size)
            buf[0] = ubuf[0] = 0x7B
            u = array("i", [1, 0])
            p = mod.put_key(buf, 1, "a")
            p = mod.put_number(buf, p, "energy", 23949193, -3, ubuf, u, "kWh")
            p = mod.put_number(buf, p, "count", 16, 0, ubuf, u, "")
            res.append([p, hx(buf[:max(p, 0)]), u[0], hx(ubuf[:max(u[0], 0)]), mod.put(buf, size - 1, b"ab")])
        t = unhexlify(job["telegram"])
        buf = bytearray(4096)
        ubuf = bytearray(2048)
        buf[0] = ubuf[0] = 0x7B
        u = array("i", [1, 0])
        o = array("i", [0] * 8)
        seen = []
        i = t.find(b"\n") + 1
        runs = []
        pos = 1
        while i < len(t):
            pos = mod.json_lines(t, i, len(t), o, obis.BY_KEY, buf, pos, ubuf, u, seen)
            runs.append(o[7])
            mod.scan_line(t, o[7], len(t), o)
            i = o[0] + 1
        res.append([pos, hx(buf[:pos]), hx(ubuf[:u[0]]), u[1], [r[1] for r in seen[:u[1]]], runs])
        for text in job.get("text_telegrams", ()):      # text rows: written, or left to Python
            t = unhexlify(text)
            buf = bytearray(200)
            buf[0] = 0x7B
            u = array("i", [1, 0])
            pos = mod.json_lines(t, 0, len(t), o, obis.BY_KEY, buf, 1, bytearray(8), u, [])
            res.append([pos, hx(buf[:max(pos, 0)]), u[1], o[7]])
        t = unhexlify(job["telegram"])
        for size, usize in ((60, 2048), (4096, 40), (300, 150), (1, 1)):    # full: where each stops
            buf = bytearray(size)
            ubuf = bytearray(usize)
            buf[0] = ubuf[0] = 0x7B
            u = array("i", [1, 0])
            pos = mod.json_lines(t, t.find(b"1-0:1.8.0"), len(t), o, obis.BY_KEY, buf, 1, ubuf, u, [])
            res.append([pos, u[0] if u[0] < 0 else hx(ubuf[:u[0]]), u[1], o[7], hx(buf[:pos]) if pos > 0 else None])
        for size in (201, 12):                  # keys, escaped as values are; and when they do not fit
            for text in job["strings"]:
                buf = bytearray(size)
                ubuf = bytearray(size)
                buf[0] = ubuf[0] = 0x7B
                u = array("i", [1, 0])
                p = mod.put(buf, mod.put_key(buf, 1, text), b"0")
                p = mod.put_number(buf, p, text, -5, -1, ubuf, u, text)
                res.append([p, hx(buf[:max(p, 0)]), u[0], hx(ubuf[:max(u[0], 0)])])
        out[name] = res
    return out


def native_job(cases):
    """Which GCM runs here, and what a failed tag check leaves in the output buffer."""
    from p1dongle.compat import native_gcm
    out = {"native_module": native_gcm is not None, "leftovers": []}
    for c in cases:
        g = Gcm(unhexlify(c["key"]))
        out["gcm_native"] = g._native is not None
        buf = bytearray(b"\xaa" * len(unhexlify(c["ct"])))
        try:
            g.decrypt_into(unhexlify(c["iv"]), unhexlify(c["aad"]), unhexlify(c["ct"]), unhexlify(c["tag"]), buf)
            out["leftovers"].append("decrypted")
        except P1Error:
            out["leftovers"].append(hx(buf))
    return out


def dsmr_job(telegrams):
    out = []
    for t in telegrams:
        t = unhexlify(t)
        r = {}
        try:
            r["check"] = dsmr.check(t)
        except P1Error as e:
            r["check"] = "%s: %s" % (type(e).__name__, e)
        try:
            readings = dsmr.parse(t)
            r["values"] = [[row[1], value] for row, value in readings]
            r["state"] = state.state_json(readings).decode()
            r["state_from_text"] = state.telegram_json(t).decode()
            r["state_small_writer"] = state.telegram_json(t, state.Writer(64)).decode()
        except P1Error as e:
            r["values"] = "%s: %s" % (type(e).__name__, e)
        out.append(r)
    return out


def floats_job(numbers):
    """What the old reading model did with a number: float(text), written by json.dumps. On the
    dongle (single-precision floats) it loses digits; the tests show that they can tell."""
    return [json.dumps(float(n)) for n in numbers]


def homewizard_job(job):
    """GET /api/v1/data for each telegram (its readings as the dongle makes them)."""
    from p1dongle import homewizard
    return [homewizard.data(dsmr.parse(t.encode()), "home", -61) for t in job["telegrams"]]


def layouts_job(job):
    """Each data-notification (hex) read by the layouts: [code, value] pairs and the notice, or
    the LayoutError's line."""
    from p1dongle import axdr
    from p1dongle.layouts import LayoutError, Layouts
    out = []
    for apdu in job["apdus"]:
        reader = Layouts(job["layout"])
        try:
            readings, _ = reader.readings(axdr.decode(bytes.fromhex(apdu)))
        except LayoutError as e:
            out.append(["error", str(e)])
            continue
        out.append([[[row[0], list(v) if isinstance(v, tuple) else v] for row, v in readings], reader.notice])
    return out


def jsonbuf_job(job):
    """Each object written by jsonbuf.JsonBuffer (a small one first, so that it grows), as text."""
    from p1dongle.jsonbuf import JsonBuffer
    buf = JsonBuffer(16)
    return [bytes(buf.dumps(obj)).decode() for obj in job["objects"]]


def backlog_job(job):
    """Telegrams of the given lengths put into a backlog.Backlog, each filled with its own
    pattern: after each put, [the numbers it holds, whether each held one reads back intact]."""
    from p1dongle.backlog import Backlog
    b = Backlog(job["size"], job["slots"])
    out = []
    src = bytearray(max(job["lengths"]))
    for n in job["lengths"]:
        number = b.next
        for i in range(n):
            src[i] = (number * 31 + i) & 0xFF
        if b.put(src, n) != number:
            return ["wrong number", number]
        intact = True
        for k in range(b.first, b.next):
            v = b.view(k)
            if v is None:
                intact = False
                continue
            for i in range(len(v)):
                if v[i] != (k * 31 + i) & 0xFF:
                    intact = False
                    break
        out.append([b.first, b.next, intact, b.view(b.first - 1) is None])
    return out


# the jobs by name: each takes the whole job
JOBS = {
    "gcm_decrypt": lambda job: gcm_decrypt(job["cases"]),
    "gcm_encrypt": lambda job: gcm_encrypt(job["cases"]),
    "dsmr": lambda job: dsmr_job(job["telegrams"]),
    "pipeline": pipeline,
    "native": lambda job: native_job(job["cases"]),
    "floats": lambda job: floats_job(job["numbers"]),
    "text_loops": text_loops_job,
    "loops": lambda job: loops_job(job["cases"]),
    "homewizard": homewizard_job,
    "layouts": layouts_job,
    "jsonbuf": jsonbuf_job,
    "backlog": backlog_job,
}


def run(job):
    kind = job["job"]
    if kind not in JOBS:
        raise ValueError("unknown job " + kind)
    return JOBS[kind](job)


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    print(json.dumps(run(job)))


if __name__ == "__main__":
    main()
