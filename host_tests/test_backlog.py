"""The outputs' backlog: every telegram the TCP clients and MQTT may still send, in one buffer
made once, the oldest dropped for the newest."""
from hypothesis import given, settings, strategies as st

from p1dongle.backlog import Backlog

import pytest


def put_all(size, slots, lengths):
    """[(first, next, every held one intact)] after each put, on CPython."""
    b = Backlog(size, slots)
    out = []
    for n in lengths:
        number = b.next
        data = bytes((number * 31 + i) & 0xFF for i in range(n))
        assert b.put(data) == number
        held = [b.view(k) for k in range(b.first, b.next)]
        out.append((b.first, b.next, all(v is not None and bytes(v) == bytes((k * 31 + i) & 0xFF for i in range(len(v)))
                                          for k, v in zip(range(b.first, b.next), held))))
        assert b.view(b.first - 1) is None and b.view(b.next) is None
    return out


@settings(max_examples=300, deadline=None)
@given(st.integers(8, 200), st.integers(1, 10), st.data())
def test_the_newest_telegrams_are_held_intact_and_the_oldest_go(size, slots, data):
    lengths = data.draw(st.lists(st.integers(1, size), min_size=1, max_size=40))
    steps = put_all(size, slots, lengths)
    last_first = 0
    for k, (first, nxt, intact) in enumerate(steps):
        assert nxt == k + 1 and first <= k          # the newest is always held
        assert intact                               # and what is held reads back as it was put
        assert first >= last_first                  # only ever the oldest go
        last_first = first
        held = lengths[first:nxt]
        assert len(held) <= slots and sum(held) <= size
        # none goes that did not have to: the last ones, as long as they and the room one of
        # them may leave unused at the end fit, and there is a slot for each, are all held
        fit = 0
        while fit < min(slots, nxt) and sum(lengths[nxt - fit - 1:nxt]) + max(lengths[nxt - fit - 1:nxt]) <= size:
            fit += 1
        assert nxt - first >= fit, (lengths[:nxt], first)


def test_a_telegram_longer_than_the_backlog_is_refused():
    b = Backlog(16)
    b.put(b"x" * 16)
    with pytest.raises(ValueError):
        b.put(b"y" * 17)
    assert bytes(b.view(0)) == b"x" * 16


def test_every_interpreter_holds_the_same(run_job):
    """The dongle twin, the RV32 twin and the 64-bit MicroPython agree with CPython, put for put."""
    lengths = [1100, 1090, 700, 1500, 2048, 10, 4096, 1100, 1100, 1100, 1100, 1100, 1100, 1100, 3000, 3000, 500]
    got = run_job({"job": "backlog", "size": 8192, "slots": 10, "lengths": lengths})
    assert [tuple(step[:3]) for step in got] == put_all(8192, 10, lengths)
    assert all(step[3] for step in got)


def test_a_put_that_finds_no_memory_leaves_every_telegram_as_it_was():
    """The view of the new telegram is made before anything changes: a MemoryError there (the
    one allocation a put makes) leaves the held telegrams readable and intact, and none that was
    dropped readable."""
    class NoRoom:
        def __init__(self, view):
            self.view = view

        def __getitem__(self, s):
            raise MemoryError

    b = Backlog(100, 4)
    b.put(b"A" * 60)
    real = b._view
    b._view = NoRoom(real)
    with pytest.raises(MemoryError):
        b.put(b"B" * 70)
    assert (b.first, b.next) == (0, 1) and bytes(b.view(0)) == b"A" * 60 and bytes(b.latest) == b"A" * 60
    b._view = real
    assert b.put(b"C" * 70) == 1 and b.view(0) is None and bytes(b.view(1)) == b"C" * 70
