/*
** model_vocab.c — the tag vocabulary: English and Chinese tag names and the
** per-class thresholds, from text files (ram-convert, .pth builds) or from
** our model file's '\n'-joined tensors; and ram_read_file, the bounded
** whole-file reader both use.
*/
#include "internal.h"
#include "model.h"
#include "model_file.h"
#include "weights.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

ram_status ram_read_file(const char *path, size_t max_len, char **out, size_t *len, struct ram_error *err)
{
    *out = NULL;
    *len = 0;
    int fd = ram_open_nonblock(path);
    if (fd < 0) return ram_fail(err, RAM_ERR_IO, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    ram_status rc = RAM_OK;
    char *buf = NULL;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode) || ram_fd_blocking(fd)) {
        rc = ram_fail(err, RAM_ERR_IO, "%s is not a regular file", path);
        goto cleanup;
    }
    if ((uint64_t)st.st_size > max_len) {
        rc = ram_fail(err, RAM_ERR_TOO_BIG, "%s: %lld bytes is over the limit of %zu", path, (long long)st.st_size,
                      max_len);
        goto cleanup;
    }
    size_t n = (size_t)st.st_size, got = 0;
    buf = ram_malloc(n + 1);
    if (!buf) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "out of memory reading %s", path);
        goto cleanup;
    }
    while (got < n) {
        ssize_t r = read(fd, buf + got, n - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            rc = ram_fail(err, RAM_ERR_IO, "cannot read %s", path);
            goto cleanup;
        }
        got += (size_t)r;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    buf = NULL;
cleanup:
    ram_free(buf);
    close(fd);
    return rc;
}

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\v' || c == '\f'; }

/* Splits text into names. file_mode: lines of a text file (a final newline
** ends the last line; one trailing '\r' per line is dropped); else exactly
** the '\n'-separated names. *joined receives the names joined with '\n'
** (NUL-terminated), *names one allocation: the pointer array followed by
** the names (trimmed of surrounding whitespace when trim). */
static ram_status split_names(const char *text, size_t len, int file_mode, int trim, const char *what, char **joined,
                              char ***names, int *count, struct ram_error *err)
{
    *joined = NULL;
    *names = NULL;
    *count = 0;
    if (len > RAM_MAX_VOCAB_TEXT) return ram_fail(err, RAM_ERR_TOO_BIG, "%s is too big", what);
    if (len && memchr(text, 0, len)) return ram_fail(err, RAM_ERR_FORMAT, "%s contains a NUL byte", what);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) n += text[i] == '\n';
    if (!file_mode)
        n += 1;
    else if (len && text[len - 1] != '\n')
        n += 1;
    if (n > (1u << 24)) return ram_fail(err, RAM_ERR_TOO_BIG, "%s has too many lines", what);

    char *j = ram_malloc(len + 1);
    char **nm = ram_malloc(n * sizeof(char *) + len + 1);
    if (!j || !nm) {
        ram_free(j);
        ram_free(nm);
        return ram_fail(err, RAM_ERR_NOMEM, "out of memory");
    }
    char *store = (char *)(nm + n);
    size_t jo = 0, pos = 0;
    for (size_t k = 0; k < n; k++) {
        const char *nl = memchr(text + pos, '\n', len - pos);
        size_t e = nl ? (size_t)(nl - text) : len, l = e - pos;
        if (file_mode && l && text[pos + l - 1] == '\r') l--;
        if (k) j[jo++] = '\n';
        memcpy(j + jo, text + pos, l);
        jo += l;
        char *dst = store;
        memcpy(dst, text + pos, l);
        dst[l] = 0;
        store += l + 1;
        if (trim) {
            while (l && is_space(dst[l - 1])) dst[--l] = 0;
            while (*dst && is_space(*dst)) dst++;
        }
        nm[k] = dst;
        pos = e + 1;
    }
    j[jo] = 0;
    *joined = j;
    *names = nm;
    *count = (int)n;
    return RAM_OK;
}

ram_status ram_model_set_vocab(struct ram_model *m, int file_mode, const char *en, size_t en_len, const char *zh,
                               size_t zh_len, const char *thr, size_t thr_len, const float *thr_f32,
                               struct ram_error *err)
{
    char *ej = NULL, *zj = NULL, *tj = NULL;
    char **en_names = NULL, **zh_names = NULL, **thr_lines = NULL;
    float *th = NULL;
    int ne = 0, nz = 0, nt = 0;
    ram_status rc;

    rc = split_names(en, en_len, file_mode, 0, "the English tag list", &ej, &en_names, &ne, err);
    if (rc) goto cleanup;
    if (file_mode && ne == 0) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "the English tag list is empty");
        goto cleanup;
    }
    if (m->num_class && ne != m->num_class) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "the English tag list has %d names for %d classes", ne, m->num_class);
        goto cleanup;
    }
    if (!zh) {
        zh = ej;
        zh_len = strlen(ej);
        file_mode = 0;
    }
    rc = split_names(zh, zh_len, file_mode, 1, "the Chinese tag list", &zj, &zh_names, &nz, err);
    if (rc) goto cleanup;
    if (nz != ne) {
        rc = ram_fail(err, RAM_ERR_FORMAT, "the Chinese tag list has %d names, the English one %d", nz, ne);
        goto cleanup;
    }
    th = ram_malloc(sizeof(float) * (size_t)ne);
    if (!th) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "out of memory");
        goto cleanup;
    }
    if (thr_f32) {
        memcpy(th, thr_f32, sizeof(float) * (size_t)ne);
    } else if (!thr) {
        for (int i = 0; i < ne; i++) th[i] = 0.68f; /* the official constructor's fill value */
    } else {
        rc = split_names(thr, thr_len, 1, 1, "the thresholds file", &tj, &thr_lines, &nt, err);
        if (rc) goto cleanup;
        if (nt != ne) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "the thresholds file has %d lines for %d classes", nt, ne);
            goto cleanup;
        }
        for (int i = 0; i < nt; i++) {
            char *end;
            double v = strtod(thr_lines[i], &end);
            if (end == thr_lines[i] || *end || !isfinite(v)) {
                rc =
                    ram_fail(err, RAM_ERR_FORMAT, "thresholds line %d: \"%.40s\" is not a number", i + 1, thr_lines[i]);
                goto cleanup;
            }
            th[i] = (float)v;
        }
    }
    for (int i = 0; i < ne; i++)
        if (!isfinite(th[i])) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "threshold of class %d is not finite", i);
            goto cleanup;
        }
    ram_free(m->tags_en);
    ram_free(m->tags_zh);
    ram_free(m->tag_text_en);
    ram_free(m->tag_text_zh);
    ram_free(m->thresholds);
    m->tags_en = en_names;
    m->tags_zh = zh_names;
    m->tag_text_en = ej;
    m->tag_text_zh = zj;
    m->thresholds = th;
    m->num_class = ne;
    en_names = zh_names = NULL;
    ej = zj = NULL;
    th = NULL;
cleanup:
    ram_free(ej);
    ram_free(zj);
    ram_free(tj);
    ram_free(en_names);
    ram_free(zh_names);
    ram_free(thr_lines);
    ram_free(th);
    return rc;
}
