// The dongle twin's MicroPython: the unix port's standard variant (the feature level the ESP32
// port has), except where the unix port would not behave as the ESP32 does.
#define MICROPY_CONFIG_ROM_LEVEL (MICROPY_CONFIG_ROM_LEVEL_EXTRA_FEATURES)
#include "variants/mpconfigvariant_common.h"

// Ctrl-C as the ESP32 takes it: a KeyboardInterrupt raised by the VM where it is safe (the UART's
// interrupt only schedules it). The unix port raises it from the SIGINT handler itself, wherever the
// process is: in the middle of a garbage collection that leaves the heap locked for good ("memory
// allocation failed, heap is locked" in everything after, the REPL too), which no dongle does.
#undef MICROPY_ASYNC_KBD_INTR
#define MICROPY_ASYNC_KBD_INTR (0)
