// p1dongle on an ESP32-C3: the console is the chip's own USB serial/JTAG, so UART1 is free for P1.
#define MICROPY_HW_BOARD_NAME "p1dongle ESP32-C3"
#define MICROPY_HW_MCU_NAME "ESP32C3"
#define MICROPY_HW_ENABLE_UART_REPL (0)
#define MICROPY_PY_BLUETOOTH (0)
#define MICROPY_PY_ESPNOW (0)
// mdns.py answers mDNS (the host name and the HomeWizard and Shelly services) and looks up the
// broker's .local name: ESP-IDF's mDNS, started for either, would hold port 5353 and announce the
// host name only.
#define MICROPY_HW_ENABLE_MDNS_RESPONDER (0)
#define MICROPY_HW_ENABLE_MDNS_QUERIES (0)
