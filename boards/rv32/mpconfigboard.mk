# The RV32 twin's board: the qemu port's VIRT_RV32, with the C3's native code generator.
# (make -C ports/qemu -f boards/rv32/qemu.mk BOARD_DIR=boards/rv32 ...; see the top Makefile)
include $(TOP)/ports/qemu/boards/VIRT_RV32/mpconfigboard.mk

# The port's mpconfigport.h lets the on-device viper compiler emit Zba instructions; the
# ESP32-C3 has no Zba, so boards/rv32/mpconfigport.h turns that off. This directory comes before
# the port's own on the include path because the board's CFLAGS precede the port's INC.
CFLAGS += -I$(BOARD_DIR)
