/*
** test_default_model.c — the bundled default model, measured from C on the
** held-out pictures that its training never saw: $RAM_BUILD/default.ram
** (RAM_BUILD defaults to "build"; make converts it from models/default/)
** against tests/data/heldout/heldout.json (written by
** models/train/train_default.py).
**
**     make && build/test_default_model
**
** Checks, all through the public API (core/ram.h):
**   - the vocabulary, thresholds and CLIP tokenizer ids agree with the
**     training side (ram_tokenize == the Python tokenizer's ids for every
**     description, candidate and caption);
**   - closed set: ram_tag_image on the files as stored (PNG/JPEG, various
**     sizes, so decode + resize are part of it), tag micro-F1 >= 0.95 at the
**     model's own thresholds;
**   - open set: for each picture, 10 candidate phrases ("two small blue
**     triangles" + 9 wrong ones, three of them one attribute off) encoded with
**     ram_tokenize/ram_encode_text, L2-normalised, scored by
**     ram_openset_probs; the right one must rank first in >= 90% of the
**     pictures, and in >= 70% of the "novel" pictures, whose colour x shape
**     pair never occurred in training;
**   - C vs PyTorch: the largest difference of the tag and open-set
**     probabilities from the ones PyTorch computed on the same files.
*/
#include "harness.h"
#include "ram.h"
#include "test_json.h"

#define MAX_CAND 10

/* Issue 6's quality targets, which the committed model meets (measured:
** F1 0.9708, top-1 0.965, unseen pairs 0.900; models/default/config.json). */
#define F1_TARGET 0.95
#define TOP1_TARGET 0.90
#define NOVEL_TARGET 0.70

struct text_cache {
    char **text;
    float *emb; /* n x dim */
    int n, cap, dim;
};

static const float *text_embedding(struct text_cache *c, struct ram_state *st, const struct ram_model *model,
                                   const char *s, int *tok_fail)
{
    for (int i = 0; i < c->n; i++)
        if (!strcmp(c->text[i], s)) return c->emb + (size_t)i * c->dim;
    if (c->n == c->cap) {
        c->cap = c->cap ? 2 * c->cap : 256;
        c->text = realloc(c->text, sizeof *c->text * (size_t)c->cap);
        c->emb = realloc(c->emb, sizeof *c->emb * (size_t)c->cap * c->dim);
    }
    int32_t ids[RAM_CLIP_CONTEXT];
    int n_ids = 0;
    struct ram_error err;
    float *e = c->emb + (size_t)c->n * c->dim;
    if (ram_tokenize(model, s, strlen(s), ids, &n_ids, &err) || ram_encode_text(st, ids, n_ids, e, &err)) {
        (*tok_fail)++;
        return NULL;
    }
    ram_l2_normalize(e, c->dim);
    c->text[c->n++] = strdup(s);
    return e;
}

struct f1 {
    long tp, fp, fn;
};

static double f1_of(const struct f1 *f)
{
    double d = 2.0 * f->tp + f->fp + f->fn;
    return d > 0 ? 2.0 * f->tp / d : 0;
}

int main(void)
{
    (void)check_close_npy;
    const char *b = getenv("RAM_BUILD");
    char path[1024];
    snprintf(path, sizeof path, "%s/default.ram", b ? b : "build");
    struct ram_error err;
    struct ram_model *model = NULL;
    struct ram_state *st = NULL;
    FILE *probe = fopen(path, "rb");
    FILE *ckpt = probe ? NULL : fopen("models/default/ram_plus_default.pth", "rb");
    if (ckpt) fclose(ckpt);
    if (!probe) {
        /* The bundled default model is part of the product (README): its
        ** absence is a failure, not a reason to check nothing. */
        check(0, "default.present", "%s is missing (%s): make converts it from models/default/*.pth", path,
              ckpt ? "the checkpoint is there: run make" : "and so is models/default/ram_plus_default.pth");
        return harness_exit();
    }
    if (probe) fclose(probe);
    if (ram_model_init_from_file(path, NULL, &model, &err)) {
        check(0, "default.load", "%s: %s", path, err.msg);
        return harness_exit();
    }
    check(1, "default.load", NULL);
    if (ram_state_init(model, &st, &err)) {
        check(0, "default.state", "%s", err.msg);
        ram_model_free(model);
        return harness_exit();
    }
    struct ram_model_info info;
    ram_model_get_info(model, &info);

    size_t len = 0;
    char *text = read_file(data_path("heldout/heldout.json"), &len);
    struct jv doc;
    struct jp jp = {text, text + (text ? len : 0), 0};
    if (!text) {
        check(0, "default.heldout_json", "cannot read %s", data_path("heldout/heldout.json"));
        goto done_model;
    }
    jparse(&jp, &doc);
    free(text);
    if (jp.bad) {
        check(0, "default.heldout_json", "unparsable");
        goto done_model;
    }
    const struct jv *tags = jget(&doc, "tags"), *thr = jget(&doc, "thresholds");
    const struct jv *images = jget(&doc, "images"), *tok = jget(&doc, "token_ids");
    const struct jv *isz = jget(&doc, "image_size");
    if (!tags || !thr || !images || !tok || !isz) {
        check(0, "default.heldout_json", "missing keys");
        goto done_doc;
    }

    /* ---- the vocabulary and thresholds are the ones the test data assumes */
    int vocab_ok = info.kind == RAM_KIND_RAM_PLUS && info.num_class == tags->n && info.image_size == (int)isz->num &&
                   info.has_text_encoder;
    for (int c = 0; vocab_ok && c < tags->n; c++) {
        const char *name = ram_model_tag(model, c, RAM_LANG_EN);
        vocab_ok = name && !strcmp(name, tags->items[c].str) &&
                   fabsf(ram_model_threshold(model, c) - (float)thr->items[c].num) < 1e-6f;
    }
    check(vocab_ok, "default.vocabulary", "kind %d, %d classes (json %d), size %d, text %d", info.kind, info.num_class,
          tags->n, info.image_size, info.has_text_encoder);
    if (!vocab_ok) goto done_doc;
    const char *zh = ram_model_tag(model, 0, RAM_LANG_ZH);
    check(zh && (unsigned char)zh[0] >= 0xE4, "default.chinese_names", "tag 0 in Chinese: '%s'", zh ? zh : "(null)");

    /* ---- the C tokenizer gives the ids the Python trainer used */
    int tok_bad = 0;
    for (int i = 0; i < tok->n; i++) {
        int32_t ids[RAM_CLIP_CONTEXT];
        int n_ids = 0;
        const struct jv *want = &tok->items[i];
        int same = !ram_tokenize(model, tok->keys[i], strlen(tok->keys[i]), ids, &n_ids, &err) && n_ids == want->n;
        for (int k = 0; same && k < n_ids; k++) same = ids[k] == (int32_t)want->items[k].num;
        if (!same && tok_bad++ < 3) printf("  tokenizer differs on '%s'\n", tok->keys[i]);
    }
    check(tok_bad == 0, "default.tokenizer_matches_training", "%d of %d texts differ", tok_bad, tok->n);

    /* ---- every held-out picture: closed-set tags and open-set ranking */
    int K = info.num_class, D = info.embed_dim;
    float *probs = malloc(sizeof(float) * (size_t)K);
    float *emb = malloc(sizeof(float) * (size_t)info.n_image_tokens * (size_t)D);
    float *lab = malloc(sizeof(float) * MAX_CAND * (size_t)D);
    struct text_cache cache = {0};
    cache.dim = D;
    struct f1 f[2] = {{0}};
    int right[2] = {0}, count[2] = {0}, failures = 0, tok_fail = 0;
    double maxdiff = 0, maxdiff_open = 0;
    for (int i = 0; i < images->n; i++) {
        const struct jv *im = &images->items[i];
        const struct jv *file = jget(im, "file"), *set = jget(im, "set"), *gold = jget(im, "tags");
        const struct jv *cands = jget(im, "candidates"), *ans = jget(im, "answer");
        const struct jv *pp = jget(im, "probs"), *po = jget(im, "openset_probs");
        if (!file || !set || !gold || !cands || !ans || !pp || !po || cands->n > MAX_CAND || pp->n != K ||
            po->n != cands->n) {
            failures++;
            continue;
        }
        int s = !strcmp(set->str, "novel");
        char rel[256];
        snprintf(rel, sizeof rel, "heldout/%s", file->str);
        size_t n = 0;
        void *bytes = read_file(data_path(rel), &n);
        if (!bytes || ram_tag_image(st, bytes, n, NULL, emb, probs, &err)) {
            if (failures++ < 3) printf("  %s: %s\n", rel, bytes ? err.msg : "cannot read");
            free(bytes);
            continue;
        }
        free(bytes);
        for (int c = 0; c < K; c++) {
            int is_gold = 0;
            for (int g = 0; g < gold->n; g++) is_gold |= (int)gold->items[g].num == c;
            int sel = probs[c] > ram_model_threshold(model, c);
            f[s].tp += sel && is_gold;
            f[s].fp += sel && !is_gold;
            f[s].fn += !sel && is_gold;
            double d = fabs((double)probs[c] - pp->items[c].num);
            if (d > maxdiff || isnan(d)) maxdiff = isnan(d) ? INFINITY : d;
        }
        int ok = 1;
        for (int k = 0; ok && k < cands->n; k++) {
            const float *e = text_embedding(&cache, st, model, cands->items[k].str, &tok_fail);
            if (e) memcpy(lab + (size_t)k * D, e, sizeof(float) * (size_t)D);
            ok = e != NULL;
        }
        float op[MAX_CAND];
        if (!ok || ram_openset_probs(st, emb, lab, cands->n, 1, op, &err)) {
            if (failures++ < 3) printf("  %s: open set: %s\n", rel, ok ? err.msg : "text encoding");
            continue;
        }
        int best = 0;
        for (int k = 0; k < cands->n; k++) {
            if (op[k] > op[best]) best = k;
            double d = fabs((double)op[k] - po->items[k].num);
            if (d > maxdiff_open || isnan(d)) maxdiff_open = isnan(d) ? INFINITY : d;
        }
        right[s] += best == (int)ans->num;
        count[s]++;
    }
    check(failures == 0 && tok_fail == 0 && count[0] > 0 && count[1] > 0, "default.all_pictures_run",
          "%d failures, %d text encodings failed, %d main + %d novel pictures", failures, tok_fail, count[0], count[1]);
    double f1_main = f1_of(&f[0]), f1_novel = f1_of(&f[1]);
    double top1_main = count[0] ? (double)right[0] / count[0] : 0;
    double top1_novel = count[1] ? (double)right[1] / count[1] : 0;
    printf("NOTE: default model from C: tag micro-F1 %.4f (held-out, %d pictures), %.4f (novel pairs, %d);"
           " open-set top-1 of 10: %.3f held-out, %.3f novel pairs; C vs PyTorch max |dprob| %.2g tags,"
           " %.2g open set\n",
           f1_main, count[0], f1_novel, count[1], top1_main, top1_novel, maxdiff, maxdiff_open);
    check(f1_main >= F1_TARGET, "default.tag_f1", "held-out micro-F1 %.4f < %.2f", f1_main, F1_TARGET);
    check(top1_main >= TOP1_TARGET, "default.openset_top1", "right description first in %.3f < %.2f", top1_main,
          TOP1_TARGET);
    check(top1_novel >= NOVEL_TARGET, "default.openset_novel_pairs",
          "right description first in %.3f < %.2f on unseen colour x shape pairs", top1_novel, NOVEL_TARGET);
    check(maxdiff <= 1e-4, "default.matches_pytorch", "tag probabilities differ by %.3g", maxdiff);
    check(maxdiff_open <= 1e-4, "default.openset_matches_pytorch", "open-set probabilities differ by %.3g",
          maxdiff_open);
    for (int i = 0; i < cache.n; i++) free(cache.text[i]);
    free(cache.text);
    free(cache.emb);
    free(probs);
    free(emb);
    free(lab);
done_doc:
    jfree(&doc);
done_model:
    ram_state_free(st);
    ram_model_free(model);
    return harness_exit();
}
