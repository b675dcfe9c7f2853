# p1dongle: read an encrypted smart meter's P1 port and publish plain DSMR telegrams.
# Data path: UART -> ringbuf -> frames -> gcm (dlms) -> dsmr -> outputs.
VERSION = "0.7.0"
