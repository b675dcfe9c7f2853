# The files way of updating (a stock MicroPython image on a PSRAM board, the package in .mpy
# files): a bundle of the files tools/flash.py install writes, staged beside the running ones
# (p1dongle.new/, main.py.new) as it arrives. main.py switches the sets at the next boot, keeping
# the previous ones (p1dongle.prev/, main.py.prev), and switches back when the new set does not
# prove itself (see update.py).
#
# A bundle (pack() makes one; tools/flash.py update sends it):
#   b"P1B1", 1 byte n, the version (n bytes of UTF-8)
#   per file: 1 byte n, its path (n bytes: "main.py" or "p1dongle/[FOLDER/]NAME.mpy"), 4 bytes its size
#             (big-endian), its bytes
#   1 byte 0: the end
import os
import sys

from .errors import UpdateError

MAGIC = b"P1B1"
STAGED = "p1dongle.new"
NEEDED = ("main.py", "p1dongle/__init__.mpy", "p1dongle/start.mpy", "p1dongle/app.mpy")


def pack(version, files):
    """A bundle: files [(path, bytes)]."""
    out = [MAGIC, bytes([len(version)]), version.encode()]
    for path, data in files:
        name = path.encode()
        out += [bytes([len(name)]), name, len(data).to_bytes(4, "big"), data]
    out.append(b"\x00")
    return b"".join(out)


def _text(b):
    try:
        return bytes(b).decode()
    except UnicodeError:
        raise UpdateError("not a p1dongle bundle (a name that is not UTF-8): nothing changed")


def _allowed(name):
    # main.py, or a module of the package: p1dongle/ and up to two folders, each part a Python name
    if name == "main.py":
        return True
    if not name.startswith("p1dongle/") or not name.endswith(".mpy"):
        return False
    parts = name[9:-4].split("/")
    for part in parts:
        if not 0 < len(part) <= 40 or not all(c.isalpha() or c.isdigit() or c == "_" for c in part):
            return False
    return len(parts) <= 3


def _loads_here(path, mpy):
    """Whether this MicroPython (sys.implementation._mpy: the .mpy version in its low byte, the
    native architecture and its sub-version above) loads the .mpy file at path: the same version;
    a file with native code (byte 2 not 0) for this CPU and native sub-version."""
    with open(path, "rb") as f:
        head = f.read(4)
    if len(head) < 4 or head[0] != 0x4D or head[1] != mpy & 0xFF:
        return False
    return head[2] == 0 or head[2] == (mpy >> 8) & 0xFF


def remove_tree(path):
    """A staged or kept set (a folder, its folders too), gone."""
    try:
        names = [e[0] for e in os.ilistdir(path)] if hasattr(os, "ilistdir") else os.listdir(path)
    except OSError:
        return
    for name in names:
        try:
            os.remove(path + "/" + name)
        except OSError:
            remove_tree(path + "/" + name)
    os.rmdir(path)


class FileSets:
    """The running file set (p1dongle/, main.py) and the one being staged."""
    way = "files"

    def __init__(self, version):
        self.version = version
        self.mpy = getattr(sys.implementation, "_mpy", None)   # what this MicroPython loads

    def receiver(self, size):
        return BundleReceiver(self)

    def runs(self, record):
        return True         # main.py switched the sets (and says "back" when it switched back)

    def mark_valid(self):
        pass                # main.py keeps the previous set until the next update; nothing to do


class BundleReceiver:
    """Takes a bundle's bytes in order (into space(), then took(n)); each file is written as it
    comes."""

    def __init__(self, sets):
        self.sets = sets
        self.buf = bytearray(512)
        self.head = bytearray()         # a header being gathered
        self.file = None                # the file being written, and what of it is still to come
        self.left = 0
        self.name = None
        self.names = []
        self.version = None
        self.ended = False
        remove_tree(STAGED)             # what an earlier, cut update left
        os.mkdir(STAGED)

    def space(self):
        return memoryview(self.buf)

    def took(self, n):
        i = 0
        while i < n:
            if self.file is not None:
                k = min(self.left, n - i)
                self.file.write(self.buf[i:i + k])
                self.left -= k
                i += k
                if not self.left:
                    self._close()
                continue
            if self.ended:
                raise UpdateError("bytes after the bundle's end: not a p1dongle bundle")
            self.head.append(self.buf[i])
            i += 1
            self._header()

    def _header(self):
        h = self.head
        if self.version is None:
            if len(h) == 4 and bytes(h) != MAGIC:
                raise UpdateError("not a p1dongle update: send a p1dongle image or the bundle tools/flash.py update makes")
            if len(h) > 4 and len(h) == 5 + h[4]:
                self.version = _text(h[5:])
                self.head = bytearray()
            return
        if h[0] == 0:
            self.ended = True
            return
        if len(h) < 1 + h[0] + 4:
            return
        name = _text(h[1:1 + h[0]])
        if not _allowed(name) or name in self.names:
            raise UpdateError("the bundle holds %r, which is not a p1dongle file: nothing changed" % name)
        self.name = name
        self.left = int.from_bytes(h[1 + h[0]:], "big")
        self.head = bytearray()
        self.names.append(name)
        self._folders(name)
        self.file = open(self._staged(name), "wb")
        if not self.left:
            self._close()

    def _folders(self, name):
        # the staged set's folders this file is in, made as the first file in each arrives
        at = name.find("/", 9)
        while at > 0:
            try:
                os.mkdir(self._staged(name[:at]))
            except OSError:
                pass            # made for an earlier file
            at = name.find("/", at + 1)

    def _staged(self, name):
        return "main.py.new" if name == "main.py" else STAGED + name[8:]

    def _close(self):
        self.file.close()
        self.file = None
        mpy = self.sets.mpy
        if self.name.endswith(".mpy") and mpy is not None:
            if not _loads_here(self._staged(self.name), mpy):
                raise UpdateError("%s is compiled for another MicroPython (.mpy version or architecture): "
                                  "nothing changed" % self.name)

    def check(self):
        if not self.ended:
            raise UpdateError("the bundle ends early: nothing changed")
        missing = [n for n in NEEDED if n not in self.names]
        if missing:
            raise UpdateError("the bundle lacks %s: nothing changed" % ", ".join(missing))
        return self.version

    def commit(self):
        pass                # the record says "switch": main.py switches the sets at the next boot

    def abort(self):
        if self.file is not None:
            self.file.close()
            self.file = None
        remove_tree(STAGED)
        try:
            os.remove("main.py.new")
        except OSError:
            pass
