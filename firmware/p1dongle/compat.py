# The one place that knows which Python we run on. Everything else imports from here and stays
# identical on MicroPython (the dongle, the unix port) and CPython (the host tools and tests).
#
# What differs:
#   const        - micropython.const folds constants at compile time; a no-op on CPython
#   aes_ecb(key) - an AES-128 block encryptor with encrypt(src, dst) over whole blocks:
#                  cryptolib (hardware AES on the ESP32) or the `cryptography` package
#   ticks_ms / ticks_diff / ticks_add - a wrapping millisecond clock, the difference of two
#                  readings, a reading moved by some milliseconds
#   sleep_ms(ms)  - asyncio sleep in milliseconds
#   wait_for(aw, s) - await with a timeout (asyncio.TimeoutError); CPython 3.11's own wait_for can
#                  swallow a cancellation that races with the result, and then Ctrl-C hangs
#   pending(writer) - bytes an asyncio stream writer holds that the socket has not taken yet
#   send(writer, data) - write data to an asyncio stream, what the socket does not take at once
#                  kept as a copy: MicroPython's stream copies it; CPython's transport may keep a
#                  view of a bytearray or memoryview (3.12 does), so it gets bytes. data may be a
#                  view of a buffer written again later (the outputs' backlog, a JSON writer's)
#   flushed(writer) - await until the socket has taken everything written (an answer's end,
#                  before its connection is closed)
#   small_send_buffer(writer) - the socket's send buffer kept to a few KB, as lwIP's is on the
#                  dongle (a PC's kernel would take megabytes from a client that never reads)
#   close_stream(writer)  - close an asyncio stream now, even with unsent data queued (a stalled
#                  client must not hold up its own removal)
#   listening_port(server, port) - the port an asyncio server listens on (port 0: the one picked)
#   stream_readinto(reader, buf) - read what is there into buf, return how many bytes (0: closed);
#                  CPython's StreamReader has no readinto
#   udp_recvfrom(sock, n) - await a datagram on a non-blocking UDP socket: (data, address)
#   resolve(host, port) - a host name looked up once to an IPv4 address string (the address as
#                  given when it is one, or when the lookup fails): MicroPython's lookup blocks the
#                  event loop, so callers do it once, not on every connection attempt
#   loops        - the data path's hot loops (GHASH, CTR xor, CRC, copies): machine code from
#                  loops_viper.py where MicroPython has the native emitter, else plain loops.py
#   native_gcm   - the board build's GCM module (_p1gcm, mbedTLS: hardware AES on the ESP32), or
#                  None: gcm.py then does GCM itself
#   sha1(data)   - the SHA-1 digest (a WebSocket's handshake): hashlib's (the ESP32 port's is
#                  mbedTLS's; the twins are built with it too)
#   heap()       - (bytes in use, bytes free) of the heap after a collection, or None (CPython)
#   print_exception(e) - the exception's traceback on the console
#   new_loop()   - drop every task an app left behind before it is started again (MicroPython's
#                  asyncio.run keeps them; CPython's runs a new loop each time anyway)
#   MICROPYTHON  - True under MicroPython
import sys

MICROPYTHON = sys.implementation.name == "micropython"

if MICROPYTHON:
    from micropython import const
    import asyncio
    import errno
    import time
    try:
        import cryptolib
    except ImportError:                 # a build with our native GCM and no TLS (the unix test build)
        cryptolib = None

    _ECB = const(1)

    class _Ecb:
        def __init__(self, key):
            if cryptolib is None:
                raise ImportError("this MicroPython has neither cryptolib nor the _p1gcm module")
            self._aes = cryptolib.aes(key, _ECB)

        def encrypt(self, src, dst):
            # cryptolib wants whole blocks and writes into dst without allocating.
            self._aes.encrypt(src, dst)

    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff
    ticks_add = time.ticks_add
    sleep_ms = asyncio.sleep_ms
    wait_for = asyncio.wait_for

    def listening_port(server, port):
        # MicroPython's Server keeps its socket to itself: ask for a real port, not 0.
        return port

    async def stream_readinto(reader, buf):
        n = await reader.readinto(buf)
        return n or 0

    def pending(writer):
        return len(writer.out_buf)

    def send(writer, data):
        writer.write(data)

    async def flushed(writer):
        await writer.drain()            # MicroPython's drain() returns once the socket took it all

    def new_loop():
        asyncio.new_event_loop()
        # The asyncio core keeps the last detached task that failed (for its exception handler)
        # and the last task it ran: through their coroutines, the old app and its buffers,
        # which the next app then cannot find room beside.
        try:
            from asyncio import core  # type: ignore[attr-defined]  # (MicroPython's asyncio package)
            core._exc_context["future"] = None
            core._exc_context["exception"] = None
            core.cur_task = None
        except (ImportError, AttributeError, KeyError):
            pass

    def small_send_buffer(writer):
        try:
            writer.s.setsockopt(1, 7, 4096)     # SOL_SOCKET, SO_SNDBUF (where the port has it)
        except (AttributeError, OSError, TypeError):
            pass

    def print_exception(e):
        sys.print_exception(e)

    async def close_stream(writer):
        # MicroPython's StreamWriter.close() does nothing; wait_closed() closes the socket.
        try:
            await writer.wait_closed()
        except Exception:   # noqa: BLE001 - already closed or reset
            pass

    def udp_recvfrom(sock, n):
        # Awaited like MicroPython's own stream reads: a generator that parks on the event loop's
        # poll until the (non-blocking) socket has a datagram.
        while True:
            try:
                return sock.recvfrom(n)
            except OSError as e:
                if e.errno != errno.EAGAIN:     # nothing yet: wait for it
                    raise
            # (what asyncio's own StreamReader.read does; the ESP32 stubs do not know asyncio.core)
            yield asyncio.core._io_queue.queue_read(sock)   # type: ignore[attr-defined]

else:
    import asyncio
    import time
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    def const(x):
        return x

    class _Ecb:
        def __init__(self, key):
            self._enc = Cipher(algorithms.AES(bytes(key)), modes.ECB()).encryptor()

        def encrypt(self, src, dst):
            dst[:] = self._enc.update(bytes(src))

    def ticks_ms():
        return int(time.monotonic() * 1000)

    def ticks_diff(a, b):
        return a - b

    def ticks_add(t, ms):
        return t + ms

    async def sleep_ms(ms):
        await asyncio.sleep(ms / 1000)

    if hasattr(asyncio, "timeout"):         # 3.11+
        async def wait_for(aw, timeout):
            async with asyncio.timeout(timeout):
                return await aw
    else:
        wait_for = asyncio.wait_for

    def listening_port(server, port):
        return server.sockets[0].getsockname()[1]

    async def stream_readinto(reader, buf):
        data = await reader.read(len(buf))
        buf[:len(data)] = data
        return len(data)

    def pending(writer):
        return writer.transport.get_write_buffer_size()

    def send(writer, data):
        writer.write(data if isinstance(data, bytes) else bytes(data))

    async def flushed(writer):
        # CPython's drain() returns below its high-water mark (64 KB): wait until the socket has
        # taken everything, or close_stream would abort what a small send buffer still holds
        writer.transport.set_write_buffer_limits(0, 0)
        await writer.drain()

    def new_loop():
        pass

    def small_send_buffer(writer):
        import socket
        s = writer.get_extra_info("socket")
        if s is not None:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)

    def print_exception(e):
        import traceback
        traceback.print_exception(type(e), e, e.__traceback__)

    async def udp_recvfrom(sock, n):
        return await asyncio.get_running_loop().sock_recvfrom(sock, n)

    async def close_stream(writer):
        # close() would first flush what a stalled client never reads; abort() drops it.
        try:
            writer.transport.abort()
            await writer.wait_closed()
        except Exception:   # noqa: BLE001 - already closed or reset
            pass


if MICROPYTHON:
    try:
        from . import loops_viper as loops
    except (SyntaxError, ValueError, NotImplementedError):
        # A build without the native emitter (SyntaxError when compiling from source,
        # ValueError for a frozen .mpy made for another architecture).
        from . import loops
else:
    from . import loops


try:
    import _p1gcm as native_gcm         # only in our own firmware builds (boards/usermod)
except ImportError:
    native_gcm = None


def resolve(host, port):
    import socket
    try:
        info = socket.getaddrinfo(host, port, socket.AF_INET)[0][-1]
    except OSError:
        return host                       # let the connection attempt say what is wrong
    if isinstance(info, tuple):           # CPython, MicroPython on the ESP32: (address, port)
        return info[0]
    if len(info) >= 8 and info[0] == 2:   # MicroPython's unix port: a raw sockaddr_in
        return "%d.%d.%d.%d" % (info[4], info[5], info[6], info[7])
    return host


def sha1(data):
    import hashlib
    return hashlib.sha1(data).digest()


def heap():
    if not MICROPYTHON:
        return None
    import gc
    gc.collect()
    return gc.mem_alloc(), gc.mem_free()


def aes_ecb(key):
    if len(key) != 16:
        raise ValueError("AES-128 needs a 16-byte key")
    return _Ecb(key)
