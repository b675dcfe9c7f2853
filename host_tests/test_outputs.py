"""One telegram for every output (issue 25): every output reads the same Telegram (telegram.py),
so MQTT's state, the HomeWizard API and the status page hold the same readings after every
frame, also for a meter that pushes several lists (the power every few seconds, the energy and
the ids once an hour): the hourly list's energy stays everywhere until it comes again.

Against `tools/sim.py run` fed real captures a frame at a time, a real broker and paho-mqtt."""
import json
import os
import re
from decimal import Decimal

import pytest
from procs import P1Reader, free_port, sim
from test_captures import HERE
from test_mqtt import Subscriber, broker, until  # noqa: F401 - broker is a fixture
from test_web import get_json

from p1dongle import homewizard


def frames(name):
    """The HDLC frames of a capture file, one per line as the file has them."""
    with open(os.path.join(HERE, name)) as f:
        return [bytes.fromhex(line) for line in f.read().split()]


# Real multi-list streams: Kaifa MA304H3E's (lists 1, 3, 2 as it sent them); Aidon's hourly list 3
# (meter id, energies), then its list 1 (the power alone) twice, as an Aidon pushes them.
KAIFA = ("kaifa", frames("kaifa-no-stream-list1-2-3.hex"))
AIDON = ("aidon", frames("aidon-no-list3-gh1119.hex") + frames("aidon-no-list1-7d-in-data.hex") * 2)


def numbers(state):
    """{name: Decimal} of the MQTT state's numbers."""
    return {k: Decimal(str(v)) for k, v in state.items() if k != "units" and isinstance(v, (int, float))}


def on_page(status):
    """{name: Decimal} of the status page's values (api/status: [name, label, digits, unit])."""
    return {name: Decimal(text) for name, _, text, _ in status["values"]}


def in_kw(state, name):
    unit = state["units"].get(name)
    return numbers(state)[name] * {"kW": 1000, "W": 1}[unit]


def check_homewizard(data, state):
    """Each HomeWizard field is the state's reading it is made from (homewizard.FIELDS), and the
    totals the state has are there."""
    have = numbers(state)
    for field, name, unit in homewizard.FIELDS:
        if name in have:
            want = have[name] * 1000 if unit == "W" and state["units"].get(name) == "kW" else have[name]
            assert Decimal(str(data[field])) == want, (field, data.get(field), want)
        else:
            assert field not in data, (field, data[field])
    if "totalImportedEnergyP" in have:
        assert Decimal(str(data["total_power_import_kwh"])) == have["totalImportedEnergyP"]
    if "currentUsage" in have:
        power = in_kw(state, "currentUsage") - (in_kw(state, "currentDelivery") if "currentDelivery" in have else 0)
        assert Decimal(str(data["active_power_w"])) == power


@pytest.mark.parametrize("meter,stream", [KAIFA, AIDON], ids=["kaifa", "aidon"])
def test_every_output_holds_the_same_readings_after_every_frame(broker, meter, stream):  # noqa: F811
    reader = P1Reader()
    sub = Subscriber(broker.port)
    proc = sim("run", "--source", "tcp:127.0.0.1:%d" % reader.port, "--meter", meter, "--tcp-port", "0",
               "--http-port", "0", "--status-interval", "0", "--mqtt", "127.0.0.1:%d" % broker.port,
               "--device-id", "multi")
    try:
        port = int(proc.expect(r"web page on port (\d+)").group(1))
        proc.expect(r"mqtt .*: connected")
        reader.accept()
        energy_seen = False
        for n, frame in enumerate(stream, 1):
            reader.send(frame)
            proc.expect(r"telegram %d: \d+ bytes" % n)
            sub.wait(until("p1dongle/multi/state", n), what="state %d" % n)
            state = json.loads(sub.payloads("p1dongle/multi/state")[-1])
            page = on_page(get_json(port, "/api/status"))
            data = get_json(port, "/api/v1/data")
            assert page == numbers(state), (n, sorted(set(page) ^ set(numbers(state))))
            check_homewizard(data, state)
            energy_seen = energy_seen or "totalImportedEnergyP" in state
            if energy_seen:     # the hourly list's energy stays, whatever list came since
                assert "total_power_import_kwh" in data and "totalImportedEnergyP" in page, (n, sorted(page))
        assert energy_seen
        lists = {len(numbers(json.loads(p))) for p in sub.payloads("p1dongle/multi/state")}
        assert len(lists) > 1 or meter == "aidon"
    finally:
        proc.stop()
        reader.close()
        sub.close()


def test_a_telegrams_readings_are_read_once_for_every_output(monkeypatch):
    """A DSMR telegram is read from its text when an output first asks, and every output gets
    that one list until the next telegram (read again for each, the faces' clients' copies, 2.5 KB
    each for Luxembourg's, took the dongle's whole heap margin); out of memory, it is let go and
    read again when asked. A DLMS push's readings alike, a copy of the holder's."""
    from p1dongle import dsmr, obis
    from p1dongle.telegram import Telegram
    reads = []
    parse = dsmr.parse
    monkeypatch.setattr(dsmr, "parse", lambda data: reads.append(1) or parse(data))
    first = b"/ISk5\\2MT382-1000\r\n\r\n1-0:1.8.1(000004.426*kWh)\r\n!"
    second = first.replace(b"4.426", b"4.427")
    t = Telegram()
    t.take(first)
    shared = t.readings()
    assert t.readings() is shared and t.readings() is shared and len(reads) == 1
    t.take(second)
    assert t.readings()[1][1] == (4427, -3, "kWh") and shared[1][1] == (4426, -3, "kWh") and len(reads) == 2
    t.release()
    assert t.readings() == parse(second) and len(reads) == 3
    power = obis.row("1-0:1.7.0")
    t.take(b"/x", [(power, (5, 0, "kW"))], now=0)
    pushed = t.readings()
    assert t.readings() is pushed and pushed == [(power, (5, 0, "kW"))]
    t.take(b"/x", [(power, (6, 0, "kW"))], now=1000)
    assert t.readings() == [(power, (6, 0, "kW"))] and pushed == [(power, (5, 0, "kW"))]


def test_a_reading_the_meter_stops_sending_goes_from_every_output_alike():
    """The holder's clock: lists every 10 s and an hourly one. A reading of the 10-s list that
    stops is gone once missing for twice the meter's longest interval (30 s at least); the hourly
    list's reading stays for twice that; one seen only once stays for HELD_MS. A DSMR telegram
    (all its readings in itself) leaves nothing of a DLMS meter behind."""
    from p1dongle import obis
    from p1dongle.telegram import HELD_MS, Telegram
    power, volts, energy = (obis.row(c) for c in ("1-0:1.7.0", "1-0:32.7.0", "1-0:1.8.0"))
    t = Telegram()
    names = lambda: [row[obis.NAME] for row, _ in t.readings()]      # noqa: E731
    t.take(b"/x", [(energy, (1, 0, "kWh")), (power, (5, 0, "kW")), (volts, (230, 0, "V"))], now=0)
    assert names() == ["totalImportedEnergyP", "currentUsage", "voltageL1"]
    for s in range(10, 3600, 10):
        t.take(b"/x", [(power, (s, 0, "kW"))] + ([(volts, (230, 0, "V"))] if s < 100 else []), now=s * 1000)
        if s == 110:
            assert "voltageL1" in names()                       # missing for 20 s: not 30 yet
        if s == 130:
            assert "voltageL1" not in names()                   # 40 s
    assert names() == ["totalImportedEnergyP", "currentUsage"]  # seen once: kept, for HELD_MS
    t.take(b"/x", [(energy, (2, 0, "kWh")), (power, (1, 0, "kW"))], now=3600 * 1000)
    assert t.longest == 3600 * 1000                             # the hourly list's interval
    t.take(b"/x", [(power, (2, 0, "kW"))], now=(3600 + 7000) * 1000)
    assert "totalImportedEnergyP" in names()                    # missing for less than 2 h
    t.take(b"/x", [(power, (3, 0, "kW"))], now=(3600 + 7300) * 1000)
    assert names() == ["currentUsage"]
    t.take(b"/x", [(volts, (231, 0, "V"))], now=(3600 + 7310) * 1000)
    t.take(b"/x", [(power, (4, 0, "kW"))], now=(3600 + 7310) * 1000 + HELD_MS - 1)
    assert "voltageL1" in names()
    t.take(b"/x", [(power, (4, 0, "kW"))], now=(3600 + 7310) * 1000 + HELD_MS + 1)
    assert "voltageL1" not in names()
    dsmr_telegram = b"/ISk5\\2MT382-1000\r\n\r\n1-0:1.8.1(000004.426*kWh)\r\n!"
    t.take(dsmr_telegram)
    assert names() == ["header", "totalImportedEnergyT1"] and not t.rendered
