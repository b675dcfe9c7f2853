# Readings as JSON: the state topic's document (and any other JSON view of a telegram).
#
#   {"header": "Lux5\\253663629_D", "p1Version": "42", "powerTs": "2026-11-25T15:50:53+01:00",
#    "totalImportedEnergyP": 23949.193, "currentUsage": 0.420, "voltageL1": 233.0, ...,
#    "mbus1Reading": 872.234, "mbus1ReadingTs": "2020-05-12T13:45:58+02:00", ...,
#    "units": {"totalImportedEnergyP": "kWh", "currentUsage": "kW", ...}}
#
# Numbers are written from their integer digits: 023949.193 is 23949.193 on every interpreter,
# and never goes through a float. A Writer writes straight into two buffers (the readings, their
# units) kept from one telegram to the next (loops.put*: machine code on the dongle) and copies
# the document out once. It takes readings one at a time, from a list (state_json) or straight
# from the telegram parser (telegram_json, dsmr.read): the same bytes either way, and the second
# way makes no readings at all, which is what lets MQTT keep up on the dongle.
from array import array

from . import dsmr
from .compat import loops
from .obis import BY_KEY as _ROWS, NAME
from .reading import exact

_SMALL = 1 << 30            # mantissas the machine-code writer takes (a 32-bit word, with room)


class Writer:
    """A sink for dsmr.read: number(row, m, e, unit) and value(row, value), between begin() and
    end(). After end(), rows are the rows written, in order (what Home Assistant discovery covers)."""

    def __init__(self, size=2048):
        self.buf = bytearray(size)
        self.ubuf = bytearray(size // 2)
        self._view = memoryview(self.buf)
        self.u = array("i", [0, 0])     # where the next unit goes in ubuf (-1: full); rows written
        self.pos = 0
        self.rows = []
        self.memo = {}                  # dsmr.read: the text lines of the last telegrams, read

    def begin(self):
        self.buf[0] = self.ubuf[0] = 0x7B   # {
        self.pos = 1
        self.u[0] = 1
        self.u[1] = 0

    def number(self, row, m, e, unit):
        if -_SMALL < m < _SMALL:
            self._row(row)
            self.pos = loops.put_number(self.buf, self.pos, row[NAME], m, e, self.ubuf, self.u, unit or "")
        else:
            self.value(row, (m, e, unit))

    def value(self, row, value):
        if isinstance(value, tuple) and len(value) == 3 and -_SMALL < value[0] < _SMALL:
            self.number(row, value[0], value[1], value[2])
            return
        self._row(row)
        name = row[NAME]                # put_key escapes it as put_string does a value: a code
                                        # from the meter may hold anything (a tab, a CR)
        pos = loops.put_key(self.buf, self.pos, name)
        pos = _value(self.buf, pos, value)
        if isinstance(value, tuple) and len(value) > 3 and value[3]:
            pos = loops.put_key(self.buf, pos, name + "Ts")
            pos = loops.put_string(self.buf, pos, value[3])
        self.pos = pos
        unit = _unit(value)
        if unit:
            self.u[0] = loops.put_string(self.ubuf, loops.put_key(self.ubuf, self.u[0], name), unit)

    def end(self, view=False):
        """The document as bytes, or (view) as a memoryview of the writer's buffer, good until
        the next begin(); None when a buffer was too small (then it has grown: write the
        readings again)."""
        u = self.u[0]
        pos = loops.put_key(self.buf, self.pos, "units")
        if u < 0 or pos < 0 or pos + u + 2 > len(self.buf):
            self.buf = bytearray(2 * len(self.buf))
            self.ubuf = bytearray(len(self.buf) // 2)
            self._view = memoryview(self.buf)
            return None
        loops.copy(self.buf, pos, self.ubuf, 0, u)
        pos = loops.put(self.buf, pos + u, b"}}")
        c = self.u[1]
        if len(self.rows) > c:
            del self.rows[c:]           # rows: exactly the rows written (compared whole by MQTT)
        doc = self._view[:pos]
        return doc if view else bytes(doc)

    def lines(self, t, i, n, o):
        # dsmr.read: the number lines of known rows from t[i] on, in one call (see loops)
        pos = loops.json_lines(t, i, n, o, _ROWS, self.buf, self.pos, self.ubuf, self.u, self.rows)
        self.pos = pos
        if pos < 0:
            return n                    # full: end() says so, and the telegram is read again
        return o[7]

    def _row(self, row):
        # rows[count] = row, without a new list per telegram
        c = self.u[1]
        if c < len(self.rows):
            self.rows[c] = row
        else:
            self.rows.append(row)
        self.u[1] = c + 1


_writer = [None]  # type: list


def _shared():
    # one Writer for the dongle (its buffers are the point), made when first needed
    if _writer[0] is None:
        _writer[0] = Writer()
    return _writer[0]


def state_json(readings, writer=None, view=False):
    """The readings [(row, value)] as the state topic's JSON text (bytes; view: see end())."""
    w = writer or _shared()
    while True:
        w.begin()
        for row, value in readings:
            w.value(row, value)
        doc = w.end(view)
        if doc is not None:
            return doc


def telegram_json(telegram, writer=None, view=False):
    """state_json(dsmr.parse(telegram)), written straight from the telegram's text."""
    w = writer or _shared()
    while True:
        w.begin()
        dsmr.read(telegram, w)
        doc = w.end(view)
        if doc is not None:
            return doc


def _value(buf, pos, value):
    if isinstance(value, tuple):
        m = value[0]
        if -_SMALL < m < _SMALL:
            return loops.put_decimal(buf, pos, m, value[1])
        return loops.put(buf, pos, exact(m, value[1]))
    if isinstance(value, str):
        return loops.put_string(buf, pos, value)
    if isinstance(value, list):
        pos = loops.put(buf, pos, b"[")
        for k in range(len(value)):
            if k:
                pos = loops.put(buf, pos, b",")
            pos = _value(buf, pos, value[k])
        return loops.put(buf, pos, b"]")
    return loops.put(buf, pos, b"null")


def _unit(value):
    # a number's unit; a list's: the first unit in it
    if isinstance(value, tuple):
        return value[2]
    if isinstance(value, list):
        for v in value:
            u = _unit(v)
            if u:
                return u
    return None
