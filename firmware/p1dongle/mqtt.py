# A small MQTT 3.1.1 client on asyncio streams, for the dongle and the host alike.
#
# The blocking umqtt clients would stall the UART while a broker is slow; this one never makes its
# caller wait: publish() only queues, and one task (run()) does all network work.
#
#   client = MqttClient(host, port, client_id, user, password, keepalive=60,
#                       will=("p1dongle/x/status", b"offline"), log=print)
#   client.publish(topic, payload)                   QoS 0, queued; when the broker is slow or down
#                                                    the queue keeps the newest queue_len messages
#                                                    and counts what it dropped
#   client.publish(topic, payload, retain=True, qos=1)
#                                                    retained: the latest payload per topic is kept
#                                                    apart (never dropped) and sent again after
#                                                    every reconnect; QoS 1 waits for PUBACK and
#                                                    is sent again (DUP) if the connection breaks
#   await client.run()                               connect, send, ping; reconnect with backoff
#                                                    (1 s doubling to backoff_max_s) after refusal,
#                                                    broker restarts, or a half-open connection
#                                                    (no PINGRESP within the keepalive)
#
# Packets: CONNECT (clean session, will, user/password), CONNACK, PUBLISH, PUBACK, PINGREQ,
# PINGRESP, DISCONNECT. Nothing is subscribed: the dongle only publishes.
import asyncio

from .compat import close_stream, resolve, ticks_diff, ticks_ms, wait_for

_REFUSED = {
    1: "the broker does not speak MQTT 3.1.1",
    2: "the client id was refused",
    3: "the broker is unavailable",
    4: "bad user name or password",
    5: "not authorised",
}


def _varlen(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | 0x80 if n else b)
        if not n:
            return bytes(out)


def _str(s):
    if isinstance(s, str):
        s = s.encode()
    return bytes([len(s) >> 8, len(s) & 0xFF]) + s


def connect_packet(client_id, keepalive, user=None, password=None, will=None):
    flags = 0x02                                    # clean session
    payload = _str(client_id)
    if will:
        flags |= 0x04 | 0x20 | 0x08                 # will, will retain, will QoS 1
        payload += _str(will[0]) + _str(will[1])
    if user is not None:
        flags |= 0x80
        payload += _str(user)
        if password is not None:
            flags |= 0x40
            payload += _str(password)
    body = _str("MQTT") + bytes([4, flags, keepalive >> 8, keepalive & 0xFF]) + payload
    return b"\x10" + _varlen(len(body)) + body


def publish_packet(topic, payload, retain=False, qos=0, pid=0, dup=False):
    if isinstance(payload, str):
        payload = payload.encode()
    head = 0x30 | (0x01 if retain else 0) | (qos << 1) | (0x08 if dup else 0)
    body = _str(topic) + (bytes([pid >> 8, pid & 0xFF]) if qos else b"") + payload
    return bytes([head]) + _varlen(len(body)) + body


class MqttError(Exception):
    pass


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
        self.connected = False
        self.connects = 0                 # successful connections so far
        self.sent = 0                     # messages handed to the broker
        self.dropped = 0                  # queued messages dropped because the queue was full
        self.last_error = None            # one line: why the last connection failed or broke
        self._queue = []                  # (topic, payload, qos) not retained, oldest first
        self._retained = {}               # topic -> (payload, qos): the latest, sent once more
        self._dirty = []                  # retained topics not yet sent on this connection
        self._inflight = {}               # packet id -> PUBLISH packet, until its PUBACK
        self._pid = 0
        self._wake = asyncio.Event()
        self._writer = None
        self._pong = True
        self._stopping = False
        self._session_ok = False          # the current attempt got as far as CONNACK
        self._address = None              # the broker's address, once looked up

    def describe(self):
        return "mqtt://%s:%d" % (self.host, self.port)

    # -- what the rest of the dongle calls; never waits ------------------------------------------

    def publish(self, topic, payload, retain=False, qos=0):
        if retain:
            self._retained[topic] = (payload, qos)
            if topic not in self._dirty:
                self._dirty.append(topic)
        else:
            if len(self._queue) >= self.queue_len:
                self._queue.pop(0)          # keep the newest: an old reading is worth least
                self.dropped += 1
            self._queue.append((topic, payload, qos))
        self._wake.set()

    def idle(self):
        """Nothing left to send (or no broker to send it to)."""
        return not self.connected or (not self._queue and not self._dirty and not self._inflight)

    async def stop(self):
        """Say goodbye (DISCONNECT: the broker does not send the will) and close."""
        self._stopping = True
        w = self._writer
        if w is not None and self.connected:
            try:
                w.write(b"\xe0\x00")
                await wait_for(w.drain(), 2)
            except Exception:   # noqa: BLE001 - going away anyway
                pass
        self.connected = False
        self._wake.set()

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
        reader, writer = await wait_for(asyncio.open_connection(self._address, self.port), 10)  # type: ignore
        self._writer = writer
        writer.write(connect_packet(self.client_id, self.keepalive, self.user, self.password, self.will))
        await wait_for(writer.drain(), 10)
        head = await wait_for(reader.readexactly(4), 10)
        if head[0] != 0x20 or head[1] != 2:
            raise MqttError("the broker did not answer CONNECT")
        if head[3]:
            raise MqttError("connection refused: " + _REFUSED.get(head[3], "code %d" % head[3]))
        self.connected = True
        self._session_ok = True
        self.connects += 1
        self.last_error = None
        self._pong = True
        self.log("mqtt %s: connected" % self.describe())
        if self.on_connect:
            self.on_connect(self)
        # Retained messages all go out once more (as their latest value, under new packet ids);
        # other unacknowledged QoS 1 messages go again as they were, marked DUP.
        self._dirty = list(self._retained)
        for pid in list(self._inflight):
            topic, p = self._inflight[pid]
            if topic in self._retained:
                del self._inflight[pid]
            else:
                writer.write(bytes([p[0] | 0x08]) + p[1:])
        listener = asyncio.create_task(self._listen(reader))
        try:
            await self._send_loop(writer, listener)
        finally:
            listener.cancel()
            self.connected = False

    async def _send_loop(self, writer, listener):
        last_ping = ticks_ms()
        interval_ms = self.keepalive * 1000 // 2
        while not self._stopping:
            self._wake.clear()                  # before sending: a publish from now on wakes us
            while self._dirty:
                topic = self._dirty.pop(0)
                payload, qos = self._retained[topic]
                self._send(writer, topic, payload, True, qos)
            while self._queue:
                topic, payload, qos = self._queue.pop(0)
                self._send(writer, topic, payload, False, qos)
            await wait_for(writer.drain(), 10)
            if ticks_diff(ticks_ms(), last_ping) >= interval_ms:
                if not self._pong:
                    raise MqttError("no answer to ping for %d s (half-open connection)" % (interval_ms // 1000))
                self._pong = False
                writer.write(b"\xc0\x00")
                await wait_for(writer.drain(), 10)
                last_ping = ticks_ms()
            if listener.done():
                raise MqttError("connection closed by the broker")
            try:
                await wait_for(self._wake.wait(), 1)
            except asyncio.TimeoutError:
                pass

    def _send(self, writer, topic, payload, retain, qos):
        pid = 0
        if qos:
            self._pid = self._pid % 65535 + 1
            pid = self._pid
        packet = publish_packet(topic, payload, retain, qos, pid)
        if qos:
            if len(self._inflight) >= 64:               # a broker that never acknowledges
                del self._inflight[next(iter(self._inflight))]
            self._inflight[pid] = (topic if retain else None, packet)
        writer.write(packet)
        self.sent += 1

    async def _listen(self, reader):
        # Reads what the broker sends: PUBACK (QoS 1 done), PINGRESP. Ends when the socket does.
        try:
            while True:
                kind = (await reader.readexactly(1))[0] >> 4
                n = 0
                shift = 0
                while True:                                  # remaining length, 7 bits a byte
                    b = (await reader.readexactly(1))[0]
                    n |= (b & 0x7F) << shift
                    shift += 7
                    if not b & 0x80:
                        break
                body = await reader.readexactly(n) if n else b""
                if kind == 4 and len(body) >= 2:             # PUBACK
                    self._inflight.pop((body[0] << 8) | body[1], None)
                elif kind == 13:                             # PINGRESP
                    self._pong = True
        except Exception:   # noqa: BLE001 - EOF or reset: the send loop notices and reconnects
            return

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
