"""The settings page's Firmware section in a real browser (Debian's chromium, headless, through
Playwright, as test_pages.py), against firmware/main.py under CPython over a fake flash (as
test_update.py): it shows the version and how the dongle updates; an image chosen on the page is
hashed by the page's own SHA-256 (plain http has no WebCrypto), sent with its progress shown,
and the page follows the dongle through its reset to the new version; a refused image gets the
dongle's one line; a dongle back on the old version says why. A dongle that cannot update says
why, and one that runs from files (the stock-image twin) says how to update it. Screenshots land
in build/screenshots, as test_pages.py's."""
import base64
import hashlib
import os
import random
import shutil

import pytest
from conftest import FIRMWARE, firmware_modules
from p1dongle import VERSION
from test_pages import PHONE, browser, shot  # noqa: F401 - the fixture: chromium as test_pages launches it
from updates import Dongle, MeterLine, app_image, cpython_dongle, flash_by_usb, otadata

OLD, NEW = "0.8.0", "0.9.0"
PASSWORD = "s3cret"
B64 = "b => Uint8Array.from(atob(b), c => c.charCodeAt(0)).buffer"     # bytes into the page


@pytest.fixture
def line():
    m = MeterLine(interval=0.05)
    yield m
    m.close()


def start(tmp_path, line, **settings):
    flash_by_usb(str(tmp_path / "flash"), app_image(OLD))
    d = Dongle(tmp_path, cpython_dongle(), line.port, **settings)
    d.boot()
    return d


@pytest.fixture
def dongle(tmp_path, line):
    d = start(tmp_path, line)
    yield d
    d.stop()


def settings_page(browser, d, password=None):   # noqa: F811 - browser: the fixture
    """The settings page on a phone; password: what the browser answers the dongle's 401 with (as
    it does once the user has typed it)."""
    context = browser.new_context(viewport=PHONE, device_scale_factor=2,
                                  http_credentials={"username": "me", "password": password} if password else None)
    page = context.new_page()
    page.set_default_timeout(15000)
    page.goto("http://%s/settings" % d.host)
    return page


def firmware_shot(page, name):
    """The Firmware section on the phone's screen (the message above it is in name-full.png)."""
    page.locator("#fw-ver").evaluate("e => e.parentNode.scrollIntoView()")
    shot(page, name)


def choose(page, path, data):
    path.write_bytes(data)
    page.set_input_files("#image", str(path))


def test_the_pages_sha256_is_fips_180_4s(browser, dongle):   # noqa: F811
    """The page's SHA-256 against hashlib: FIPS 180-4's own vectors, every length around the
    padding's edges (one block or two), and an image's megabyte and a half, fast enough."""
    page = settings_page(browser, dongle)
    js = "b => sha256((%s)(b))" % B64
    for text in (b"", b"abc", b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"):
        assert page.evaluate(js, base64.b64encode(text).decode()) == hashlib.sha256(text).hexdigest(), text
    data = random.Random(7).randbytes(200)
    for n in list(range(50, 130)) + [191, 192, 200]:
        assert page.evaluate(js, base64.b64encode(data[:n]).decode()) == hashlib.sha256(data[:n]).hexdigest(), n
    image = app_image(NEW, size=1536 * 1024)
    took, digest = page.evaluate("b => { const d = (%s)(b), t = performance.now(), h = sha256(d); "
                                 "return [performance.now() - t, h]; }" % B64, base64.b64encode(image).decode())
    assert digest == hashlib.sha256(image).hexdigest()
    assert took < 1500, "the page took %d ms to hash 1.5 MB" % took      # ~70 ms here


def test_an_update_from_the_settings_page(browser, tmp_path, line):   # noqa: F811
    from playwright.sync_api import expect
    d = start(tmp_path, line, web_password=PASSWORD)
    try:
        page = settings_page(browser, d, PASSWORD)
        expect(page.locator("#fw-ver")).to_have_text("p1dongle 0.8.0 (the p1dongle image)")
        expect(page.locator("#fw-files")).to_be_hidden()
        expect(page.locator("#fw-why")).to_be_hidden()
        expect(page.locator("#fw-back")).to_be_hidden()
        expect(page.locator("#fw-last")).to_be_hidden()

        # an image for another chip: the dongle's refusal, nothing changed
        choose(page, tmp_path / "p1dongle-c3.app.bin", app_image(NEW, chip=5))
        page.click("#update")
        refused = "an image for the ESP32-C3, and this dongle is an ESP32: nothing changed"
        expect(page.locator("#msg")).to_have_text(refused)
        expect(page.locator("#msg")).to_have_class("err")
        expect(page.locator("#fw-last")).to_have_text("Last update: " + refused)    # the dongle's record
        firmware_shot(page, "update-refused")
        # a whole flash's image picked by mistake, larger than the app slot: refused at its
        # Content-Length, while the browser is still sending it
        choose(page, tmp_path / "firmware.bin", app_image(NEW, size=3 * 1024 * 1024))
        page.click("#update")
        expect(page.locator("#msg")).to_contain_text("the dongle's app slot 1536 KB")
        assert otadata(d.flash)["boot"] == "ota_0" and d.proc.p.poll() is None

        # the right one: hashed by the page, sent with its progress, the answer, the reset
        image = app_image(NEW, size=1400 * 1024)
        posts = []
        page.on("request", lambda r: posts.append(r) if r.method == "POST" else None)
        choose(page, tmp_path / "p1dongle-0.9.0.app.bin", image)
        page.click("#update")
        expect(page.locator("#msg")).to_contain_text("0.9.0 written and checked", timeout=60000)
        expect(page.locator("#msg")).to_have_class("ok")
        expect(page.locator("#fw-progress")).to_have_attribute("value", "100")
        expect(page.locator("#fw-pct")).to_have_text("100%")
        post = posts[-1]
        assert post.resource_type == "xhr" and post.headers["content-type"] == "application/octet-stream"
        assert post.headers["x-sha256"] == hashlib.sha256(image).hexdigest()
        firmware_shot(page, "update-sent")
        d.expect_reset()
        assert otadata(d.flash)["boot"] == "ota_1"
        # the page, polling, sees the dongle come back with the new firmware
        d.boot()
        expect(page.locator("#msg")).to_contain_text("p1dongle 0.9.0 runs")
        expect(page.locator("#fw-ver")).to_contain_text("p1dongle 0.9.0")
        expect(page.locator("#fw-back")).to_be_hidden()
        expect(page.locator("#fw-progress")).to_be_hidden()
        d.expect(r"p1dongle 0\.9\.0: proven")
        firmware_shot(page, "update-done")
    finally:
        d.stop()


def test_a_dongle_that_came_back_says_so(browser, dongle, line, tmp_path):   # noqa: F811
    """The new firmware did not prove itself (a power cut on probation, no telegram yet): the page
    says why the old one runs again."""
    from playwright.sync_api import expect
    page = settings_page(browser, dongle)
    choose(page, tmp_path / "p1dongle-0.9.0.app.bin", app_image(NEW))
    page.click("#update")
    expect(page.locator("#msg")).to_contain_text("0.9.0 written and checked")
    # no page asks while 0.9.0 is on probation, and no telegram comes: a web page served would
    # prove it as well as a telegram passed on
    page.close()
    line.sending.clear()
    dongle.expect_reset()
    dongle.boot()
    dongle.expect(r"p1dongle 0\.9\.0: on probation")
    dongle.power_cut()
    dongle.boot()
    page = settings_page(browser, dongle)
    expect(page.locator("#fw-back")).to_contain_text("back on 0.8.0: the update to 0.9.0 did not take")
    expect(page.locator("#fw-back")).to_have_class("warn")
    expect(page.locator("#fw-ver")).to_have_text("p1dongle 0.8.0 (the p1dongle image)")
    firmware_shot(page, "update-came-back")


def test_a_dongle_without_a_way_to_update_says_why(browser, tmp_path, line):   # noqa: F811
    """No app slots (the PC without P1DONGLE_FLASH): why, and no file to choose."""
    from playwright.sync_api import expect
    d = Dongle(tmp_path, cpython_dongle(), line.port)
    d.flash = ""                                # P1DONGLE_FLASH empty: no fake flash
    d.boot()
    try:
        page = settings_page(browser, d)
        expect(page.locator("#fw-ver")).to_have_text("p1dongle " + VERSION)      # the package's own
        expect(page.locator("#fw-why")).to_contain_text("updates need the p1dongle image")
        expect(page.locator("#fw-image")).to_be_hidden()
        expect(page.locator("#image")).to_be_hidden()
        expect(page.locator("#fw-files")).to_be_hidden()
    finally:
        d.stop()


def test_a_dongle_on_files_says_how_to_update_it(browser, tmp_path, line, stock_micropython):   # noqa: F811
    """The files way (p1dongle's files on the stock-image twin, as on a stock MicroPython): the page
    cannot compile them, it says what to run instead, with this dongle's address."""
    from playwright.sync_api import expect
    shutil.copy(os.path.join(FIRMWARE, "main.py"), tmp_path)
    for path in firmware_modules():
        os.makedirs(os.path.dirname(tmp_path / path), exist_ok=True)
        shutil.copy(os.path.join(FIRMWARE, path), tmp_path / path)
    # imported from the current folder, as the ESP32 does (`micropython main.py` would import the
    # package by its absolute path); source files compile in the heap: more of it than .mpy files
    d = Dongle(tmp_path, [stock_micropython, "-X", "heapsize=4M", "-c", "import main"], line.port)
    d.boot()
    try:
        page = settings_page(browser, d)
        expect(page.locator("#fw-ver")).to_contain_text("(files on a stock MicroPython)")
        expect(page.locator("#fw-files")).to_contain_text("tools/flash.py update --host %s" % d.host)
        expect(page.locator("#fw-image")).to_be_hidden()
        expect(page.locator("#fw-why")).to_be_hidden()
        firmware_shot(page, "update-files")
    finally:
        d.stop()
