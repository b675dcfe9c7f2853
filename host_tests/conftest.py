import json
import os
import shutil
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIRMWARE = os.path.join(ROOT, "firmware")
HERE = os.path.join(ROOT, "host_tests")
sys.path.insert(0, FIRMWARE)
sys.path.insert(0, HERE)


def firmware_modules():
    """The package's modules as paths in firmware/ ("p1dongle/app.py", "p1dongle/layouts/kaifa.py"):
    tools/flash.py's list, the one it installs."""
    tools = os.path.join(ROOT, "tools")
    if tools not in sys.path:
        sys.path.insert(0, tools)
    from flash import sources
    return sources()


def find_tool(name):
    """A tool from the virtualenv that runs the tests, else from PATH. Missing is a failure, not a skip."""
    beside = os.path.join(os.path.dirname(sys.executable), name)
    path = beside if os.path.exists(beside) else shutil.which(name)
    if not path:
        pytest.fail("%s not found: install the pinned requirements (make test does) - "
                    "these checks must run, not skip" % name)
    return path


# The dongle twin: MicroPython's unix port built like the ESP32 port (32-bit, single-precision
# floats, firmware frozen, our GCM module), by `make firmware-unix`. It is the MicroPython that
# counts; the 64-bit unix port from PyPI (`micropython`) runs the same jobs as a second opinion.
TWIN = os.path.join(ROOT, "build", "micropython-p1dongle")


def twin_path():
    if not os.path.exists(TWIN):
        pytest.fail("the dongle twin %s is missing: `make test` builds it (make firmware-unix)" % TWIN)
    return TWIN


@pytest.fixture(scope="session")
def micropython():
    """The dongle twin."""
    return twin_path()


# The stock-image twin (make firmware-stock): the same build without p1dongle frozen and without
# _p1gcm, as MicroPython's own ESP32 images are: p1dongle runs there from .mpy files.
STOCK = os.path.join(ROOT, "build", "micropython-stock")


@pytest.fixture(scope="session")
def stock_micropython():
    if not os.path.exists(STOCK):
        pytest.fail("the stock-image twin %s is missing: `make test` builds it (make firmware-stock)" % STOCK)
    return STOCK


@pytest.fixture(scope="session")
def micropython64():
    """The 64-bit, double-precision unix port from PyPI: a second MicroPython, not the dongle's."""
    return find_tool("micropython")


# mpy-cross -march for an interpreter: sys.implementation._mpy >> 10 names its native arch.
_ARCHS = {1: "x86", 2: "x64", 3: "armv6", 6: "armv7m", 9: "xtensa", 10: "xtensawin", 11: "rv32imc", 12: "rv64imc"}


def mpy_arch(interpreter):
    out = subprocess.run([interpreter, "-c", "import sys; print(sys.implementation._mpy >> 10)"],
                         capture_output=True, text=True, timeout=30).stdout.strip()
    if not out.isdigit() or int(out) not in _ARCHS:
        pytest.fail("%s names no native architecture mpy-cross knows (%r)" % (interpreter, out))
    return _ARCHS[int(out)]


@pytest.fixture(scope="session")
def mpy_cross():
    return find_tool("mpy-cross")


# MicroPython's module path: its frozen modules (asyncio lives there) and firmware/.
MICROPYPATH = ".frozen:" + FIRMWARE


def run_script(interpreter, script, arg, timeout=300, micropypath=MICROPYPATH):
    env = dict(os.environ, MICROPYPATH=micropypath, PYTHONPATH=FIRMWARE)
    # The job files and their JSON answers are big (thousands of test vectors): give the harness
    # room. The firmware's own memory budget is measured by `make bench`, not here.
    extra = ["-X", "heapsize=64M"] if interpreter != sys.executable else []
    proc = subprocess.run([interpreter, *extra, script, arg], capture_output=True, text=True, env=env, timeout=timeout)
    assert proc.returncode == 0, "%s failed:\n%s%s" % (interpreter, proc.stdout, proc.stderr)
    return json.loads(proc.stdout)


# The RV32 twin (make firmware-rv32): the qemu port built like the ESP32-C3 (rv32imc, 140 KB heap,
# p1dongle and mp_job frozen), run bare metal under QEMU by host_tests/rv32.py.
@pytest.fixture(scope="session")
def rv32_elf():
    import rv32
    if not os.path.exists(rv32.ELF):
        pytest.fail("the RV32 twin %s is missing: `make test` builds it (make firmware-rv32)" % rv32.ELF)
    if not shutil.which(rv32.QEMU):
        pytest.fail("%s not found: apt-get install qemu-system-misc (make test does, as root)" % rv32.QEMU)
    return rv32.ELF


@pytest.fixture
def run_job(tmp_path, micropython, micropython64, rv32_elf):
    """Run a mp_job.py job under CPython, the dongle twin, the RV32 twin and the 64-bit
    MicroPython; assert they agree; return the result. (On the RV32 twin a job too big for its
    heap is cut into batches of cases: see host_tests/rv32.py.)"""
    import rv32

    def run(job):
        path = tmp_path / "job.json"
        path.write_text(json.dumps(job))
        script = os.path.join(HERE, "mp_job.py")
        on_cpython = run_script(sys.executable, script, str(path))
        on_twin = run_script(micropython, script, str(path))
        assert on_twin == on_cpython
        assert rv32.run_job(job, rv32_elf) == on_cpython
        assert run_script(micropython64, script, str(path)) == on_cpython
        return on_cpython
    return run
