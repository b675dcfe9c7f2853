// _p1gcm: AES-128-GCM for p1dongle, from mbedTLS (ESP-IDF ships it with the ESP32's AES hardware;
// on a PC it is Debian's libmbedtls). firmware/p1dongle/gcm.py uses it when the firmware image
// has it and its own Python GCM otherwise; host_tests check that both give the same bytes.
//
//   g = _p1gcm.GCM(key)                                   16-byte key
//   g.open_into(iv, aad, buf, start, end, tag_len, out)   verify the tag that follows
//       buf[start:end], decrypt into out[0:]; returns the length, or -1 when the tag does not
//       match (out then holds no plaintext: mbedTLS clears it)
//   g.ctr_into(iv, buf, start, end, out)                  decrypt WITHOUT a tag (security 0x20,
//       key-only mode); returns the length
//   g.seal(iv, aad, pt, tag_len)                          -> ciphertext || tag
//
// Nothing is allocated except by seal(); ranges are checked before mbedTLS sees them.
#include <string.h>
#include "py/runtime.h"
#include "py/objstr.h"
#include "mbedtls/gcm.h"

typedef struct _p1gcm_obj_t {
    mp_obj_base_t base;
    mbedtls_gcm_context ctx;
} p1gcm_obj_t;

static const mp_obj_type_t p1gcm_type;

static mp_obj_t p1gcm_make_new(const mp_obj_type_t *type, size_t n_args, size_t n_kw, const mp_obj_t *args) {
    mp_arg_check_num(n_args, n_kw, 1, 1, false);
    mp_buffer_info_t key;
    mp_get_buffer_raise(args[0], &key, MP_BUFFER_READ);
    if (key.len != 16) {
        mp_raise_ValueError(MP_ERROR_TEXT("AES-128 needs a 16-byte key"));
    }
    p1gcm_obj_t *self = mp_obj_malloc_with_finaliser(p1gcm_obj_t, type);
    mbedtls_gcm_init(&self->ctx);
    if (mbedtls_gcm_setkey(&self->ctx, MBEDTLS_CIPHER_ID_AES, key.buf, 128) != 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("GCM key setup failed"));
    }
    return MP_OBJ_FROM_PTR(self);
}

static mp_obj_t p1gcm_del(mp_obj_t self_in) {
    p1gcm_obj_t *self = MP_OBJ_TO_PTR(self_in);
    mbedtls_gcm_free(&self->ctx);
    return mp_const_none;
}
static MP_DEFINE_CONST_FUN_OBJ_1(p1gcm_del_obj, p1gcm_del);

// buf[start:end] (plus `extra` bytes after it) inside buf, and out big enough for end - start
static void check_range(mp_buffer_info_t *buf, mp_int_t start, mp_int_t end, mp_int_t extra, mp_buffer_info_t *out) {
    if (start < 0 || start > end || (size_t)(end + extra) > buf->len) {
        mp_raise_ValueError(MP_ERROR_TEXT("GCM input range outside its buffer"));
    }
    if (out->len < (size_t)(end - start)) {
        mp_raise_ValueError(MP_ERROR_TEXT("GCM output buffer too small"));
    }
}

static void get_iv(mp_obj_t obj, mp_buffer_info_t *iv) {
    mp_get_buffer_raise(obj, iv, MP_BUFFER_READ);
    if (iv->len != 12) {
        mp_raise_ValueError(MP_ERROR_TEXT("GCM here takes a 96-bit IV"));
    }
}

static mp_obj_t p1gcm_open_into(size_t n_args, const mp_obj_t *args) {
    p1gcm_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    mp_buffer_info_t iv, aad, buf, out;
    get_iv(args[1], &iv);
    mp_get_buffer_raise(args[2], &aad, MP_BUFFER_READ);
    mp_get_buffer_raise(args[3], &buf, MP_BUFFER_READ);
    mp_int_t start = mp_obj_get_int(args[4]);
    mp_int_t end = mp_obj_get_int(args[5]);
    mp_int_t tag_len = mp_obj_get_int(args[6]);
    mp_get_buffer_raise(args[7], &out, MP_BUFFER_WRITE);
    if (tag_len < 12 || tag_len > 16) {
        mp_raise_ValueError(MP_ERROR_TEXT("GCM tag must be 12 to 16 bytes"));
    }
    check_range(&buf, start, end, tag_len, &out);
    const uint8_t *b = buf.buf;
    int r = mbedtls_gcm_auth_decrypt(&self->ctx, end - start, iv.buf, 12, aad.buf, aad.len,
        b + end, tag_len, b + start, out.buf);
    if (r == MBEDTLS_ERR_GCM_AUTH_FAILED) {
        return MP_OBJ_NEW_SMALL_INT(-1);
    }
    if (r != 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("GCM failed"));
    }
    return MP_OBJ_NEW_SMALL_INT(end - start);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(p1gcm_open_into_obj, 8, 8, p1gcm_open_into);

static mp_obj_t p1gcm_ctr_into(size_t n_args, const mp_obj_t *args) {
    p1gcm_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    mp_buffer_info_t iv, buf, out;
    get_iv(args[1], &iv);
    mp_get_buffer_raise(args[2], &buf, MP_BUFFER_READ);
    mp_int_t start = mp_obj_get_int(args[3]);
    mp_int_t end = mp_obj_get_int(args[4]);
    mp_get_buffer_raise(args[5], &out, MP_BUFFER_WRITE);
    check_range(&buf, start, end, 0, &out);
    uint8_t tag[16];    // computed and thrown away: there is no tag to check it against
    if (mbedtls_gcm_crypt_and_tag(&self->ctx, MBEDTLS_GCM_DECRYPT, end - start, iv.buf, 12, NULL, 0,
        (const uint8_t *)buf.buf + start, out.buf, 16, tag) != 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("GCM failed"));
    }
    return MP_OBJ_NEW_SMALL_INT(end - start);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(p1gcm_ctr_into_obj, 6, 6, p1gcm_ctr_into);

static mp_obj_t p1gcm_seal(size_t n_args, const mp_obj_t *args) {
    p1gcm_obj_t *self = MP_OBJ_TO_PTR(args[0]);
    mp_buffer_info_t iv, aad, pt;
    get_iv(args[1], &iv);
    mp_get_buffer_raise(args[2], &aad, MP_BUFFER_READ);
    mp_get_buffer_raise(args[3], &pt, MP_BUFFER_READ);
    mp_int_t tag_len = mp_obj_get_int(args[4]);
    if (tag_len < 12 || tag_len > 16) {
        mp_raise_ValueError(MP_ERROR_TEXT("GCM tag must be 12 to 16 bytes"));
    }
    vstr_t vstr;
    vstr_init_len(&vstr, pt.len + tag_len);
    uint8_t *o = (uint8_t *)vstr.buf;
    if (mbedtls_gcm_crypt_and_tag(&self->ctx, MBEDTLS_GCM_ENCRYPT, pt.len, iv.buf, 12, aad.buf, aad.len,
        pt.buf, o, tag_len, o + pt.len) != 0) {
        mp_raise_ValueError(MP_ERROR_TEXT("GCM failed"));
    }
    return mp_obj_new_bytes_from_vstr(&vstr);
}
static MP_DEFINE_CONST_FUN_OBJ_VAR_BETWEEN(p1gcm_seal_obj, 5, 5, p1gcm_seal);

static const mp_rom_map_elem_t p1gcm_locals_dict_table[] = {
    { MP_ROM_QSTR(MP_QSTR___del__), MP_ROM_PTR(&p1gcm_del_obj) },
    { MP_ROM_QSTR(MP_QSTR_open_into), MP_ROM_PTR(&p1gcm_open_into_obj) },
    { MP_ROM_QSTR(MP_QSTR_ctr_into), MP_ROM_PTR(&p1gcm_ctr_into_obj) },
    { MP_ROM_QSTR(MP_QSTR_seal), MP_ROM_PTR(&p1gcm_seal_obj) },
};
static MP_DEFINE_CONST_DICT(p1gcm_locals_dict, p1gcm_locals_dict_table);

static MP_DEFINE_CONST_OBJ_TYPE(
    p1gcm_type,
    MP_QSTR_GCM,
    MP_TYPE_FLAG_NONE,
    make_new, p1gcm_make_new,
    locals_dict, &p1gcm_locals_dict
    );

static const mp_rom_map_elem_t p1gcm_module_globals_table[] = {
    { MP_ROM_QSTR(MP_QSTR___name__), MP_ROM_QSTR(MP_QSTR__p1gcm) },
    { MP_ROM_QSTR(MP_QSTR_GCM), MP_ROM_PTR(&p1gcm_type) },
};
static MP_DEFINE_CONST_DICT(p1gcm_module_globals, p1gcm_module_globals_table);

const mp_obj_module_t p1gcm_user_cmodule = {
    .base = { &mp_type_module },
    .globals = (mp_obj_dict_t *)&p1gcm_module_globals,
};

MP_REGISTER_MODULE(MP_QSTR__p1gcm, p1gcm_user_cmodule);
