/*
** ram.h — the public API of the sqlite-ram inference engine: RAM++, RAM and
** Tag2Text (Recognize Anything) image tagging, RAM++ open-set scoring with a
** CLIP text tower, and Tag2Text captions, on the CPU. This is the only header users of core/ include.
**
** Basic usage:
**
**     struct ram_error err;
**     struct ram_model *model = 0;
**     struct ram_state *st = 0;
**     if (ram_model_init_from_file("models/default.ram", 0, &model, &err)) die(err.msg);
**     if (ram_state_init(model, &st, &err)) die(err.msg);
**     struct ram_model_info info;
**     ram_model_get_info(model, &info);
**     float *probs = malloc(sizeof(float) * info.num_class);
**     if (ram_tag_image(st, jpeg, jpeg_len, 0, 0, probs, &err)) die(err.msg);
**     for (int c = 0; c < info.num_class; c++)
**         if (probs[c] > ram_model_threshold(model, c))
**             puts(ram_model_tag(model, c, RAM_LANG_EN));
**     ram_state_free(st);
**     ram_model_free(model);
**
** Thread safety: a ram_model's weights and results never change after
** ram_model_init_from_file, and it may be shared by any number of threads.
** Its one mutable part is a cache filled lazily: the open-set scorer's
** packed weights (core/cache_weights.h), made by the first call that needs
** them and published with an atomic compare-and-swap, so concurrent first
** calls are safe and every call gets the same bits. A ram_state holds the
** scratch memory of one inference: use one state per thread (or lock it).
**
** Errors: every fallible function returns a ram_status; on failure it writes a
** human-readable message into the caller's struct ram_error (never prints,
** never aborts). On success the error buffer is left untouched.
*/
#ifndef RAM_H
#define RAM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum ram_status {
    RAM_OK = 0,
    RAM_ERR_NOMEM,       /* an allocation failed */
    RAM_ERR_IO,          /* a file could not be opened, read or mapped */
    RAM_ERR_FORMAT,      /* a malformed or unsupported file (.pth, model file, vocabulary) */
    RAM_ERR_IMAGE,       /* image bytes that cannot be decoded */
    RAM_ERR_TOO_BIG,     /* input over a limit (pixels, text length, tensor size) */
    RAM_ERR_ARG,         /* an invalid argument from the caller */
    RAM_ERR_UNSUPPORTED, /* the model lacks what the call needs (e.g. no text encoder) */
    RAM_ERR_INTERRUPTED  /* the abort callback asked to stop */
} ram_status;

#define RAM_ERROR_MAX 256
struct ram_error {
    char msg[RAM_ERROR_MAX];
};

/* Static string naming a status ("out of memory", ...). Never NULL. */
const char *ram_status_str(ram_status s);

/* Version of the engine, e.g. "0.1.0". Static string. */
const char *ram_version(void);

/* ------------------------------------------------------------------ model */

enum ram_model_kind { RAM_KIND_RAM_PLUS = 1, RAM_KIND_RAM = 2, RAM_KIND_TAG2TEXT = 3 };
enum ram_lang { RAM_LANG_EN = 0, RAM_LANG_ZH = 1 };

/* Context length of the CLIP tokenizer (ids per text, start and end included). */
#define RAM_CLIP_CONTEXT 77

struct ram_model;

struct ram_model_params {
    int verify_checksum; /* 1 (default): check the file's stored checksum at load */
};
struct ram_model_params ram_model_default_params(void);

/* Opens a model file (our safetensors-based format, see models/README.md)
** with mmap. params may be NULL for the defaults. On success *out owns the
** model (free with ram_model_free). */
ram_status ram_model_init_from_file(const char *path, const struct ram_model_params *params, struct ram_model **out,
                                    struct ram_error *err);
void ram_model_free(struct ram_model *model);

/* Hashes the model file's data section again and compares it with the
** checksum stored in the file: what ram_model_init_from_file does unless
** params->verify_checksum is 0, for a caller that skipped it at load and
** wants it later. RAM_ERR_FORMAT "... is corrupted: ..." on a mismatch; RAM_OK
** for a model not read from a model file (nothing stored to compare). */
ram_status ram_model_verify(const struct ram_model *model, struct ram_error *err);

/* Checks that the model file still is what was mapped at load: the model
** keeps the file open and fstat()s it, so this costs one system call. A file
** truncated or rewritten in place would end the process with SIGBUS on the
** next read of the mapping; this turns the common case (changed between
** inferences) into RAM_ERR_IO "model file ... changed on disk ...". Every
** inference entry point below calls it first. RAM_OK for a model built from
** a .pth (nothing mapped from a model file). Replace model files by renaming
** a new file over them: the old inode stays intact for its users. */
ram_status ram_model_check_file(const struct ram_model *model, struct ram_error *err);

struct ram_model_info {
    int kind;             /* enum ram_model_kind */
    int num_class;        /* tags in the vocabulary */
    int des_per_class;    /* descriptions per class in label_embed (1 for RAM) */
    int image_size;       /* square input resolution, e.g. 384 */
    int embed_dim;        /* width of image and label embeddings (512 in the official models) */
    int n_image_tokens;   /* rows of image_embeds: 1 (CLS) + (image_size / 32)^2 */
    int has_text_encoder; /* 1 when the file bundles a CLIP text tower and its BPE vocabulary */
    const char *dtype;    /* weights as stored: "f32", "f16", "bf16" or "int8" (borrowed, static) */
    /* int8 files: which int8 path runs (models/README.md), "accurate" (version 3:
    ** the Swin's int8 matrices with their residual as int8m or int8x2, the decoder in bf16)
    ** or "v2" (version 2: the decoder in int8 too); NULL otherwise (borrowed, static). */
    const char *int8_path;
    /* Tag2Text: how ram_caption decodes, "fp32" or, for int8 files,
    ** "int8-verified" (weight-only int8 drafts checked by fp32: fp32's
    ** captions bit for bit); NULL for other models (borrowed, static). */
    const char *caption_decoder;
    const char *path;   /* the file it was loaded from (borrowed; valid while the model lives) */
    const char *digest; /* hex digest that identifies the file's content (borrowed, same) */
    uint64_t file_size; /* bytes */
    /* Identity of the file that is mapped (its stat at load: st_dev, st_ino,
    ** st_mtim in ns), to tell a file replaced on disk from the one in use;
    ** all 0 for a model built from a .pth. */
    uint64_t file_dev, file_ino;
    int64_t file_mtime_ns;
};
void ram_model_get_info(const struct ram_model *model, struct ram_model_info *out);

/* Tag name of class cls (0 <= cls < num_class): English, or Chinese with the
** official list's trailing spaces trimmed. Borrowed; valid while the model
** lives. NULL when cls is out of range. */
const char *ram_model_tag(const struct ram_model *model, int cls, int lang);

/* Official per-class threshold (selection is prob > threshold). 1.0, which
** no probability exceeds, for a class out of range and for Tag2Text's
** deleted tags (delete_tag_index). */
float ram_model_threshold(const struct ram_model *model, int cls);

/* ------------------------------------------------------------------ image */

struct ram_image_params {
    int exif_rotate;     /* 1 (default): apply EXIF orientation; 0: exact official behaviour */
    uint64_t max_pixels; /* refuse images with more pixels (default 100,000,000) */
};
struct ram_image_params ram_image_default_params(void);

/* Decodes encoded image bytes (any format libvips reads), converts to RGB as
** PIL's convert('RGB') does, resizes to size x size with PIL's antialiased
** bilinear filter and normalises with the ImageNet mean/std. chw is the
** caller's buffer of 3 * size * size floats (channel, row, column). params
** may be NULL for the defaults. */
ram_status ram_image_preprocess(const void *data, size_t n, int size, const struct ram_image_params *params, float *chw,
                                struct ram_error *err);

/* Largest side accepted by ram_thumbnail_jpeg(). */
#define RAM_THUMBNAIL_MAX_SIZE 4096

/* A preview for people (core/thumbnail.c): decodes encoded image bytes (the
** formats and the params->max_pixels limit of ram_image_preprocess, checked
** from the header before decoding), applies the EXIF orientation unless
** params->exif_rotate is 0, scales so that the longest side is size pixels
** (1..RAM_THUMBNAIL_MAX_SIZE; small images are enlarged), converts to 8-bit
** sRGB (alpha flattened on white) and encodes a JPEG without metadata.
** params may be NULL for the defaults. Ownership: on success *jpeg holds
** *jpeg_len bytes owned by the caller, freed with ram_thumbnail_free() (not
** free()); on failure *jpeg is NULL. data is only read during the call. */
ram_status ram_thumbnail_jpeg(const void *data, size_t n, int size, const struct ram_image_params *params, void **jpeg,
                              size_t *jpeg_len, struct ram_error *err);
void ram_thumbnail_free(void *jpeg);

/* When and where a photo was taken, and with what (core/exif.c): read from
** the EXIF block of encoded image bytes (the formats of ram_image_preprocess;
** only the header is parsed, no pixel is decoded). Every field is optional:
** an empty string or has_gps 0 means absent, unreadable or implausible
** (e.g. a date of 0000:00:00, a month 13, a latitude of 91 degrees, a zero
** denominator), never an error. Strings are valid UTF-8 without control
** characters (other bytes become '?'), trailing spaces trimmed, cut at a
** character boundary to fit. */
struct ram_exif {
    char taken[32];  /* DateTimeOriginal as ISO 8601 "2019-07-14T10:20:30", with OffsetTimeOriginal
                     ** appended when present ("2019-07-14T10:20:30+02:00"); local time of the camera */
    char make[64];   /* IFD0 Make, e.g. "Canon" */
    char model[64];  /* IFD0 Model, e.g. "Canon EOS 5D" */
    int has_gps;     /* 1 when latitude and longitude are both present and plausible */
    double latitude; /* signed decimal degrees: north and east positive */
    double longitude;
};

/* Fills *out (a caller-owned struct: nothing to free) from data's EXIF.
** RAM_OK with empty fields for an image without EXIF; RAM_ERR_IMAGE only
** when data is not an image of an accepted format (its header cannot be
** read). data is only read during the call. Thread-safe. */
ram_status ram_exif_read(const void *data, size_t n, struct ram_exif *out, struct ram_error *err);

/* ------------------------------------------------------------------ state */

struct ram_state;

/* Scratch memory for one inference at a time on this model. The model must
** outlive the state. *out is owned by the caller (ram_state_free). */
ram_status ram_state_init(const struct ram_model *model, struct ram_state **out, struct ram_error *err);
void ram_state_free(struct ram_state *st);

/* Long calls poll cb(arg) between network stages; a non-zero return stops the
** call with RAM_ERR_INTERRUPTED. cb may be NULL. */
void ram_state_set_abort(struct ram_state *st, int (*cb)(void *), void *arg);

/* ------------------------------------------------------------------ inference */

/* Visual encoder + image_proj: image_embeds receives n_image_tokens x embed_dim
** floats (row 0 = the CLS embedding). chw comes from ram_image_preprocess.
** Tag2Text has no image_proj: its embed_dim is the Swin width. */
ram_status ram_encode_image(struct ram_state *st, const float *chw, float *image_embeds, struct ram_error *err);

/* Tagging from image embeddings: probs receives num_class sigmoid
** probabilities (RAM++: with the per-image description reweighting). */
ram_status ram_tag_probs(struct ram_state *st, const float *image_embeds, float *probs, struct ram_error *err);

/* The whole closed-set path from encoded image bytes. image_embeds may be NULL
** (else it receives what ram_encode_image gives); probs as ram_tag_probs. */
ram_status ram_tag_image(struct ram_state *st, const void *data, size_t n, const struct ram_image_params *params,
                         float *image_embeds, float *probs, struct ram_error *err);

/* Open-set scoring: label_embed holds n_tags * des_per_tag rows of embed_dim
** floats, tag-major, each row an L2-normalised text embedding. probs receives
** n_tags probabilities. With des_per_tag > 1 the descriptions of each tag are
** reweighted by the image's CLS embedding (RAM++'s rule); a RAM model has no
** reweighting and gives RAM_ERR_UNSUPPORTED for des_per_tag > 1. */
ram_status ram_openset_probs(struct ram_state *st, const float *image_embeds, const float *label_embed, int n_tags,
                             int des_per_tag, float *probs, struct ram_error *err);

/* ------------------------------------------------------------------ captions */

/* Tag2Text (a model of kind RAM_KIND_TAG2TEXT): a caption of encoded image
** bytes, as the official inference_tag2text does. tags NULL: the model's
** own tags guide the caption (the tag string of ram_tag_image's
** probabilities: prob > threshold, the official deleted tags left out, names
** joined with " | "); else tags_len bytes of user tags, ',' separated or
** " | " separated as the official script accepts ("dog, grass"; "", "none"
** and "None" mean no user tags, as there). Decoding is
** the official beam search (3 beams, 10 to 50 tokens); the abort callback
** is polled between decoder steps. On success *caption (and *tags_used, if
** not NULL: the tag string the caption was guided by) are owned by the
** caller, freed with ram_string_free. RAM_ERR_UNSUPPORTED for a RAM++/RAM
** model. With a Tag2Text model, ram_tag_image / ram_tag_probs give its
** 3,429 tag probabilities and ram_model_threshold gives 1.0 (never exceeded)
** for the deleted tags. */
ram_status ram_caption_image(struct ram_state *st, const void *data, size_t n, const struct ram_image_params *params,
                             const char *tags, size_t tags_len, char **caption, char **tags_used,
                             struct ram_error *err);

/* The same from image embeddings (ram_encode_image's, or a cache's): probs,
** if not NULL, are the image's num_class tag probabilities (ram_tag_probs),
** used instead of recomputing them when tags is NULL. */
ram_status ram_caption_embeds(struct ram_state *st, const float *image_embeds, const float *probs, const char *tags,
                              size_t tags_len, char **caption, char **tags_used, struct ram_error *err);

/* Frees a string returned by ram_caption_image / ram_caption_embeds. NULL is a no-op. */
void ram_string_free(char *s);

/* ------------------------------------------------------------------ text */

/* CLIP tokenization as clip.tokenize(text, truncate=True) (without ftfy):
** ids receives up to RAM_CLIP_CONTEXT ids starting with 49406 and ending with
** 49407 (no padding); *n_ids their count. Needs a model with a text encoder. */
ram_status ram_tokenize(const struct ram_model *model, const char *text, size_t len, int32_t ids[RAM_CLIP_CONTEXT],
                        int *n_ids, struct ram_error *err);

/* CLIP encode_text of one tokenized text: embedding receives embed_dim floats,
** not normalised (as the official encode_text). */
ram_status ram_encode_text(struct ram_state *st, const int32_t *ids, int n_ids, float *embedding,
                           struct ram_error *err);

/* In-place L2 normalisation of n floats (no epsilon, as the official code). */
void ram_l2_normalize(float *v, int n);

/* Threads the calling thread's inference work is split over (a per-thread
** setting: two threads, e.g. two SQLite connections, each choose their own;
** n < 1 restores the default: RAM_THREADS or OPENBLAS_NUM_THREADS from the
** environment, else the CPU count). The work runs on one process-wide pool
** of at most CPU count - 1 workers plus the caller (core/jobs.h). */
void ram_set_threads(int n);
int ram_get_threads(void);

/* The matrix-product kernels in use, e.g. "avx512 (bf16 amx accurate, int8 amx)":
** fp32 "avx512", "avx2", "portable" (ours, chosen from cpuid at first use;
** RAM_ISA=avx2|portable lowers it) or "openblas" (RAM_SGEMM=openblas, or a
** CPU without AVX2), then the bf16 path's kernel and mix ("accurate", the
** default, or "plain" with RAM_BF16=plain) and the int8 path. A buffer of the calling
** thread, valid until its next call. */
const char *ram_kernels(void);

#ifdef __cplusplus
}
#endif
#endif /* RAM_H */
