/*
** model_pth.c — building a model straight from an official .pth and the
** tag files (ram-convert and the tests; never linked into ram.so: it pulls
** in the .pth reader, its zip reader and pickle VM). The .pth stays open
** inside the model, which borrows its tensors.
*/
#include "ram.h"

#include "internal.h"
#include "model.h"
#include "model_file.h"
#include "pth_reader.h"
#include "swin.h"
#include "weights.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void close_pth(void *p) { ram_pth_close(p); }

/* XXH3-128 of a whole file, read in chunks (identifies a .pth-built model). */
static ram_status file_digest(const char *path, char out[33], uint64_t *size, struct ram_error *err)
{
    int fd = ram_open_nonblock(path);
    if (fd < 0) return ram_fail(err, RAM_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    XXH3_state_t *xs = XXH3_createState();
    char *buf = ram_malloc(1 << 20);
    ram_status rc = RAM_OK;
    struct stat sb;
    *size = 0;
    if (fstat(fd, &sb) || !S_ISREG(sb.st_mode) || ram_fd_blocking(fd)) {
        rc = ram_fail(err, RAM_ERR_IO, "%s is not a regular file", path);
        goto cleanup;
    }
    if (!xs || !buf) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    XXH3_128bits_reset(xs);
    for (;;) {
        ssize_t r = read(fd, buf, 1 << 20);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            rc = ram_fail(err, RAM_ERR_IO, "cannot read %s", path);
            goto cleanup;
        }
        if (r == 0) break;
        XXH3_128bits_update(xs, buf, (size_t)r);
        *size += (uint64_t)r;
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(xs));
    for (int i = 0; i < 16; i++) snprintf(out + 2 * i, 3, "%02x", c.digest[i]);
cleanup:
    if (xs) XXH3_freeState(xs);
    ram_free(buf);
    close(fd);
    return rc;
}

ram_status ram_model_init_from_pth(const char *pth, const char *tags_en, const char *tags_zh, const char *thresholds,
                                   const struct ram_convert_opts *opts, struct ram_model **out, struct ram_error *err)
{
    struct ram_model *m = NULL;
    char *en = NULL, *zh = NULL, *th = NULL;
    size_t en_n = 0, zh_n = 0, th_n = 0;
    ram_status rc;

    if (!out || !pth || !tags_en) return ram_fail(err, RAM_ERR_ARG, "ram_model_init_from_pth: NULL argument");
    *out = NULL;
    m = ram_calloc(1, sizeof *m);
    if (!m) return ram_fail(err, RAM_ERR_NOMEM, "out of memory");
    m->stored_dtype = RAM_DTYPE_F32;
    if (!(m->path = ram_strdup(pth))) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "out of memory");
        goto fail;
    }
    if ((rc = ram_read_file(tags_en, RAM_MAX_VOCAB_TEXT, &en, &en_n, err))) goto fail;
    if (tags_zh && (rc = ram_read_file(tags_zh, RAM_MAX_VOCAB_TEXT, &zh, &zh_n, err))) goto fail;
    if (thresholds && (rc = ram_read_file(thresholds, RAM_MAX_VOCAB_TEXT, &th, &th_n, err))) goto fail;
    rc = ram_model_set_vocab(m, 1, en, en_n, zh, zh_n, th, th_n, NULL, err);
    if (rc) goto fail;

    struct ram_pth *p = NULL;
    if ((rc = ram_pth_open(pth, &p, err))) goto fail;
    m->reader = p;
    m->reader_close = close_pth;
    struct ram_tensor_source src = ram_pth_source(p);
    if ((rc = ram_model_infer_config(m, &src, m->num_class, opts, err))) goto fail;
    if ((rc = ram_model_bind(m, &src, err))) goto fail;
    if ((rc = file_digest(pth, m->digest, &m->file_size, err))) goto fail;
    if ((rc = ram_swin_prepare(m, err))) goto fail;
    *out = m;
    m = NULL;
fail:
    ram_free(en);
    ram_free(zh);
    ram_free(th);
    ram_model_free(m);
    return rc;
}
