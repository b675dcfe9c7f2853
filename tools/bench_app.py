#!/usr/bin/env python3
"""The whole application's cost per telegram on the dongle twin, for `make bench`.

firmware/main.py runs on the twin (32-bit, single-precision floats, firmware frozen, -X heapsize
as on the dongle) reading an emulated Luxembourg meter over TCP and serving 8 TCP clients that
read every telegram, with and without MQTT (telegram, state and Home Assistant discovery to a real
broker, every message read back). The twin's user CPU time (/proc/PID/stat) while it passes on
N telegrams, divided by N, is the cost per telegram in the steady state: WARMUP telegrams go first,
untimed, and with them what a start costs once (Home Assistant's discovery configs, ~50 of them,
sent when the broker is first reached; the window's own count of configs says if any fell in it).
The calibration loop is timed by the same
binary in the same run, so the ratio compares across machines. The kernel's time is reported
apart: on the host it is mostly loopback TCP doing the clients' side of every write, which on
the dongle lwIP does in the Wi-Fi task, not on MicroPython's core.

    tools/bench_app.py [--frames 1000] [--json FILE]
"""
import argparse
import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)

import emulator  # noqa: E402
from broker import LocalBroker, free_port  # noqa: E402
from soak import KEY, TELEGRAM_RE, TWIN, Console, Mqtt, start_twin, stop_twin  # noqa: E402

CLIENTS = 8
WARMUP = 40         # telegrams before the timed ones (at 20 ms: discovery is long sent by then)
CALIBRATION = """
import time
def cal():
    x = 0
    for i in range(100000):
        x ^= i
    return x
ts = []
for _ in range(7):
    t0 = time.ticks_us()
    cal()
    ts.append(time.ticks_diff(time.ticks_us(), t0))
ts.sort()
print(ts[3])
"""


def calibration_us(micropython):
    out = subprocess.run([micropython, "-c", CALIBRATION], capture_output=True, text=True, timeout=120)
    return int(out.stdout.strip())


def cpu_seconds(pid):
    """(user, system) CPU seconds of a process so far (/proc/PID/stat).

    User time is the app's own work. System time is mostly the kernel's loopback TCP (on the
    host every client's receive path runs inside the sender's write), which on the dongle is
    lwIP's work in the Wi-Fi task, not MicroPython's core: it is reported, not counted."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


async def measure(micropython, heap, frames, with_mqtt, interval=0.02):
    broker = LocalBroker().start() if with_mqtt else None
    watcher = Mqtt(broker.port) if broker else None
    if watcher and not watcher.subscribed.wait(20):
        raise SystemExit("bench_app: the MQTT watcher could not subscribe")
    workdir = tempfile.mkdtemp(prefix="p1dongle-bench-")
    meter = emulator.EmulatedMeter(KEY, seed=2)
    payload = [meter.next_bytes(1_790_000_000 + i) for i in range(WARMUP + frames)]
    conn = asyncio.get_running_loop().create_future()

    async def on_client(reader, writer):
        if not conn.done():
            conn.set_result(writer)

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    tcp_port = free_port()
    settings = {"key": KEY.hex(), "source": "tcp:127.0.0.1:%d" % server.sockets[0].getsockname()[1],
                "host": "127.0.0.1", "tcp_port": tcp_port, "status_interval": 0, "max_clients": CLIENTS + 2,
                "device_id": "bench", "http_port": free_port()}      # the web server up, as on the dongle
    if broker:
        settings["mqtt"] = {"host": "127.0.0.1", "port": broker.port}
    proc = start_twin(micropython, heap, workdir, settings)
    console = Console(proc, time.monotonic(), False)
    counts = [0] * CLIENTS
    tasks = []

    async def read(k):
        r, w = await asyncio.open_connection("127.0.0.1", tcp_port)
        buf = b""
        while True:
            data = await r.read(65536)
            if not data:
                return
            buf += data
            n = len(TELEGRAM_RE.findall(buf))
            if n:
                counts[k] += n
                buf = buf[buf.rindex(b"!") + 7:]

    try:
        await console.wait_async(r"plain telegrams on port %d" % tcp_port)
        if broker:
            await console.wait_async(r"mqtt .*: connected")
        for k in range(CLIENTS):
            tasks.append(asyncio.create_task(read(k)))
        await console.wait_async(r"connected \(%d clients\)" % CLIENTS)
        writer = await asyncio.wait_for(conn, 30)

        async def send(frames_, total):
            # the frames at the meter's pace, then until every client (and the broker) has them
            for data in frames_:
                writer.write(data)
                await writer.drain()
                await asyncio.sleep(interval)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (min(counts) < total or (
                    watcher and len(watcher.telegrams) < total)):
                await asyncio.sleep(0.05)
            if min(counts) < total:
                raise SystemExit("bench_app: clients got %s of %d telegrams:\n%s" % (counts, total, console.tail()))

        await send(payload[:WARMUP], WARMUP)
        configs = watcher.config_messages if watcher else None
        (u0, s0), t0 = cpu_seconds(proc.pid), time.monotonic()
        await send(payload[WARMUP:], WARMUP + frames)
        (u1, s1), t1 = cpu_seconds(proc.pid), time.monotonic()
        got_mqtt = len(watcher.telegrams) - WARMUP if watcher else None
        return {"cpu_us_per_telegram": 1e6 * (u1 - u0) / frames, "system_us_per_telegram": 1e6 * (s1 - s0) / frames,
                "seconds": t1 - t0, "frames": frames, "warmup": WARMUP,
                "mqtt_telegrams": got_mqtt, "memory_errors": console.memory_errors,
                "states": watcher.states if watcher else None,
                "discovery_configs": len(watcher.configs) if watcher else None,
                "discovery_configs_timed": watcher.config_messages - configs if watcher else None}
    finally:
        stop_twin(proc)
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        server.close()
        if watcher:
            watcher.close()
        if broker:
            broker.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def run(micropython=TWIN, heap="96K", frames=1000):
    # The calibration loop is timed before, between and after the runs, and the median taken:
    # on a shared machine (a VM, CI) one timing alone was off by up to 30 % now and then.
    cals = [calibration_us(micropython)]
    out = {"heap": heap, "clients": CLIENTS, "warmup": WARMUP}
    for name, mqtt in (("tcp", False), ("tcp_mqtt", True)):
        out[name] = asyncio.run(measure(micropython, heap, frames, mqtt))
        cals.append(calibration_us(micropython))
    cal = sorted(cals)[len(cals) // 2]
    out["calibration_us"] = cal
    out["calibrations_us"] = cals
    for name in ("tcp", "tcp_mqtt"):
        out[name]["ratio"] = out[name]["cpu_us_per_telegram"] / cal
    return out


def describe(r, esp32_cal_s=None):
    """The figures as the lines make bench prints."""
    lines = ["whole application on the dongle twin (%s heap, %d TCP clients reading every telegram), "
             "CPU per telegram after %d untimed; calibration loop %.2f ms (median of %s)" % (
                 r["heap"], r["clients"], r.get("warmup", 0), r["calibration_us"] / 1000,
                 ", ".join("%.2f" % (c / 1000) for c in r.get("calibrations_us", [r["calibration_us"]])))]
    for name, label in (("tcp", "TCP fan-out"), ("tcp_mqtt", "TCP fan-out + MQTT (telegram, state, discovery)")):
        x = r[name]
        esp = ""
        if esp32_cal_s:
            esp = "  -> ESP32 @240 MHz %.0f ms" % (1000.0 * esp32_cal_s[240] * x["ratio"])
        lines.append("  %-50s %.3f ms  %5.1f %%%s   (+ %.3f ms of loopback TCP in the kernel)" % (
            label, x["cpu_us_per_telegram"] / 1000, 100 * x["ratio"], esp, x["system_us_per_telegram"] / 1000))
        if x.get("discovery_configs_timed"):
            lines.append("  %-50s %d discovery configs sent while timed" % ("", x["discovery_configs_timed"]))
    return "\n".join(lines)


def main(argv=None):
    p = argparse.ArgumentParser(prog="bench_app.py", description=__doc__.split("\n\n")[0])
    p.add_argument("--frames", type=int, default=1000)
    p.add_argument("--heap", default="96K")
    p.add_argument("--micropython", default=TWIN)
    p.add_argument("--json")
    args = p.parse_args(argv)
    r = run(args.micropython, args.heap, args.frames)
    print(describe(r))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(r, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
