# A small MQTT 3.1.1 client on asyncio streams, for the dongle and the host alike.
#
# The blocking umqtt clients would stall the UART while a broker is slow; this one never makes its
# caller wait: publish() only queues, and one task (run()) does all network work.
#
#   client = MqttClient(host, port, client_id, user, password, keepalive=60,
#                       will=("p1dongle/x/status", b"offline"), log=print)
#   client.publish(topic, payload, ref=number)       a telegram: what waits is its number in the
#                                                    backlog (backlog.py, client.backlog), not its
#                                                    bytes; gone from there when sent: dropped
#   client.publish(topic, payload)                   QoS 0, queued; when the broker is slow or down
#                                                    the queue keeps the newest queue_len messages
#                                                    and counts what it dropped
#   client.publish(topic, payload, latest=True)      QoS 0, and a message of that topic still
#                                                    waiting is replaced: only the newest counts
#   client.publish(topic, view, latest=True, remake=f)
#                                                    the payload is a buffer its owner reuses (the
#                                                    state JSON): when it cannot be sent at once,
#                                                    what waits is f, called when it is sent, which
#                                                    writes the newest payload there again
#   client.publish(topic, payload, retain=True, qos=1)
#                                                    retained: the latest payload per topic is kept
#                                                    apart (never dropped) and sent again after
#                                                    every reconnect; QoS 1 waits for PUBACK and
#                                                    is sent again (DUP) if the connection breaks
#   client.announce(source)                          source() -> (topic, payload) pairs, retained,
#                                                    made and sent one at a time after every
#                                                    connect (and after announce_again()): many
#                                                    messages (Home Assistant discovery) without
#                                                    keeping any of them in memory
#   await client.run()                               connect, send, ping; reconnect with backoff
#                                                    (1 s doubling to backoff_max_s) after refusal,
#                                                    broker restarts, or a half-open connection
#                                                    (no PINGRESP within the keepalive)
#
#   client.subscribe(topic, on_message)              on_message(topic, payload) for what the broker
#                                                    sends there (QoS 0; Home Assistant's birth)
#   await client.stop()                              the will's payload published (retained) first, so
#                                                    a clean stop reads as what it is, then DISCONNECT
#
# This is the session (the queue's policy, retained messages, QoS 1, reconnect); the packets
# are mqttpacket.py's: CONNECT (clean session, will, user/password), CONNACK, PUBLISH both ways,
# PUBACK, SUBSCRIBE, SUBACK, PINGREQ, PINGRESP, DISCONNECT. A PUBLISH goes out as
# its header and then its payload, never copied into one packet (a telegram is 1-2 KB and the
# same bytes are queued for the TCP clients), and each one is drained before the next, so the
# socket never buffers more than one message.
import asyncio

from . import memory
from .compat import close_stream, pending, resolve, send, ticks_diff, ticks_ms, wait_for
from .mqttpacket import (MqttError, connect_packet, publish_header, refused, remaining_length, subscribe_packet,
                         text_bytes, text_field)


class MqttClient:
    def __init__(self, host, port=1883, client_id="p1dongle", user=None, password=None, keepalive=60,
                 will=None, queue_len=8, log=print, backoff_max_s=60, on_connect=None):
        self.host = host
        self.port = port
        self.client_id = client_id
        self.user = user
        self.password = password
        self.keepalive = keepalive
        self.will = will                  # (topic, payload): retained, QoS 1, sent by the broker
        self.queue_len = queue_len
        self.log = log
        self.backoff_max_s = backoff_max_s
        self.on_connect = on_connect      # called once connected, before anything is sent
        self.backlog = None               # where the telegrams published by number are
        self.connected = False
        self.connects = 0                 # successful connections so far
        self.sent = 0                     # messages handed to the broker
        self.dropped = 0                  # queued messages dropped because the queue was full
        self.last_error = None            # one line: why the last connection failed or broke
        self._queue = []                  # (topic, payload, qos) not retained, oldest first
        self._retained = {}               # topic -> (payload, qos): the latest, sent once more
        self._dirty = []                  # retained topics not yet sent on this connection
        self._inflight = {}               # packet id -> (topic, payload, retain), until its PUBACK
        self._topics = {}                 # topic -> its bytes as a PUBLISH writes them (the few a
                                          # telegram uses, made once, not per message)
        self._subscriptions = []          # (topic, on_message)
        self._source = None               # announce(): () -> (topic, payload) pairs
        self._announcing = None           # the pairs still to send on this connection
        self._pid = 0
        self._wake = asyncio.Event()
        self._writer = None
        self._pong = True
        self._stopping = False
        self._session_ok = False          # the current attempt got as far as CONNACK
        self._broken = None               # why the broker's side of this session ended, if we know
        self._address = None              # the broker's address, once looked up

    def describe(self):
        return "mqtt://%s:%d" % (self.host, self.port)

    # -- what the rest of the dongle calls; never waits ------------------------------------------

    def publish(self, topic, payload, retain=False, qos=0, latest=False, remake=None, ref=None):
        if isinstance(payload, str):
            payload = payload.encode()
        if retain:
            self._retained[topic] = (payload, qos)
            if topic not in self._dirty:
                self._dirty.append(topic)
        else:
            w = self._writer
            if (not qos and self.connected and w is not None and not self._queue and not self._dirty
                    and not pending(w)):
                # Nothing waits and the socket is free: hand it over now, no task switch (a
                # telegram's messages are most of what the dongle does).
                self._write(w, topic, payload, False, 0, 0)
                if pending(w):
                    self._wake.set()            # the socket took part of it: the loop sends the rest
                return
            q = self._queue
            if latest:
                for i in range(len(q)):
                    if q[i][0] == topic:
                        q.pop(i)            # superseded: only the newest of this topic counts
                        break
            if remake is not None and not qos:
                # A view of a buffer its owner writes again: not copied (a 2 KB block kept for the
                # state while the broker was away, which a broken-up heap could not always give),
                # but made again when it goes, the newest then (only the newest counts).
                payload = remake
            if len(q) >= self.queue_len:
                q.pop(0)                    # keep the newest: an old reading is worth least
                self.dropped += 1
            if ref is not None and not qos and self.backlog is not None:
                payload = ref               # a telegram: its number waits, not its bytes
            q.append((topic, payload, qos))
        self._wake.set()

    def shed(self):
        """The heap is short: what waits for the broker goes (counted as dropped)."""
        self.dropped += len(self._queue)
        self._queue = []

    def subscribe(self, topic, on_message):
        """on_message(topic, payload) for messages on topic (exact, QoS 0), on every connection."""
        self._subscriptions.append((topic, on_message))

    def announce(self, source):
        """Send source()'s (topic, payload) pairs, retained, after every connect; see the top."""
        self._source = source
        self.announce_again()

    def announce_again(self):
        """What the source gives has changed: send it all once more."""
        self._announcing = iter(self._source()) if self._source and self.connected else None
        self._wake.set()

    def idle(self):
        """Nothing left to send (or no broker to send it to)."""
        return not self.connected or (not self._queue and not self._dirty and not self._inflight
                                      and self._announcing is None)

    async def stop(self):
        """Say goodbye: the will's payload, retained (a DISCONNECT keeps the broker from sending
        the will, and a dongle that stopped must not look alive), then DISCONNECT, and close."""
        self._stopping = True
        w = self._writer
        if w is not None and self.connected:
            try:
                if self.will:
                    self._write(w, self.will[0], text_bytes(self.will[1]), True, 0, 0)
                w.write(b"\xe0\x00")
                await wait_for(w.drain(), 2)
            except Exception:   # noqa: BLE001 - going away anyway
                pass
        self.connected = False
        self._wake.set()
        await self._close()                 # now: a restart of the app must find nothing left open

    # -- the network task ------------------------------------------------------------------------

    async def run(self):
        delay = 1
        failures = 0
        while not self._stopping:
            self._session_ok = False
            try:
                await self._session()
            except asyncio.CancelledError:
                raise
            except MqttError as e:
                self.last_error = str(e)
            except (OSError, asyncio.TimeoutError) as e:
                self.last_error = _why(e)
            except Exception as e:   # noqa: BLE001 - EOF mid-packet and the like: reconnect
                if isinstance(e, MemoryError):
                    memory.lost()
                self.last_error = "connection lost (%s)" % e.__class__.__name__
            finally:
                await self._close()
            if self._stopping:
                return
            if self._session_ok:
                delay = 1                 # it worked for a while: a fresh outage starts short
                failures = 0
            else:
                failures += 1
                if failures % 10 == 0:
                    self._address = None  # maybe the broker moved: look its name up again
            self.log("mqtt %s: %s, retrying in %d s" % (self.describe(), self.last_error, delay))
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff_max_s)

    async def _session(self):
        if self._address is None:
            # Looked up once, not on every attempt: MicroPython's lookup blocks the whole event
            # loop (and with it the UART) for as long as the name server takes.
            self._address = resolve(self.host, self.port)
            if self._address == self.host and self.host.lower().rstrip(".").endswith(".local"):
                # not found by the firmware (the p1dongle image answers mDNS itself, its own
                # resolver off): asked of the network once (mdns.py)
                from .mdns import lookup
                self._address = lookup(self.host) or self.host
        reader, writer = await wait_for(asyncio.open_connection(self._address, self.port), 10)  # type: ignore
        self._writer = writer
        self._broken = None
        writer.write(connect_packet(self.client_id, self.keepalive, self.user, self.password, self.will))
        await wait_for(writer.drain(), 10)
        head = await wait_for(reader.readexactly(4), 10)
        if head[0] != 0x20 or head[1] != 2:
            raise MqttError("the broker did not answer CONNECT")
        if head[3]:
            raise MqttError("connection refused: " + refused(head[3]))
        self.connected = True
        self._session_ok = True
        self.connects += 1
        self.last_error = None
        self._pong = True
        self.log("mqtt %s: connected" % self.describe())
        if self._subscriptions:
            writer.write(subscribe_packet([t for t, _ in self._subscriptions]))
        if self.on_connect:
            try:
                self.on_connect(self)
            except Exception as e:   # noqa: BLE001 - what it failed to make is lost, not the link
                if isinstance(e, MemoryError):
                    memory.lost()
                self.log("mqtt %s: on connect: %r" % (self.describe(), e))
        # Retained messages all go out once more (as their latest value, under new packet ids);
        # other unacknowledged QoS 1 messages go again as they were, marked DUP.
        self._dirty = list(self._retained)
        for pid in list(self._inflight):
            topic, payload, retain = self._inflight[pid]
            if retain:
                del self._inflight[pid]
            else:
                writer.write(publish_header(self._topic(topic, False), len(payload), False, 1, pid, True))
                send(writer, payload)
                if pending(writer):
                    await wait_for(writer.drain(), 10)
        self.announce_again()
        listener = asyncio.create_task(self._listen(reader))
        ticker = asyncio.create_task(self._tick())
        try:
            await self._send_loop(writer, listener)
        finally:
            listener.cancel()
            ticker.cancel()
            self.connected = False

    async def _send_loop(self, writer, listener):
        last_ping = ticks_ms()
        interval_ms = self.keepalive * 1000 // 2
        while not self._stopping:
            self._wake.clear()                  # before sending: a publish from now on wakes us
            while self._dirty:
                topic = self._dirty.pop(0)
                payload, qos = self._retained[topic]
                await self._send(writer, topic, payload, True, qos)
            while self._announcing is not None and not self._queue:
                # one announcement at a time, made when it is sent; telegrams go first
                item = self._next_announcement()
                if item is None:
                    break
                await self._send(writer, item[0], item[1], True, 0)
            while self._queue:
                topic, payload, qos = self._queue.pop(0)
                await self._send(writer, topic, payload, False, qos)
            if ticks_diff(ticks_ms(), last_ping) >= interval_ms:
                if not self._pong:
                    raise MqttError("no answer to ping for %d s (half-open connection)" % (interval_ms // 1000))
                self._pong = False
                writer.write(b"\xc0\x00")
                await wait_for(writer.drain(), 10)
                last_ping = ticks_ms()
            if listener.done():
                raise MqttError(self._broken or "connection closed by the broker")
            if pending(writer):
                await wait_for(writer.drain(), 10)      # a rest from a direct publish()
            if self._announcing is not None:
                continue                        # more announcements to send
            await self._wake.wait()             # a publish, or the ticker once a second

    def _next_announcement(self):
        # The source's next (topic, payload), or None when this round is over. A source that
        # fails making one (a bug, a reading nobody foresaw) ends its round with one line, never
        # the session: the telegrams go on, and the next round (the next connect, Home
        # Assistant's birth, a new reading) starts over.
        try:
            return next(self._announcing)
        except StopIteration:
            pass
        except Exception as e:   # noqa: BLE001 - see above
            if isinstance(e, MemoryError):
                memory.lost()
            self.log("mqtt %s: announcing stopped: %r" % (self.describe(), e))
        self._announcing = None
        return None

    async def _tick(self):
        # Wakes the send loop every second: pings are due, or the broker went away. (A wait_for
        # with a timeout instead would cost two tasks every time the loop waits.)
        while True:
            await asyncio.sleep(1)
            self._wake.set()

    async def _send(self, writer, topic, payload, retain, qos):
        pid = 0
        if isinstance(payload, int):            # a telegram's number in the backlog
            payload = self.backlog.view(payload)
            if payload is None:                 # overwritten by newer ones while it waited
                self.dropped += 1
                return
        elif callable(payload):                 # made now (publish's remake)
            try:
                payload = payload()
            except MemoryError:
                # this message is lost, not the session (as it was where it was made before)
                memory.lost(self.log, "mqtt: out of memory, a state lost")
                self.dropped += 1
                return
        if isinstance(payload, str):
            payload = payload.encode()
        if qos:
            self._pid = self._pid % 65535 + 1
            pid = self._pid
            if len(self._inflight) >= 64:               # a broker that never acknowledges
                del self._inflight[next(iter(self._inflight))]
            self._inflight[pid] = (topic, payload, retain)
        self._write(writer, topic, payload, retain, qos, pid)
        if pending(writer):                     # the socket did not take it all: wait till it has
            await wait_for(writer.drain(), 10)

    def _write(self, writer, topic, payload, retain, qos, pid):
        writer.write(publish_header(self._topic(topic, not retain), len(payload), retain, qos, pid, False))
        send(writer, payload)
        self.sent += 1

    def _topic(self, topic, keep):
        # kept: the few topics every telegram uses; not kept: retained ones (discovery), sent
        # once per connection
        t = self._topics.get(topic)
        if t is None:
            t = text_field(topic)
            if keep and len(self._topics) < 16:
                self._topics[topic] = t
        return t

    async def _listen(self, reader):
        # Reads what the broker sends: PUBACK (QoS 1 done), PINGRESP, PUBLISH. Ends when the
        # socket does, or at a packet the dongle cannot take (saying why in _broken), and wakes
        # the send loop, which ends the session.
        try:
            while True:
                kind = (await reader.readexactly(1))[0] >> 4
                n = await remaining_length(reader)
                body = await reader.readexactly(n) if n else b""
                if kind == 4 and len(body) >= 2:             # PUBACK
                    self._inflight.pop((body[0] << 8) | body[1], None)
                elif kind == 13:                             # PINGRESP
                    self._pong = True
                elif kind == 3 and len(body) >= 2:           # PUBLISH (QoS 0: no id)
                    size = (body[0] << 8) | body[1]
                    self._received(bytes(body[2:2 + size]), body[2 + size:])
        except MqttError as e:
            self._broken = str(e)
            self._session_ok = False          # a broker that does this each time gets the backoff
        except Exception as e:   # noqa: BLE001 - EOF or reset: the send loop notices and reconnects
            if isinstance(e, MemoryError):
                memory.lost()
                self._broken = "connection lost (MemoryError)"
        finally:
            self._wake.set()

    def _received(self, topic, payload):
        for t, on_message in self._subscriptions:
            if text_bytes(t) == topic:
                try:
                    on_message(t, payload)
                except Exception as e:   # noqa: BLE001 - a handler's bug must not end the link
                    self.log("mqtt: handling %s failed: %r" % (t, e))

    async def _close(self):
        self.connected = False
        w = self._writer
        self._writer = None
        if w is not None:
            await close_stream(w)


def _why(e):
    if isinstance(e, asyncio.TimeoutError):
        return "no answer (timeout)"
    return "cannot connect: %s" % (str(e) or e.__class__.__name__)
