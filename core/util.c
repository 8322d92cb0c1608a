/*
** util.c — the small shared services of core/: status strings, error
** formatting, the allocator (with a fail-after-N hook for tests), dtype
** facts and half-precision conversion.
*/
#include "internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __F16C__
#include <immintrin.h>
#endif

const char *ram_version(void) { return "0.1.0"; }

const char *ram_status_str(ram_status s)
{
    switch (s) {
    case RAM_OK: return "ok";
    case RAM_ERR_NOMEM: return "out of memory";
    case RAM_ERR_IO: return "I/O error";
    case RAM_ERR_FORMAT: return "malformed or unsupported file";
    case RAM_ERR_IMAGE: return "cannot decode image";
    case RAM_ERR_TOO_BIG: return "input too big";
    case RAM_ERR_ARG: return "invalid argument";
    case RAM_ERR_UNSUPPORTED: return "not supported by this model";
    case RAM_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown error";
}

ram_status ram_fail(struct ram_error *err, ram_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

#ifdef RAM_TEST
/* Fail-after-N injection so that tests reach every out-of-memory path. Not
** thread-safe by design: only single-threaded tests set it. */
static long g_fail_after = -1;
void ram_alloc_fail_after(long n) { g_fail_after = n; }
static int alloc_should_fail(void)
{
    if (g_fail_after < 0) return 0;
    if (g_fail_after == 0) return 1;
    g_fail_after--;
    return 0;
}
#else
static int alloc_should_fail(void) { return 0; }
#endif

void *ram_malloc(size_t n)
{
    if (alloc_should_fail()) return NULL;
    return malloc(n ? n : 1);
}

void *ram_calloc(size_t count, size_t size)
{
    if (alloc_should_fail()) return NULL;
    if (!count || !size) return calloc(1, 1);
    return calloc(count, size);
}

void *ram_realloc(void *p, size_t n)
{
    if (alloc_should_fail()) return NULL;
    return realloc(p, n ? n : 1);
}

void ram_free(void *p) { free(p); }

char *ram_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *r = ram_malloc(n);
    if (r) memcpy(r, s, n);
    return r;
}

static const struct {
    const char *name;
    size_t size;
} dtype_info[RAM_DTYPE_COUNT] = {
    [RAM_DTYPE_F32] = {"F32", 4}, [RAM_DTYPE_F16] = {"F16", 2}, [RAM_DTYPE_BF16] = {"BF16", 2},
    [RAM_DTYPE_I64] = {"I64", 8}, [RAM_DTYPE_I32] = {"I32", 4}, [RAM_DTYPE_U8] = {"U8", 1},
    [RAM_DTYPE_I8] = {"I8", 1},
};

size_t ram_dtype_size(enum ram_dtype t) { return (unsigned)t < RAM_DTYPE_COUNT ? dtype_info[t].size : 0; }
const char *ram_dtype_name(enum ram_dtype t) { return (unsigned)t < RAM_DTYPE_COUNT ? dtype_info[t].name : "?"; }

int ram_dtype_from_name(const char *name, enum ram_dtype *out)
{
    for (int i = 0; i < RAM_DTYPE_COUNT; i++)
        if (!strcmp(name, dtype_info[i].name)) {
            *out = (enum ram_dtype)i;
            return 1;
        }
    return 0;
}

static float f16_one(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16, exp = (h >> 10) & 0x1f, man = h & 0x3ff, bits;
    if (exp == 0) {
        if (man == 0) {
            bits = sign;
        } else { /* subnormal: renormalise */
            exp = 127 - 15 + 1;
            while (!(man & 0x400)) {
                man <<= 1;
                exp--;
            }
            bits = sign | (exp << 23) | ((man & 0x3ff) << 13);
        }
    } else if (exp == 31) {
        bits = sign | 0x7f800000u | (man << 13);
    } else {
        bits = sign | ((exp + 127 - 15) << 23) | (man << 13);
    }
    float f;
    memcpy(&f, &bits, 4);
    return f;
}

void ram_f16_to_f32(const uint16_t *src, float *dst, size_t n)
{
    size_t i = 0;
#ifdef __F16C__
    /* Exact in hardware, 8 at a time (the same values as f16_one). */
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
#endif
    for (; i < n; i++) dst[i] = f16_one(src[i]);
}

void ram_bf16_to_f32(const uint16_t *src, float *dst, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        uint32_t b = (uint32_t)src[i] << 16;
        memcpy(&dst[i], &b, 4);
    }
}

/* Round-to-nearest-even fp32 -> fp16, with overflow to infinity. */
uint16_t ram_f32_to_f16(float f)
{
    uint32_t x;
    memcpy(&x, &f, 4);
    uint32_t sign = (x >> 16) & 0x8000;
    int32_t exp = (int32_t)((x >> 23) & 0xff) - 127 + 15;
    uint32_t man = x & 0x7fffff;
    if (((x >> 23) & 0xff) == 0xff) return (uint16_t)(sign | 0x7c00 | (man ? 0x200 : 0));
    if (exp >= 31) return (uint16_t)(sign | 0x7c00);
    if (exp <= 0) {
        if (exp < -10) return (uint16_t)sign;
        man |= 0x800000;
        uint32_t shift = (uint32_t)(14 - exp);
        uint32_t half = 1u << (shift - 1), rest = man & ((1u << shift) - 1);
        uint32_t r = man >> shift;
        if (rest > half || (rest == half && (r & 1))) r++;
        return (uint16_t)(sign | r);
    }
    uint32_t r = ((uint32_t)exp << 10) | (man >> 13), rest = man & 0x1fff;
    if (rest > 0x1000 || (rest == 0x1000 && (r & 1))) r++;
    return (uint16_t)(sign | r);
}

size_t ram_utf8_encode(uint32_t c, unsigned char *p)
{
    if (c < 0x80) {
        p[0] = (unsigned char)c;
        return 1;
    } else if (c < 0x800) {
        p[0] = (unsigned char)(0xC0 | (c >> 6));
        p[1] = (unsigned char)(0x80 | (c & 0x3F));
        return 2;
    } else if (c < 0x10000) {
        p[0] = (unsigned char)(0xE0 | (c >> 12));
        p[1] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
        p[2] = (unsigned char)(0x80 | (c & 0x3F));
        return 3;
    }
    p[0] = (unsigned char)(0xF0 | (c >> 18));
    p[1] = (unsigned char)(0x80 | ((c >> 12) & 0x3F));
    p[2] = (unsigned char)(0x80 | ((c >> 6) & 0x3F));
    p[3] = (unsigned char)(0x80 | (c & 0x3F));
    return 4;
}
