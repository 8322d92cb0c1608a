/*
** fuzz_bpe.c — arbitrary UTF-8 (or not) text through the CLIP tokenizer:
** ram_bpe_tokenize and ram_bpe_encode on the real vocabulary
** ($RAM_BUILD/bpe_simple_vocab_16e6.txt), with small and full id buffers.
** Inputs starting with "#vocab\n" are instead parsed as a vocabulary table by
** ram_bpe_init (which must refuse malformed tables cleanly).
*/
#include "fuzz.h"
#include "bpe.h"

static struct ram_bpe *fuzz_bpe_vocab;

static void fuzz_bpe_load(void)
{
    if (fuzz_bpe_vocab) return;
    char path[512];
    snprintf(path, sizeof path, "%s/bpe_simple_vocab_16e6.txt", fuzz_build_dir());
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fuzz_bpe: cannot open %s (set RAM_BUILD)\n", path);
        abort();
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) abort();
    fclose(f);
    struct ram_error err;
    if (ram_bpe_init(buf, (size_t)n, &fuzz_bpe_vocab, &err)) {
        fprintf(stderr, "fuzz_bpe: %s\n", err.msg);
        abort();
    }
    free(buf);
}

FUZZ_ENTRY(data, size)
{
    struct ram_error err;
    if (size >= 7 && memcmp(data, "#vocab\n", 7) == 0) {
        struct ram_bpe *b = NULL;
        if (ram_bpe_init((const char *)data + 7, size - 7, &b, &err) == RAM_OK) ram_bpe_free(b);
        return 0;
    }
    fuzz_bpe_load();
    /* An exact-size copy so an over-read of the text hits the redzone. */
    char *text = malloc(size ? size : 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);
    int32_t ids[1024];
    int n = 0;
    ram_status rc = ram_bpe_tokenize(fuzz_bpe_vocab, text, size, ids, RAM_CLIP_CONTEXT, &n, &err);
    if (rc == RAM_OK && (n < 2 || n > RAM_CLIP_CONTEXT || ids[0] != 49406 || ids[n - 1] != 49407)) abort();
    rc = ram_bpe_tokenize(fuzz_bpe_vocab, text, size, ids, 2, &n, &err);
    if (rc == RAM_OK && n != 2) abort();
    rc = ram_bpe_encode(fuzz_bpe_vocab, text, size, ids, 1024, &n, &err);
    if ((rc == RAM_OK || rc == RAM_ERR_TOO_BIG) && (n < 0 || n > 1024)) abort();
    for (int i = 0; rc == RAM_OK && i < n; i++)
        if (ids[i] < 0 || ids[i] >= 49406) abort();
    free(text);
    return 0;
}
