/*
** model.h — the inside of struct ram_model: architecture configs and the
** weight pointers of every part (Swin, tagging decoder, CLIP text tower).
** Each weight field names its PyTorch state-dict key. All weight pointers are
** fp32, row-major, borrowed from the mmap'd file unless the loader had to
** convert them (f16 files, HF-layout CLIP), in which case the model owns the
** converted copy (listed in `owned`).
*/
#ifndef RAM_MODEL_H
#define RAM_MODEL_H

#include "internal.h"

#define RAM_MAX_STAGES 8

struct ram_q8_weight; /* gemm_q8.h */
struct ram_w8;        /* gemv_w8.h */

struct ram_swin_config {
    int image_size; /* square input, e.g. 384 */
    int patch_size; /* 4 */
    int in_chans;   /* 3 */
    int embed_dim;  /* channels of stage 0, e.g. 192 */
    int n_stages;   /* 4 */
    int depths[RAM_MAX_STAGES];
    int heads[RAM_MAX_STAGES];
    int window;    /* configured window, e.g. 12 */
    int mlp_ratio; /* 4 */
    float eps;     /* 1e-5 */
};

/* Derived per-stage facts (filled by ram_swin_derive). */
struct ram_swin_stage_info {
    int res; /* tokens per side at this stage */
    int dim; /* channels */
    int heads;
    int window; /* effective window: min(window, res) */
    int shift;  /* shift of odd blocks: window/2, or 0 when res <= window */
};

struct ram_swin_block_w {
    const float *norm1_w, *norm1_b; /* blocks.{b}.norm1.weight/bias (C) */
    const float *rpb_table;         /* blocks.{b}.attn.relative_position_bias_table ((2w-1)^2, heads) */
    const float *qkv_w, *qkv_b;     /* blocks.{b}.attn.qkv.weight (3C, C) / bias (3C) */
    const float *proj_w, *proj_b;   /* blocks.{b}.attn.proj.weight (C, C) / bias (C) */
    const float *norm2_w, *norm2_b; /* blocks.{b}.norm2.weight/bias (C) */
    const float *fc1_w, *fc1_b;     /* blocks.{b}.mlp.fc1.weight (4C, C) / bias (4C) */
    const float *fc2_w, *fc2_b;     /* blocks.{b}.mlp.fc2.weight (C, 4C) / bias (C) */
    /* int8 forms of the four matrices in quantized files (m->quant); the
    ** fp32 pointer is then NULL. Owned by the model (listed in `owned`). */
    const struct ram_q8_weight *qkv_q, *proj_q, *fc1_q, *fc2_q;
};

struct ram_swin_stage_w {
    struct ram_swin_block_w *blocks;        /* depths[s] entries; owned by the model (ram_free) */
    const float *down_norm_w, *down_norm_b; /* layers.{s}.downsample.norm.weight/bias (4C); NULL in the last stage */
    const float *down_red_w;                /* layers.{s}.downsample.reduction.weight (2C, 4C), no bias */
    const struct ram_q8_weight *down_red_q; /* its int8 form (quantized files; then down_red_w is NULL) */
};

struct ram_swin_w {
    const float *patch_w, *patch_b;                 /* visual_encoder.patch_embed.proj.weight (E, 3, p, p) / bias (E) */
    const float *patch_norm_w, *patch_norm_b;       /* visual_encoder.patch_embed.norm.weight/bias (E) */
    struct ram_swin_stage_w stages[RAM_MAX_STAGES]; /* visual_encoder.layers.{s} */
    const float *norm_w, *norm_b;                   /* visual_encoder.norm.weight/bias (8E for 4 stages) */
};

struct ram_tagger_config {
    int hidden;        /* 768 */
    int n_layers;      /* 2 */
    int n_heads;       /* 4 */
    int intermediate;  /* 3072 */
    int encoder_width; /* width of image_embeds = label embedding width (512) */
    float eps;         /* 1e-12 */
};

struct ram_tagger_layer_w {     /* tagging_head.encoder.layer.{l}. */
    const float *q_w, *q_b;     /* crossattention.self.query.weight (H, H) / bias */
    const float *k_w, *k_b;     /* crossattention.self.key.weight (H, 512) / bias */
    const float *v_w, *v_b;     /* crossattention.self.value.weight (H, 512) / bias */
    const float *ao_w, *ao_b;   /* crossattention.output.dense.weight (H, H) / bias */
    const float *aln_w, *aln_b; /* crossattention.output.LayerNorm.weight/bias */
    const float *i_w, *i_b;     /* intermediate.dense.weight (I, H) / bias (I) */
    const float *o_w, *o_b;     /* output.dense.weight (H, I) / bias (H) */
    const float *oln_w, *oln_b; /* output.LayerNorm.weight/bias */
    /* int8 forms made at load in quantized files (the fp32 ones stay for
    ** cache_score.c); owned by the model; NULL otherwise. */
    const struct ram_q8_weight *q_q, *ao_q, *i_q, *o_q;
};

struct ram_clip_config {
    int vocab;     /* 49408 */
    int context;   /* 77 */
    int width;     /* 512 */
    int heads;     /* 8 */
    int layers;    /* 12 */
    int embed_dim; /* 512: output of text_projection */
    float eps;     /* 1e-5 */
};

struct ram_clip_layer_w {         /* transformer.resblocks.{i}. */
    const float *ln1_w, *ln1_b;   /* ln_1.weight/bias (W) */
    const float *in_w, *in_b;     /* attn.in_proj_weight (3W, W) rows [q; k; v] / in_proj_bias (3W) */
    const float *out_w, *out_b;   /* attn.out_proj.weight (W, W) / bias */
    const float *ln2_w, *ln2_b;   /* ln_2.weight/bias */
    const float *fc_w, *fc_b;     /* mlp.c_fc.weight (4W, W) / bias */
    const float *proj_w, *proj_b; /* mlp.c_proj.weight (W, 4W) / bias */
};

struct ram_clip_w {
    const float *tok_emb;            /* token_embedding.weight (vocab, W) */
    const float *pos_emb;            /* positional_embedding (context, W) */
    struct ram_clip_layer_w *layers; /* owned by the model (ram_free) */
    const float *lnf_w, *lnf_b;      /* ln_final.weight/bias */
    const float *text_proj;          /* text_projection (W, E): out = x @ P */
};

struct ram_bpe; /* bpe.h */

/* ------------------------------------------------------------------ Tag2Text */

/* A BERT stack of Tag2Text (med_config.json): the tag encoder or the caption
** decoder. */
struct ram_bert_config {
    int vocab;         /* 30524: bert-base-uncased + [DEC] + [ENC] */
    int max_pos;       /* 512 position embeddings */
    int hidden;        /* 768 */
    int layers;        /* 12 */
    int heads;         /* 12 (not visible in the weights) */
    int intermediate;  /* 3072 */
    int encoder_width; /* K/V input width of the cross-attention (1024 tag encoder, 768 decoder) */
    float eps;         /* LayerNorm 1e-12 */
};

struct ram_bert_attn_tensors { /* {attention|crossattention}. */
    const float *q_w, *q_b;    /* self.query.weight (H, H) / bias */
    const float *k_w, *k_b;    /* self.key.weight (H, kv) / bias */
    const float *v_w, *v_b;    /* self.value.weight (H, kv) / bias */
    const float *o_w, *o_b;    /* output.dense.weight (H, H) / bias */
    const float *ln_w, *ln_b;  /* output.LayerNorm.weight / bias */
};

struct ram_bert_layer_tensors {         /* {prefix}.encoder.layer.{l}. */
    struct ram_bert_attn_tensors self;  /* attention.* */
    struct ram_bert_attn_tensors cross; /* crossattention.* */
    const float *i_w, *i_b;             /* intermediate.dense.weight (I, H) / bias */
    const float *o_w, *o_b;             /* output.dense.weight (H, I) / bias */
    const float *ln_w, *ln_b;           /* output.LayerNorm.weight / bias */
    /* Caption decoder of quantized files: weight-only int8 forms
    ** (gemv_w8.h) of self q/k/v/o, cross q/o and the FFN matrices, made at
    ** load by ram_t2t_quantize_decoder (owned by the model, in `owned`);
    ** NULL: fp32. */
    const struct ram_w8 *sq_w8, *sk_w8, *sv_w8, *so_w8, *cq_w8, *co_w8, *i_w8, *o_w8;
};

struct ram_bert_stack_w {
    const float *word;                     /* embeddings.word_embeddings.weight (vocab, H) */
    const float *pos;                      /* embeddings.position_embeddings.weight (max_pos, H) */
    const float *ln_w, *ln_b;              /* embeddings.LayerNorm.weight / bias */
    struct ram_bert_layer_tensors *layers; /* `layers` entries; owned by the model (in `owned`) */
};

/* Tag2Text's parts beyond the Swin and the tagging head (m->tagger_layers,
** which are also the tag encoder's layers 0-1 cross-attention and FFN:
** their pointers are copied there after binding, see ram_t2t_link). */
struct ram_t2t {
    struct ram_bert_config enc, dec;
    const float *fc_w, *fc_b;             /* fc.W (1, num_class, H) / fc.b (1, num_class): GroupWiseLinear */
    struct ram_bert_stack_w enc_w;        /* tag_encoder.* */
    struct ram_bert_stack_w dec_w;        /* text_decoder.bert.*; the LM head's matrix is dec_w.word (tied) */
    const float *lm_dense_w, *lm_dense_b; /* text_decoder.cls.predictions.transform.dense.weight (H, H) / bias */
    const float *lm_ln_w, *lm_ln_b;       /* ...transform.LayerNorm.weight / bias */
    const float *lm_bias;                 /* text_decoder.cls.predictions.bias (vocab) */
    /* Weight-only int8 forms of lm_dense_w and of the tied LM matrix
    ** dec_w.word (quantized files; owned, in `owned`); NULL: fp32. */
    const struct ram_w8 *lm_dense_w8, *lm_word_w8;
    /* The decoder's fp32 matrices packed for sgemm (owned, freed by
    ** ram_t2t_release_packed; NULL: none). */
    void *dec_packed;
    unsigned char *deleted;   /* num_class flags: delete_tag_index; owned (in `owned`), NULL: none */
    struct ram_wordpiece *wp; /* the BERT tokenizer; one allocation, owned (in `owned`) */
    char *vocab_text;         /* its vocab.txt, as the model file stores it; owned (in `owned`) */
    size_t vocab_len;
};

/* A file's int8 form (models/README.md): version 2 (int8 Swin matrices, the
** decoder quantized at load) or version 3 (the accurate mix: the Swin's int8
** matrices with their rounding residual, as int8m or int8x2, the decoder in
** bf16). */
enum ram_quant { RAM_QUANT_NONE = 0, RAM_QUANT_INT8 = 1, RAM_QUANT_INT8ACC = 2 };

struct ram_model {
    int kind; /* enum ram_model_kind */
    struct ram_swin_config swin;
    struct ram_swin_stage_info stage[RAM_MAX_STAGES];
    struct ram_tagger_config tagger;
    int num_class;
    int des_per_class;  /* 1 for RAM */
    int vision_width;   /* channels of the last Swin stage */
    int embed_dim;      /* image_proj output width = label_embed width */
    int n_image_tokens; /* 1 + final tokens */

    struct ram_swin_w swin_w;
    const float *image_proj_w, *image_proj_b; /* image_proj.weight (512, vision_width) / bias */
    const float *label_embed;                 /* label_embed (num_class * des, 512) */
    float reweight_scale;                     /* reweight_scale (RAM++ only; a log) */
    const float *wordvec_w, *wordvec_b;       /* wordvec_proj.weight (H, 512) / bias; NULL if H == 512 */
    const struct ram_q8_weight *wordvec_q;    /* int8 form made at load in quantized files, else NULL */
    struct ram_tagger_layer_w *tagger_layers; /* tagger.n_layers entries; owned (ram_free) */
    const float *fc_w, *fc_b;                 /* fc.weight (1, H) / bias (1) */

    int has_clip;
    struct ram_clip_config clip;
    struct ram_clip_w clip_w;
    struct ram_bpe *bpe; /* owned (ram_bpe_free); NULL without a text tower */

    struct ram_t2t t2t; /* kind RAM_KIND_TAG2TEXT only (zero otherwise) */

    /* Vocabulary: owned (ram_free). tags_* are one allocation each (the
    ** pointer array followed by the names; Chinese names trimmed);
    ** tag_text_* the verbatim names joined with '\n' (as stored in the file). */
    char **tags_en, **tags_zh; /* num_class entries each */
    char *tag_text_en, *tag_text_zh;
    float *thresholds; /* num_class, owned */

    /* Precomputed at load by the Swin code (owned, freed by ram_swin_release). */
    void *swin_cache;
    /* The tagging decoder's matrices packed for sgemm at load (owned, freed by
    ** ram_tagger_release_packed; NULL: none). */
    void *tagger_packed;
    /* The open-set scorer's weights (cache_weights.h: RAM_CACHE_W_SETS
    ** slots, the fp32 and bf16 value sets of both spaces and the bf16 dense
    ** layers): made lazily by the first ram_cache_score that needs a set and
    ** published atomically; the one field written after load, through the
    ** const pointers every user holds (cache_weights.h: const contract);
    ** owned, freed by ram_cache_release_weights. */
    void *cache_score_w[5];

    /* Converted weights this model owns (ram_free each). */
    void **owned;
    int n_owned, cap_owned;

    /* The mapped file. */
    void *map;
    size_t map_len;
    char *path;       /* owned */
    char digest[33];  /* hex of a 128-bit content hash */
    const void *data; /* the checksummed data section inside map (NULL: not a mapped file) */
    size_t data_len;
    int stored_dtype;            /* enum ram_dtype of the weights in the file */
    int quant;                   /* enum ram_quant: int8 linear layers (metadata quant = "int8") */
    uint64_t file_size;          /* bytes of the file the model came from */
    int fd;                      /* the mapped file, open while map is set (ram_model_check_file) */
    uint64_t file_dev, file_ino; /* its identity at load (0: not a mapped model file) */
    int64_t file_mtime_ns;

    /* Set when the weights borrow from a reader other than the mapped model
    ** file (ram_model_init_from_pth): closed by ram_model_free. */
    void *reader;
    void (*reader_close)(void *reader);
};

/* Fills m->stage[] from m->swin; checks that the config is consistent
** (resolution divisible by window where res > window, ...). */
ram_status ram_swin_derive(struct ram_model *m, struct ram_error *err);

#endif /* RAM_MODEL_H */
