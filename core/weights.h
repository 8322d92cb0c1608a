/*
** weights.h — the weight binder: which tensors a model with a given config
** needs (official state-dict keys, exact shapes), binding them from any
** tensor source (.pth, our model file, CLIP safetensors) into struct
** ram_model, inferring a config from a checkpoint's shapes, and building a
** model straight from a .pth (tests and development).
**
**     struct ram_model *m = 0;
**     if (ram_model_init_from_pth("ram_plus_tiny.pth", "tag_list.txt",
**                                 "tag_list_chinese.txt", "tag_list_threshold.txt",
**                                 NULL, &m, &err)) return fail(err.msg);
**     ... ram_state_init(m, ...), ram_tag_image(...) ...
**     ram_model_free(m);
**
** Key rules (ARCHITECTURE.md sections 6, 7, 10): relative_position_index and
** attn_mask buffers are never bound (the Swin code recomputes them); tagging
** decoder keys are looked up as tagging_head.*, then vision_multi.*, and for
** RAM tag_encoder.* (same layer numbers); wordvec_proj exists only when the
** decoder width differs from the label embedding width; reweight_scale only
** for RAM++. The CLIP text tower lives under "clip." + OpenAI names; Hugging
** Face names (clip.text_model.*) are accepted too, q/k/v concatenated and
** text_projection transposed into buffers the model owns. F16/BF16 tensors
** (and F32 ones not 4-byte aligned) are converted into owned f32 buffers.
*/
#ifndef RAM_WEIGHTS_H
#define RAM_WEIGHTS_H

#include "model.h"

/* What a checkpoint does not say, and ram-convert's options for it. */
struct ram_convert_opts {
    int image_size;   /* 0: infer from an attn_mask buffer (error if the file has none) */
    int window;       /* 0: infer from stage 0's relative_position_bias_table */
    int tagger_heads; /* 0: 4 (the official q2l config) */
    int clip_heads;   /* 0: clip width / 64 */
    int bert_heads;   /* Tag2Text tag encoder and decoder heads; 0: width / 64 (bert-base) */
};

/* Builds a model straight from an official .pth and the tag files (the
** English list gives num_class). tags_zh may be NULL (the English names are
** used); thresholds may be NULL (0.68 for every class, the official default).
** opts may be NULL. The .pth stays open inside the model (weights point into
** it) and is closed by ram_model_free. On success *out is owned by the
** caller (ram_model_free). */
ram_status ram_model_init_from_pth(const char *pth, const char *tags_en, const char *tags_zh, const char *thresholds,
                                   const struct ram_convert_opts *opts, struct ram_model **out, struct ram_error *err);

/* ------------------------------------------------------------------ specs */

enum ram_part { RAM_PART_MAIN = 0, RAM_PART_TAGGER, RAM_PART_CLIP };

/* How `ram-convert --random` fills a tensor. */
enum ram_winit {
    RAM_WINIT_NORMAL = 0, /* N(0, 0.02)-like */
    RAM_WINIT_ZERO,       /* LayerNorm biases */
    RAM_WINIT_ONE,        /* LayerNorm weights */
    RAM_WINIT_UNIT_ROWS,  /* label_embed: random rows of L2 norm 1 */
    RAM_WINIT_LOGIT_SCALE /* reweight_scale: log(1 / 0.07) */
};

#define RAM_WSPEC_NAME 112

struct ram_wspec {
    char name[RAM_WSPEC_NAME]; /* canonical key, e.g. "visual_encoder.norm.weight" */
    int ndim;
    int64_t shape[4];
    const float **dst; /* the model field that receives the pointer (borrowed) */
    float *scalar;     /* for 0-d tensors (reweight_scale): receives the value */
    int part;          /* enum ram_part: selects the aliases tried */
    int init;          /* enum ram_winit */
    int big;           /* stored as F16 by --dtype f16 (matrices and embeddings) */
    /* Swin linear matrices: where the int8 form goes in quantized files
    ** (stored as I8 packed [ceil(out/16), ceil(in/4), 16, 4] + F32
    ** "<name>.qscale" [out]); NULL for every other tensor. */
    const struct ram_q8_weight **q8;
};

/* The tensors m's config needs, in a fixed order (Swin, heads, tagger,
** CLIP). Allocates m's per-layer weight arrays if not done yet. m's config
** (and m->stage[], via ram_swin_derive) must be set. *out is owned by the
** caller (ram_free). */
ram_status ram_model_specs(struct ram_model *m, struct ram_wspec **out, int *n, struct ram_error *err);

/* Tag2Text: points the tag encoder's layers 0 .. tagger.n_layers-1
** cross-attention and FFN at the tagging head's tensors (the official
** tie_encoder_decoder_weights). ram_model_bind does it after binding. */
void ram_t2t_link(struct ram_model *m);

/* ------------------------------------------------------------------ binding */

#define RAM_BIND_CANONICAL 1 /* canonical names only (our model file): no aliases */

/* Looks up and checks (dtype, exact shape) every tensor of ram_model_specs
** and sets m's weight pointers. Pointers borrow from src's storage unless
** converted (then owned by m, see model.h). Errors name the key: "missing
** tensor KEY", "wrong shape for KEY: got [..], expected [..]". */
ram_status ram_model_bind(struct ram_model *m, const struct ram_tensor_source *src, struct ram_error *err);
ram_status ram_model_bind_ex(struct ram_model *m, const struct ram_tensor_source *src, int flags,
                             struct ram_error *err);

/* Fills m's config from a checkpoint's shapes (see models/README.md for the
** rules), with num_class from the tag list; clip.* tensors in src (e.g.
** through ram_join_clip) set has_clip and the CLIP config. Validates the
** result (ram_model_check_config). opts may be NULL. */
ram_status ram_model_infer_config(struct ram_model *m, const struct ram_tensor_source *src, int num_class,
                                  const struct ram_convert_opts *opts, struct ram_error *err);

/* Checks m's config for consistency and sane bounds, sets the constant eps
** values and calls ram_swin_derive. */
ram_status ram_model_check_config(struct ram_model *m, struct ram_error *err);

/* Records a converted buffer that m owns (freed by ram_model_free). On
** failure p is freed. */
ram_status ram_model_own(struct ram_model *m, void *p, struct ram_error *err);

/* Quantized files: makes the int8 forms of the tagging decoder's query,
** attention-output and FFN matrices and of wordvec_proj from their fp32
** weights (owned by m). They are small (47 MB at full size) but do 36 % of
** the multiply-adds, so they are quantized at load rather than stored twice.
** The layers ram_q8_layer_precision keeps out of int8 get bf16 instead, and
** so do the Swin matrices the file stores in fp32 for the same reason. */
ram_status ram_model_quantize_tagger(struct ram_model *m, struct ram_error *err);

/* Run-time precision of a large linear matrix. */
enum ram_prec {
    RAM_PREC_F32 = 0,
    RAM_PREC_BF16,
    RAM_PREC_INT8,
    RAM_PREC_BF16X2,  /* bf16 products of the activations with W's bf16 rounding and its bf16 residual (gemm_bf16.h) */
    RAM_PREC_BF16XA,  /* bf16 products of W's rounding with the activations' rounding and their residual */
    RAM_PREC_BF16X3,  /* both residuals: x_hi W_hi + x_lo W_hi + x_hi W_lo */
    RAM_PREC_BF16ACC, /* not a layer's precision: the accurate bf16 mix, as a path for ram_layer_precision */
    RAM_PREC_INT8X2,  /* int8 products of the activations with W's int8 codes and its int8 residual (gemm_q8.h) */
    RAM_PREC_INT8XA,  /* int8 products of W's codes with the activations' u8 rounding and their residual's */
    RAM_PREC_INT8X3,  /* both residuals: x_hi W_hi + x_lo W_hi + x_hi W_lo */
    RAM_PREC_INT8M,   /* int8, plus W's int8 residual applied to the mean of the rows, as a bias (gemm_q8.h lo_mean) */
    RAM_PREC_INT8XAM, /* int8xa, plus the same correction */
    RAM_PREC_INT8ACC  /* not a layer's precision: the accurate int8 mix of version-3 files, as a path */
};

/* The precision the int8 path gives the matrix of canonical key name
** ("visual_encoder.layers.3.blocks.1.mlp.fc2.weight",
** "tagging_head.encoder.layer.1.output.dense.weight", "wordvec_proj.weight")
** of model m: RAM_PREC_INT8, or RAM_PREC_BF16 for the layers whose int8
** error moves the final probabilities most (the per-layer analysis in
** models/README.md), which include every matrix of the Swin's last stage
** (from m's config). The converter stores the Swin ones it keeps as fp32
** (the binder takes either form, so older int8 files still load; a build
** that predates a layer's move refuses the newer file's F32 form of it). */
int ram_q8_layer_precision(const struct ram_model *m, const char *name);

/* The int8 path of model m: RAM_PREC_INT8ACC for a version-3 file (and a
** model the converter writes as one: m->quant == RAM_QUANT_INT8ACC), else
** RAM_PREC_INT8 (version 2, as it always ran). */
int ram_q8_path(const struct ram_model *m);

/* The precision a path (RAM_PREC_INT8 or RAM_PREC_BF16) gives the matrix
** name: the path's own, or one step up (int8 -> bf16, bf16 -> fp32) for
** the few matrices the per-layer analysis finds sensitive (and, int8 only,
** bf16 for the Swin's last stage). m may be NULL for the bf16 path.
** The path RAM_PREC_BF16ACC is the "accurate bf16" mix that the analysis found
** within 0.005 of fp32: the sensitive matrices fp32, the Swin's bf16x2, the
** decoder's bf16x3. The path RAM_PREC_INT8ACC is the accurate int8 mix
** (version-3 files, models/README.md "The accurate int8 path"): as
** RAM_PREC_INT8, but the Swin blocks' int8 matrices RAM_PREC_INT8M, those
** of the stage before the last RAM_PREC_INT8X2 (their residual is in the
** file either way) and every decoder matrix RAM_PREC_BF16. */
int ram_layer_precision(const struct ram_model *m, const char *name, int path);

/* The bf16 path a bf16 file (and ram_model_use_bf16) runs: RAM_PREC_BF16ACC,
** the accurate mix (Swin bf16x2, decoder bf16x3: within 0.005 of fp32 on the
** full-size trained-like model, at ~1.4-1.5x the plain path's time), unless
** the environment says RAM_BF16=plain (RAM_PREC_BF16). Read when a model is
** loaded or converted. */
int ram_bf16_path(void);

/* The bf16 path at load: every large linear matrix that has its fp32 form
** in the precision ram_layer_precision(m, name, ram_bf16_path()) gives it. */
ram_status ram_model_use_bf16(struct ram_model *m, struct ram_error *err);

/* Chooses a precision for each large linear matrix of m (the Swin linear
** layers, wordvec_proj, the decoder's query, attention-output and FFN
** matrices) through choose(name, ctx) (enum ram_prec, name as above) and
** makes its packed form from the fp32 weights (owned by m; the fp32 ones
** stay, for the cached scorer). Matrices with no fp32 form (int8 in the
** file) and those already packed are left as they are. The bf16 path at
** load: choose returns RAM_PREC_BF16 for all. */
typedef int (*ram_prec_fn)(const char *name, void *ctx);
ram_status ram_model_pack_linear(struct ram_model *m, ram_prec_fn choose, void *ctx, struct ram_error *err);

/* ------------------------------------------------------------------ sources */

/* A source that serves "clip.X" from clip's "X" and everything else from
** main (either may have find == NULL). j must outlive the source. */
struct ram_clip_join {
    struct ram_tensor_source main, clip;
};
struct ram_tensor_source ram_join_clip(struct ram_clip_join *j);

/* A source that remembers which tensors were found, so that callers can
** list (converter --verbose) or reject (our model file) the others.
** capacity: at least the number of distinct tensors the inner source has. */
struct ram_tracker {
    struct ram_tensor_source inner;
    const void **seen; /* owned (ram_free): open-addressing set of view pointers */
    size_t cap;
};
ram_status ram_tracker_init(struct ram_tracker *t, struct ram_tensor_source inner, size_t capacity,
                            struct ram_error *err);
struct ram_tensor_source ram_tracker_source(struct ram_tracker *t);
int ram_tracker_seen(const struct ram_tracker *t, const struct ram_tensor_view *v);
void ram_tracker_free(struct ram_tracker *t);

/* ------------------------------------------------------------------ vocabulary */

/* Sets m's tag names and thresholds from file contents. file_mode 1: text
** files (one name per line, a final newline ends the last line, "\r\n"
** accepted); 0: our file's '\n'-joined names (exactly num_class of them).
** en defines num_class (when m->num_class is 0; otherwise it must match).
** zh NULL: the English names. thr NULL: 0.68 each; thr_f32 (our file) holds
** num_class floats instead of text when not NULL. Names containing NUL bytes
** and count mismatches are errors. */
ram_status ram_model_set_vocab(struct ram_model *m, int file_mode, const char *en, size_t en_len, const char *zh,
                               size_t zh_len, const char *thr, size_t thr_len, const float *thr_f32,
                               struct ram_error *err);

/* Reads a whole (small) file into a NUL-terminated buffer (caller frees with
** ram_free); files over max_len bytes give RAM_ERR_TOO_BIG. */
ram_status ram_read_file(const char *path, size_t max_len, char **out, size_t *len, struct ram_error *err);

/* ------------------------------------------------------------------ writing */

struct ram_write_opts {
    int dtype;            /* enum ram_dtype: RAM_DTYPE_F32 (default when 0) or RAM_DTYPE_F16 */
    int random;           /* 1: ignore m's weights and write random ones (ram-convert --random) */
    uint64_t seed;        /* for random */
    const char *bpe_text; /* the BPE vocabulary text, required when m->has_clip */
    size_t bpe_len;
};

/* Writes m in our model file format (models/README.md) to path, atomically.
** m's config and vocabulary must be set; its weights too unless o->random.
** digest_out (33 bytes, may be NULL) receives the file's checksum. */
ram_status ram_model_write(struct ram_model *m, const char *path, const struct ram_write_opts *o, char *digest_out,
                           struct ram_error *err);
/* The same with quant 1: the Swin linear matrices as int8 (format version 2,
** models/README.md; ram-convert --quant int8-v2), or quant 2: the accurate
** int8 mix (version 3: the Swin blocks' int8 matrices with their residual;
** ram-convert --quant int8). A separate entry point rather than a field so
** that positional initialisers of ram_write_opts stay whole. */
ram_status ram_model_write_q(struct ram_model *m, const char *path, const struct ram_write_opts *o, int quant,
                             char *digest_out, struct ram_error *err);

#endif /* RAM_WEIGHTS_H */
