# On the dongle: start p1dongle (p1dongle/start.py reads the settings, runs the app, recovers).
# Also runs under the MicroPython unix port and CPython: `micropython firmware/main.py settings.json`.
#
# This file is the same for every version, so it never needs to match the package. The package
# frozen into the p1dongle image comes first: a p1dongle/ folder of files left from a stock image
# could otherwise shadow it, and loaded from files its code would fill the heap.
import sys

if ".frozen" in sys.path:
    sys.path.remove(".frozen")
    sys.path.insert(0, ".frozen")


def _start():
    # in a function, so that nothing of the package stays referenced here once it stops
    from p1dongle.start import main
    main()


_start()
