# p1dongle: read an encrypted smart meter's P1 port and publish plain DSMR telegrams.
# Data path: UART -> ringbuf -> frames -> gcm (dlms) -> dsmr -> outputs.
VERSION = "0.8.0"

# The heap the firmware needs when its modules are loaded from .mpy files (a stock MicroPython
# image) rather than frozen into the p1dongle image: the smallest heap in which the whole app
# held in `make soak` (tools/soak.py --load files --find-min: MQTT with discovery, 7 TCP readers,
# the web API polled, the hostile phases, the files laid out as on a dongle, so that the DLMS
# readers load at the start and updates take the files way: 288 KB held, 256 KB lost 129
# telegrams' outputs), and a 16 KB step more: at the bare minimum a slower machine (CI) once lost
# a frame. With the faces and the history (its code, the status page's plots: from files they are
# in the heap) 320 KB held and 312 KB lost 30. start.py and tools/flash.py install refuse below
# it; a PSRAM board has megabytes.
FILES_HEAP = 336 * 1024
