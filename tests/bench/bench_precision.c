/*
** bench_precision.c — the fast paths (bf16, int8) against fp32 on one
** model, in one run: latency at 1 and 2 threads and agreement of the
** probabilities; and the per-layer error analysis that decides which
** layers the int8 path keeps in bf16.
**
**     build/bench/bench_precision F32.ram INT8.ram RUNS IMAGE...
**     build/bench/bench_precision --layers F32.ram IMAGE...        # int8
**     build/bench/bench_precision --layers-bf16 F32.ram IMAGE...
**
** First form: F32.ram is loaded three times, as is (fp32), with its
** large linear matrices converted to bf16 at load (ram_model_use_bf16's
** choice, what the bf16 path runs); INT8.ram is its ram-convert --quant int8
** conversion; "bf16acc" is F32.ram with the accurate bf16 mix
** (ram_layer_precision's RAM_PREC_BF16ACC: Swin bf16x2, decoder bf16x3;
** RAM_BENCH_ACC_STAGE=S: only stage S's Swin blocks in bf16x2).
** Forwards of the four are interleaved (fp32, bf16, int8, bf16acc of run r, then run
** r + 1) so that other processes' load hits all alike; medians of RUNS on
** IMAGE 1 after one warm-up each. Agreement on every IMAGE and GEN_IMAGES
** generated inputs: the largest |p - p_fp32| over all classes, the classes
** whose decision (p >= threshold) differs and the largest distance of the
** fp32 probability to the threshold among them, and how the fp32
** probabilities spread (a trained-like model reaches 1e-4 and 1).
** Second form: for each group of layers (a kind of matrix in one Swin stage,
** one decoder matrix), the model with only that group in int8 (quantized at
** load exactly as the converter does) against fp32: max |dp|, printed in
** the order of the groups, then the worst first.
** RAM_BENCH_GROUPS=swin,decoder,all (labels, comma-separated) measures
** only those groups (swin0..swin3, swin0-1, swin0-2, swin, dec0, dec1,
** decoder: whole stages or halves; swin0-2.qkv / .proj / .fc1 / .fc2 /
** .attn / .mlp: one kind of matrix in every block of stages 0-2). RAM_BENCH_REST=bf16 gives the other
** layers the bf16 path's precision instead of fp32 (mixed int8 + bf16
** configurations, still against fp32).
** --layers-bf16x2, --layers-bf16xa and --layers-bf16x3 give the group
** bf16 with the weights' residual, the activations' residual or both
** (gemm_bf16.h; usually with RAM_BENCH_REST=bf16, or bf16,swin-x2 for the
** bf16 path with the Swin blocks in bf16x2). --layers-int8x2, -int8xa and
** -int8x3 do the same with int8's split forms (gemm_q8.h), usually with
** RAM_BENCH_REST=int8 (the rest as the int8 path); RAM_BENCH_ALSO=
** "PREFIX:PREC,..." gives the layers named PREFIX... PREC besides (e.g.
** "tagging_head.:int8x3"). RAM_BENCH_TIME=N also
** times each group's model against the model with the rest's precision
** everywhere and the fp32 model (medians of N interleaved forwards, 2 threads).
** RAM_BENCH_GEN=N sets the number of generated inputs (default 6); RUNS 0
** skips the timing.
** Prints "key value" lines (tests/bench/run.sh reads them).
*/
#include "bench_util.h"
#include "gemm_bf16.h"
#include "gemm_q8.h"
#include "model.h"
#include "ops.h"
#include "ram.h"
#include "weights.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { GEN_IMAGES = 6, MAX_IMAGES = 64 };

/* Generated input g in normalised CHW space (smooth waves plus hashed noise). */
static void gen_image(float *chw, int S, int g)
{
    const double f[3] = {0.013 * (g + 1), 0.005 * (g + 3), 0.017 * (g % 3 + 1)};
    uint32_t h = 2166136261u ^ (uint32_t)(g * 7919);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                h = (h ^ (uint32_t)(x + 7 * y + 13 * c)) * 16777619u;
                double wave = sin(f[c] * x + f[(c + 1) % 3] * y + g) * cos(f[(c + 2) % 3] * (x - y));
                chw[((size_t)c * S + y) * S + x] = (float)(1.5 * wave + ((h >> 8) % 1000) * 1e-3 - 0.5);
            }
}

/* The inputs: the images given (decoded and preprocessed), then generated ones. */
struct inputs {
    int n, S;
    float *chw; /* n x 3 x S x S */
};

static int inputs_make(struct inputs *in, int S, char **files, int nf, struct ram_error *err)
{
    if (nf > MAX_IMAGES) nf = MAX_IMAGES;
    const char *g = getenv("RAM_BENCH_GEN"); /* generated inputs (default GEN_IMAGES) */
    int ngen = g && atoi(g) >= 0 && atoi(g) <= 64 ? atoi(g) : GEN_IMAGES;
    in->S = S, in->n = nf + ngen;
    const size_t one = (size_t)3 * S * S;
    in->chw = malloc(sizeof(float) * one * in->n);
    if (!in->chw) return 1;
    for (int i = 0; i < in->n; i++) {
        if (i < nf) {
            size_t len = 0;
            void *img = bench_read_file(files[i], &len);
            int bad = !img || ram_image_preprocess(img, len, S, 0, in->chw + one * i, err);
            free(img);
            if (bad) {
                fprintf(stderr, "cannot read %s\n", files[i]);
                return 1;
            }
        } else {
            gen_image(in->chw + one * i, S, i - nf);
        }
    }
    return 0;
}

struct runner {
    struct ram_model *m;
    struct ram_state *st;
    float *emb;
};

static int probs_of(struct runner *r, const float *chw, float *p, struct ram_error *err)
{
    return ram_encode_image(r->st, chw, r->emb, err) || ram_tag_probs(r->st, r->emb, p, err);
}

static int bf16_path(const char *name, void *ctx) { return ram_layer_precision(ctx, name, RAM_PREC_BF16); }

/* RAM_BENCH_ACC_STAGE=S: the accurate mix with only Swin stage S's blocks in bf16x2 (the others as
** the bf16 path), a cheaper point of the frontier. */
static int bf16_accurate(const char *name, void *ctx)
{
    const char *st = getenv("RAM_BENCH_ACC_STAGE");
    char pre[48];
    if (st && !strncmp(name, "visual_encoder.layers.", 22) && strstr(name, ".blocks.")) {
        snprintf(pre, sizeof pre, "visual_encoder.layers.%d.", atoi(st));
        if (strncmp(name, pre, strlen(pre))) return ram_layer_precision(ctx, name, RAM_PREC_BF16);
    }
    return ram_layer_precision(ctx, name, RAM_PREC_BF16ACC);
}

/* Loads path (no checksum pass) and packs its large matrices as choose says (NULL: as loaded). */
static int runner_open(struct runner *r, const char *path, ram_prec_fn choose, void *ctx, struct ram_error *err)
{
    struct ram_model_params prm = ram_model_default_params();
    prm.verify_checksum = 0;
    memset(r, 0, sizeof *r);
    if (ram_model_init_from_file(path, &prm, &r->m, err)) return 1;
    if (choose && ram_model_pack_linear(r->m, choose, ctx ? ctx : r->m, err)) return 1; /* NULL ctx: the model */
    if (ram_state_init(r->m, &r->st, err)) return 1;
    r->emb = malloc(sizeof(float) * r->m->n_image_tokens * r->m->embed_dim);
    return !r->emb;
}

static void runner_close(struct runner *r)
{
    ram_state_free(r->st);
    ram_model_free(r->m);
    free(r->emb);
}

struct agree {
    double maxdiff, flip_margin, max_logit;
    int flips, same_sets;
};

/* Adds the comparison of p (one input) with the reference q. */
static void agree_add(struct agree *a, const struct ram_model *m, const float *q, const float *p)
{
    int eq = 1;
    for (int c = 0; c < m->num_class; c++) {
        double d = fabs((double)p[c] - q[c]);
        if (d > a->maxdiff) a->maxdiff = d;
        if (q[c] > 1e-6 && q[c] < 1 - 1e-6 && p[c] > 1e-6 && p[c] < 1 - 1e-6) {
            double dl = fabs(log(p[c] / (1.0 - p[c])) - log(q[c] / (1.0 - q[c])));
            if (dl > a->max_logit) a->max_logit = dl;
        }
        float t = ram_model_threshold(m, c);
        if ((q[c] >= t) != (p[c] >= t)) {
            eq = 0, a->flips++;
            double mg = fabs((double)q[c] - t);
            if (mg > a->flip_margin) a->flip_margin = mg;
        }
    }
    a->same_sets += eq;
}

static void agree_print(const char *key, const struct agree *a, int n)
{
    printf("%s_max_prob_diff %.5f\n%s_max_logit_diff %.4f\n%s_tag_flips %d\n%s_flip_max_margin %.5f\n", key, a->maxdiff,
           key, a->max_logit, key, a->flips, key, a->flip_margin);
    printf("%s_tagset_agreement %.3f\n%s_agreement_inputs %d\n", key, (double)a->same_sets / n, key, n);
}

static int paths_main(const char *f32, const char *i8, int runs, char **files, int nf)
{
    struct ram_error err = {{0}};
    enum { NP = 5 };
    struct runner r[NP];
    const char *names[NP] = {"fp32", "bf16", "int8", "bf16acc", "int8b"};
    /* RAM_BENCH_INT8_B=FILE: a second int8 file (e.g. the previous format version) as a fifth path;
    ** RAM_BENCH_NO_BF16=1 leaves the two bf16 paths out (int8 comparisons on a busy machine);
    ** RAM_BENCH_B_UNFUSED=1 runs the fifth path's int8x2 products in two passes on AMX
    ** (ram_q8_fuse_x2(0)): with INT8_B = INT8.ram, the fused kernel against the two passes. */
    const char *i8b = getenv("RAM_BENCH_INT8_B");
    const int b_unfused = getenv("RAM_BENCH_B_UNFUSED") && atoi(getenv("RAM_BENCH_B_UNFUSED"));
    const int no_bf16 = getenv("RAM_BENCH_NO_BF16") && atoi(getenv("RAM_BENCH_NO_BF16"));
    const int on[NP] = {1, !no_bf16, 1, !no_bf16, i8b && *i8b};
    memset(r, 0, sizeof r);
    if (runner_open(&r[0], f32, NULL, NULL, &err) || (on[1] && runner_open(&r[1], f32, bf16_path, NULL, &err)) ||
        runner_open(&r[2], i8, NULL, NULL, &err) || (on[3] && runner_open(&r[3], f32, bf16_accurate, NULL, &err)) ||
        (on[4] && runner_open(&r[4], i8b, NULL, NULL, &err))) {
        fprintf(stderr, "bench_precision: %s\n", err.msg);
        return 1;
    }
    const int S = r[0].m->swin.image_size, K = r[0].m->num_class;
    struct inputs in;
    if (inputs_make(&in, S, files, nf, &err)) return 1;
    printf("bf16_level %d\nq8_vnni %d\n", ram_bf16_level(), ram_q8_have_vnni());
    float *p[NP];
    for (int k = 0; k < NP; k++) p[k] = malloc(sizeof(float) * K);
    double *t[NP];
    for (int k = 0; k < NP; k++) t[k] = malloc(sizeof(double) * runs);
    size_t nimg = 0;
    void *img = bench_read_file(files[0], &nimg);
    float *chw = malloc(sizeof(float) * 3 * S * S);
    if (!img || !chw) return 1;
    for (int th = 1; th <= 2 && runs > 0; th++) { /* RUNS 0: agreement only */
        ram_set_threads(th);
        for (int run = -1; run < runs; run++)
            for (int k = 0; k < NP; k++) {
                if (!on[k]) continue;
                ram_q8_fuse_x2(!(k == 4 && b_unfused));
                double t0 = bench_now();
                if (ram_image_preprocess(img, nimg, S, 0, chw, &err) || probs_of(&r[k], chw, p[k], &err)) {
                    fprintf(stderr, "bench_precision: %s\n", err.msg);
                    return 1;
                }
                if (run >= 0) t[k][run] = bench_now() - t0;
                ram_q8_fuse_x2(1);
            }
        double m[NP];
        for (int k = 0; k < NP; k++) {
            if (!on[k]) continue;
            m[k] = bench_median(t[k], runs);
            printf("latency_s_%dt_%s %.4f\n", th, names[k], m[k]);
        }
        for (int k = 1; k < NP; k++)
            if (on[k]) printf("speedup_%s_%dt %.3f\n", names[k], th, m[0] / m[k]);
        fflush(stdout);
    }
    ram_set_threads(2);
    struct agree a[NP];
    memset(a, 0, sizeof a);
    double pmin = 1, pmax = 0;
    long low = 0, high = 0;
    for (int i = 0; i < in.n; i++) {
        for (int k = 0; k < NP; k++)
            if (on[k] && probs_of(&r[k], in.chw + (size_t)3 * S * S * i, p[k], &err)) {
                fprintf(stderr, "bench_precision: %s\n", err.msg);
                return 1;
            }
        for (int k = 1; k < NP; k++)
            if (on[k]) agree_add(&a[k], r[0].m, p[0], p[k]);
        for (int c = 0; c < K; c++) {
            pmin = p[0][c] < pmin ? p[0][c] : pmin, pmax = p[0][c] > pmax ? p[0][c] : pmax;
            low += p[0][c]<1e-3f, high += p[0][c]> 0.9f;
        }
    }
    for (int k = 1; k < NP; k++)
        if (on[k]) agree_print(names[k], &a[k], in.n);
    printf("fp32_prob_min %.3g\nfp32_prob_max %.6f\nfp32_prob_frac_below_1e-3 %.4f\nfp32_prob_frac_above_0.9 %.4f\n",
           pmin, pmax, (double)low / ((double)K * in.n), (double)high / ((double)K * in.n));
    for (int k = 0; k < NP; k++) {
        if (on[k]) runner_close(&r[k]);
        free(p[k]), free(t[k]);
    }
    free(in.chw), free(img), free(chw);
    return 0;
}

/* ------------------------------------------------------------------ per-layer analysis */

struct group {
    const char *label;
    const char *pre, *post; /* a name is in the group if it starts with pre and contains post */
    int stages;             /* > 0: and it is in Swin stage 0..stages-1 */
};

static int in_group(const struct group *g, const char *name)
{
    static const char sw[] = "visual_encoder.layers.";
    if (g->stages && (strncmp(name, sw, sizeof sw - 1) || name[sizeof sw - 1] - '0' >= g->stages)) return 0;
    return !strncmp(name, g->pre, strlen(g->pre)) && strstr(name, g->post) != NULL;
}

/* 1 if label is one of the comma-separated names of list. */
static int label_listed(const char *list, const char *label)
{
    const size_t n = strlen(label);
    for (const char *p = list; *p;) {
        const char *e = strchr(p, ',');
        const size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == n && !strncmp(p, label, n)) return 1;
        p += len + (e != NULL);
    }
    return 0;
}

static int g_layer_prec = RAM_PREC_INT8; /* what the group under test gets */

static const char *prec_name(int p)
{
    static const char *const names[] = {"fp32",    "bf16",   "int8",   "bf16x2", "bf16xa", "bf16x3",
                                        "bf16acc", "int8x2", "int8xa", "int8x3", "int8m",  "int8xam"};
    return p >= 0 && p < (int)(sizeof names / sizeof names[0]) ? names[p] : "?";
}

static int g_rest = RAM_PREC_F32;     /* what the other layers get: fp32, or the bf16 or int8 path's choice */
static const struct ram_model *g_ref; /* the fp32 model (its config, for the int8 path's choice) */
/* And these Swin blocks' matrices in bf16x2: every stage's (RAM_BENCH_REST=bf16,swin-x2) or stage 2's (bf16,swin2-x2). */
static const char *g_rest_swin_x2;

/* RAM_BENCH_ALSO="PREFIX:PREC,...": the layers whose name starts with PREFIX
** get PREC (int8, int8x2, int8xa, int8x3, bf16...) unless they are in the
** group under test: mixes of more than one precision besides the rest's. */
static int also_prec(const char *name)
{
    const char *l = getenv("RAM_BENCH_ALSO");
    while (l && *l) {
        const char *colon = strchr(l, ':'), *end = strchr(l, ',');
        if (!colon) return -1;
        if (!end) end = l + strlen(l);
        if (!strncmp(name, l, (size_t)(colon - l)))
            for (int p = 0; p <= RAM_PREC_INT8XAM; p++)
                if (strlen(prec_name(p)) == (size_t)(end - colon - 1) &&
                    !strncmp(colon + 1, prec_name(p), end - colon - 1))
                    return p;
        l = *end ? end + 1 : end;
    }
    return -1;
}

/* The timing base: the rest's precision everywhere (RAM_BENCH_ALSO not applied). */
static const struct group nothing = {"none", "-", "-", 0};

static int group_prec(const char *name, void *ctx)
{
    if (in_group(ctx, name)) return g_layer_prec;
    const int also = ctx == &nothing ? -1 : also_prec(name);
    if (also >= 0) return also;
    if (g_rest_swin_x2 && !strncmp(name, g_rest_swin_x2, strlen(g_rest_swin_x2)) && strstr(name, ".blocks."))
        return RAM_PREC_BF16X2;
    if (g_rest == RAM_PREC_INT8) return ram_layer_precision(g_ref, name, RAM_PREC_INT8);
    return g_rest == RAM_PREC_BF16 ? ram_layer_precision(NULL, name, RAM_PREC_BF16) : RAM_PREC_F32;
}

/* Medians of n forwards of input 0 at 2 threads, base, r and the fp32 model f interleaved. */
static int time_pair(struct runner *base, struct runner *r, struct runner *f, const float *chw, float *p, int n,
                     const char *label, struct ram_error *err)
{
    double tb[64], tr[64], tf[64];
    n = n > 64 ? 64 : n;
    for (int i = -1; i < n; i++) {
        double t0 = bench_now();
        if (probs_of(base, chw, p, err)) return 1;
        double t1 = bench_now();
        if (probs_of(r, chw, p, err)) return 1;
        double t2 = bench_now();
        if (probs_of(f, chw, p, err)) return 1;
        double t3 = bench_now();
        if (i >= 0) tb[i] = t1 - t0, tr[i] = t2 - t1, tf[i] = t3 - t2;
    }
    const double mb = bench_median(tb, n), mr = bench_median(tr, n), mf = bench_median(tf, n);
    printf("layer_time_2t %-16s %.4f s, rest-only %.4f s, ratio %.3f, fp32 %.4f s = %.2fx this, %.2fx rest-only\n",
           label, mr, mb, mr / mb, mf, mf / mr, mf / mb);
    return 0;
}

static int layers_main(const char *f32, char **files, int nf)
{
    static const struct group groups[] = {
        {"swin0.qkv", "visual_encoder.layers.0.", "attn.qkv", 0},
        {"swin0.proj", "visual_encoder.layers.0.", "attn.proj", 0},
        {"swin0.fc1", "visual_encoder.layers.0.", "mlp.fc1", 0},
        {"swin0.fc2", "visual_encoder.layers.0.", "mlp.fc2", 0},
        {"swin1.qkv", "visual_encoder.layers.1.", "attn.qkv", 0},
        {"swin1.proj", "visual_encoder.layers.1.", "attn.proj", 0},
        {"swin1.fc1", "visual_encoder.layers.1.", "mlp.fc1", 0},
        {"swin1.fc2", "visual_encoder.layers.1.", "mlp.fc2", 0},
        {"swin2.qkv", "visual_encoder.layers.2.", "attn.qkv", 0},
        {"swin2.proj", "visual_encoder.layers.2.", "attn.proj", 0},
        {"swin2.fc1", "visual_encoder.layers.2.", "mlp.fc1", 0},
        {"swin2.fc2", "visual_encoder.layers.2.", "mlp.fc2", 0},
        {"swin3.qkv", "visual_encoder.layers.3.", "attn.qkv", 0},
        {"swin3.proj", "visual_encoder.layers.3.", "attn.proj", 0},
        {"swin3.fc1", "visual_encoder.layers.3.", "mlp.fc1", 0},
        {"swin3.fc2", "visual_encoder.layers.3.", "mlp.fc2", 0},
        {"swin.downsample", "visual_encoder.layers.", "downsample.reduction", 0},
        {"wordvec_proj", "wordvec_proj", "", 0},
        {"dec0.query", "tagging_head.encoder.layer.0.", "self.query", 0},
        {"dec0.attn_out", "tagging_head.encoder.layer.0.", "crossattention.output.dense", 0},
        {"dec0.ffn_in", "tagging_head.encoder.layer.0.", "intermediate.dense", 0},
        {"dec0.ffn_out", "tagging_head.encoder.layer.0.", "layer.0.output.dense", 0},
        {"dec1.query", "tagging_head.encoder.layer.1.", "self.query", 0},
        {"dec1.attn_out", "tagging_head.encoder.layer.1.", "crossattention.output.dense", 0},
        {"dec1.ffn_in", "tagging_head.encoder.layer.1.", "intermediate.dense", 0},
        {"dec1.ffn_out", "tagging_head.encoder.layer.1.", "layer.1.output.dense", 0},
        {"swin0-2.qkv", "visual_encoder.layers.", "attn.qkv", 3},
        {"swin0-2.proj", "visual_encoder.layers.", "attn.proj", 3},
        {"swin0-2.fc1", "visual_encoder.layers.", "mlp.fc1", 3},
        {"swin0-2.fc2", "visual_encoder.layers.", "mlp.fc2", 3},
        {"swin0-2.attn", "visual_encoder.layers.", "attn.", 3},
        {"swin0-2.mlp", "visual_encoder.layers.", "mlp.", 3},
        {"swin0", "visual_encoder.layers.0.", "blocks.", 0},
        {"swin1", "visual_encoder.layers.1.", "blocks.", 0},
        {"swin2", "visual_encoder.layers.2.", "blocks.", 0},
        {"swin3", "visual_encoder.layers.3.", "blocks.", 0},
        {"swin0-1", "visual_encoder.layers.", "blocks.", 2},
        {"swin0-2", "visual_encoder.layers.", "blocks.", 3},
        {"swin", "visual_encoder.", "", 0},
        {"dec0", "tagging_head.encoder.layer.0.", "", 0},
        {"dec1", "tagging_head.encoder.layer.1.", "", 0},
        {"decoder", "tagging_head.", "", 0},
        {"all", "", "", 0},
        {"none", "-", "-", 0}, /* the rest's precision alone (RAM_BENCH_REST's path as it is) */
    };
    enum { NG = sizeof groups / sizeof groups[0] };
    struct ram_error err = {{0}};
    struct runner ref;
    ram_set_threads(2);
    if (runner_open(&ref, f32, NULL, NULL, &err)) {
        fprintf(stderr, "bench_precision: %s\n", err.msg);
        return 1;
    }
    const int S = ref.m->swin.image_size, K = ref.m->num_class;
    struct inputs in;
    if (inputs_make(&in, S, files, nf, &err)) return 1;
    float *q = malloc(sizeof(float) * K * in.n), *p = malloc(sizeof(float) * K);
    for (int i = 0; i < in.n; i++)
        if (probs_of(&ref, in.chw + (size_t)3 * S * S * i, q + (size_t)K * i, &err)) return 1;
    struct agree res[NG];
    memset(res, 0, sizeof res);
    const char *only = getenv("RAM_BENCH_GROUPS"); /* e.g. "swin,decoder,all": these groups only */
    const char *rest = getenv("RAM_BENCH_REST");
    if (rest && !strncmp(rest, "bf16", 4)) g_rest = RAM_PREC_BF16;
    if (rest && !strcmp(rest, "int8")) g_rest = RAM_PREC_INT8;
    g_ref = ref.m;
    if (rest && strstr(rest, "swin-x2")) g_rest_swin_x2 = "visual_encoder.layers.";
    if (rest && strstr(rest, "swin2-x2")) g_rest_swin_x2 = "visual_encoder.layers.2.";
    /* RAM_BENCH_TIME=N: each group's model timed against the rest's precision everywhere (medians of N). */
    const int timed = getenv("RAM_BENCH_TIME") ? atoi(getenv("RAM_BENCH_TIME")) : 0;
    struct runner base_r, *base = NULL;
    if (timed > 0) {
        if (runner_open(&base_r, f32, group_prec, (void *)&nothing, &err)) {
            fprintf(stderr, "bench_precision: %s\n", err.msg);
            return 1;
        }
        base = &base_r;
    }
    for (int g = 0; g < NG; g++) {
        if (only && !label_listed(only, groups[g].label)) continue;
        struct runner r;
        if (runner_open(&r, f32, group_prec, (void *)&groups[g], &err)) {
            fprintf(stderr, "bench_precision: %s\n", err.msg);
            return 1;
        }
        for (int i = 0; i < in.n; i++) {
            if (probs_of(&r, in.chw + (size_t)3 * S * S * i, p, &err)) return 1;
            agree_add(&res[g], ref.m, q + (size_t)K * i, p);
        }
        if (timed && time_pair(base, &r, &ref, in.chw, p, timed, groups[g].label, &err)) return 1;
        runner_close(&r);
        printf("layer_%s_max_prob_diff %-16s %.5f logit %.4f flips %d\n", prec_name(g_layer_prec), groups[g].label,
               res[g].maxdiff, res[g].max_logit, res[g].flips);
        fflush(stdout);
    }
    runner_close(&ref);
    if (base) runner_close(base);
    free(q), free(p), free(in.chw);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 4 && !strcmp(argv[1], "--layers")) return layers_main(argv[2], argv + 3, argc - 3);
    if (argc >= 4 && !strcmp(argv[1], "--layers-bf16")) {
        g_layer_prec = RAM_PREC_BF16;
        return layers_main(argv[2], argv + 3, argc - 3);
    }
    static const struct {
        const char *opt;
        int prec;
    } more[] = {{"--layers-bf16x2", RAM_PREC_BF16X2}, {"--layers-bf16xa", RAM_PREC_BF16XA},
                {"--layers-bf16x3", RAM_PREC_BF16X3}, {"--layers-int8x2", RAM_PREC_INT8X2},
                {"--layers-int8xa", RAM_PREC_INT8XA}, {"--layers-int8x3", RAM_PREC_INT8X3},
                {"--layers-int8m", RAM_PREC_INT8M},   {"--layers-int8xam", RAM_PREC_INT8XAM}};
    for (size_t i = 0; i < sizeof more / sizeof more[0]; i++)
        if (argc >= 4 && !strcmp(argv[1], more[i].opt)) {
            g_layer_prec = more[i].prec;
            return layers_main(argv[2], argv + 3, argc - 3);
        }
    if (argc < 5) {
        fprintf(stderr, "usage: %s F32.ram INT8.ram RUNS IMAGE...\n       %s --layers F32.ram IMAGE...\n", argv[0],
                argv[0]);
        return 2;
    }
    int runs = atoi(argv[3]);
    return paths_main(argv[1], argv[2], runs < 0 ? 0 : runs, argv + 4, argc - 4);
}
