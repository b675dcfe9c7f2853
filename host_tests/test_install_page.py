"""The install page (docs/install, `make install-page`): its manifest names exactly the images
`make firmware` writes, at the offsets the chips boot from, with the firmware's version; in a real
browser (Debian's chromium, headless, through Playwright, as test_pages.py) ESP Web Tools' button
is defined and renders, the manifest it points at loads, every module of its bundle loads, all of
it from the page's own site (no CDN), with no console error, and the page fits a phone.

The images themselves cannot be built here (no ESP-IDF): without build/firmware-*.bin the page is
checked without them; with them, the page must serve each one whole."""
import functools
import json
import os
import re
import subprocess
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from conftest import ROOT
from test_pages import PHONE, SHOTS, browser  # noqa: F401 - the fixture: chromium as test_pages launches it

PAGE = os.path.join(ROOT, "build", "install-page")
ESP_WEB_TOOLS = os.path.join(ROOT, "build", "install-npm", "node_modules", "esp-web-tools")


def board_folders():
    """The boards `make firmware BOARD=...` builds: folders under boards/ that hold a MicroPython
    ESP32 board definition (the port reads BOARD_DIR/mpconfigboard.cmake)."""
    boards = os.path.join(ROOT, "boards")
    return sorted(n for n in os.listdir(boards) if os.path.exists(os.path.join(boards, n, "mpconfigboard.cmake")))


def firmware_output(board):
    """The image the Makefile's firmware target writes for BOARD, read from its recipe."""
    with open(os.path.join(ROOT, "Makefile")) as f:
        lines = f.read().split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("firmware:"))
    recipe = []
    for line in lines[start + 1:]:
        if not line.startswith("\t"):
            break
        recipe.append(line)
    [dest] = [m.group(1) for line in recipe for m in [re.search(r"\bcp\s+\S+\s+(\S*firmware-\$\(BOARD\)\S*)", line)] if m]
    return dest.replace("$(BOARD)", board)


def app_output(board):
    """The app image alone (what an update over Wi-Fi takes) the firmware target writes for BOARD."""
    with open(os.path.join(ROOT, "Makefile")) as f:
        text = f.read()
    recipe = text[text.index("\nfirmware:"):text.index("\n\n", text.index("\nfirmware:"))]
    [(src, dest)] = re.findall(r"\bcp\s+(\S+)\s+(\S*\.app\.bin)", recipe)
    assert src.endswith("/build-$(BOARD)/micropython.bin"), src     # the port's app image, not the merged one
    return dest.replace("$(BOARD)", board)


@pytest.fixture(scope="module")
def page_dir():
    """The page as the release workflow builds it: the Makefile's own target."""
    # Under `make test` the outer make's job server is not ours to join.
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")}
    out = subprocess.run(["make", "-s", "install-page"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        pytest.fail("make install-page failed (it needs npm, and the npm registry):\n%s%s" % (out.stdout, out.stderr))
    return PAGE


@pytest.fixture(scope="module")
def manifest(page_dir):
    with open(os.path.join(page_dir, "manifest.json")) as f:
        return json.load(f)


def chip_families():
    """The chip families ESP Web Tools knows: its Build type in the installed package's source."""
    with open(os.path.join(ESP_WEB_TOOLS, "src", "const.ts")) as f:
        union = re.search(r"chipFamily:\s*((?:\s*\|\s*\"[^\"]+\")+)", f.read()).group(1)
    return set(re.findall(r"\"([^\"]+)\"", union))


def test_the_manifest_names_what_make_firmware_writes(manifest):
    from p1dongle import VERSION
    assert manifest["name"] == "p1dongle" and manifest["version"] == VERSION
    assert manifest["new_install_prompt_erase"] is True
    # What the firmware target writes for a board, and which chip each board is for.
    expected = {}
    for board in board_folders():
        with open(os.path.join(ROOT, "boards", board, "mpconfigboard.cmake")) as f:
            target = re.search(r"set\(IDF_TARGET\s+(\w+)\)", f.read())
        expected[os.path.basename(firmware_output(board))] = target.group(1) if target else "esp32"
    # Where firmware.bin goes: it begins with the bootloader, which the ESP32's ROM loads from
    # 0x1000 and the ESP32-C3's from 0.
    chips = {"esp32": ("ESP32", 0x1000), "esp32c3": ("ESP32-C3", 0)}
    known = chip_families()
    assert {"ESP32", "ESP32-C3"} <= known                   # read from ESP Web Tools, not made up here
    seen = {}
    for build in manifest["builds"]:
        assert build["chipFamily"] in known
        assert build["chipFamily"] not in seen, "ESP Web Tools takes the first build of a chip family"
        [part] = build["parts"]                              # bootloader, table and app in one file
        seen[build["chipFamily"]] = part["path"]
        assert part["path"] in expected, "%s is not an image make firmware writes" % part["path"]
        assert (build["chipFamily"], part["offset"]) == chips[expected[part["path"]]]
    assert sorted(seen.values()) == sorted(expected)        # every board has its build


def test_the_page_carries_the_bundle_and_the_licences(page_dir):
    bundle = os.path.join(page_dir, "esp-web-tools")
    assert sorted(n for n in os.listdir(bundle) if n.endswith(".js")) == sorted(
        os.listdir(os.path.join(ESP_WEB_TOOLS, "dist", "web")))
    with open(os.path.join(bundle, "LICENSES.txt")) as f:
        licences = f.read()
    assert "=== esp-web-tools\n" in licences and "=== esptool-js\n" in licences


class Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(page_dir):
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=page_dir))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield "http://127.0.0.1:%d" % server.server_address[1]
    server.shutdown()
    server.server_close()


def test_the_page_in_a_browser(browser, site, manifest, page_dir):
    from playwright.sync_api import expect
    context = browser.new_context(viewport=PHONE, device_scale_factor=2)
    page = context.new_page()
    page.set_default_timeout(15000)
    requests, errors = [], []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: m.type == "error" and errors.append(m.text))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(site + "/")

    # The custom element is defined, and renders its install button: the browser has WebSerial
    # and the page is on a secure origin (loopback counts), else it would show a slot saying why.
    page.wait_for_function("customElements.get('esp-web-install-button') !== undefined")
    button = page.locator("esp-web-install-button")
    expect(button).to_have_attribute("install-supported", "")
    expect(page.locator("button[slot=activate]")).to_be_visible()
    expect(page.locator("button[slot=activate]")).to_have_text("Install p1dongle")

    # The manifest the button points at, as the browser gets it.
    got = page.evaluate("""async () => {
        const url = new URL(document.querySelector('esp-web-install-button').getAttribute('manifest'), location);
        const r = await fetch(url);
        return {status: r.status, type: r.headers.get('content-type'), body: await r.json()};
    }""")
    assert got["status"] == 200 and got["body"] == manifest
    expect(page.locator("#version")).to_have_text(manifest["version"])

    # Every module of the bundle loads (the install dialog, chip drivers and flasher stubs come
    # as chunks only once a port is picked, which a headless browser cannot do): each import
    # resolves its own imports on this site.
    chunks = sorted(n for n in os.listdir(os.path.join(page_dir, "esp-web-tools")) if n.endswith(".js"))
    failed = page.evaluate("""async (names) => {
        const failed = [];
        for (const n of names) {
            try { await import('./esp-web-tools/' + n); } catch (e) { failed.push(n + ': ' + e); }
        }
        return failed;
    }""", chunks)
    assert failed == []
    page.wait_for_function("customElements.get('ewt-install-dialog') !== undefined")

    # The images, when `make firmware` has built them: served whole, beside the manifest.
    for build in manifest["builds"]:
        for part in build["parts"]:
            image = os.path.join(ROOT, "build", part["path"])
            if os.path.exists(image):
                length = page.evaluate("async (p) => (await (await fetch(p)).arrayBuffer()).byteLength", part["path"])
                assert length == os.path.getsize(image)

    # What a user must read is there, and fits a phone's width.
    text = page.locator("body").inner_text()
    for needed in ("p1dongle-xxxx", "http://192.168.4.1/", "Chrome or Edge", "PSRAM", "tools/flash.py install",
                   "ESP32-C3"):
        assert needed in text
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    os.makedirs(SHOTS, exist_ok=True)
    page.screenshot(path=os.path.join(SHOTS, "install-full.png"), full_page=True)

    # Nothing but the page's own site: no CDN, no font service.
    assert requests and all(u.startswith(site + "/") or u.startswith("data:") for u in requests), requests
    assert errors == []
    context.close()
