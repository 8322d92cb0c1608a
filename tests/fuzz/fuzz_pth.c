/*
** fuzz_pth.c — arbitrary bytes through the .pth reader (zip directory,
** pickle VM, tensor table): ram_pth_open_memory, then every tensor view is
** walked and its bytes read, so a view pointing outside the buffer is caught
** by ASan.
*/
#include "fuzz.h"
#include "pth_reader.h"

FUZZ_ENTRY(data, size)
{
    struct ram_pth *p = NULL;
    struct ram_error err;
    /* A copy of exactly size bytes: reads past the end hit the redzone. */
    uint8_t *buf = malloc(size ? size : 1);
    if (!buf) return 0;
    if (size) memcpy(buf, data, size);
    if (ram_pth_open_memory(buf, size, &p, &err) == RAM_OK) {
        int n = ram_pth_count(p);
        volatile unsigned sum = 0;
        for (int i = 0; i < n; i++) {
            const struct ram_tensor_view *v = ram_pth_tensor(p, i);
            if (!v) abort();
            if (v->name && ram_pth_find(p, v->name) == NULL) abort();
            const uint8_t *b = v->data;
            size_t nb = v->nbytes;
            if (nb) sum += b[0] + b[nb - 1];
        }
        ram_pth_close(p);
    }
    free(buf);
    return 0;
}
