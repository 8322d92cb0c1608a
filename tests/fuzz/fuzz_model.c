/*
** fuzz_model.c — arbitrary bytes as a model file (models/README.md):
** written to a memfd and opened with ram_model_init_from_file through
** /proc/self/fd/N. The checksum is skipped (else nearly every mutation stops
** there) unless the first byte is 'V', so the header, config and tensor
** checks are what gets fuzzed. A model that loads is asked for its info,
** tags and thresholds, and a state is made for it.
*/
#include "fuzz.h"
#include "ram.h"
#include <sys/mman.h>
#include <unistd.h>

FUZZ_ENTRY(data, size)
{
    int fd = memfd_create("fuzz_model", MFD_CLOEXEC);
    if (fd < 0) return 0;
    size_t off = 0;
    while (off < size) {
        ssize_t w = write(fd, data + off, size - off);
        if (w <= 0) break;
        off += (size_t)w;
    }
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    struct ram_model_params prm = ram_model_default_params();
    prm.verify_checksum = size > 0 && data[0] == 'V';
    struct ram_model *m = NULL;
    struct ram_error err;
    if (ram_model_init_from_file(path, &prm, &m, &err) == RAM_OK) {
        struct ram_model_info info;
        ram_model_get_info(m, &info);
        volatile size_t sum = 0;
        for (int c = 0; c < info.num_class; c++) {
            const char *en = ram_model_tag(m, c, RAM_LANG_EN);
            const char *zh = ram_model_tag(m, c, RAM_LANG_ZH);
            sum += (en ? strlen(en) : 0) + (zh ? strlen(zh) : 0);
            sum += ram_model_threshold(m, c) > 0.5f;
        }
        struct ram_state *st = NULL;
        if (info.n_image_tokens < 1000 && ram_state_init(m, &st, &err) == RAM_OK) ram_state_free(st);
        if (info.has_text_encoder) {
            int32_t ids[RAM_CLIP_CONTEXT];
            int n = 0;
            ram_tokenize(m, "a photo of a cat.", 17, ids, &n, &err);
        }
        ram_model_free(m);
    }
    close(fd);
    return 0;
}
