# The unix port (make): our GCM module, linked against the system's mbedTLS (libmbedtls-dev).
P1GCM_MOD_DIR := $(USERMOD_DIR)
SRC_USERMOD += $(P1GCM_MOD_DIR)/p1gcm.c
LDFLAGS_USERMOD += -lmbedcrypto
