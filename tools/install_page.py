"""Assemble the install page (`make install-page`): build/install-page/ holds docs/install's page,
ESP Web Tools' web bundle from npm, manifest.json and the images `make firmware` left in build/.

The page flashes the images from a browser over WebSerial (ESP Web Tools, as ESPHome, Tasmota and
WLED do). ESP Web Tools fetches the manifest and the images with fetch(), so they must come from
the page's own site: GitHub's release downloads cannot be fetched by another site's page. The
release workflow publishes this folder, images included, on GitHub Pages.

manifest.json is written here, not kept as a file, so that each fact has one place: the version
is firmware/p1dongle/__init__.py's VERSION, the builds are the boards under boards/ (what
`make firmware BOARD=...` accepts) and their file names those the Makefile's firmware target writes.
"""
import argparse
import glob
import json
import os
import re
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PAGE = os.path.join(ROOT, "docs", "install")
BOARDS = os.path.join(ROOT, "boards")
sys.path.insert(0, os.path.join(ROOT, "tools"))
import flash  # noqa: E402

# Each ESP-IDF target as ESP Web Tools names its chip; where its image goes in flash is
# tools/flash.py's (the bootloader, with which makeimg.py starts the port's firmware.bin, is
# loaded by the chip's ROM from 0x1000 on the ESP32 and from 0 on the ESP32-C3).
FAMILIES = {
    "esp32": "ESP32",
    "esp32c3": "ESP32-C3",
}


def version():
    """VERSION from firmware/p1dongle/__init__.py (the release workflow checks the tag against it)."""
    return flash.VERSION


def boards():
    """{board: IDF target} for every board folder `make firmware` can build (a MicroPython ESP32
    board definition: mpconfigboard.cmake; ESP-IDF's target is esp32 unless it sets IDF_TARGET)."""
    found = {}
    for cmake in sorted(glob.glob(os.path.join(BOARDS, "*", "mpconfigboard.cmake"))):
        with open(cmake) as f:
            target = re.search(r"set\(IDF_TARGET\s+(\w+)\)", f.read())
        found[os.path.basename(os.path.dirname(cmake))] = target.group(1) if target else "esp32"
    return found


def manifest():
    builds = []
    for board, target in boards().items():
        if target not in FAMILIES or target not in flash.CHIPS:
            raise SystemExit("%s: IDF target %s has no chip family in tools/install_page.py or no offset in "
                             "tools/flash.py" % (board, target))
        family, offset = FAMILIES[target], flash.CHIPS[target][0]
        # One part: the port's firmware.bin is bootloader, partition table and app in one file,
        # written by `make firmware` as build/firmware-<BOARD>.bin.
        builds.append({"chipFamily": family, "parts": [{"path": "firmware-%s.bin" % board, "offset": offset}]})
    return {
        "name": "p1dongle",
        "version": version(),
        # A new install asks whether to erase the flash: a dongle that ran other firmware wants it,
        # an update of this image does not (erasing also wipes the settings).
        "new_install_prompt_erase": True,
        # The dongle does not speak Improv Wi-Fi (its first setup is its own access point): no
        # waiting for it after the flash.
        "new_install_improv_wait_time": 0,
        "builds": builds,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--npm", required=True, help="the folder where `npm ci` installed docs/install/package.json")
    parser.add_argument("--images", default=os.path.join(ROOT, "build"), help="where firmware-<BOARD>.bin are")
    parser.add_argument("--out", default=os.path.join(ROOT, "build", "install-page"))
    parser.add_argument("--require-images", action="store_true", help="fail unless every image is there (a release)")
    args = parser.parse_args()

    package = os.path.join(args.npm, "node_modules", "esp-web-tools")
    bundle = os.path.join(package, "dist", "web")
    if not os.path.exists(os.path.join(bundle, "install-button.js")):
        raise SystemExit("ESP Web Tools' web bundle missing in %s: npm ci in a copy of docs/install (make install-page)" % bundle)

    shutil.rmtree(args.out, ignore_errors=True)
    os.makedirs(args.out)
    shutil.copy(os.path.join(PAGE, "index.html"), args.out)
    # The whole bundle: install-button.js loads the dialog, the chip drivers and the flasher stubs
    # as chunks on demand, by relative paths.
    shutil.copytree(bundle, os.path.join(args.out, "esp-web-tools"))
    # The bundle holds the code of ESP Web Tools and its dependencies: their licences go with it.
    with open(os.path.join(args.out, "esp-web-tools", "LICENSES.txt"), "w") as out:
        for lic in sorted(glob.glob(os.path.join(args.npm, "node_modules", "**", "LICENSE*"), recursive=True)):
            name = os.path.relpath(os.path.dirname(lic), os.path.join(args.npm, "node_modules"))
            with open(lic, errors="replace") as f:
                out.write("=== %s\n\n%s\n\n" % (name, f.read().strip()))

    m = manifest()
    with open(os.path.join(args.out, "manifest.json"), "w") as f:
        json.dump(m, f, indent=2)
        f.write("\n")

    missing = []
    for build in m["builds"]:
        for part in build["parts"]:
            image = os.path.join(args.images, part["path"])
            if os.path.exists(image):
                shutil.copy(image, args.out)
            else:
                missing.append(part["path"])
    if missing and args.require_images:
        raise SystemExit("images missing in %s: %s (make firmware BOARD=... builds them)" % (args.images, ", ".join(missing)))
    print("install page in %s (version %s)%s" % (
        os.path.relpath(args.out, ROOT), m["version"],
        "; without the images %s: the page loads, installing fails" % ", ".join(missing) if missing else ""))


if __name__ == "__main__":
    sys.exit(main())
