/*
** test_bpe.c — the CLIP tokenizer (core/bpe.c) against the official
** clip.tokenize / SimpleTokenizer.encode outputs in
** tests/data/golden/tokenizer/tokenizer_details.json (strings whose result
** depends on ftfy are skipped: ftfy is out of scope), held-out strings in
** tests/data/tokenizer_extra.json (expected ids from Python's html.unescape and
** str.lower with Debian's regex module, the reference's components), the
** truncation rule at other context lengths, hostile input (invalid UTF-8,
** oversize text, a 1 MB word), malformed vocabularies and allocation failures.
**
** The vocabulary is read uncompressed from $RAM_BUILD/bpe_simple_vocab_16e6.txt
** (made by the Makefile from models/bpe_simple_vocab_16e6.txt.gz).
*/
#include "harness.h"

#include "bpe.h"
#include "internal.h"

/* ------------------------------------------------------------------ mini JSON */

#include "test_json.h"

static int jload(const char *path, struct jv *v)
{
    size_t len;
    char *buf = read_file(path, &len);
    if (!buf) return 0;
    struct jp j = {buf, buf + len, 0};
    jparse(&j, v);
    free(buf);
    if (j.bad) jfree(v);
    return !j.bad;
}

/* ------------------------------------------------------------------ helpers */

/* ids == the JSON int array a. */
static int ids_equal(const int32_t *ids, int n, const struct jv *a, char *why, size_t whylen)
{
    if (!a || a->t != J_ARR) {
        snprintf(why, whylen, "no expected ids");
        return 0;
    }
    for (int i = 0; i < n && i < a->n; i++)
        if (ids[i] != (int32_t)a->items[i].num) {
            snprintf(why, whylen, "id %d: got %d, expected %d (n %d vs %d)", i, ids[i], (int)a->items[i].num, n, a->n);
            return 0;
        }
    if (n != a->n) {
        snprintf(why, whylen, "got %d ids, expected %d", n, a->n);
        return 0;
    }
    return 1;
}

static void short_name(char *dst, size_t cap, const char *prefix, const char *text, size_t len)
{
    size_t k = 0;
    char tmp[48];
    for (size_t i = 0; i < len && k + 1 < sizeof tmp && k < 40; i++) {
        unsigned char c = (unsigned char)text[i];
        tmp[k++] = c < 0x20 ? '?' : (char)c;
    }
    while (k > 0 && ((unsigned char)tmp[k - 1] & 0xC0) == 0x80) k--; /* no cut UTF-8 */
    if (k > 0 && ((unsigned char)tmp[k - 1] & 0xC0) == 0xC0) k--;
    tmp[k] = 0;
    snprintf(dst, cap, "%s \"%s%s\"", prefix, tmp, len > 40 ? "..." : "");
}

/* Checks tokenize and encode of one text against expected arrays. */
static void check_text(const struct ram_bpe *bpe, const char *prefix, const char *text, size_t len,
                       const struct jv *want_ids, const struct jv *want_raw)
{
    char name[160], why[160];
    int32_t ids[RAM_CLIP_CONTEXT];
    int n = -1;
    struct ram_error err = {{0}};
    short_name(name, sizeof name, prefix, text, len);
    ram_status rc = ram_bpe_tokenize(bpe, text, len, ids, RAM_CLIP_CONTEXT, &n, &err);
    if (rc) {
        check(0, name, "tokenize failed: %s", err.msg);
        return;
    }
    int ok = ids_equal(ids, n, want_ids, why, sizeof why);
    if (ok && want_raw) {
        int cap = want_raw->n + 8;
        int32_t *raw = malloc(sizeof *raw * (size_t)cap);
        int nr = -1;
        rc = ram_bpe_encode(bpe, text, len, raw, cap, &nr, &err);
        if (rc) {
            ok = 0;
            snprintf(why, sizeof why, "encode failed: %.120s", err.msg);
        } else {
            ok = ids_equal(raw, nr, want_raw, why, sizeof why);
            if (!ok) memmove(why + 7, why, strlen(why) + 1), memcpy(why, "encode ", 7);
        }
        free(raw);
    }
    check(ok, name, "%s", why);
}

static int hexval(char c) { return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1; }

/* ------------------------------------------------------------------ tests */

static void test_golden(const struct ram_bpe *bpe)
{
    struct jv d;
    if (!jload(data_path("golden/tokenizer/tokenizer_details.json"), &d) || d.t != J_ARR) {
        check(0, "golden tokenizer_details.json", "cannot read");
        return;
    }
    int skipped = 0, truncated = 0;
    for (int i = 0; i < d.n; i++) {
        const struct jv *e = &d.items[i], *t = jget(e, "text"), *same = jget(e, "same_without_ftfy");
        const struct jv *tr = jget(e, "truncated");
        if (!t || t->t != J_STR || !same) {
            check(0, "golden entry", "entry %d lacks text/same_without_ftfy", i);
            continue;
        }
        if (!same->num) { /* ftfy changes the result: out of scope */
            skipped++;
            continue;
        }
        if (tr && tr->num) truncated++;
        check_text(bpe, "golden", t->str, t->len, jget(e, "ids"), jget(e, "bpe_ids"));

        /* Truncation at other context lengths, from the untruncated ids. */
        const struct jv *raw = jget(e, "bpe_ids");
        int ctxs[] = {2, 3, 5, 8, 100};
        int ok = 1;
        for (size_t c = 0; c < sizeof ctxs / sizeof ctxs[0] && raw; c++) {
            int ctx = ctxs[c], n = -1, want = raw->n + 2 > ctx ? ctx : raw->n + 2;
            int32_t ids[100];
            struct ram_error err;
            if (ram_bpe_tokenize(bpe, t->str, t->len, ids, ctx, &n, &err) || n != want || ids[0] != RAM_BPE_SOT ||
                ids[n - 1] != RAM_BPE_EOT) {
                ok = 0;
                break;
            }
            for (int k = 1; k < n - 1; k++) ok &= ids[k] == (int32_t)raw->items[k - 1].num;
        }
        if (!ok) check(0, "golden truncation at other contexts", "text %d", i);
    }
    check(skipped <= 4 && d.n - skipped >= 39 && truncated >= 2, "golden coverage",
          "%d strings, %d skipped for ftfy, %d truncated", d.n, skipped, truncated);
    jfree(&d);
}

static void test_extra(const struct ram_bpe *bpe)
{
    struct jv d;
    if (!jload(data_path("tokenizer_extra.json"), &d) || d.t != J_ARR) {
        check(0, "tokenizer_extra.json", "cannot read");
        return;
    }
    for (int i = 0; i < d.n; i++) {
        const struct jv *e = &d.items[i], *t = jget(e, "text"), *h = jget(e, "hex");
        if (t && t->t == J_STR) {
            check_text(bpe, "held-out", t->str, t->len, jget(e, "ids"), jget(e, "bpe_ids"));
        } else if (h && h->t == J_STR) {
            size_t n = h->len / 2;
            char *b = malloc(n + 1);
            for (size_t k = 0; k < n; k++) b[k] = (char)(hexval(h->str[2 * k]) * 16 + hexval(h->str[2 * k + 1]));
            char pre[64];
            snprintf(pre, sizeof pre, "held-out bytes %.24s", h->str);
            check_text(bpe, pre, b, n, jget(e, "ids"), jget(e, "bpe_ids"));
            free(b);
        } else {
            check(0, "held-out entry", "entry %d has no text", i);
        }
    }
    check(d.n >= 30, "held-out coverage", "%d entries", d.n);
    jfree(&d);
}

static void test_errors(const struct ram_bpe *bpe)
{
    struct ram_error err;
    int32_t ids[RAM_CLIP_CONTEXT];
    int n = 0;
    ram_status rc = ram_bpe_tokenize(bpe, "x", 1, ids, 1, &n, &err);
    check(rc == RAM_ERR_ARG, "tokenize max_ids < 2", "rc %d", rc);
    rc = ram_bpe_tokenize(bpe, NULL, 3, ids, 77, &n, &err);
    check(rc == RAM_ERR_ARG, "tokenize NULL text with length", "rc %d", rc);
    rc = ram_bpe_tokenize(bpe, NULL, 0, ids, 77, &n, &err);
    check(rc == RAM_OK && n == 2 && ids[0] == RAM_BPE_SOT && ids[1] == RAM_BPE_EOT, "tokenize NULL empty text",
          "rc %d n %d", rc, n);

    size_t big = RAM_BPE_MAX_TEXT + 1;
    char *text = malloc(big);
    memset(text, 'a', big);
    rc = ram_bpe_tokenize(bpe, text, big, ids, 77, &n, &err);
    check(rc == RAM_ERR_TOO_BIG && strstr(err.msg, "over the limit"), "text over 1 MB", "rc %d: %s", rc, err.msg);

    /* A 1 MB single word: must finish (O(n log n) BPE) and give the ids of
    ** the known 'aaaa...' merge pattern at the start. */
    rc = ram_bpe_tokenize(bpe, text, big - 1, ids, 77, &n, &err);
    int32_t ref[RAM_CLIP_CONTEXT];
    int nref = 0;
    ram_status rc2 = ram_bpe_tokenize(bpe, text, 3000, ref, 77, &nref, &err);
    check(rc == RAM_OK && rc2 == RAM_OK && n == 77 && nref == 77 && ids[76] == RAM_BPE_EOT &&
              !memcmp(ids, ref, 40 * sizeof *ids),
          "1 MB word tokenizes", "rc %d/%d n %d", rc, rc2, n);

    /* Many short pieces: the early stop at the context length. */
    for (size_t i = 0; i + 1 < big - 1; i += 2) text[i + 1] = ' ';
    rc = ram_bpe_tokenize(bpe, text, big - 1, ids, 77, &n, &err);
    check(rc == RAM_OK && n == 77 && ids[1] == 320 && ids[75] == 320 && ids[76] == RAM_BPE_EOT,
          "1 MB of words truncates", "rc %d n %d", rc, n);

    int32_t raw[4];
    rc = ram_bpe_encode(bpe, "a b c d e", 9, raw, 4, &n, &err);
    check(rc == RAM_ERR_TOO_BIG && n == 4 && raw[0] == 320 && raw[3] == 323, "encode over the caller's cap",
          "rc %d n %d", rc, n);
    rc = ram_bpe_encode(bpe, "a b c d", 7, raw, 4, &n, &err);
    check(rc == RAM_OK && n == 4, "encode exactly at the cap", "rc %d n %d", rc, n);

    /* Random bytes never crash and always give SOT ... EOT. */
    unsigned seed = 12345;
    int ok = 1;
    for (int it = 0; it < 300 && ok; it++) {
        int len = it % 97;
        for (int k = 0; k < len; k++) {
            seed = seed * 1103515245u + 12345u;
            text[k] = (char)(seed >> 16);
            if (it % 3 == 0 && (seed >> 8) % 4 == 0) text[k] = '&';
        }
        rc = ram_bpe_tokenize(bpe, text, (size_t)len, ids, 77, &n, &err);
        ok = rc == RAM_OK && n >= 2 && ids[0] == RAM_BPE_SOT && ids[n - 1] == RAM_BPE_EOT;
        for (int k = 1; ok && k < n - 1; k++) ok = ids[k] >= 0 && ids[k] < RAM_BPE_VOCAB;
    }
    check(ok, "random bytes", "rc %d n %d", rc, n);
    free(text);
}

static void test_bad_vocab(const char *vocab, size_t len)
{
    struct ram_error err;
    struct ram_bpe *b = NULL;
    size_t cut = 0;
    for (int lines = 0; lines < 1000 && cut < len; cut++) lines += vocab[cut] == '\n';
    ram_status rc = ram_bpe_init(vocab, cut, &b, &err);
    check(rc == RAM_ERR_FORMAT && !b && strstr(err.msg, "merges"), "vocabulary with too few merges", "rc %d: %s", rc,
          err.msg);
    rc = ram_bpe_init("", 0, &b, &err);
    check(rc == RAM_ERR_FORMAT && !b, "empty vocabulary", "rc %d", rc);

    char *copy = malloc(len);
    memcpy(copy, vocab, len);
    char *line3 = strchr(strchr(strchr(copy, '\n') + 1, '\n') + 1, '\n') + 1; /* merge 3 */
    char *sp = strchr(line3, ' ');
    *sp = 'x'; /* "a n" -> "axn": one symbol */
    rc = ram_bpe_init(copy, len, &b, &err);
    check(rc == RAM_ERR_FORMAT && !b && strstr(err.msg, "line 4"), "vocabulary line that is not a pair", "rc %d: %s",
          rc, err.msg);
    memcpy(copy, vocab, len);

    /* A first merge "in g" uses "in", which the next merge creates: not well formed. */
    free(copy);
    copy = malloc(len + 8);
    size_t hl = (size_t)(strchr(vocab, '\n') - vocab);
    memcpy(copy, vocab, hl);
    memcpy(copy + hl, "\nin g", 5);
    memcpy(copy + hl + 5, vocab + hl, len - hl);
    rc = ram_bpe_init(copy, len + 5, &b, &err);
    check(rc == RAM_ERR_FORMAT && !b && strstr(err.msg, "merge 1 uses a symbol that a later merge"),
          "vocabulary merge using a later symbol", "rc %d: %s", rc, err.msg);
    free(copy);
}

static void test_oom(const char *vocab, size_t len)
{
    int ok = 1, succeeded = 0;
    for (long k = 0; k < 40 && !succeeded; k++) {
        struct ram_error err;
        struct ram_bpe *b = NULL;
        ram_alloc_fail_after(k);
        ram_status rc = ram_bpe_init(vocab, len, &b, &err);
        ram_alloc_fail_after(-1);
        if (rc == RAM_OK) {
            succeeded = 1;
            ram_bpe_free(b);
        } else if (rc != RAM_ERR_NOMEM || b) {
            ok = 0;
        }
    }
    check(ok && succeeded, "init under allocation failures", "ok %d succeeded %d", ok, succeeded);
}

static void test_oom_tokenize(const struct ram_bpe *bpe)
{
    int ok = 1, succeeded = 0;
    const char *t = "a photo of supercalifragilistic &amp; \xce\xa3 things";
    for (long k = 0; k < 40 && !succeeded; k++) {
        struct ram_error err;
        int32_t ids[77];
        int n = 0;
        ram_alloc_fail_after(k);
        ram_status rc = ram_bpe_tokenize(bpe, t, strlen(t), ids, 77, &n, &err);
        ram_alloc_fail_after(-1);
        if (rc == RAM_OK)
            succeeded = n > 8;
        else if (rc != RAM_ERR_NOMEM)
            ok = 0;
    }
    check(ok && succeeded, "tokenize under allocation failures", "ok %d succeeded %d", ok, succeeded);
}

int main(void)
{
    (void)check_close_npy; /* harness helper this test does not need */
    const char *build = getenv("RAM_BUILD");
    char path[1024];
    snprintf(path, sizeof path, "%s/bpe_simple_vocab_16e6.txt", build ? build : "build");
    size_t len = 0;
    char *vocab = read_file(path, &len);
    if (vocab) { /* NUL-terminate for the string functions of test_bad_vocab */
        vocab = realloc(vocab, len + 1);
        vocab[len] = 0;
    }
    if (!vocab) {
        check(0, "read vocabulary", "cannot read %s (make builds it)", path);
        return harness_exit();
    }
    struct ram_bpe *bpe = NULL;
    struct ram_error err;
    ram_status rc = ram_bpe_init(vocab, len, &bpe, &err);
    check(rc == RAM_OK && bpe, "init from bpe_simple_vocab_16e6.txt", "rc %d: %s", rc, err.msg);
    if (bpe) {
        test_golden(bpe);
        test_extra(bpe);
        test_errors(bpe);
        test_oom_tokenize(bpe);
    }
    test_bad_vocab(vocab, len);
    test_oom(vocab, len);
    ram_bpe_free(bpe);
    free(vocab);
    return harness_exit();
}
