# Start p1dongle: read the settings, build the app, run it, and start it again after an error.
# firmware/main.py calls main(); so do the tests and tools on the MicroPython unix port and CPython
# (`micropython firmware/main.py settings.json`, a tcp: or file: source there).
#
# Settings saved from the web page that the app then cannot start with (a port taken, a UART or a
# file that is not there: what no check can know) are not the end of the web page: the app starts
# again with the settings it ran with before, and says so, so that they can be fixed there.
#
# On the dongle the package is either frozen into the p1dongle image (its code in flash, no heap)
# or loaded from .mpy files on a stock MicroPython image, where the code itself lives in the heap.
# Loaded from files on a board without the heap for it, the app would die at import and restart
# for ever, and crowd out even the REPL: then it does not start, and says why in one line.
import gc
import sys

import p1dongle

RESTART_S = 5           # after an error that stopped the app; doubled while it is the same error
RESTART_MAX_S = 300
# With the Shelly face on (batteries polling it a few times a second, Home Assistant's WebSocket),
# a collection after every this many bytes allocated, not only when the heap is full. By then the
# garbage of everything answered meanwhile is spread over the whole heap, and what is made to
# last among it splits what is freed: in make soak with every face polled, requests of 250 bytes
# failed with 8 KB free. Collected every 2 KB, a 10-minute run lost none (4 KB: one request in 10
# minutes; 8 KB: one 60-s run in four lost one; 12 KB: one in two). It costs CPU (make bench's app
# figures, with it), so the face pays for it, not everyone.
GC_EVERY = 2 * 1024


def frozen():
    """True when the package runs from the image's flash (a frozen module's package path is under
    .frozen), False when from files (its code then in the heap), or on CPython."""
    return str(getattr(p1dongle, "__path__", "")).startswith(".frozen")


def heap_total():
    """The heap this MicroPython can have, in bytes (on the ESP32 gc.mem_free() counts what the heap
    may still grow by); None on CPython."""
    if sys.implementation.name != "micropython":
        return None
    gc.collect()
    return gc.mem_free() + gc.mem_alloc()


def fits(log=print):
    """Whether the app may start: always from the image; from files only with p1dongle.FILES_HEAP."""
    total = heap_total()
    if frozen() or total is None or total >= p1dongle.FILES_HEAP:
        return True
    log("p1dongle: not started: loaded from files it needs %d KB of heap, this board has %d KB; flash the "
        "p1dongle image (its code runs from flash) or use a board with PSRAM" % (p1dongle.FILES_HEAP // 1024, total // 1024))
    return False


def main(argv=None):
    """argv: [program, settings path (default p1dongle.json)][, --no-heap-check (make soak
    measures what the files way needs with it)]."""
    argv = sys.argv if argv is None else argv
    path = argv[1] if len(argv) > 1 else "p1dongle.json"
    if "--no-heap-check" not in argv and not fits():
        return
    try:
        _supervise(path)
    finally:
        _unload()


def _unload():
    # Stopped (Ctrl-C, as tools/flash.py does): give the heap back to the REPL that follows. Loaded
    # from files, the modules are most of the heap, and the raw REPL needs some to answer.
    for name in list(sys.modules):
        if name == "p1dongle" or name.startswith("p1dongle."):
            del sys.modules[name]
    gc.collect()


def _platform():
    if sys.platform == "esp32":
        from p1dongle import platform_esp32 as platform
    else:
        from p1dongle import platform_host as platform
    return platform


def settings_at(platform, raw):
    """The settings of a settings file (on the dongle: {} when there is none yet, the web page asks
    for them) over the dongle's own defaults (its name, its chip's UART pins), checked."""
    from p1dongle import config
    if not isinstance(raw, dict):
        return config.check(raw)        # which says what is wrong with it
    cfg = dict(platform.defaults())
    for name in raw:
        # a section the file has (uart) overlays the default one setting by setting
        base = cfg.get(name)
        cfg[name] = dict(base, **raw[name]) if isinstance(base, dict) and isinstance(raw[name], dict) else raw[name]
    return config.check(cfg)


class _Run:
    """What the supervisor starts: the settings (which the web page edits and saves to the
    settings file), checked, and the source made from them. previous: these are the settings
    that ran before the file's, which did not start; notice: the line the status line then
    ends with."""

    def __init__(self, settings, cfg, source, previous=False, notice=None):
        self.settings = settings
        self.cfg = cfg
        self.source = source
        self.previous = previous
        self.notice = notice
        self.started = False            # its ports listened once


def _prepared(platform, path, previous=False):
    """A _Run from the settings file at path, or from the settings it had before the web page
    saved it (config.PREVIOUS). Raises ConfigError."""
    from p1dongle import config
    if previous:
        raw = config.read(path + config.PREVIOUS)
    else:
        raw = config.read(path, missing_ok=platform.FIRST_SETUP)
    cfg = settings_at(platform, raw)
    source = platform.make_source(cfg, print)
    return _Run(config.Settings(raw, path, previous=path + config.PREVIOUS, kinds=platform.SOURCES), cfg, source, previous)


def _choose(platform, path):
    """The settings file's settings; when the app cannot have them (a file or a UART that is not
    there), the ones that ran before the web page saved them. None once it has said in one line
    what is wrong."""
    from p1dongle.errors import ConfigError
    try:
        return _prepared(platform, path)
    except ConfigError as e:
        why = str(e)
    run = _previous(platform, path, why)
    if run is None:
        print("p1dongle: " + why)
    return run


def _previous(platform, path, why):
    """The settings that ran before the web page saved the file's, which did not start (why):
    the dongle keeps its web page (or its access point) to fix them on. None when there are none."""
    import os
    from p1dongle import config
    from p1dongle.errors import ConfigError
    try:
        os.stat(path + config.PREVIOUS)
    except OSError:
        return None                     # no change from the web page is waiting to start
    try:
        run = _prepared(platform, path, previous=True)
    except ConfigError as e:
        print("p1dongle: the previous settings cannot start either: " + str(e))
        return None
    run.notice = "on the previous settings (the new ones did not start: %s)" % why
    print("p1dongle: the new settings did not start (%s); started again with the previous ones: "
          "fix the new ones on the web page" % why)
    return run


def _forget_previous(path):
    # the file's settings started: nothing to go back to any more
    import os
    from p1dongle import config
    try:
        os.remove(path + config.PREVIOUS)
    except OSError:
        pass                            # there were none


def _run_app(platform, run, path, save_status, updates=None):
    """Build an app and run it until it ends: True when it ended to start again with new settings
    (saved from its web page), "reset" when the dongle is to reset (a new firmware waits to boot,
    or one on probation failed), False when its input ended. Raises what stopped it or kept it from
    being built. The app is this frame's alone: it is gone once this returns or raises, before
    the next one is built (the dongle's heap has no room for two apps' buffers)."""
    import asyncio
    from p1dongle.app import App
    if hasattr(gc, "threshold"):        # (MicroPython's; -1: only when the heap is full)
        gc.threshold(GC_EVERY if run.cfg.get("shelly") else -1)

    def on_started(app):
        run.started = True
        if not run.previous:
            _forget_previous(path)
        platform.on_started(app)

    app = App(run.cfg, run.source, info=platform.info, save_status=save_status, settings=run.settings,
              serial=platform.serial(), updates=updates, identify=platform.identify,
              history_dir=path[:path.rfind("/") + 1])    # beside the settings
    app.notice = run.notice
    try:
        asyncio.run(app.run(on_started))
    except KeyboardInterrupt:
        # Ctrl-C (flash.py does it to change the settings): the app's own clean-up did not run,
        # the interrupt came from inside the loop. Say offline and close, then stop.
        asyncio.run(app.goodbye())
        raise
    finally:
        ended = "reset" if app.rebooting else app.restarting
        app.release()
    return ended


def _supervise(path):
    from p1dongle.compat import new_loop, print_exception
    platform = _platform()
    run = _choose(platform, path)
    if run is None:
        # Stay up and reachable (REPL, flash.py): a reset would only loop on the same mistake.
        print(_NOT_STARTED)
        return
    platform.start_network(run.cfg, print)
    if files_layout():
        # From files, a module's code lives in the heap. What reads a DLMS push (loaded at the
        # first push on the image, where code costs no heap) is loaded now, while the heap is
        # whole: at the first push, in a heap broken up around the telegrams by then, its 15 KB
        # could not always find room (make soak --load files: a frame lost now and then; the
        # M-Bus and HDLC reassembly's too, at the first link frame).
        from p1dongle import axdr, layouts, link, render  # noqa: F401
    status_path = path[:path.rfind("/") + 1] + "p1dongle.status"    # beside the settings
    updates = _updates(platform, path, run.cfg)
    if updates.came_back:
        run.notice = updates.came_back

    def save_status(line):
        platform.save_status(status_path, line)

    last = None
    delay = RESTART_S
    while True:
        try:
            ended = _run_app(platform, run, path, save_status, updates)
            if ended == "reset":
                platform.reboot()       # into the new firmware, or back to the previous one
                return
            if not ended:
                return                  # the input ended (a file)
            # New settings from the web page (saved): the dongle starts again with them (its
            # Wi-Fi too); elsewhere the app does.
            platform.restart()
            new_loop()
            gc.collect()
            run = _choose(platform, path)
            if run is None:
                print(_NOT_STARTED)
                return
            continue
        except KeyboardInterrupt:
            new_loop()                  # the app's tasks (and through them the app) go
            return
        except Exception as e:          # noqa: BLE001 - a bug, or no room to build the app: neither may take the dongle down for good
            why = "%s: %s" % (e.__class__.__name__, e)
            if why != last:
                print_exception(e)      # once: what a bug report needs
            if updates.trial:
                # a new firmware that stops with an error has not proven itself: the previous one
                updates.failed("stopped by an error: " + why)
                platform.reboot()
                return
        # The app has closed its sockets and servers (App.run); drop every task and buffer it
        # left, so that the next one starts in a clean heap and finds its ports free.
        new_loop()
        gc.collect()
        if not run.started and not run.previous:
            # settings that never started (a port taken): back to the ones that ran, if any
            fallback = _previous(platform, path, why)
            if fallback is not None:
                run = fallback
                last = None
                continue
        if why == last:
            delay = min(delay * 2, RESTART_MAX_S)
            print("p1dongle: stopped by the same error again (%s); next start in %d s" % (why, delay))
        else:
            delay = RESTART_S
            print("p1dongle: stopped by an error (%s); restarting in %d s" % (why, delay))
        last = why
        platform.wait(delay)


def files_layout():
    """The package runs from the dongle's own files (a stock image: p1dongle/ beside main.py, in
    the folder it runs in: / on the dongle, make soak's on a PC), not from the image's flash, nor
    from a checkout on a PC (firmware/p1dongle)."""
    import os
    path = str(getattr(p1dongle, "__path__", ""))
    return path in ("p1dongle", "/p1dongle") or path == os.getcwd().rstrip("/") + "/p1dongle"


def _updates(platform, path, cfg):
    """The dongle's updates (update.py). Says at once whether this is a new firmware on probation
    or the previous one come back."""
    from p1dongle.update import RECORD, Updates
    way, why_not = _update_way(platform)
    version = (way.version if way else None) or p1dongle.VERSION
    updates = Updates(way, path[:path.rfind("/") + 1] + RECORD, version, print, why_not, cfg["update_probation_s"])
    updates.begin(bool(way and updates.record and way.runs(updates.record)))
    return updates


def _update_way(platform):
    """(how this dongle updates, or None and why not): the files way when the package runs from
    the dongle's files, the image way when the platform has app slots (the p1dongle image; a PC
    with P1DONGLE_FLASH), none elsewhere."""
    if files_layout():
        from p1dongle.bundle import FileSets
        return FileSets(p1dongle.VERSION), None
    partition = platform.partitions()
    if partition is None:
        return None, None
    from p1dongle.ota import ImageSlots
    try:
        return ImageSlots(partition), None
    except (OSError, ValueError) as e:
        return None, ("this image has no second app slot (%r): flash the p1dongle image by USB once, then it "
                      "updates over Wi-Fi" % e)


_NOT_STARTED = "p1dongle: not started; fix the settings (tools/flash.py config) and reset"
