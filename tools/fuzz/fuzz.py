"""Run one harness under atheris (libFuzzer), or replay inputs through it.

    python tools/fuzz/fuzz.py NAME [libFuzzer options] [CORPUS_DIR...]
    python tools/fuzz/fuzz.py NAME --replay FILE...      each input once: its finding, or "ok"
    python tools/fuzz/fuzz.py NAME --seeds DIR           write the harness's seeds into DIR, and
                                                         its reproducers (host_tests/vectors/fuzz)

Fuzzing, findings go to $FUZZ_FINDINGS (default build/fuzz/NAME/crashes) and the run goes on
(common.Recorder); libFuzzer's own artifacts (timeouts, out-of-memory) go to its -artifact_prefix.
--replay exits 1 when any input still gives a finding. NAME: one of common.NAMES.
"""
import hashlib
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402


def replay(name, paths):
    h = common.harness(name)
    bad = 0
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        e = common.run_one(h, data)
        if e is None:
            print("%s: ok" % path)
        else:
            bad += 1
            print("%s: %s" % (path, common.describe(e)))
    return 1 if bad else 0


def write_seeds(name, where):
    os.makedirs(where, exist_ok=True)
    h = common.harness(name)
    for data in h.seeds() + common.reproducers(name):
        data = data[:h.MAX_LEN]
        with open(os.path.join(where, "seed-" + hashlib.sha1(data).hexdigest()), "wb") as f:
            f.write(data)
    return 0


def fuzz(name, args):
    try:
        import atheris
    except ImportError:
        raise SystemExit("atheris is not installed: `make fuzz` installs requirements.txt into .venv "
                         "(or: pip install atheris, pinned in requirements.txt)")
    # The firmware is imported (by the harness) inside this block, so that atheris instruments
    # its bytecode: coverage and comparisons of p1dongle's code are what guide the fuzzer. Not
    # the byte loops (loops.py): traced they run 2-3 times slower, and their branches say little
    # a fuzzer can use (their callers' branches are traced).
    with atheris.instrument_imports(include=["p1dongle"], exclude=["p1dongle.loops", "p1dongle.loops_viper"]):
        h = common.harness(name)
    where = os.environ.get("FUZZ_FINDINGS") or os.path.join(common.ROOT, "build", "fuzz", name, "crashes")
    os.makedirs(where, exist_ok=True)
    # the harness's -max_len first: one given on the command line comes later and wins
    atheris.Setup([sys.argv[0], "-max_len=%d" % h.MAX_LEN] + args, common.Recorder(h, name, where))
    atheris.Fuzz()


def main(argv):
    if len(argv) < 2:
        raise SystemExit(__doc__)
    name = argv[1]
    if len(argv) > 2 and argv[2] == "--replay":
        return replay(name, argv[3:])
    if len(argv) == 4 and argv[2] == "--seeds":
        return write_seeds(name, argv[3])
    fuzz(name, argv[2:])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
