# p1dongle: read an encrypted smart meter's P1 port and publish plain DSMR telegrams.
# Data path: UART -> ringbuf -> frames -> gcm (dlms) -> dsmr -> outputs.
VERSION = "0.8.0"

# The heap the firmware needs when its modules are loaded from .mpy files (a stock MicroPython
# image) rather than frozen into the p1dongle image: the smallest heap in which the whole app
# held in `make soak` (tools/soak.py --load files --find-min: MQTT with discovery, 7 TCP readers,
# the web API polled, the hostile phases; 240 KB held, 232 KB lost 2 frames), and a 16 KB step
# more: at the bare minimum a slower machine (CI) once lost a frame. start.py and tools/flash.py
# install refuse below it; a PSRAM board has megabytes.
FILES_HEAP = 256 * 1024
