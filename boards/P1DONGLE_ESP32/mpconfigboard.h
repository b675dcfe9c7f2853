// p1dongle on a generic ESP32 module.
#define MICROPY_HW_BOARD_NAME "p1dongle ESP32"
#define MICROPY_HW_MCU_NAME "ESP32"
// Not needed on a P1 reader, and their RAM is better spent on frames and clients.
#define MICROPY_PY_BLUETOOTH (0)
#define MICROPY_PY_ESPNOW (0)
// mdns.py answers mDNS (the host name and the HomeWizard and Shelly services) and looks up the
// broker's .local name: ESP-IDF's mDNS, started for either, would hold port 5353 and announce the
// host name only.
#define MICROPY_HW_ENABLE_MDNS_RESPONDER (0)
#define MICROPY_HW_ENABLE_MDNS_QUERIES (0)
