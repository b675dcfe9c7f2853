"""The dongle's program end to end: P1 reader -> app -> TCP clients, real processes and sockets."""
import asyncio
import json
import socket
import struct
import subprocess
import sys
import threading

import meter
import pytest
from p1dongle.tcpserver import TcpServer
from procs import (DEMO_KEY, P1Reader, SIM, connect, dsmr_reader, free_port, micropython_app, read_telegrams,
                   read_until_closed, request_status, settings_file, sim, split_telegrams)

KEY_HEX = meter.KEY.hex()


def telegrams(n):
    """n different Luxembourg telegrams (the import register moves on)."""
    out = []
    for i in range(n):
        body = [line.replace("023949.193", "%010.3f" % (23949.193 + i)) for line in meter.LUX_BODY]
        out.append(meter.telegram(body))
    return out


def stream_with_faults(tgs):
    """Frames for tgs, with what real lines do in between: noise, a bad tag, a frame cut short."""
    frames = [meter.frame(t, counter=i + 1) for i, t in enumerate(tgs)]
    bad = bytearray(frames[2])
    bad[-1] ^= 0x01
    parts = [frames[0], b"\x00\xff noise \x13\x37", frames[1], bytes(bad), frames[2], frames[3][:500]]
    parts += frames[3:]
    return parts


def dsmr_parser_client(port, n, got, errors):
    """Home Assistant's reader (dsmr_parser, Luxembourg spec), for a thread of its own."""
    try:
        dsmr_reader(port, lambda telegrams: len(telegrams) >= n, got=got)
    except Exception as e:  # noqa: BLE001 - reported by the test
        errors.append(e)


def reset(sock):
    """Close with an RST, as a crashed or unplugged client does."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_every_client_gets_every_telegram_whatever_the_others_do():
    tgs = telegrams(6)
    reader = P1Reader()
    app = sim("run", "--source", "tcp:127.0.0.1:%d" % reader.port, "--key", KEY_HEX,
              "--tcp-port", "0", "--status-interval", "0", "-q")
    try:
        port = int(app.expect(r"connect: telnet localhost (\d+)").group(1))
        reader.accept()
        plain = connect(port)
        app.expect(r"connected \(1 clients\)")
        stalled = connect(port, rcvbuf=2048)            # never reads a byte
        app.expect(r"connected \(2 clients\)")
        got, errors = [], []
        ha = threading.Thread(target=dsmr_parser_client, args=(port, len(tgs), got, errors))
        ha.start()
        app.expect(r"connected \(3 clients\)")
        resetter = connect(port)
        app.expect(r"connected \(4 clients\)")

        parts = stream_with_faults(tgs)
        reader.send(parts[0])
        resetter.settimeout(10)
        assert resetter.recv(100)                        # mid-telegram...
        reset(resetter)                                  # ...gone
        for i, part in enumerate(parts[1:]):
            for chunk in meter.split(part, [64]):
                reader.send(chunk)
            flapper = connect(port)                      # clients that come and go all the time
            flapper.close()

        assert read_telegrams(plain, len(tgs)) == tgs    # byte-exact, in order, none missing
        ha.join(30)
        assert not errors and len(got) == len(tgs)
        assert [str(t.ELECTRICITY_IMPORTED_TOTAL.value) for t in got] == ["%.3f" % (23949.193 + i) for i in range(6)]
        status = request_status(port)
        assert "telegrams 6, tag failures 1, CRC failures 0" in status
        assert "dropped bytes %d " % (len(parts[1]) + len(parts[3]) + len(parts[5])) in status
        assert app.p.poll() is None                      # still serving
        stalled.close()
        plain.close()
    finally:
        reader.close()
        rc = app.stop()
    assert rc == 0 and app.seen[-1].endswith("stopped")


def test_a_client_over_the_limit_gets_one_line_and_is_closed():
    reader = P1Reader()
    app = sim("run", "--source", "tcp:127.0.0.1:%d" % reader.port, "--key", KEY_HEX,
              "--tcp-port", "0", "--max-clients", "2", "--status-interval", "0")
    try:
        port = int(app.expect(r"connect: telnet localhost (\d+)").group(1))
        a, b = connect(port), connect(port)
        app.expect(r"connected \(2 clients\)")
        c = connect(port)
        data = read_until_closed(c, timeout=10)
        assert data == b"p1dongle: too many clients (2), try again later\r\n"
        # the two that are in still get their telegrams
        reader.accept()
        reader.send(meter.frame(meter.LUX_TELEGRAM))
        assert read_telegrams(a, 1) == read_telegrams(b, 1) == [meter.LUX_TELEGRAM]
        for s in (a, b, c):
            s.close()
    finally:
        reader.close()
        app.stop()


def test_a_client_further_behind_than_the_backlog_is_dropped_and_gets_nothing_overwritten():
    """A client's queue holds telegram numbers in the backlog: one that fell so far behind that
    its next telegram was overwritten is dropped there, and what it was sent before is what was
    put (what a socket did not take at once was copied: newer telegrams overwrote the backlog)."""
    from p1dongle.backlog import Backlog
    tgs = [bytes([0x41 + i]) * 3000 for i in range(12)]

    async def main():
        backlog = Backlog(8192, 16)
        server = TcpServer("plaintext", max_clients=4, queue_len=64, log=lambda m: None, backlog=backlog)
        await server.start("127.0.0.1", 0)
        slow = connect(server.port, rcvbuf=2048)
        while not server.clients:
            await asyncio.sleep(0)
        for t in tgs:
            number = backlog.put(t)
            server.publish(backlog.latest, number)
        assert backlog.first > 0 and server.clients[0].queue     # it waits for ones gone already
        got = b""
        slow.setblocking(False)
        while server.clients or not got:
            await asyncio.sleep(0.01)
            try:
                got += slow.recv(65536)
            except BlockingIOError:
                pass
        slow.setblocking(True)
        got += read_until_closed(slow)
        await server.stop()
        return got, server.dropped

    got, dropped = asyncio.run(main())
    assert dropped == 1
    # the telegrams in order, each as it was put (the one being sent when it was dropped cut)
    assert 3000 <= len(got) < 3000 * len(tgs) and got == b"".join(tgs)[:len(got)]


def test_a_stalled_client_is_dropped_and_never_holds_up_the_others():
    """Publishing never waits: a client that stops reading fills its queue and is dropped alone."""
    payload = [bytes([i]) * 65536 for i in range(200)]

    async def main():
        server = TcpServer("test", max_clients=4, queue_len=2, log=lambda m: None)
        await server.start("127.0.0.1", 0)
        stalled = connect(server.port, rcvbuf=2048)
        stalled.setblocking(False)
        reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
        while len(server.clients) < 2:
            await asyncio.sleep(0)
        for i, p in enumerate(payload):
            server.publish(p)
            assert await asyncio.wait_for(reader.readexactly(len(p)), 10) == p, i
        dropped = server.dropped
        writer.close()
        stalled.close()
        await server.stop()
        return dropped

    assert asyncio.run(main()) == 1


def test_the_firmware_app_runs_under_micropython(micropython, tmp_path):
    """The dongle's main.py in the MicroPython unix port, a TCP P1 reader in place of the UART."""
    tgs = telegrams(4)
    reader = P1Reader()
    port = free_port()
    cfg = tmp_path / "p1dongle.json"
    settings_file(cfg, reader.port, tcp_port=port)
    app = micropython_app(micropython, str(cfg))
    try:
        app.expect(r"plain telegrams on port %d" % port)
        reader.accept()
        client = connect(port)
        app.expect(r"connected \(1 clients\)")
        for part in stream_with_faults(tgs):
            for chunk in meter.split(part, [64]):
                reader.send(chunk)
        assert read_telegrams(client, len(tgs)) == tgs
        assert "telegrams 4, tag failures 1, CRC failures 0" in request_status(port)
        client.close()
    finally:
        reader.close()
        app.stop()


def test_a_bad_config_says_what_is_wrong_and_does_not_crash(micropython, tmp_path):
    cfg = tmp_path / "p1dongle.json"
    cfg.write_text(json.dumps({"key": "0123", "source": "tcp:127.0.0.1:1"}))
    for interpreter in (micropython, sys.executable):
        app = micropython_app(interpreter, str(cfg))
        assert app.expect(r"p1dongle: ").string == "p1dongle: key must be 32 hex digits (16 bytes), got 4"
        assert app.p.wait(20) == 0
        assert "0123" not in "\n".join(app.rest())


def test_make_sim_path_emulated_meter_to_a_client():
    """`sim.py run --source meter`: the emulated meter and the dongle, telegrams to a client."""
    app = sim("run", "--source", "meter", "--interval", "0.2", "--count", "4", "--tcp-port", "0",
              "--status-interval", "0")
    port = int(app.expect(r"connect: telnet localhost (\d+)").group(1))
    client = connect(port)
    app.expect(r"connected \(1 clients\)")
    before = len(app.seen)
    data = read_until_closed(client)
    assert app.p.wait(20) == 0
    # the client got every telegram the dongle passed on after it connected
    logged = [line for line in app.rest()[before:] if " telegram " in line and " bytes" in line]
    got, rest = split_telegrams(data)
    assert rest == b""
    assert len(logged) >= 1 and len(got) == len(logged)
    for t in got:
        assert t.startswith(b"/Lux5") and int(t[-6:-2], 16) == meter.crc16_arc(t[:t.index(b"!") + 1])


def test_emulated_meter_frames_decrypt_and_advance():
    meter_out = subprocess.run([sys.executable, SIM, "meter", "--stdout", "--count", "4", "--interval", "0.01"],
                               capture_output=True, timeout=60).stdout
    dec = subprocess.run([sys.executable, SIM, "decrypt", "--key", DEMO_KEY, "-"], input=meter_out,
                         capture_output=True, timeout=60)
    assert dec.returncode == 0 and dec.stderr == b""
    tgs, rest = split_telegrams(dec.stdout)
    assert len(tgs) == 4 and rest == b""
    counters = []
    i = 0
    while i < len(meter_out):
        assert meter_out[i:i + 2] == b"\xdb\x08"
        n = (meter_out[i + 11] << 8) | meter_out[i + 12]
        counters.append(int.from_bytes(meter_out[i + 14:i + 18], "big"))
        i += 13 + n
    assert counters == [1, 2, 3, 4]


def test_raw_port_forwards_the_encrypted_frames_as_received():
    tgs = telegrams(4)
    parts = stream_with_faults(tgs)
    reader = P1Reader()
    raw_port = free_port()
    app = sim("run", "--source", "tcp:127.0.0.1:%d" % reader.port, "--key", KEY_HEX, "--tcp-port", "0",
              "--raw-port", str(raw_port), "--status-interval", "0", "-q")
    try:
        port = int(app.expect(r"connect: telnet localhost (\d+)").group(1))
        app.expect(r"raw frames: port %d" % raw_port)
        reader.accept()
        raw = connect(raw_port)
        app.expect(r"raw port: .* connected \(1 clients\)")
        plain = connect(port)
        app.expect(r"plaintext port: .* connected \(1 clients\)")
        for part in parts:
            reader.send(part)
        assert read_telegrams(plain, len(tgs)) == tgs
        # every genuine frame as the meter sent it: not the noise, the bad tag or the cut-off piece
        expected = parts[0] + parts[2] + parts[4] + b"".join(parts[6:])
        raw.settimeout(10)
        got = b""
        while len(got) < len(expected):
            chunk = raw.recv(65536)
            assert chunk, "raw port closed early"
            got += chunk
        assert got == expected
        raw.close()
        plain.close()
    finally:
        reader.close()
        app.stop()


def test_a_port_that_cannot_open_closes_the_other_one_too(tmp_path):
    """The raw port is taken: run() fails with the OS's reason and leaves the plaintext port closed,
    so the restart that main.py makes can open it again."""
    import socket as socketlib
    from p1dongle import config
    from p1dongle.app import App
    from p1dongle.sources import FileSource
    taken = socketlib.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    plain_port = free_port()
    cap = tmp_path / "capture.bin"
    cap.write_bytes(b"")
    cfg = config.check({"key": KEY_HEX, "source": "file:" + str(cap), "host": "127.0.0.1",
                        "tcp_port": plain_port, "raw_port": taken.getsockname()[1], "status_interval": 0, "http_port": 0})
    try:
        with pytest.raises(OSError):
            asyncio.run(App(cfg, FileSource(str(cap)), log=lambda m: None).run())
        with pytest.raises(OSError):
            connect(plain_port).close()                 # nothing listens there any more
    finally:
        taken.close()


def test_a_settings_file_that_is_not_text_is_one_line(tmp_path):
    from p1dongle import config
    from p1dongle.errors import ConfigError
    bad = tmp_path / "p1dongle.json"
    bad.write_bytes(b"\xff\xfe{not text}")
    with pytest.raises(ConfigError, match="is not text"):
        config.load(str(bad))


# Every heap figure the app asks for is a full collection (compat.heap): printed, so counted.
COUNT_HEAP_FIGURES = """
from p1dongle import app as app_module
_heap = app_module.heap
def heap():
    print("test: heap measured")
    return _heap()
app_module.heap = heap
"""


def test_a_status_flood_costs_a_few_collections_not_one_each(micropython, tmp_path):
    """A client that asks for the status line again and again (200 times, each answered) must not
    make the dongle collect its heap each time: on an ESP32 that is milliseconds the UART waits.
    The heap figure is measured now and then and reused; counted, not timed."""
    from test_recovery import dongle
    reader = P1Reader()
    port = free_port()
    app = dongle(micropython, tmp_path, COUNT_HEAP_FIGURES, port, reader.port)
    try:
        app.expect(r"plain telegrams on port %d" % port)
        before = sum("test: heap measured" in line for line in app.seen)
        client = connect(port)
        client.settimeout(10)
        app.expect(r"connected \(1 clients\)")
        answers = []
        for _ in range(200):
            client.sendall(b"status\r\n")
            line = b""
            while not line.endswith(b"\r\n"):
                chunk = client.recv(4096)
                assert chunk, "closed after %d answers" % len(answers)
                line += chunk
            answers.append(line)
        client.close()
        app.expect(r"disconnected \(0 clients\)")          # every line the flood made is in by now
        assert len(answers) == 200 and all(b"heap used " in a for a in answers)
        measured = sum("test: heap measured" in line for line in app.seen) - before
        assert 1 <= measured <= 3, measured
    finally:
        reader.close()
        app.stop()
