"""firmware/ type-checked against the ESP32 port's stubs (micropython-esp32-stubs and its
MicroPython stdlib): a call to something the ESP32 port does not have fails here, not on a dongle."""
import importlib.metadata
import os
import shutil
import subprocess
import sys

import pytest
from conftest import FIRMWARE, ROOT, firmware_modules


@pytest.fixture(scope="module")
def stubs(tmp_path_factory):
    # The board stubs are plain .pyi files at the top of site-packages, which mypy will not read
    # from there; a copy on MYPYPATH it does. _mpy_shed comes with the stdlib stubs.
    out = tmp_path_factory.mktemp("stubs")
    for dist in ("micropython-esp32-stubs", "micropython-stdlib-stubs"):
        for f in importlib.metadata.distribution(dist).files:
            p = str(f)
            if p.endswith(".pyi") and (dist == "micropython-esp32-stubs" or p.startswith("_mpy_shed/")):
                dst = out / p
                dst.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy(f.locate(), dst)
    typeshed = os.path.dirname(str(importlib.metadata.distribution("micropython-stdlib-stubs")
                                   .locate_file("stdlib/VERSIONS")))
    return str(out), os.path.dirname(typeshed)


def mypy(stubs, sources, cwd=FIRMWARE):
    path, typeshed = stubs
    env = dict(os.environ, MYPYPATH=path + os.pathsep + os.path.join(ROOT, "boards", "usermod", "p1gcm"))
    return subprocess.run([sys.executable, "-m", "mypy", "--config-file", os.path.join(ROOT, "mypy.ini"),
                           "--custom-typeshed-dir", typeshed, "--no-incremental", *sources],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def firmware_sources():
    skip = ("platform_host.py", "loops_viper.py")
    return ["main.py"] + [p for p in firmware_modules() if p.split("/")[-1] not in skip]


def test_firmware_type_checks_against_the_esp32_stubs(stubs):
    r = mypy(stubs, firmware_sources())
    assert r.returncode == 0, r.stdout + r.stderr


def test_a_call_the_esp32_does_not_have_fails(stubs, tmp_path):
    # The same check on a copy of the firmware with one wrong call: the check must catch it.
    copy = tmp_path / "firmware"
    shutil.copytree(FIRMWARE, copy)
    p = copy / "p1dongle" / "platform_esp32.py"
    p.write_text(p.read_text().replace('rssi = wlan.status("rssi")', "rssi = wlan.rssi()"))
    r = mypy(stubs, firmware_sources(), cwd=str(copy))
    assert r.returncode != 0 and "rssi" in r.stdout
