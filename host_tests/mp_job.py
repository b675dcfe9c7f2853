# Runs firmware code on a job described in JSON and prints the results as JSON, one line.
# The same file runs under CPython and under MicroPython (`micropython host_tests/mp_job.py JOB`
# with MICROPYPATH=firmware), so the tests can compare the two interpreters result for result.
import json
import sys
from binascii import hexlify, unhexlify

from p1dongle import dsmr
from p1dongle.errors import P1Error
from p1dongle.gcm import Gcm


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
    else:
        raise ValueError("unknown job " + kind)
    print(json.dumps(result))


main()
