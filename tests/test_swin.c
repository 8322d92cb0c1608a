/*
** test_swin.c — the Swin image encoder (core/swin.c): config derivation and
** its errors, the cached bias/mask layout against the official rules
** (relative_position_index, slice-built attn_mask), the forward against the
** official golden outputs of ram_plus_tiny.pth and ram_tiny.pth (every
** traced intermediate of image 0, visual_encoder_out of all 4 images), and
** held-out configurations (other image size, window, depths, heads, widths,
** patch, mlp ratio) with random weights against a naive double-precision
** forward written here the way the official code reads (explicit roll,
** window partition, per-window attention, reverse, roll back). Also: CLS is
** the mean of the token rows, abort, unprepared model, unbound weights, OOM.
*/
#include "harness.h"

#include "internal.h"
#include "model.h"
#include "ops.h"
#include "swin.h"
#include "weights.h"

#define TOL 1e-4

/* ------------------------------------------------------------------ helpers */

static void set_config(struct ram_model *m, int image, int patch, int embed, int window, int n_stages,
                       const int *depths, const int *heads, int mlp)
{
    memset(m, 0, sizeof *m);
    struct ram_swin_config *c = &m->swin;
    c->image_size = image;
    c->patch_size = patch;
    c->in_chans = 3;
    c->embed_dim = embed;
    c->window = window;
    c->n_stages = n_stages;
    c->mlp_ratio = mlp;
    c->eps = 1e-5f;
    for (int s = 0; s < n_stages; s++) {
        c->depths[s] = depths[s];
        c->heads[s] = heads[s];
    }
}

static int stages_are(const struct ram_model *m, const int *res, const int *win, const int *shift)
{
    for (int s = 0; s < m->swin.n_stages; s++)
        if (m->stage[s].res != res[s] || m->stage[s].window != win[s] || m->stage[s].shift != shift[s]) return 0;
    return 1;
}

/* ------------------------------------------------------------------ derive */

static void test_derive_ok(void)
{
    struct ram_model m;
    struct ram_error err = {{0}};
    static const int d2[4] = {2, 2, 2, 2}, hg[4] = {2, 2, 4, 8};
    set_config(&m, 128, 4, 16, 4, 4, d2, hg, 4);
    ram_status rc = ram_swin_derive(&m, &err);
    static const int r1[4] = {32, 16, 8, 4}, w1[4] = {4, 4, 4, 4}, s1[4] = {2, 2, 2, 0};
    check(!rc && stages_are(&m, r1, w1, s1) && m.vision_width == 128 && m.n_image_tokens == 17 &&
              m.stage[3].dim == 128 && m.stage[3].heads == 8,
          "derive: golden config", "rc %d %s", rc, err.msg);

    static const int dl[4] = {2, 2, 18, 2}, hl[4] = {6, 12, 24, 48};
    set_config(&m, 384, 4, 192, 12, 4, dl, hl, 4);
    rc = ram_swin_derive(&m, &err);
    static const int r2[4] = {96, 48, 24, 12}, w2[4] = {12, 12, 12, 12}, s2[4] = {6, 6, 6, 0};
    check(!rc && stages_are(&m, r2, w2, s2) && m.vision_width == 1536 && m.n_image_tokens == 145, "derive: Swin-L 384",
          "rc %d %s", rc, err.msg);

    set_config(&m, 96, 4, 8, 6, 4, d2, hg, 4);
    rc = ram_swin_derive(&m, &err);
    static const int r3[4] = {24, 12, 6, 3}, w3[4] = {6, 6, 6, 3}, s3[4] = {3, 3, 0, 0};
    check(!rc && stages_are(&m, r3, w3, s3) && m.vision_width == 64 && m.n_image_tokens == 10,
          "derive: image 96 window 6 (res 24,12,6,3)", "rc %d %s", rc, err.msg);

    set_config(&m, 128, 4, 16, 8, 4, d2, hg, 4);
    rc = ram_swin_derive(&m, &err);
    static const int r4[4] = {32, 16, 8, 4}, w4[4] = {8, 8, 8, 4}, s4[4] = {4, 4, 0, 0};
    check(!rc && stages_are(&m, r4, w4, s4), "derive: image 128 window 8 (last window 4)", "rc %d %s", rc, err.msg);

    static const int d1[1] = {1}, h1[1] = {3};
    set_config(&m, 20, 4, 6, 7, 1, d1, h1, 2);
    rc = ram_swin_derive(&m, &err);
    check(!rc && m.stage[0].res == 5 && m.stage[0].window == 5 && !m.stage[0].shift && m.vision_width == 6 &&
              m.n_image_tokens == 26,
          "derive: one stage, odd resolution, window > res", "rc %d %s", rc, err.msg);
}

struct bad_case {
    const char *name;
    int image, patch, embed, window, n_stages, mlp;
    int depths[RAM_MAX_STAGES + 1], heads[RAM_MAX_STAGES + 1];
    ram_status want;
};

static void test_derive_errors(void)
{
    static const struct bad_case cases[] = {
        {"image not a multiple of patch", 130, 4, 16, 4, 4, 4, {2, 2, 2, 2}, {2, 2, 4, 8}, RAM_ERR_FORMAT},
        {"res not a multiple of window", 120, 4, 16, 7, 4, 4, {2, 2, 2, 2}, {2, 2, 4, 8}, RAM_ERR_FORMAT},
        {"odd res before a merge", 100, 4, 16, 5, 4, 4, {2, 2, 2, 2}, {2, 2, 4, 8}, RAM_ERR_FORMAT},
        {"heads do not divide dim", 128, 4, 10, 4, 4, 4, {2, 2, 2, 2}, {3, 2, 4, 8}, RAM_ERR_FORMAT},
        {"heads do not divide a later dim", 128, 4, 16, 4, 4, 4, {2, 2, 2, 2}, {2, 2, 3, 8}, RAM_ERR_FORMAT},
        {"too many stages",
         512,
         2,
         4,
         1,
         RAM_MAX_STAGES + 1,
         4,
         {1, 1, 1, 1, 1, 1, 1, 1, 1},
         {1, 1, 1, 1, 1, 1, 1, 1, 1},
         RAM_ERR_FORMAT},
        {"no stages", 128, 4, 16, 4, 0, 4, {0}, {0}, RAM_ERR_FORMAT},
        {"zero window", 128, 4, 16, 0, 4, 4, {2, 2, 2, 2}, {2, 2, 4, 8}, RAM_ERR_FORMAT},
        {"zero patch", 128, 0, 16, 4, 4, 4, {2, 2, 2, 2}, {2, 2, 4, 8}, RAM_ERR_FORMAT},
        {"negative image", -128, 4, 16, 4, 4, 4, {2, 2, 2, 2}, {2, 2, 4, 8}, RAM_ERR_FORMAT},
        {"zero depth", 128, 4, 16, 4, 4, 4, {2, 0, 2, 2}, {2, 2, 4, 8}, RAM_ERR_FORMAT},
        {"zero heads", 128, 4, 16, 4, 4, 4, {2, 2, 2, 2}, {2, 0, 4, 8}, RAM_ERR_FORMAT},
        {"zero mlp ratio", 128, 4, 16, 4, 4, 0, {2, 2, 2, 2}, {2, 2, 4, 8}, RAM_ERR_FORMAT},
        {"absurd width", 128, 4, 1 << 28, 4, 4, 4, {2, 2, 2, 2}, {1, 1, 1, 1}, RAM_ERR_TOO_BIG},
        {"absurd image", 1 << 24, 1, 16, 4, 1, 4, {2}, {2}, RAM_ERR_TOO_BIG},
        {"activations over INT_MAX", 16384, 1, 4096, 4, 1, 4, {1}, {1}, RAM_ERR_TOO_BIG},
        {"window too large for the score buffer", 4096, 1, 16, 1024, 1, 4, {1}, {1}, RAM_ERR_TOO_BIG},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const struct bad_case *k = &cases[i];
        struct ram_model m;
        struct ram_error err = {{0}};
        int n = k->n_stages < 0 ? 0 : k->n_stages > RAM_MAX_STAGES ? RAM_MAX_STAGES : k->n_stages;
        set_config(&m, k->image, k->patch, k->embed, k->window, n, k->depths, k->heads, k->mlp);
        m.swin.n_stages = k->n_stages;
        ram_status rc = ram_swin_derive(&m, &err);
        char name[128];
        snprintf(name, sizeof name, "derive error: %s", k->name);
        check(rc == k->want && err.msg[0] && !strncmp(err.msg, "swin: ", 6), name, "rc %d (want %d) \"%s\"", rc,
              k->want, err.msg);
    }
}

/* ------------------------------------------------------------------ layout */

static void test_rel_index(void)
{
    /* The official relative_position_index for a 2 x 2 window. */
    static const int want2[4][4] = {{4, 3, 1, 0}, {5, 4, 2, 1}, {7, 6, 4, 3}, {8, 7, 5, 4}};
    int ok = 1;
    for (int a = 0; a < 4; a++)
        for (int b = 0; b < 4; b++) ok &= ram_swin_rel_index(a, b, 2) == want2[a][b];
    check(ok, "relative index: 2x2 window table", " ");
    /* w = 7: coords differences map one-to-one onto the (2w-1)^2 rows. */
    int w = 7, N = w * w, seen[169] = {0};
    ok = 1;
    for (int a = 0; a < N; a++)
        for (int b = 0; b < N; b++) {
            int i = ram_swin_rel_index(a, b, w);
            int dy = a / w - b / w, dx = a % w - b % w;
            ok &= i >= 0 && i < 169 && i == (dy + 6) * 13 + dx + 6;
            if (i >= 0 && i < 169) seen[i] = 1;
        }
    for (int i = 0; i < 169; i++) ok &= seen[i];
    check(ok, "relative index: w=7 covers all 169 rows, row = (dy+6)*13 + dx+6", " ");
}

/* Region ids the way the official code builds img_mask: three row slices
** [0:-w], [-w:-s], [-s:] times the same column slices, numbered in order. */
static void official_regions(int *id, int R, int w, int s)
{
    int lo[3] = {0, R - w, R - s}, hi[3] = {R - w, R - s, R}, cnt = 0;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 3; j++, cnt++)
            for (int y = lo[i]; y < hi[i]; y++)
                for (int x = lo[j]; x < hi[j]; x++) id[y * R + x] = cnt;
}

static void test_regions(void)
{
    static const int cfg[][3] = {{32, 4, 2}, {12, 6, 3}, {6, 3, 1}, {96, 12, 6}, {16, 8, 4}};
    int ok = 1;
    for (size_t k = 0; k < sizeof cfg / sizeof cfg[0]; k++) {
        int R = cfg[k][0], w = cfg[k][1], s = cfg[k][2];
        int *id = malloc(sizeof(int) * R * R);
        official_regions(id, R, w, s);
        for (int y = 0; y < R; y++)
            for (int x = 0; x < R; x++) ok &= ram_swin_region(y, x, R, w, s) == id[y * R + x];
        free(id);
    }
    check(ok, "shift mask regions match the official slicing", " ");
}

/* ------------------------------------------------------------------ random models */

/* A model filled by hand: config, derived stages, random weights from one pool. */
struct hand_model {
    struct ram_model m;
    float *pool;
    size_t used, cap;
    uint64_t rng;
};

static double urand(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return (double)(*s >> 11) * (1.0 / 9007199254740992.0);
}

static float nrand(uint64_t *s, float sd)
{
    double u = 0;
    for (int i = 0; i < 4; i++) u += urand(s) - 0.5; /* variance 1/3 */
    return (float)(u * 1.7320508 * sd);
}

static const float *take(struct hand_model *h, size_t n, float mean, float sd)
{
    if (h->used + n > h->cap) return NULL;
    float *p = h->pool + h->used;
    for (size_t i = 0; i < n; i++) p[i] = mean + nrand(&h->rng, sd);
    h->used += n;
    return p;
}

static size_t swin_param_floats(const struct ram_model *m)
{
    const struct ram_swin_config *c = &m->swin;
    size_t E = (size_t)c->embed_dim, n = E * c->in_chans * c->patch_size * c->patch_size + 3 * E;
    for (int s = 0; s < c->n_stages; s++) {
        const struct ram_swin_stage_info *st = &m->stage[s];
        size_t C = (size_t)st->dim, hid = (size_t)c->mlp_ratio * C, t = 2 * (size_t)st->window - 1;
        n += (size_t)c->depths[s] * (4 * C + t * t * st->heads + 3 * C * C + 3 * C + C * C + C + 2 * hid * C + hid + C);
        if (s + 1 < c->n_stages) n += 8 * C + 8 * C * C;
    }
    return n + 2 * (size_t)m->vision_width;
}

static int hand_model_init(struct hand_model *h, int image, int patch, int embed, int window, int n_stages,
                           const int *depths, const int *heads, int mlp, uint64_t seed)
{
    struct ram_error err = {{0}};
    memset(h, 0, sizeof *h);
    set_config(&h->m, image, patch, embed, window, n_stages, depths, heads, mlp);
    if (ram_swin_derive(&h->m, &err)) return 0;
    h->cap = swin_param_floats(&h->m);
    h->pool = malloc(sizeof(float) * h->cap);
    h->rng = seed;
    struct ram_swin_w *w = &h->m.swin_w;
    int E = embed, K = 3 * patch * patch;
    w->patch_w = take(h, (size_t)E * K, 0, 0.3f);
    w->patch_b = take(h, E, 0, 0.1f);
    w->patch_norm_w = take(h, E, 1, 0.1f);
    w->patch_norm_b = take(h, E, 0, 0.1f);
    for (int s = 0; s < n_stages; s++) {
        const struct ram_swin_stage_info *st = &h->m.stage[s];
        size_t C = (size_t)st->dim, hid = (size_t)mlp * C, t = 2 * (size_t)st->window - 1;
        float sd = (float)(1.0 / sqrt((double)C));
        w->stages[s].blocks = calloc((size_t)depths[s], sizeof(struct ram_swin_block_w));
        for (int b = 0; b < depths[s]; b++) {
            struct ram_swin_block_w *k = &w->stages[s].blocks[b];
            k->norm1_w = take(h, C, 1, 0.1f);
            k->norm1_b = take(h, C, 0, 0.1f);
            k->rpb_table = take(h, t * t * st->heads, 0, 1.0f);
            k->qkv_w = take(h, 3 * C * C, 0, sd);
            k->qkv_b = take(h, 3 * C, 0, 0.1f);
            k->proj_w = take(h, C * C, 0, sd);
            k->proj_b = take(h, C, 0, 0.1f);
            k->norm2_w = take(h, C, 1, 0.1f);
            k->norm2_b = take(h, C, 0, 0.1f);
            k->fc1_w = take(h, hid * C, 0, sd);
            k->fc1_b = take(h, hid, 0, 0.1f);
            k->fc2_w = take(h, C * hid, 0, (float)(1.0 / sqrt((double)hid)));
            k->fc2_b = take(h, C, 0, 0.1f);
        }
        if (s + 1 < n_stages) {
            w->stages[s].down_norm_w = take(h, 4 * C, 1, 0.1f);
            w->stages[s].down_norm_b = take(h, 4 * C, 0, 0.1f);
            w->stages[s].down_red_w = take(h, 8 * C * C, 0, (float)(0.5 / sqrt((double)C)));
        }
    }
    w->norm_w = take(h, (size_t)h->m.vision_width, 1, 0.1f);
    w->norm_b = take(h, (size_t)h->m.vision_width, 0, 0.1f);
    return h->used == h->cap;
}

static void hand_model_free(struct hand_model *h)
{
    ram_swin_release(&h->m);
    for (int s = 0; s < RAM_MAX_STAGES; s++) free(h->m.swin_w.stages[s].blocks);
    free(h->pool);
}

static float *random_image(int S, uint64_t seed)
{
    float *x = malloc(sizeof(float) * 3 * S * S);
    for (int i = 0; i < 3 * S * S; i++) x[i] = nrand(&seed, 1.0f);
    return x;
}

/* ------------------------------------------------------------------ naive reference (double) */

struct ref_rec {
    char name[32];
    double *data;
    int rows, cols;
};

struct ref_set {
    struct ref_rec rec[64];
    int n;
};

static void ref_keep(struct ref_set *rs, const char *name, const double *x, int rows, int cols)
{
    if (rs->n >= 64) return;
    struct ref_rec *r = &rs->rec[rs->n++];
    snprintf(r->name, sizeof r->name, "%s", name);
    r->data = malloc(sizeof(double) * rows * cols);
    memcpy(r->data, x, sizeof(double) * rows * cols);
    r->rows = rows;
    r->cols = cols;
}

static void ref_ln(const double *x, double *y, int rows, int cols, const float *w, const float *b, double eps)
{
    for (int r = 0; r < rows; r++) {
        const double *xr = x + (size_t)r * cols;
        double mean = 0, var = 0;
        for (int i = 0; i < cols; i++) mean += xr[i];
        mean /= cols;
        for (int i = 0; i < cols; i++) var += (xr[i] - mean) * (xr[i] - mean);
        var /= cols;
        for (int i = 0; i < cols; i++) y[(size_t)r * cols + i] = (xr[i] - mean) / sqrt(var + eps) * w[i] + b[i];
    }
}

static void ref_lin(const double *x, int rows, int in, const float *W, const float *b, int out, double *y)
{
    for (int r = 0; r < rows; r++)
        for (int o = 0; o < out; o++) {
            double s = b ? b[o] : 0;
            for (int i = 0; i < in; i++) s += x[(size_t)r * in + i] * W[(size_t)o * in + i];
            y[(size_t)r * out + o] = s;
        }
}

/* One window's attention: X (N x C) rows of the rolled grid -> Y (N x C). */
static void ref_window(const struct ram_swin_block_w *k, const double *X, double *Y, int N, int C, int H, int w,
                       const int *region)
{
    int d = C / H;
    double *qkv = malloc(sizeof(double) * N * 3 * C), *o = malloc(sizeof(double) * N * C);
    double *sc = malloc(sizeof(double) * N), scale = 1.0 / sqrt((double)d);
    ref_lin(X, N, C, k->qkv_w, k->qkv_b, 3 * C, qkv);
    for (int h = 0; h < H; h++)
        for (int a = 0; a < N; a++) {
            double mx = -1e300, sum = 0;
            for (int b = 0; b < N; b++) {
                double s = 0;
                for (int j = 0; j < d; j++) s += qkv[a * 3 * C + h * d + j] * scale * qkv[b * 3 * C + C + h * d + j];
                int dy = a / w - b / w + w - 1, dx = a % w - b % w + w - 1;
                s += k->rpb_table[(dy * (2 * w - 1) + dx) * H + h];
                if (region && region[a] != region[b]) s += -100.0;
                sc[b] = s;
                mx = s > mx ? s : mx;
            }
            for (int b = 0; b < N; b++) sum += (sc[b] = exp(sc[b] - mx));
            for (int j = 0; j < d; j++) {
                double acc = 0;
                for (int b = 0; b < N; b++) acc += sc[b] / sum * qkv[b * 3 * C + 2 * C + h * d + j];
                o[a * C + h * d + j] = acc;
            }
        }
    ref_lin(o, N, C, k->proj_w, k->proj_b, C, Y);
    free(qkv);
    free(o);
    free(sc);
}

static void ref_block(const struct ram_model *m, int s, int blk, double *x)
{
    const struct ram_swin_stage_info *st = &m->stage[s];
    const struct ram_swin_block_w *k = &m->swin_w.stages[s].blocks[blk];
    int R = st->res, C = st->dim, w = st->window, N = w * w, L = R * R, sh = blk % 2 ? st->shift : 0;
    int hid = m->swin.mlp_ratio * C;
    double *xn = malloc(sizeof(double) * L * C), *rolled = malloc(sizeof(double) * L * C);
    double *att = malloc(sizeof(double) * L * C), *X = malloc(sizeof(double) * N * C);
    double *Y = malloc(sizeof(double) * N * C), *hbuf = malloc(sizeof(double) * L * hid);
    int *img = malloc(sizeof(int) * L), *region = malloc(sizeof(int) * N);
    ref_ln(x, xn, L, C, k->norm1_w, k->norm1_b, m->swin.eps);
    for (int i = 0; i < R; i++) /* torch.roll(shifts=(-sh, -sh)) */
        for (int j = 0; j < R; j++)
            memcpy(rolled + (i * R + j) * C, xn + (((i + sh) % R) * R + (j + sh) % R) * C, sizeof(double) * C);
    if (sh) official_regions(img, R, w, sh);
    for (int wy = 0; wy < R / w; wy++)
        for (int wx = 0; wx < R / w; wx++) {
            for (int n = 0; n < N; n++) {
                int y = wy * w + n / w, xx = wx * w + n % w;
                memcpy(X + n * C, rolled + (y * R + xx) * C, sizeof(double) * C);
                region[n] = img[y * R + xx];
            }
            ref_window(k, X, Y, N, C, st->heads, w, sh ? region : NULL);
            for (int n = 0; n < N; n++)
                memcpy(att + ((wy * w + n / w) * R + wx * w + n % w) * C, Y + n * C, sizeof(double) * C);
        }
    for (int i = 0; i < R; i++) /* roll back by +sh, residual */
        for (int j = 0; j < R; j++)
            for (int c = 0; c < C; c++) x[(((i + sh) % R) * R + (j + sh) % R) * C + c] += att[(i * R + j) * C + c];
    ref_ln(x, xn, L, C, k->norm2_w, k->norm2_b, m->swin.eps);
    ref_lin(xn, L, C, k->fc1_w, k->fc1_b, hid, hbuf);
    for (size_t i = 0; i < (size_t)L * hid; i++) hbuf[i] = 0.5 * hbuf[i] * (1 + erf(hbuf[i] / sqrt(2.0)));
    ref_lin(hbuf, L, hid, k->fc2_w, k->fc2_b, C, att);
    for (size_t i = 0; i < (size_t)L * C; i++) x[i] += att[i];
    free(xn);
    free(rolled);
    free(att);
    free(X);
    free(Y);
    free(hbuf);
    free(img);
    free(region);
}

/* Returns the new token buffer (R/2)^2 x 2C; frees x. */
static double *ref_merge(const struct ram_model *m, int s, double *x)
{
    const struct ram_swin_stage_info *st = &m->stage[s];
    const struct ram_swin_stage_w *sw = &m->swin_w.stages[s];
    int R = st->res, C = st->dim, R2 = R / 2;
    double *cat = malloc(sizeof(double) * R2 * R2 * 4 * C), *y = malloc(sizeof(double) * R2 * R2 * 2 * C);
    for (int i = 0; i < R2; i++)
        for (int j = 0; j < R2; j++)
            for (int q = 0; q < 4; q++) { /* x0 (even, even), x1 (odd row), x2 (odd col), x3 */
                int yy = 2 * i + (q == 1 || q == 3), xx = 2 * j + (q >= 2);
                memcpy(cat + ((i * R2 + j) * 4 + q) * C, x + (yy * R + xx) * C, sizeof(double) * C);
            }
    ref_ln(cat, cat, R2 * R2, 4 * C, sw->down_norm_w, sw->down_norm_b, m->swin.eps);
    ref_lin(cat, R2 * R2, 4 * C, sw->down_red_w, NULL, 2 * C, y);
    free(cat);
    free(x);
    return y;
}

static void ref_forward(const struct ram_model *m, const float *chw, struct ref_set *rs)
{
    const struct ram_swin_config *c = &m->swin;
    int p = c->patch_size, S = c->image_size, R = S / p, E = c->embed_dim;
    double *x = malloc(sizeof(double) * R * R * E);
    char name[32];
    for (int ty = 0; ty < R; ty++) /* the strided convolution, literally */
        for (int tx = 0; tx < R; tx++)
            for (int e = 0; e < E; e++) {
                double acc = m->swin_w.patch_b[e];
                for (int ch = 0; ch < 3; ch++)
                    for (int i = 0; i < p; i++)
                        for (int j = 0; j < p; j++)
                            acc += (double)m->swin_w.patch_w[((e * 3 + ch) * p + i) * p + j] *
                                   chw[(ch * S + ty * p + i) * S + tx * p + j];
                x[(ty * R + tx) * E + e] = acc;
            }
    ref_ln(x, x, R * R, E, m->swin_w.patch_norm_w, m->swin_w.patch_norm_b, c->eps);
    ref_keep(rs, "patch_embed_out", x, R * R, E);
    for (int s = 0; s < c->n_stages; s++) {
        const struct ram_swin_stage_info *st = &m->stage[s];
        for (int b = 0; b < c->depths[s]; b++) {
            ref_block(m, s, b, x);
            snprintf(name, sizeof name, "s%d_b%d_out", s, b);
            ref_keep(rs, name, x, st->res * st->res, st->dim);
        }
        if (s + 1 < c->n_stages) {
            x = ref_merge(m, s, x);
            snprintf(name, sizeof name, "s%d_merge_out", s);
            ref_keep(rs, name, x, st->res * st->res / 4, 2 * st->dim);
        }
    }
    int L = m->n_image_tokens - 1, C = m->vision_width;
    ref_ln(x, x, L, C, m->swin_w.norm_w, m->swin_w.norm_b, c->eps);
    ref_keep(rs, "final_norm_out", x, L, C);
    double *out = calloc((size_t)(L + 1) * C, sizeof(double));
    for (int t = 0; t < L; t++)
        for (int i = 0; i < C; i++) out[i] += x[t * C + i] / L;
    memcpy(out + C, x, sizeof(double) * L * C);
    ref_keep(rs, "out", out, L + 1, C);
    free(out);
    free(x);
}

static void ref_free(struct ref_set *rs)
{
    for (int i = 0; i < rs->n; i++) free(rs->rec[i].data);
    rs->n = 0;
}

static const struct ref_rec *ref_find(const struct ref_set *rs, const char *name)
{
    for (int i = 0; i < rs->n; i++)
        if (!strcmp(rs->rec[i].name, name)) return &rs->rec[i];
    return NULL;
}

static double diff_ref(const struct ref_rec *r, const float *x, int rows, int cols)
{
    if (!r || r->rows != rows || r->cols != cols) return INFINITY;
    double e = 0;
    for (size_t i = 0; i < (size_t)rows * cols; i++) {
        double d = fabs(r->data[i] - x[i]);
        if (!(d <= e)) e = isnan(d) ? INFINITY : d;
    }
    return e;
}

/* Trace hook comparing each intermediate with the reference. */
struct ref_trace {
    const struct ref_set *rs;
    double max_err;
    char worst[32];
    int n_seen, n_bad;
};

static void ref_trace_cb(void *arg, const char *name, const float *x, int rows, int cols)
{
    struct ref_trace *t = arg;
    double e = diff_ref(ref_find(t->rs, name), x, rows, cols);
    t->n_seen++;
    if (e > TOL) t->n_bad++;
    if (!(e <= t->max_err)) {
        t->max_err = e;
        snprintf(t->worst, sizeof t->worst, "%s", name);
    }
}

static int run_forward(const struct ram_model *m, const float *chw, float *out, const struct ram_swin_hooks *hk,
                       struct ram_error *err)
{
    size_t n = ram_swin_scratch_floats(m);
    float *scratch = malloc(sizeof(float) * (n ? n : 1));
    int rc = ram_swin_forward(m, chw, scratch, out, hk, err);
    free(scratch);
    return rc;
}

static void test_held_out(const char *label, int image, int patch, int embed, int window, int n_stages,
                          const int *depths, const int *heads, int mlp, uint64_t seed)
{
    struct hand_model h;
    struct ram_error err = {{0}};
    char name[160];
    int built = hand_model_init(&h, image, patch, embed, window, n_stages, depths, heads, mlp, seed);
    snprintf(name, sizeof name, "held-out %s: model built", label);
    check(built, name, "derive or weight pool failed");
    if (!built) {
        hand_model_free(&h);
        return;
    }
    ram_status rc = ram_swin_prepare(&h.m, &err);
    snprintf(name, sizeof name, "held-out %s: prepare", label);
    check(!rc, name, "rc %d %s", rc, err.msg);
    float *chw = random_image(image, seed ^ 0x9e3779b97f4a7c15ULL);
    struct ref_set rs = {.n = 0};
    ref_forward(&h.m, chw, &rs);
    struct ref_trace tr = {.rs = &rs};
    struct ram_swin_hooks hk = {.trace = ref_trace_cb, .trace_arg = &tr};
    int L = h.m.n_image_tokens, C = h.m.vision_width;
    float *out = malloc(sizeof(float) * L * C);
    rc = run_forward(&h.m, chw, out, &hk, &err);
    int n_expect = 2; /* patch embed + final norm */
    for (int s = 0; s < n_stages; s++) n_expect += depths[s] + (s + 1 < n_stages);
    snprintf(name, sizeof name, "held-out %s: every intermediate vs naive forward", label);
    check(!rc && tr.n_seen == n_expect && !tr.n_bad, name, "rc %d %s; %d/%d traced, %d over %g, worst %s %.3g", rc,
          err.msg, tr.n_seen, n_expect, tr.n_bad, TOL, tr.worst, tr.max_err);
    double mag = 0;
    for (int i = 0; i < rs.n; i++)
        for (size_t j = 0; j < (size_t)rs.rec[i].rows * rs.rec[i].cols; j++)
            mag = fabs(rs.rec[i].data[j]) > mag ? fabs(rs.rec[i].data[j]) : mag;
    printf("  held-out %s: max abs error %.3g (%s), largest value %.3g\n", label, tr.max_err, tr.worst, mag);
    double e = diff_ref(ref_find(&rs, "out"), out, L, C);
    snprintf(name, sizeof name, "held-out %s: output [CLS; tokens] vs naive forward", label);
    check(e <= TOL, name, "max abs error %.3g", e);
    double ce = 0;
    for (int i = 0; i < C; i++) {
        double mean = 0;
        for (int t = 1; t < L; t++) mean += out[(size_t)t * C + i];
        mean /= L - 1;
        double d = fabs(mean - out[i]);
        if (!(d <= ce)) ce = isnan(d) ? INFINITY : d;
    }
    snprintf(name, sizeof name, "held-out %s: CLS is the mean of the token rows", label);
    check(ce <= 1e-5, name, "max abs error %.3g", ce);
    int threads = ram_ops_get_threads();
    if (threads > 1) { /* the same bits at 1 thread */
        float *out1 = malloc(sizeof(float) * L * C);
        ram_set_threads(1);
        rc = run_forward(&h.m, chw, out1, NULL, &err);
        ram_set_threads(threads);
        snprintf(name, sizeof name, "held-out %s: bit-identical to 1 thread", label);
        check(!rc && !memcmp(out, out1, sizeof(float) * L * C), name, "rc %d %s", rc, err.msg);
        free(out1);
    }
    free(out);
    free(chw);
    ref_free(&rs);
    hand_model_free(&h);
}

static void test_held_out_all(void)
{
    static const int dA[4] = {1, 3, 2, 2}, hA[4] = {1, 2, 2, 4};
    test_held_out("image 96 window 6 (res 24,12,6,3)", 96, 4, 8, 6, 4, dA, hA, 4, 11);
    static const int dB[3] = {2, 2, 1}, hB[3] = {2, 3, 4};
    test_held_out("image 48 window 3 patch 4 mlp 2 (res 12,6,3)", 48, 4, 6, 3, 3, dB, hB, 2, 22);
    static const int dC[2] = {3, 2}, hC[2] = {4, 2};
    test_held_out("image 40 patch 2 window 10 (res 20,10)", 40, 2, 8, 10, 2, dC, hC, 3, 33);
    static const int dD[4] = {2, 2, 2, 2}, hD[4] = {2, 2, 4, 8};
    test_held_out("image 128 window 8 (res 32,16,8,4)", 128, 4, 8, 8, 4, dD, hD, 4, 44);
    /* Big enough that window attention deals its (window, head) pairs out to
    ** two threads in both stages (and the shifted block's mask with them). */
    int t0 = ram_ops_get_threads();
    ram_set_threads(2);
    static const int dE[2] = {2, 2}, hE[2] = {2, 4};
    test_held_out("image 160 window 10 embed 64, 2 threads (res 40,20)", 160, 4, 64, 10, 2, dE, hE, 4, 55);
    /* Big enough that the token moves (window partition and its inverse,
    ** patch merging: 2,304 x 64 floats, over 2 x 2^16) are split over the
    ** two threads too. */
    static const int dF[2] = {2, 1}, hF[2] = {2, 4};
    test_held_out("image 96 patch 2 window 12 embed 64, 2 threads (res 48,24)", 96, 2, 64, 12, 2, dF, hF, 2, 66);
    ram_set_threads(t0);
}

/* The element-wise kernels split past EW_MIN elements per thread: at 2
** threads the results must equal 1 thread's bit for bit (rows stay whole,
** element splits fall on multiples of 64), on sizes that split. */
static void test_ops_threads(void)
{
    const int rows = 3001, cols = 347; /* 1.04 M elements, odd sizes for the tails */
    size_t n = (size_t)rows * cols;
    float *x = malloc(sizeof(float) * n), *y = malloc(sizeof(float) * n), *r[2][5];
    float *w = malloc(sizeof(float) * cols), *b = malloc(sizeof(float) * cols);
    uint64_t st = 77;
    for (size_t i = 0; i < n; i++)
        x[i] = (float)((st = st * 6364136223846793005ULL + 1442695040888963407ULL) >> 40) / (1 << 22) - 2.0f;
    for (int i = 0; i < cols; i++) w[i] = 1.0f + 0.001f * i, b[i] = 0.01f * (i % 7);
    int t0 = ram_ops_get_threads();
    for (int t = 0; t < 2; t++) {
        ram_set_threads(t + 1);
        for (int k = 0; k < 5; k++) {
            r[t][k] = malloc(sizeof(float) * n);
            memcpy(r[t][k], x, sizeof(float) * n);
        }
        ram_gelu(r[t][0], n);
        ram_quick_gelu(r[t][1], n);
        memcpy(y, x, sizeof(float) * n);
        ram_add(r[t][2], y, n);
        ram_layernorm(x, r[t][3], rows, cols, w, b, 1e-5f);
        ram_softmax_rows(r[t][4], rows, cols);
    }
    ram_set_threads(t0);
    /* Right as well as equal: against double-precision formulas. */
    double e[5] = {0};
    for (size_t i = 0; i < n; i++) {
        double v = x[i];
        e[0] = fmax(e[0], fabs(r[0][0][i] - 0.5 * v * (1 + erf(v / sqrt(2.0)))));
        e[1] = fmax(e[1], fabs(r[0][1][i] - v / (1 + exp(-1.702 * v))));
        e[2] = fmax(e[2], fabs(r[0][2][i] - 2 * v));
    }
    for (int i = 0; i < rows; i++) {
        const float *xr = x + (size_t)i * cols;
        double mean = 0, var = 0, mx = -INFINITY, z = 0;
        for (int j = 0; j < cols; j++) mean += xr[j], mx = fmax(mx, xr[j]);
        mean /= cols;
        for (int j = 0; j < cols; j++) var += (xr[j] - mean) * (xr[j] - mean), z += exp(xr[j] - mx);
        var /= cols;
        for (int j = 0; j < cols; j++) {
            double ln = (xr[j] - mean) / sqrt(var + 1e-5) * w[j] + b[j];
            e[3] = fmax(e[3], fabs(r[0][3][(size_t)i * cols + j] - ln));
            e[4] = fmax(e[4], fabs(r[0][4][(size_t)i * cols + j] - exp(xr[j] - mx) / z));
        }
    }
    static const char *names[5] = {"gelu", "quick_gelu", "add", "layernorm", "softmax"};
    static const double tol[5] = {1e-6, 1e-6, 0, 1e-5, 1e-7};
    for (int k = 0; k < 5; k++) {
        char name[64];
        snprintf(name, sizeof name, "ops.threads.%s_same_at_2_threads", names[k]);
        check(!memcmp(r[0][k], r[1][k], sizeof(float) * n), name, NULL);
        snprintf(name, sizeof name, "ops.threads.%s_vs_double", names[k]);
        check(e[k] <= tol[k], name, "max abs error %.3g", e[k]);
        free(r[0][k]), free(r[1][k]);
    }
    free(x), free(y), free(w), free(b);
}

/* ------------------------------------------------------------------ cache layout */

static void test_cache_layout(void)
{
    static const int d[4] = {2, 2, 2, 2}, hd[4] = {1, 2, 2, 4};
    struct hand_model h;
    struct ram_error err = {{0}};
    int built = hand_model_init(&h, 96, 4, 8, 6, 4, d, hd, 4, 5);
    ram_status rc = built ? ram_swin_prepare(&h.m, &err) : RAM_ERR_ARG;
    check(!rc, "cache: prepare", "rc %d %s", rc, err.msg);
    if (rc) {
        hand_model_free(&h);
        return;
    }
    int ok = 1;
    for (int s = 0; s < 4; s++) {
        const struct ram_swin_stage_info *st = &h.m.stage[s];
        int w = st->window, N = w * w, H = st->heads;
        for (int b = 0; b < 2; b++) {
            const float *bias = ram_swin_cached_bias(&h.m, s, b), *t = h.m.swin_w.stages[s].blocks[b].rpb_table;
            for (int hh = 0; bias && hh < H; hh++)
                for (int a = 0; a < N; a++)
                    for (int c = 0; c < N; c++) {
                        int dy = a / w - c / w + w - 1, dx = a % w - c % w + w - 1;
                        ok &= bias[((size_t)hh * N + a) * N + c] == t[(dy * (2 * w - 1) + dx) * H + hh];
                    }
            ok &= bias != NULL;
        }
    }
    check(ok, "cache: expanded bias[h][a][b] = table[index(a,b)][h] in every block", " ");
    /* Masks: stages 0 and 1 shifted (3), stages 2 and 3 not. */
    ok = !ram_swin_cached_mask(&h.m, 2) && !ram_swin_cached_mask(&h.m, 3);
    for (int s = 0; s < 2; s++) {
        const struct ram_swin_stage_info *st = &h.m.stage[s];
        const float *mask = ram_swin_cached_mask(&h.m, s);
        int R = st->res, w = st->window, N = w * w, nw = R / w, nonzero_windows = 0;
        int *img = malloc(sizeof(int) * R * R);
        official_regions(img, R, w, st->shift);
        for (int wi = 0; mask && wi < nw * nw; wi++) {
            int any = 0;
            for (int a = 0; a < N; a++)
                for (int b = 0; b < N; b++) {
                    int ia = img[(wi / nw * w + a / w) * R + wi % nw * w + a % w];
                    int ib = img[(wi / nw * w + b / w) * R + wi % nw * w + b % w];
                    float v = mask[((size_t)wi * N + a) * N + b];
                    ok &= v == (ia == ib ? 0.0f : -100.0f);
                    any |= v != 0;
                }
            nonzero_windows += any;
        }
        ok &= mask && nonzero_windows == 2 * nw - 1; /* the last window row and column */
        free(img);
    }
    check(ok, "cache: shift masks (0 / -100, last window row and column only), none when unshifted", " ");
    hand_model_free(&h);
}

/* ------------------------------------------------------------------ errors */

static int abort_after(void *arg)
{
    int *n = arg;
    return --*n < 0;
}

static void test_errors(void)
{
    static const int d[2] = {2, 2}, hd[2] = {2, 2};
    struct hand_model h;
    struct ram_error err = {{0}};
    hand_model_init(&h, 32, 4, 8, 4, 2, d, hd, 4, 9);
    int L = h.m.n_image_tokens, C = h.m.vision_width;
    float *chw = random_image(32, 3), *out = malloc(sizeof(float) * L * C);

    ram_status rc = run_forward(&h.m, chw, out, NULL, &err);
    check(rc == RAM_ERR_ARG && strstr(err.msg, "prepare"), "error: forward before prepare", "rc %d %s", rc, err.msg);

    const float *keep = h.m.swin_w.stages[1].blocks[1].fc2_b;
    h.m.swin_w.stages[1].blocks[1].fc2_b = NULL;
    rc = ram_swin_prepare(&h.m, &err);
    check(rc == RAM_ERR_ARG && !h.m.swin_cache && strstr(err.msg, "stage 1 block 1"),
          "error: prepare with an unbound weight", "rc %d %s", rc, err.msg);
    h.m.swin_w.stages[1].blocks[1].fc2_b = keep;
    keep = h.m.swin_w.stages[0].down_red_w;
    h.m.swin_w.stages[0].down_red_w = NULL;
    rc = ram_swin_prepare(&h.m, &err);
    check(rc == RAM_ERR_ARG && strstr(err.msg, "merging"), "error: prepare without merge weights", "rc %d %s", rc,
          err.msg);
    h.m.swin_w.stages[0].down_red_w = keep;

#ifdef RAM_TEST
    ram_alloc_fail_after(0);
    rc = ram_swin_prepare(&h.m, &err);
    ram_alloc_fail_after(-1);
    check(rc == RAM_ERR_NOMEM && !h.m.swin_cache, "error: prepare out of memory", "rc %d %s", rc, err.msg);
#endif

    rc = ram_swin_prepare(&h.m, &err);
    rc = rc ? rc : ram_swin_prepare(&h.m, &err); /* again: replaces the cache (no leak under LSan) */
    check(!rc && h.m.swin_cache, "prepare twice", "rc %d %s", rc, err.msg);

    int budget = 2, calls = 0;
    struct ram_swin_hooks hk = {.abort_cb = abort_after, .abort_arg = &budget};
    rc = run_forward(&h.m, chw, out, &hk, &err);
    check(rc == RAM_ERR_INTERRUPTED && budget == -1, "abort: polled between blocks, stops on the third",
          "rc %d budget %d %s", rc, budget, err.msg);
    budget = 1000;
    rc = run_forward(&h.m, chw, out, &hk, &err);
    calls = 1000 - budget;
    check(!rc && calls == 4, "abort: polled once per block (4 blocks)", "rc %d, %d polls", rc, calls);

    rc = ram_swin_forward(&h.m, chw, NULL, out, NULL, &err);
    check(rc == RAM_ERR_ARG, "error: NULL scratch", "rc %d", rc);
    free(chw);
    free(out);
    hand_model_free(&h);
}

/* ------------------------------------------------------------------ golden */

struct golden_trace {
    const char *dir; /* "ram_plus" or "ram" */
    double max_err;
    char worst[32];
    int n_seen, n_bad, n_missing;
};

static void golden_trace_cb(void *arg, const char *name, const float *x, int rows, int cols)
{
    struct golden_trace *t = arg;
    char rel[128];
    struct npy g;
    snprintf(rel, sizeof rel, "golden/%s/img0_swin_%s.npy", t->dir, name);
    t->n_seen++;
    if (!npy_load(data_path(rel), &g)) {
        t->n_missing++;
        return;
    }
    double e = g.n == (size_t)rows * cols ? max_abs_diff(x, g.data, g.n) : INFINITY;
    char cname[160];
    snprintf(cname, sizeof cname, "golden %s img0: %s", t->dir, name);
    check(e <= TOL, cname, "max abs error %.3g (%d x %d, golden %zu values)", e, rows, cols, g.n);
    if (!(e <= t->max_err)) {
        t->max_err = e;
        snprintf(t->worst, sizeof t->worst, "%s", name);
    }
    npy_free(&g);
}

static void test_golden(const char *pth, const char *dir)
{
    struct ram_model *m = NULL;
    struct ram_error err = {{0}};
    char name[160], rel[128];
    ram_status rc = ram_model_init_from_pth(data_path(pth), data_path("golden/tag_list.txt"),
                                            data_path("golden/tag_list_chinese.txt"),
                                            data_path("golden/tag_list_threshold.txt"), NULL, &m, &err);
    snprintf(name, sizeof name, "golden %s: model from %s", dir, pth);
    check(!rc && m, name, "rc %d %s", rc, err.msg);
    if (rc || !m) return;
    int L = m->n_image_tokens, C = m->vision_width;
    float *out = malloc(sizeof(float) * L * C);
    size_t ns = ram_swin_scratch_floats(m);
    float *scratch = malloc(sizeof(float) * ns);
    for (int img = 0; img < 4; img++) {
        struct npy in;
        snprintf(rel, sizeof rel, "golden/preprocess/img%d_input.npy", img);
        snprintf(name, sizeof name, "golden %s img%d: input", dir, img);
        int ok = npy_load(data_path(rel), &in);
        check(ok && in.n == (size_t)3 * m->swin.image_size * m->swin.image_size, name, "cannot read %s", rel);
        if (!ok) continue;
        struct golden_trace gt = {.dir = dir};
        struct ram_swin_hooks hk = {.trace = golden_trace_cb, .trace_arg = &gt};
        rc = ram_swin_forward(m, in.data, scratch, out, img == 0 ? &hk : NULL, &err);
        snprintf(name, sizeof name, "golden %s img%d: forward", dir, img);
        check(!rc, name, "rc %d %s", rc, err.msg);
        if (img == 0) {
            snprintf(name, sizeof name, "golden %s img0: all %d intermediates traced and found", dir, gt.n_seen);
            check(gt.n_seen == 2 + 8 + 3 && !gt.n_missing, name, "%d traced, %d without a golden file", gt.n_seen,
                  gt.n_missing);
            printf("  golden %s img0: worst intermediate %s, max abs error %.3g\n", dir, gt.worst, gt.max_err);
        }
        snprintf(rel, sizeof rel, "golden/%s/img%d_visual_encoder_out.npy", dir, img);
        snprintf(name, sizeof name, "golden %s img%d: visual_encoder_out", dir, img);
        check_close_npy(name, out, (size_t)L * C, data_path(rel), TOL);
        struct npy g;
        if (npy_load(data_path(rel), &g) && g.n == (size_t)L * C)
            printf("  golden %s img%d: visual_encoder_out max abs error %.3g\n", dir, img,
                   max_abs_diff(out, g.data, g.n));
        npy_free(&g);
        npy_free(&in);
    }
    free(scratch);
    free(out);
    ram_model_free(m);
}

int main(void)
{
    test_derive_ok();
    test_derive_errors();
    test_rel_index();
    test_regions();
    test_cache_layout();
    test_errors();
    test_held_out_all();
    test_ops_threads();
    test_golden("golden/ram_plus_tiny.pth", "ram_plus");
    test_golden("golden/ram_tiny.pth", "ram");
    return harness_exit();
}
