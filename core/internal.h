/*
** internal.h — helpers shared by the files of core/ and never exported:
** error formatting, the allocator, overflow-checked sizes, dtypes, and the
** tensor view through which every weight reader (.pth, model file,
** safetensors) hands tensors to the weight binder.
*/
#ifndef RAM_INTERNAL_H
#define RAM_INTERNAL_H

#include "ram.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define RAM_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define RAM_PRINTF(a, b)
#endif

/* Formats a message into err (if err is not NULL) and returns code, so that
** call sites read: return ram_fail(err, RAM_ERR_FORMAT, "bad %s", x); */
ram_status ram_fail(struct ram_error *err, ram_status code, const char *fmt, ...) RAM_PRINTF(3, 4);

/* The allocator of core/. ram_malloc(0) returns a valid unique pointer.
** Tests can make the Nth allocation fail (RAM_TEST builds: ram_alloc_fail_after). */
void *ram_malloc(size_t n);
void *ram_calloc(size_t count, size_t size);
void *ram_realloc(void *p, size_t n);
void ram_free(void *p);
char *ram_strdup(const char *s);
#ifdef RAM_TEST
void ram_alloc_fail_after(long n); /* -1 disables */
#endif

/* a*b into *out; returns 0 on overflow. */
static inline int ram_mul_ok(size_t a, size_t b, size_t *out)
{
    if (a && b > SIZE_MAX / a) return 0;
    *out = a * b;
    return 1;
}

/* Internal invariant (never on input-dependent conditions: those return errors). */
#define RAM_ASSERT(c) ((void)0)

enum ram_dtype {
    RAM_DTYPE_F32 = 0,
    RAM_DTYPE_F16,
    RAM_DTYPE_BF16,
    RAM_DTYPE_I64,
    RAM_DTYPE_I32,
    RAM_DTYPE_U8,
    RAM_DTYPE_I8, /* int8 weights of quantized files (core/gemm_q8.h) */
    RAM_DTYPE_COUNT
};
/* Bytes per element, and the safetensors name ("F32", ...). */
size_t ram_dtype_size(enum ram_dtype t);
const char *ram_dtype_name(enum ram_dtype t);
int ram_dtype_from_name(const char *name, enum ram_dtype *out); /* 1 if known */

#define RAM_MAX_DIMS 8

/* A contiguous little-endian tensor inside some mapped file. Borrowed: valid
** while the reader that produced it lives. */
struct ram_tensor_view {
    const char *name;
    enum ram_dtype dtype;
    int ndim;
    int64_t shape[RAM_MAX_DIMS];
    const void *data;
    size_t nbytes;
};

/* Name -> tensor lookup implemented by each reader; returns NULL if absent. */
struct ram_tensor_source {
    const struct ram_tensor_view *(*find)(void *ctx, const char *name);
    void *ctx;
};

/* Writes code point c (at most 0x10FFFF, not checked) as 1-4 bytes of UTF-8
** at p; returns the count. Shared by the two tokenizers (bpe.c, wordpiece.c). */
size_t ram_utf8_encode(uint32_t c, unsigned char *p);

/* fp16 / bf16 -> fp32 conversion of n elements. */
void ram_f16_to_f32(const uint16_t *src, float *dst, size_t n);
void ram_bf16_to_f32(const uint16_t *src, float *dst, size_t n);
uint16_t ram_f32_to_f16(float f);

#endif /* RAM_INTERNAL_H */
