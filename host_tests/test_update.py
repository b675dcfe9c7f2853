"""Updates over Wi-Fi, the image way: tools/flash.py update sends a new image to the dongle's web
server while the meter's telegrams flow; it is written into the other app slot of a fake flash
(fakeflash.py: the ESP32's block size, boot slot and rollback states), checked, booted on
probation, and kept once proven, or the previous one boots again. A bad image, a cut transfer or
a power cut at any point leaves a dongle that boots one of the two versions, with its settings."""
import hashlib
import http.client
import json
import os
import socket
import subprocess
import sys
import time

import pytest
from conftest import ROOT
from procs import connect, read_telegrams
from updates import Dongle, MeterLine, Reader, app_image, cpython_dongle, flash_by_usb, otadata, twin_dongle

FLASH_PY = os.path.join(ROOT, "tools", "flash.py")
OLD, NEW = "0.8.0", "0.9.0"


def flash_update(host, image_path, *more):
    return subprocess.run([sys.executable, FLASH_PY, "update", "--host", host, "--image", image_path, *more],
                          capture_output=True, text=True, timeout=120)


def get_update(host, password=None):
    conn = http.client.HTTPConnection(*host.split(":"), timeout=10)
    headers = {}
    if password:
        import base64
        headers["Authorization"] = "Basic " + base64.b64encode(b"u:" + password.encode()).decode()
    conn.request("GET", "/api/update", headers=headers)
    r = conn.getresponse()
    body = r.read()
    conn.close()
    return r.status, json.loads(body) if body.startswith(b"{") else body


def post_raw(host, data, digest=None, length=None, content_type="application/octet-stream", cut_at=None):
    """POST /api/update by hand: a wrong digest, a lying length, a transfer cut at cut_at bytes."""
    name, port = host.split(":")
    s = socket.create_connection((name, int(port)), timeout=30)
    head = ("POST /api/update HTTP/1.0\r\nHost: %s\r\nContent-Type: %s\r\nContent-Length: %d\r\n"
            "X-SHA256: %s\r\n\r\n" % (host, content_type, len(data) if length is None else length,
                                      digest or hashlib.sha256(data).hexdigest())).encode()
    s.sendall(head)
    try:
        s.sendall(data if cut_at is None else data[:cut_at])
    except OSError:
        pass                            # refused early: the answer says why
    if cut_at is not None:
        s.close()
        return None
    answer = b""
    try:
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            answer += chunk
    except OSError:
        pass
    s.close()
    status = int(answer.split(b" ", 2)[1])
    return status, json.loads(answer.split(b"\r\n\r\n", 1)[1])


@pytest.fixture
def line():
    m = MeterLine(interval=0.02)
    yield m
    m.close()


def start(tmp_path, line, argv=None, **settings):
    flash_by_usb(str(tmp_path / "flash"), app_image(OLD))
    d = Dongle(tmp_path, argv or cpython_dongle(), line.port, **settings)
    d.boot()
    return d


def write_image(tmp_path, version=NEW, **kw):
    path = tmp_path / ("p1dongle-%s.app.bin" % version)
    path.write_bytes(app_image(version, **kw))
    return str(path)


def test_an_update_while_the_meter_runs_loses_no_telegram_and_is_kept_once_proven(tmp_path, line):
    d = start(tmp_path, line)
    try:
        settings = d.settings()
        assert get_update(d.host)[1]["version"] == OLD
        readers = [Reader(d.tcp_port, line.tgs) for _ in range(4)]
        image = write_image(tmp_path, size=1400 * 1024)
        before = line.sent
        r = flash_update(d.host, image, "--wait", "0")
        answered = line.sent
        assert r.returncode == 0, r.stdout + r.stderr
        assert "update: sent 100%" in r.stdout and "0.9.0 written and checked" in r.stdout
        lines = d.expect_reset()
        assert any("update to 0.9.0 received" in x for x in lines)
        for reader in readers:
            reader.join(10)
            got = reader.got
            # every telegram in order, none missing, through the whole transfer
            assert got == list(range(got[0], got[0] + len(got))), got
            assert got[0] <= before and got[-1] >= answered - 2, (before, answered, got[0], got[-1])
        assert answered > before               # the meter was sending all along
        assert otadata(d.flash)["boot"] == "ota_1" and otadata(d.flash)["states"]["ota_1"] == "new"

        d.boot()                               # the bootloader boots the new slot on probation
        d.expect(r"p1dongle 0\.9\.0: on probation after the update from 0\.8\.0")
        d.expect(r"p1dongle 0\.9\.0: proven \(a telegram passed on\)")
        assert otadata(d.flash)["states"]["ota_1"] == "valid"
        assert get_update(d.host)[1]["version"] == NEW and d.settings() == settings
        d.power_cut()
        d.boot()                               # proven: it stays
        assert get_update(d.host)[1]["version"] == NEW and get_update(d.host)[1]["came_back"] is None
    finally:
        d.stop()


def test_what_is_refused_changes_nothing_and_says_why(tmp_path, line):
    d = start(tmp_path, line, web_password="s3cret")
    try:
        settings = d.settings()
        slot = tmp_path / "flash" / "ota_1.bin"
        good = app_image(NEW, size=100 * 1024)
        assert get_update(d.host)[0] == 401                        # the settings' password
        r = flash_update(d.host, write_image(tmp_path))
        assert r.returncode == 1 and "web password" in r.stderr
        d.stop()
        d = Dongle(tmp_path, cpython_dongle(), line.port)          # the same flash, no password now
        d.boot()
        settings = d.settings()

        cases = [
            (dict(data=good, digest="00" * 32), "SHA-256 is not the one sent"),
            (dict(data=app_image(NEW, chip=5)), "image for the ESP32-C3, and this dongle is an ESP32"),
            (dict(data=b"\xff" * 0x1000 + good), "not an ESP32 app image"),
            (dict(data=good, digest="xyz"), "SHA-256 with it"),
            (dict(data=b"x" * 2000, length=3 * 1024 * 1024), "app slot 1536 KB"),
            (dict(data=good, content_type="text/plain"), "application/octet-stream"),
        ]
        for kwargs, why in cases:
            status, answer = post_raw(d.host, **kwargs)
            assert status in (400, 415) and why in answer["error"], (kwargs.keys(), answer)
            assert otadata(d.flash)["boot"] == "ota_0"
        # one update at a time: a second one while the first streams in is refused; then the first
        # is cut half-way, and the dongle says so once it notices (the connection ends)
        first = socket.create_connection(("127.0.0.1", d.http_port), timeout=30)
        first.sendall(("POST /api/update HTTP/1.0\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n"
                       "X-SHA256: %s\r\n\r\n" % (len(good), hashlib.sha256(good).hexdigest())).encode() + good[:8192])
        d.expect(r"an update is coming in \(100 KB\)")
        status, answer = post_raw(d.host, good)
        assert status == 409 and answer["error"] == "an update is already being received"
        first.close()
        d.expect(r"update refused: the transfer was cut after 8192 of %d bytes" % len(good))
        status, state = get_update(d.host)
        assert "transfer was cut" in state["message"] and not state["busy"] and state["version"] == OLD
        assert otadata(d.flash)["boot"] == "ota_0" and d.proc.p.poll() is None
        assert d.settings() == settings
        # and the next, good one goes through
        status, answer = post_raw(d.host, good)
        assert status == 200 and answer["version"] == NEW
        d.expect_reset()
        assert slot.read_bytes()[:len(good)] == good
    finally:
        d.stop()


@pytest.mark.parametrize("cut", [0.25, 0.75])
def test_a_power_cut_while_the_image_is_written_boots_the_old_one(tmp_path, line, cut):
    d = start(tmp_path, line)
    try:
        settings = d.settings()
        image = app_image(NEW, size=400 * 1024)
        name, port = d.host.split(":")
        s = socket.create_connection((name, int(port)), timeout=30)
        s.sendall(("POST /api/update HTTP/1.0\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n"
                   "X-SHA256: %s\r\n\r\n" % (len(image), hashlib.sha256(image).hexdigest())).encode())
        s.sendall(image[:int(len(image) * cut)])
        while int(d.proc.expect(r"update to 0\.9\.0: (\d+)%").group(1)) < cut * 100 - 15:
            pass                        # the dongle has written most of what was sent
        d.power_cut()
        s.close()
        d.boot()
        assert get_update(d.host)[1]["version"] == OLD and otadata(d.flash)["boot"] == "ota_0"
        assert d.settings() == settings
        r = flash_update(d.host, write_image(tmp_path), "--wait", "0")  # and it updates after all
        assert r.returncode == 0, r.stderr
        d.expect_reset()
    finally:
        d.stop()


def test_a_new_firmware_that_does_not_prove_itself_goes_back_to_the_old_one(tmp_path, line):
    # no telegram (the meter line is quiet) and no web page within the probation's 10 s
    d = start(tmp_path, line, update_probation_s=10)
    try:
        settings = d.settings()
        r = flash_update(d.host, write_image(tmp_path), "--wait", "0")
        assert r.returncode == 0, r.stderr
        line.sending.clear()
        d.expect_reset()
        d.boot()
        d.expect(r"p1dongle 0\.9\.0: on probation")
        d.expect(r"failed its probation \(it passed no telegram on and served no web page within 10 s\)",
                      timeout=30)
        d.expect_reset()
        assert otadata(d.flash)["states"]["ota_1"] == "pending"
        d.boot()                                  # the bootloader: back to the old slot
        d.expect(r"back on 0\.8\.0: the update to 0\.9\.0 did not take: it passed no telegram on")
        status, state = get_update(d.host)
        assert state["version"] == OLD and "did not take" in state["came_back"]
        assert otadata(d.flash) == {"boot": "ota_0", "states": {"ota_0": "valid", "ota_1": "aborted"}}
        assert d.settings() == settings
        line.sending.set()                         # the old one reads the meter as before
        with connect(d.tcp_port) as client:
            assert len(read_telegrams(client, 2)) == 2
    finally:
        d.stop()


def test_a_power_cut_on_probation_goes_back_to_the_old_one(tmp_path, line):
    d = start(tmp_path, line)
    try:
        r = flash_update(d.host, write_image(tmp_path), "--wait", "0")
        assert r.returncode == 0, r.stderr
        line.sending.clear()
        d.expect_reset()
        d.boot()
        d.expect(r"p1dongle 0\.9\.0: on probation")
        d.power_cut()                              # before it proved itself (a crash, the watchdog)
        d.boot()
        d.expect(r"back on 0\.8\.0: the update to 0\.9\.0 did not take: it did not prove itself")
        assert otadata(d.flash)["boot"] == "ota_0"
    finally:
        d.stop()


def test_the_update_on_the_dongle_twin(tmp_path, line, micropython):
    """The same update on the dongle twin (frozen firmware, 96 KB heap): it streams in beside the
    meter's telegrams, and the new one proves itself."""
    d = start(tmp_path, line, argv=twin_dongle(micropython))
    try:
        readers = [Reader(d.tcp_port, line.tgs) for _ in range(4)]
        r = flash_update(d.host, write_image(tmp_path, size=300 * 1024), "--wait", "0")
        assert r.returncode == 0, r.stdout + r.stderr
        d.expect_reset()
        for reader in readers:
            reader.join(10)
            assert reader.got == list(range(reader.got[0], reader.got[0] + len(reader.got)))
        d.boot()
        d.expect(r"p1dongle 0\.9\.0: proven \(a telegram passed on\)")
        assert otadata(d.flash)["states"]["ota_1"] == "valid"
    finally:
        d.stop()
