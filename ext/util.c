/*
** util.c — the floor of ext/: SQLite result codes for core statuses, the
** one translation of a core error into an SQL error message, message and
** copy helpers in sqlite3_malloc memory, little-endian byte order for
** blobs, JSON string literals and float display. Calls nothing else of ext/.
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int ram__rc(ram_status s)
{
    switch (s) {
    case RAM_OK: return SQLITE_OK;
    case RAM_ERR_NOMEM: return SQLITE_NOMEM;
    case RAM_ERR_TOO_BIG: return SQLITE_TOOBIG;
    case RAM_ERR_INTERRUPTED: return SQLITE_INTERRUPT;
    default: return SQLITE_ERROR;
    }
}

int ram__core_error(const char *zFunc, ram_status s, const struct ram_error *pErr, char **pzErr)
{
    int rc = ram__rc(s);
    if (rc == SQLITE_NOMEM) {
        *pzErr = 0;
    } else if (rc == SQLITE_INTERRUPT) {
        *pzErr = ram__mprintf("%s(): interrupted", zFunc);
    } else {
        *pzErr = ram__mprintf("%s(): %s", zFunc, pErr->msg);
    }
    return rc;
}

void ram__result_error(sqlite3_context *ctx, int rc, char *zErr)
{
    if (rc == SQLITE_NOMEM || !zErr) {
        sqlite3_result_error_nomem(ctx);
    } else {
        sqlite3_result_error(ctx, zErr, -1);
        if (rc != SQLITE_ERROR) sqlite3_result_error_code(ctx, rc);
    }
    sqlite3_free(zErr);
}

char *ram__memdup(const char *z, int n)
{
    char *d = sqlite3_malloc64((sqlite3_uint64)(n > 0 ? n : 0) + 1);
    if (!d) return 0;
    if (n > 0) memcpy(d, z, (size_t)n);
    d[n > 0 ? n : 0] = 0;
    return d;
}

char *ram__mprintf(const char *zFmt, ...)
{
    va_list ap;
    va_start(ap, zFmt);
    char *z = sqlite3_vmprintf(zFmt, ap);
    va_end(ap);
    return z;
}

static int host_is_le(void)
{
    const uint32_t one = 1;
    unsigned char b;
    memcpy(&b, &one, 1);
    return b == 1;
}

void ram__f32_to_le(unsigned char *pOut, const float *a, size_t n)
{
    if (host_is_le()) {
        memcpy(pOut, a, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &a[i], 4);
        ram__put_u32le(pOut + 4 * i, u);
    }
}

void ram__f32_from_le(float *a, const unsigned char *p, size_t n)
{
    if (host_is_le()) {
        memcpy(a, p, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t u = ram__get_u32le(p + 4 * i);
        memcpy(&a[i], &u, 4);
    }
}

void ram__put_u32le(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
    p[2] = (unsigned char)(v >> 16);
    p[3] = (unsigned char)(v >> 24);
}

uint32_t ram__get_u32le(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

void ram__json_str(sqlite3_str *s, const char *z)
{
    sqlite3_str_appendchar(s, 1, '"');
    for (const unsigned char *p = (const unsigned char *)(z ? z : ""); *p; p++) {
        if (*p == '"' || *p == '\\') {
            sqlite3_str_appendf(s, "\\%c", *p);
        } else if (*p < 0x20) {
            sqlite3_str_appendf(s, "\\u%04x", *p);
        } else {
            sqlite3_str_appendchar(s, 1, (char)*p);
        }
    }
    sqlite3_str_appendchar(s, 1, '"');
}

double ram__float_display(float f)
{
    char buf[32];
    for (int prec = 6; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        double d = strtod(buf, 0);
        if ((float)d == f) return d;
    }
    return (double)f;
}
