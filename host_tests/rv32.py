"""The RV32 twin under QEMU: MicroPython's raw REPL over the emulated UART, on stdio pipes.

    with Rv32() as dev:
        dev.exec("print(1)")             # -> "1\\r\\n"; a Python error on the device raises Rv32Error
        dev.run_job({"job": "dsmr", ...})   # mp_job.run(job) on the device -> its result

The image (build/micropython-rv32.elf, `make firmware-rv32`) has host_tests/mp_job.py frozen and a
140 KB heap, about the ESP32-C3's. A job's JSON (some are tens of KB of hex) cannot be sent as one
source string (the raw REPL holds the source, the compiler a copy): it goes into a bytearray
allocated first, a few KB of hex per exec; then mp_job.run(json.loads(it)) runs and json.dump
streams the result to the UART. Jobs that are lists of independent cases and too big for the heap
are split into batches, one clean heap each (soft reset), and their result lists joined. A job that
still does not fit raises MemoryError on the device and fails here: nothing is skipped.

`python host_tests/rv32.py JOB.json` prints the job's result, as `python host_tests/mp_job.py`.
"""
import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ELF = os.path.join(ROOT, "build", "micropython-rv32.elf")
QEMU = "qemu-system-riscv32"
# The ESP32-C3's instruction set: RV32IMC (with Zicsr, Zifencei). QEMU 7.2's rv32 has more by
# default; these are turned off so that an instruction the C3 lacks traps ("Illegal instruction"
# and QEMU exits): Zba/Zbb/Zbc/Zbs (the qemu port's viper would use Zba), A (atomics), F and D
# (the C3 has no FPU; the image is soft-float).
CPU = "rv32,a=false,f=false,d=false,zba=false,zbb=false,zbc=false,zbs=false"
PROMPT = b"raw REPL; CTRL-B to exit\r\n>"
# Job JSON per batch. Parsed, a job takes about 3 times its JSON (a str and a dict per case), and
# the GCM cases then want 5 KB in one piece for each key's GHASH table: 16 KB batches of the GCM
# vectors ran out of heap, 12 KB ones ran; 8 KB leaves room. Jobs that are not lists of cases go
# whole: the biggest (a pipeline stream) is ~15 KB.
BATCH_BYTES = 8 * 1024
CHUNK = 2048            # job bytes per exec: 4 KB of hex source, a small peak beside the job
# Jobs that are a list of independent cases, each giving one entry of a result list (loops: one
# entry of each implementation's list).
SPLITTABLE = {"gcm_decrypt": "cases", "gcm_encrypt": "cases", "dsmr": "telegrams", "loops": "cases"}


class Rv32Error(Exception):
    """The device said no (a Python exception, with its traceback), died, or did not answer."""


def _die_with_parent():
    # An idle QEMU spins a host core polling its UART (the port has no receive interrupt), forever
    # if nobody kills it: if the tests themselves are killed, the kernel ends it too.
    import ctypes
    ctypes.CDLL(None).prctl(1, signal.SIGKILL)      # PR_SET_PDEATHSIG


class Rv32:
    def __init__(self, elf=ELF, cpu=CPU, timeout=120):
        self.elf, self.cpu, self.timeout = elf, cpu, timeout
        self.proc = None
        self._buf = b""

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc):
        self.close()

    def start(self):
        self.close()                                # a QEMU that died: its pipes
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(
            [QEMU, "-machine", "virt", "-cpu", self.cpu, "-nographic", "-monitor", "null", "-semihosting",
             "-bios", "none", "-serial", "stdio", "-kernel", self.elf],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr, preexec_fn=_die_with_parent)
        self._buf = b""
        self.banner = self._read_until(b">>> ")     # the friendly REPL: booted
        self._send(b"\r\x01")                       # Ctrl-A: raw REPL
        self._read_until(PROMPT)
        # The qemu port never turns on the 16550's receive FIFO; without it QEMU moves one byte
        # per turn of its main loop (~35 KB/s), with it 14 (~220 KB/s). Only the emulated UART
        # changes: no code the firmware runs does.
        self.exec("import machine\nmachine.mem8[0x10000002] = 0xC7\ndel machine")

    def close(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc.stdin.close()
            self.proc.stdout.close()
            self._stderr.close()
            self.proc = None

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def _send(self, data):
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except BrokenPipeError:
            raise Rv32Error("QEMU has exited" + self._last_words()) from None

    def _last_words(self):
        self._stderr.seek(0)
        return ":\n%s%s" % (self._buf.decode(errors="replace")[-3000:], self._stderr.read().decode(errors="replace"))

    def _read_until(self, marker):
        """Everything up to and including marker; the rest stays buffered."""
        deadline = time.monotonic() + self.timeout
        fd = self.proc.stdout.fileno()
        while marker not in self._buf:
            left = deadline - time.monotonic()
            if left <= 0:
                said = self._last_words()
                self.close()
                raise Rv32Error("no %r from the device in %d s%s" % (marker, self.timeout, said))
            if select.select([fd], [], [], left)[0]:
                data = os.read(fd, 65536)
                if not data:        # QEMU closed its end: it is exiting; wait for that
                    try:
                        self.proc.wait(timeout=self.timeout)
                    except subprocess.TimeoutExpired:
                        self.proc.kill()
                    raise Rv32Error("QEMU has exited" + self._last_words())
                self._buf += data
        i = self._buf.index(marker) + len(marker)
        out, self._buf = self._buf[:i], self._buf[i:]
        return out

    def exec(self, code):
        """Run code in the raw REPL; its output (bytes); a Python error on the device raises."""
        self._send(code.encode() + b"\x04")
        self._read_until(b"OK")
        out = self._read_until(b"\x04")[:-1]
        err = self._read_until(b"\x04")[:-1]
        self._read_until(b">")
        if err:
            raise Rv32Error(err.decode(errors="replace"))
        return out

    def soft_reset(self):
        """Ctrl-D on an empty line: a fresh interpreter and heap (the frozen modules stay)."""
        self._send(b"\x04")
        self._read_until(b"soft reboot")
        self._read_until(PROMPT)

    def run_one(self, job):
        """mp_job.run(job) in a clean heap, the job sent in hex chunks; its result."""
        data = json.dumps(job).encode()
        self.soft_reset()
        self.exec("import json, sys, mp_job\nfrom binascii import unhexlify\nb = bytearray(%d)" % len(data))
        for i in range(0, len(data), CHUNK):
            part = data[i:i + CHUNK]
            self.exec("b[%d:%d] = unhexlify('%s')" % (i, i + len(part), part.hex()))
        out = self.exec("j = json.loads(b)\nb = None\njson.dump(mp_job.run(j), sys.stdout)")
        return json.loads(out)

    def run_job(self, job):
        key = SPLITTABLE.get(job["job"])
        if key is None or len(json.dumps(job)) <= BATCH_BYTES:
            return self.run_one(job)
        return _joined([self.run_one(batch) for batch in _batches(job, key)])


def _batches(job, key):
    """job with its list `key` cut into jobs of at most BATCH_BYTES of JSON (one item at least)."""
    rest = dict(job, **{key: []})
    base = len(json.dumps(rest))
    items, size = [], base
    for item in job[key]:
        n = len(json.dumps(item)) + 2
        if items and size + n > BATCH_BYTES:
            yield dict(rest, **{key: items})
            items, size = [], base
        items.append(item)
        size += n
    if items:
        yield dict(rest, **{key: items})


def _joined(results):
    """The batches' results as one: lists joined; in a dict, its lists joined and the rest (which
    implementation was chosen...) the same in every batch."""
    first = results[0]
    if isinstance(first, list):
        return [x for r in results for x in r]
    joined = {}
    for k, v in first.items():
        if isinstance(v, list):
            joined[k] = [x for r in results for x in r[k]]
        else:
            if any(r[k] != v for r in results):
                raise Rv32Error("the batches disagree on %s: %r" % (k, [r[k] for r in results]))
            joined[k] = v
    return joined


def run_job(job, elf=ELF):
    """One job on a QEMU booted for it (~50 ms): an idle QEMU would spin a host core."""
    with Rv32(elf) as dev:
        return dev.run_job(job)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(json.dumps(run_job(json.load(f))))
