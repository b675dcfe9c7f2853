"""firmware/ runs on the dongle: it compiles for the ESP32 and imports under a real MicroPython."""
import ast
import os
import subprocess
import warnings

import pytest

from conftest import FIRMWARE, MICROPYPATH

SOURCES = sorted(
    os.path.relpath(os.path.join(d, f), FIRMWARE)
    for d, _, files in os.walk(FIRMWARE) for f in files if f.endswith(".py")
)


def test_there_is_firmware():
    assert "p1dongle/gcm.py" in SOURCES and "p1dongle/frames.py" in SOURCES


@pytest.mark.parametrize("src", SOURCES)
def test_compiles_for_esp32(src, mpy_cross, tmp_path):
    out = tmp_path / "out.mpy"
    proc = subprocess.run([mpy_cross, "-march=xtensawin", "-o", str(out), src],
                          cwd=FIRMWARE, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes()[:1] == b"M"     # an .mpy file


def test_every_module_imports_under_micropython(micropython):
    # platform_esp32 needs the ESP32's machine and network modules: compiled above, not imported.
    modules = [s[:-3].replace("/", ".") for s in SOURCES
               if s.startswith("p1dongle/") and not s.endswith(("/__init__.py", "platform_esp32.py"))]
    modules += [s[:-12].replace("/", ".") for s in SOURCES if s.startswith("p1dongle/") and s.endswith("/__init__.py")]
    script = "".join("import %s\n" % m for m in modules) + "print('imported', %d)\n" % len(modules)
    env = dict(os.environ, MICROPYPATH=MICROPYPATH)
    proc = subprocess.run([micropython, "-c", script], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() == "imported %d" % len(modules)


# Constructs CPython has and MicroPython does not (or that the house rules keep out of firmware/).
FORBIDDEN_MODULES = {"typing", "dataclasses", "re", "datetime", "abc", "enum"}


@pytest.mark.parametrize("src", SOURCES)
def test_uses_only_what_both_pythons_have(src):
    with open(os.path.join(FIRMWARE, src)) as f:
        text = f.read()
    with warnings.catch_warnings():     # an escape CPython warns of ("\\u" in bytes) is one it will refuse
        warnings.simplefilter("error", SyntaxWarning)       # (3.12 and later)
        warnings.simplefilter("error", DeprecationWarning)  # (3.11)
        tree = ast.parse(text, src)
    for node in ast.walk(tree):
        where = "%s:%d" % (src, getattr(node, "lineno", 0))
        assert not isinstance(node, ast.NamedExpr), where + ": walrus"
        assert not isinstance(node, ast.Match), where + ": match"
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
            for n in names:
                assert n.split(".")[0] not in FORBIDDEN_MODULES, where + ": imports " + n
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            if node.func.attr == "hex":
                assert not node.args, where + ": bytes.hex(sep)"
            if node.func.attr == "to_bytes":
                assert len(node.args) == 2, where + ": to_bytes needs length and byteorder"
