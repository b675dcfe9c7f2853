# On the dongle: read the settings, build the app, run it. Also runs under the MicroPython unix
# port and CPython: `micropython firmware/main.py settings.json` (a tcp: or file: source there).
import gc
import sys

import asyncio
from p1dongle import config
from p1dongle.app import App
from p1dongle.compat import new_loop, print_exception
from p1dongle.errors import ConfigError

RESTART_S = 5           # after an error that stopped the app; doubled while it is the same error
RESTART_MAX_S = 300

if sys.platform == "esp32":
    from p1dongle import platform_esp32 as platform
else:
    from p1dongle import platform_host as platform


def settings_at(path):
    """The settings file (on the dongle: {} when there is none yet, the web page asks for them),
    the dongle's own defaults (its name) under it, checked."""
    raw = config.read(path, missing_ok=platform.FIRST_SETUP)
    cfg = dict(platform.defaults())
    cfg.update(raw)
    return raw, config.check(cfg)


def configured(path):
    """(the settings file, the checked settings, the source), or None once it has said in one
    line what is wrong."""
    try:
        raw, cfg = settings_at(path)
        return raw, cfg, platform.make_source(cfg, print)
    except ConfigError as e:
        print("p1dongle: " + str(e))
        return None


def main(path):
    got = configured(path)
    if got is None:
        # Stay up and reachable (REPL, flash.py): a reset would only loop on the same mistake.
        print("p1dongle: not started; fix the settings (tools/flash.py config) and reset")
        return
    raw, cfg, source = got
    settings = config.Settings(raw, path)
    platform.start_network(cfg, print)
    status_path = path[:path.rfind("/") + 1] + "p1dongle.status"    # beside the settings

    def save_status(line):
        platform.save_status(status_path, line)

    last = None
    delay = RESTART_S
    while True:
        app = App(cfg, source, info=platform.info, save_status=save_status, settings=settings,
                  serial=platform.serial())
        try:
            asyncio.run(app.run(platform.on_started))
            if not app.restarting:
                return                  # the input ended (a file)
            # New settings from the web page (saved): the dongle starts again with them (its
            # Wi-Fi too); elsewhere the app does.
            platform.restart()
            new_loop()
            gc.collect()
            got = configured(path)
            if got is None:
                return
            _, cfg, source = got
            continue
        except KeyboardInterrupt:
            # Ctrl-C (flash.py does it to change the settings): the app's own clean-up did not
            # run, the interrupt came from inside the loop. Say offline and close, then stop.
            asyncio.run(app.goodbye())
            return
        except Exception as e:          # noqa: BLE001 - a bug must not take the dongle down for good
            why = "%s: %s" % (e.__class__.__name__, e)
            if why != last:
                print_exception(e)      # once: what a bug report needs
        # The app has closed its sockets and servers (App.run); drop every task and buffer it
        # left, so that the next one starts in a clean heap and finds its ports free.
        new_loop()
        gc.collect()
        if why == last:
            delay = min(delay * 2, RESTART_MAX_S)
            print("p1dongle: stopped by the same error again (%s); next start in %d s" % (why, delay))
        else:
            delay = RESTART_S
            print("p1dongle: stopped by an error (%s); restarting in %d s" % (why, delay))
        last = why
        platform.wait(delay)


main(sys.argv[1] if len(sys.argv) > 1 else "p1dongle.json")
