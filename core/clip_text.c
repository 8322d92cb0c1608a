/*
** clip_text.c — the CLIP text encoder forward pass (API in clip_text.h):
** token embedding + positional embedding, `layers` pre-LN residual blocks
** (causal multi-head self-attention, QuickGELU MLP of width 4W), ln_final,
** the row of the first largest id (EOT), times text_projection.
**
** HOW IT WORKS
**
** Only positions 0..eot are computed: with the causal mask no position sees
** a later one, so the padding after EOT cannot change the pooled row. The
** attention runs per head on strided views of the fused qkv rows (no
** copies): S = Q_h K_h^T / sqrt(head_dim) by ram_gemm, a softmax over each
** row's first i+1 entries (the causal mask; the rest set to 0), then P V_h
** written straight into that head's columns of the attention output. All
** products go through core/ops.h; nothing here touches BLAS.
**
** Scratch layout (n = context, W = width), floats:
**     x     n*W    residual stream
**     h     n*W    LayerNorm output, then sublayer output
**     qkv   n*3W   fused in_proj output, rows [q | k | v]
**     att   n*W    heads concatenated
**     mlp   n*4W   c_fc output
**     s     n*n    one head's attention probabilities
*/
#include "clip_text.h"

#include "ops.h"

#include <math.h>
#include <string.h>

static int config_ok(const struct ram_clip_config *c)
{
    return c && c->vocab > 0 && c->context > 0 && c->width > 0 && c->heads > 0 && c->width % c->heads == 0 &&
           c->layers >= 0 && c->embed_dim > 0 && c->eps > 0 && c->width <= (1 << 20) && c->context <= (1 << 16);
}

size_t ram_clip_scratch_floats(const struct ram_clip_config *cfg)
{
    size_t a, b, n;
    if (!config_ok(cfg)) return 0;
    if (!ram_mul_ok((size_t)cfg->context, (size_t)cfg->width, &a)) return 0;
    if (!ram_mul_ok(a, 10, &a)) return 0;
    if (!ram_mul_ok((size_t)cfg->context, (size_t)cfg->context, &b)) return 0;
    n = a + b;
    return n < a ? 0 : n;
}

/* Runs the embedding and the first n_layers blocks over positions 0..n-1;
** the activations end in scratch (the x region). */
static void trunk(const struct ram_clip_config *cfg, const struct ram_clip_w *w, const int32_t *ids, int n,
                  int n_layers, float *scratch)
{
    const int W = cfg->width, H = cfg->heads, hd = W / H, F = 4 * W;
    const size_t nW = (size_t)cfg->context * W;
    float *x = scratch, *h = x + nW, *qkv = h + nW, *att = qkv + 3 * nW, *mlp = att + nW, *s = mlp + 4 * nW;
    const float scale = 1.0f / sqrtf((float)hd);

    for (int i = 0; i < n; i++) {
        const float *te = w->tok_emb + (size_t)ids[i] * W, *pe = w->pos_emb + (size_t)i * W;
        float *xr = x + (size_t)i * W;
        for (int c = 0; c < W; c++) xr[c] = te[c] + pe[c];
    }
    for (int l = 0; l < n_layers; l++) {
        const struct ram_clip_layer_w *L = &w->layers[l];

        ram_layernorm(x, h, n, W, L->ln1_w, L->ln1_b, cfg->eps);
        ram_linear(h, n, W, L->in_w, L->in_b, 3 * W, qkv);
        for (int hh = 0; hh < H; hh++) {
            const float *q = qkv + (size_t)hh * hd, *k = q + W, *v = q + 2 * W;
            ram_gemm(0, 1, n, n, hd, scale, q, 3 * W, k, 3 * W, 0.0f, s, n);
            for (int i = 0; i < n; i++) { /* causal: row i attends to 0..i */
                float *sr = s + (size_t)i * n;
                ram_softmax_rows(sr, 1, i + 1);
                memset(sr + i + 1, 0, sizeof(float) * (size_t)(n - i - 1));
            }
            ram_gemm(0, 0, n, hd, n, 1.0f, s, n, v, 3 * W, 0.0f, att + (size_t)hh * hd, W);
        }
        ram_linear(att, n, W, L->out_w, L->out_b, W, h);
        ram_add(x, h, (size_t)n * W);

        ram_layernorm(x, h, n, W, L->ln2_w, L->ln2_b, cfg->eps);
        ram_linear(h, n, W, L->fc_w, L->fc_b, F, mlp);
        ram_quick_gelu(mlp, (size_t)n * F);
        ram_linear(mlp, n, F, L->proj_w, L->proj_b, W, h);
        ram_add(x, h, (size_t)n * W);
    }
}

/* Checks the arguments and finds the pooled position (first largest id). */
static ram_status check_args(const struct ram_clip_config *cfg, const struct ram_clip_w *w, const int32_t *ids,
                             int n_ids, const float *scratch, int *eot, struct ram_error *err)
{
    if (!config_ok(cfg)) return ram_fail(err, RAM_ERR_ARG, "clip text: invalid configuration");
    if (!w || !ids || !scratch || (cfg->layers && !w->layers))
        return ram_fail(err, RAM_ERR_ARG, "clip text: missing weights or buffers");
    if (n_ids < 1 || n_ids > cfg->context)
        return ram_fail(err, RAM_ERR_ARG, "clip text: %d tokens, expected 1..%d", n_ids, cfg->context);
    int best = 0;
    for (int i = 0; i < n_ids; i++) {
        if (ids[i] < 0 || ids[i] >= cfg->vocab)
            return ram_fail(err, RAM_ERR_ARG, "clip text: token id %d at position %d is outside 0..%d", (int)ids[i], i,
                            cfg->vocab - 1);
        if (ids[i] > ids[best]) best = i;
    }
    *eot = best;
    return RAM_OK;
}

ram_status ram_clip_encode(const struct ram_clip_config *cfg, const struct ram_clip_w *w, const int32_t *ids, int n_ids,
                           float *scratch, float *out, struct ram_error *err)
{
    int eot = 0;
    ram_status rc = check_args(cfg, w, ids, n_ids, scratch, &eot, err);
    if (rc) return rc;
    if (!out) return ram_fail(err, RAM_ERR_ARG, "clip text: missing output buffer");
    trunk(cfg, w, ids, eot + 1, cfg->layers, scratch);

    const int W = cfg->width;
    float *row = scratch + (size_t)eot * W, *h = scratch + (size_t)cfg->context * W;
    ram_layernorm(row, h, 1, W, w->lnf_w, w->lnf_b, cfg->eps);
    ram_gemm(0, 0, 1, cfg->embed_dim, W, 1.0f, h, W, w->text_proj, cfg->embed_dim, 0.0f, out,
             cfg->embed_dim); /* x @ P, P is (W, E) */
    return RAM_OK;
}

#ifdef RAM_TEST
ram_status ram_clip_debug_rows(const struct ram_clip_config *cfg, const struct ram_clip_w *w, const int32_t *ids,
                               int n_ids, int n_layers, int final_ln, float *scratch, float *rows, int *n_rows,
                               struct ram_error *err)
{
    int eot = 0;
    ram_status rc = check_args(cfg, w, ids, n_ids, scratch, &eot, err);
    if (rc) return rc;
    if (n_layers < 0 || n_layers > cfg->layers || !rows || !n_rows)
        return ram_fail(err, RAM_ERR_ARG, "clip text: bad debug request");
    trunk(cfg, w, ids, eot + 1, n_layers, scratch);
    if (final_ln)
        ram_layernorm(scratch, rows, eot + 1, cfg->width, w->lnf_w, w->lnf_b, cfg->eps);
    else
        memcpy(rows, scratch, sizeof(float) * (size_t)(eot + 1) * cfg->width);
    *n_rows = eot + 1;
    return RAM_OK;
}
#endif
