# Open a DLMS general-glo-ciphering frame (as cut by frames.py) with the meter's keys.
#
#   DB 08 <system title: 8> <BER length> <security byte> <frame counter: 4> <ciphertext> [<tag: 12>]
#   IV  = system title || frame counter
#   AAD = security byte || authentication key
#
# Security byte (suite 0 in the low nibble):
#   0x30 / 0x31  encrypted and authenticated: AES-128-GCM, the tag is checked before anything is
#                decrypted (Luxembourg, most Austrian meters)
#   0x20 / 0x21  encrypted only, no tag (Netz NOE's Sagemcom/Kaifa meters): GCM's counter mode
#                alone; the link checksum and the payload's own structure are all that check it
#   key-only mode (auth_key=None, never the default): a 0x30 frame is decrypted without checking
#                its tag, for utilities that give customers the encryption key only (Energie
#                Steiermark); the DSMR CRC inside is the check
# `authenticated` says whether the last frame's tag was checked, for the status line.
#
# The frame counter must not go backwards per system title: an older frame played again is
# refused before anything is decrypted. (The same frame twice in a row passes: it carries the same
# reading, and some P1 readers repeat the last frame to a new client.) decrypt() only compares;
# the counter and system title are remembered by accept(), which the caller calls once the frame
# passed every check: its tag where it has one, and its content (a telegram with a CRC, a valid
# APDU), which is all a tagless or key-only frame has. A frame nobody proved (anyone can write
# DB 08 <the meter's title> 20 FFFFFFFF ...) can then neither push the counter forward and lock
# the meter out, nor switch the title and let an old frame through.
from .compat import loops
from .errors import ConfigError, FrameError, ReplayError
from .frames import ber_length
from .gcm import Gcm

TAG_LEN = 12
# The authentication key Luxembourg's meters use (other grids hand out their own).
LUX_AUTH_KEY = b"\x00\x11\x22\x33\x44\x55\x66\x77\x88\x99\xaa\xbb\xcc\xdd\xee\xff"


def parse_key(text, what="key"):
    """16 bytes from 32 hex digits (spaces, ':' and '-' allowed). The message never shows the key."""
    s = text.strip().replace(" ", "").replace(":", "").replace("-", "")
    if len(s) != 32:
        raise ConfigError("%s must be 32 hex digits (16 bytes), got %d" % (what, len(s)))
    for c in s:
        if c not in "0123456789abcdefABCDEF":
            raise ConfigError("%s must be 32 hex digits (16 bytes), found a character that is not hex" % what)
    return bytes(int(s[i:i + 2], 16) for i in range(0, 32, 2))


def header(frame, n=-1):
    """Length of the header of the DB frame in frame[0:n] (up to the security byte), checked
    against the frame's size."""
    if n < 0:
        n = len(frame)
    if n < 11 or frame[0] != 0xDB or frame[1] != 8:
        raise FrameError("not a general-glo-ciphering frame (expected DB 08)")
    v = ber_length(frame, 10, n)
    if v < 0:
        raise FrameError("bad length field 0x%02X" % frame[10])
    h, length = 10 + (v & 3), v >> 2
    if h + length != n:
        raise FrameError("length field says %d bytes, frame has %d" % (length, n - h))
    if length < 5:
        raise FrameError("frame too short for its security header")
    return h


class DlmsCipher:
    def __init__(self, key, auth_key=LUX_AUTH_KEY, max_frame=4096, replay_check=True):
        if len(key) != 16 or (auth_key is not None and len(auth_key) != 16):
            raise ConfigError("key and authentication key must be 16 bytes")
        self._gcm = Gcm(key)
        self.key_only = auth_key is None
        self.authenticated = False
        self._aad = bytearray(17)
        if auth_key is not None:
            self._aad[1:17] = auth_key
        self._iv = bytearray(12)
        self.plain = None                   # a view of the last plaintext (see decrypt)
        self.replay_check = replay_check
        self._title = bytearray(8)          # system title of the last accepted frame
        self._have_title = False
        self.frame_counter = -1             # and its frame counter
        self._opened = False                # a frame was decrypted and not accepted yet:
        self._counter = -1                  # its counter (its system title is in _iv)

    @property
    def system_title(self):
        return bytes(self._title) if self._have_title else None

    def decrypt(self, frame, n=-1):
        """Verify and decrypt the frame in frame[0:n] (a bytearray) where it is: its ciphertext
        becomes the plaintext, self.plain a view of it (the frame's header, system title and all,
        stays). Returns the plaintext's length. Nothing is allocated for the plaintext: on the
        dongle the frame is the assembler's or the link layer's buffer, made once; the outputs
        copy the telegram into their backlog. A frame that fails is left neither plaintext nor
        ciphertext (mbedTLS clears what it wrote): the assembler rescans its own copy.

        Its counter is not remembered until accept() is called.

        Raises FrameError (layout), AuthError (tag), ReplayError (counter went backwards)."""
        self._opened = False
        if n < 0 or n > len(frame):
            n = len(frame)
        h = header(frame, n)
        sc = frame[h]
        iv = self._iv
        loops.copy(iv, 0, frame, 2, 8)          # system title
        loops.copy(iv, 8, frame, h + 1, 4)      # frame counter
        counter = (iv[8] << 24) | (iv[9] << 16) | (iv[10] << 8) | iv[11]
        if (self.replay_check and self._have_title and counter < self.frame_counter
                and loops.equal(self._title, 0, iv, 0, 8)):
            raise ReplayError("frame counter %d went backwards (last %d): replayed frame dropped"
                              % (counter, self.frame_counter))
        at = h + 5
        out = memoryview(frame)[at:]
        if sc & 0x30 == 0x20:
            length = self._gcm.ctr_into(iv, frame, at, n, out)
            self.authenticated = False
        elif sc & 0x30 != 0x30:
            raise FrameError("security byte 0x%02X: authentication without encryption is not supported" % sc)
        elif n - h < 5 + TAG_LEN:
            raise FrameError("frame too short for security header and tag")
        elif self.key_only:
            length = self._gcm.ctr_into(iv, frame, at, n - TAG_LEN, out)
            self.authenticated = False
        else:
            self._aad[0] = sc
            length = self._gcm.open_into(iv, self._aad, frame, at, n - TAG_LEN, TAG_LEN, out)
            self.authenticated = True
        self.plain = out[:length]
        self._counter = counter
        self._opened = True
        return length

    def accept(self):
        """The frame decrypt() opened last passed every check: remember its system title and
        counter, against which later frames are compared."""
        if not self._opened:
            return
        self._opened = False
        loops.copy(self._title, 0, self._iv, 0, 8)
        self._have_title = True
        self.frame_counter = self._counter
