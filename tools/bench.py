"""make bench: how fast the data path is, per frame, on the dongle twin and CPython; and what the
whole application costs per telegram on the twin.

Runs tools/bench_job.py on the dongle twin (MicroPython's unix port built like the ESP32 port:
build/micropython-p1dongle, with the viper loops the dongle uses, and once more with the portable
ones for comparison) and under CPython, then prints one table:
time per 1.2 KB Luxembourg frame fed in 64-byte UART reads (assembler + decrypt + tag check + CRC),
the same as a percentage of a calibration loop (`for i in range(100000): x += i`) timed in the
same run, the ESP32 time that percentage implies (a rough guide: see below), bytes allocated per frame and the pipeline's
heap. --json FILE writes the figures for comparing commits. Nothing here passes or fails.

The ESP32 estimate assumes the calibration loop takes 0.5 s on an ESP32 at 240 MHz (0.75 s at
160 MHz): MicroPython bytecode there runs about 100-150 times slower than the unix port on a
current PC core, where the loop takes 3-5 ms. The native (viper) and AES parts scale differently
(the ESP32 has AES in hardware), so read the estimate as a rough guide, not a promise.

Then tools/bench_app.py runs firmware/main.py itself on the twin, serving 8 TCP clients, without
and with MQTT, and prints its CPU time per telegram as a ratio to the twin's calibration loop.
"""
import argparse
import json
import os
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
JOB = os.path.join(HERE, "bench_job.py")
ESP32_CAL_S = {240: 0.5, 160: 0.75}     # assumed calibration loop time on the dongle, seconds


TWIN = os.path.join(ROOT, "build", "micropython-p1dongle")


def find_micropython():
    """The dongle twin (make firmware-unix), the MicroPython whose figures count."""
    return TWIN if os.path.exists(TWIN) else None


def run_job(cmd, env=None):
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    if out.returncode != 0:
        raise SystemExit("bench: %s failed:\n%s" % (" ".join(cmd), out.stderr.strip()))
    return json.loads(out.stdout.strip().splitlines()[-1])


def reference_aesgcm(runs):
    """cryptography's AESGCM on the same frame: what a C implementation takes on this machine."""
    sys.path.insert(0, os.path.join(ROOT, "firmware"))
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from p1dongle.dlms import LUX_AUTH_KEY
    key = bytes.fromhex("0123456789abcdef" * 4)[:16]
    iv = b"SAG\x67\x70\x01\x7a\x3f\x00\x00\x00\x01"
    aead = AESGCM(key)
    sealed = aead.encrypt(iv, bytes(1183), b"\x30" + LUX_AUTH_KEY)
    times = []
    for _ in range(runs):
        # AESGCM wants a 16-byte tag (meters send 12): the same GHASH and CTR work either way.
        t0 = time.perf_counter_ns()
        aead.decrypt(iv, sealed, b"\x30" + LUX_AUTH_KEY)
        times.append((time.perf_counter_ns() - t0) // 1000)
    times.sort()
    return times[len(times) // 2]


def ms(us):
    return "%.3f ms" % (us / 1000.0)


def table(results, ref_us):
    cols = [r["label"] for r in results]
    rows = [("calibration loop", [ms(r["calibration_us"]) for r in results])]

    def stage(name, key):
        cells = []
        for r in results:
            us = r["us"][key]
            cells.append("%s  %5.2f %%" % (ms(us), 100.0 * us / r["calibration_us"]))
        rows.append((name, cells))

    stage("frame assembler", "assembler")
    stage("GCM decrypt + tag", "decrypt")
    stage("CRC check", "crc")
    stage("whole pipeline", "pipeline")
    for mhz, cal_s in sorted(ESP32_CAL_S.items(), reverse=True):
        rows.append(("-> ESP32 @%d MHz" % mhz,
                     ["%.1f ms" % (1000.0 * cal_s * r["us"]["pipeline"] / r["calibration_us"])
                      if r["interpreter"] == "micropython" else "" for r in results]))
    rows.append(("allocated per frame",
                 ["%d B (its copy into the backlog %d + %d)" % (r["alloc_per_frame"], r["alloc_telegram"],
                                                            r["alloc_per_frame"] - r["alloc_telegram"])
                  if "alloc_per_frame" in r else "n/a" for r in results]))
    rows.append(("pipeline heap kept/peak",
                 ["%.1f / %.1f KB" % (r["heap_resident"] / 1024.0, r["heap_peak"] / 1024.0)
                  if "heap_peak" in r else "n/a" for r in results]))
    rows.append(("cryptography AESGCM", ["" for r in results[:-1]] + [ms(ref_us) if ref_us is not None else ""]))
    w0 = max(len(r[0]) for r in rows)
    widths = [max(len(c), max(len(r[1][i]) for r in rows)) for i, c in enumerate(cols)]
    lines = ["  ".join([" " * w0] + [c.rjust(w) for c, w in zip(cols, widths)])]
    for name, cells in rows:
        lines.append("  ".join([name.ljust(w0)] + [c.rjust(w) for c, w in zip(cells, widths)]))
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 epilog="Figures vary with the machine's load; compare ratios, not times.")
    ap.add_argument("--runs", type=int, default=200, help="frames timed per stage and round (default 200)")
    ap.add_argument("--json", metavar="FILE", help="also write the figures as JSON to FILE")
    ap.add_argument("--no-portable", action="store_true", help="skip MicroPython with the portable loops (slow)")
    ap.add_argument("--no-app", action="store_true", help="skip the whole application's figures")
    ap.add_argument("--app-frames", type=int, default=1000, help="telegrams the application bench times (default 1000)")
    args = ap.parse_args(argv)

    results = []
    mp = find_micropython()
    if mp:
        env = dict(os.environ, MICROPYPATH=".frozen:" + os.path.join(ROOT, "firmware"))
        base = [mp, "-X", "heapsize=64M", JOB, "--runs", str(args.runs)]
        r = run_job(base, env)
        r["label"] = "twin %s (%s)" % (r["version"], "viper" if r["loops"] == "loops_viper" else "portable")
        results.append(r)
        if not args.no_portable:
            r = run_job(base[:-1] + [str(max(20, args.runs // 10)), "--portable"], env)
            r["label"] = "twin %s (portable)" % r["version"]
            results.append(r)
    else:
        print("bench: no dongle twin %s (make firmware-unix); CPython only" % TWIN, file=sys.stderr)
    r = run_job([sys.executable, JOB, "--runs", str(args.runs)])
    r["label"] = "CPython %s" % r["version"]
    results.append(r)
    ref = reference_aesgcm(args.runs)

    first = results[0]
    print("p1dongle bench: one %d-byte Luxembourg frame (%d-byte telegram) in %d-byte reads; medians, best of 3 rounds"
          % (first["frame_bytes"], first["telegram_bytes"], first["chunk_bytes"]))
    print("(%% = time / calibration loop in the same run; the ESP32 rows assume the loop takes %s there and"
          % ", ".join("%.2f s at %d MHz" % (s, m) for m, s in sorted(ESP32_CAL_S.items(), reverse=True)))
    print(" scale viper code and AES like bytecode, so they overstate: the dongle has AES in hardware)")
    print()
    print(table(results, ref))
    app = None
    if mp and not args.no_app:
        import bench_app
        app = bench_app.run(mp, frames=args.app_frames)
        print()
        print(bench_app.describe(app, ESP32_CAL_S))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"results": results, "cryptography_aesgcm_us": ref, "esp32_calibration_s": ESP32_CAL_S,
                       "app": app}, f, indent=2, sort_keys=True)
        print("\nwrote " + args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
