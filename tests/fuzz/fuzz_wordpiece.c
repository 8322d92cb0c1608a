/*
** fuzz_wordpiece.c — arbitrary bytes through Tag2Text's BERT tokenizer
** (core/wordpiece.c) on the real vocabulary (models/bert_vocab.txt): as
** text (tokenize with a small and a full id buffer, the 40-id tag-encoder
** form, decode of the ids found with and without special tokens and
** clean-up), and as raw int32 ids for decode (negative and out-of-range ids
** included). Inputs starting with "#vocab\n" are parsed as a vocabulary by
** ram_wordpiece_init, which must refuse malformed ones cleanly.
*/
#include "fuzz.h"
#include "internal.h"
#include "wordpiece.h"

static struct ram_wordpiece *fuzz_wp_vocab;

static void fuzz_wp_load(void)
{
    if (fuzz_wp_vocab) return;
    FILE *f = fopen("models/bert_vocab.txt", "rb");
    if (!f) {
        fprintf(stderr, "fuzz_wordpiece: cannot open models/bert_vocab.txt (run from the repository root)\n");
        abort();
    }
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) abort();
    fclose(f);
    struct ram_error err;
    if (ram_wordpiece_init(buf, (size_t)n, &fuzz_wp_vocab, &err)) {
        fprintf(stderr, "fuzz_wordpiece: %s\n", err.msg);
        abort();
    }
    free(buf);
}

static void fuzz_wp_decode(const int32_t *ids, int n)
{
    struct ram_error err;
    for (int mode = 0; mode < 4; mode++) {
        char *s = NULL;
        ram_status rc = ram_wordpiece_decode(fuzz_wp_vocab, ids, n, mode & 1, mode >> 1, &s, &err);
        if (rc == RAM_OK && (!s || strlen(s) > (size_t)n * 64 + 16)) abort();
        ram_free(s);
    }
}

FUZZ_ENTRY(data, size)
{
    struct ram_error err;
    if (size >= 7 && memcmp(data, "#vocab\n", 7) == 0) {
        struct ram_wordpiece *w = NULL;
        if (ram_wordpiece_init((const char *)data + 7, size - 7, &w, &err) == RAM_OK) {
            int32_t ids[16];
            int n = 0;
            ram_wordpiece_tokenize(w, "a b", 3, ids, 16, &n, &err);
            ram_wordpiece_free(w);
        }
        return 0;
    }
    fuzz_wp_load();
    const int V = ram_wordpiece_size(fuzz_wp_vocab);
    /* An exact-size copy so an over-read of the text hits the redzone. */
    char *text = malloc(size ? size : 1);
    if (!text) return 0;
    if (size) memcpy(text, data, size);
    int n = 0, n2 = 0;
    int32_t small[4];
    ram_status rc = ram_wordpiece_tokenize(fuzz_wp_vocab, text, size, small, 4, &n, &err);
    int32_t *ids = rc == RAM_OK ? malloc(sizeof(int32_t) * (size_t)(n + 1)) : NULL;
    if (ids) {
        if (ram_wordpiece_tokenize(fuzz_wp_vocab, text, size, ids, n, &n2, &err) != RAM_OK || n2 != n) abort();
        for (int i = 0; i < n; i++)
            if (ids[i] < 0 || ids[i] >= V || (i < 4 && ids[i] != small[i])) abort();
        fuzz_wp_decode(ids, n);
    }
    int32_t fixed[40], mask[40];
    int used = 0;
    const int32_t enc = ram_wordpiece_special(fuzz_wp_vocab, RAM_WP_ENC);
    if (ram_wordpiece_encode_fixed(fuzz_wp_vocab, text, size, enc, 40, fixed, mask, &used, &err) == RAM_OK) {
        if (used < 2 || used > 40 || fixed[0] != enc ||
            fixed[used - 1] != ram_wordpiece_special(fuzz_wp_vocab, RAM_WP_SEP))
            abort();
        for (int i = 0; i < 40; i++)
            if (mask[i] != (i < used) || (i >= used && fixed[i] != ram_wordpiece_special(fuzz_wp_vocab, RAM_WP_PAD)))
                abort();
    }
    /* The bytes as ids. */
    int nr = (int)(size / 4 > 4096 ? 4096 : size / 4);
    int32_t *raw = malloc(sizeof(int32_t) * (size_t)(nr + 1));
    if (raw) {
        memcpy(raw, data, (size_t)nr * 4);
        fuzz_wp_decode(raw, nr);
    }
    free(raw);
    free(ids);
    free(text);
    return 0;
}
