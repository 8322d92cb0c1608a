/*
** bench_model.c — per-image latency of the whole RAM++/RAM forward, split by
** stage, against the sgemm peak that the same run measures.
**
**     build/bench/bench_model MODEL.ram IMAGE [RUNS]     # RUNS default 5
**
** Prints "key value" lines (read by tests/bench/run.sh, which makes the table
** and results.json): model load time, for 1 and 2 threads (ram_set_threads)
** the median over RUNS of decode+preprocess, visual encoder (ram_encode_image),
** tagging decoder (ram_tag_probs) and their total, the sgemm GFLOP/s of a
** large square product at 1 and 2 threads, and the peak RSS.
**
** HOW IT WORKS: the forward's FLOPs are not counted here; they are the fixed
** figure of docs ARCHITECTURE.md section 12 (RAM++ 324.9 GFLOP, RAM 324.4),
** so the achieved rate is FLOPs / median total. The sgemm peak runs through
** ram_gemm (core/ops.c is the only BLAS caller) on 2048^2 matrices, best of 3.
** One warm-up forward per thread count precedes the timed runs (first-touch
** of the mmapped weights and the arena would otherwise land in run 1).
*/
#include "ops.h"
#include "ram.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static void *read_file(const char *path, size_t *n)
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

static double sgemm_gflops(int threads)
{
    enum { N = 2048 };
    float *a = malloc(sizeof(float) * N * N), *b = malloc(sizeof(float) * N * N), *c = malloc(sizeof(float) * N * N);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0;
    }
    for (size_t i = 0; i < (size_t)N * N; i++) a[i] = (float)(i % 17) * 0.01f, b[i] = (float)(i % 13) * 0.02f;
    ram_set_threads(threads);
    ram_gemm(0, 1, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N); /* warm-up */
    double best = 1e30;
    for (int k = 0; k < 3; k++) {
        double t = now();
        ram_gemm(0, 1, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N);
        t = now() - t;
        if (t < best) best = t;
    }
    free(a), free(b), free(c);
    return 2.0 * N * N * (double)N / best * 1e-9;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.ram IMAGE [RUNS]\n", argv[0]);
        return 2;
    }
    int runs = argc > 3 ? atoi(argv[3]) : 5;
    if (runs < 1) runs = 1;
    struct ram_error err;
    size_t nimg = 0;
    void *img = read_file(argv[2], &nimg);
    if (!img) {
        fprintf(stderr, "cannot read %s\n", argv[2]);
        return 1;
    }

    double t = now();
    struct ram_model *model = 0;
    if (ram_model_init_from_file(argv[1], 0, &model, &err) != RAM_OK) {
        fprintf(stderr, "load: %s\n", err.msg);
        return 1;
    }
    struct ram_state *st = 0;
    if (ram_state_init(model, &st, &err) != RAM_OK) {
        fprintf(stderr, "state: %s\n", err.msg);
        return 1;
    }
    double load_s = now() - t;
    struct ram_model_info info;
    ram_model_get_info(model, &info);
    int S = info.image_size;
    float *chw = malloc(sizeof(float) * 3 * S * S);
    float *emb = malloc(sizeof(float) * info.n_image_tokens * info.embed_dim);
    float *probs = malloc(sizeof(float) * info.num_class);
    double *pre = malloc(sizeof(double) * runs), *enc = malloc(sizeof(double) * runs),
           *tag = malloc(sizeof(double) * runs), *tot = malloc(sizeof(double) * runs);
    if (!chw || !emb || !probs || !pre || !enc || !tag || !tot) return 1;
    printf("load_s %.3f\n", load_s);
    printf("num_class %d\nimage_size %d\nruns %d\n", info.num_class, S, runs);

    for (int th = 1; th <= 2; th++) {
        ram_set_threads(th);
        for (int r = -1; r < runs; r++) {
            double t0 = now();
            if (ram_image_preprocess(img, nimg, S, 0, chw, &err) != RAM_OK) goto fail;
            double t1 = now();
            if (ram_encode_image(st, chw, emb, &err) != RAM_OK) goto fail;
            double t2 = now();
            if (ram_tag_probs(st, emb, probs, &err) != RAM_OK) goto fail;
            double t3 = now();
            if (r < 0) continue; /* warm-up */
            pre[r] = t1 - t0, enc[r] = t2 - t1, tag[r] = t3 - t2, tot[r] = t3 - t0;
        }
        printf("preprocess_s_%dt %.4f\n", th, median(pre, runs));
        printf("visual_s_%dt %.4f\n", th, median(enc, runs));
        printf("tagging_s_%dt %.4f\n", th, median(tag, runs));
        printf("latency_s_%dt %.4f\n", th, median(tot, runs));
        fflush(stdout);
    }
    printf("sgemm_peak_gflops_1t %.1f\n", sgemm_gflops(1));
    printf("sgemm_peak_gflops_2t %.1f\n", sgemm_gflops(2));
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak_rss_bytes %ld\n", (long)ru.ru_maxrss * 1024L);
    ram_state_free(st);
    ram_model_free(model);
    free(chw), free(emb), free(probs), free(pre), free(enc), free(tag), free(tot), free(img);
    return 0;
fail:
    fprintf(stderr, "forward: %s\n", err.msg);
    return 1;
}
