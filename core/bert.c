/*
** bert.c — one post-LN BERT layer (API and usage in bert.h), as
** recognize-anything's bert.py BertLayer computes it:
**
**     A1 = LN(SelfAttn(H) Wo + bo + H)          (if has_self)
**     A2 = LN(CrossAttn(A1, E) Wo + bo + A1)    (if has_cross)
**     H' = LN(W2 GELU(W1 A2 + b1) + b2 + A2)
**
** HOW IT WORKS. All projections run over every row of the call at once (the
** beams of a decoding step share each weight read, which is what a
** memory-bound decoder step costs). Attention is per sequence and head:
** scores = (q k^T) / sqrt(head_dim) + mask, softmax by rows, @ v. The new
** positions' keys/values go into the caller's per-sequence caches before the
** scores are taken, so a causal step over one new token attends to the
** cache plus itself. Within an attention block the query buffer is reused
** for the context: head h's scores are taken from its query columns before
** its context overwrites them.
**
** Scratch layout (floats, each area rounded up to 16):
**     qc   rows x hidden   queries, then the attention context
**     S    rows x max(n_kv, n_ctx)  scores of one head
**     A    rows x hidden   attention block output
**     F    rows x intermediate      FFN hidden
**     kv   2 x rows x hidden        new keys/values before they go to the caches
*/
#include "bert.h"

#include "gemv_w8.h"
#include "ops.h"

#include <math.h>
#include <string.h>

static size_t round16(size_t n) { return (n + 15) & ~(size_t)15; }

void ram_bert_cross_kv(const struct ram_bert_layer *L, const float *enc, int n_kv, float *K, float *V)
{
    ram_linear_packed(enc, n_kv, L->kv_width, L->cross.k_w, L->cross.k_p, L->cross.k_b, L->hidden, K);
    ram_linear_packed(enc, n_kv, L->kv_width, L->cross.v_w, L->cross.v_p, L->cross.v_b, L->hidden, V);
}

size_t ram_bert_layer_scratch_floats_ex(const struct ram_bert_layer *L, int rows, int n_kv, int n_ctx)
{
    size_t qc, s, f, total;
    int ns = n_kv > n_ctx ? n_kv : n_ctx;
    if (rows < 1 || ns < 1 || n_kv < 0 || n_ctx < 0 || L->hidden < 1 || L->intermediate < 1) return 0;
    if (!ram_mul_ok((size_t)rows, (size_t)L->hidden, &qc) || !ram_mul_ok((size_t)rows, (size_t)ns, &s) ||
        !ram_mul_ok((size_t)rows, (size_t)L->intermediate, &f))
        return 0;
    qc = round16(qc), s = round16(s), f = round16(f);
    total = 2 * qc + s + f;         /* query/context, scores, attention output, FFN */
    if (n_ctx > 0) total += 2 * qc; /* new keys and values */
    if (total < qc || total < f || total > SIZE_MAX / sizeof(float)) return 0;
    return total;
}

size_t ram_bert_layer_scratch_floats(const struct ram_bert_layer *L, int rows, int n_kv)
{
    return ram_bert_layer_scratch_floats_ex(L, rows, n_kv, 0);
}

/* A linear layer through its weight-only int8 form, else its int8 one, else
** fp32 (from its packed panels P when the model has them). */
static ram_status lin(const float *x, int rows, int in, const float *W, const struct ram_sgemm_packed *P,
                      const struct ram_q8_weight *q, const struct ram_w8 *w8, const float *b, int out, float *y,
                      struct ram_scratch *ps, struct ram_error *err)
{
    if (w8) {
        ram_w8_linear(x, rows, w8, b, y);
        return RAM_OK;
    }
    if (q) return ram_linear_q(x, rows, in, W, q, b, out, y, ps, err);
    /* A decoding step's few rows: a row's result that does not depend on
    ** the rows beside it, so the step (3 rows) and verified decoding's check
    ** of many steps at once (tag2text.c) agree bit for bit. On our sgemm
    ** both branches are the same product. */
    if (rows <= RAM_LINEAR_FEW_ROWS)
        ram_linear_invariant_packed(x, rows, in, W, P, b, out, y);
    else
        ram_linear_packed(x, rows, in, W, P, b, out, y);
    return RAM_OK;
}

/* LN(ctx Wo + bo + H) into A (rows x hid). */
static ram_status attn_out(const struct ram_bert_attn_w *w, const struct ram_q8_weight *oq, const struct ram_w8 *o8,
                           const float *ctx, const float *H, int rows, int hid, float eps, float *A,
                           struct ram_scratch *ps, struct ram_error *err)
{
    ram_status rc = lin(ctx, rows, hid, w->o_w, w->o_p, oq, o8, w->o_b, hid, A, ps, err);
    if (rc) return rc;
    ram_add(A, H, (size_t)rows * hid);
    ram_layernorm(A, A, rows, hid, w->ln_w, w->ln_b, eps);
    return RAM_OK;
}

void ram_bert_self_attend(const struct ram_bert_layer *L, float *q, int r, const struct ram_bert_cache *c, int n_past,
                          const float *key_bias, float *S)
{
    const int hid = L->hidden, dh = hid / L->heads, n_ctx = n_past + r;
    const float div = (float)sqrt((double)dh);
    for (int h = 0; h < L->heads; h++) {
        float *qh = q + (size_t)h * dh;
        ram_gemm(0, 1, r, n_ctx, dh, 1.0f, qh, hid, c->k + (size_t)h * dh, hid, 0.0f, S, n_ctx);
        for (int i = 0; i < r; i++) {
            float *s = S + (size_t)i * n_ctx;
            for (int j = 0; j < n_ctx; j++) {
                /* bert.py multiplies the causal and padding masks, then
                ** (1 - m) * -10000: one -10000 for a key masked either way. */
                float bias = key_bias ? key_bias[j] : 0.0f;
                if (L->causal && j > n_past + i) bias = RAM_BERT_MASKED;
                s[j] = s[j] / div + bias;
            }
        }
        ram_softmax_rows(S, r, n_ctx);
        ram_gemm(0, 0, r, dh, n_ctx, 1.0f, S, n_ctx, c->v + (size_t)h * dh, hid, 0.0f, qh, hid);
    }
}

void ram_bert_cross_attend(const struct ram_bert_layer *L, float *q, int rows, const float *K, const float *V, int n_kv,
                           float *S)
{
    const int hid = L->hidden, dh = hid / L->heads;
    /* torch divides the product by math.sqrt(head_dim), a float32 scalar op. */
    const float div = (float)sqrt((double)dh);
    for (int h = 0; h < L->heads; h++) {
        float *qh = q + (size_t)h * dh;
        ram_gemm(0, 1, rows, n_kv, dh, 1.0f, qh, hid, K + (size_t)h * dh, hid, 0.0f, S, n_kv);
        ram_softmax_rows_div(S, rows, n_kv, div); /* of S / div, rounded as torch does */
        /* The context of head h replaces its (consumed) query columns. */
        ram_gemm(0, 0, rows, dh, n_kv, 1.0f, S, n_kv, V + (size_t)h * dh, hid, 0.0f, qh, hid);
    }
}

/* Self-attention of n_seq sequences of r new rows each; A receives the block output. */
static ram_status self_block(const struct ram_bert_layer *L, const float *H, int n_seq, int r,
                             const struct ram_bert_self *sa, float *qc, float *S, float *kvn, float *A,
                             struct ram_error *err)
{
    const int hid = L->hidden, rows = n_seq * r;
    const struct ram_bert_attn_w *w = &L->self;
    float *Kn = kvn, *Vn = kvn + round16((size_t)rows * hid);
    ram_status rc;
    if ((rc = lin(H, rows, hid, w->q_w, w->q_p, NULL, L->sq_w8, w->q_b, hid, qc, L->products, err)) ||
        (rc = lin(H, rows, hid, w->k_w, w->k_p, NULL, L->sk_w8, w->k_b, hid, Kn, L->products, err)) ||
        (rc = lin(H, rows, hid, w->v_w, w->v_p, NULL, L->sv_w8, w->v_b, hid, Vn, L->products, err)))
        return rc;
    for (int b = 0; b < n_seq; b++) {
        const struct ram_bert_cache *c = &sa->cache[b];
        memcpy(c->k + (size_t)sa->n_past * hid, Kn + (size_t)b * r * hid, sizeof(float) * (size_t)r * hid);
        memcpy(c->v + (size_t)sa->n_past * hid, Vn + (size_t)b * r * hid, sizeof(float) * (size_t)r * hid);
        ram_bert_self_attend(L, qc + (size_t)b * r * hid, r, c, sa->n_past, sa->key_bias, S);
    }
    return attn_out(w, NULL, L->so_w8, qc, H, rows, hid, L->eps, A, L->products, err);
}

ram_status ram_bert_layer_forward_ex(const struct ram_bert_layer *L, float *H, int n_seq, int r,
                                     const struct ram_bert_self *sa, const float *K, const float *V, int n_kv,
                                     const float *Q0, float *scratch, struct ram_error *err)
{
    const int hid = L->hidden, heads = L->heads, inter = L->intermediate;
    if (hid < 1 || heads < 1 || hid % heads || inter < 1 || n_seq < 1 || r < 1 || (L->has_cross && n_kv < 1) ||
        (L->has_self && (!sa || !sa->cache || sa->n_past < 0)) || (L->has_self && Q0))
        return ram_fail(err, RAM_ERR_ARG, "bert layer: hidden %d, heads %d, intermediate %d, %d x %d rows, %d states",
                        hid, heads, inter, n_seq, r, n_kv);
    const int rows = n_seq * r;
    const int n_ctx = L->has_self ? sa->n_past + r : 0, ns = n_kv > n_ctx ? n_kv : n_ctx;
    ram_status rc;
    const size_t rh = round16((size_t)rows * hid);
    float *qc = scratch, *S = qc + rh, *A = S + round16((size_t)rows * ns);
    float *F = A + rh, *kvn = F + round16((size_t)rows * inter);

    if (L->has_self) {
        if ((rc = self_block(L, H, n_seq, r, sa, qc, S, kvn, A, err))) return rc;
        memcpy(H, A, sizeof(float) * (size_t)rows * hid);
    }
    if (L->has_cross) {
        const struct ram_bert_attn_w *w = &L->cross;
        if (Q0)
            memcpy(qc, Q0, sizeof(float) * (size_t)rows * hid);
        else if ((rc = lin(H, rows, hid, w->q_w, w->q_p, L->q_q, L->cq_w8, w->q_b, hid, qc, L->products, err)))
            return rc;
        ram_bert_cross_attend(L, qc, rows, K, V, n_kv, S);
        if ((rc = attn_out(w, L->ao_q, L->co_w8, qc, H, rows, hid, L->eps, A, L->products, err))) return rc;
    } else {
        memcpy(A, H, sizeof(float) * (size_t)rows * hid);
    }

    if ((rc = lin(A, rows, hid, L->i_w, L->i_p, L->i_q, L->i_w8, L->i_b, inter, F, L->products, err))) return rc;
    ram_gelu(F, (size_t)rows * inter);
    if ((rc = lin(F, rows, inter, L->o_w, L->o_p, L->o_q, L->o_w8, L->o_b, hid, H, L->products, err))) return rc;
    ram_add(H, A, (size_t)rows * hid);
    ram_layernorm(H, H, rows, hid, L->ln_w, L->ln_b, L->eps);
    return RAM_OK;
}

ram_status ram_bert_layer_forward(const struct ram_bert_layer *L, float *H, int rows, const float *K, const float *V,
                                  int n_kv, const float *Q0, float *scratch, struct ram_error *err)
{
    if (L->has_self)
        return ram_fail(err, RAM_ERR_UNSUPPORTED,
                        "bert layer: self-attention needs a key/value cache (ram_bert_layer_forward_ex)");
    return ram_bert_layer_forward_ex(L, H, 1, rows, NULL, K, V, n_kv, Q0, scratch, err);
}
