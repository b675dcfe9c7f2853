"""`make soak`, run short: firmware/main.py on the dongle twin in a 96 KB heap, with the emulated
meter's faults, 7 reading TCP clients, a stalled one, clients that come and go, MQTT to a
mosquitto killed and restarted, and the faces polled (HomeWizard, Shelly over HTTP, UDP and a
WebSocket, mDNS; 3 clients each): no MemoryError, no restart, every reading client gets every
telegram, every face's poll answered, the heap stays flat; the same from .mpy files on the stock-image twin in the heap
install asks for. And the application bench runs (figures, no pass/fail)."""
import os
import re
import sys

from conftest import ROOT

sys.path.insert(0, os.path.join(ROOT, "tools"))


def test_the_whole_app_holds_in_the_dongles_heap(micropython, capsys):
    import soak
    rc = soak.main(["--seconds", "60", "--heap", "96K", "--broker-restarts", "2", "--micropython", micropython])
    out = capsys.readouterr().out
    print(out)
    assert rc == 0, out
    assert "soak: held" in out and "MemoryErrors: 0, restarts: 0" in out
    for face in soak.FACES:
        answered = re.search(r"  %s: (\d+) answered \((\d+) wrong, (\d+) not answered\)" % face, out)
        assert answered and int(answered.group(1)) > 0 and answered.group(2) == "0", (face, out)


def test_from_files_the_app_holds_in_the_heap_install_asks_for(stock_micropython, capsys):
    """The files way (a stock image: the .mpy files install writes, on the stock-image twin) holds
    in p1dongle.FILES_HEAP, the heap tools/flash.py install and start.py ask of a board: the
    figure is what make soak measured, and a firmware that outgrows it fails here."""
    import soak
    from p1dongle import FILES_HEAP
    rc = soak.main(["--seconds", "60", "--load", "files", "--broker-restarts", "1", "--micropython", stock_micropython])
    out = capsys.readouterr().out
    print(out)
    assert rc == 0, out
    assert "soak: %dK heap, code from .mpy files" % (FILES_HEAP // 1024) in out
    assert "soak: held" in out and "MemoryErrors: 0, restarts: 0" in out


def test_the_application_bench_measures(micropython):
    import bench_app
    r = bench_app.run(micropython, frames=60)
    for name in ("tcp", "tcp_mqtt"):
        # (60 telegrams take less CPU than the kernel's 10 ms accounting tick: 0 is a figure too)
        assert r[name]["frames"] == 60 and r[name]["cpu_us_per_telegram"] >= 0 and r[name]["memory_errors"] == 0
    assert r["tcp_mqtt"]["mqtt_telegrams"] == 60 and r["tcp_mqtt"]["discovery_configs"] > 20
    assert "whole application on the dongle twin" in bench_app.describe(r)
