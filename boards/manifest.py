# What the p1dongle firmware image freezes, for both boards: the port's own boot modules (file
# system set-up), asyncio, and firmware/p1dongle compiled into flash. No micropython-lib packages:
# the MQTT client is ours. main.py stays a file on the dongle (tools/flash.py writes it), so the
# firmware's entry point can be read and changed on the device.
freeze("$(PORT_DIR)/modules")
include("$(MPY_DIR)/extmod/asyncio")
package("p1dongle", base_path="$(BOARD_DIR)/../../firmware")
