"""History and peaks (history.py): days of an emulated meter's telegrams in seconds, checked against
sums worked out here from the same telegrams with Home Assistant's own parser (dsmr_parser), not
the dongle's; a restart within the hour, a power cut during a write (the process killed), the
clocks changing, a clock jump, a meter swap; flash writes counted; the page's plots in Chromium."""
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import zoneinfo

import pytest
from dsmr_parser import telegram_specifications
from dsmr_parser.parsers import TelegramParser
from conftest import FIRMWARE, ROOT
from test_pages import browser  # noqa: F401 - the fixture

sys.path.insert(0, FIRMWARE)
sys.path.insert(0, os.path.join(ROOT, "tools"))
import emulator  # noqa: E402
from p1dongle import history, meterclock  # noqa: E402
from p1dongle.history import History  # noqa: E402
from p1dongle.telegram import Telegram  # noqa: E402

BRUSSELS = zoneinfo.ZoneInfo("Europe/Brussels")
ST = {name: k for k, name in enumerate(history.STATE)}      # the open hour's fields
RC = {name: k for k, name in enumerate(history.RECORD)}     # a record's
FLUVIUS = TelegramParser(telegram_specifications.BELGIUM_FLUVIUS)
# Friday 23 October 2026, noon in Brussels: the clocks go back on Sunday the 25th, and the month
# ends on Saturday the 31st
START = datetime.datetime(2026, 10, 23, 12, 0, tzinfo=BRUSSELS).timestamp()


def fluvius(n, start=START, step=120, seed=7):
    """n telegrams of the emulated Belgian meter, its clock moving step seconds each."""
    meter = emulator.EmulatedMeter(bytes(16), profile="fluvius", start=start, step=step, seed=seed)
    return [meter.telegram() for _ in range(n)]


def feed(h, telegrams):
    t = Telegram()
    for data in telegrams:
        t.take(data)
        h.telegram(t)


def independent(telegrams):
    """Per UTC hour, day and month: Wh imported and exported, litres of gas and water, from
    dsmr_parser's reading of the telegrams (the M-Bus channels' lines read here: its Belgian spec
    keeps one device of each kind), booked as a meter books its own periods: an hour is the
    registers at the first telegram of the next hour minus those at its own first telegram."""
    firsts = {}
    for data in telegrams:
        t = FLUVIUS.parse(data.decode())
        when = t.P1_MESSAGE_TIMESTAMP.value
        imp = round((t.ELECTRICITY_USED_TARIFF_1.value + t.ELECTRICITY_USED_TARIFF_2.value) * 1000)
        exp = round((t.ELECTRICITY_DELIVERED_TARIFF_1.value + t.ELECTRICITY_DELIVERED_TARIFF_2.value) * 1000)
        gas, water = (round(float(re.search(rb"\n0-%d:24\.2\.[13]\(\d{12}[SW]\)\((\d+\.\d+)\*m3\)" % n, data).group(1))
                            * 1000) for n in (1, 2))
        firsts.setdefault(int(when.timestamp()) // 3600, (imp, exp, gas, water))
    keys = sorted(firsts)
    hours = {k: tuple(b - a for a, b in zip(firsts[k], firsts[k + 1])) for k in keys[:-1]}
    days, months = {}, {}
    for k, amounts in hours.items():
        local = datetime.datetime.fromtimestamp(k * 3600, BRUSSELS)
        for table, key in ((days, local.strftime("%Y-%m-%d")), (months, local.strftime("%Y-%m"))):
            a = table.get(key, (0, 0, 0, 0))
            table[key] = tuple(x + y for x, y in zip(a, amounts))
    return hours, days, months, firsts


def amounts(r):
    return r["import"], r["export"], r["gas"], r["water"]


def answer(h, series=("hours", "days", "months")):
    """What GET /api/p1dongle/history says: its pieces (text, and the records' bytes) as JSON."""
    return json.loads(b"".join(p if isinstance(p, bytes) else p.encode() for p in h.pieces(series)))


def hour_key(start):
    return int(datetime.datetime.fromisoformat(start).timestamp()) // 3600


def test_days_of_a_belgian_meter_match_sums_made_from_its_telegrams(tmp_path):
    telegrams = fluvius(30 * 3 * 24)            # 3 days, a telegram every 2 minutes
    h = History(str(tmp_path) + "/")
    feed(h, telegrams)
    hours, days, months, firsts = independent(telegrams)
    got = answer(h)
    # the hours: all but the first (begun before the dongle saw it) and the open one, exactly
    closed = [r for r in got["hours"] if not r.get("open")]
    assert len(got["hours"]) == 48 and len(closed) == 47
    for r in closed:
        assert amounts(r) == hours[hour_key(r["start"])], r
        assert "flags" not in r
    assert sum(r["gas"] for r in closed) > 0 and sum(r["water"] for r in closed) > 0
    # Sunday the 25th had 25 hours: 02:00 twice, once in summer time and once in winter time
    starts = [r["start"] for r in got["hours"]]
    assert "2026-10-25T02:00+02:00" in starts and "2026-10-25T02:00+01:00" in starts
    # the days: the first from noon (its first telegram came at 12:00, the hour whole)
    by_date = {r["date"]: r for r in got["days"]}
    assert sorted(by_date) == ["2026-10-23", "2026-10-24", "2026-10-25", "2026-10-26"]
    for date in ("2026-10-23", "2026-10-24", "2026-10-25"):
        assert amounts(by_date[date]) == days[date], date
        assert "flags" not in by_date[date]
    # today and this month include the open hour so far
    last = max(firsts)
    open_hour = got["hours"][-1]
    assert open_hour["open"] and hour_key(open_hour["start"]) == last
    so_far = h.last[0] - firsts[last][0]
    assert open_hour["import"] == so_far
    assert got["months"][-1]["import"] == months["2026-10"][0] + so_far
    assert by_date["2026-10-26"]["import"] == days["2026-10-26"][0] + so_far


def test_a_meter_that_sends_every_few_seconds_is_read_once_a_minute(tmp_path, monkeypatch):
    """A telegram every 3 s for hours: each minute's first is read, the other 19 not at all (their
    clock's minute is the last read's), and the hours are still exactly the registers at the first
    telegram of each hour; the open hour is as of the last minute's first telegram."""
    telegrams = fluvius(5 * 1200, step=3)
    imports = [round((p.ELECTRICITY_USED_TARIFF_1.value + p.ELECTRICITY_USED_TARIFF_2.value) * 1000)
               for p in (FLUVIUS.parse(data.decode()) for data in telegrams)]
    # the end: past 3 hours, the first minute whose register moves after its first telegram
    first = next(k for k in range(3 * 1200, len(telegrams) - 20, 20) if imports[k + 19] > imports[k])
    telegrams = telegrams[:first + 20]
    reads = []
    read = history.read_telegram
    monkeypatch.setattr(history, "read_telegram", lambda data, sink: reads.append(1) or read(data, sink))
    h = History(str(tmp_path) + "/")
    feed(h, telegrams)
    assert len(reads) == first // 20 + 1
    hours, days, months, firsts = independent(telegrams)
    closed = [r for r in answer(h)["hours"] if not r.get("open")]
    assert len(closed) >= 3 and all(amounts(r) == hours[hour_key(r["start"])] for r in closed), closed
    assert h.last[0] == imports[first] < imports[-1]
    # the autumn's 02:30 twice, an hour apart with nothing between: the same minute's text, but
    # summer time, then winter time (its letter): both read
    reads.clear()
    summer = datetime.datetime(2026, 10, 25, 2, 30, tzinfo=BRUSSELS).timestamp()
    twice = fluvius(2, start=summer, step=3600)
    assert [re.search(rb"0-0:1\.0\.0\((\d{12}[SW])\)", data).group(1)[6:] for data in twice] == [b"023000S", b"023000W"]
    (tmp_path / "autumn").mkdir()
    feed(History(str(tmp_path / "autumn") + "/"), twice)
    assert len(reads) == 2


def test_the_peaks_equal_a_belgian_meters_own(tmp_path):
    """1-0:1.4.0 (the quarter's energy so far, times four) and 1-0:1.6.0 (the month's highest
    quarter, with the time it ended), as the meter writes them, at every telegram once the dongle
    has seen a quarter begin; across the end of the month too."""
    start = datetime.datetime(2026, 10, 30, 20, 0, tzinfo=BRUSSELS).timestamp()
    telegrams = fluvius(15 * 24 * 3, start=start, step=60)      # 3 days, a telegram a minute
    h = History(str(tmp_path) + "/")
    t = Telegram()
    compared = peaks = 0
    for data in telegrams:
        t.take(data)
        h.telegram(t)
        own = FLUVIUS.parse(data.decode())
        average = h.average()
        if average is not None:
            assert average == round(own.BELGIUM_CURRENT_AVERAGE_DEMAND.value * 1000), data
            compared += 1
        month = h.month()
        peak = getattr(own, "BELGIUM_MAXIMUM_DEMAND_MONTH", None)
        if peak is not None:
            assert month is not None and month[1], data
            assert month[0] == round(peak.value * 1000)
            assert meterclock.iso(month[1], month[2]) == peak.datetime.astimezone(BRUSSELS).isoformat()
            peaks += 1
        elif month is not None and h.state[ST['hour']] * 60 + h.state[ST['offset']] >= 0:
            # a new month: the meter has no peak yet, neither has the dongle for this month
            assert not month[1] or meterclock.month_of(month[1] - 15) != meterclock.month_of(
                h.clock[0] + h.clock[1])
    assert compared > len(telegrams) * 0.9 and peaks > len(telegrams) * 0.9


def test_norways_three_highest_hours_on_different_days(tmp_path):
    h = History(str(tmp_path) + "/")
    base = meterclock.days_from_civil(2027, 1, 4) * 1440     # Monday 4 January 2027, UTC (offset 0)
    imp = 10_000_000
    # one high hour a day: 3, 4.8, 3.6 and 2.4 kWh at 18:00; 480 Wh the other hours
    highs = (3000, 4800, 3600, 2400)
    for day, high in enumerate(highs):
        for hour in range(24):
            for minute in range(0, 60, 5):
                h.book(base + day * 1440 + hour * 60 + minute, 0, imp, 0, -1, 1)
                imp += (high if hour == 18 else 480) // 12
    month = h.month()
    assert month[3] == (4800 + 3600 + 3000) // 3
    assert meterclock.iso(month[4], month[5]) == "2027-01-05T18:00:00+00:00"   # the highest hour's start
    got = answer(h, ("days",))
    assert [d.get("hour_peak_w") for d in got["days"]] == [3000, 4800, 3600, 2400]


def test_a_restart_within_the_hour_goes_on_where_it_was(tmp_path):
    telegrams = fluvius(30 * 30)
    whole = History(str(tmp_path / "whole") + "/")
    os.makedirs(tmp_path / "whole")
    feed(whole, telegrams)
    os.makedirs(tmp_path / "cut")
    first = History(str(tmp_path / "cut") + "/")
    # cut at 26 minutes past an hour: the dongle restarts, and the next telegram is 2 minutes on
    k = next(i for i in range(400, 600) if telegrams[i].split(b"0-0:1.0.0(")[1][8:10] == b"26")
    feed(first, telegrams[:k])
    again = History(str(tmp_path / "cut") + "/")
    feed(again, telegrams[k:])
    a, b = answer(whole), answer(again)
    for series in ("hours", "days", "months"):
        assert [(r.get("start") or r.get("date") or r["month"], r["import"], r["export"]) for r in a[series]] == \
               [(r.get("start") or r.get("date") or r["month"], r["import"], r["export"]) for r in b[series]]
    # the quarter the restart fell in was not measured: a peak can only be lower or the same
    assert again.month()[0] <= whole.month()[0]


KILLED = r"""
import sys
import time
sys.path.insert(0, sys.argv[1])
from p1dongle.history import History
h = History(sys.argv[2])
# (where the last run left the open hour: the meter has counted 100 Wh more an hour on)
minute = h.state[2] * 60 + 60 if h.state[2] >= 0 else 29000000
imp = h.last[0] + 100 if h.state[2] >= 0 else 1000000
print("ready", flush=True)
for n in range(80):                 # an hour a reading: every reading writes the three files
    h.book(minute, 60, imp, 0, -1, 1)
    minute += 60
    imp += 100
time.sleep(60)                      # (80 hours a run at most: 16 runs fit the days kept)
"""


def test_a_power_cut_during_a_write_keeps_whole_files(tmp_path):
    """The process is killed while it writes the files, again and again: each time the history
    reads back whole, and no hour is booked twice or lost from the days and months."""
    folder = str(tmp_path) + "/"
    for cut in range(16):
        p = subprocess.Popen([sys.executable, "-c", KILLED, FIRMWARE, folder], stdout=subprocess.PIPE)
        assert p.stdout.readline() == b"ready\n"
        # let it write for a moment, then cut the power (after a random number of writes)
        p.stdout.close()
        try:
            p.wait(timeout=0.05 + 0.02 * cut)
        except subprocess.TimeoutExpired:
            pass
        p.send_signal(signal.SIGKILL)
        p.wait()
        said = []
        h = History(folder, said.append)
        assert said == [] and not any(f.endswith(".new") for f in os.listdir(folder))
        st = h.state
        hours = [r for r in h.records("hours") if r[RC['key']] >= 0]
        assert all(r[RC['import']] == 100 for r in hours)
        # every hour booked is in the days and months once: the registers say how many there were.
        # A cut after the day's file and before the hours file leaves the open hour in the day
        # already (it says so: BOOKED); the next run books it there no second time.
        booked = (st[ST['import']] - 1000000) // 100
        ahead = st[ST['closes']] + 1
        for series in ("days", "months"):
            records = [r for r in h.records(series) if r[RC['key']] >= 0]
            early = any(r[RC['booked']] == ahead for r in records)
            assert sum(r[RC['import']] for r in records) == 100 * (booked + early), series


def test_clock_jumps_and_a_meter_swap_never_make_a_negative_hour(tmp_path):
    h = History(str(tmp_path) + "/")
    t0 = meterclock.days_from_civil(2026, 12, 1) * 1440 + 600       # 10:00 UTC
    h.book(t0, 60, 5_000_000, 0, -1, 11)
    h.book(t0 + 59, 60, 5_000_500, 0, -1, 11)
    h.book(t0 + 60, 60, 5_001_000, 0, -1, 11)       # 11:00: hour 10 is 1000 Wh (began unseen)
    # the meter's clock jumps a day ahead (set by the grid operator): the energy is kept, and the
    # hour it went to is marked: not all of it was seen
    h.book(t0 + 60 + 1440 + 5, 60, 5_001_300, 0, -1, 11)
    # ... and back again
    h.book(t0 + 70, 60, 5_001_400, 0, -1, 11)
    # the meter is swapped: a new identifier, its register from zero
    h.book(t0 + 75, 60, 12, 0, -1, 22)
    h.book(t0 + 120, 60, 112, 0, -1, 22)
    assert h.state[ST['series']] == 1
    got = answer(h)
    assert all(r["import"] >= 0 and r["export"] >= 0 for s in ("hours", "days", "months") for r in got[s])
    total = sum(r["import"] for r in got["hours"])
    assert total == 1400 + 100                      # all the old meter counted, and the new one's
    assert sum(r["import"] for r in got["days"]) == total
    flags = set(f for r in got["hours"] for f in r.get("flags", ()))
    assert {"gap", "swap", "clock"} <= flags
    # a clock that is not set (2000-01-01) books nothing
    assert meterclock.parse("2000-01-01T00:00:05+01:00") is None


def test_flash_is_written_at_most_once_an_hour_per_file(tmp_path):
    telegrams = fluvius(600, step=60)            # 10 hours, from noon
    h = History(str(tmp_path) + "/")
    feed(h, telegrams)
    hours = len(independent(telegrams)[0])
    assert hours == 9
    # the first telegram writes the hours file (where the open hour began); each hour's end, each file once
    assert h.writes == [hours + 1, hours, hours]     # hours, days, months


def test_a_telegram_without_a_clock_books_nothing(tmp_path):
    h = History(str(tmp_path) + "/")
    data = fluvius(1)[0]
    cut = data.replace(data[data.index(b"0-0:1.0.0"):data.index(b"1-0:1.8.1")], b"")
    body = cut[:cut.index(b"!") + 1]
    from p1dongle.dsmr import crc16
    feed(h, [body + b"%04X\r\n" % crc16(body)])
    assert h.unclocked == 1 and h.state[ST['hour']] == -1 and h.writes == [0, 0, 0]


def test_the_records_the_files_keep_are_the_documented_size(tmp_path):
    h = History(str(tmp_path) + "/")
    feed(h, fluvius(40))
    for series, slots in (("hours", 48), ("days", 62), ("months", 60)):
        head = 4 + (120 if series == "hours" else 0)
        assert os.path.getsize(str(tmp_path / ("history." + series))) == head + slots * 52


@pytest.fixture
def dongle(tmp_path):
    """The simulator with a Belgian meter on a fast clock (2 days in about 15 s) that then stops."""
    from procs import Proc, free_port, sim
    meter_port, http_port = free_port(), free_port()
    n = 30 * 50
    meter = Proc([sys.executable, os.path.join(ROOT, "tools", "sim.py"), "meter", "--profile", "fluvius",
                  "--port", str(meter_port), "--interval", "0.01", "--count", str(n), "--seed", "5",
                  "--start", "2026-10-23T12:00:00+02:00", "--step", "120"])
    meter.expect("emulated meter")
    app = sim("run", "--source", "tcp:127.0.0.1:%d" % meter_port, "--tcp-port", "0", "--http-port", str(http_port),
              "--history", str(tmp_path / "history"), "--status-interval", "0")
    try:
        app.expect("web: ")
        yield app, http_port, n
    finally:
        app.stop()
        meter.stop()


def _history_when_done(port, n, timeout=90):
    import time
    import urllib.request
    want = datetime.datetime.fromtimestamp(START + 120 * (n - 1), BRUSSELS).isoformat()
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        with urllib.request.urlopen("http://127.0.0.1:%d/api/p1dongle/history" % port, timeout=10) as r:
            got = json.loads(r.read())
        if got["meter_time"] == want:
            return got
        time.sleep(0.5)     # polling the dongle's own answer, which says when it has all
    raise AssertionError("the dongle's meter time is %s, not %s" % (got and got["meter_time"], want))


def test_the_page_plots_the_history(dongle, browser, tmp_path):
    app, port, n = dongle
    got = _history_when_done(port, n)
    hours, days, _, _ = independent(fluvius(n, seed=5))
    closed = [r for r in got["hours"] if not r.get("open")]
    for r in closed[1:]:
        assert amounts(r) == hours[hour_key(r["start"])]
    if True:
        page = browser.new_page(viewport={"width": 400, "height": 800})
        page.goto("http://127.0.0.1:%d/" % port)
        page.wait_for_selector("#hours g.bar")
        assert page.locator("#hours g.bar").count() == len(got["hours"]) == 48
        assert page.locator("#days g.bar").count() == len(got["days"])
        assert page.locator("#months g.bar").count() == len(got["months"]) == 1
        # each bar says its amounts, as the dongle booked them
        for k in (0, 20, 47):
            title = page.locator("#hours g.bar title").nth(k).text_content()
            assert "import %.3f kWh" % (got["hours"][k]["import"] / 1000) in title, title
        day = got["days"][1]
        assert ("import %.3f kWh" % (day["import"] / 1000)) in page.locator("#days g.bar title").nth(1).text_content()
        # the month's highest quarter hour is marked on its day
        peak_day = got["peaks"]["month_peak_time"][:10]
        marked = page.locator("#days g.bar:has(path.pk) title").text_content()
        assert marked.startswith(peak_day)
        assert page.locator("#mpeak").text_content() == str(got["peaks"]["month_peak_w"])
        page.locator("#history").screenshot(path=str(tmp_path / "history.png"))


# -- the peaks for Home Assistant and HomeWizard's clients ------------------------------------------

def test_home_assistant_gets_the_peaks_as_sensors(tmp_path):
    """MQTT's peaks: a JSON the history writes, and four sensors on the meter's device that every
    Home Assistant release since 2024.1 takes (power, measurement, W; the time as a timestamp)."""
    import types
    import ha
    from p1dongle.mqtt import MqttClient
    from p1dongle.mqttout import MqttOutput
    h = History(str(tmp_path) + "/")
    telegrams = fluvius(200, step=60)
    feed(h, telegrams)
    client = MqttClient("127.0.0.1", 1, "p1dongle", will=("p1dongle/p1dongle/status", "offline"))
    out = MqttOutput(client, "p1dongle/p1dongle", "homeassistant", "p1dongle", log=lambda line: None)
    out.connected_to(types.SimpleNamespace(history=h))
    ha.tell(out, telegrams[-1])
    peaks = json.loads(h.peaks_json())
    assert peaks["average_w"] == round(FLUVIUS.parse(telegrams[-1].decode()).BELGIUM_CURRENT_AVERAGE_DEMAND.value * 1000)
    configs = {}
    for topic, payload in out.discovery():
        assert ha.clean(topic, payload) == [], payload
        if "/peaks_" in topic:
            configs[topic.split("/")[-2]] = ha.expand(json.loads(payload), ha.REFERENCE[ha.NEWEST])
    assert sorted(configs) == ["peaks_average_w", "peaks_hour_peaks_average_w", "peaks_month_peak_time",
                               "peaks_month_peak_w"]
    for name, c in configs.items():
        assert c["state_topic"] == "p1dongle/p1dongle/peaks" and "['%s']" % name[6:] in c["value_template"]
        if name.endswith("_w"):
            assert (c["device_class"], c["state_class"], c["unit_of_measurement"]) == ("power", "measurement", "W")
        else:
            assert c["device_class"] == "timestamp" and "unit_of_measurement" not in c
        assert c["device"]["identifiers"] == ["p1dongle_p1dongle_1SAG1105440301"]    # the meter's own name
    # the peaks go out with the telegram, at most every 10 s (a 15-minute average needs no more)
    # (waiting for the broker, the message is made again when it goes: it holds no payload)
    sent = [m for m in client._queue if m[0] == "p1dongle/p1dongle/peaks"]
    assert len(sent) == 1 and callable(sent[0][1]) and json.loads(sent[0][1]()) == peaks


@pytest.fixture
def luxembourg(tmp_path):
    """The simulator reading the emulated Luxembourg meter (no peak registers of its own) on a
    fast clock: 3 hours in 360 frames."""
    from procs import DEMO_KEY, Proc, free_port, sim
    meter_port, http_port = free_port(), free_port()
    meter = Proc([sys.executable, os.path.join(ROOT, "tools", "sim.py"), "meter", "--port", str(meter_port),
                  "--interval", "0.02", "--count", "360", "--seed", "3", "--start", "2026-12-01T09:00:00+01:00",
                  "--step", "30"])
    meter.expect("emulated meter")
    app = sim("run", "--source", "tcp:127.0.0.1:%d" % meter_port, "--key", DEMO_KEY, "--tcp-port", "0",
              "--http-port", str(http_port), "--history", str(tmp_path / "history"), "--status-interval", "0")
    try:
        app.expect("web: ")
        yield http_port
    finally:
        app.stop()
        meter.stop()


def test_homewizard_clients_get_every_meters_average_and_monthly_peak(luxembourg):
    """A meter that sends no 1-0:1.4.0 nor 1-0:1.6.0 (Luxembourg's): HomeWizard's
    active_power_average_w and montly_power_peak_w come from the dongle's own, as
    python-homewizard-energy (Home Assistant's HomeWizard integration) reads them."""
    from test_web import homewizard
    import time
    import urllib.request
    want = "2026-12-01T11:59:00+01:00"          # (the meter time, to the minute: 11:59:30)
    deadline = time.monotonic() + 60
    while True:
        with urllib.request.urlopen("http://127.0.0.1:%d/api/p1dongle/history?peaks" % luxembourg, timeout=10) as r:
            got = json.loads(r.read())
        if got["meter_time"] == want:
            break
        assert time.monotonic() < deadline, got["meter_time"]
        time.sleep(0.5)     # polling the dongle's own answer, which says when the meter's last frame came
    assert "hours" not in got and got["peaks"]["month_peak_w"] > 0
    from concurrent.futures import ThreadPoolExecutor
    with ThreadPoolExecutor(1) as pool:         # (a thread of its own: Playwright's loop runs in this one)
        (m,) = pool.submit(homewizard, luxembourg, "measurement").result()
    assert m.average_power_15m_w == got["peaks"]["average_w"]
    assert m.monthly_power_peak_w == got["peaks"]["month_peak_w"]
    assert m.monthly_power_peak_timestamp.isoformat()[:16] == got["peaks"]["month_peak_time"][:16]
