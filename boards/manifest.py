# What the p1dongle firmware image freezes, for both boards and for the dongle twin (the unix port
# built like the ESP32 port, `make firmware-unix`): the port's own boot modules (file system
# set-up; the boards only), asyncio, and firmware/p1dongle compiled into flash. No micropython-lib
# packages: the MQTT client is ours. main.py stays a file on the dongle (tools/flash.py writes it),
# so the firmware's entry point can be read and changed on the device.
options.defaults(port_modules=True)
if options.port_modules:
    freeze("$(PORT_DIR)/modules")
include("$(MPY_DIR)/extmod/asyncio")
package("p1dongle", base_path="../firmware")        # relative to this file
