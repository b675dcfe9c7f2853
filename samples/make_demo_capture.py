#!/usr/bin/env python3
"""Make samples/demo-capture.hex: what `make sim` decrypts.

Three Luxembourg frames, 10 s apart, with advancing registers, encrypted with the demo key
0123456789ABCDEF0123456789ABCDEF (never use it on a real meter) and Luxembourg's default
authentication key. Like a real capture, it starts in the middle of a frame.
Run it again after changing the layout: `.venv/bin/python samples/make_demo_capture.py`.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "host_tests"))

import meter  # noqa: E402

DEMO_KEY = bytes.fromhex("0123456789ABCDEF0123456789ABCDEF")


def body(i):
    lines = list(meter.LUX_BODY)
    lines[1] = "0-0:1.0.0(2611241000%02dW)" % (i * 10)
    lines[3] = "1-0:1.8.0(%010.3f*kWh)" % (23949.193 + i * 0.0007)
    lines[7] = "1-0:1.7.0(%06.3f*kW)" % (0.231 + i * 0.012)
    return lines


def main():
    frames = [meter.frame(meter.telegram(body(i)), key=DEMO_KEY, counter=0x1A2B00 + i) for i in range(4)]
    data = frames[0][-300:] + b"".join(frames[1:])
    hexed = data.hex()
    with open(os.path.join(HERE, "demo-capture.hex"), "w") as f:
        f.write("\n".join(hexed[i:i + 64] for i in range(0, len(hexed), 64)) + "\n")


if __name__ == "__main__":
    main()
