# A file-backed stand-in for the ESP32's two app slots and their boot state (esp32.Partition and
# ESP-IDF's bootloader with app rollback), so that the image way of updating runs on a PC and on
# the dongle twin: platform_host uses it when P1DONGLE_FLASH names a folder.
#
# The folder holds ota_0.bin and ota_1.bin (the slots, written 4 KB block by block as the ESP32's
# flash is) and otadata.json (which slot boots, and each slot's state), replaced in one rename as
# otadata's sectors are. boot() is the bootloader, run once when the process starts (the dongle's
# power-on): a slot made the boot slot (set_boot: "new") boots once on probation ("pending"); if it
# is still pending at the next boot (it crashed, the watchdog reset it, or it reset itself without
# proving itself) it is "aborted" and the other slot boots again, as
# CONFIG_BOOTLOADER_APP_ROLLBACK_ENABLE does. mark_app_valid_cancel_rollback() makes it "valid".
# Killing the process is a power cut: each write is on disk when the call returns.
import json
import os

from .config import save

BLOCK = 4096                 # the ESP32's flash sector: what an erase takes
SLOT_SIZE = 0x180000         # partitions-4MiB-ota.csv: two 1.5 MB app slots
LABELS = ("ota_0", "ota_1")

_ERASED = b"\xff" * 256
_state = {"dir": "", "running": ""}     # the flash's folder once booted, the slot running


def _otadata_path():
    return _state["dir"] + "/otadata.json"


def _read():
    try:
        with open(_otadata_path()) as f:
            return json.load(f)
    except OSError:
        return {"boot": "ota_0", "states": {"ota_0": "valid", "ota_1": "empty"}}


def _write(data):
    save(_otadata_path(), data)         # replaced in one rename, as otadata's sectors are


def boot(folder):
    """The bootloader: choose the slot this process runs, as the ESP32's would at power-on.
    Returns (label, rolled back from: the slot given up, or None)."""
    _state["dir"] = folder
    try:
        os.mkdir(folder)
    except OSError:
        pass                         # there already
    data = _read()
    label = data["boot"]
    states = data["states"]
    came_back = None
    if states.get(label) == "pending":
        # booted once on probation and never proved itself: back to the other slot
        states[label] = "aborted"
        came_back = label
        label = _other(label)
        data["boot"] = label
    elif states.get(label) == "new":
        states[label] = "pending"
    _write(data)
    _state["running"] = label
    return label, came_back


def _other(label):
    return LABELS[1] if label == LABELS[0] else LABELS[0]


def state(label):
    """A slot's state: empty, new, pending, valid or aborted (for tests and status)."""
    return _read()["states"].get(label, "empty")


class Partition:
    """What the image way uses of esp32.Partition, on files."""
    BOOT = 0
    RUNNING = 1

    def __init__(self, which, block_size=BLOCK):
        if _state["dir"] is None:
            raise OSError("no flash: fakeflash.boot() first")
        if which == Partition.RUNNING:
            which = _state["running"]
        elif which == Partition.BOOT:
            which = _read()["boot"]
        if which not in LABELS:
            raise ValueError("no partition " + str(which))
        self.label = str(which)
        self.block_size = block_size    # type: int
        self.path = "%s/%s.bin" % (_state["dir"], which)

    def info(self):
        # (type, subtype, address, size, label, encrypted), as esp32.Partition.info()
        return (0, 0x10 + LABELS.index(self.label), 0x10000 + LABELS.index(self.label) * SLOT_SIZE,
                SLOT_SIZE, self.label, False)

    def get_next_update(self):
        return Partition(_other(self.label), self.block_size)

    def _file(self):
        try:
            return open(self.path, "r+b")
        except OSError:
            with open(self.path, "wb"):
                pass
            return open(self.path, "r+b")

    def readblocks(self, block, buf, offset=0):
        with self._file() as f:
            f.seek(block * self.block_size + offset)
            data = f.read(len(buf))
        buf[:len(data)] = data
        for i in range(len(data), len(buf)):
            buf[i] = 0xFF            # never written: erased flash
        return None

    def writeblocks(self, block, buf, offset=None):
        at = block * self.block_size + (offset or 0)
        if at + len(buf) > SLOT_SIZE:
            raise OSError("write beyond the partition's end")
        with self._file() as f:
            f.seek(at)
            f.write(buf)
        return None

    def ioctl(self, op, arg):
        if op == 4:
            return SLOT_SIZE // self.block_size
        if op == 5:
            return self.block_size
        if op == 6:
            # erased: 0xFF, written a little at a time (this fake shares the twin's heap, which
            # the ESP32's flash driver does not)
            with self._file() as f:
                f.seek(arg * self.block_size)
                for _ in range(self.block_size // len(_ERASED)):
                    f.write(_ERASED)
            return 0
        return None

    def set_boot(self):
        # as esp_ota_set_boot_partition: refused when the slot holds no app image
        head = bytearray(1)
        self.readblocks(0, head)
        if head[0] != 0xE9:
            raise OSError(-5379)     # ESP_ERR_OTA_VALIDATE_FAILED
        data = _read()
        data["boot"] = self.label
        data["states"][self.label] = "new"
        _write(data)

    @classmethod
    def mark_app_valid_cancel_rollback(cls):
        data = _read()
        data["states"][_state["running"]] = "valid"
        _write(data)
