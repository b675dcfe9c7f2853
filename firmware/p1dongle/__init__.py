# p1dongle: read an encrypted smart meter's P1 port and publish plain DSMR telegrams.
# Data path: UART -> ringbuf -> frames -> gcm (dlms) -> dsmr -> outputs.
VERSION = "0.8.0"

# The heap the firmware needs when its modules are loaded from .mpy files (a stock MicroPython
# image) rather than frozen into the p1dongle image: the smallest heap in which the whole app
# held in `make soak` (tools/soak.py --load files --find-min: MQTT with discovery, 7 TCP readers,
# the web API polled), rounded up to a 16 KB step. start.py and tools/flash.py install refuse below it.
FILES_HEAP = 224 * 1024
