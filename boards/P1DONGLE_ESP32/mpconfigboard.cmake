# p1dongle on a generic ESP32 module (dual core, 240 MHz, 4 MB flash).
# Build: make firmware BOARD=P1DONGLE_ESP32 (needs ESP-IDF, see README "Build your own image").
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/../manifest.py)
