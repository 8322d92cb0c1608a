/*
** bench_near_dup.c — what ram_index_duplicates costs: every pair of N packed
** unit vectors (the prefilter layout of core/cache_score.h, width 512)
** compared by core/near_dup.c (blocked dequantisation + ram_gemm), against
** the plain int8 dot-product loop over the same pairs (ram_unit_cosine per
** pair), in the same run. Prints "key value" lines for tests/bench/run.sh:
**
**     near_dup_n N
**     near_dup_pairs_per_s X             blocked, one thread
**     near_dup_loop_pairs_per_s Y        the int8 loop
**     near_dup_speedup X/Y               the ratio (same run)
**     near_dup_pairs_found P             both must find the same pairs (exit 1
**     near_dup_loop_pairs_found P        otherwise)
**
**     build/bench/bench_near_dup [N]
*/
#include "bench_util.h"

#include "cache_score.h"
#include "near_dup.h"
#include "ops.h"

#include <stdint.h>
#include <string.h>

#define DIM 512

struct count {
    size_t n;
};

static int count_pair(void *arg, size_t i, size_t j)
{
    (void)i, (void)j;
    ((struct count *)arg)->n++;
    return 0;
}

int main(int argc, char **argv)
{
    size_t n = argc > 1 ? (size_t)atol(argv[1]) : 8000;
    if (n < 2) n = 2;
    size_t stride = ram_cache_unit_size(DIM);
    unsigned char *units = malloc(stride * n);
    float v[DIM];
    uint32_t r = 12345;
    /* random directions, with a near copy of every tenth vector so that
    ** there are pairs above the threshold to find */
    for (size_t i = 0; i < n; i++) {
        struct ram_error err;
        if (i % 10 == 1) {
            for (int d = 0; d < DIM; d++) {
                r = r * 1664525u + 1013904223u;
                v[d] += 0.02f * ((float)(r >> 8) / 16777216.0f - 0.5f);
            }
        } else {
            for (int d = 0; d < DIM; d++) {
                r = r * 1664525u + 1013904223u;
                v[d] = (float)(r >> 8) / 16777216.0f - 0.5f;
            }
        }
        if (ram_cache_pack_unit(v, DIM, units + i * stride, stride, &err)) {
            fprintf(stderr, "bench_near_dup: %s\n", err.msg);
            return 1;
        }
    }
    ram_ops_set_threads(1);
    const float thr = 0.91f;
    struct count blocked = {0}, loop = {0};
    struct ram_error err;
    double t0 = bench_now();
    if (ram_unit_pairs(units, n, DIM, thr, count_pair, 0, &blocked, &err)) {
        fprintf(stderr, "bench_near_dup: %s\n", err.msg);
        return 1;
    }
    double t1 = bench_now();
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++)
            if (ram_unit_cosine(units + i * stride, units + j * stride, DIM) >= thr) loop.n++;
    double t2 = bench_now();
    double pairs = (double)n * (double)(n - 1) / 2;
    printf("near_dup_n %zu\n", n);
    printf("near_dup_pairs_per_s %.3g\n", pairs / (t1 - t0));
    printf("near_dup_loop_pairs_per_s %.3g\n", pairs / (t2 - t1));
    printf("near_dup_speedup %.1f\n", (t2 - t1) / (t1 - t0));
    printf("near_dup_pairs_found %zu\n", blocked.n);
    printf("near_dup_loop_pairs_found %zu\n", loop.n);
    free(units);
    return blocked.n == loop.n ? 0 : 1;
}
