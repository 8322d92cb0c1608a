/*
** model.c — the model's life cycle: default load parameters, checksum
** verification, the on-disk check of a mapped file, ram_model_free, and the
** small read-only API (get_info, tag, threshold). Loading is model_load.c,
** the tag lists model_vocab.c; building from a .pth (model_pth.c) and
** writing (model_write.c) are the converter's and not linked into ram.so.
**
**     struct ram_model *m = 0;
**     if (ram_model_init_from_file("model.ram", NULL, &m, &err)) return fail(err.msg);
**     puts(ram_model_tag(m, 0, RAM_LANG_ZH));
**     ram_model_free(m);
*/
#include "ram.h"

#include "bpe.h"
#include "cache_weights.h"
#include "internal.h"
#include "model.h"
#include "model_file.h"
#include "safetensors.h"
#include "swin.h"
#include "tag2text.h"
#include "tagger.h"
#include "weights.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ public small API */

struct ram_model_params ram_model_default_params(void)
{
    struct ram_model_params p;
    memset(&p, 0, sizeof p);
    p.verify_checksum = 1;
    return p;
}

ram_status ram_model_verify(const struct ram_model *m, struct ram_error *err)
{
    if (!m) return ram_fail(err, RAM_ERR_ARG, "ram_model_verify: model is NULL");
    if (!m->data) return RAM_OK; /* built from a .pth: no stored checksum to compare */
    char got[33];
    /* One sequential pass over what may be gigabytes: tell the kernel to read
    ** ahead, then restore the random-access default the inference wants. */
    madvise((void *)((uintptr_t)m->data & ~(uintptr_t)4095), m->data_len + ((uintptr_t)m->data & 4095),
            MADV_SEQUENTIAL);
    ram_xxh128_hex(m->data, m->data_len, got);
    madvise(m->map, m->map_len, MADV_NORMAL);
    if (strcmp(got, m->digest))
        return ram_fail(err, RAM_ERR_FORMAT, "model file %s is corrupted: checksum %s, expected %s", m->path, got,
                        m->digest);
    return RAM_OK;
}

ram_status ram_model_check_file(const struct ram_model *m, struct ram_error *err)
{
    if (!m) return ram_fail(err, RAM_ERR_ARG, "ram_model_check_file: model is NULL");
    if (!m->map) return RAM_OK; /* built from a .pth: nothing mapped from a model file */
    struct stat sb;
    if (fstat(m->fd, &sb)) return ram_fail(err, RAM_ERR_IO, "model file %s: %s", m->path, strerror(errno));
    /* A shorter file faults on the next read past its end (SIGBUS); a new
    ** mtime means the bytes under the mapping may no longer be the weights. */
    if ((uint64_t)sb.st_size < m->map_len || ram_mtime_ns(&sb) != m->file_mtime_ns)
        return ram_fail(err, RAM_ERR_IO,
                        "model file %s changed on disk since it was loaded (truncated/rewritten): load it again; "
                        "replace model files by renaming a new file over them",
                        m->path);
    return RAM_OK;
}

void ram_model_free(struct ram_model *m)
{
    if (!m) return;
    if (m->swin_cache) ram_swin_release(m);
    ram_tagger_release_packed(m);
    ram_cache_release_weights(m);
    ram_t2t_release_packed(m);
    ram_bpe_free(m->bpe);
    for (int i = 0; i < m->n_owned; i++) ram_free(m->owned[i]);
    ram_free(m->owned);
    for (int s = 0; s < RAM_MAX_STAGES; s++) ram_free(m->swin_w.stages[s].blocks);
    ram_free(m->tagger_layers);
    ram_free(m->clip_w.layers);
    ram_free(m->tags_en);
    ram_free(m->tags_zh);
    ram_free(m->tag_text_en);
    ram_free(m->tag_text_zh);
    ram_free(m->thresholds);
    if (m->map) {
        munmap(m->map, m->map_len);
        close(m->fd);
    }
    if (m->reader && m->reader_close) m->reader_close(m->reader);
    ram_free(m->path);
    ram_free(m);
}

void ram_model_get_info(const struct ram_model *m, struct ram_model_info *out)
{
    memset(out, 0, sizeof *out);
    if (!m) return;
    out->kind = m->kind;
    out->num_class = m->num_class;
    out->des_per_class = m->des_per_class;
    out->image_size = m->swin.image_size;
    out->embed_dim = m->embed_dim;
    out->n_image_tokens = m->n_image_tokens;
    out->has_text_encoder = m->has_clip && m->bpe != NULL;
    out->dtype = m->quant                            ? "int8"
                 : m->stored_dtype == RAM_DTYPE_F16  ? "f16"
                 : m->stored_dtype == RAM_DTYPE_BF16 ? "bf16"
                                                     : "f32";
    out->int8_path = m->quant == RAM_QUANT_INT8ACC ? "accurate" : m->quant ? "v2" : NULL;
    if (m->kind == RAM_KIND_TAG2TEXT)
        out->caption_decoder = m->t2t.dec_w.layers && m->t2t.dec_w.layers[0].sq_w8 ? "int8-verified" : "fp32";
    out->path = m->path;
    out->digest = m->digest;
    out->file_size = m->file_size;
    out->file_dev = m->file_dev;
    out->file_ino = m->file_ino;
    out->file_mtime_ns = m->file_mtime_ns;
}

const char *ram_model_tag(const struct ram_model *m, int cls, int lang)
{
    if (!m || cls < 0 || cls >= m->num_class || !m->tags_en) return NULL;
    return lang == RAM_LANG_ZH && m->tags_zh ? m->tags_zh[cls] : m->tags_en[cls];
}

/* Out of range: 1.0, which no probability exceeds. */
float ram_model_threshold(const struct ram_model *m, int cls)
{
    if (!m || cls < 0 || cls >= m->num_class || !m->thresholds) return 1.0f;
    if (m->t2t.deleted && m->t2t.deleted[cls]) return 1.0f; /* Tag2Text's delete_tag_index */
    return m->thresholds[cls];
}
