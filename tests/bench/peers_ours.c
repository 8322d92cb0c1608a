/*
** peers_ours.c — this project's engine as a worker of make bench-peers
** (tests/bench/peers.py drives it beside the official PyTorch code and ONNX
** Runtime, one line command at a time, so that their forwards interleave).
**
**     build/bench/peers_ours NAME=MODEL.ram [NAME=MODEL.ram ...]
**
** Every model (e.g. fp32=..., bf16=..., int8=...) is loaded once, with its
** own state. Commands on stdin, one answer line on stdout:
**   threads N          ram_set_threads(N)                       -> ok
**   load IMAGE         decode + preprocess IMAGE for every model -> ok
**   run NAME           one forward of NAME on the loaded image   -> time SECONDS
**   probs NAME PREFIX  same, writing PREFIX.probs.f32 (num_class floats) and
**                      PREFIX.logits.f32 -> ok
**   quit
** What is timed is the forward from the preprocessed 384x384 tensor to the
** tag probabilities (ram_encode_image + ram_tag_probs), as for the peers,
** whose preprocessing is not timed either. Errors answer "error MESSAGE".
**
** The public API returns probabilities only; a float32 probability near 0 or
** 1 no longer determines its logit (1 - p has a granularity of 6e-8), so
** for the fidelity figures the logits come from the tagger itself
** (ram_tagger_forward, the internal call ram_tag_probs makes for RAM++, on
** the same image embeddings), written beside the probabilities.
*/
#include "bench_util.h"
#include "model.h"
#include "ram.h"
#include "tagger.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

enum { MAX_MODELS = 8 };

struct worker_model {
    const char *name;
    struct ram_model *model;
    struct ram_state *st;
    struct ram_model_info info;
    float *chw, *emb, *probs, *logits, *tag_scratch;
};

static void *read_all(const char *path, size_t *n)
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

static struct worker_model *find(struct worker_model *m, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (name && strcmp(m[i].name, name) == 0) return &m[i];
    return 0;
}

static int forward(struct worker_model *w, struct ram_error *err)
{
    return ram_encode_image(w->st, w->chw, w->emb, err) != RAM_OK ||
           ram_tag_probs(w->st, w->emb, w->probs, err) != RAM_OK;
}

/* The logits of the image embeddings in w->emb (see the header comment). */
static int tag_logits(struct worker_model *w, struct ram_error *err)
{
    const struct ram_model *m = w->model;
    struct ram_tagger_scratch s = {w->tag_scratch, RAM_TAGGER_CHUNK, m->des_per_class, NULL};
    struct ram_tagger_args a = {w->emb, m->label_embed, m->num_class, m->des_per_class, NULL, NULL};
    return ram_tagger_forward(m, &a, &s, w->logits, NULL, err) != RAM_OK;
}

static int write_floats(const char *path, const float *v, int n)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(v, sizeof(float), n, f) == (size_t)n;
    if (f && fclose(f)) ok = 0;
    return ok;
}

int main(int argc, char **argv)
{
    struct worker_model m[MAX_MODELS];
    int n = 0;
    struct ram_error err;
    if (argc < 2 || argc - 1 > MAX_MODELS) {
        fprintf(stderr, "usage: peers_ours NAME=MODEL.ram [NAME=MODEL.ram ...] (at most %d)\n", MAX_MODELS);
        return 2;
    }
    double t0 = bench_now();
    for (int i = 1; i < argc; i++, n++) {
        char *eq = strchr(argv[i], '=');
        if (!eq) {
            fprintf(stderr, "peers_ours: %s is not NAME=MODEL.ram\n", argv[i]);
            return 2;
        }
        *eq = 0;
        struct worker_model *w = &m[n];
        memset(w, 0, sizeof *w);
        w->name = argv[i];
        if (ram_model_init_from_file(eq + 1, 0, &w->model, &err) != RAM_OK ||
            ram_state_init(w->model, &w->st, &err) != RAM_OK) {
            fprintf(stderr, "peers_ours: %s: %s\n", eq + 1, err.msg);
            return 1;
        }
        ram_model_get_info(w->model, &w->info);
        int S = w->info.image_size;
        w->chw = malloc(sizeof(float) * 3 * S * S);
        w->emb = malloc(sizeof(float) * w->info.n_image_tokens * w->info.embed_dim);
        w->probs = malloc(sizeof(float) * w->info.num_class);
        w->logits = malloc(sizeof(float) * w->info.num_class);
        w->tag_scratch =
            malloc(sizeof(float) * ram_tagger_scratch_floats(w->model, RAM_TAGGER_CHUNK, w->info.des_per_class));
        if (!w->chw || !w->emb || !w->probs || !w->logits || !w->tag_scratch) return 1;
    }
    printf("ready %.3f ram %s\n", bench_now() - t0, ram_version());
    fflush(stdout);

    char line[4096];
    while (fgets(line, sizeof line, stdin)) {
        char *cmd = strtok(line, " \t\r\n"), *a = strtok(0, " \t\r\n"), *b = strtok(0, " \t\r\n");
        if (!cmd) continue;
        if (strcmp(cmd, "threads") == 0 && a) {
            ram_set_threads(atoi(a));
            printf("ok\n");
        } else if (strcmp(cmd, "load") == 0 && a) {
            size_t len;
            void *img = read_all(a, &len);
            int bad = !img;
            for (int i = 0; i < n && !bad; i++)
                bad = ram_image_preprocess(img, len, m[i].info.image_size, 0, m[i].chw, &err) != RAM_OK;
            if (!img) snprintf(err.msg, sizeof err.msg, "cannot read %s", a);
            free(img);
            if (bad)
                printf("error %s\n", err.msg);
            else
                printf("ok\n");
        } else if ((strcmp(cmd, "run") == 0 || (strcmp(cmd, "probs") == 0 && b)) && find(m, n, a)) {
            struct worker_model *w = find(m, n, a);
            double t = bench_now();
            int bad = forward(w, &err);
            t = bench_now() - t;
            if (bad) {
                printf("error %s\n", err.msg);
            } else if (cmd[0] == 'r') {
                printf("time %.6f\n", t);
            } else if (tag_logits(w, &err)) {
                printf("error %s\n", err.msg);
            } else {
                char path[4200];
                int ok = 1;
                snprintf(path, sizeof path, "%s.probs.f32", b);
                ok = ok && write_floats(path, w->probs, w->info.num_class);
                if (ok) snprintf(path, sizeof path, "%s.logits.f32", b);
                ok = ok && write_floats(path, w->logits, w->info.num_class);
                if (ok)
                    printf("ok\n");
                else
                    printf("error cannot write %s\n", path);
            }
        } else if (strcmp(cmd, "quit") == 0) {
            break;
        } else {
            printf("error bad command %s\n", cmd);
        }
        fflush(stdout);
    }
    for (int i = 0; i < n; i++) {
        ram_state_free(m[i].st);
        ram_model_free(m[i].model);
        free(m[i].chw), free(m[i].emb), free(m[i].probs), free(m[i].logits), free(m[i].tag_scratch);
    }
    return 0;
}
