"""boards/: the manifest freezes exactly our firmware (checked with MicroPython's own manifest
tool from the release source), both boards point at it, and the C module is wired for both
build systems."""
import os
import subprocess
import sys

import pytest
from conftest import FIRMWARE, ROOT, firmware_modules

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
    ours = set(firmware_modules())
    assert ours <= frozen                                     # every firmware module is in the image
    assert "asyncio/core.py" in frozen and "_boot.py" in frozen   # and what the dongle needs to boot
    assert "main.py" in frozen          # it starts by itself, flashed from a browser with no files
    assert not any(t.startswith("umqtt") for t in frozen)     # our own MQTT client, not umqtt


def test_the_twin_freezes_what_the_boards_freeze(manifestfile):
    """The dongle twin (make firmware-unix) freezes the same firmware, without the ESP32's boot
    modules, which the unix port does not have."""
    m = manifestfile.ManifestFile(manifestfile.MODE_FREEZE, {
        "MPY_DIR": MPY_DIR, "PORT_DIR": os.path.join(MPY_DIR, "ports", "unix"), "BOARD_DIR": "",
        "MPY_LIB_DIR": os.path.join(MPY_DIR, "lib", "micropython-lib")})
    m.execute(os.path.join(BOARDS, "twin", "manifest.py"))
    frozen = {f.target_path for f in m.files()}
    ours = set(firmware_modules())
    assert ours <= frozen and "asyncio/core.py" in frozen and "_boot.py" not in frozen and "main.py" in frozen


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


# The partition table. The ESP-IDF build cannot run here (no ESP-IDF, no Docker engine), so what
# the images will hold is checked from the sources the build reads: each board's sdkconfig
# defaults, merged in the order its mpconfigboard.cmake lists them (a later file wins, as in
# ESP-IDF), name a partition table of the port, and that table is read as ESP-IDF reads it.
PORT_DIR = os.path.join(MPY_DIR, "ports", "esp32")
FLASH = 4 * 1024 * 1024                 # CONFIG_ESPTOOLPY_FLASHSIZE_4MB, checked below
P1_BOARDS = sorted(n for n in os.listdir(BOARDS) if os.path.exists(os.path.join(BOARDS, n, "mpconfigboard.cmake")))


def sdkconfig(board):
    """The board's sdkconfig defaults merged: {"CONFIG_X": "value"}."""
    import re
    board_dir = os.path.join(BOARDS, board)
    with open(os.path.join(board_dir, "mpconfigboard.cmake")) as f:
        files = re.search(r"set\(SDKCONFIG_DEFAULTS\s+(.*?)\)", f.read(), re.S).group(1).split()
    merged = {}
    for name in files:
        path = name.replace("${MICROPY_BOARD_DIR}", board_dir)
        path = path if os.path.isabs(path) else os.path.join(PORT_DIR, path)   # relative to the port, as in CMake
        if not os.path.exists(path):
            pytest.fail("%s names %s, which the MicroPython source in %s lacks (make firmware-unix unpacks it)"
                        % (board, name, MPY_DIR))
        with open(path) as f:
            for line in f:
                key, eq, value = line.strip().partition("=")
                if eq and key.startswith("CONFIG_"):
                    merged[key] = value.strip('"')
    return merged


def size(text):
    text = text.strip()
    scale = {"K": 1024, "M": 1024 * 1024}.get(text[-1:].upper(), 1)
    return int(text[:-1] if scale > 1 else text, 0) * scale


def partitions(path):
    """ESP-IDF's partition CSV as [(name, type, subtype, offset, size)]; an empty offset follows the
    one before (apps on 64 KB boundaries, data on 4 KB), as gen_esp32part.py places it."""
    table, end = [], 0x9000              # after the partition table at 0x8000 (CONFIG_PARTITION_TABLE_OFFSET)
    with open(path) as f:
        for line in f:
            line = line.split("#")[0].strip()
            if not line:
                continue
            name, ptype, subtype, offset, length = [c.strip() for c in line.split(",")][:5]
            align = 0x10000 if ptype == "app" else 0x1000
            start = size(offset) if offset else (end + align - 1) // align * align
            table.append((name, ptype, subtype, start, size(length)))
            end = start + size(length)
    return table


@pytest.mark.parametrize("board", P1_BOARDS)
def test_the_partition_table_has_two_ota_slots_and_room_for_files(board):
    config = sdkconfig(board)
    assert config.get("CONFIG_PARTITION_TABLE_CUSTOM") == "y"
    assert config.get("CONFIG_ESPTOOLPY_FLASHSIZE_4MB") == "y"
    name = config["CONFIG_PARTITION_TABLE_CUSTOM_FILENAME"]
    path = os.path.join(PORT_DIR, name)                 # ESP-IDF reads it from the project: ports/esp32
    assert os.path.exists(path), "%s: no %s in MicroPython's ESP32 port" % (board, name)
    table = partitions(path)
    apps = {sub: (start, length) for _, ptype, sub, start, length in table if ptype == "app"}
    assert set(apps) == {"ota_0", "ota_1"}, apps       # two slots, no factory app that would boot instead
    assert apps["ota_0"][1] == apps["ota_1"][1] >= 0x180000   # an update fits the other slot; 1.5 MB each
    assert [p for p in table if p[1:3] == ("data", "ota")][0][0] == "otadata"
    spans = sorted((start, start + length) for *_, start, length in table)
    assert all(a[1] <= b[0] for a, b in zip(spans, spans[1:])), spans       # no overlap
    assert all(start % 0x10000 == 0 for start, _ in apps.values())
    # The file system: the port's main.c adds a "vfs" partition from the end of the last one to the
    # end of flash when the table has none. The settings, main.py and its modules live there.
    fs = [length for n, *_, length in table if n in ("vfs", "ffat")]
    room = fs[0] if fs else FLASH - spans[-1][1]
    assert spans[-1][1] <= FLASH and room >= 512 * 1024, "%s: %d KB for files" % (board, room // 1024)


@pytest.mark.parametrize("board", P1_BOARDS)
def test_the_boards_build_like_micropythons_ota_variant(board):
    """MicroPython keeps the settings that go with this table in its ESP32_GENERIC OTA variant (the
    size optimisation makes the app fit a slot): a board carries all of them."""
    config = sdkconfig(board)
    with open(os.path.join(PORT_DIR, "boards", "ESP32_GENERIC", "sdkconfig.ota")) as f:
        variant = dict(line.strip().replace('"', "").split("=", 1) for line in f
                       if line.startswith("CONFIG_"))
    assert variant and {k: config.get(k) for k in variant} == variant


@pytest.mark.parametrize("board", ["P1DONGLE_ESP32", "P1DONGLE_ESP32C3"])
def test_the_image_carries_p1dongles_version(board, tmp_path):
    """The board's cmake (read by cmake itself, as the port's CMakeLists includes it before
    project()) sets PROJECT_VER, which ESP-IDF writes into the app description an update over
    Wi-Fi reads (ota.py): p1dongle's VERSION."""
    from p1dongle import VERSION
    script = tmp_path / "version.cmake"
    script.write_text('include(${MICROPY_BOARD_DIR}/mpconfigboard.cmake)\nmessage(STATUS "PROJECT_VER=[${PROJECT_VER}]")\n')
    r = subprocess.run(["cmake", "-DMICROPY_BOARD_DIR=" + os.path.join(ROOT, "boards", board), "-P", str(script)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert "PROJECT_VER=[%s]" % VERSION in r.stdout
