# Out of memory: one count for the whole dongle, and one way to say it.
#
# A MemoryError costs one thing: a frame, one output's telegram, an MQTT connection or message,
# an HTTP request, a status line. Never the app. Every place that catches one calls lost(): the
# count is the dongle's (its status line, diagnostics, Home Assistant's "Memory errors", since
# the app started: App reads count() against where it began), and the app's receive loop, seeing
# it move, lets every output shed what waits before the next frame (App._relieve).

_lost = [0]


def lost(log=None, line=None):
    """A MemoryError was caught: count it, and say line if there is room even for that."""
    _lost[0] += 1
    if log is not None:
        say(log, line)


def count():
    """MemoryErrors caught so far (in this process: every app it ran)."""
    return _lost[0]


def say(log, line):
    # one line, if even that fits (the count says it anyway)
    try:
        log(line)
    except MemoryError:
        pass
