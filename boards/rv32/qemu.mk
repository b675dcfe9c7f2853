# The qemu port's Makefile as it is, plus one link flag; run as
#   make -C $(MICROPY_SRC)/ports/qemu -f $(CURDIR)/boards/rv32/qemu.mk BOARD_DIR=... (top Makefile)
# Why: the port compiles and links with -march=rv32imac_zicsr (GCC 12 wants Zicsr named to
# assemble the CSR instructions in its start-up code), but Debian's GCC 12 matches its rv32imac/ilp32
# multilib (libc, libgcc) only for -march=rv32imac exactly, and would link the rv64 default
# instead. The last -march wins, so linking with rv32imac picks the right libraries; the code is
# compiled as before.
include Makefile

LDFLAGS += -march=rv32imac
