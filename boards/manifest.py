# What the p1dongle image freezes, for both boards and for the dongle twin (the unix port built
# like the ESP32 port, `make firmware-unix`): the port's own boot modules (file system set-up; the
# boards only), asyncio, firmware/p1dongle and firmware/main.py compiled into flash. No
# micropython-lib packages: the MQTT client is ours.
# main.py frozen: the ESP32 runs a frozen main.py before one on the file system, so a dongle
# flashed from a browser (no files yet) starts at once, and the entry always matches the package.
options.defaults(port_modules=True)
if options.port_modules:
    freeze("$(PORT_DIR)/modules")
include("$(MPY_DIR)/extmod/asyncio")
package("p1dongle", base_path="../firmware")        # relative to this file
module("main.py", base_path="../firmware")
