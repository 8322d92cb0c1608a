/*
** bench_tag2text.c — Tag2Text per-image latency, tags only and tags +
** caption, split by stage, fp32 and with the int8 caption decoder, against
** the fp32 FMA peak the same run measures.
**
**     build/bench/bench_tag2text MODEL.ram IMAGE [RUNS]   # RUNS default 3
**
** Prints "key value" lines (read by tests/bench/run.sh, which adds them to
** its table and results.json). For 1 and 2 threads, the median over RUNS
** of: decode+preprocess, Swin-B (ram_swin_forward), the tagging head
** (logits, sigmoid, tag string), the tag encoder and the decoding (the
** cross-attention keys/values of the 40 tag states, once, then every beam
** step), their totals for tags only and for tags + caption; the same
** caption through a second copy of the model whose decoder runs in int8
** (ram_t2t_quantize_decoder, what int8 files get at load: weight-only
** int8), interleaved with the fp32 one, once with int8 alone
** (RAM_T2T_DECODE_INT8) and once verified (RAM_T2T_DECODE_VERIFIED: int8
** draft, one fp32 pass over its beam tree, fp32 steps from where it
** diverges; what int8 files use by default); and the FMA peak measured
** before each run.
**
** HOW IT WORKS. The stages are timed through the engine's own hooks: the
** trace of the tag encoder's last layer ends the tag encoder, the caption
** call's return ends decoding, and the step hook counts the steps. The
** multiply-adds of the tag encoder and of decoding are counted from the
** model's config and the steps actually taken (ours: the tag encoder on one
** row, the cross-attention keys/values once per caption); Swin-B and the
** tagging head are docs/TAG2TEXT.md section 8's counts (47.08 and 42.44
** GMAC at 384 x 384). GFLOP/s = 2 x MAC / median seconds. Decoding is
** memory-bound: dec_weight_gbs_* is the decoder weight bytes that the
** steps read (every matrix once per step) over the decoding time.
** Agreement: int8_same_caption is 1 when the int8 decoder's caption (for
** the fp32 tags) is identical to fp32's on IMAGE, and int8_same_caption_gen
** counts the same over GEN generated images. verified_same_caption(_gen)
** must be 1 (GEN): the verified decoder gives fp32's ids;
** verified_draft_steps / _held: int8 steps drafted / confirmed by fp32;
** verified_first_divergence the first step where fp32 decided otherwise
** than the draft (-1: never); _gen: the same over the GEN images (how many
** diverged at all, at which steps, drafted and confirmed steps in all).
*/
#include "bench_util.h"
#include "gemv_w8.h"
#include "model.h"
#include "ops.h"
#include "ram.h"
#include "swin.h"
#include "tag2text.h"

#include "peak.h"

#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define SWIN_B_GMAC 47.08
#define TAGGING_GMAC 42.44
enum { GEN = 4 };

struct timing {
    double enc_done; /* when the tag encoder's last layer was traced */
    int steps;
    const char *last_enc;
};

static void on_trace(void *arg, const char *name, int row0, const float *x, int rows, int cols)
{
    struct timing *t = arg;
    (void)row0, (void)x, (void)rows, (void)cols;
    if (!strcmp(name, t->last_enc)) t->enc_done = bench_now();
}

static void on_step(void *arg, int step, const float *logits, const float *logp, int n_beams, int vocab,
                    const struct ram_beam_step *rec)
{
    struct timing *t = arg;
    (void)logits, (void)logp, (void)n_beams, (void)vocab, (void)rec;
    t->steps = step + 1;
}

/* Multiply-adds of the tag encoder on one row of 40 ids over nt image tokens. */
static double tag_encoder_macs(const struct ram_model *m)
{
    const double H = m->t2t.enc.hidden, I = m->t2t.enc.intermediate, E = m->t2t.enc.encoder_width, n = RAM_T2T_TAG_LEN,
                 nt = m->n_image_tokens;
    return m->t2t.enc.layers *
           (n * (4 * H * H + 2 * H * H + 2 * H * I) + 2 * n * n * H + 2 * nt * E * H + 2 * n * nt * H);
}

/* Multiply-adds of a caption of `steps` steps: cross K/V once, then step 0
** on the prompt (one sequence), steps 1.. on 3 beams of one row. */
static double decoder_macs(const struct ram_model *m, int n_prompt, int steps)
{
    const double H = m->t2t.dec.hidden, I = m->t2t.dec.intermediate, E = m->t2t.dec.encoder_width, V = m->t2t.dec.vocab,
                 L = m->t2t.dec.layers, kv = RAM_T2T_TAG_LEN;
    double macs = L * 2 * kv * E * H;
    for (int s = 0; s < steps; s++) {
        const double rows = s ? RAM_T2T_BEAMS : n_prompt, seqs = s ? RAM_T2T_BEAMS : 1, ctx = n_prompt + s;
        macs += L * (rows * (6 * H * H + 2 * H * I) + 2 * rows * ctx * H + 2 * rows * kv * H) + seqs * (H * H + H * V);
    }
    return macs;
}

/* Bytes of the matrices one decoding step reads: per layer self Q/K/V/O,
** cross Q/O, the FFN; the LM transform and the tied word matrix. */
static double decoder_step_bytes(const struct ram_model *m, double bytes_per_weight)
{
    const double H = m->t2t.dec.hidden, I = m->t2t.dec.intermediate, V = m->t2t.dec.vocab;
    return bytes_per_weight * (m->t2t.dec.layers * (6 * H * H + 2 * H * I) + H * H + H * V);
}

/* Generated image g in normalised CHW space (smooth waves plus hashed noise). */
static void gen_image(float *chw, int S, int g)
{
    uint32_t h = 2166136261u ^ (uint32_t)g;
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                h = (h ^ (uint32_t)(x + 7 * y + 13 * c)) * 16777619u;
                double w = sin(0.013 * (g + 1) * x + 0.007 * (c + 2) * y + g) * cos(0.017 * (c + 1) * (x - y));
                chw[((size_t)c * S + y) * S + x] = (float)(1.5 * w + ((h >> 8) % 1000) * 1e-3 - 0.5);
            }
}

struct side {
    struct ram_model *m;
    struct ram_t2t_state *st;
};

static int open_side(const char *path, int int8, struct side *s, struct ram_error *err)
{
    memset(s, 0, sizeof *s);
    if (ram_model_init_from_file(path, 0, &s->m, err)) return 1;
    if (s->m->kind != RAM_KIND_TAG2TEXT) {
        snprintf(err->msg, sizeof err->msg, "%s is not a Tag2Text model", path);
        return 1;
    }
    if (int8 && ram_t2t_quantize_decoder(s->m, err)) return 1;
    return ram_t2t_state_init(s->m, &s->st, err) != RAM_OK;
}

/* Tag string of an image's embeddings (caller frees with ram_free). */
static int tag_string(struct side *s, const float *emb, float *probs, char **tags, struct ram_error *err)
{
    if (ram_t2t_tag_logits(s->st, emb, probs, NULL, err)) return 1;
    for (int c = 0; c < s->m->num_class; c++) probs[c] = ram_sigmoid(probs[c]);
    return ram_t2t_tag_string(s->m, probs, tags, err) != RAM_OK;
}

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: %s TAG2TEXT.ram IMAGE [RUNS]\n", argv[0]);
        return 2;
    }
    int runs = argc > 3 ? atoi(argv[3]) : 3;
    if (runs < 1) runs = 1;
    struct ram_error err = {{0}};
    size_t nimg = 0;
    void *img = bench_read_file(argv[2], &nimg);
    if (!img) {
        fprintf(stderr, "cannot read %s\n", argv[2]);
        return 1;
    }
    struct side f32, i8;
    double t = bench_now();
    if (open_side(argv[1], 0, &f32, &err)) goto fail;
    printf("t2t_load_s %.3f\n", bench_now() - t);
    t = bench_now();
    if (open_side(argv[1], 1, &i8, &err)) goto fail;
    printf("t2t_int8_decoder_quantize_s %.3f\n", bench_now() - t);
    const struct ram_model *m = f32.m;
    const int S = m->swin.image_size;
    float *chw = malloc(sizeof(float) * 3 * S * S), *emb = malloc(sizeof(float) * m->n_image_tokens * m->vision_width),
          *probs = malloc(sizeof(float) * m->num_class);
    enum { K_PRE, K_SWIN, K_TAG, K_ENC, K_DEC, K_TAGS, K_ALL, K_DEC8, K_ALL8, K_DECV, K_ALLV, K_PEAK, K_N };
    double *v[K_N];
    for (int k = 0; k < K_N; k++) v[k] = malloc(sizeof(double) * runs);
    if (!chw || !emb || !probs) return 1;
    char last_enc[48];
    snprintf(last_enc, sizeof last_enc, "tag_encoder_layer%d_out", m->t2t.enc.layers - 1);
    int steps = 0, steps8 = 0, same = 1, samev = 1, n_prompt = 0;
    struct ram_t2t_decode_stats dsv;
    memset(&dsv, 0, sizeof dsv);
    char *cap32 = NULL, *cap8 = NULL, *tags = NULL;
    for (int th = 1; th <= 2; th++) {
        ram_set_threads(th);
        for (int r = -1; r < runs; r++) {
            double p = peak(peak_fp32_kind(), th);
            struct timing tm = {0, 0, last_enc}, tm8 = {0, 0, last_enc}, tmv = {0, 0, last_enc};
            struct ram_t2t_hooks hk = {NULL, NULL, on_trace, &tm, on_step, &tm};
            struct ram_t2t_hooks hk8 = {NULL, NULL, on_trace, &tm8, on_step, &tm8};
            struct ram_t2t_hooks hkv = {NULL, NULL, on_trace, &tmv, on_step, &tmv};
            int32_t ids[RAM_T2T_MAX_LEN + 1], ids8[RAM_T2T_MAX_LEN + 1], idsv[RAM_T2T_MAX_LEN + 1];
            int n32 = 0, n8 = 0, nv = 0;
            ram_free(cap32), ram_free(cap8), ram_free(tags);
            cap32 = cap8 = tags = NULL;
            double t0 = bench_now();
            if (ram_image_preprocess(img, nimg, S, 0, chw, &err)) goto fail;
            double t1 = bench_now();
            if (ram_swin_forward(m, chw, ram_t2t_swin_scratch(f32.st), emb, NULL, &err)) goto fail;
            double t2 = bench_now();
            if (tag_string(&f32, emb, probs, &tags, &err)) goto fail;
            double t3 = bench_now();
            if (ram_t2t_caption(f32.st, emb, tags, strlen(tags), &hk, ids, &n32, &cap32, &err)) goto fail;
            double t4 = bench_now();
            if (ram_t2t_set_decoder(i8.st, RAM_T2T_DECODE_INT8, &err) ||
                ram_t2t_caption(i8.st, emb, tags, strlen(tags), &hk8, ids8, &n8, &cap8, &err))
                goto fail;
            double t5 = bench_now();
            if (ram_t2t_set_decoder(i8.st, RAM_T2T_DECODE_VERIFIED, &err) ||
                ram_t2t_caption(i8.st, emb, tags, strlen(tags), &hkv, idsv, &nv, NULL, &err))
                goto fail;
            double t6 = bench_now();
            ram_t2t_last_decode(i8.st, &dsv);
            same = n32 == n8 && !memcmp(ids, ids8, sizeof(int32_t) * n32);
            samev = n32 == nv && !memcmp(ids, idsv, sizeof(int32_t) * n32);
            steps = tm.steps, steps8 = tm8.steps;
            n_prompt = 4;
            if (r < 0) continue; /* warm-up: first touch of the mapped weights and the arena */
            v[K_PRE][r] = t1 - t0, v[K_SWIN][r] = t2 - t1, v[K_TAG][r] = t3 - t2;
            v[K_ENC][r] = tm.enc_done - t3, v[K_DEC][r] = t4 - tm.enc_done;
            v[K_TAGS][r] = t3 - t0, v[K_ALL][r] = t4 - t0;
            v[K_DEC8][r] = t5 - tm8.enc_done, v[K_ALL8][r] = (t3 - t0) + (t5 - t4), v[K_PEAK][r] = p;
            v[K_DECV][r] = t6 - tmv.enc_done, v[K_ALLV][r] = (t3 - t0) + (t6 - t5);
        }
        static const char *key[K_N] = {"preprocess",
                                       "swin",
                                       "tagging",
                                       "tag_encoder",
                                       "decoding",
                                       "tags_total",
                                       "caption_total",
                                       "decoding_int8",
                                       "caption_total_int8",
                                       "decoding_verified",
                                       "caption_total_verified",
                                       "fma_peak"};
        for (int k = 0; k < K_N; k++)
            printf(k == K_PEAK ? "t2t_%s_gflops_%dt %.1f\n" : "t2t_%s_s_%dt %.4f\n", key[k], th,
                   bench_median(v[k], runs));
        fflush(stdout);
    }
    const double enc = tag_encoder_macs(m), dec = decoder_macs(m, n_prompt, steps);
    const double tags_g = 2 * (SWIN_B_GMAC + TAGGING_GMAC), all_g = tags_g + 2 * (enc + dec) * 1e-9;
    printf("t2t_steps %d\nt2t_steps_int8 %d\n", steps, steps8);
    printf("t2t_gflop_tags %.2f\nt2t_gflop_caption %.2f\nt2t_gflop_tag_encoder %.3f\nt2t_gflop_decoding %.3f\n", tags_g,
           all_g, 2 * enc * 1e-9, 2 * dec * 1e-9);
    /* int8: a byte per weight and a float scale per RAM_W8_GROUP weights. */
    printf("t2t_decoder_step_mb_fp32 %.1f\nt2t_decoder_step_mb_int8 %.1f\n", decoder_step_bytes(m, 4) / 1e6,
           decoder_step_bytes(m, 1 + 4.0 / RAM_W8_GROUP) / 1e6);
    printf("t2t_tags %s\nt2t_caption %s\nt2t_caption_int8 %s\nt2t_int8_same_caption %d\n", tags, cap32, cap8, same);
    printf("t2t_verified_same_caption %d\nt2t_verified_first_divergence %d\nt2t_verified_draft_steps %d\n"
           "t2t_verified_draft_held %d\n",
           samev, dsv.first_divergence, dsv.draft_steps, dsv.draft_held);

    /* Agreement of the int8 decoder on generated images (untimed). */
    int gsame = 0, gsamev = 0, gfall = 0, gheld = 0, gdraft = 0;
    char gfrom[GEN * 12 + 1] = "";
    ram_set_threads(2);
    for (int g = 0; g < GEN; g++) {
        int32_t a[RAM_T2T_MAX_LEN + 1], b[RAM_T2T_MAX_LEN + 1], c[RAM_T2T_MAX_LEN + 1];
        int na = 0, nb = 0, nc = 0;
        char *tg = NULL;
        gen_image(chw, S, g);
        if (ram_swin_forward(m, chw, ram_t2t_swin_scratch(f32.st), emb, NULL, &err) ||
            tag_string(&f32, emb, probs, &tg, &err) ||
            ram_t2t_caption(f32.st, emb, tg, strlen(tg), NULL, a, &na, NULL, &err) ||
            ram_t2t_set_decoder(i8.st, RAM_T2T_DECODE_INT8, &err) ||
            ram_t2t_caption(i8.st, emb, tg, strlen(tg), NULL, b, &nb, NULL, &err) ||
            ram_t2t_set_decoder(i8.st, RAM_T2T_DECODE_VERIFIED, &err) ||
            ram_t2t_caption(i8.st, emb, tg, strlen(tg), NULL, c, &nc, NULL, &err))
            goto fail;
        gsame += na == nb && !memcmp(a, b, sizeof(int32_t) * na);
        gsamev += na == nc && !memcmp(a, c, sizeof(int32_t) * na);
        ram_t2t_last_decode(i8.st, &dsv);
        gfall += dsv.first_divergence >= 0;
        gheld += dsv.draft_held, gdraft += dsv.draft_steps;
        snprintf(gfrom + strlen(gfrom), sizeof gfrom - strlen(gfrom), "%s%d", g ? "," : "", dsv.first_divergence);
        ram_free(tg);
    }
    printf("t2t_int8_same_caption_gen %d\nt2t_int8_gen_images %d\n", gsame, GEN);
    printf("t2t_verified_same_caption_gen %d\nt2t_verified_diverged_gen %d\nt2t_verified_first_divergence_gen %s\n"
           "t2t_verified_draft_held_gen %d\nt2t_verified_draft_steps_gen %d\n",
           gsamev, gfall, gfrom, gheld, gdraft);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("t2t_peak_rss_bytes %ld\n", (long)ru.ru_maxrss * 1024L);
    ram_free(cap32), ram_free(cap8), ram_free(tags);
    ram_t2t_state_free(f32.st), ram_t2t_state_free(i8.st);
    ram_model_free(f32.m), ram_model_free(i8.m);
    for (int k = 0; k < K_N; k++) free(v[k]);
    free(chw), free(emb), free(probs), free(img);
    return 0;
fail:
    fprintf(stderr, "bench_tag2text: %s\n", err.msg);
    return 1;
}
