"""make fuzz: every harness in turn, for its share of the time; then every finding, printed.

    python tools/fuzz/run.py [--seconds 1800] [--out build/fuzz] [--only NAME,...] [--timeout 10]
                             [--rss-mb 1024] [--seed N]

Per harness, under OUT/NAME/: corpus/ (the seeds are copied in first; what the fuzzer finds
interesting stays for the next run) and crashes/ (findings: finding-*.bin with a .txt saying
what it is, and libFuzzer's timeout-* and oom-* for an input that took more than --timeout
seconds or more than --rss-mb of memory). Findings of an earlier run are replayed first and
kept only while they still fail. Exits 1 when any harness has a finding, after printing each:
the harness, the exception or broken oracle, the input's path and its bytes in hex.
"""
import argparse
import glob
import os
import re
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
from common import NAMES  # noqa: E402

RESTARTS = 5            # a run that a timeout or an out-of-memory ended starts again, this often


def fuzz_command(name, args):
    """The command that runs harness name with libFuzzer args (the test replaces it)."""
    return [sys.executable, os.path.join(HERE, "fuzz.py"), name] + args


class Harness:
    def __init__(self, name, out):
        self.name = name
        self.dir = os.path.join(out, name)
        self.corpus = os.path.join(self.dir, "corpus")
        self.crashes = os.path.join(self.dir, "crashes")
        self.log = os.path.join(self.dir, "log.txt")
        self.runs = 0
        self.cov = "?"
        self.findings = []      # (what, path)

    def prepare(self, opts):
        """Seeds into the corpus; an earlier run's findings replayed, kept while they fail."""
        os.makedirs(self.corpus, exist_ok=True)
        os.makedirs(self.crashes, exist_ok=True)
        subprocess.run([sys.executable, os.path.join(HERE, "fuzz.py"), self.name, "--seeds", self.corpus],
                       check=True, env=_env())
        old = sorted(glob.glob(os.path.join(self.crashes, "*")))
        inputs = [p for p in old if os.path.basename(p).startswith("finding-") and p.endswith(".bin")]
        if inputs:
            out = subprocess.run([sys.executable, os.path.join(HERE, "fuzz.py"), self.name, "--replay"] + inputs,
                                 capture_output=True, text=True, env=_env()).stdout
            for line in out.splitlines():
                path, _, verdict = line.partition(": ")
                if verdict == "ok":
                    _remove(path, path[:-4] + ".txt")     # fixed: gone
        for path in old:
            base = os.path.basename(path)
            if base.split("-")[0] in ("timeout", "oom", "crash") and not self._still(path, opts):
                _remove(path)

    def _still(self, path, opts):
        # an input libFuzzer left: does it still time out or blow the memory limit?
        args = ["-timeout=%d" % opts.timeout, "-rss_limit_mb=%d" % opts.rss_mb, "-runs=1", path]
        env = _env(FUZZ_FINDINGS=os.path.join(self.dir, "replay"))
        r = subprocess.run(fuzz_command(self.name, args), capture_output=True, env=env)
        return r.returncode != 0

    def fuzz(self, seconds, opts):
        end = time.time() + seconds
        with open(self.log, "w") as log:
            for _ in range(1 + RESTARTS):
                left = int(end - time.time() + 0.5)
                if left < 1:
                    break
                args = ["-max_total_time=%d" % left, "-timeout=%d" % opts.timeout,
                        "-rss_limit_mb=%d" % opts.rss_mb, "-artifact_prefix=" + self.crashes + os.sep,
                        "-print_final_stats=1", "-print_pcs=0"]
                if opts.seed is not None:
                    args.append("-seed=%d" % opts.seed)
                r = subprocess.run(fuzz_command(self.name, args + [self.corpus]), stdout=log,
                                   stderr=subprocess.STDOUT, env=_env(FUZZ_FINDINGS=self.crashes))
                if r.returncode == 0:
                    break
                log.write("\n[run.py: the run ended with %d; %d s left]\n" % (r.returncode, end - time.time()))
                log.flush()
        with open(self.log, errors="replace") as f:
            text = f.read()
        self.runs = sum(int(n) for n in re.findall(r"stat::number_of_executed_units: (\d+)", text))
        cov = re.findall(r"cov: (\d+)", text)
        self.cov = cov[-1] if cov else "?"

    def collect(self):
        for path in sorted(glob.glob(os.path.join(self.crashes, "*"))):
            base = os.path.basename(path)
            if base.startswith("finding-") and base.endswith(".bin"):
                with open(path[:-4] + ".txt") as f:
                    what = f.read().split("\n", 1)[1].strip()
            elif base.startswith("timeout-"):
                what = "timeout: one input took more than the per-input budget (-timeout)" + self._why("ALARM")
            elif base.startswith("oom-"):
                what = "out of memory: one input took more than -rss_limit_mb" + self._why("out-of-memory")
            elif base.startswith("crash-"):
                what = "crash: the harness process died on this input" + self._why("Uncaught Python exception")
            else:
                continue
            self.findings.append((what, path))
        return self.findings

    def _why(self, marker):
        # the lines libFuzzer and atheris printed about it (the Python stack, when there is one)
        try:
            with open(self.log, errors="replace") as f:
                lines = f.read().splitlines()
        except OSError:
            return ""
        for i, line in enumerate(lines):
            if marker in line:
                stack = [x.strip() for x in lines[i:i + 40] if x.strip().startswith(("File ", "==", "MS:", "Traceback"))]
                return "\n      " + "\n      ".join([line.strip()] + stack[-12:])
        return ""


def _remove(*paths):
    for p in paths:
        try:
            os.remove(p)
        except OSError:
            pass


def _env(**extra):
    env = dict(os.environ)
    env.update(extra)
    env.setdefault("PYTHONHASHSEED", "0")     # the same input runs the same way again
    return env


def show(data, limit=1024):
    text = data[:limit].hex()
    return text + ("... (%d bytes)" % len(data) if len(data) > limit else " (%d bytes)" % len(data))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=1800, help="the whole campaign, split across the harnesses")
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "fuzz"))
    ap.add_argument("--only", default="", help="these harnesses (comma-separated), not all")
    ap.add_argument("--timeout", type=int, default=10, help="seconds one input may take")
    ap.add_argument("--rss-mb", type=int, default=1024, help="memory the harness process may take")
    ap.add_argument("--seed", type=int, default=None, help="libFuzzer's random seed (a repeatable run)")
    opts = ap.parse_args(argv)
    names = [n for n in opts.only.split(",") if n] or list(NAMES)
    for n in names:
        if n not in NAMES:
            ap.error("no harness %r (one of: %s)" % (n, ", ".join(NAMES)))
    start = time.time()
    harnesses = [Harness(n, opts.out) for n in names]
    for k, h in enumerate(harnesses):
        h.prepare(opts)
        share = (opts.seconds - (time.time() - start)) / (len(harnesses) - k)
        print("fuzz %-8s %4d s ..." % (h.name, share), end="", flush=True)
        h.fuzz(share, opts)
        found = h.collect()
        print(" %d runs, coverage %s, %d finding%s" % (h.runs, h.cov, len(found), "" if len(found) == 1 else "s"),
              flush=True)
    findings = [(h.name, what, path) for h in harnesses for what, path in h.findings]
    for name, what, path in findings:
        with open(path, "rb") as f:
            data = f.read()
        print("\nFINDING in %s: %s\n  input: %s\n  hex:   %s" % (name, what, os.path.relpath(path), show(data)))
    if findings:
        print("\n%d finding%s (replay one: %s tools/fuzz/fuzz.py NAME --replay FILE)"
              % (len(findings), "" if len(findings) == 1 else "s", os.path.relpath(sys.executable)))
        return 1
    print("no findings (%d s)" % (time.time() - start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
