# A WebSocket (RFC 6455) server side, as small as the Shelly face's /rpc needs: Home Assistant's
# Shelly library (aioshelly) speaks Gen2 RPC only over a WebSocket.
#
#   ws = WebSocket(reader, writer, key)   the 101 answer to a client's upgrade is written
#   await ws.receive()          the next text message (bytes); pings answered, pongs skipped;
#                               None when the connection is to end (closed, silent for IDLE_S,
#                               or sent what this does not take)
#   await ws.send(pieces)       one text frame of the pieces of ASCII text, a piece at a time
#
# Two tasks write (the answers, and the pushed notifications): a frame is written whole under the
# socket's lock, or one would land inside the other. Messages are one frame each (what aioshelly
# sends), up to MAX_MESSAGE bytes; a fragmented or longer one, a binary one, or a control frame
# over 125 bytes ends the connection (close code 1009/1003/1002).
import asyncio
from binascii import b2a_base64

from .compat import const, sha1, wait_for

MAX_MESSAGE = const(1024)
IDLE_S = const(150)         # silence that ends a session (aiohttp, Home Assistant's, pings every 55 s)
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT = const(1)
_CLOSE = const(8)
_PING = const(9)
_PONG = const(10)


class WebSocket:
    def __init__(self, reader, writer, key):
        self.reader = reader
        self.writer = writer
        self.lock = asyncio.Lock()
        writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Accept: " + b2a_base64(sha1(key.encode() + _GUID)).strip() + b"\r\n\r\n")

    async def receive(self):
        """The next text message's bytes; None once the connection is to end."""
        try:
            while True:
                head = await wait_for(self.reader.readexactly(2), IDLE_S)
                op, size = head[0] & 0x0F, head[1] & 0x7F
                if size == 126:
                    b = await self.reader.readexactly(2)
                    size = (b[0] << 8) | b[1]
                if size > MAX_MESSAGE:
                    return await self._close(1009)
                if not head[1] & 0x80 or not head[0] & 0x80 or (op >= _CLOSE and size > 125):
                    return await self._close(1002)  # unmasked, fragmented, or a long control frame
                mask = await self.reader.readexactly(4)
                data = bytearray(await self.reader.readexactly(size)) if size else bytearray()
                for i in range(size):
                    data[i] ^= mask[i & 3]
                if op == _TEXT:
                    return data
                if op == _PING:
                    await self._frame(_PONG, data)
                elif op == _CLOSE:
                    return await self._close(1000)
                elif op != _PONG:
                    return await self._close(1003)  # binary, or a continuation without a start
        except (EOFError, asyncio.TimeoutError):
            return None                 # gone, or silent for IDLE_S

    async def send(self, pieces):
        # ASCII pieces (their length is their bytes'), each taken by the socket before the next:
        # no block of the heap holds the whole message
        async with self.lock:
            self._head(_TEXT, sum(len(p) for p in pieces))
            for p in pieces:
                self.writer.write(p.encode())
                await self.writer.drain()

    async def _frame(self, op, data):
        async with self.lock:
            self._head(op, len(data))
            if data:
                self.writer.write(data)
            await self.writer.drain()

    async def _close(self, code):
        await self._frame(_CLOSE, bytes((code >> 8, code & 255)))
        return None

    def _head(self, op, n):
        if n < 126:
            self.writer.write(bytes((0x80 | op, n)))
        elif n < 65536:
            self.writer.write(bytes((0x80 | op, 126, n >> 8, n & 255)))
        else:
            raise ValueError("a WebSocket message over 64 KB")
