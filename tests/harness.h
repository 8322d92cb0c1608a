/*
** harness.h — the tiny test harness shared by tests/test_*.c: each check
** prints one "PASS: name" or "FAIL: name: why" line, which tests/run.sh
** counts; the binary exits non-zero when any check failed. Also a reader for
** the golden .npy files and comparison helpers.
*/
#ifndef RAM_HARNESS_H
#define RAM_HARNESS_H

#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int harness_failed_count;
static int harness_passed_count;

static void check(int ok, const char *name, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;
static void check(int ok, const char *name, const char *fmt, ...)
{
    if (ok) {
        harness_passed_count++;
        printf("PASS: %s\n", name);
    } else {
        harness_failed_count++;
        printf("FAIL: %s: ", name);
        va_list ap;
        va_start(ap, fmt);
        vprintf(fmt ? fmt : "", ap);
        va_end(ap);
        printf("\n");
    }
    fflush(stdout);
}

static int harness_exit(void) { return harness_failed_count ? 1 : 0; }

/* Path of a file under tests/data (tests run from the repository root). */
static const char *data_path(const char *rel)
{
    static char buf[8][1024];
    static int k;
    char *p = buf[k++ & 7];
    const char *root = getenv("RAM_TEST_DATA");
    snprintf(p, 1024, "%s/%s", root ? root : "tests/data", rel);
    return p;
}

static void *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *buf = malloc(n > 0 ? (size_t)n : 1);
    if (buf && n > 0 && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (len) *len = (size_t)n;
    return buf;
}

/* A loaded .npy array, converted to float (data) whatever its dtype. */
struct npy {
    int ndim;
    long shape[8];
    size_t n;
    float *data;  /* malloc'd; NULL on error */
    double *f64;  /* for '<f8' arrays, the exact values (malloc'd), else NULL */
    int32_t *i32; /* for '<i4' / '<i8' arrays (malloc'd), else NULL */
};

static void npy_free(struct npy *a)
{
    free(a->data);
    free(a->f64);
    free(a->i32);
    memset(a, 0, sizeof *a);
}

static int npy_load(const char *path, struct npy *a)
{
    memset(a, 0, sizeof *a);
    size_t len;
    unsigned char *buf = read_file(path, &len);
    if (!buf || len < 10 || memcmp(buf, "\x93NUMPY", 6)) {
        free(buf);
        return 0;
    }
    size_t hl = buf[8] | (buf[9] << 8), off = 10;
    if (buf[6] >= 2) {
        hl = buf[8] | (buf[9] << 8) | ((size_t)buf[10] << 16) | ((size_t)buf[11] << 24);
        off = 12;
    }
    char hdr[4096];
    size_t cp = hl < sizeof hdr - 1 ? hl : sizeof hdr - 1;
    memcpy(hdr, buf + off, cp);
    hdr[cp] = 0;
    const char *d = strstr(hdr, "'descr': '");
    const char *s = strstr(hdr, "'shape': (");
    if (!d || !s || strstr(hdr, "'fortran_order': True")) {
        free(buf);
        return 0;
    }
    d += 10;
    s += 10;
    a->n = 1;
    while (*s && *s != ')') {
        while (*s == ' ' || *s == ',') s++;
        if (*s == ')') break;
        long v = strtol(s, (char **)&s, 10);
        a->shape[a->ndim++] = v;
        a->n *= (size_t)v;
    }
    const unsigned char *p = buf + off + hl;
    a->data = malloc(sizeof(float) * (a->n ? a->n : 1));
    if (!strncmp(d, "<f4", 3)) {
        memcpy(a->data, p, 4 * a->n);
    } else if (!strncmp(d, "<f8", 3)) {
        a->f64 = malloc(8 * (a->n ? a->n : 1));
        memcpy(a->f64, p, 8 * a->n);
        for (size_t i = 0; i < a->n; i++) a->data[i] = (float)a->f64[i];
    } else if (!strncmp(d, "<i4", 3) || !strncmp(d, "<i8", 3)) {
        int w = d[2] == '4' ? 4 : 8;
        a->i32 = malloc(4 * (a->n ? a->n : 1));
        for (size_t i = 0; i < a->n; i++) {
            int64_t v = 0;
            memcpy(&v, p + i * w, (size_t)w);
            if (w == 4) v = (int32_t)v;
            a->i32[i] = (int32_t)v;
            a->data[i] = (float)v;
        }
    } else if (!strncmp(d, "|u1", 3)) {
        for (size_t i = 0; i < a->n; i++) a->data[i] = p[i];
    } else {
        free(buf);
        npy_free(a);
        return 0;
    }
    free(buf);
    return 1;
}

static double max_abs_diff(const float *a, const float *b, size_t n)
{
    double m = 0;
    for (size_t i = 0; i < n; i++) {
        double d = fabs((double)a[i] - (double)b[i]);
        if (d > m || isnan(d)) m = isnan(d) ? INFINITY : d;
    }
    return m;
}

/* Checks that got matches the golden .npy at path within tol (max abs). */
static void check_close_npy(const char *name, const float *got, size_t n, const char *path, double tol)
{
    struct npy g;
    if (!npy_load(path, &g)) {
        check(0, name, "cannot read %s", path);
        return;
    }
    if (g.n != n) {
        check(0, name, "size %zu, golden %zu", n, g.n);
    } else {
        double e = max_abs_diff(got, g.data, n);
        check(e <= tol, name, "max abs error %.3g > %.3g", e, tol);
    }
    npy_free(&g);
}

#endif /* RAM_HARNESS_H */
