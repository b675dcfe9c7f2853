// p1dongle on an ESP32-C3: the console is the chip's own USB serial/JTAG, so UART1 is free for P1.
#define MICROPY_HW_BOARD_NAME "p1dongle ESP32-C3"
#define MICROPY_HW_MCU_NAME "ESP32C3"
#define MICROPY_HW_ENABLE_UART_REPL (0)
#define MICROPY_PY_BLUETOOTH (0)
#define MICROPY_PY_ESPNOW (0)
