/*
** bench_util.h — the small helpers every benchmark program uses: wall and
** process-CPU clocks, the median of a sample, and reading a whole file.
** Header-only (static functions), included by the bench programs only.
*/
#ifndef RAM_BENCH_UTIL_H
#define RAM_BENCH_UTIL_H

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static inline double bench_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static inline int bench_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of v[0..n) (n >= 1); sorts v in place. */
static inline double bench_median(double *v, int n)
{
    qsort(v, n, sizeof *v, bench_cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* The whole file at path (malloc'd, the caller frees it) and its size in *n;
** NULL (and *n = 0) when it cannot be read or is empty. */
static inline void *bench_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (!f) return 0;
    fseek(f, 0, SEEK_END);
    long len = ftell(f);
    fseek(f, 0, SEEK_SET);
    void *p = len > 0 ? malloc(len) : 0;
    if (p && fread(p, 1, len, f) != (size_t)len) free(p), p = 0;
    fclose(f);
    *n = p ? (size_t)len : 0;
    return p;
}

#endif /* RAM_BENCH_UTIL_H */
