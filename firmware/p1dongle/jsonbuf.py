# JSON written into one buffer kept from message to message: what MQTT discovery announces, one
# config (~0.7 KB) at a time. json.dumps makes each as a string grown by doubling and then a copy
# as bytes: two to three blocks of 0.5-1 KB a config, which a heap broken up around the telegrams
# could not always give (make soak at 96 KB: an announcement lost now and then). Here the buffer
# is made once, and grows (doubling) only for a config larger than any before.
#
#   buf = JsonBuffer()
#   view = buf.dumps({"name": "Energy import", "sug_dsp_prc": 3, "avty": [{"t": "x/status"}]})
#       a memoryview of the JSON text, good until the next dumps(); for dicts, lists and tuples,
#       strings (escaped as put_string escapes them), ints, True/False/None
from .compat import loops

_SMALL = 1 << 30


class JsonBuffer:
    def __init__(self, size=1024):
        self.buf = bytearray(size)

    def dumps(self, obj):
        while True:
            pos = _put(self.buf, 0, obj)
            if pos >= 0:
                return memoryview(self.buf)[:pos]
            size = 2 * len(self.buf)
            self.buf = None             # the old one may go before the new one is made
            self.buf = bytearray(size)


def _put(buf, pos, obj):
    # obj's JSON text into buf at pos: the position after it, or -1 when buf is too small
    if pos < 0:
        return -1
    if isinstance(obj, str):
        return loops.put_string(buf, pos, obj)
    if obj is None or isinstance(obj, bool):
        return loops.put(buf, pos, b"null" if obj is None else (b"true" if obj else b"false"))
    if isinstance(obj, int):
        if -_SMALL < obj < _SMALL:
            return loops.put_decimal(buf, pos, obj, 0)      # (machine code: a 32-bit word)
        return loops.put(buf, pos, b"%d" % obj)
    if isinstance(obj, dict):
        pos = loops.put(buf, pos, b"{")
        for key in obj:
            pos = _put(buf, loops.put_key(buf, pos, key), obj[key])     # put_key: the comma, ':'
        return loops.put(buf, pos, b"}")
    if isinstance(obj, (list, tuple)):
        pos = loops.put(buf, pos, b"[")
        for k in range(len(obj)):
            if k:
                pos = loops.put(buf, pos, b",")
            pos = _put(buf, pos, obj[k])
        return loops.put(buf, pos, b"]")
    raise TypeError("no JSON for %s" % type(obj).__name__)
