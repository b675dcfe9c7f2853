# Which UART and GPIO take the P1 data line on each chip p1dongle runs on, declared once: the
# dongle picks its row by its own name (os.uname().machine, "<board> with <MCU>"), the settings'
# defaults (config.UART_DEFAULTS) are the plain ESP32's, tools/flash.py and the README show them.
#
#  tag in the name   UART  RX GPIO   why this pin
PINS = (
    ("ESP32C3",        1,    5),     # the C3 has UARTs 0 and 1 only, and GPIO 12-17 are its flash's
    ("ESP32S3",        2,   16),     # as the ESP32; octal PSRAM takes GPIO 33-37, not 16
    ("SPIRAM",         2,    4),     # an ESP32 with PSRAM (WROVER): GPIO 16 and 17 are the PSRAM's
    ("",               2,   16),     # a plain ESP32 (WROOM): UART 1's own pins (9/10) are the flash's
)


def uart_pins(machine):
    """(UART id, RX GPIO) for a board by its os.uname().machine."""
    for tag, uart, rx in PINS:
        if tag in machine:
            return uart, rx
    raise ValueError(machine)       # not reached: the last row's tag is in every name
