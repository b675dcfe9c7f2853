# The image way of updating: a new p1dongle image written into the app slot that is not running,
# 4 KB block by block as it arrives (never whole in the heap), and made the boot slot only once
# update.py has checked its SHA-256. The ESP32's bootloader then boots it on probation (app
# rollback): update.py marks it valid once it has proven itself, else the next reset boots the
# previous slot again.
#
# partition: esp32.Partition on the dongle, fakeflash.Partition on a PC and the dongle twin.
#
# What an app image is (ESP-IDF, esp_app_format.h): a 24-byte image header (magic 0xE9; the chip
# id at offset 12, little-endian: 0 ESP32, 5 ESP32-C3, 9 ESP32-S3), the first segment's 8-byte
# header, then the app description: magic 0xABCD5432 at offset 32, the version (PROJECT_VER: the
# boards set it to p1dongle's VERSION) at 48, 32 bytes, NUL-padded.
from .errors import UpdateError

BLOCK = 4096            # the flash's erase block
PIECE = 512             # written at a time (a divisor of BLOCK; the first holds the app description)
_APP_DESC_MAGIC = b"\x32\x54\xcd\xab"
_CHIPS = {0: "ESP32", 2: "ESP32-S2", 5: "ESP32-C3", 9: "ESP32-S3", 13: "ESP32-C6"}


def image_facts(head):
    """(chip id, version) from an app image's first bytes (48 at least); UpdateError when they
    are not an app image's."""
    if len(head) < 80 or head[0] != 0xE9 or bytes(head[32:36]) != _APP_DESC_MAGIC:
        raise UpdateError("not an ESP32 app image: send the image's .app.bin (the p1dongle-...-app.bin "
                          "of a release, or build/micropython.bin), not the whole-flash firmware file")
    version = bytes(head[48:80])
    end = version.find(b"\x00")
    try:
        text = (version[:end] if end >= 0 else version).decode()
    except UnicodeError:
        text = "?"                      # not p1dongle's: its chip is what is checked
    return head[12] | head[13] << 8, text


def chip_name(chip):
    return _CHIPS.get(chip, "chip %d" % chip)


class ImageSlots:
    """The dongle's two app slots."""
    way = "image"

    def __init__(self, partition_class):
        self.partition = partition_class
        self.running = partition_class(partition_class.RUNNING)
        self.next = self.running.get_next_update()     # OSError/ValueError: no OTA slots
        head = bytearray(80)
        self.running.readblocks(0, head)
        try:
            self.chip, self.version = image_facts(head)
        except UpdateError:
            self.chip, self.version = None, None        # a fresh fake flash: nothing there yet

    def label(self):
        return self.running.info()[4]

    def runs(self, record):
        """Whether the firmware running is the one the update record updated to."""
        return record.get("slot") == self.label()

    def receiver(self, size):
        room = self.next.ioctl(4, 0) * self.next.ioctl(5, 0)
        if size > room:
            raise UpdateError("the image is %d KB, the dongle's app slot %d KB: it is not a p1dongle image "
                              "for this board" % (size // 1024, room // 1024))
        return ImageReceiver(self, size)

    def mark_valid(self):
        self.partition.mark_app_valid_cancel_rollback()


class ImageReceiver:
    """Takes the image's bytes in order (into space(), then took(n)) and writes them as they
    come: a 512-byte piece at a time, each 4 KB block erased when the image reaches it. (A 4 KB
    buffer would be the one large block an update asks of a heap that the telegrams have broken
    up; flash takes any length once its block is erased.)"""

    def __init__(self, slots, size):
        self.slots = slots
        self.size = size
        self.piece = bytearray(PIECE)
        self.fill = 0
        self.at = 0                     # bytes written to the slot
        self.version = None

    def space(self):
        return memoryview(self.piece)[self.fill:]

    def took(self, n):
        self.fill += n
        if self.fill == PIECE:
            self._write()

    def _write(self):
        if self.at == 0:
            # the first piece says what the image is: refused before a byte of the slot is touched
            chip, self.version = image_facts(self.piece)
            mine = self.slots.chip
            if mine is not None and chip != mine:
                raise UpdateError("an image for the %s, and this dongle is an %s: nothing changed"
                                  % (chip_name(chip), chip_name(mine)))
        slot = self.slots.next
        block, offset = divmod(self.at, BLOCK)
        if offset == 0:
            slot.ioctl(6, block)        # erase the block the image has reached
        slot.writeblocks(block, memoryview(self.piece)[:self.fill], offset)
        self.at += self.fill
        self.fill = 0

    def check(self):
        """All bytes are in and their SHA-256 checked: the last block written. Returns the new
        image's version."""
        if self.fill:
            self._write()
        return self.version

    def commit(self):
        """The slot becomes the boot slot (the bootloader verifies the image first)."""
        try:
            self.slots.next.set_boot()
        except OSError as e:
            raise UpdateError("the new slot did not verify as an app image (%s): nothing changed" % e)

    def abort(self):
        pass                            # the slot is not the boot slot: what is there does no harm
