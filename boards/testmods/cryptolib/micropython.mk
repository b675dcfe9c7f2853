# TEST-ONLY cryptolib (AES-128-ECB encrypt in portable C) for the builds of MicroPython that have
# no cryptolib of their own: the qemu port's RV32 twin and the unix "stock image" twin
# (USER_C_MODULES=boards/testmods). The dongle's image uses the port's real cryptolib.
CRYPTOLIB_MOD_DIR := $(USERMOD_DIR)
SRC_USERMOD_C += $(CRYPTOLIB_MOD_DIR)/modcryptolib.c
