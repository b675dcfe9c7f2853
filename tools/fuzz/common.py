# What every harness shares: where things are, what a finding is, and how one is recorded.
#
# A harness (fuzz_<name>.py) is a module with
#   seeds()        -> [bytes]: its first corpus (host_tests/vectors and frames the tests build)
#   check(data)    runs one input through the firmware and asserts the oracles; a broken oracle
#                  raises Finding, anything the firmware raises that it does not declare is
#                  passed through (that is a finding too)
#   DECLARED       the exceptions the entry point may raise on bad input (documented ones)
#   MAX_LEN        the longest input worth trying (what the entry point accepts at most, or so)
# fuzz.py runs one under atheris; run.py runs them all (make fuzz); host_tests/test_fuzz.py
# runs them short and shows that each oracle can fail.
#
# While fuzzing, a finding does not stop the harness: it is saved (the shortest input for each
# kind: the exception or oracle and where it happened) and the harness goes on, so that one run
# reports every distinct finding and not only the first. Timeouts and memory blow-ups cannot be
# caught in the process: libFuzzer's -timeout and -rss_limit_mb end it and leave their input.
import hashlib
import os
import sys
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
# The firmware fuzzed: this checkout's, or another's firmware/ ($FUZZ_FIRMWARE: e.g. a commit's,
# exported, while this one is being edited)
FIRMWARE = os.path.abspath(os.environ.get("FUZZ_FIRMWARE") or os.path.join(ROOT, "firmware"))
HOST_TESTS = os.path.join(ROOT, "host_tests")
VECTORS = os.path.join(HOST_TESTS, "vectors")
for _p in (HERE, HOST_TESTS, FIRMWARE):
    if _p not in sys.path:
        sys.path.insert(0, _p)

NAMES = ("pipeline", "dsmr", "axdr", "link", "config", "http", "mqtt", "dns")


class Finding(AssertionError):
    """A broken oracle. `oracle` names it (one word), the message says what was seen; `kind`
    tells apart findings of one oracle that likely differ in cause (the framing of a lost
    capture, which output was no JSON)."""

    def __init__(self, oracle, message, kind=""):
        AssertionError.__init__(self, "%s: %s" % (oracle, message))
        self.oracle = oracle
        self.kind = kind


def expect(condition, oracle, message, kind=""):
    if not condition:
        raise Finding(oracle, message, kind)


def signature(e):
    """What makes two findings the same one: the oracle, or the exception's type and the
    innermost firmware line it came from."""
    if isinstance(e, Finding):
        return e.oracle + ("/" + e.kind if e.kind else "")
    where = "?"
    for frame in traceback.extract_tb(e.__traceback__):
        if frame.filename.startswith(FIRMWARE):
            where = "%s:%d" % (os.path.basename(frame.filename), frame.lineno)
    return "%s@%s" % (type(e).__name__, where)


def describe(e):
    """One finding for a person: the exception or oracle, and for an exception where it came from."""
    if isinstance(e, Finding):
        return str(e)
    tb = traceback.extract_tb(e.__traceback__)
    ours = [f for f in tb if f.filename.startswith(FIRMWARE)] or [f for f in tb if f.filename.startswith(ROOT)] or tb
    where = ["%s:%d in %s" % (_short(f.filename), f.lineno, f.name) for f in ours[-4:]]
    return "%s: %s (at %s)" % (type(e).__name__, str(e)[:300], " <- ".join(reversed(where)))


def _short(path):
    for top in (FIRMWARE, ROOT):
        if path.startswith(top + os.sep):
            return os.path.relpath(path, os.path.dirname(top) if top == FIRMWARE else top)
    return path


def run_one(harness, data):
    """check(data), with the declared exceptions let through: None, or the finding raised."""
    try:
        harness.check(data)
    except harness.DECLARED:
        return None
    except Exception as e:  # noqa: BLE001 - every other exception is what the fuzzer is after
        return e
    return None


class Recorder:
    """Keeps one input per kind of finding in `where` (the shortest seen): finding-<kind>.bin with
    finding-<kind>.txt saying what it is."""

    def __init__(self, harness, name, where):
        self.harness = harness
        self.name = name
        self.where = where
        self.sizes = {}

    def __call__(self, data):
        e = run_one(self.harness, data)
        if e is None:
            return
        kind = signature(e)
        if kind in self.sizes and self.sizes[kind] <= len(data):
            return
        self.sizes[kind] = len(data)
        slug = "".join(c if c.isalnum() else "-" for c in kind)[:60] + "-" + hashlib.sha1(kind.encode()).hexdigest()[:8]
        base = os.path.join(self.where, "finding-" + slug)
        with open(base + ".bin", "wb") as f:
            f.write(data)
        with open(base + ".txt", "w") as f:
            f.write("%s\n%s\n" % (self.name, describe(e)))
        sys.stderr.write("FINDING %s: %s\n" % (self.name, describe(e)))


def reproducers(name):
    """The inputs of host_tests/vectors/fuzz/ for harness name (<name>-*.bin): what the fuzzers
    found once, each said in the README there; seeds, so that every run tries them again."""
    where = os.path.join(VECTORS, "fuzz")
    out = []
    for f in sorted(os.listdir(where)) if os.path.isdir(where) else ():
        if f.startswith(name + "-") and f.endswith(".bin"):
            with open(os.path.join(where, f), "rb") as g:
                out.append(g.read())
    return out


def harness(name):
    if name not in NAMES:
        raise SystemExit("no harness %r (one of: %s)" % (name, ", ".join(NAMES)))
    import importlib
    return importlib.import_module("fuzz_" + name)
