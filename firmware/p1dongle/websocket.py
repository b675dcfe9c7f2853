# A WebSocket (RFC 6455) server side, as small as the Shelly face's /rpc needs: Home Assistant's
# Shelly library (aioshelly) speaks Gen2 RPC only over a WebSocket.
#
#   accept(writer, key)         the 101 answer to a client's upgrade with its Sec-WebSocket-Key
#   await read_message(reader, writer)  the next text message (bytes); pings answered, pongs
#                               skipped; None when the client closed (or sent what this does
#                               not take)
#   await send_text(writer, pieces)  one text frame of the pieces of ASCII text, a piece at a
#                               time (a server's frames are not masked)
#
# Messages are one frame each (what aioshelly sends), up to MAX_MESSAGE bytes; a fragmented or
# longer one, or a binary one, ends the connection (close code 1009/1003).
from binascii import b2a_base64

from .compat import const, sha1

MAX_MESSAGE = const(1024)
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_TEXT = const(1)
_CLOSE = const(8)
_PING = const(9)
_PONG = const(10)


def accept(writer, key):
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 b"Sec-WebSocket-Accept: " + b2a_base64(sha1(key.encode() + _GUID)).strip() + b"\r\n\r\n")


async def read_message(reader, writer):
    """The next text message's bytes; None once the connection is to end."""
    while True:
        head = await reader.readexactly(2)
        fin, op = head[0] & 0x80, head[0] & 0x0F
        size = head[1] & 0x7F
        if size == 126:
            b = await reader.readexactly(2)
            size = (b[0] << 8) | b[1]
        elif size == 127:
            _close(writer, 1009)
            return None
        if not head[1] & 0x80 or size > MAX_MESSAGE or not fin:
            _close(writer, 1009 if size > MAX_MESSAGE else 1002)   # a client's frames are masked
            return None
        mask = await reader.readexactly(4)
        data = bytearray(await reader.readexactly(size)) if size else bytearray()
        for i in range(size):
            data[i] ^= mask[i & 3]
        if op == _TEXT:
            return data
        if op == _PING:
            _frame(writer, _PONG, data)
        elif op == _CLOSE:
            _close(writer, 1000)
            return None
        elif op != _PONG:
            _close(writer, 1003)        # binary, or a continuation without a start
            return None


async def send_text(writer, pieces):
    # ASCII pieces (their length is their bytes'), each written and taken by the socket before
    # the next: no block of the heap holds the whole message
    _head(writer, _TEXT, sum(len(p) for p in pieces))
    for p in pieces:
        writer.write(p.encode())
        await writer.drain()


def _frame(writer, op, data):
    _head(writer, op, len(data))
    if data:
        writer.write(data)


def _head(writer, op, n):
    if n < 126:
        writer.write(bytes((0x80 | op, n)))
    elif n < 65536:
        writer.write(bytes((0x80 | op, 126, n >> 8, n & 255)))
    else:
        raise ValueError("a WebSocket message over 64 KB")


def _close(writer, code):
    _frame(writer, _CLOSE, bytes((code >> 8, code & 255)))
