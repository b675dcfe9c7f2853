# On the dongle: read the settings, build the app, run it. Also runs under the MicroPython unix
# port and CPython: `micropython firmware/main.py settings.json` (a tcp: or file: source there).
import sys
import time

import asyncio
from p1dongle import config
from p1dongle.app import App
from p1dongle.errors import ConfigError

if sys.platform == "esp32":
    from p1dongle import platform_esp32 as platform
else:
    from p1dongle import platform_host as platform


def main(path):
    try:
        cfg = config.load(path)
        source = platform.make_source(cfg, print)
    except ConfigError as e:
        # Stay up and reachable (REPL, flash.py): a reset would only loop on the same mistake.
        print("p1dongle: " + str(e))
        print("p1dongle: not started; fix the settings (tools/flash.py config) and reset")
        return
    platform.start_network(cfg, print)
    status_path = path[:path.rfind("/") + 1] + "p1dongle.status"    # beside the settings

    def save_status(line):
        platform.save_status(status_path, line)

    while True:
        try:
            app = App(cfg, source, info=platform.info, save_status=save_status)
            asyncio.run(app.run(platform.on_started))
            return                      # the input ended (a file)
        except KeyboardInterrupt:
            return
        except Exception as e:          # noqa: BLE001 - a bug must not take the dongle down for good
            print("p1dongle: stopped by an error: %r; restarting in 5 s" % e)
            time.sleep(5)


main(sys.argv[1] if len(sys.argv) > 1 else "p1dongle.json")
