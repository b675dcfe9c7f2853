# What waits for a slow reader (a TCP client, the MQTT broker): a ring of slots made once, as
# Hinch's RingbufQueue keeps them, so that waiting allocates nothing and never grows past its size.
# When it is full the owner says what gives: MQTT lets the oldest go (an old reading is worth
# least), a TCP client that fills its queue has stopped reading and is dropped.
#
#   q = Queue(8)
#   q.put(item)          -> the oldest item, let go to make room when q was full; else None
#   q.get()              -> the oldest item, taken off (IndexError when there is none)
#   q.remove(test)       -> the first waiting item test(item) takes, taken out; else None
#   len(q), q.full(), q.clear(), iter(q) (oldest first)


class Queue:
    def __init__(self, size):
        self._slots = [None] * size
        self._head = 0                  # the oldest
        self._n = 0

    def __len__(self):
        return self._n

    def full(self):
        return self._n == len(self._slots)

    def put(self, item):
        dropped = self.get() if self.full() else None
        self._slots[(self._head + self._n) % len(self._slots)] = item
        self._n += 1
        return dropped

    def get(self):
        if not self._n:
            raise IndexError("nothing waits")
        item = self._slots[self._head]
        self._slots[self._head] = None  # it is the taker's now: the queue keeps nothing alive
        self._head = (self._head + 1) % len(self._slots)
        self._n -= 1
        return item

    def remove(self, test):
        # the first waiting item test() takes, taken out (those behind it move up); else None
        size = len(self._slots)
        for k in range(self._n):
            i = (self._head + k) % size
            item = self._slots[i]
            if test(item):
                for j in range(k, self._n - 1):
                    self._slots[(self._head + j) % size] = self._slots[(self._head + j + 1) % size]
                self._n -= 1
                self._slots[(self._head + self._n) % size] = None
                return item
        return None

    def __iter__(self):
        # what waits, oldest first (for a look at it; the queue is not to change meanwhile)
        for k in range(self._n):
            yield self._slots[(self._head + k) % len(self._slots)]

    def clear(self):
        for i in range(len(self._slots)):
            self._slots[i] = None
        self._head = self._n = 0
