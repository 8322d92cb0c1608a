/*
** cache_score.h — RAM++ open-set scoring from cached, int8-compressed image
** tokens: the storage layout of the token cache that ram_index keeps per image,
** and a scorer that computes ram_openset_probs over many cached images at once
** with the key/value projections folded into the query.
**
**     // once per image, at indexing time
**     size_t nb = ram_cache_packed_size(n_tok, dim);
**     ram_cache_pack(image_embeds, n_tok, dim, blob, nb, &err);
**
**     // once per query
**     struct ram_cache_query *q = 0;
**     ram_cache_query_init(model, label_embed, n_tags, des_per_tag, 64, &q, &err);
**     struct ram_cache_tokens imgs[64];
**     for (i...) ram_cache_view(blob_i, len_i, n_tok, dim, &imgs[i], &err);
**     ram_cache_score(q, imgs, n, probs, &err);   // n x n_tags probabilities
**     ram_cache_query_free(q);
**
** PACKED LAYOUT, version 2 (RAM_CACHE_LAYOUT). All integers little-endian.
**
**     offset  size         field
**     0       4            magic "RTQ8"
**     4       1            layout version: 2, or 1 (below)
**     5       1            quantisation: 2 = int8 after a randomized Hadamard rotation,
**                          1 = int8 (layout 1); both symmetric, one scale per token
**     6       2            n_tokens (u16)
**     8       2            dim (u16)
**     10      6            zero
**     16      4*n_tokens   scale[t] (IEEE float32)
**     16+4n   n*dim        q[t][d] (int8 in -127..127), token-major; row 0 is the CLS
**
** Layout 2 stores y = T x with T = H D / sqrt(dim): H the Sylvester Hadamard
** matrix, D = diag(s_d), s_d = -1 when bit 16 of (d * 2654435761 mod 2^32)
** is set, else +1. T is orthonormal, so x = T^T y, and it spreads the few
** large channels that image embeddings have over all channels: one scale
** per token then fits every element. Per token: scale = max_d |y_d| / 127,
** q = round(y / scale) (a zero row has scale 0), y ~= scale * q. Layout 1
** is the same without T; the packer writes whichever of the two has the
** smaller squared error for the image (layout 1 always when dim is not a
** power of two). Full-size RAM++ (145 tokens x 512): 74,836 bytes.
**
** The prefilter's unit vector (ram_cache_pack_unit): float32 scale, then dim
** int8 of T (cls / |cls|) (of cls / |cls| itself when dim is not a power of
** two), same rounding.
**
** HOW THE SCORER WORKS. For one query row Q (a class query of the tagging
** decoder) and head h, the decoder's attention logits over the image tokens E
** are Q_h (Wk_h E_j + bk_h) / sqrt(dh) = E_j . u_h + c with u_h = Wk_h^T Q_h /
** sqrt(dh): the constant c cancels in the softmax, so one 512-vector per head
** replaces the key projection of all tokens. The context is Wv_h (p^T E) + bv_h
** because the softmax weights p sum to 1, so the value projection applies once
** to the pooled token instead of to every token. Attention over the cache then
** costs O(tokens x 512) per head and reads each int8 token once per layer; the
** dense layers (query, output dense, FFN, value projection) run batched over
** every (image, tag) row of the call with ram_linear / ram_gemm. With one
** description per tag the first layer's query and u vectors do not depend on
** the image and are computed once in ram_cache_query_init.
**
** With layout 2 the scores are computed in the rotated space, x . u =
** (T x) . (T u): the key and value weights have T folded in once (T
** Wk_h^T, Wv_h T^T, packed for the products), so neither the tokens nor any
** per-image vector is rotated; pictures of layout 1 (and fp32 views) use
** the weights as stored. A batch is scored rotated pictures first, each
** group with its own weights; every row's result is independent of the
** other rows and of the thread count. The attention converts an image's
** int8 tokens to floats once per layer and runs register-blocked. The
** result equals ram_openset_probs on the dequantised tokens up to float
** rounding (the products are reassociated).
**
** The folded key and value weights depend only on the model, so they are
** made once per model and space (on the first call that scores a picture
** stored in it) and shared by every query: two queries on two threads may
** score at once.
**
** Thread safety: a query is used by one thread at a time (it holds scratch);
** the model is only read, except for that one-time cache (an atomic
** publish).
*/
#ifndef RAM_CACHE_SCORE_H
#define RAM_CACHE_SCORE_H

#include "model.h"

#define RAM_CACHE_LAYOUT 2
#define RAM_CACHE_HEADER 16

/* Bytes of a packed token blob; 0 when the sizes are out of range. */
size_t ram_cache_packed_size(int n_tokens, int dim);

/* Quantises n_tokens x dim floats (row-major) into out (cap bytes, at least
** ram_cache_packed_size). Non-finite values give RAM_ERR_ARG. */
ram_status ram_cache_pack(const float *embeds, int n_tokens, int dim, void *out, size_t cap, struct ram_error *err);

/* A borrowed view of one image's tokens: either packed int8 (q, scales) or
** plain fp32 rows (f32 set, q NULL). */
struct ram_cache_tokens {
    int n_tokens, dim;
    const unsigned char *scales; /* n_tokens little-endian floats, possibly unaligned (borrowed) */
    const int8_t *q;             /* n_tokens x dim (borrowed) */
    const float *f32;            /* alternative: n_tokens x dim floats (borrowed) */
    int rotated;                 /* q holds T x (layout 2), not x */
};

/* Checks a packed blob (magic, version, sizes, finite scales) against the
** expected n_tokens and dim and fills *v (pointers into blob: valid while blob
** is). Errors: RAM_ERR_FORMAT with a message naming the mismatch. */
ram_status ram_cache_view(const void *blob, size_t n, int n_tokens, int dim, struct ram_cache_tokens *v,
                          struct ram_error *err);

/* Dequantises (or copies) the tokens into out (n_tokens x dim floats). */
void ram_cache_dequant(const struct ram_cache_tokens *v, float *out);

/* Row 0 (the CLS embedding) of the tokens, dim floats. */
void ram_cache_cls(const struct ram_cache_tokens *v, float *out);

/* ------------------------------------------------------------------ prefilter */

/* A compact unit-length copy of a CLS embedding for the cosine prefilter
** (layout above). */
size_t ram_cache_unit_size(int dim);
ram_status ram_cache_pack_unit(const float *cls, int dim, void *out, size_t cap, struct ram_error *err);

/* 1-bit sign codes: the first stage of ram_index's prefilter cascade. Bit d
** (byte d / 8, bit d % 8) of an image's code is set when element d of its
** packed unit vector is positive, so the code lives in the same (rotated,
** for power-of-two widths) space as the unit vector and can be derived from
** a stored unit vector without the model. The Hamming distance between two
** codes estimates the angle between the vectors (after the rotation, as
** sign random projections do). ram_cache_code_size(512) = 64 bytes. */
size_t ram_cache_code_size(int dim);
/* code (ram_cache_code_size bytes) from a packed unit vector; RAM_ERR_FORMAT
** when unit_len is not ram_cache_unit_size(dim). */
ram_status ram_cache_unit_code(const void *unit, size_t unit_len, int dim, unsigned char *code, struct ram_error *err);
/* The dim floats of a packed unit vector (scale x int8, in its stored
** space) into out; RAM_ERR_FORMAT when unit_len is not
** ram_cache_unit_size(dim) or its scale is not finite. */
ram_status ram_cache_unit_floats(const void *unit, size_t unit_len, int dim, float *out);
/* Number of bits that differ between two codes of n bytes. */
int ram_cache_code_distance(const unsigned char *a, const unsigned char *b, size_t n);

/* ------------------------------------------------------------------ scoring */

struct ram_cache_query;

/* Prepares the scoring of n_tags open-set tags with des_per_tag descriptions
** each: label_embed holds n_tags * des_per_tag rows of the model's
** embed_dim, tag-major, each L2-normalised (copied). max_images bounds the
** images per ram_cache_score call. The model must outlive the query; *out is
** owned by the caller (ram_cache_query_free). RAM_ERR_UNSUPPORTED for a RAM
** model with des_per_tag > 1 (RAM has no reweighting). */
ram_status ram_cache_query_init(const struct ram_model *m, const float *label_embed, int n_tags, int des_per_tag,
                                int max_images, struct ram_cache_query **out, struct ram_error *err);
void ram_cache_query_free(struct ram_cache_query *q);

/* probs receives n x n_tags probabilities (image-major) for the n images
** (1 <= n <= max_images); every view must have the model's token count and
** width (RAM_ERR_ARG otherwise). */
ram_status ram_cache_score(struct ram_cache_query *q, const struct ram_cache_tokens *imgs, int n, float *probs,
                           struct ram_error *err);

/* Benchmarks and tests: on != 0 makes q score as before the rotations were
** folded into its key and value weights (the products on the model's
** weights, each image's query and pooled vectors rotated one by one), the
** baseline the folded scorer is measured and checked against. */
void ram_cache_query_per_image(struct ram_cache_query *q, int on);

/* on != 0: ram_cache_score computes the query, value, attention-output and
** FFN products in bf16 (gemm_bf16.h: AMX tiles or vdpbf16ps; the attention
** and the key side stay fp32): 1.35-1.5x faster, and within about 0.02 of
** the exact scores (bench_cascade exact_approx_*: on 20,000 real outputs of
** the default model no exact top-20 member fell outside the approximate top
** 32), so a RANKING stage: score many candidates approximately, rescore the
** best few (e.g. 50 of 50,000) with on = 0 for the exact scores and top-k.
** The scores keep the folded scorer's guarantees (the same bits in any
** batch and at any thread count), not its values. Returns whether it is
** on: only on CPUs where bf16 products beat fp32 ones (AVX512-BF16 or AMX),
** else the scores stay exact. Uses the model's bf16 copies of those
** weights, made by the first approximate call (about half the fp32 size). */
int ram_cache_query_approx(struct ram_cache_query *q, int on);

/* Prefilter score of a packed unit CLS (ram_cache_pack_unit, unit_len bytes):
** the largest cosine between the image and the query's descriptions. -2 when
** the blob has the wrong size. */
float ram_cache_prefilter(const struct ram_cache_query *q, const void *unit, size_t unit_len);

/* The sign codes of the query's descriptions (n_tags x des_per_tag rows, in
** the space of the stored unit vectors): out (cap bytes) receives rows x
** ram_cache_code_size(dim) bytes; returns rows, or -1 (nothing written) when
** they do not fit. */
int ram_cache_query_codes(const struct ram_cache_query *q, unsigned char *out, size_t cap);

#ifdef RAM_TEST
/* The straightforward reference the scorer is tested against: the decoder
** of ARCHITECTURE.md section 4 on fp32 tokens, one image, K/V projected for
** every token (no folding). probs: n_tags floats. */
ram_status ram_cache_reference(const struct ram_model *m, const float *image_embeds, const float *label_embed,
                               int n_tags, int des_per_tag, float *probs, struct ram_error *err);
#endif

#endif /* RAM_CACHE_SCORE_H */
