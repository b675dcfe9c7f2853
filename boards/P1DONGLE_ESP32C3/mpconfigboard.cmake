# p1dongle on an ESP32-C3 dongle (single RISC-V core, 160 MHz, USB serial/JTAG console).
# Build: make firmware BOARD=P1DONGLE_ESP32C3 (needs ESP-IDF, see README "Build your own image").
set(IDF_TARGET esp32c3)
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    boards/sdkconfig.riscv
    boards/ESP32_GENERIC_C3/sdkconfig.c3usb
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/../manifest.py)
