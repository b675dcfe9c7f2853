# The data path without its ends: bytes in, verified plain telegrams and problems out.
#
#   bytes -> frames (FrameAssembler) -> dlms (DlmsCipher: GCM + replay check) -> dsmr.check -> events
#   Austrian meters: frames (M-Bus, HDLC) -> link (segments, block transfer) -> dlms -> axdr
#                    (data-notification: readings) -> render (a DSMR telegram with a CRC) -> events
#
# Used by the dongle's RX task and by the host tools alike. push() and flush() call
# emit(kind, offset, what, has_crc) for each event, in stream order:
#   TELEGRAM, offset, telegram bytes, has_crc   a telegram that passed every check, byte-exact
#                                               (with shared=True: a view of where the frame was
#                                               decrypted, good only during the call; the app
#                                               copies it into its outputs' backlog)
#   PROBLEM, offset, message, None              one line a user can act on; never a key
#   FRAME, offset, frame bytes, None            with raw_frames=True: each encrypted frame as
#                                               received (for the raw port), just before what it
#                                               held; with a key, only frames whose tag matched
# The counters (and status()) say how many of each happened. While a TELEGRAM event is handled,
# `readings` holds its readings when the pipeline made them (a DLMS meter's values, rendered into
# that telegram), else None: the telegram's own text is then what to parse (dsmr.parse).
#
# A callback rather than a generator or a list of tuples: on the dongle each of those is a heap
# object per chunk, and the RX path is meant to allocate no block for a telegram: a frame is
# decrypted where the assembler cut it, a plain telegram handed on from there.
from . import memory
from .compat import const
from .dlms import LUX_AUTH_KEY, DlmsCipher
from .dsmr import canonical, check
from .errors import AuthError, CrcError, FrameError, P1Error, ReplayError, TelegramError
from .frames import DLMS, DROPPED, DSMR, HDLC, MBUS, NONE, REASONS, REJECTED, FrameAssembler
from .reading import hex_digits, identifier, text

TELEGRAM = const(1)
PROBLEM = const(2)
FRAME = const(3)

_NO_MEMORY = "out of memory: the frame at hand is dropped (see memory errors in the status)"
_SENDERS = const(4)      # DLMS meters whose identifier is remembered (one meter; room for others)
# Made once: a DB frame without a key to open it is refused like one whose tag failed.
_NO_KEY = FrameError("encrypted frame, but no key is configured")

_WHY = (
    "garbage, no frame start (noise, or wrong baud rate or RX inversion)",
    "frame longer than the maximum",
    "truncated frame",
    "incomplete frame timed out",
    "rejected",
)


class Pipeline:
    def __init__(self, key=None, auth_key=LUX_AUTH_KEY, max_frame=4096, timeout_ms=5000, replay_check=True,
                 raw_frames=False, emit=None, layout="auto", shared=False):
        self.frames = FrameAssembler(max_frame, timeout_ms=timeout_ms)
        self.shared = shared     # telegrams handed on as views of the buffers they are in (see above)
        self.cipher = DlmsCipher(key, auth_key, max_frame, replay_check) if key else None
        self.max_frame = max_frame
        self.link = None         # M-Bus and HDLC meters only: made with their first link frame
        self.layout = layout     # data-notification layout (layouts/): auto, or the meter profile's
        self._layouts = None     # made with the first data-notification
        self.raw_frames = raw_frames
        self.emit = emit or _ignore
        self.telegrams = 0       # telegrams passed on
        self.no_crc = 0          # of those, DSMR 2/3 telegrams that carry no CRC
        self.auth_failures = 0   # DLMS frames whose GCM tag did not match
        self.crc_failures = 0    # telegrams whose CRC did not match
        self.replays = 0         # DLMS frames with a frame counter that went backwards
        self.bad_frames = 0      # frames laid out wrongly, or decrypted to something not DSMR
        self.no_key = 0          # DLMS frames seen without a key to open them
        self.unauthenticated = 0  # telegrams from frames whose tag was not checked (0x20, key-only)
        self._apdu_pos = 0       # stream offset of the first link frame of the APDU being collected
        self._block_pos = 0      # and of the block transfer's first block
        self._has_crc = False    # what _content found
        self.readings = None     # the readings of the telegram being emitted, when made here
        self._names = []         # (sender, identifier) of DLMS meters that named themselves, the newest last
        self._sender = None      # the link address of the APDU being collected (_link_address)
        self._memory_streak = 0  # MemoryErrors in a row

    def push(self, data, now_ms, end=-1):
        """Feed data[0:end] (all of it by default), of any size; emit the events it completes."""
        fa = self.frames
        n = len(data) if end < 0 else end
        i = 0
        while True:
            took = fa.feed(data, i, n) if i < n else 0
            i += took
            popped = False
            while self._safe_step(now_ms):
                popped = True
            if i >= n or (not took and not popped):
                # Done, or the ring is full and nothing can leave it (the assembler's size rules
                # make that impossible; the rest of the chunk is counted as ring overflow).
                if i < n:
                    fa.ring.overflow += n - i
                return

    def flush(self, now_ms):
        """End of input: report what is left over."""
        self.frames.flush()
        while self._safe_step(now_ms):
            pass

    def _safe_step(self, now_ms):
        """_step, but a MemoryError costs only the frame at hand: the assembler has handed it out
        (the next pop moves past it), so the bytes behind it still come through."""
        try:
            return self._step(now_ms)
        except MemoryError:
            memory.lost()
            self._memory_streak += 1
            try:
                self.emit(PROBLEM, self.frames.frame_pos, _NO_MEMORY, None)
            except MemoryError:
                pass                    # not even room for the line: the count says it
            return self._memory_streak < 3     # again and again: leave the rest of this chunk

    def _step(self, now_ms):
        """One step of the assembler, emitting what it found. False when it needs more bytes."""
        fa = self.frames
        kind = fa.pop(now_ms)
        if kind == NONE:
            return False
        self._memory_streak = 0
        if kind == DROPPED:
            self._dropped(fa)
        elif kind == DSMR:
            try:
                has_crc = check(fa.buf, fa.frame_len)
            except (CrcError, TelegramError) as e:
                fa.reject(e)         # maybe two telegrams run together: rescan it
                return True
            self.readings = None
            self._telegram(fa.frame_pos, canonical(fa.frame), has_crc)
        elif kind == DLMS:
            self._open(fa)
        else:
            self._link(fa, kind)
        return True

    def _link(self, fa, kind):
        """An M-Bus or HDLC frame, checksums right: add it to the APDU it carries."""
        self._raw(fa)
        link = self.link
        if link is None:
            from .link import Reassembler
            link = self.link = Reassembler(self.max_frame)
        pos = fa.frame_pos
        try:
            n = link.mbus(fa.buf, fa.frame_len) if kind == MBUS else link.hdlc(fa.buf, fa.frame_len)
            self._orphan(link, self._apdu_pos)
            if link.fresh:
                self._apdu_pos = pos     # events name the offset of the APDU's first frame
                self._sender = _link_address(kind, fa.buf)
            if n < 0:
                return               # more segments to come
            pos = self._apdu_pos
            if link.buf[0] == 0xE0:
                n = link.block_transfer(link.buf, n)
                self._orphan(link, self._block_pos)
                if link.block_fresh:
                    self._block_pos = pos
                if n < 0:
                    return
                pos = self._block_pos    # a block transfer's events name its first block's offset
                self._apdu(pos, link.block, n)
            else:
                self._apdu(pos, link.buf, n)
        except (AuthError, ReplayError, FrameError, TelegramError, CrcError) as e:
            if kind == MBUS:
                # An M-Bus frame's checksum is an 8-bit sum: in line noise one in 65536 candidates
                # passes it (with the stop byte), and its length can reach over the good frames
                # behind it. What the link layer or the APDU refuses is rescanned, as a DB frame
                # that fails its tag is, never skipped whole. (HDLC's CRC-16 FCS and HCS prove it.)
                fa.reject(e)
                return
            self._refused(pos, e)

    def _count(self, e):
        """The error policy, in one place: a refused frame's error counted by its kind (tag
        failures, replays, CRC failures, bad frames). Returns what its one line begins with."""
        if isinstance(e, AuthError):
            self.auth_failures += 1
        elif isinstance(e, ReplayError):
            self.replays += 1
        elif isinstance(e, CrcError):
            self.crc_failures += 1
            return "decrypted telegram: "
        else:
            self.bad_frames += 1
        return ""

    def _refused(self, pos, e):
        # one line for what a link frame's APDU was refused for, counted by its kind
        self.emit(PROBLEM, pos, self._count(e) + str(e), None)

    def _orphan(self, link, pos):
        # The frame just added started a new APDU before the one begun at pos was complete (its
        # last segments or blocks were lost): one line for what that cost.
        if link.orphan is not None:
            self.bad_frames += 1
            self.emit(PROBLEM, pos, link.orphan, None)
            link.orphan = None

    def _apdu(self, pos, apdu, n):
        """A whole APDU from the link layer: glo-ciphered (DB) or a plain data-notification (0F).
        Its link checksums were right, so whatever fails now is reported, not rescanned."""
        if apdu[0] == 0xDB:
            cipher = self.cipher
            if cipher is None:
                self.no_key += 1
                raise FrameError("encrypted frame, but no key is configured")
            m = cipher.decrypt(apdu, n)
            telegram = self._content(apdu, cipher.plain, m)
            cipher.accept()         # its tag and content check out: now its counter counts
            self._notice(pos)
            self._telegram(pos, telegram, self._has_crc, cipher.authenticated)
        elif apdu[0] == 0x0F:
            if self.cipher is not None:
                # With a key, this meter's pushes are encrypted: a plain one is noise that passed an
                # FCS, or someone else's on the line. Nothing proves it is this meter's: refused.
                raise FrameError("plain data-notification refused: a key is set, so this meter's pushes "
                                 "are encrypted (without a key, plain pushes are read)")
            telegram = self._content(None, apdu, n)
            self._notice(pos)
            self._telegram(pos, telegram, self._has_crc, False)
        else:
            raise FrameError("APDU 0x%02X is neither glo-ciphered (DB) nor a data-notification (0F)" % apdu[0])

    def _content(self, frame, data, n):
        """The telegram from decrypted content in data[0:n] (bytes-like), self._has_crc set: a
        DSMR telegram (Luxembourg, Steiermark) or a data-notification rendered as one (frame: the
        DB frame whose system title names the meter, or None). Raises CrcError, TelegramError,
        FrameError. (No tuple returned: the Luxembourg path allocates only the telegram.)"""
        if n and data[0] == 0x2F:
            self._has_crc = check(data, n, True)
            self.readings = None
            return data if len(data) == n else data[:n]
        if not n or data[0] != 0x0F:
            raise FrameError("decrypted frame is neither a DSMR telegram nor a data-notification")
        try:
            return self._rendered(frame, data, n)
        except (P1Error, MemoryError):
            raise
        except Exception as e:
            # A bug in reading a push (axdr, layouts, render) costs that push, never the app: the
            # RX loop stops on any other exception, and the same push again would stop it again.
            raise FrameError("push not read: %s: %s (a bug: please report it with a capture)"
                             % (type(e).__name__, str(e)[:80]))

    def _rendered(self, frame, data, n):
        """The data-notification in data[0:n] as a DSMR telegram; self.readings its readings."""
        from . import axdr, layouts, render     # DLMS meters only: a P1 dongle never loads them
        if self._layouts is None:
            self._layouts = layouts.Layouts(self.layout)
        readings, clock = self._layouts.readings(axdr.decode(data, n))
        maker, ident = _meter_name(frame)
        telegram = render.telegram(readings, clock, maker, ident, self._named(frame, identifier(readings)))
        self._has_crc = True
        self.readings = readings
        return telegram

    def _named(self, frame, own):
        """The identifier to write for a push whose readings carry `own` (or None): a meter that
        names itself only in some of its lists (Aidon, Kaifa, Kamstrup: the short list has no id)
        is named in every telegram once it has. Bound to who said it: the system title of a DB
        frame, else the link address of a plain push. A push from anyone else neither sets it nor
        gets it, so a foreign push never puts another meter's id into this meter's telegrams."""
        sender = bytes(frame[2:10]) if frame is not None else self._sender
        if sender is None:
            return own
        names = self._names
        for k in range(len(names)):
            if names[k][0] == sender:
                if own is None:
                    return names[k][1]
                del names[k]
                break
        if own is not None:
            if len(names) >= _SENDERS:
                del names[0]            # the sender that named itself longest ago gives way
            names.append((sender, own))
        return own

    def _notice(self, pos):
        # what the layout had to say about the push just read (said once per thing)
        if self._layouts is not None and self._layouts.notice:
            self.emit(PROBLEM, pos, self._layouts.notice, None)
            self._layouts.notice = None

    def _open(self, fa):
        """Decrypt and check the DLMS frame the assembler holds. A frame that is refused before
        its tag proved it (no key, a replayed counter, the tag itself) may be no frame at all:
        a DB byte in noise, whose length field reaches over the good frames behind it. So it is
        rescanned, never skipped whole."""
        cipher = self.cipher
        if cipher is None:
            self.no_key += 1
            self._raw(fa)           # the raw port gets every frame: nothing here can check them
            fa.reject(_NO_KEY)
            return
        # (The raw port wants the frame as it came: taken before it is decrypted where it is.)
        raw = bytes(fa.frame) if self.raw_frames else None
        try:
            n = cipher.decrypt(fa.buf, fa.frame_len)
        except (AuthError, FrameError, ReplayError) as e:
            fa.reject(e)
            return
        try:
            if not cipher.authenticated and (not n or cipher.plain[0] != 0x2F):
                # A tagless frame (0x20, key-only mode) found bare in the stream: no tag and no link
                # checksum proved it; only a telegram's own CRC could. (Inside an M-Bus or HDLC
                # frame it comes through _link instead.) Most likely it was cut out of a link frame
                # that failed its checksum: never read it.
                raise FrameError("a frame without a tag outside an M-Bus or HDLC frame: nothing proves it intact")
            telegram = self._content(fa.buf, cipher.plain, n)
        except (CrcError, TelegramError, FrameError) as e:
            if not cipher.authenticated:
                # No tag proved where this frame ends: it may be a cut frame that swallowed the
                # start of the next one. Rescan it rather than lose what follows.
                fa.reject(e)
                return
            # The tag matched, so the framing was right: what is wrong is inside.
            self._raw(fa, raw)
            self.emit(PROBLEM, fa.frame_pos, (self._count(e) or "decrypted frame: ") + str(e), None)
            return
        cipher.accept()             # its tag and content check out: now its counter counts
        self._raw(fa, raw)
        self._notice(fa.frame_pos)
        self._telegram(fa.frame_pos, telegram, self._has_crc, cipher.authenticated)

    def _raw(self, fa, raw=None):
        # A genuine frame (its tag matched and it is no replay, or there is no key to check it):
        # the raw port gets it before what it held (raw: a copy taken before it was decrypted).
        if self.raw_frames:
            self.emit(FRAME, fa.frame_pos, raw if raw is not None else bytes(fa.frame), None)

    def _telegram(self, pos, telegram, has_crc, authenticated=True):
        self.telegrams += 1
        if not has_crc:
            self.no_crc += 1
        if not authenticated:
            self.unauthenticated += 1
        if not self.shared and not isinstance(telegram, bytes):
            telegram = bytes(telegram)
        self.emit(TELEGRAM, pos, telegram, has_crc)
        self.readings = None

    def _dropped(self, fa):
        err = fa.drop_error
        if fa.drop_reason == REJECTED and err is not None:
            if err is not _NO_KEY:      # (that one is counted in no_key when it is seen)
                self._count(err)
            msg = "%s (%d bytes dropped)" % (err, fa.drop_len)
        else:
            msg = "%d bytes dropped: %s" % (fa.drop_len, _WHY[fa.drop_reason])
        self.emit(PROBLEM, fa.drop_pos, msg, None)

    def status(self):
        fa = self.frames
        dropped = ", ".join("%s %d" % (REASONS[r], fa.dropped[r]) for r in range(len(REASONS)) if fa.dropped[r])
        unauth = ""
        if self.unauthenticated:
            unauth = " (%d not authenticated%s)" % (
                self.unauthenticated, ": key-only mode" if self.cipher and self.cipher.key_only else "")
        return ("telegrams %d%s, tag failures %d, CRC failures %d, replays %d, bad frames %d, "
                "dropped bytes %d%s, overflow %d" % (
                    self.telegrams, unauth, self.auth_failures, self.crc_failures, self.replays, self.bad_frames,
                    sum(fa.dropped), " (" + dropped + ")" if dropped else "", fa.ring.overflow))


def _ignore(kind, pos, what, has_crc):
    pass


def _link_address(kind, frame):
    """Who sent a link frame: M-Bus's address field A, or HDLC's source address (1 to 4 bytes up to
    one with bit 0 set, after the destination address; frames.py checked that both end so)."""
    if kind == MBUS:
        return bytes((MBUS, frame[5]))
    i = 3
    while not frame[i] & 1:     # the destination address
        i += 1
    start = i = i + 1
    while not frame[i] & 1:
        i += 1
    return bytes((HDLC,)) + bytes(frame[start:i + 1])


def _meter_name(frame):
    """(maker, serial) for the header of a rendered telegram, from a DB frame's system title: the
    maker's three-letter FLAG id (KFM, SAG, ISK, LGZ...) and the rest in hex; ("DLM", "") without."""
    if frame is None:
        return "DLM", ""
    for i in range(2, 5):
        if not 0x41 <= frame[i] <= 0x5A:
            return "DLM", hex_digits(frame[2:10])
    return text(frame, 2, 5), hex_digits(frame[5:10])
