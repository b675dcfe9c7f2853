# On the dongle: start p1dongle (p1dongle/start.py reads the settings, runs the app, recovers).
# Also runs under the MicroPython unix port and CPython: `micropython firmware/main.py settings.json`.
#
# This file is the same for every version, so it never needs to match the package. The package
# frozen into the p1dongle image comes first: a p1dongle/ folder of files left from a stock image
# could otherwise shadow it, and loaded from files its code would fill the heap.
#
# It is also the files way's bootloader (p1dongle/update.py, bundle.py), as it must work when the
# package does not: an update's new file set (p1dongle.new/, main.py.new) is switched in here, the
# previous one kept (p1dongle.prev/, main.py.prev); a set on probation that boots a second time
# without having proven itself is switched back. A new firmware on probation (either way) that
# does not even start resets the dongle, so that the previous one runs again.
import sys

if ".frozen" in sys.path:
    sys.path.remove(".frozen")
    sys.path.insert(0, ".frozen")

RECORD = "p1dongle.update"


def _record():
    import json
    try:
        with open(RECORD) as f:
            record = json.loads(f.read())
        return record if isinstance(record, dict) else None
    except (OSError, ValueError):
        return None


def _write(record):
    import json
    import os
    with open(RECORD + ".new", "w") as f:
        f.write(json.dumps(record))
    os.rename(RECORD + ".new", RECORD)


def _exists(path):
    import os
    try:
        os.stat(path)
        return True
    except OSError:
        return False


def _remove(path):
    # a file, or a set's folder with its folders
    import os
    try:
        os.remove(path)
        return
    except OSError:
        pass
    try:
        for name in os.listdir(path):
            _remove(path + "/" + name)
        os.rmdir(path)
    except OSError:
        pass


def _swap(now, new, keep):
    # now -> keep, new -> now; each step can be done again after a power cut
    import os
    if not _exists(new):
        return
    if _exists(now):
        _remove(keep)
        os.rename(now, keep)
    os.rename(new, now)


def _back(now, prev):
    import os
    if _exists(prev):
        _remove(now)
        os.rename(prev, now)


def _files_boot():
    """The files way's switch and its way back, before the package loads. Returns the record."""
    r = _record()
    if not r or r.get("way") != "files":
        return r
    if r.get("state") == "switch":
        _swap("p1dongle", "p1dongle.new", "p1dongle.prev")
        _swap("main.py", "main.py.new", "main.py.prev")
        r["state"] = "trial"
        r["booted"] = 0
    elif r.get("state") == "trial" and r.get("booted"):
        # on probation it booted before and never proved itself: the previous set again (the
        # failed one goes)
        _back("p1dongle", "p1dongle.prev")
        _back("main.py", "main.py.prev")
        r["state"] = "back"
        r.setdefault("why", "it did not prove itself (a crash, a reset or a power cut on probation)")
    if r.get("state") == "trial":
        r["booted"] = 1
    _write(r)
    return r


def _reset():
    try:
        import machine
        machine.reset()
    except (ImportError, AttributeError):
        raise SystemExit(75)    # a PC, the unix port: whoever runs it starts it again


def _start():
    # in a function, so that nothing of the package stays referenced here once it stops
    from p1dongle.start import main
    main()


try:
    _rec = _files_boot()
except OSError as e:
    print("p1dongle: the files way's switch: %r" % e)
    _rec = None
try:
    _start()
except Exception as e:          # noqa: BLE001 - a new firmware that cannot even start
    if not _rec or _rec.get("state") != "trial":
        raise
    print("p1dongle: the new firmware did not start (%r): back to the previous one" % e)
    _rec["why"] = "it did not start: %r" % e
    _write(_rec)
    _reset()
