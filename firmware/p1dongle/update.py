# Updates over Wi-Fi: receiving a new firmware (POST /api/update, web.py) and its probation.
#
# Two ways, one job:
#   image   the p1dongle image (its code frozen): the new image goes into the other app slot
#           (ota.py); the bootloader boots it and, until it is marked valid, boots the old one
#           again after any reset.
#   files   a stock MicroPython image on a PSRAM board: a bundle of the .mpy files (bundle.py) is
#           staged beside the running ones; main.py switches the sets at the next boot and
#           switches back when the new set does not prove itself.
#
# The stream's SHA-256 is checked before anything changes what boots: a wrong or cut transfer
# changes nothing and says why. Then the update record (RECORD, beside the settings, outside
# the slots; written whole or not at all) says what was updated to what, and the dongle resets.
#
# Probation: the new firmware proves itself by passing a telegram on, or (no meter connected)
# by serving the web page, within PROBATION_S. Then it is kept (the slot marked valid; the record
# "proven"). An error that stops the app, or the deadline passing, resets it on probation, and a
# crash or the watchdog does the same: either way the next boot runs the previous version, which
# then says why it came back.
import asyncio
import hashlib
import json
import sys
from binascii import unhexlify

from .compat import loops, stream_readinto, ticks_diff, ticks_ms, wait_for
from .config import save    # whole or not at all (the update record too)
from .errors import UpdateError

RECORD = "p1dongle.update"
PROBATION_S = 300
READ_TIMEOUT_S = 20     # a transfer silent for this long is cut


def read_record(path):
    try:
        with open(path) as f:
            record = json.loads(f.read())
        return record if isinstance(record, dict) else None
    except (OSError, ValueError):
        return None


class Updates:
    """The dongle's updates: way (ota.ImageSlots, bundle.FileSets or None, with why_not), the
    record at path, the running version; log(line)."""

    def __init__(self, way, path, version, log=print, why_not=None, probation_s=PROBATION_S):
        self.way = way
        self.path = path
        self.version = version
        self.log = log
        self.why_not = why_not or "updates need the p1dongle image or a stock image's file set"
        self.probation_s = probation_s
        self.busy = False
        self.received = 0
        self.size = 0
        self.to = None                  # the version being received, once its first block said it
        self.message = None             # what the last update attempt came to
        self.trial = False              # on probation: not proven yet
        self.came_back = None           # the line saying why the previous version runs again
        self._since = None             # when probation began (ticks)
        self.record = read_record(path)

    # -- at boot ---------------------------------------------------------------------------------

    def begin(self, running_to=None):
        """At start: is this a new firmware on probation, or the old one come back? running_to:
        whether the firmware that runs is the one the record updated to (the image way: the
        running slot is the record's; the files way: main.py's switch took)."""
        r = self.record
        if r and r.get("state") == "back":
            # (main.py switched the files back; said at every start until the next update)
            self.came_back = "back on %s: the update to %s did not take: %s" % (self.version, r.get("to"), r.get("why"))
            self.log("p1dongle: " + self.came_back)
            return
        if not r or r.get("state") != "trial":
            return
        if running_to:
            self.trial = True
            self._since = ticks_ms()
            self.log("p1dongle %s: on probation after the update from %s: it is kept once it passes a telegram "
                     "on or serves the web page, within %d s" % (self.version, r.get("from"), self.probation_s))
            return
        why = r.get("why") or "it did not prove itself (a crash, a watchdog reset or a power cut on probation)"
        self.came_back = "back on %s: the update to %s did not take: %s" % (self.version, r.get("to"), why)
        r["state"] = "back"
        r["why"] = why
        self._save()
        self.log("p1dongle: " + self.came_back)

    def proven(self, how):
        """The new firmware did its job (how: what it did): it is kept."""
        if not self.trial:
            return
        self.trial = False
        if self.way is not None:
            try:
                self.way.mark_valid()
            except OSError as e:        # an image built without app rollback: nothing to cancel
                self.log("p1dongle: the slot could not be marked valid: %r" % e)
        self.record["state"] = "proven"
        self._save()
        self.log("p1dongle %s: proven (%s); the update from %s is kept" % (self.version, how, self.record.get("from")))

    def overdue(self):
        """On probation past its deadline: the caller resets, and the previous version boots."""
        if self.trial and ticks_diff(ticks_ms(), self._since) > self.probation_s * 1000:
            self.failed("it passed no telegram on and served no web page within %d s" % self.probation_s)
            return True
        return False

    def failed(self, why):
        """On probation and it failed (why): recorded for the previous version to say."""
        if self.trial:
            self.record["why"] = why
            self._save()
            self.log("p1dongle %s: failed its probation (%s): resetting to the previous version" % (self.version, why))

    def _save(self):
        try:
            save(self.path, self.record)
        except OSError as e:
            self.log("p1dongle: the update record could not be written: %r" % e)

    # -- an update coming in ---------------------------------------------------------------------

    def state(self):
        """What GET /api/update says."""
        return {"version": self.version, "way": self.way.way if self.way else None,
                "why_not": None if self.way else self.why_not, "busy": self.busy, "received": self.received,
                "size": self.size, "to": self.to, "message": self.message, "probation": self.trial,
                "came_back": self.came_back, "mpy": getattr(sys.implementation, "_mpy", None)}

    def percentage(self):
        return self.received * 100 // self.size if self.busy and self.size else None

    async def receive(self, reader, size, digest, progress=None):
        """The update's size bytes from reader; digest: their SHA-256 (hex) as sent with them.
        Returns the version written, made the next to boot (the caller resets). Raises
        UpdateError with its one line: then nothing changed."""
        if self.way is None:
            raise UpdateError(self.why_not)
        if self.busy:
            raise UpdateError("an update is already being received")
        wanted = _digest(digest)
        self.busy = True
        self.received = 0
        self.size = size
        self.to = None
        self.message = None
        receiver = None
        try:
            receiver = self.way.receiver(size)
            sha = hashlib.sha256()
            step = size // 10 + 1           # progress every tenth
            told = 0
            while self.received < size:
                room = receiver.space()
                if len(room) > size - self.received:
                    room = room[:size - self.received]
                n = await wait_for(stream_readinto(reader, room), READ_TIMEOUT_S)
                if not n:
                    raise UpdateError("the transfer was cut after %d of %d bytes: nothing changed" % (self.received, size))
                sha.update(room[:n])
                self.received += n      # (read, whether or not the receiver takes it)
                receiver.took(n)
                self.to = receiver.version
                if progress and self.received - told >= step:
                    told = self.received
                    progress(self)
            if not loops.equal(sha.digest(), 0, wanted, 0, 32):
                raise UpdateError("its SHA-256 is not the one sent with it (a damaged transfer): nothing changed")
            self.to = receiver.check()
            # The record first, then the switch: a power cut between them leaves a record the
            # old firmware reads as an update that did not take, never a new one unrecorded
            # (which nothing would mark valid). The image way's slot boots next; the files way's
            # set is switched in by main.py at boot.
            before = self.record
            self.record = {"way": self.way.way, "from": self.version, "to": self.to,
                           "state": "trial" if self.way.way == "image" else "switch"}
            if self.way.way == "image":
                self.record["slot"] = self.way.next.info()[4]
            save(self.path, self.record)
            try:
                receiver.commit()
            except UpdateError:
                self.record = before or {"state": "none"}
                save(self.path, self.record)
                raise
            receiver = None
        except UpdateError as e:
            self.message = str(e)
            raise
        except (OSError, ValueError, asyncio.TimeoutError) as e:
            # a timeout, a reset connection, a flash write that failed
            self.message = "the update failed (%s: %s): nothing changed" % (e.__class__.__name__, e)
            raise UpdateError(self.message)
        finally:
            if receiver is not None:
                receiver.abort()
            self.busy = False
        self.message = "%s written and checked; the dongle restarts into it" % self.to
        self.log("p1dongle: update to %s received (%d bytes, SHA-256 checked); restarting into it" % (self.to, size))
        return self.to


def _digest(text):
    try:
        d = unhexlify(text or "")
    except ValueError:
        d = b""
    if len(d) != 32:
        raise UpdateError("send the update's SHA-256 with it (64 hex digits in X-SHA256)")
    return d
