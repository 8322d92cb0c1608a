/*
** swin.c — the Swin Transformer image encoder (ARCHITECTURE.md section 3).
** Work in progress: stubs so that other files can link.
*/
#include "swin.h"
#include "internal.h"
#include "model.h"

ram_status ram_swin_derive(struct ram_model *m, struct ram_error *err)
{
    const struct ram_swin_config *c = &m->swin;
    if (c->patch_size <= 0 || c->image_size <= 0 || c->image_size % c->patch_size)
        return ram_fail(err, RAM_ERR_FORMAT, "swin: image size %d is not a multiple of patch %d",
                        c->image_size, c->patch_size);
    if (c->n_stages < 1 || c->n_stages > RAM_MAX_STAGES || c->window < 1)
        return ram_fail(err, RAM_ERR_FORMAT, "swin: bad stage count or window");
    int res = c->image_size / c->patch_size, dim = c->embed_dim;
    for (int s = 0; s < c->n_stages; s++) {
        struct ram_swin_stage_info *st = &m->stage[s];
        if (c->heads[s] < 1 || dim % c->heads[s])
            return ram_fail(err, RAM_ERR_FORMAT, "swin: stage %d: bad heads", s);
        st->res = res;
        st->dim = dim;
        st->heads = c->heads[s];
        st->window = res <= c->window ? res : c->window;
        st->shift = res <= c->window ? 0 : c->window / 2;
        if (res > c->window && res % c->window)
            return ram_fail(err, RAM_ERR_FORMAT, "swin: stage %d: res not a multiple of window", s);
        if (s + 1 < c->n_stages) {
            if (res % 2) return ram_fail(err, RAM_ERR_FORMAT, "swin: stage %d: odd resolution", s);
            res /= 2;
            dim *= 2;
        }
    }
    m->vision_width = dim;
    m->n_image_tokens = 1 + res * res;
    return RAM_OK;
}

ram_status ram_swin_prepare(struct ram_model *m, struct ram_error *err)
{
    (void)m;
    (void)err;
    return RAM_OK;
}

void ram_swin_release(struct ram_model *m)
{
    m->swin_cache = NULL;
}

size_t ram_swin_scratch_floats(const struct ram_model *m)
{
    (void)m;
    return 1;
}

ram_status ram_swin_forward(const struct ram_model *m, const float *chw, float *scratch, float *out,
                            const struct ram_swin_hooks *hooks, struct ram_error *err)
{
    (void)m; (void)chw; (void)scratch; (void)out; (void)hooks;
    return ram_fail(err, RAM_ERR_UNSUPPORTED, "swin: forward not implemented yet");
}
