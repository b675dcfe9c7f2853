"""The dongle's pages in a real browser: Debian's chromium, headless, driven by Playwright, against
`tools/sim.py run` on loopback. The status page shows the telegram's values and follows the next
telegram; the settings form refuses a 31-digit key with its message and saves a new MQTT host (the
app restarts with it); no key ever reaches the browser. (The settings page's Firmware section:
test_update_page.py.) Screenshots of each page are kept in
build/screenshots (the README's come from there)."""
import json
import urllib.request
import os
import shutil

import meter
import pytest
from conftest import ROOT
from procs import free_port
from test_web import KEY_HEX, Dongle, parsed

SHOTS = os.path.join(ROOT, "build", "screenshots")
PHONE = {"width": 412, "height": 915}           # a common Android phone's viewport


def chromium():
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("chromium is not installed: `make test` installs Debian's (apt-get install chromium)")
    return path


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium(), headless=True,
                              args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
        yield b
        b.close()


@pytest.fixture
def dongle(tmp_path):
    d = Dongle(tmp_path)
    yield d
    d.close()


def page_for(browser, dongle, bodies):
    """A phone-sized page that keeps every response body it gets (to look for secrets in)."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, accept_downloads=True)
    page = context.new_page()

    def keep(response):
        try:
            bodies.append((response.url, response.body()))
        except Exception:   # noqa: BLE001 - a redirect or an aborted request has no body
            pass
    page.on("response", keep)
    page.set_default_timeout(15000)
    return page


def shot(page, name):
    """What the phone's screen shows (name.png), and the whole page (name-full.png)."""
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, name + ".png"))
    page.screenshot(path=os.path.join(SHOTS, name + "-full.png"), full_page=True)


def no_key_in(bodies):
    assert bodies
    for url, body in bodies:
        assert KEY_HEX.encode() not in body.upper(), url


def test_the_status_page_shows_the_telegram_and_follows_the_next(browser, dongle):
    from playwright.sync_api import expect
    bodies = []
    page = page_for(browser, dongle, bodies)
    page.goto("http://127.0.0.1:%d/" % dongle.port)
    expect(page.locator("#values")).to_contain_text("Waiting for the first telegram")
    dongle.send(meter.LUX_TELEGRAM)
    lux = parsed(meter.LUX_TELEGRAM)
    expect(page.locator("#import")).to_have_text(str(lux.CURRENT_ELECTRICITY_USAGE.value))        # 0.231
    expect(page.locator("#export")).to_have_text(str(lux.CURRENT_ELECTRICITY_DELIVERY.value))
    energy = page.locator("#values tr", has_text="Energy import")
    expect(energy.first).to_contain_text(str(lux.ELECTRICITY_IMPORTED_TOTAL.value))              # 23949.193, exact
    expect(page.locator("#values tr", has_text="Voltage L2").first).to_contain_text(
        str(lux.INSTANTANEOUS_VOLTAGE_L2.value))
    expect(page.locator("#meter")).to_have_text(bytes.fromhex(lux.LUXEMBOURG_EQUIPMENT_IDENTIFIER.value).decode())
    expect(page.locator("#status")).to_contain_text("Telegrams")
    expect(page.locator("#line")).to_contain_text("telegrams 1,")
    expect(page.locator("#telegram")).to_contain_text("1-0:1.8.0(023949.193*kWh)")
    shot(page, "status")
    # the next telegram, with other values: the page follows without a reload
    dongle.send(meter.NL_TELEGRAM)
    nl = parsed(meter.NL_TELEGRAM)
    expect(page.locator("#import")).to_have_text(str(nl.CURRENT_ELECTRICITY_USAGE.value))          # 0.244
    expect(page.locator("#telegram")).to_contain_text("1-0:1.8.1(000004.426*kWh)")
    expect(page.locator("#line")).to_contain_text("telegrams 2,")
    no_key_in(bodies)


def test_the_settings_form_refuses_a_bad_key_and_saves_a_new_broker(browser, dongle):
    from playwright.sync_api import expect
    bodies = []
    page = page_for(browser, dongle, bodies)
    page.goto("http://127.0.0.1:%d/settings" % dongle.port)
    expect(page.locator("#key")).to_have_attribute("placeholder", "set (leave empty to keep it)")
    expect(page.locator("#mqtt\\.password")).to_have_attribute("placeholder", "not set")
    expect(page.locator("#key")).to_have_value("")                    # write-only: never filled in
    expect(page.locator("#meter")).to_have_value("auto")
    assert "lux" in page.locator("#meter option").all_inner_texts()
    # sim.py runs without app slots: the Firmware section says so and offers no file to send
    expect(page.locator("#fw-why")).to_have_text("updates: not on this platform")
    expect(page.locator("#image")).to_be_hidden()
    shot(page, "settings")

    page.fill("#key", "0" * 31)
    page.click("#save")
    expect(page.locator("#msg")).to_contain_text("key must be")
    expect(page.locator("#msg")).to_have_class("err")
    assert not dongle.settings_file.exists()                            # nothing was saved
    shot(page, "settings-refused")

    port = free_port()
    page.fill("#key", "")
    page.fill("#mqtt\\.host", "127.0.0.1")
    page.fill("#mqtt\\.port", str(port))
    page.fill("#mqtt\\.user", "p1")
    expect(page.locator("#shelly")).not_to_be_checked()
    expect(page.locator("#mdns")).not_to_be_checked()                  # (a PC announces nothing)
    page.check("#shelly")
    page.click("#save")
    expect(page.locator("#msg")).to_contain_text("restarts with the new settings")
    dongle.proc.expect(r"restarting with the new settings")
    dongle.started()
    s = json.loads(dongle.settings_file.read_text())
    assert s["mqtt"] == {"host": "127.0.0.1", "port": port, "user": "p1"}
    assert s["shelly"] is True and s["mdns"] is False
    with urllib.request.urlopen("http://127.0.0.1:%d/shelly" % dongle.port, timeout=10) as r:
        assert json.loads(r.read())["model"] == "SPEM-003CEBEU"        # the face is on
    assert s["key"].upper() == KEY_HEX                                  # kept: the field was left empty
    # the restarted app publishes to that broker (which is not there: it says so and goes on)
    dongle.proc.expect(r"mqtt.*127\.0\.0\.1:%d" % port)
    page.goto("http://127.0.0.1:%d/settings" % dongle.port)
    expect(page.locator("#mqtt\\.host")).to_have_value("127.0.0.1")
    expect(page.locator("#mqtt\\.port")).to_have_value(str(port))
    expect(page.locator("#shelly")).to_be_checked()

    # the backup: a download without the key
    with page.expect_download() as download:
        page.click("text=Download the settings")
    backup = json.loads(open(download.value.path()).read())
    assert backup["mqtt"]["host"] == "127.0.0.1" and "key" not in backup
    no_key_in(bodies)


def test_the_first_setup_page_says_so(browser, tmp_path):
    """--setup, as the dongle on its own access point: a phone's connectivity check lands on the
    settings page, which says what to do."""
    from playwright.sync_api import expect
    from procs import sim
    app = sim("run", "--source", "meter", "--interval", "5", "--tcp-port", "0", "--http-port", "0", "--setup", "-q")
    try:
        port = int(app.expect(r"web: http://localhost:(\d+)/").group(1))
        page = page_for(browser, None, [])
        page.goto("http://127.0.0.1:%d/generate_204" % port)            # Android's check
        assert page.url == "http://127.0.0.1:%d/settings" % port
        expect(page.locator("#msg")).to_contain_text("First setup")
        shot(page, "first-setup")
    finally:
        app.stop()
