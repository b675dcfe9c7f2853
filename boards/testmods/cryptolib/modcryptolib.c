// TEST-ONLY cryptolib: the part of MicroPython's cryptolib that firmware/p1dongle uses, for builds
// that have none (the qemu port's RV32 twin has no mbedTLS; the unix port has it only with SSL).
// Not for a dongle: the ESP32 image has the real cryptolib, with hardware AES.
//
//   a = cryptolib.aes(key, 1)       16-byte key, mode 1 = ECB (as the real module numbers it)
//   a.encrypt(in_buf[, out_buf])    whole 16-byte blocks, any number of them in one call; into
//                                   out_buf (may be in_buf itself: gcm.py encrypts in place) or a
//                                   new bytes object
//
// Other modes, other key lengths, a length that is not a multiple of 16 or a short out_buf raise
// ValueError, as the real module does for what it does not take. No decrypt: GCM never needs it.
// AES-128 encryption written from FIPS-197 (sections 5.1 and 5.2), a byte at a time: small and
// portable, not fast and not constant-time. That is fine for tests and would not be on a device.
#include <string.h>
#include "py/runtime.h"
#include "py/objstr.h"

#if MICROPY_PY_CRYPTOLIB
// Two modules named cryptolib would not link, and a test that meant this one would silently run
// the port's: say so instead.
#error "this port already has cryptolib: build without boards/testmods (or without MICROPY_PY_SSL)"
#endif

#define AES_MODE_ECB (1)

// FIPS-197 figure 7: the S-box
static const uint8_t sbox[256] = {
    0x63, 0x7c, 0x77, 0x7b, 0xf2, 0x6b, 0x6f, 0xc5, 0x30, 0x01, 0x67, 0x2b, 0xfe, 0xd7, 0xab, 0x76,
    0xca, 0x82, 0xc9, 0x7d, 0xfa, 0x59, 0x47, 0xf0, 0xad, 0xd4, 0xa2, 0xaf, 0x9c, 0xa4, 0x72, 0xc0,
    0xb7, 0xfd, 0x93, 0x26, 0x36, 0x3f, 0xf7, 0xcc, 0x34, 0xa5, 0xe5, 0xf1, 0x71, 0xd8, 0x31, 0x15,
    0x04, 0xc7, 0x23, 0xc3, 0x18, 0x96, 0x05, 0x9a, 0x07, 0x12, 0x80, 0xe2, 0xeb, 0x27, 0xb2, 0x75,
    0x09, 0x83, 0x2c, 0x1a, 0x1b, 0x6e, 0x5a, 0xa0, 0x52, 0x3b, 0xd6, 0xb3, 0x29, 0xe3, 0x2f, 0x84,
    0x53, 0xd1, 0x00, 0xed, 0x20, 0xfc, 0xb1, 0x5b, 0x6a, 0xcb, 0xbe, 0x39, 0x4a, 0x4c, 0x58, 0xcf,
    0xd0, 0xef, 0xaa, 0xfb, 0x43, 0x4d, 0x33, 0x85, 0x45, 0xf9, 0x02, 0x7f, 0x50, 0x3c, 0x9f, 0xa8,
    0x51, 0xa3, 0x40, 0x8f, 0x92, 0x9d, 0x38, 0xf5, 0xbc, 0xb6, 0xda, 0x21, 0x10, 0xff, 0xf3, 0xd2,
    0xcd, 0x0c, 0x13, 0xec, 0x5f, 0x97, 0x44, 0x17, 0xc4, 0xa7, 0x7e, 0x3d, 0x64, 0x5d, 0x19, 0x73,
    0x60, 0x81, 0x4f, 0xdc, 0x22, 0x2a, 0x90, 0x88, 0x46, 0xee, 0xb8, 0x14, 0xde, 0x5e, 0x0b, 0xdb,
    0xe0, 0x32, 0x3a, 0x0a, 0x49, 0x06, 0x24, 0x5c, 0xc2, 0xd3, 0xac, 0x62, 0x91, 0x95, 0xe4, 0x79,
    0xe7, 0xc8, 0x37, 0x6d, 0x8d, 0xd5, 0x4e, 0xa9, 0x6c, 0x56, 0xf4, 0xea, 0x65, 0x7a, 0xae, 0x08,
    0xba, 0x78, 0x25, 0x2e, 0x1c, 0xa6, 0xb4, 0xc6, 0xe8, 0xdd, 0x74, 0x1f, 0x4b, 0xbd, 0x8b, 0x8a,
    0x70, 0x3e, 0xb5, 0x66, 0x48, 0x03, 0xf6, 0x0e, 0x61, 0x35, 0x57, 0xb9, 0x86, 0xc1, 0x1d, 0x9e,
    0xe1, 0xf8, 0x98, 0x11, 0x69, 0xd9, 0x8e, 0x94, 0x9b, 0x1e, 0x87, 0xe9, 0xce, 0x55, 0x28, 0xdf,
    0x8c, 0xa1, 0x89, 0x0d, 0xbf, 0xe6, 0x42, 0x68, 0x41, 0x99, 0x2d, 0x0f, 0xb0, 0x54, 0xbb, 0x16,
};

// multiplication by x in GF(2^8) modulo x^8 + x^4 + x^3 + x + 1 (section 4.2.1)
static uint8_t xtime(uint8_t b) {
    return (uint8_t)((b << 1) ^ ((b & 0x80) ? 0x1b : 0x00));
}

// KeyExpansion (section 5.2) for Nk = 4, Nr = 10: 11 round keys of 16 bytes
static void expand_key(const uint8_t *key, uint8_t *rk) {
    memcpy(rk, key, 16);
    uint8_t rcon = 0x01;
    for (int i = 16; i < 176; i += 4) {
        uint8_t t0 = rk[i - 4], t1 = rk[i - 3], t2 = rk[i - 2], t3 = rk[i - 1];
        if (i % 16 == 0) {
            // RotWord, SubWord, Rcon
            uint8_t u = t0;
            t0 = (uint8_t)(sbox[t1] ^ rcon);
            t1 = sbox[t2];
            t2 = sbox[t3];
            t3 = sbox[u];
            rcon = xtime(rcon);
        }
        rk[i] = rk[i - 16] ^ t0;
        rk[i + 1] = rk[i - 15] ^ t1;
        rk[i + 2] = rk[i - 14] ^ t2;
        rk[i + 3] = rk[i - 13] ^ t3;
    }
}

// Cipher (section 5.1) on one block. The state is a local copy, so in and out may be the same.
// s[r + 4c] is row r of column c, as the input bytes are laid out (section 3.4).
static void encrypt_block(const uint8_t *rk, const uint8_t *in, uint8_t *out) {
    uint8_t s[16], t[16];
    for (int i = 0; i < 16; i++) {
        s[i] = in[i] ^ rk[i];                               // AddRoundKey, round 0
    }
    for (int round = 1; round <= 10; round++) {
        for (int c = 0; c < 4; c++) {                       // SubBytes and ShiftRows together:
            for (int r = 0; r < 4; r++) {                   // row r moves r columns left
                t[r + 4 * c] = sbox[s[r + 4 * ((c + r) % 4)]];
            }
        }
        if (round < 10) {                                   // MixColumns, but not in the last round
            for (int c = 0; c < 4; c++) {
                uint8_t *col = t + 4 * c;
                uint8_t a0 = col[0], a1 = col[1], a2 = col[2], a3 = col[3];
                uint8_t all = a0 ^ a1 ^ a2 ^ a3;
                // {02}a_r ^ {03}a_(r+1) ^ a_(r+2) ^ a_(r+3) == a_r ^ all ^ xtime(a_r ^ a_(r+1))
                col[0] = a0 ^ all ^ xtime(a0 ^ a1);
                col[1] = a1 ^ all ^ xtime(a1 ^ a2);
                col[2] = a2 ^ all ^ xtime(a2 ^ a3);
                col[3] = a3 ^ all ^ xtime(a3 ^ a0);
            }
        }
        for (int i = 0; i < 16; i++) {
            s[i] = t[i] ^ rk[16 * round + i];               // AddRoundKey
        }
    }
    memcpy(out, s, 16);
}

typedef struct _cryptolib_aes_obj_t {
    mp_obj_base_t base;
    uint8_t rk[176];
} cryptolib_aes_obj_t;

static mp_obj_t cryptolib_aes_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 2, 2, false);
    if (mp_obj_get_int(args[1]) != AES_MODE_ECB) {
        mp_raise_ValueError(MP_ERROR_TEXT("mode: this test cryptolib has ECB (1) only"));
    }
    mp_buffer_info_t key;
    mp_get_buffer_raise(args[0], &key, MP_BUFFER_READ);
    if (key.len != 16) {
        mp_raise_ValueError(MP_ERROR_TEXT("key: this test cryptolib has AES-128 only"));
    }
    cryptolib_aes_obj_t *self = mp_obj_malloc(cryptolib_aes_obj_t, type);
    expand_key(key.buf, self->rk);
    return MP_OBJ_FROM_PTR(self);
}

static mp_obj_t cryptolib_aes_encrypt(size_t n_args, const mp_obj_t *args) {
    cryptolib_aes_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    mp_buffer_info_t in;
    mp_get_buffer_raise(args[1], &in, MP_BUFFER_READ);
    if (in.len % 16 != 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("blksize % 16"));
    }
    vstr_t vstr;
    uint8_t *out;
    if (n_args > 2) {
        mp_buffer_info_t outinfo;
        mp_get_buffer_raise(args[2], &outinfo, MP_BUFFER_WRITE);
        if (outinfo.len < in.len) {
            mp_raise_ValueError(MP_ERROR_TEXT("output too small"));
        }
        out = outinfo.buf;
    } else {
        vstr_init_len(&vstr, in.len);
        out = (uint8_t *)vstr.buf;
    }
    const uint8_t *src = in.buf;
    for (size_t i = 0; i < in.len; i += 16) {
        encrypt_block(self->rk, src + i, out + i);
    }
    if (n_args > 2) {
        return args[2];
    }
    return mp_obj_new_bytes_from_vstr(&vstr);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(cryptolib_aes_encrypt_obj, 2, 3, cryptolib_aes_encrypt);

static const mp_rom_map_elem_t cryptolib_aes_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR_encrypt), MP_ROM_PTR(&cryptolib_aes_encrypt_obj) },
};
static MP_DEFINE_CONST_DICT(cryptolib_aes_locals_dict, cryptolib_aes_locals_dict_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    cryptolib_aes_type,
    MP_QSTR_aes,
    MP_TYPE_FLAG_NONE,
    make_new, cryptolib_aes_make_new,
    locals_dict, &cryptolib_aes_locals_dict
    );

static const mp_rom_map_elem_t cryptolib_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR_cryptolib) },
    { MP_ROM_QSTR(MP_QSTR_aes), MP_ROM_PTR(&cryptolib_aes_type) },
    { MP_ROM_QSTR(MP_QSTR_MODE_ECB), MP_ROM_INT(AES_MODE_ECB) },
};
static MP_DEFINE_CONST_DICT(cryptolib_module_globals, cryptolib_module_globals_table);

const mp_obj_module_t cryptolib_user_module = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&cryptolib_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR_cryptolib, cryptolib_user_module);
