# Runs firmware code on a job described in JSON and prints the results as JSON, one line.
# The same file runs under CPython and under MicroPython (`micropython host_tests/mp_job.py JOB`
# with MICROPYPATH=firmware), so the tests can compare the two interpreters result for result.
import json
import sys
from binascii import hexlify, unhexlify

from p1dongle import dsmr
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
    pipe = Pipeline(key, auth, max_frame=job.get("max_frame", 4096), timeout_ms=job.get("timeout_ms", 5000))
    data = unhexlify(job["stream"])
    sizes = job.get("chunks") or [len(data) or 1]
    events = []

    def take(evs):
        for kind, pos, what, has_crc in evs:
            if kind == TELEGRAM:
                events.append(["telegram", pos, hx(what), has_crc])
            else:
                events.append(["problem", pos, what])

    i = k = 0
    while i < len(data):
        n = sizes[k % len(sizes)]
        take(pipe.push(data[i:i + n], 0))
        i += n
        k += 1
    take(pipe.flush(0))
    fa = pipe.frames
    counters = {
        "telegrams": pipe.telegrams, "no_crc": pipe.no_crc, "auth_failures": pipe.auth_failures,
        "crc_failures": pipe.crc_failures, "replays": pipe.replays, "bad_frames": pipe.bad_frames,
        "dropped": list(fa.dropped), "overflow": fa.ring.overflow, "pos": fa.pos,
    }
    return {"events": events, "counters": counters, "status": pipe.status()}


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
            r["values"] = dsmr.parse(t)
        except P1Error as e:
            r["values"] = "%s: %s" % (type(e).__name__, e)
        out.append(r)
    return out


def main():
    with open(sys.argv[1]) as f:
        job = json.load(f)
    kind = job["job"]
    if kind == "gcm_decrypt":
        result = gcm_decrypt(job["cases"])
    elif kind == "gcm_encrypt":
        result = gcm_encrypt(job["cases"])
    elif kind == "dsmr":
        result = dsmr_job(job["telegrams"])
    elif kind == "pipeline":
        result = pipeline(job)
    else:
        raise ValueError("unknown job " + kind)
    print(json.dumps(result))


main()
