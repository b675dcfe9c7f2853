# One exception type per failure kind. Each message is meant for a user: it says what went
# wrong and, where we can tell, what to check. None of them ever carries a key.


class P1Error(Exception):
    """Base class: every error the data path raises on bad input is one of these."""


class FrameError(P1Error):
    """A frame that is cut or laid out wrongly (bad header, lengths that do not add up)."""


class AuthError(P1Error):
    """The GCM tag did not match: wrong key, wrong authentication key or a corrupted frame."""


class ReplayError(P1Error):
    """A frame counter that went backwards: an old frame played again."""


class CrcError(P1Error):
    """A DSMR telegram whose CRC-16 does not match its content."""


class TelegramError(P1Error):
    """Bytes that are not a DSMR telegram (no '/' header, no '!' end)."""


class ConfigError(P1Error):
    """A setting that cannot work (a key that is not 32 hex digits, a port out of range)."""


class UpdateError(P1Error):
    """An update that cannot be taken (not an image for this dongle, a SHA-256 that does not match,
    a cut transfer): the firmware that runs is unchanged."""
