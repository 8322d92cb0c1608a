/*
** swin.c — the Swin Transformer image encoder of RAM and RAM++
** (ARCHITECTURE.md section 3): config derivation, the per-model cache of
** relative-position biases, shift masks and packed weights, and the forward
** pass.
**
**     if (ram_swin_derive(m, &err)) ...          // m->swin -> m->stage[], widths
**     ... bind m->swin_w ...
**     if (ram_swin_prepare(m, &err)) ...         // -> m->swin_cache
**     float *scratch = ram_malloc(sizeof(float) * ram_swin_scratch_floats(m));
**     rc = ram_swin_forward(m, chw, scratch, out, NULL, &err);
**     ...
**     ram_swin_release(m);
**
** HOW IT WORKS. Activations stay in raster token order (x: L x C). A block
** gathers x into window order in one pass (the cyclic roll by -shift and the
** window partition are a single index map), LayerNorms the gathered rows in
** place and computes qkv for all L tokens with one product. For each window
** the scores of all heads are pre-filled with the cached relative-position
** bias (plus the -100 shift mask) and the QK^T products accumulate onto them
** (beta = 1); one softmax covers all heads; P @ V lands in the window's rows
** of the attention output, heads side by side. After the projection one
** scatter maps each window row back (reverse + roll by +shift) and adds it to
** x, which is the residual. The MLP and patch merging work in raster order.
** The forward allocates nothing: every buffer is a slice of the caller's
** scratch, sized by ram_swin_scratch_floats.
*/
#include "swin.h"

#include "gemm_q8.h"
#include "internal.h"
#include "model.h"
#include "ops.h"
#include "sgemm.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* Largest element count of any one buffer: keeps every int the op layer
** takes (rows, cols, rows * cols) in range. */
#define SWIN_MAX_ELEMS ((size_t)INT_MAX)
#define SWIN_MASK_VALUE (-100.0f)

/* The model's precomputed tables; one allocation (the floats follow the
** header). */
struct swin_cache {
    const float *bias[RAM_MAX_STAGES]; /* depths[s] blocks of (heads, N, N), block-major */
    const float *mask[RAM_MAX_STAGES]; /* (nW, N, N) of 0 / -100 in shifted stages, else NULL */
    /* fp32 matrices packed for the kernel (prepack_weights): per stage,
    ** depths[s] x {qkv, proj, fc1, fc2}, then the patch merging's reduction */
    struct ram_sgemm_packed *packed[RAM_MAX_STAGES];
    struct ram_sgemm_packed *packed_all; /* the one allocation behind packed[] (NULL: none) */
};

/* The slices of scratch a forward works in. */
struct swin_bufs {
    float *x;   /* tokens, raster order (L x C) */
    float *xw;  /* window-order rows, attention output, MLP output, merge input */
    float *big; /* qkv (L x 3C), projection output, MLP hidden, patch columns */
    float *att; /* RAM_MAX_JOBS slices of attn_slice(): scores, transposed keys and scaled q of one head */
    struct ram_scratch *products; /* the products' working memory (ram_swin_hooks); borrowed, may be NULL */
};

/* ------------------------------------------------------------------ config */

static ram_status check_stage_sizes(const struct ram_swin_config *c, const struct ram_swin_stage_info *st, int s,
                                    struct ram_error *err)
{
    size_t L = (size_t)st->res * st->res, N = (size_t)st->window * st->window, act, score;
    size_t hid = (size_t)(c->mlp_ratio > 3 ? c->mlp_ratio : 3) * st->dim;
    if (!ram_mul_ok(L, hid > 4 * (size_t)st->dim ? hid : 4 * (size_t)st->dim, &act) || act > SWIN_MAX_ELEMS ||
        !ram_mul_ok(N * N, (size_t)st->heads, &score) || score > SWIN_MAX_ELEMS ||
        N * (N + 2 * (size_t)st->dim) > SWIN_MAX_ELEMS / RAM_MAX_JOBS)
        return ram_fail(err, RAM_ERR_TOO_BIG, "swin: stage %d (%d x %d tokens, %d channels) is too large", s, st->res,
                        st->res, st->dim);
    return RAM_OK;
}

static ram_status check_config(const struct ram_swin_config *c, struct ram_error *err)
{
    if (c->patch_size < 1 || c->image_size < 1 || c->image_size % c->patch_size)
        return ram_fail(err, RAM_ERR_FORMAT, "swin: image size %d is not a multiple of patch %d", c->image_size,
                        c->patch_size);
    if (c->n_stages < 1 || c->n_stages > RAM_MAX_STAGES)
        return ram_fail(err, RAM_ERR_FORMAT, "swin: %d stages (1..%d supported)", c->n_stages, RAM_MAX_STAGES);
    if (c->window < 1 || c->in_chans < 1 || c->embed_dim < 1 || c->mlp_ratio < 1)
        return ram_fail(err, RAM_ERR_FORMAT, "swin: window, channels and mlp ratio must be positive");
    if (c->image_size > 65536 || c->in_chans > 64 || c->mlp_ratio > 64 ||
        ((long long)c->embed_dim << (c->n_stages - 1)) > (1 << 20))
        return ram_fail(err, RAM_ERR_TOO_BIG, "swin: absurd size (image %d, %d channels, mlp ratio %d)", c->image_size,
                        c->embed_dim, c->mlp_ratio);
    size_t res0 = (size_t)(c->image_size / c->patch_size);
    size_t patch = (size_t)c->in_chans * c->patch_size * c->patch_size;
    if (patch > SWIN_MAX_ELEMS / (res0 * res0))
        return ram_fail(err, RAM_ERR_TOO_BIG, "swin: image %d with patch %d is too large", c->image_size,
                        c->patch_size);
    for (int s = 0; s < c->n_stages; s++)
        if (c->depths[s] < 1 || c->heads[s] < 1)
            return ram_fail(err, RAM_ERR_FORMAT, "swin: stage %d has %d blocks and %d heads", s, c->depths[s],
                            c->heads[s]);
    return RAM_OK;
}

ram_status ram_swin_derive(struct ram_model *m, struct ram_error *err)
{
    const struct ram_swin_config *c = &m->swin;
    ram_status rc = check_config(c, err);
    if (rc) return rc;
    int res = c->image_size / c->patch_size, dim = c->embed_dim;
    for (int s = 0; s < c->n_stages; s++) {
        struct ram_swin_stage_info *st = &m->stage[s];
        if (dim % c->heads[s])
            return ram_fail(err, RAM_ERR_FORMAT, "swin: stage %d: %d channels are not divisible by %d heads", s, dim,
                            c->heads[s]);
        if (res > c->window && res % c->window)
            return ram_fail(err, RAM_ERR_FORMAT, "swin: stage %d: resolution %d is not a multiple of window %d", s, res,
                            c->window);
        st->res = res;
        st->dim = dim;
        st->heads = c->heads[s];
        st->window = res <= c->window ? res : c->window;
        st->shift = res <= c->window ? 0 : c->window / 2;
        if ((rc = check_stage_sizes(c, st, s, err))) return rc;
        if (s + 1 < c->n_stages) {
            if (res % 2)
                return ram_fail(err, RAM_ERR_FORMAT, "swin: stage %d: resolution %d is odd, cannot merge", s, res);
            res /= 2;
            dim *= 2;
        }
    }
    for (int s = c->n_stages; s < RAM_MAX_STAGES; s++) memset(&m->stage[s], 0, sizeof m->stage[s]);
    m->vision_width = dim;
    m->n_image_tokens = 1 + res * res;
    return RAM_OK;
}

/* ------------------------------------------------------------------ cache */

int ram_swin_rel_index(int a, int b, int w)
{
    int ya = a / w, xa = a % w, yb = b / w, xb = b % w;
    return (ya - yb + w - 1) * (2 * w - 1) + (xa - xb + w - 1);
}

/* Region id of a rolled-frame coordinate: bands [0, R-w), [R-w, R-s), [R-s, R). */
static int band(int v, int R, int w, int s) { return v < R - w ? 0 : v < R - s ? 1 : 2; }

int ram_swin_region(int y, int x, int R, int w, int s) { return 3 * band(y, R, w, s) + band(x, R, w, s); }

/* bias[h][a][b] = table[rel_index(a, b)][h]. */
static void fill_bias(float *bias, const float *table, int w, int heads)
{
    int N = w * w;
    for (int h = 0; h < heads; h++)
        for (int a = 0; a < N; a++) {
            float *row = bias + ((size_t)h * N + a) * N;
            for (int b = 0; b < N; b++) row[b] = table[(size_t)ram_swin_rel_index(a, b, w) * heads + h];
        }
}

/* mask[wi][a][b] = 0 if tokens a and b of window wi share a region, else -100. */
static void fill_mask(float *mask, int R, int w, int s)
{
    int N = w * w, nw = R / w;
    for (int wi = 0; wi < nw * nw; wi++) {
        int y0 = wi / nw * w, x0 = wi % nw * w;
        for (int a = 0; a < N; a++) {
            int ra = ram_swin_region(y0 + a / w, x0 + a % w, R, w, s);
            float *row = mask + ((size_t)wi * N + a) * N;
            for (int b = 0; b < N; b++)
                row[b] = ram_swin_region(y0 + b / w, x0 + b % w, R, w, s) == ra ? 0.0f : SWIN_MASK_VALUE;
        }
    }
}

/* Floats of stage s's tables; 0 on overflow (checked by derive, so never). */
static size_t stage_cache_floats(const struct ram_model *m, int s, size_t *bias_n, size_t *mask_n)
{
    const struct ram_swin_stage_info *st = &m->stage[s];
    size_t N = (size_t)st->window * st->window, nw = (size_t)(st->res / st->window);
    *bias_n = (size_t)st->heads * N * N;
    *mask_n = st->shift ? nw * nw * N * N : 0;
    size_t tot;
    if (!ram_mul_ok(*bias_n, (size_t)m->swin.depths[s], &tot) || tot > SIZE_MAX - *mask_n) return 0;
    return tot + *mask_n;
}

static ram_status check_weights(const struct ram_model *m, struct ram_error *err)
{
    const struct ram_swin_w *w = &m->swin_w;
    if (!w->patch_w || !w->patch_b || !w->patch_norm_w || !w->patch_norm_b || !w->norm_w || !w->norm_b)
        return ram_fail(err, RAM_ERR_ARG, "swin: patch embedding or final norm weights are not bound");
    for (int s = 0; s < m->swin.n_stages; s++) {
        const struct ram_swin_stage_w *sw = &w->stages[s];
        if (!sw->blocks) return ram_fail(err, RAM_ERR_ARG, "swin: stage %d has no block weights", s);
        for (int b = 0; b < m->swin.depths[s]; b++) {
            const struct ram_swin_block_w *k = &sw->blocks[b];
            if (!k->norm1_w || !k->norm1_b || !k->rpb_table || !(k->qkv_w || k->qkv_q) || !k->qkv_b ||
                !(k->proj_w || k->proj_q) || !k->proj_b || !k->norm2_w || !k->norm2_b || !(k->fc1_w || k->fc1_q) ||
                !k->fc1_b || !(k->fc2_w || k->fc2_q) || !k->fc2_b)
                return ram_fail(err, RAM_ERR_ARG, "swin: stage %d block %d: weights are not bound", s, b);
        }
        if (s + 1 < m->swin.n_stages && (!sw->down_norm_w || !sw->down_norm_b || !(sw->down_red_w || sw->down_red_q)))
            return ram_fail(err, RAM_ERR_ARG, "swin: stage %d: patch merging weights are not bound", s);
    }
    return RAM_OK;
}

enum { P_QKV, P_PROJ, P_FC1, P_FC2, P_PER_BLOCK };

/* The product of a linear layer whose fp32 weights are W (out x in) or
** which is quantized (q); packed: W in the kernel's panels, or NULL. With
** f (NULL: none), a LayerNorm before it and/or a residual add after it, as
** ram_linear_q_fused does them: fused into the int8 kernel, else separate
** passes through ln_out and tmp (its room, ops.h). */
static ram_status linear(const float *x, int rows, int in, const float *W, const struct ram_q8_weight *q,
                         const struct ram_sgemm_packed *packed, const float *b, int out, float *y,
                         const struct ram_q8_fuse *f, float *ln_out, float *tmp, struct ram_scratch *ps,
                         struct ram_error *err)
{
    if (packed && packed->panels && !q) {
        if (f && f->ln_w) {
            ram_layernorm(x, ln_out, rows, in, f->ln_w, f->ln_b, f->ln_eps);
            x = ln_out;
        }
        ram_sgemm_packed(rows, x, in, packed, 0.0f, f && f->add ? tmp : y, out, b);
        if (f && f->add) ram_add(y, tmp, (size_t)rows * out);
        return RAM_OK;
    }
    if (f) return ram_linear_q_fused(x, rows, in, W, q, b, out, y, f, ln_out, tmp, ps, err);
    return ram_linear_q(x, rows, in, W, q, b, out, y, ps, err);
}

/* Block blk's matrix which of stage s in its packed form; blk = depths[s],
** which = 0: the patch merging's reduction. NULL when nothing is packed. */
static const struct ram_sgemm_packed *packed_w(const struct ram_model *m, int s, int blk, int which)
{
    const struct swin_cache *c = m->swin_cache;
    return c && c->packed[s] ? &c->packed[s][(size_t)blk * P_PER_BLOCK + which] : NULL;
}

/* Hands the pages of a matrix the kernel now reads from its packed copy back
** to the file mapping (they are clean and read again only if a product falls
** back to W), so the packed copy does not double the model's memory. */
static void drop_pages(const struct ram_model *m, const float *W, size_t n)
{
    const char *lo = (const char *)W, *hi = lo + n * sizeof(float), *base = m->map;
    if (!base || lo < base || hi > base + m->map_len) return; /* not in the mapping (converted copies) */
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return;
    uintptr_t a = ((uintptr_t)lo + page - 1) / page * page, e = (uintptr_t)hi / page * page;
    if (e > a) madvise((void *)a, e - a, MADV_DONTNEED);
}

static void prepack_one(const struct ram_model *m, struct ram_sgemm_packed *p, const float *W, int N, int K)
{
    if (W && ram_sgemm_pack_weights(W, N, K, p)) drop_pages(m, W, (size_t)N * K);
}

/* Packs every fp32 Swin matrix once (sgemm.h: the forward then reads the
** panels instead of packing each weight again). RAM_PREPACK=0 turns it
** off (the forward then packs on the fly; same results). A matrix that
** cannot be packed (no memory, OpenBLAS path) keeps working unpacked. */
static void prepack_weights(const struct ram_model *m, struct swin_cache *c)
{
    const char *e = getenv("RAM_PREPACK");
    if (e && !strcmp(e, "0")) return;
    size_t n = 0;
    for (int s = 0; s < m->swin.n_stages; s++) n += (size_t)m->swin.depths[s] * P_PER_BLOCK + 1;
    struct ram_sgemm_packed *all = ram_malloc(sizeof *all * n);
    if (!all) return;
    memset(all, 0, sizeof *all * n);
    c->packed_all = all;
    for (int s = 0; s < m->swin.n_stages; s++) {
        const struct ram_swin_stage_w *sw = &m->swin_w.stages[s];
        int C = m->stage[s].dim, hid = m->swin.mlp_ratio * C;
        c->packed[s] = all;
        for (int b = 0; b < m->swin.depths[s]; b++, all += P_PER_BLOCK) {
            const struct ram_swin_block_w *w = &sw->blocks[b];
            if (!w->qkv_q) prepack_one(m, &all[P_QKV], w->qkv_w, 3 * C, C);
            if (!w->proj_q) prepack_one(m, &all[P_PROJ], w->proj_w, C, C);
            if (!w->fc1_q) prepack_one(m, &all[P_FC1], w->fc1_w, hid, C);
            if (!w->fc2_q) prepack_one(m, &all[P_FC2], w->fc2_w, C, hid);
        }
        if (s + 1 < m->swin.n_stages && !sw->down_red_q) prepack_one(m, all, sw->down_red_w, 2 * C, 4 * C);
        all++;
    }
}

ram_status ram_swin_prepare(struct ram_model *m, struct ram_error *err)
{
    ram_swin_release(m);
    ram_status rc = check_weights(m, err);
    if (rc) return rc;
    size_t total = 0, bias_n, mask_n;
    for (int s = 0; s < m->swin.n_stages; s++) {
        size_t n = stage_cache_floats(m, s, &bias_n, &mask_n);
        if (!n || total > SIZE_MAX / sizeof(float) - n)
            return ram_fail(err, RAM_ERR_TOO_BIG, "swin: attention tables too large");
        total += n;
    }
    if (total > (SIZE_MAX - sizeof(struct swin_cache)) / sizeof(float))
        return ram_fail(err, RAM_ERR_TOO_BIG, "swin: attention tables too large");
    struct swin_cache *c = ram_malloc(sizeof *c + total * sizeof(float));
    if (!c) return ram_fail(err, RAM_ERR_NOMEM, "swin: out of memory for %zu attention table floats", total);
    memset(c, 0, sizeof *c);
    float *p = (float *)(c + 1);
    for (int s = 0; s < m->swin.n_stages; s++) {
        const struct ram_swin_stage_info *st = &m->stage[s];
        stage_cache_floats(m, s, &bias_n, &mask_n);
        c->bias[s] = p;
        for (int b = 0; b < m->swin.depths[s]; b++, p += bias_n)
            fill_bias(p, m->swin_w.stages[s].blocks[b].rpb_table, st->window, st->heads);
        if (mask_n) {
            c->mask[s] = p;
            fill_mask(p, st->res, st->window, st->shift);
            p += mask_n;
        }
    }
    prepack_weights(m, c);
    m->swin_cache = c;
    return RAM_OK;
}

void ram_swin_release(struct ram_model *m)
{
    struct swin_cache *c = m->swin_cache;
    if (c && c->packed_all) {
        size_t n = 0;
        for (int s = 0; s < m->swin.n_stages; s++) n += (size_t)m->swin.depths[s] * P_PER_BLOCK + 1;
        for (size_t i = 0; i < n; i++) ram_sgemm_packed_free(&c->packed_all[i]);
        ram_free(c->packed_all);
    }
    ram_free(c);
    m->swin_cache = NULL;
}

const float *ram_swin_cached_bias(const struct ram_model *m, int stage, int block)
{
    const struct swin_cache *c = m->swin_cache;
    if (!c || stage < 0 || stage >= m->swin.n_stages || block < 0 || block >= m->swin.depths[stage]) return NULL;
    const struct ram_swin_stage_info *st = &m->stage[stage];
    size_t N = (size_t)st->window * st->window;
    return c->bias[stage] + (size_t)block * st->heads * N * N;
}

const float *ram_swin_cached_mask(const struct ram_model *m, int stage)
{
    const struct swin_cache *c = m->swin_cache;
    if (!c || stage < 0 || stage >= m->swin.n_stages) return NULL;
    return c->mask[stage];
}

/* ------------------------------------------------------------------ scratch */

/* Floats of one thread's slice of att. */
static size_t attn_slice(const struct ram_swin_stage_info *st)
{
    size_t N = (size_t)st->window * st->window;
    return N * N + 2 * N * (size_t)(st->dim / st->heads);
}

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

/* Floats of each slice (x, xw, big, att). Sizes were bounded by derive, so
** the sums cannot overflow a size_t. */
static void plan(const struct ram_model *m, size_t n[4])
{
    const struct ram_swin_config *c = &m->swin;
    size_t res0 = (size_t)m->stage[0].res;
    size_t hid = (size_t)(c->mlp_ratio > 3 ? c->mlp_ratio : 3);
    n[0] = n[1] = n[3] = 0;
    n[2] = res0 * res0 * c->in_chans * c->patch_size * c->patch_size;
    for (int s = 0; s < c->n_stages; s++) {
        const struct ram_swin_stage_info *st = &m->stage[s];
        size_t LC = (size_t)st->res * st->res * st->dim;
        if (LC > n[0]) n[0] = LC;
        if (LC > n[1]) n[1] = LC;
        if (hid * LC > n[2]) n[2] = hid * LC;
        if (RAM_MAX_JOBS * attn_slice(st) > n[3]) n[3] = RAM_MAX_JOBS * attn_slice(st);
    }
    for (int i = 0; i < 4; i++) n[i] = round16(n[i]);
}

size_t ram_swin_scratch_floats(const struct ram_model *m)
{
    if (m->stage[0].res < 1) return 0;
    size_t n[4];
    plan(m, n);
    return n[0] + n[1] + n[2] + n[3];
}

static void carve(const struct ram_model *m, float *scratch, struct swin_bufs *b)
{
    size_t n[4];
    plan(m, n);
    b->x = scratch;
    b->xw = b->x + n[0];
    b->big = b->xw + n[1];
    b->att = b->big + n[2];
}

/* ------------------------------------------------------------------ forward pieces */

/* Conv2d(kernel = stride = p) as a product: each token's patch becomes one
** row ordered (channel, row, col), like the flattened conv weight. */
static void patch_embed(const struct ram_model *m, const float *chw, const struct swin_bufs *b)
{
    const struct ram_swin_config *c = &m->swin;
    int p = c->patch_size, S = c->image_size, R = m->stage[0].res, K = c->in_chans * p * p;
    for (int ty = 0; ty < R; ty++)
        for (int tx = 0; tx < R; tx++) {
            float *row = b->big + ((size_t)ty * R + tx) * K;
            for (int ch = 0; ch < c->in_chans; ch++)
                for (int i = 0; i < p; i++)
                    memcpy(row + ((size_t)ch * p + i) * p, chw + ((size_t)ch * S + ty * p + i) * S + (size_t)tx * p,
                           sizeof(float) * p);
        }
    int L = R * R, E = c->embed_dim;
    ram_linear(b->big, L, K, m->swin_w.patch_w, m->swin_w.patch_b, E, b->x);
    ram_layernorm(b->x, b->x, L, E, m->swin_w.patch_norm_w, m->swin_w.patch_norm_b, c->eps);
}

/* The token moves between the products (window partition and its inverse,
** patch merging's 2 x 2 gather) are whole-row copies or adds: memory passes
** over the activations that would otherwise run on one core while the
** products around them use every core. They are split over the pool by
** destination rows; each row is moved by the same code whatever the thread,
** so results do not depend on the thread count. */
enum { MOVE_GATHER, MOVE_SCATTER_ADD, MOVE_MERGE };

struct move_job {
    int op, R, w, s, C;
    const float *src;
    float *dst;
    size_t t0, t1; /* rows [t0, t1): window-order rows, or merged rows */
};

/* Raster row of window-order row t (rolled by -s): window (wy, wx),
** position (py, px) is x[(wy+py+s) % R][(wx+px+s) % R]. */
static size_t window_raster_row(size_t t, int R, int w, int s)
{
    size_t N = (size_t)w * w, wi = t / N, pos = t % N, nw = (size_t)(R / w);
    size_t wy = wi / nw * w, wx = wi % nw * w, py = pos / w, px = pos % w;
    return (wy + py + s) % R * R + (wx + px + s) % R;
}

static void *move_rows(void *arg)
{
    const struct move_job *j = arg;
    const size_t C = (size_t)j->C;
    static const int dy[4] = {0, 1, 0, 1}, dx[4] = {0, 0, 1, 1};
    for (size_t t = j->t0; t < j->t1; t++) {
        if (j->op == MOVE_GATHER) {
            memcpy(j->dst + t * C, j->src + window_raster_row(t, j->R, j->w, j->s) * C, sizeof(float) * C);
        } else if (j->op == MOVE_SCATTER_ADD) {
            ram_add(j->dst + window_raster_row(t, j->R, j->w, j->s) * C, j->src + t * C, C);
        } else { /* merged row t = (y, x) of R/2 x R/2 */
            size_t R2 = (size_t)j->R / 2, y = t / R2, x = t % R2;
            for (int k = 0; k < 4; k++)
                memcpy(j->dst + (t * 4 + k) * C, j->src + ((2 * y + dy[k]) * j->R + 2 * x + dx[k]) * C,
                       sizeof(float) * C);
        }
    }
    return NULL;
}

/* Runs op over rows destination rows of C floats each (merge: 4C). */
static void move(int op, const float *src, float *dst, int R, int w, int s, int C, size_t rows)
{
    /* a job per 64 K floats moved at least, as ops.c's element-wise passes */
    double floats = (double)rows * C * (op == MOVE_MERGE ? 4 : 1);
    int T = ram_job_count(floats, (double)(1 << 16), (long)rows);
    struct move_job jobs[RAM_MAX_JOBS];
    for (int t = 0; t < T; t++) jobs[t] = (struct move_job){op, R, w, s, C, src, dst, rows * t / T, rows * (t + 1) / T};
    ram_run_jobs(move_rows, jobs, sizeof jobs[0], T);
}

/* xw (window order) <- x (raster order) rolled by -s. */
static void window_gather(const float *x, float *xw, int R, int w, int s, int C)
{
    move(MOVE_GATHER, x, xw, R, w, s, C, (size_t)R * R);
}

/* x += yw mapped back: the inverse of window_gather (reverse, roll by +s). */
static void window_scatter_add(const float *yw, float *x, int R, int w, int s, int C)
{
    move(MOVE_SCATTER_ADD, yw, x, R, w, s, C, (size_t)R * R);
}

/* Attention of every window. qkv: L x 3C in window order (only read);
** bias: (heads, N, N); mask: (nW, N, N) or NULL; o: L x C in window order.
** The (window, head) pairs are independent: they are dealt out to up to
** ram_ops_get_threads() threads in contiguous runs sized to each vCPU's
** speed (ram_run_split), each run with its own (slot's)
** slice of att (one N x N score matrix, d x N transposed keys, N x d scaled q). The
** products are small (N = 144, d = 32 at full size), too small for the BLAS
** to spread over cores, and each pair is computed by the same code whatever
** the thread, so results do not depend on the thread count. */
struct attn_job {
    const struct ram_swin_stage_info *st;
    const float *bias, *mask;
    float *qkv, *att, *o;
    float scale; /* head_dim^-0.5 */
};

static void attention_pairs(void *arg, int slot, long p0, long p1)
{
    const struct attn_job *j = arg;
    int w = j->st->window, N = w * w, C = j->st->dim, H = j->st->heads, d = C / H, nw = j->st->res / w;
    size_t NN = (size_t)N * N;
    float *sc = j->att + (size_t)slot * attn_slice(j->st), *kt = sc + NN;
    for (int p = (int)p0; p < (int)p1; p++) {
        int wi = p / H, h = p % H;
        const float *q = j->qkv + (size_t)wi * N * 3 * C + (size_t)h * d;
        /* Region bands change only inside the last window row and column
        ** (at R - w and R - s), so every other window's mask is all zero
        ** and the scores start from the cached bias itself. */
        const float *s0 = j->bias + h * NN;
        if (j->mask && (wi / nw == nw - 1 || wi % nw == nw - 1)) {
            memcpy(sc, s0, sizeof(float) * NN);
            ram_add(sc, j->mask + wi * NN, NN);
            s0 = sc;
        }
        /* q is scaled inside, where this pair's rows are read (the same
        ** multiplications as a pass of its own over all of qkv) */
        ram_attention_head(q, q + C, q + 2 * C, 3 * C, N, d, j->scale, s0, sc, kt,
                           j->o + (size_t)wi * N * C + (size_t)h * d, C);
    }
}

static void window_attention(const struct ram_swin_stage_info *st, const float *bias, const float *mask, float *qkv,
                             float *att, float *o)
{
    /* the official code scales q by head_dim^-0.5 before the product */
    float scale = (float)(1.0 / sqrt((double)(st->dim / st->heads)));
    int nw = st->res / st->window, pairs = nw * nw * st->heads;
    size_t N = (size_t)st->window * st->window;
    /* A thread is worth starting for ~1 ms of work (N * N * d * 2 multiply-adds per pair). */
    double work = (double)pairs * N * N * (st->dim / st->heads) * 2;
    struct attn_job job = {st, bias, mask, qkv, att, o, scale};
    ram_run_split(attention_pairs, &job, pairs, ram_job_count(work, 4e6, pairs));
}

/* x = x + attn(LN1(x)) with the roll and windows of block blk. The linear
** layers take the int8 path in quantized files (its only failure: NOMEM). */
static ram_status attention_part(const struct ram_model *m, int s, int blk, const struct swin_bufs *b,
                                 struct ram_error *err)
{
    const struct ram_swin_stage_info *st = &m->stage[s];
    const struct ram_swin_block_w *w = &m->swin_w.stages[s].blocks[blk];
    const struct swin_cache *c = m->swin_cache;
    int L = st->res * st->res, C = st->dim, shift = blk % 2 ? st->shift : 0;
    window_gather(b->x, b->xw, st->res, st->window, shift, C);
    const struct ram_q8_fuse ln1 = {.ln_w = w->norm1_w, .ln_b = w->norm1_b, .ln_eps = m->swin.eps};
    ram_status rc = linear(b->xw, L, C, w->qkv_w, w->qkv_q, packed_w(m, s, blk, P_QKV), w->qkv_b, 3 * C, b->big, &ln1,
                           b->xw, NULL, b->products, err);
    if (rc) return rc;
    window_attention(st, ram_swin_cached_bias(m, s, blk), shift ? c->mask[s] : NULL, b->big, b->att, b->xw);
    if ((rc = linear(b->xw, L, C, w->proj_w, w->proj_q, packed_w(m, s, blk, P_PROJ), w->proj_b, C, b->big, NULL, NULL,
                     NULL, b->products, err)))
        return rc;
    window_scatter_add(b->big, b->x, st->res, st->window, shift, C);
    return RAM_OK;
}

/* x = x + fc2(GELU(fc1(LN2(x)))). */
static ram_status mlp_part(const struct ram_model *m, int s, int blk, const struct swin_bufs *b, struct ram_error *err)
{
    const struct ram_swin_stage_info *st = &m->stage[s];
    const struct ram_swin_block_w *w = &m->swin_w.stages[s].blocks[blk];
    int L = st->res * st->res, C = st->dim, hid = m->swin.mlp_ratio * C;
    const struct ram_q8_fuse ln2 = {.ln_w = w->norm2_w, .ln_b = w->norm2_b, .ln_eps = m->swin.eps},
                             residual = {.add = 1};
    ram_status rc = linear(b->x, L, C, w->fc1_w, w->fc1_q, packed_w(m, s, blk, P_FC1), w->fc1_b, hid, b->big, &ln2,
                           b->xw, NULL, b->products, err);
    if (rc) return rc;
    ram_gelu(b->big, (size_t)L * hid);
    return linear(b->big, L, hid, w->fc2_w, w->fc2_q, packed_w(m, s, blk, P_FC2), w->fc2_b, C, b->x, &residual, NULL,
                  b->xw, b->products, err);
}

/* PatchMerging: rows of [x(2y,2x) | x(2y+1,2x) | x(2y,2x+1) | x(2y+1,2x+1)],
** LayerNorm(4C), reduction 4C -> 2C without bias. */
static ram_status patch_merge(const struct ram_model *m, int s, const struct swin_bufs *b, struct ram_error *err)
{
    const struct ram_swin_stage_info *st = &m->stage[s];
    const struct ram_swin_stage_w *sw = &m->swin_w.stages[s];
    int R = st->res, C = st->dim, R2 = R / 2, L2 = R2 * R2;
    move(MOVE_MERGE, b->x, b->xw, R, 0, 0, C, (size_t)L2);
    const struct ram_q8_fuse ln = {.ln_w = sw->down_norm_w, .ln_b = sw->down_norm_b, .ln_eps = m->swin.eps};
    return linear(b->xw, L2, 4 * C, sw->down_red_w, sw->down_red_q, packed_w(m, s, m->swin.depths[s], 0), NULL, 2 * C,
                  b->x, &ln, b->xw, NULL, b->products, err);
}

/* out = [mean of the normed tokens; LayerNorm(x)]. */
static void final_norm(const struct ram_model *m, const float *x, float *out)
{
    const struct ram_swin_stage_info *st = &m->stage[m->swin.n_stages - 1];
    int L = st->res * st->res, C = st->dim;
    float *tok = out + C;
    ram_layernorm(x, tok, L, C, m->swin_w.norm_w, m->swin_w.norm_b, m->swin.eps);
    memset(out, 0, sizeof(float) * C);
    for (int t = 0; t < L; t++) ram_add(out, tok + (size_t)t * C, (size_t)C);
    for (int i = 0; i < C; i++) out[i] /= (float)L;
}

/* ------------------------------------------------------------------ forward */

static void trace(const struct ram_swin_hooks *h, const char *name, const float *x, int rows, int cols)
{
    if (h && h->trace) h->trace(h->trace_arg, name, x, rows, cols);
}

static int aborted(const struct ram_swin_hooks *h) { return h && h->abort_cb && h->abort_cb(h->abort_arg); }

ram_status ram_swin_forward(const struct ram_model *m, const float *chw, float *scratch, float *out,
                            const struct ram_swin_hooks *hooks, struct ram_error *err)
{
    if (!m->swin_cache) return ram_fail(err, RAM_ERR_ARG, "swin: model not prepared (ram_swin_prepare)");
    if (!chw || !scratch || !out) return ram_fail(err, RAM_ERR_ARG, "swin: NULL buffer");
    struct swin_bufs b;
    char name[48];
    carve(m, scratch, &b);
    b.products = hooks ? hooks->products : NULL;
    patch_embed(m, chw, &b);
    trace(hooks, "patch_embed_out", b.x, m->stage[0].res * m->stage[0].res, m->stage[0].dim);
    for (int s = 0; s < m->swin.n_stages; s++) {
        const struct ram_swin_stage_info *st = &m->stage[s];
        for (int blk = 0; blk < m->swin.depths[s]; blk++) {
            if (aborted(hooks)) return ram_fail(err, RAM_ERR_INTERRUPTED, "swin: interrupted");
            ram_status rc = attention_part(m, s, blk, &b, err);
            if (rc || (rc = mlp_part(m, s, blk, &b, err))) return rc;
            snprintf(name, sizeof name, "s%d_b%d_out", s, blk);
            trace(hooks, name, b.x, st->res * st->res, st->dim);
        }
        if (s + 1 < m->swin.n_stages) {
            ram_status rc = patch_merge(m, s, &b, err);
            if (rc) return rc;
            snprintf(name, sizeof name, "s%d_merge_out", s);
            trace(hooks, name, b.x, st->res * st->res / 4, 2 * st->dim);
        }
    }
    final_norm(m, b.x, out);
    trace(hooks, "final_norm_out", out + m->vision_width, m->n_image_tokens - 1, m->vision_width);
    return RAM_OK;
}
