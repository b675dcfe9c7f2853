# A UDP server's loop, for the three the dongle has (the first setup's DNS, mDNS, the Shelly face's
# JSON-RPC): every datagram handed to an answer function, which sends what it answers; the loop
# keeps going whatever a datagram or the network does.
from . import memory
from .compat import sleep_ms, udp_recvfrom

PAUSE_MS = 100      # after a MemoryError or a socket error: the rest of the app runs (and frees
                    # what it can) before the next datagram is read; without it a read that cannot
                    # get its buffer would fail again at once, for ever, and nothing else would run


async def serve(sock, answer, server, size, name, log=print):
    """answer(sock, data, peer) -> True when it was a request (it sends the answer itself);
    server.ignored counts the rest: what is no request, and what was lost (a MemoryError: counted
    by memory.lost(); a socket error: said). The task itself: no frame of the server's between."""
    while True:
        try:
            data, peer = await udp_recvfrom(sock, size)
            if not answer(sock, data, peer):
                server.ignored += 1
            await sleep_ms(0)           # a flood of datagrams (the LAN may send any) still lets
            continue                    # the UART's task run between two
        except MemoryError:
            server.ignored += 1
            memory.lost(log, "%s: out of memory, a datagram lost" % name)
        except OSError as e:            # a peer gone, a network down: the next one is answered
            server.ignored += 1
            log("%s: %r" % (name, e))
        except (ValueError, IndexError, TypeError, AttributeError, KeyError):
            server.ignored += 1         # what no rule above foresaw in a datagram: that one only
            continue
        await sleep_ms(PAUSE_MS)
