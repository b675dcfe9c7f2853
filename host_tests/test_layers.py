"""The package's layers, declared once here and shown in the README's "The code": every firmware
module is in one layer, and imports only reach down (or across, within a layer).

The layers are not folders: frozen into the image, four subpackages cost 1.1 KB of the dongle's
heap (a module object and dict each, sys.modules growing; measured on the twin), and a flat
package whose layers are checked here costs nothing."""
import ast
import os
import re

from conftest import ROOT

PKG = os.path.join(ROOT, "firmware", "p1dongle")

# bottom first: a module may import from its own layer and the ones above it in this list
LAYERS = (
    ("basics", "what every layer uses: one place that knows MicroPython from CPython, the hot loops, errors, "
               "out of memory, the version",
     ("__init__", "compat", "loops", "loops_viper", "tables", "errors", "memory")),
    ("link", "bytes to frames, frames to APDUs, APDUs opened",
     ("ringbuf", "frames", "link", "gcm", "dlms")),
    ("meter", "what a meter says: readings, DSMR, A-XDR and the families' layouts, a telegram written "
              "from them, the latest of each, its history kept in flash",
     ("obis", "reading", "dsmr", "axdr", "layouts", "dlmstime", "render", "meters", "telegram", "meterclock",
      "history")),
    ("device", "the settings, where the bytes come from, Wi-Fi's plan, updates",
     ("config", "chips", "sources", "wifiplan", "update", "ota", "bundle", "fakeflash")),
    ("outputs", "everything that passes a telegram on, behind one contract",
     ("output", "backlog", "tcpserver", "mqttpacket", "mqtt", "mqttout", "state", "jsonbuf", "httpd", "web",
      "homewizard", "pages", "udp", "captive", "shelly", "websocket", "mdns")),
    ("hub", "the data path and the app that runs the outputs; each board's glue",
     ("pipeline", "app", "start", "platform_esp32", "platform_host")),
)
LEVEL = {m: k for k, (_, _, mods) in enumerate(LAYERS) for m in mods}
NAME = {m: name for name, _, mods in LAYERS for m in mods}


def modules():
    """{module: path}: each .py in the package; a subpackage (layouts/) counts as its name."""
    out = {}
    for root, _, files in os.walk(PKG):
        for f in files:
            if f.endswith(".py"):
                path = os.path.join(root, f)
                rel = os.path.relpath(path, PKG)[:-3].replace(os.sep, ".")
                out[rel] = path
    return out


def top(module):
    # layouts.kaifa -> layouts; __init__ stays
    return module.split(".")[0]


def imports(module, path):
    """The package's modules that module imports (relative or as p1dongle.x), by their top name."""
    parts = module.split(".")
    package = parts[:-1]
    found = set()
    for node in ast.walk(ast.parse(open(path).read())):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[:len(package) - (node.level - 1)]
            if node.module:
                found.add(top(".".join(base + [node.module])))
            else:
                found.update(top(".".join(base + [a.name])) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module == "p1dongle":
            found.update(a.name for a in node.names)    # modules, or __init__'s names (VERSION)
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("p1dongle."):
            found.add(top(node.module[len("p1dongle."):]))
        elif isinstance(node, ast.Import):
            found.update(top(a.name[len("p1dongle."):]) for a in node.names if a.name.startswith("p1dongle."))
    found.discard(top(module))
    return found


def test_every_module_is_in_one_layer():
    tops = {top(m) for m in modules()}
    placed = [m for _, _, mods in LAYERS for m in mods]
    assert len(placed) == len(set(placed)), "a module in two layers"
    assert tops == set(placed), ("not in a layer: %s; in a layer but gone: %s"
                                 % (sorted(tops - set(placed)), sorted(set(placed) - tops)))


def test_imports_only_reach_down():
    wrong = []
    for module, path in sorted(modules().items()):
        for used in sorted(imports(module, path)):
            if used in LEVEL and LEVEL[used] > LEVEL[top(module)]:
                wrong.append("%s (%s) imports %s (%s)" % (module, NAME[top(module)], used, NAME[used]))
    assert not wrong, "imports that reach up a layer:\n" + "\n".join(wrong)


def test_the_checker_sees_an_import_that_reaches_up(tmp_path):
    p = tmp_path / "frames.py"
    p.write_text("from .compat import loops\nfrom .mqtt import MqttClient\nimport p1dongle.web\n"
                 "from p1dongle import app, VERSION\nfrom p1dongle.state import Writer\n")
    assert imports("frames", str(p)) == {"compat", "mqtt", "web", "app", "VERSION", "state"}
    assert LEVEL["mqtt"] > LEVEL["frames"] and LEVEL["web"] > LEVEL["frames"]
    q = tmp_path / "kaifa.py"
    q.write_text("from ..axdr import Tree\nfrom .common import u32\n")
    assert imports("layouts.kaifa", str(q)) == {"axdr"}


def test_the_readme_shows_the_layers():
    """README's "The code" lists every module under its layer's row, in the layers' order."""
    text = open(os.path.join(ROOT, "README.md")).read()
    section = text[text.index("## The code"):]
    section = section[:section.index("\n### ")]
    layer, seen, order = None, {}, []
    for line in section.splitlines():
        head = re.match(r"\| \*\*(\w+)\*\*", line)
        if head:
            layer = head.group(1)
            order.append(layer)
            continue
        for m in re.findall(r"`firmware/p1dongle/([\w/]+?)(?:\.py|/)`", line):
            seen[m.replace("/", ".")] = layer
    assert order == [name for name, _, _ in LAYERS]
    listed = {m: layer for m, layer in seen.items()}
    expected = {m: NAME[m] for m in LEVEL}
    assert listed == expected
