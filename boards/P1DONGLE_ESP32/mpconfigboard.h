// p1dongle on a generic ESP32 module.
#define MICROPY_HW_BOARD_NAME "p1dongle ESP32"
#define MICROPY_HW_MCU_NAME "ESP32"
// Not needed on a P1 reader, and their RAM is better spent on frames and clients.
#define MICROPY_PY_BLUETOOTH (0)
#define MICROPY_PY_ESPNOW (0)
