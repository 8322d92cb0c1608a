/*
** swin.h — the Swin Transformer image encoder of RAM/RAM++: config checks
** (ram_swin_derive, declared in model.h), the per-model precomputation
** (relative-position biases and shift masks) and the forward pass from a
** preprocessed 3 x S x S image to the final-normed tokens.
*/
#ifndef RAM_SWIN_H
#define RAM_SWIN_H

#include "model.h"

#include <stddef.h>

/* Optional callbacks of a forward. Every field may be NULL. */
struct ram_swin_hooks {
    /* Polled between blocks; non-zero makes the forward return RAM_ERR_INTERRUPTED. */
    int (*abort_cb)(void *arg);
    void *abort_arg;
    /* Called with each intermediate ("patch_embed_out", "s0_b0_out",
    ** "s0_merge_out", ..., "final_norm_out"): rows x cols, row-major, in
    ** raster token order. x is borrowed for the duration of the call. */
    void (*trace)(void *arg, const char *name, const float *x, int rows, int cols);
    void *trace_arg;
    /* The products' working memory (scratch.h), owned by the caller's state
    ** and borrowed for the call; NULL: each product allocates its own. */
    struct ram_scratch *products;
};

/* After the weights are bound (m->swin_w) and m->stage[] derived: builds
** m->swin_cache (owned by the model; free with ram_swin_release), i.e. per
** block the relative-position bias expanded to (heads, N, N), per stage
** the -100 shift masks, and the fp32 matrices packed for the sgemm kernel
** (best effort: sgemm.h's ram_sgemm_pack_weights; their pages in the file
** mapping are then released with madvise; RAM_PREPACK=0: not packed).
** Calling it again replaces the cache. */
ram_status ram_swin_prepare(struct ram_model *m, struct ram_error *err);

/* Frees m->swin_cache (if any) and sets it to NULL. */
void ram_swin_release(struct ram_model *m);

/* Floats of scratch one ram_swin_forward needs (0 if the config overflows). */
size_t ram_swin_scratch_floats(const struct ram_model *m);

/* One forward. chw: in_chans x S x S input (borrowed); scratch: caller-owned,
** ram_swin_scratch_floats(m) floats; out: caller-owned, n_image_tokens x
** vision_width floats: row 0 is the mean of the final-normed tokens, rows
** 1.. the final-normed tokens in raster order. m must be prepared (after its
** last ram_swin_derive). hooks may be NULL. Reads m only, so concurrent
** calls are safe with distinct scratch/out buffers. Never allocates. */
ram_status ram_swin_forward(const struct ram_model *m, const float *chw, float *scratch, float *out,
                            const struct ram_swin_hooks *hooks, struct ram_error *err);

/* Introspection (tests, tools). The cached (heads, N, N) bias of a block and
** the (nW, N, N) shift mask of a stage (NULL when the stage is unshifted or
** the model is not prepared); borrowed, valid until ram_swin_release. */
const float *ram_swin_cached_bias(const struct ram_model *m, int stage, int block);
const float *ram_swin_cached_mask(const struct ram_model *m, int stage);

/* The layout rules behind the cache: the relative-position table row of
** tokens a, b (row-major) of a w x w window, and the shift-mask region id of
** rolled-frame position (y, x) of an R x R grid with window w and shift s. */
int ram_swin_rel_index(int a, int b, int w);
int ram_swin_region(int y, int x, int R, int w, int s);

#endif /* RAM_SWIN_H */
