/*
** bench_model.c — per-image latency of the whole RAM++/RAM forward, split by
** stage, against the sgemm peak that the same run measures.
**
**     build/bench/bench_model MODEL.ram IMAGE [RUNS [INT8.ram]]   # RUNS default 5
**     build/bench/bench_model --agree F32.ram INT8.ram IMAGE...      # agreement only
**
** Prints "key value" lines (read by tests/bench/run.sh, which makes the table
** and results.json): model load time, for 1 and 2 threads (ram_set_threads)
** the median over RUNS of decode+preprocess, visual encoder (ram_encode_image),
** tagging decoder (ram_tag_probs) and their total with our kernels, the total
** with OpenBLAS's sgemm instead (latency_s_Nt_openblas: whatever kernel the
** environment makes OpenBLAS load, named by openblas_core), the process CPU
** time of our forward, and the CPU's measured fp32 FMA peak (peak.h) taken
** just before each run pair; at 2 threads, split_idle_2t: the part of the
** thread time held by our forwards' parallel products and window attention
** (ram_run_split) that a thread spent waiting for the other, and each vCPU's
** speed as the splits measured it by the end of the last run (vcpu_speed_0
** and _1, 1 = the mean), and the
** latency of the same forward with the speeds pinned equal (equal halves,
** latency_s_2t_equal_halves, run right after ours in each round); then the sgemm GFLOP/s of a large square product
** through ours and through OpenBLAS at 1 and 2 threads, and the peak RSS.
**
** HOW IT WORKS: the forward's FLOPs are not counted here; they are the fixed
** figure of docs ARCHITECTURE.md section 12 (RAM++ 324.9 GFLOP, RAM 324.4),
** so the achieved rate is FLOPs / median total, and run.sh divides it by the
** median FMA peak of the same runs (the 1-thread peak in CPU time: what an
** idle core gives; on a busy machine compare cpu_s_1t with it, as run.sh's
** fraction_of_fma_peak_1t_cpu does). The sgemm figures run through
** ram_sgemm_on on 2048^2 matrices, best of 3.
** One warm-up forward per thread count precedes the timed runs (first-touch
** of the mmapped weights and the arena would otherwise land in run 1).
**
** INT8 (the same weights converted with ram-convert --quant int8): its
** forwards are interleaved with the fp32 ones (run r of fp32, then run r of
** int8), so that the load of other processes hits both alike; the speedup is
** the ratio of the two medians. Agreement: on IMAGE and on GEN_IMAGES
** generated inputs (smooth colour waves plus hashed noise, made directly in
** the normalised CHW space), the largest |p_int8 - p_fp32| over all classes
** and the fraction of inputs whose selected tag sets (p >= threshold) are
** identical. The int8 kernel is also timed alone against sgemm on the Swin-L
** linear shapes (q8_kernel_speedup_*: sum of sgemm times / sum of int8 times).
**
** THROUGHPUT (issue 19's indexing item): per image, two images tagged one
** after the other with both threads (throughput_s_all_cores: how ram-index
** and INSERT ... SELECT run today) against two images at once, one per
** thread, each thread with its own state (throughput_s_per_core: two
** connections, or a batch split over threads), rounds interleaved, medians;
** throughput_gain_per_core = all_cores / per_core (> 1: one image per core
** is faster). The same for the int8 file (suffix _int8). Decode included
** (ram_tag_image), as an indexer pays it.
*/
#include "bench_util.h"
#include "gemm_q8.h"
#include "jobs.h"
#include "ops.h"
#include "ram.h"
#include "sgemm.h"

#include "peak.h"

#include <math.h>
#include <pthread.h>
#include <stdint.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

extern char *openblas_get_corename(void);

/* CPU seconds of the whole process (all threads): on a loaded machine the
** wall time of a 1-thread forward mostly measures the scheduler; its CPU
** time measures the work. */
static double cpu_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static double sgemm_gflops(int threads, enum ram_sgemm_path path)
{
    enum { N = 2048 };
    float *a = malloc(sizeof(float) * N * N), *b = malloc(sizeof(float) * N * N), *c = malloc(sizeof(float) * N * N);
    if (!a || !b || !c) {
        free(a), free(b), free(c);
        return 0;
    }
    for (size_t i = 0; i < (size_t)N * N; i++) a[i] = (float)(i % 17) * 0.01f, b[i] = (float)(i % 13) * 0.02f;
    ram_set_threads(threads);
    ram_sgemm_on(path, 0, 1, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N, NULL); /* warm-up */
    double best = 1e30;
    for (int k = 0; k < 3; k++) {
        double t = bench_now();
        ram_sgemm_on(path, 0, 1, N, N, N, 1.0f, a, N, b, N, 0.0f, c, N, NULL);
        t = bench_now() - t;
        if (t < best) best = t;
    }
    free(a), free(b), free(c);
    return 2.0 * N * N * (double)N / best * 1e-9;
}

enum { GEN_IMAGES = 8 };

/* Generated input g (0 .. GEN_IMAGES-1) in normalised CHW space, S x S. */
static void gen_image(float *chw, int S, int g)
{
    const double f[3] = {0.011 * (g + 1), 0.007 * (g + 2), 0.019 * (g % 3 + 1)};
    uint32_t h = 2166136261u ^ (uint32_t)g;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                h = (h ^ (uint32_t)(x + 7 * y + 13 * c)) * 16777619u;
                double wave = sin(f[c] * x + f[(c + 1) % 3] * y + g) * cos(f[(c + 2) % 3] * (x - y));
                chw[((size_t)c * S + y) * S + x] = (float)(1.5 * wave + ((h >> 8) % 1000) * 1e-3 - 0.5);
            }
}

struct pair {
    struct ram_model *m[2]; /* fp32, int8 */
    struct ram_state *st[2];
    int S, ncls, ntok, dim;
    float *emb, *probs[2];
};

/* probs[0], probs[1] of one input; 0 on success. */
static int pair_probs(struct pair *p, const float *chw, struct ram_error *err)
{
    for (int k = 0; k < 2; k++)
        if (ram_encode_image(p->st[k], chw, p->emb, err) || ram_tag_probs(p->st[k], p->emb, p->probs[k], err)) return 1;
    return 0;
}

/* Adds one input's figures: max |dp|, whether the tag sets agree, the
** classes that flipped and the largest fp32 distance to the threshold
** among them (how near the edge the flips were). */
static void agree_one(const struct pair *p, double *maxdiff, int *same, int *flips, double *flip_margin)
{
    int eq = 1;
    for (int c = 0; c < p->ncls; c++) {
        double d = fabs((double)p->probs[0][c] - p->probs[1][c]);
        if (d > *maxdiff) *maxdiff = d;
        float t = ram_model_threshold(p->m[0], c);
        if ((p->probs[0][c] >= t) != (p->probs[1][c] >= t)) {
            eq = 0, ++*flips;
            double mg = fabs((double)p->probs[0][c] - t);
            if (mg > *flip_margin) *flip_margin = mg;
        }
    }
    *same += eq;
}

static int pair_open(struct pair *p, const char *f32, const char *i8, struct ram_error *err)
{
    memset(p, 0, sizeof *p);
    const char *path[2] = {f32, i8};
    for (int k = 0; k < 2; k++)
        if (ram_model_init_from_file(path[k], 0, &p->m[k], err) || ram_state_init(p->m[k], &p->st[k], err)) return 1;
    struct ram_model_info info;
    ram_model_get_info(p->m[0], &info);
    p->S = info.image_size, p->ncls = info.num_class, p->ntok = info.n_image_tokens, p->dim = info.embed_dim;
    p->emb = malloc(sizeof(float) * p->ntok * p->dim);
    p->probs[0] = malloc(sizeof(float) * p->ncls), p->probs[1] = malloc(sizeof(float) * p->ncls);
    return !p->emb || !p->probs[0] || !p->probs[1];
}

static void pair_close(struct pair *p)
{
    for (int k = 0; k < 2; k++) ram_state_free(p->st[k]), ram_model_free(p->m[k]), free(p->probs[k]);
    free(p->emb);
}

/* Agreement over the given image files and GEN_IMAGES generated inputs;
** prints int8_max_prob_diff, int8_tagset_agreement (prefix: "" or "golden_"). */
static int agreement(struct pair *p, char **images, int n, const char *prefix, struct ram_error *err)
{
    float *chw = malloc(sizeof(float) * 3 * p->S * p->S);
    double md = 0, fm = 0;
    int same = 0, total = 0, flips = 0;
    if (!chw) return 1;
    for (int i = 0; i < n + GEN_IMAGES; i++, total++) {
        if (i < n) {
            size_t len = 0;
            void *img = bench_read_file(images[i], &len);
            int bad = !img || ram_image_preprocess(img, len, p->S, 0, chw, err);
            free(img);
            if (bad) {
                free(chw);
                return 1;
            }
        } else {
            gen_image(chw, p->S, i - n);
        }
        if (pair_probs(p, chw, err)) {
            free(chw);
            return 1;
        }
        agree_one(p, &md, &same, &flips, &fm);
    }
    printf("%sint8_max_prob_diff %.5f\n%sint8_tagset_agreement %.3f\n%sint8_agreement_inputs %d\n", prefix, md, prefix,
           (double)same / total, prefix, total);
    printf("%sint8_tag_flips %d\n%sint8_flip_max_margin %.5f\n", prefix, flips, prefix, fm);
    free(chw);
    return 0;
}

/* The int8 kernel against sgemm on Swin-L's linear shapes (tokens x in x out). */
static double kernel_speedup(int threads)
{
    static const int sh[][3] = {{9216, 192, 576},  {9216, 192, 768},  {9216, 768, 192},  {2304, 384, 1152},
                                {2304, 384, 1536}, {2304, 1536, 384}, {576, 768, 2304},  {576, 768, 3072},
                                {576, 3072, 768},  {144, 1536, 4608}, {144, 1536, 6144}, {144, 6144, 1536}};
    double tf = 0, tq = 0;
    struct ram_error err;
    ram_set_threads(threads);
    for (size_t s = 0; s < sizeof sh / sizeof sh[0]; s++) {
        int M = sh[s][0], K = sh[s][1], N = sh[s][2];
        float *x = malloc(sizeof(float) * M * K), *W = malloc(sizeof(float) * N * K),
              *y = malloc(sizeof(float) * M * N), *sc = malloc(sizeof(float) * N);
        int8_t *pk = malloc(ram_q8_packed_bytes(N, K));
        struct ram_q8_weight *q = 0;
        if (!x || !W || !y || !sc || !pk) return 0;
        for (size_t i = 0; i < (size_t)M * K; i++) x[i] = (float)((i * 2654435761u) % 1000) * 2e-3f - 1.0f;
        for (size_t i = 0; i < (size_t)N * K; i++) W[i] = (float)((i * 40503u) % 1000) * 4e-5f - 0.02f;
        if (ram_q8_quantize_pack(W, N, K, pk, sc, &err) || ram_q8_weight_new(N, K, pk, sc, &q, &err)) return 0;
        double bf = 1e30, bq = 1e30;
        for (int r = 0; r < 3; r++) {
            double t = bench_now();
            ram_linear(x, M, K, W, NULL, N, y);
            t = bench_now() - t, bf = t < bf ? t : bf;
            t = bench_now();
            ram_q8_linear(x, M, q, NULL, y, &err);
            t = bench_now() - t, bq = t < bq ? t : bq;
        }
        tf += bf, tq += bq;
        ram_q8_weight_free(q);
        free(x), free(W), free(y), free(sc), free(pk);
    }
    return tf / tq;
}

struct tp_job {
    struct ram_state *st;
    const void *img;
    size_t nimg, ncls;
    int threads, n, failed;
};

static void *tp_run(void *arg)
{
    struct tp_job *j = arg;
    struct ram_error err;
    float *probs = malloc(sizeof(float) * j->ncls);
    ram_set_threads(j->threads);
    for (int i = 0; i < j->n && probs; i++)
        if (ram_tag_image(j->st, j->img, j->nimg, 0, 0, probs, &err)) j->failed = 1;
    if (!probs) j->failed = 1;
    free(probs);
    return NULL;
}

/* Seconds per image: 2 images on the caller at 2 threads (all_cores), or
** 1 image on each of 2 threads at 1 thread each (per_core); medians of
** rounds, the two interleaved. 0 on failure. */
static int throughput(const struct ram_model *m, const void *img, size_t nimg, int rounds, const char *suffix)
{
    struct ram_error err;
    struct ram_state *st[2] = {0, 0};
    struct ram_model_info info;
    ram_model_get_info(m, &info);
    double *all = malloc(sizeof(double) * rounds), *per = malloc(sizeof(double) * rounds);
    int rc = 1;
    if (!all || !per || ram_state_init(m, &st[0], &err) || ram_state_init(m, &st[1], &err)) goto done;
    for (int r = -1; r < rounds; r++) {
        struct tp_job a = {st[0], img, nimg, (size_t)info.num_class, 2, 2, 0};
        double t0 = bench_now();
        tp_run(&a);
        double t1 = bench_now();
        struct tp_job b[2] = {{st[0], img, nimg, (size_t)info.num_class, 1, 1, 0},
                              {st[1], img, nimg, (size_t)info.num_class, 1, 1, 0}};
        pthread_t th;
        if (pthread_create(&th, NULL, tp_run, &b[1])) goto done;
        tp_run(&b[0]);
        pthread_join(th, NULL);
        double t2 = bench_now();
        if (a.failed || b[0].failed || b[1].failed) goto done;
        if (r >= 0) all[r] = (t1 - t0) / 2, per[r] = (t2 - t1) / 2;
    }
    double ma = bench_median(all, rounds), mp = bench_median(per, rounds);
    printf("throughput_s_all_cores%s %.4f\nthroughput_s_per_core%s %.4f\nthroughput_gain_per_core%s %.3f\n", suffix, ma,
           suffix, mp, suffix, ma / mp);
    fflush(stdout);
    rc = 0;
done:
    ram_state_free(st[0]), ram_state_free(st[1]);
    free(all), free(per);
    ram_set_threads(0);
    return rc;
}

static int agree_main(int argc, char **argv)
{
    struct pair p;
    struct ram_error err;
    if (argc < 4) {
        fprintf(stderr, "usage: %s --agree F32.ram INT8.ram IMAGE...\n", argv[0]);
        return 2;
    }
    if (pair_open(&p, argv[2], argv[3], &err) || agreement(&p, argv + 4, argc - 4, "golden_", &err)) {
        fprintf(stderr, "agree: %s\n", err.msg);
        return 1;
    }
    pair_close(&p);
    return 0;
}

/* fp32 and int8 forwards interleaved at th threads: medians and agreement. */
static int int8_timing(struct pair *p, const void *img, size_t nimg, int runs, int th, double *t32, double *t8,
                       double *c32, double *c8, struct ram_error *err)
{
    float *chw = malloc(sizeof(float) * 3 * p->S * p->S);
    if (!chw) return 1;
    ram_set_threads(th);
    for (int r = -1; r < runs; r++)
        for (int k = 0; k < 2; k++) {
            double t0 = bench_now(), c0 = cpu_now();
            if (ram_image_preprocess(img, nimg, p->S, 0, chw, err) || ram_encode_image(p->st[k], chw, p->emb, err) ||
                ram_tag_probs(p->st[k], p->emb, p->probs[k], err)) {
                free(chw);
                return 1;
            }
            if (r >= 0) (k ? t8 : t32)[r] = bench_now() - t0, (k ? c8 : c32)[r] = cpu_now() - c0;
        }
    free(chw);
    return 0;
}

static int int8_main(const char *f32, const char *i8, char *image, const void *img, size_t nimg, int runs)
{
    struct pair p;
    struct ram_error err;
    double *a = malloc(sizeof(double) * runs), *b = malloc(sizeof(double) * runs), *ca = malloc(sizeof(double) * runs),
           *cb = malloc(sizeof(double) * runs);
    if (!a || !b || !ca || !cb || pair_open(&p, f32, i8, &err)) goto fail;
    for (int th = 1; th <= 2; th++) {
        if (int8_timing(&p, img, nimg, runs, th, a, b, ca, cb, &err)) goto fail;
        double m32 = bench_median(a, runs), m8 = bench_median(b, runs), k32 = bench_median(ca, runs),
               k8 = bench_median(cb, runs);
        printf("latency_s_%dt_fp32_paired %.4f\nlatency_s_%dt_int8 %.4f\nspeedup_int8_%dt %.3f\n", th, m32, th, m8, th,
               m32 / m8);
        printf("cpu_s_%dt_fp32_paired %.4f\ncpu_s_%dt_int8 %.4f\nspeedup_int8_%dt_cpu %.3f\n", th, k32, th, k8, th,
               k32 / k8);
        fflush(stdout);
    }
    if (agreement(&p, &image, 1, "", &err)) goto fail;
    if (throughput(p.m[1], img, nimg, runs < 3 ? runs : 3, "_int8")) fprintf(stderr, "throughput: int8 failed\n");
    pair_close(&p);
    printf("q8_kernel_speedup_1t %.3f\n", kernel_speedup(1));
    printf("q8_kernel_speedup_2t %.3f\n", kernel_speedup(2));
    printf("q8_vnni %d\n", ram_q8_have_vnni());
    free(a), free(b), free(ca), free(cb);
    return 0;
fail:
    fprintf(stderr, "int8: %s\n", err.msg);
    free(a), free(b), free(ca), free(cb);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--agree")) return agree_main(argc, argv);
    if (argc < 3) {
        fprintf(stderr, "usage: %s MODEL.ram IMAGE [RUNS [INT8.ram]]\n", argv[0]);
        return 2;
    }
    int runs = argc > 3 ? atoi(argv[3]) : 5;
    if (runs < 1) runs = 1;
    struct ram_error err;
    size_t nimg = 0;
    void *img = bench_read_file(argv[2], &nimg);
    if (!img) {
        fprintf(stderr, "cannot read %s\n", argv[2]);
        return 1;
    }

    double t = bench_now();
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
    double load_s = bench_now() - t;
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

    /* Per thread count: each run measures the fp32 FMA peak, then a forward
    ** with our kernels, then one with OpenBLAS's (as the environment loads
    ** it), so a busy minute hits all three alike. */
    double *ob = malloc(sizeof(double) * runs), *cpu = malloc(sizeof(double) * runs),
           *pk = malloc(sizeof(double) * runs), *eq = malloc(sizeof(double) * runs);
    if (!ob || !cpu || !pk || !eq) return 1;
    enum ram_sgemm_path ours = ram_sgemm_default();
    for (int th = 1; th <= 2; th++) {
        ram_set_threads(th);
        double held = 0, busy = 0; /* thread time in our forwards' splits, and the part spent working */
        double speed[2] = {1, 1};
        for (int r = -1; r < runs; r++) {
            double p = peak(peak_fp32_kind(), th);
            ram_sgemm_force(ours);
            double held0, busy0;
            ram_jobs_split_probe(&held0, &busy0);
            double c0 = cpu_now();
            double t0 = bench_now();
            if (ram_image_preprocess(img, nimg, S, 0, chw, &err) != RAM_OK) goto fail;
            double t1 = bench_now();
            if (ram_encode_image(st, chw, emb, &err) != RAM_OK) goto fail;
            double t2 = bench_now();
            if (ram_tag_probs(st, emb, probs, &err) != RAM_OK) goto fail;
            double t3 = bench_now(), c3 = cpu_now(), held1, busy1;
            ram_jobs_split_probe(&held1, &busy1);
            if (r >= 0) held += held1 - held0, busy += busy1 - busy0;
            for (int c = 0; c < 2; c++) speed[c] = ram_jobs_speed(c); /* learnt in this forward */
            ram_sgemm_force(RAM_SGEMM_OPENBLAS);
            if (ram_image_preprocess(img, nimg, S, 0, chw, &err) != RAM_OK ||
                ram_encode_image(st, chw, emb, &err) != RAM_OK || ram_tag_probs(st, emb, probs, &err) != RAM_OK)
                goto fail;
            double t4 = bench_now();
            ram_sgemm_force(RAM_SGEMM_PATHS);
            /* the same forward with every vCPU's speed pinned equal: the equal halves of before
            ** ram_run_split, paired with ours in each round (pinning then unpinning restarts the
            ** learnt speeds, so ours relearns them in every round: if anything, against ours) */
            double t5 = t4;
            if (th > 1) {
                for (int c = 0; c < ram_jobs_cpu_count(); c++) ram_jobs_speed_set(c, 1.0);
                if (ram_image_preprocess(img, nimg, S, 0, chw, &err) != RAM_OK ||
                    ram_encode_image(st, chw, emb, &err) != RAM_OK || ram_tag_probs(st, emb, probs, &err) != RAM_OK)
                    goto fail;
                t5 = bench_now();
                ram_jobs_speed_set(-1, 0);
            }
            if (r < 0) continue; /* warm-up */
            eq[r] = t5 - t4;
            pre[r] = t1 - t0, enc[r] = t2 - t1, tag[r] = t3 - t2, tot[r] = t3 - t0;
            ob[r] = t4 - t3, cpu[r] = c3 - c0, pk[r] = p;
        }
        printf("preprocess_s_%dt %.4f\n", th, bench_median(pre, runs));
        printf("visual_s_%dt %.4f\n", th, bench_median(enc, runs));
        printf("tagging_s_%dt %.4f\n", th, bench_median(tag, runs));
        printf("latency_s_%dt %.4f\n", th, bench_median(tot, runs));
        printf("latency_s_%dt_openblas %.4f\n", th, bench_median(ob, runs));
        printf("cpu_s_%dt %.4f\n", th, bench_median(cpu, runs));
        printf("fma_peak_gflops_%dt %.1f\n", th, bench_median(pk, runs));
        if (th > 1) {
            printf("split_idle_%dt %.4f\n", th, held > 0 ? 1 - busy / held : 0.0);
            printf("latency_s_%dt_equal_halves %.4f\n", th, bench_median(eq, runs));
            for (int c = 0; c < 2; c++) printf("vcpu_speed_%d %.3f\n", c, speed[c]);
        }
        fflush(stdout);
    }
    printf("kernels %s\nopenblas_core %s\nfma_peak_kind %s\n", ram_sgemm_path_name(ours), openblas_get_corename(),
           peak_name[peak_fp32_kind()]);
    printf("sgemm_peak_gflops_1t %.1f\n", sgemm_gflops(1, ours));
    printf("sgemm_peak_gflops_2t %.1f\n", sgemm_gflops(2, ours));
    printf("sgemm_openblas_gflops_1t %.1f\n", sgemm_gflops(1, RAM_SGEMM_OPENBLAS));
    printf("sgemm_openblas_gflops_2t %.1f\n", sgemm_gflops(2, RAM_SGEMM_OPENBLAS));
    free(ob), free(cpu), free(pk), free(eq);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("peak_rss_bytes %ld\n", (long)ru.ru_maxrss * 1024L);
    ram_state_free(st);
    if (throughput(model, img, nimg, runs < 3 ? runs : 3, "")) fprintf(stderr, "throughput: failed\n");
    ram_model_free(model);
    int rc = argc > 4 ? int8_main(argv[1], argv[4], argv[2], img, nimg, runs) : 0;
    free(chw), free(emb), free(probs), free(pre), free(enc), free(tag), free(tot), free(img);
    return rc;
fail:
    fprintf(stderr, "forward: %s\n", err.msg);
    return 1;
}
