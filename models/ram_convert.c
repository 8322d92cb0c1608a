/*
** ram_convert.c — the `ram-convert` command: turns an official RAM++ / RAM / Tag2Text
** checkpoint (.pth) plus tag files, and optionally a CLIP text tower, into
** one sqlite-ram model file (format: models/README.md); or writes a model
** with random weights for any config (tests, benchmarks).
**
**     ram-convert ram_plus_swin_large_14m.pth -o ram_plus.ram
**     ram-convert ram_plus_swin_large_14m.pth -o ram_plus_clip.ram \
**         --clip ViT-B-16-text.safetensors --bpe bpe_simple_vocab_16e6.txt
**     ram-convert --random ram_plus_swin_l_384 -o /tmp/random.ram --seed 7
**     ram-convert --random ram_plus_swin_l_384 --trained-like -o /tmp/tl.ram
**
** HOW IT WORKS: the tag list gives num_class; the config is inferred from
** the checkpoint's shapes (core/weights.c); every needed tensor is bound by
** its official key (aliases accepted) and then streamed into the output by
** ram_model_write, straight from the mapped .pth (no second copy). --random
** streams generated values instead. Output appears atomically.
*/
#include "convert_config.h"
#include "pth_reader.h"
#include "random_trained.h"
#include "safetensors.h"
#include "tag2text.h"
#include "weights.h"
#include "wordpiece.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

struct args {
    const char *in, *out, *tags, *tags_zh, *thr, *clip, *bpe, *random;
    const char *bert_vocab;                  /* Tag2Text: vocab.txt (default models/bert_vocab.txt) */
    int dtype, verbose, quant, trained_like; /* quant: 0 none, 1 int8-v2, 2 int8 (ram_model_write_q) */
    struct ram_convert_opts opts;
    uint64_t seed;
};

static void usage(FILE *f)
{
    fprintf(f, "usage: ram-convert IN.pth -o OUT [options]\n"
               "       ram-convert --random PRESET|CONFIG.json -o OUT [--seed N] [options]\n"
               "\n"
               "Converts an official RAM++, RAM or Tag2Text checkpoint (recognize-anything .pth,\n"
               "checkpoint['model'] = state dict; optimizer/config/epoch entries are skipped)\n"
               "into one sqlite-ram model file (safetensors-based, see models/README.md).\n"
               "The kind (RAM++ if the checkpoint has reweight_scale) and every size are\n"
               "inferred from the tensor shapes; what shapes cannot tell is an option.\n"
               "\n"
               "options:\n"
               "  -o, --output OUT      the model file to write (atomically: OUT.tmp-XXXXXX, then rename)\n"
               "  --tags F              English tag list, one per line; its line count is num_class\n"
               "                        (default: ram_tag_list.txt)\n"
               "  --tags-zh F           Chinese tag list, same order (default: ram_tag_list_chinese.txt;\n"
               "                        with a custom --tags: the English names)\n"
               "  --thresholds F        per-class thresholds, one per line, exactly num_class lines\n"
               "                        (default: ram_tag_list_threshold.txt; with a custom --tags: 0.68\n"
               "                        each, the official constructor's fill value)\n"
               "  --dtype f32|f16|bf16  f16 stores the matrices and embeddings as F16 (half the size;\n"
               "                        converted back to f32 when loaded); bf16 runs every large product\n"
               "                        in bf16 (AMX or AVX512-BF16 where the CPU has them): by default\n"
               "                        the accurate mix (Swin weights as bf16 + residual, decoder with\n"
               "                        both operands split; ~1.8x faster than f32 here), with\n"
               "                        RAM_BF16=plain plain bf16 (~2.5x; Swin stored packed); default f32\n"
               "  --quant none|int8|int8-v2\n"
               "                        int8 stores the Swin linear matrices as int8 per output channel\n"
               "                        with their rounding residual (format version 3, the accurate\n"
               "                        mix: the Swin's shared rounding error corrected, the decoder in\n"
               "                        bf16); int8-v2 without the residual (version 2: faster, less\n"
               "                        accurate, the decoder in int8); default none\n"
               "  --clip CLIP           add a CLIP text tower for open-set scoring: a .pth state dict\n"
               "                        (OpenAI names: token_embedding.weight, transformer.resblocks.*,\n"
               "                        ...) or a .safetensors with OpenAI or Hugging Face CLIPModel\n"
               "                        names (text_model.*); the vision tower is ignored\n"
               "  --bpe VOCAB.txt       the uncompressed bpe_simple_vocab_16e6.txt (required with --clip)\n"
               "  --image-size N        input resolution; inferred from the attn_mask buffers when the\n"
               "                        checkpoint has them (the official models: 384)\n"
               "  --window N            Swin window; default inferred from stage 0's bias table\n"
               "  --tagger-heads N      attention heads of the tagging decoder (not inferable; default 4,\n"
               "                        the official q2l config)\n"
               "  --clip-heads N        CLIP text heads (not inferable; default: the safetensors\n"
               "                        metadata \"heads\" if present, else width / 64)\n"
               "\n"
               "Tag2Text (a checkpoint with fc.W, e.g. tag2text_swin_14m.pth):\n"
               "  default --tags: tag2text_ori_tag_list.txt (3429 names, repeated ones kept); no Chinese\n"
               "  list (the English names); thresholds 0.68 and 0.7 for person, man, woman (the\n"
               "  official constructor's) unless --thresholds; the official delete_tag_index.\n"
               "  --bert-vocab F        the bert-base-uncased vocab.txt stored in the model file\n"
               "                        (default: models/bert_vocab.txt)\n"
               "  --bert-heads N        heads of the tag encoder and the decoder (not inferable;\n"
               "                        default width / 64, 12 for the official model)\n"
               "  --random PRESET|CONFIG.json\n"
               "                        write random weights (N(0, 0.02)-like, LayerNorm weights 1,\n"
               "                        unit-norm label_embed rows) for a preset or a JSON config\n"
               "                        (keys: see models/README.md)\n"
               "  --trained-like        with --random: weights that behave like a trained model's where\n"
               "                        precision shows (the accuracy checks of int8 and bf16): the 51\n"
               "                        descriptions of a tag near one direction, the final layer fc\n"
               "                        and wordvec_proj 10x (probabilities from ~1e-5 to ~1); made in\n"
               "                        memory (1.3 GB at full size)\n"
               "  --seed N              random seed (default 1)\n"
               "  -v, --verbose         print the inferred config and the checkpoint keys not used\n"
               "  -h, --help            this text\n"
               "\n"
               "Default tag files are looked up in the executable's ../models/ directory, then in\n"
               "./models/. Presets:\n");
    const char *help;
    for (int i = 0; convert_preset(i, &help); i++) fprintf(f, "  %-21s %s\n", convert_preset(i, NULL), help);
}

static int parse_pos(const char *opt, const char *v, long max, long *out)
{
    char *end;
    long x = v ? strtol(v, &end, 10) : 0;
    if (!v || !*v || *end || x < 1 || x > max) {
        fprintf(stderr, "ram-convert: %s needs a positive integer\n", opt);
        return 0;
    }
    *out = x;
    return 1;
}

static int parse_args(int argc, char **argv, struct args *a)
{
    memset(a, 0, sizeof *a);
    a->seed = 1;
    for (int i = 1; i < argc; i++) {
        const char *s = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long x;
#define VAL(field)                                                 \
    do {                                                           \
        if (!v) {                                                  \
            fprintf(stderr, "ram-convert: %s needs a value\n", s); \
            return 0;                                              \
        }                                                          \
        field = v;                                                 \
        i++;                                                       \
    } while (0)
        if (!strcmp(s, "-h") || !strcmp(s, "--help")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(s, "-o") || !strcmp(s, "--output")) {
            VAL(a->out);
        } else if (!strcmp(s, "--tags")) {
            VAL(a->tags);
        } else if (!strcmp(s, "--tags-zh")) {
            VAL(a->tags_zh);
        } else if (!strcmp(s, "--thresholds")) {
            VAL(a->thr);
        } else if (!strcmp(s, "--clip")) {
            VAL(a->clip);
        } else if (!strcmp(s, "--bpe")) {
            VAL(a->bpe);
        } else if (!strcmp(s, "--random")) {
            VAL(a->random);
        } else if (!strcmp(s, "--bert-vocab")) {
            VAL(a->bert_vocab);
        } else if (!strcmp(s, "--bert-heads")) {
            if (!parse_pos(s, v, 1 << 20, &x)) return 0;
            i++;
            a->opts.bert_heads = (int)x;
        } else if (!strcmp(s, "--dtype")) {
            if (v && !strcmp(v, "f32"))
                a->dtype = RAM_DTYPE_F32;
            else if (v && !strcmp(v, "f16"))
                a->dtype = RAM_DTYPE_F16;
            else if (v && !strcmp(v, "bf16"))
                a->dtype = RAM_DTYPE_BF16;
            else {
                fprintf(stderr, "ram-convert: --dtype must be f32, f16 or bf16\n");
                return 0;
            }
            i++;
        } else if (!strcmp(s, "--quant")) {
            if (v && (!strcmp(v, "none") || !strcmp(v, "int8") || !strcmp(v, "int8-v2"))) {
                a->quant = !strcmp(v, "int8") ? 2 : !strcmp(v, "int8-v2");
            } else {
                fprintf(stderr, "ram-convert: --quant must be none, int8 or int8-v2\n");
                return 0;
            }
            i++;
        } else if (!strcmp(s, "--image-size") || !strcmp(s, "--window") || !strcmp(s, "--tagger-heads") ||
                   !strcmp(s, "--clip-heads")) {
            if (!parse_pos(s, v, 1 << 20, &x)) return 0;
            i++;
            if (!strcmp(s, "--image-size")) a->opts.image_size = (int)x;
            if (!strcmp(s, "--window")) a->opts.window = (int)x;
            if (!strcmp(s, "--tagger-heads")) a->opts.tagger_heads = (int)x;
            if (!strcmp(s, "--clip-heads")) a->opts.clip_heads = (int)x;
        } else if (!strcmp(s, "--seed")) {
            char *end;
            if (!v || !*v || (a->seed = strtoull(v, &end, 10), *end)) {
                fprintf(stderr, "ram-convert: --seed needs an integer\n");
                return 0;
            }
            i++;
        } else if (!strcmp(s, "--trained-like")) {
            a->trained_like = 1;
        } else if (!strcmp(s, "-v") || !strcmp(s, "--verbose")) {
            a->verbose = 1;
        } else if (s[0] == '-' && s[1]) {
            fprintf(stderr, "ram-convert: unknown option %s (see --help)\n", s);
            return 0;
        } else if (!a->in) {
            a->in = s;
        } else {
            fprintf(stderr, "ram-convert: more than one input (%s, %s)\n", a->in, s);
            return 0;
        }
#undef VAL
    }
    if (!a->out) {
        fprintf(stderr, "ram-convert: no output file (-o OUT); see --help\n");
        return 0;
    }
    if (!!a->in == !!a->random) {
        fprintf(stderr, "ram-convert: give either a checkpoint or --random (see --help)\n");
        return 0;
    }
    if (a->trained_like && !a->random) {
        fprintf(stderr, "ram-convert: --trained-like goes with --random\n");
        return 0;
    }
    if (a->clip && !a->bpe) {
        fprintf(stderr, "ram-convert: --clip needs --bpe VOCAB.txt\n");
        return 0;
    }
    return 1;
}

/* A shipped tag file: the executable's ../models/NAME, else ./models/NAME. */
static const char *default_file(const char *name, char *buf, size_t cap)
{
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n > 0) {
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) {
            *slash = 0;
            snprintf(buf, cap, "%s/../models/%s", exe, name);
            if (!access(buf, R_OK)) return buf;
        }
    }
    snprintf(buf, cap, "models/%s", name);
    if (!access(buf, R_OK)) return buf;
    return NULL;
}

/* Reads the tag files into m (file mode); NULL paths fall back to the
** shipped defaults. */
static ram_status load_vocab(struct ram_model *m, const char *en_path, const char *zh_path, const char *thr_path,
                             struct ram_error *err)
{
    char b0[PATH_MAX + 32], b1[PATH_MAX + 32], b2[PATH_MAX + 32];
    char *en = NULL, *zh = NULL, *th = NULL;
    size_t en_n = 0, zh_n = 0, th_n = 0;
    ram_status rc;
    /* A custom English list does not go with the official Chinese names or
    ** thresholds: then the English names and 0.68 (the official fill value). */
    int custom = en_path != NULL;
    if (!en_path) en_path = default_file("ram_tag_list.txt", b0, sizeof b0);
    if (!zh_path && !custom) zh_path = default_file("ram_tag_list_chinese.txt", b1, sizeof b1);
    if (!thr_path && !custom) thr_path = default_file("ram_tag_list_threshold.txt", b2, sizeof b2);
    if (!en_path || (!custom && (!zh_path || !thr_path)))
        return ram_fail(err, RAM_ERR_IO,
                        "cannot find the default tag files (models/ram_tag_list*.txt); "
                        "give --tags, --tags-zh and --thresholds");
    if ((rc = ram_read_file(en_path, 64 << 20, &en, &en_n, err))) goto cleanup;
    if (zh_path && (rc = ram_read_file(zh_path, 64 << 20, &zh, &zh_n, err))) goto cleanup;
    if (thr_path && (rc = ram_read_file(thr_path, 64 << 20, &th, &th_n, err))) goto cleanup;
    rc = ram_model_set_vocab(m, 1, en, en_n, zh, zh_n, th, th_n, NULL, err);
cleanup:
    ram_free(en);
    ram_free(zh);
    ram_free(th);
    return rc;
}

/* Tag2Text's vocabulary: the official tag list by default (no Chinese
** list: the English names), thresholds 0.68 unless given (the 0.7
** overrides come with ram_t2t_attach). */
static ram_status load_t2t_vocab(struct ram_model *m, const char *en_path, const char *zh_path, const char *thr_path,
                                 struct ram_error *err)
{
    char b0[PATH_MAX + 32];
    char *en = NULL, *zh = NULL, *th = NULL;
    size_t en_n = 0, zh_n = 0, th_n = 0;
    ram_status rc;
    if (!en_path) en_path = default_file("tag2text_ori_tag_list.txt", b0, sizeof b0);
    if (!en_path)
        return ram_fail(err, RAM_ERR_IO,
                        "cannot find the default Tag2Text tag list (models/tag2text_ori_tag_list.txt); "
                        "give --tags");
    if ((rc = ram_read_file(en_path, 64 << 20, &en, &en_n, err))) goto cleanup;
    if (zh_path && (rc = ram_read_file(zh_path, 64 << 20, &zh, &zh_n, err))) goto cleanup;
    if (thr_path && (rc = ram_read_file(thr_path, 64 << 20, &th, &th_n, err))) goto cleanup;
    rc = ram_model_set_vocab(m, 1, en, en_n, zh, zh_n, th, th_n, NULL, err);
cleanup:
    ram_free(en);
    ram_free(zh);
    ram_free(th);
    return rc;
}

/* Tag2Text: the tokenizer vocabulary, the official deleted tags and (thresholds not given) the 0.7 overrides. */
static ram_status attach_t2t(struct ram_model *m, const struct args *a, struct ram_error *err)
{
    char b0[PATH_MAX + 32];
    const char *path = a->bert_vocab ? a->bert_vocab : default_file("bert_vocab.txt", b0, sizeof b0);
    if (!path) return ram_fail(err, RAM_ERR_IO, "cannot find models/bert_vocab.txt; give --bert-vocab");
    char *text = NULL;
    size_t n = 0;
    ram_status rc = ram_read_file(path, RAM_WP_MAX_VOCAB_TEXT, &text, &n, err);
    if (!rc) rc = ram_t2t_attach(m, text, n, NULL, a->thr == NULL, err);
    ram_free(text);
    return rc;
}

static const char *kind_name(const struct ram_model *m)
{
    return m->kind == RAM_KIND_RAM_PLUS ? "RAM++" : m->kind == RAM_KIND_TAG2TEXT ? "Tag2Text" : "RAM";
}

static void print_config(FILE *f, const struct ram_model *m)
{
    fprintf(f, "kind %s, image %d, patch %d, in_chans %d, embed %d, window %d, mlp_ratio %d\n",
            m->kind == RAM_KIND_RAM_PLUS   ? "ram_plus"
            : m->kind == RAM_KIND_TAG2TEXT ? "tag2text"
                                           : "ram",
            m->swin.image_size, m->swin.patch_size, m->swin.in_chans, m->swin.embed_dim, m->swin.window,
            m->swin.mlp_ratio);
    fprintf(f, "depths");
    for (int s = 0; s < m->swin.n_stages; s++) fprintf(f, "%s%d", s ? "," : " ", m->swin.depths[s]);
    fprintf(f, ", heads");
    for (int s = 0; s < m->swin.n_stages; s++) fprintf(f, "%s%d", s ? "," : " ", m->swin.heads[s]);
    fprintf(f, "\n%d classes x %d descriptions, embedding width %d\n", m->num_class, m->des_per_class, m->embed_dim);
    fprintf(f, "tagger: hidden %d, %d layers, %d heads, intermediate %d\n", m->tagger.hidden, m->tagger.n_layers,
            m->tagger.n_heads, m->tagger.intermediate);
    if (m->has_clip)
        fprintf(f, "clip: vocab %d, context %d, width %d, %d heads, %d layers, embed %d\n", m->clip.vocab,
                m->clip.context, m->clip.width, m->clip.heads, m->clip.layers, m->clip.embed_dim);
    if (m->kind == RAM_KIND_TAG2TEXT)
        for (int i = 0; i < 2; i++) {
            const struct ram_bert_config *b = i ? &m->t2t.dec : &m->t2t.enc;
            fprintf(f, "%s: vocab %d, %d positions, hidden %d, %d layers, %d heads, intermediate %d, attends to %d\n",
                    i ? "text decoder" : "tag encoder", b->vocab, b->max_pos, b->hidden, b->layers, b->heads,
                    b->intermediate, b->encoder_width);
        }
}

/* Generated names for a random model without tag files. */
static ram_status generated_vocab(struct ram_model *m, struct ram_error *err)
{
    size_t cap = (size_t)m->num_class * 24 + 16;
    char *en = ram_malloc(cap), *zh = ram_malloc(cap);
    ram_status rc;
    if (!en || !zh) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    size_t oe = 0, oz = 0;
    for (int i = 0; i < m->num_class; i++) {
        oe += (size_t)snprintf(en + oe, cap - oe, "%stag%d", i ? "\n" : "", i);
        oz += (size_t)snprintf(zh + oz, cap - oz, "%s\xe6\xa0\x87\xe7\xad\xbe%d", i ? "\n" : "", i);
    }
    rc = ram_model_set_vocab(m, 0, en, oe, zh, oz, NULL, 0, NULL, err);
cleanup:
    ram_free(en);
    ram_free(zh);
    return rc;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static int run(const struct args *a)
{
    struct ram_error err = {{0}};
    struct ram_model *m = NULL;
    char *bpe = NULL;
    size_t bpe_n = 0;
    ram_status rc = RAM_OK;
    char digest[33] = "";
    double t0 = now();
    struct ram_pth *pth = NULL, *clip_pth = NULL;
    struct ram_st_map *clip_st = NULL;
    struct ram_tracker main_tr = {0}, clip_tr = {0};

    m = ram_calloc(1, sizeof *m);
    if (!m) {
        rc = ram_fail(&err, RAM_ERR_NOMEM, "out of memory");
        goto done;
    }
    if (a->bpe && (rc = ram_read_file(a->bpe, 64 << 20, &bpe, &bpe_n, &err))) goto done;

    if (a->random) {
        struct convert_random_cfg cfg;
        if ((rc = convert_random_config(a->random, &cfg, &err))) goto done;
        *m = cfg.cfg;
        if (a->opts.image_size) m->swin.image_size = a->opts.image_size;
        if (a->opts.window) m->swin.window = a->opts.window;
        if (a->opts.tagger_heads) m->tagger.n_heads = a->opts.tagger_heads;
        if (a->opts.clip_heads) m->clip.heads = a->opts.clip_heads;
        if (a->opts.bert_heads) m->t2t.enc.heads = m->t2t.dec.heads = a->opts.bert_heads;
        const char *te = a->tags ? a->tags : cfg.tags[0][0] ? cfg.tags[0] : NULL;
        const char *tz = a->tags_zh ? a->tags_zh : cfg.tags[1][0] ? cfg.tags[1] : NULL;
        const char *tt = a->thr ? a->thr : cfg.tags[2][0] ? cfg.tags[2] : NULL;
        if (m->kind == RAM_KIND_TAG2TEXT && (te || cfg.official_vocab))
            rc = load_t2t_vocab(m, te, tz, tt, &err);
        else if (te || tz || tt || cfg.official_vocab)
            rc = load_vocab(m, te, tz, tt, &err);
        else if (m->num_class < 1)
            rc = ram_fail(&err, RAM_ERR_ARG, "the config has no num_class and no tag list");
        else
            rc = generated_vocab(m, &err);
        if (rc) goto done;
        if ((rc = ram_model_check_config(m, &err))) goto done;
        if (m->kind == RAM_KIND_TAG2TEXT) {
            /* The layer arrays exist once the specs were made. */
            struct ram_wspec *sp = NULL;
            int ns = 0;
            if ((rc = ram_model_specs(m, &sp, &ns, &err))) goto done;
            ram_free(sp);
            if ((rc = attach_t2t(m, a, &err))) goto done;
        }
        if (m->has_clip && !bpe) {
            rc = ram_fail(&err, RAM_ERR_ARG, "this config has a CLIP text tower: give --bpe VOCAB.txt");
            goto done;
        }
        if (a->trained_like && (rc = convert_trained_like(m, a->seed, &err))) goto done;
    } else {
        if ((rc = ram_pth_open(a->in, &pth, &err))) goto done;
        /* Tag2Text (fc.W, the GroupWiseLinear) has its own default tag list. */
        struct ram_tensor_source probe = ram_pth_source(pth);
        int t2t = probe.find(probe.ctx, "fc.W") != NULL;
        if ((rc = t2t ? load_t2t_vocab(m, a->tags, a->tags_zh, a->thr, &err)
                      : load_vocab(m, a->tags, a->tags_zh, a->thr, &err)))
            goto done;
        if ((rc = ram_tracker_init(&main_tr, ram_pth_source(pth), (size_t)ram_pth_count(pth), &err))) goto done;
        struct ram_clip_join join;
        memset(&join, 0, sizeof join);
        join.main = ram_tracker_source(&main_tr);
        struct ram_convert_opts opts = a->opts;
        if (a->clip) {
            char magic[4] = {0};
            FILE *f = fopen(a->clip, "rb");
            if (!f) {
                rc = ram_fail(&err, RAM_ERR_IO, "cannot open %s", a->clip);
                goto done;
            }
            size_t got = fread(magic, 1, 4, f);
            fclose(f);
            struct ram_tensor_source cs;
            size_t count;
            if (got == 4 && !memcmp(magic, "PK\x03\x04", 4)) {
                if ((rc = ram_pth_open(a->clip, &clip_pth, &err))) goto done;
                cs = ram_pth_source(clip_pth);
                count = (size_t)ram_pth_count(clip_pth);
            } else {
                if ((rc = ram_st_open(a->clip, 0, &clip_st, &err))) goto done;
                cs = ram_st_source(&clip_st->st);
                count = (size_t)clip_st->st.n_tensors;
                const char *h = ram_st_meta(&clip_st->st, "heads");
                if (!opts.clip_heads && h && atoi(h) > 0) opts.clip_heads = atoi(h);
            }
            if ((rc = ram_tracker_init(&clip_tr, cs, count, &err))) goto done;
            join.clip = ram_tracker_source(&clip_tr);
        }
        struct ram_tensor_source src = ram_join_clip(&join);
        if ((rc = ram_model_infer_config(m, &src, m->num_class, &opts, &err))) goto done;
        if ((rc = ram_model_bind(m, &src, &err))) goto done;
        if (m->kind == RAM_KIND_TAG2TEXT && (rc = attach_t2t(m, a, &err))) goto done;
        if (a->verbose) {
            int unused = 0;
            for (int i = 0; i < ram_pth_count(pth); i++) {
                const struct ram_tensor_view *v = ram_pth_tensor(pth, i);
                if (v && !ram_tracker_seen(&main_tr, v)) {
                    if (!unused++) printf("unused keys of %s:\n", a->in);
                    printf("  %s\n", v->name);
                }
            }
            int cn = clip_pth ? ram_pth_count(clip_pth) : clip_st ? clip_st->st.n_tensors : 0;
            int cu = 0;
            for (int i = 0; i < cn; i++) {
                const struct ram_tensor_view *v = clip_pth ? ram_pth_tensor(clip_pth, i) : &clip_st->st.tensors[i];
                if (v && !ram_tracker_seen(&clip_tr, v)) {
                    if (!cu++) printf("unused keys of %s:\n", a->clip);
                    printf("  %s\n", v->name);
                }
            }
            printf("%d unused keys\n", unused + cu);
        }
    }
    if (a->verbose) print_config(stdout, m);

    struct ram_write_opts wo;
    memset(&wo, 0, sizeof wo);
    wo.dtype = a->dtype;
    wo.random = a->random != NULL && !a->trained_like; /* trained-like: generated above, written as bound */
    wo.seed = a->seed;
    wo.bpe_text = bpe;
    wo.bpe_len = bpe_n;
    if (m->has_clip && !bpe) {
        rc = ram_fail(&err, RAM_ERR_ARG, "a text tower needs --bpe VOCAB.txt");
        goto done;
    }
    if ((rc = ram_model_write_q(m, a->out, &wo, a->quant, digest, &err))) goto done;
    printf("wrote %s: %s, %d classes x %d, %s%s%s, checksum %s (%.1f s)\n", a->out, kind_name(m), m->num_class,
           m->des_per_class,
           a->dtype == RAM_DTYPE_F16    ? "f16"
           : a->dtype == RAM_DTYPE_BF16 ? "bf16"
                                        : "f32",
           a->quant == 2 ? " + int8 Swin matrices (accurate mix)"
           : a->quant    ? " + int8 Swin matrices"
                         : "",
           m->has_clip ? ", with CLIP text tower" : "", digest, now() - t0);

done:
    if (rc) fprintf(stderr, "ram-convert: %s\n", err.msg);
    ram_model_free(m);
    ram_tracker_free(&main_tr);
    ram_tracker_free(&clip_tr);
    ram_pth_close(pth);
    ram_pth_close(clip_pth);
    ram_st_close(clip_st);
    ram_free(bpe);
    return rc ? 1 : 0;
}

int main(int argc, char **argv)
{
    struct args a;
    if (!parse_args(argc, argv, &a)) return 2;
    return run(&a);
}
