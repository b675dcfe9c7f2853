# The target is a PC or the MicroPython unix port: the meter's bytes come from a TCP P1 reader, a
# file or (CPython) a serial port, and the network is already there.
import asyncio
import time

from .config import SOURCE_KINDS, source_here, source_parts
from .errors import ConfigError
from .sources import parse_source


def make_source(cfg, log=print):
    source_here(cfg["source"], SOURCES)        # no uart here: the dongle has it
    kind, where, baud = source_parts(cfg["source"])
    if kind == "serial":
        return SerialSource(where, baud or cfg["uart"]["baud"], cfg["uart"])
    return parse_source(cfg["source"], log)


FIRST_SETUP = False     # a missing settings file is a mistake here (the dongle asks for them)
SOURCES = SOURCE_KINDS["host"]


def defaults():
    # a PC does not announce itself by mDNS (a simulator would pass for a HomeWizard on the LAN)
    return {"mdns": False}


def serial():
    # a PC is no HomeWizard: a fixed serial, as twelve hex digits like a MAC address
    return "000000000000"


def restart():
    """New settings: on a PC the app starts again in the same process (main.py, sim.py)."""


def start_network(cfg, log=print):
    pass


def info():
    return {}


def identify(cfg):
    """HomeWizard's identify: a PC has no LED to blink."""
    return False


def on_started(app):
    pass


def wait(seconds):
    """Before the app starts again after an error."""
    time.sleep(seconds)


def save_status(path, line):
    # Beside the settings file, for tools/flash.py status (the dongle keeps it in RTC memory).
    with open(path, "w") as f:
        f.write(line)


def load_status(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return None


class SerialSource:
    """A USB P1 cable (CPython with pyserial) on device at baud; framing from the uart settings."""

    def __init__(self, device, baud, uart):
        try:
            import serial
        except ImportError:
            raise ConfigError("source serial: needs pyserial (pip install pyserial)")
        parity = {None: serial.PARITY_NONE, "even": serial.PARITY_EVEN, "odd": serial.PARITY_ODD}[uart["parity"]]
        self.name = "serial:%s@%d" % (device, baud)
        try:
            # USB P1 cables invert in hardware, so no inversion here.
            self.port = serial.Serial(device, baud, bytesize=uart["bits"], parity=parity,
                                      stopbits=uart["stop"], timeout=0.2)
        except (OSError, ValueError, serial.SerialException) as e:
            raise ConfigError("source serial: cannot open %s: %s" % (device, e))

    def describe(self):
        return self.name

    async def readinto(self, buf):
        loop = asyncio.get_running_loop()
        while True:
            data = await loop.run_in_executor(None, self.port.read, len(buf))
            if data:
                buf[:len(data)] = data
                return len(data)

    async def close(self):
        self.port.close()


def partitions():
    """The app slots of the image way of updating (update.py): on a PC and the dongle twin, the
    file-backed fake of the ESP32's (fakeflash.py) in the folder P1DONGLE_FLASH names, booted
    (its bootloader's choice made) once per process; None without it."""
    import os
    folder = os.getenv("P1DONGLE_FLASH")
    if not folder:
        return None
    from . import fakeflash
    if fakeflash._state["dir"] != folder:
        fakeflash.boot(folder)
    return fakeflash.Partition


REBOOT = 75     # the exit status that asks whoever runs the process to start it again


def reboot():
    """The dongle's reset (into a new firmware, or back to the previous one): the process ends
    with REBOOT, and whatever runs it (a test, tools/fakedevice) starts it again; killing it
    is a power cut."""
    raise SystemExit(REBOOT)
