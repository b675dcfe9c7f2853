"""boards/: the manifest freezes exactly our firmware (checked with MicroPython's own manifest
tool from the release source), both boards point at it, and the C module is wired for both
build systems."""
import os
import sys

import pytest
from conftest import FIRMWARE, ROOT

BOARDS = os.path.join(ROOT, "boards")
MPY_DIR = os.path.join(ROOT, "build", "micropython-1.28.0")


@pytest.fixture(scope="module")
def manifestfile():
    tools = os.path.join(MPY_DIR, "tools")
    if not os.path.exists(os.path.join(tools, "manifestfile.py")):
        pytest.fail("MicroPython source missing in %s: `make test` unpacks it (make firmware-unix)" % MPY_DIR)
    sys.path.insert(0, tools)
    import manifestfile
    return manifestfile


@pytest.mark.parametrize("board", ["P1DONGLE_ESP32", "P1DONGLE_ESP32C3"])
def test_the_manifest_freezes_the_firmware_package(manifestfile, board):
    board_dir = os.path.join(BOARDS, board)
    with open(os.path.join(board_dir, "mpconfigboard.cmake")) as f:
        cmake = f.read()
    assert "${MICROPY_BOARD_DIR}/../manifest.py" in cmake and "sdkconfig.board" in cmake
    m = manifestfile.ManifestFile(manifestfile.MODE_FREEZE, {
        "MPY_DIR": MPY_DIR, "PORT_DIR": os.path.join(MPY_DIR, "ports", "esp32"), "BOARD_DIR": board_dir,
        "MPY_LIB_DIR": os.path.join(MPY_DIR, "lib", "micropython-lib")})
    m.execute(os.path.join(BOARDS, "manifest.py"))
    frozen = {f.target_path for f in m.files()}
    ours = {"p1dongle/" + n for n in os.listdir(os.path.join(FIRMWARE, "p1dongle")) if n.endswith(".py")}
    assert ours <= frozen                                     # every firmware module is in the image
    assert "asyncio/core.py" in frozen and "_boot.py" in frozen   # and what the dongle needs to boot
    assert not any(t.startswith("umqtt") for t in frozen)     # our own MQTT client, not umqtt


def test_the_twin_freezes_what_the_boards_freeze(manifestfile):
    """The dongle twin (make firmware-unix) freezes the same firmware, without the ESP32's boot
    modules, which the unix port does not have."""
    m = manifestfile.ManifestFile(manifestfile.MODE_FREEZE, {
        "MPY_DIR": MPY_DIR, "PORT_DIR": os.path.join(MPY_DIR, "ports", "unix"), "BOARD_DIR": "",
        "MPY_LIB_DIR": os.path.join(MPY_DIR, "lib", "micropython-lib")})
    m.execute(os.path.join(BOARDS, "twin", "manifest.py"))
    frozen = {f.target_path for f in m.files()}
    ours = {"p1dongle/" + n for n in os.listdir(os.path.join(FIRMWARE, "p1dongle")) if n.endswith(".py")}
    assert ours <= frozen and "asyncio/core.py" in frozen and "_boot.py" not in frozen


def test_the_twin_is_built_like_the_dongle(micropython):
    """32-bit words, single-precision floats, the firmware frozen (viper as x86 code), our GCM."""
    import subprocess
    script = ("import sys, gc\nfrom p1dongle import compat\n"
              "print(sys.maxsize, repr(float('023949.193')), compat.loops.__name__, compat.native_gcm is not None,"
              " compat.__file__)")
    env = {k: v for k, v in os.environ.items() if k != "MICROPYPATH"}
    out = subprocess.run([micropython, "-c", script], capture_output=True, text=True, timeout=30, cwd="/", env=env)
    assert out.returncode == 0, out.stderr
    maxsize, f, loops, native, where = out.stdout.split()
    assert maxsize == str(2 ** 31 - 1)                          # 32-bit
    assert f != "23949.193"                                     # 7 digits, as on the ESP32
    assert loops == "p1dongle.loops_viper" and native == "True"
    assert where == "p1dongle/compat.py"                        # frozen (a file would have its path)


def test_the_c_module_is_wired_for_make_and_cmake():
    with open(os.path.join(BOARDS, "usermod", "micropython.cmake")) as f:
        assert "p1gcm/micropython.cmake" in f.read()
    with open(os.path.join(BOARDS, "usermod", "p1gcm", "micropython.cmake")) as f:
        assert "p1gcm.c" in f.read()
    with open(os.path.join(BOARDS, "usermod", "p1gcm", "micropython.mk")) as f:
        mk = f.read()
    assert "p1gcm.c" in mk and "-lmbedcrypto" in mk
