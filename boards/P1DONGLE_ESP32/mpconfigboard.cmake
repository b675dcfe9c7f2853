# p1dongle on a generic ESP32 module (dual core, 240 MHz, 4 MB flash).
# Build: make firmware BOARD=P1DONGLE_ESP32 (needs ESP-IDF, see README "Build your own image").
set(SDKCONFIG_DEFAULTS
    boards/sdkconfig.base
    ${MICROPY_BOARD_DIR}/sdkconfig.board
)
set(MICROPY_FROZEN_MANIFEST ${MICROPY_BOARD_DIR}/../manifest.py)
# The image's version in its app description (what an update over Wi-Fi reads from a new image
# and reports, ota.py): p1dongle's VERSION, not git's description of MicroPython's checkout.
# Set before the port's project(), which takes PROJECT_VER when it is defined.
file(STRINGS ${MICROPY_BOARD_DIR}/../../firmware/p1dongle/__init__.py P1DONGLE_VERSION_LINE REGEX "^VERSION = ")
string(REGEX REPLACE "^VERSION = \"([^\"]*)\".*$" "\\1" PROJECT_VER "${P1DONGLE_VERSION_LINE}")
