// The qemu port's configuration, as the ESP32-C3 has it where they differ. Found before the port's
// own mpconfigport.h (boards/rv32/mpconfigboard.mk puts this directory first on the include path).
#include "ports/qemu/mpconfigport.h"

// The C3 is RV32IMC: no Zba. The port would let viper code compiled on the device use sh1add and
// friends (the frozen code's flags are the Makefile's MPY_CROSS_FLAGS, separately).
#undef MICROPY_EMIT_RV32_ZBA
#define MICROPY_EMIT_RV32_ZBA (0)
