"""Updates over Wi-Fi, the files way: a stock MicroPython on a PSRAM board (the stock-image twin
in the fake dongle, 2 MB heap) runs p1dongle from the .mpy files install wrote. tools/flash.py
update sends a bundle of the checkout's files; the dongle stages it beside the running set,
main.py switches the sets at the next boot keeping the previous one, and switches back when the
new set does not start."""
import io
import json
import os
import subprocess
import sys

import meter
from conftest import ROOT, mpy_arch
from fakedevice import FakeDevice
from procs import P1Reader, connect, free_port, read_telegrams
from test_flash import stale_install

sys.path.insert(0, os.path.join(ROOT, "tools"))
import flash as tool  # noqa: E402
from p1dongle import VERSION, bundle  # noqa: E402

FLASH_PY = os.path.join(ROOT, "tools", "flash.py")
NEW = "9.9.9"


def compiled(arch, name, source, tmp_path):
    src = tmp_path / (name + ".py")
    src.write_text(source)
    out = tmp_path / (name + ".mpy")
    subprocess.run([tool.mpy_cross(), "-march=" + arch, "-o", str(out), str(src)], check=True)
    return out.read_bytes()


def new_version(arch, tmp_path, broken=False):
    """The checkout's files as the next version would be: its __init__ says NEW; broken: its app
    module cannot be imported."""
    files = tool.build(arch)
    with open(os.path.join(ROOT, "firmware", "p1dongle", "__init__.py")) as f:
        init = f.read().replace('VERSION = "%s"' % VERSION, 'VERSION = "%s"' % NEW)
    files["p1dongle/__init__.mpy"] = compiled(arch, "__init__", init, tmp_path)
    if broken:
        files["p1dongle/app.mpy"] = compiled(arch, "app", "raise ImportError('a module of the new set is broken')\n",
                                             tmp_path)
    return bundle.pack(NEW, sorted(files.items()))


def dongle(tmp_path, stock_micropython):
    """A stock image with p1dongle installed from files, reading a P1 reader, its web on a port."""
    root = tmp_path / "dongle"
    root.mkdir()
    arch = mpy_arch(stock_micropython)
    stale_install(str(root), arch)
    reader = P1Reader()
    ports = {"tcp_port": free_port(), "http_port": free_port()}
    (root / "p1dongle.json").write_text(json.dumps(dict(
        key=meter.KEY.hex(), source="tcp:127.0.0.1:%d" % reader.port, host="127.0.0.1", status_interval=0,
        meter="lux", **ports)))
    device = FakeDevice(stock_micropython, str(root), heap="2048K")
    return device, reader, ports, arch


def state(host):
    return tool.update_state(host, None)


def boot_and_read(device, reader, ports, start, first_counter):
    reader.accept(timeout=60)
    device.expect(rb"plain telegrams on port %d" % ports["tcp_port"], start=start)
    client = connect(ports["tcp_port"])
    device.expect(rb"connected \(1 clients\)", start=start)
    reader.send(meter.frame(meter.LUX_TELEGRAM, counter=first_counter))
    assert read_telegrams(client, 1, timeout=30) == [meter.LUX_TELEGRAM]
    client.close()


def test_a_bundle_switches_the_file_set_and_keeps_the_previous_one(tmp_path, stock_micropython):
    device, reader, ports, arch = dongle(tmp_path, stock_micropython)
    host = "127.0.0.1:%d" % ports["http_port"]
    try:
        boot_and_read(device, reader, ports, 0, 1)
        s = state(host)
        assert s["way"] == "files" and s["version"] == VERSION and tool.MPY_ARCHS[s["mpy"] >> 10] == arch
        settings = (tmp_path / "dongle" / "p1dongle.json").read_text()
        start = len(device.console)
        answer = tool.send_update(host, None, new_version(arch, tmp_path))
        assert answer["version"] == NEW
        device.expect(rb"rst:0xc \(SW_CPU_RESET\)", start=start)   # the dongle resets into it
        device.expect(rb"p1dongle 9\.9\.9: on probation after the update from %s" % VERSION.encode(), start=start)
        root = tmp_path / "dongle"
        assert (root / "p1dongle.prev" / "app.mpy").exists() and (root / "main.py.prev").exists()
        assert not (root / "p1dongle.new").exists()
        reader.accept(timeout=60)                   # the new set, on probation, reads the meter
        reader.send(meter.frame(meter.LUX_TELEGRAM, counter=2))
        device.expect(rb"p1dongle 9\.9\.9: proven \(a telegram passed on\)", start=start)
        assert state(host)["version"] == NEW
        assert json.loads((root / "p1dongle.update").read_text())["state"] == "proven"
        assert (root / "p1dongle.json").read_text() == settings
    finally:
        device.close()
        reader.close()


def test_a_bundle_whose_module_fails_to_import_goes_back_to_the_previous_set(tmp_path, stock_micropython):
    device, reader, ports, arch = dongle(tmp_path, stock_micropython)
    host = "127.0.0.1:%d" % ports["http_port"]
    try:
        boot_and_read(device, reader, ports, 0, 1)
        start = len(device.console)
        assert tool.send_update(host, None, new_version(arch, tmp_path, broken=True))["version"] == NEW
        # the new set stops at its broken module: reset, and main.py switches back
        device.expect(rb"a module of the new set is broken", start=start)
        device.expect(rb"back on %s: the update to 9\.9\.9 did not take: stopped by an error: ImportError"
                      % VERSION.encode(), start=start, timeout=90)
        assert device.resets == 2                   # into the new set, and back
        boot_and_read(device, reader, ports, start, 2)
        s = state(host)
        assert s["version"] == VERSION and "did not take" in s["came_back"]
        root = tmp_path / "dongle"
        assert not (root / "p1dongle.prev").exists() and not (root / "main.py.prev").exists()
        with open(os.path.join(root, "p1dongle", "app.mpy"), "rb") as f:
            assert f.read() == tool.build(arch)["p1dongle/app.mpy"]
    finally:
        device.close()
        reader.close()


def test_a_bundle_that_is_not_whole_changes_nothing(tmp_path, stock_micropython):
    device, reader, ports, arch = dongle(tmp_path, stock_micropython)
    host = "127.0.0.1:%d" % ports["http_port"]
    try:
        boot_and_read(device, reader, ports, 0, 1)
        good = new_version(arch, tmp_path)
        for data, why in ((good[:-1], "ends early"),
                          (bundle.pack(NEW, [("../boot.py", b"x")]), "not a p1dongle file"),
                          (bundle.pack(NEW, [("main.py", b"x")]), "lacks p1dongle/__init__.mpy"),
                          (b"\xe9" + good[1:], "not a p1dongle update")):
            try:
                tool.send_update(host, None, data)
                raise AssertionError("taken: %r" % why)
            except tool.Fail as e:
                assert why in str(e), e
        root = tmp_path / "dongle"
        assert not (root / "p1dongle.new").exists() and not (root / "main.py.new").exists()
        assert state(host)["version"] == VERSION and device.resets == 0
    finally:
        device.close()
        reader.close()


def test_a_power_cut_half_way_through_the_switch_boots_the_new_set(tmp_path, stock_micropython):
    """main.py's switch is two renames per set: cut between them (the running set already kept as
    p1dongle.prev, the new one still p1dongle.new), the next boot finishes it."""
    root = tmp_path / "dongle"
    root.mkdir()
    arch = mpy_arch(stock_micropython)
    stale_install(str(root), arch)
    os.rename(root / "p1dongle", root / "p1dongle.prev")
    staged = root / "p1dongle.new"
    staged.mkdir()
    files = {}
    data = new_version(arch, tmp_path)
    f = io.BytesIO(data[5 + data[4]:])     # the bundle's files (bundle.py's layout)
    while True:
        n = f.read(1)[0]
        if not n:
            break
        name = f.read(n).decode()
        files[name] = f.read(int.from_bytes(f.read(4), "big"))
    for name, body in files.items():
        path = root / ("main.py.new" if name == "main.py" else "p1dongle.new/" + name[9:])
        path.parent.mkdir(exist_ok=True)
        path.write_bytes(body)
    (root / "p1dongle.update").write_text(json.dumps({"way": "files", "from": VERSION, "to": NEW, "state": "switch"}))
    reader = P1Reader()
    (root / "p1dongle.json").write_text(json.dumps(dict(
        key=meter.KEY.hex(), source="tcp:127.0.0.1:%d" % reader.port, host="127.0.0.1", status_interval=0,
        tcp_port=free_port(), http_port=free_port())))
    device = FakeDevice(stock_micropython, str(root), heap="2048K")
    try:
        device.expect(rb"p1dongle 9\.9\.9: on probation after the update from %s" % VERSION.encode())
        assert (root / "p1dongle.prev" / "app.mpy").exists() and not staged.exists()
        assert json.loads((root / "p1dongle.update").read_text())["state"] == "trial"
    finally:
        device.close()
        reader.close()


def test_any_bytes_as_a_bundle_are_an_update_error_or_a_bundle(tmp_path, monkeypatch):
    """The bundle reader (under CPython, in a folder of its own) on mangled bundles, cut at every
    length and fed in pieces of every size: it takes a whole one, and anything else is an
    UpdateError with its line, never another exception, never a file outside its staging."""
    import random
    from p1dongle.errors import UpdateError
    monkeypatch.chdir(tmp_path)
    good = bundle.pack(NEW, [("main.py", b"print(1)\n"), ("p1dongle/__init__.mpy", b"M\x06\x00\x1f"),
                             ("p1dongle/start.mpy", b"M\x06\x00\x1f" * 3), ("p1dongle/app.mpy", b"M\x06\x00\x1f")])
    rnd = random.Random(7)
    cases = [good[:n] for n in range(len(good))]
    for _ in range(400):
        b = bytearray(good)
        for _ in range(rnd.randint(1, 4)):
            b[rnd.randrange(len(b))] = rnd.randrange(256)
        cases.append(bytes(b))
    taken = 0
    for data in [good] + cases:
        r = bundle.BundleReceiver(bundle.FileSets(VERSION))
        piece = rnd.choice([1, 3, 64, 512])
        try:
            at = 0
            while at < len(data):
                room = r.space()
                n = min(len(room), piece, len(data) - at)
                room[:n] = data[at:at + n]
                r.took(n)
                at += n
            assert r.check() == (NEW if data == good else r.version)
            taken += 1
        except UpdateError:
            r.abort()
        assert sorted(os.listdir(tmp_path)) in ([], ["main.py.new", "p1dongle.new"], ["p1dongle.new"]), os.listdir(tmp_path)
        for name in os.listdir(tmp_path / "p1dongle.new") if (tmp_path / "p1dongle.new").exists() else []:
            assert name.endswith(".mpy")
        r.abort()
    assert taken >= 1
