/*
** test_wordpiece.c — the BERT tokenizer of Tag2Text (core/wordpiece.c)
** against the official tokenizer's outputs (tests/data/golden/tag2text/
** tokenizer: 43 strings with tokens, ids, the tag-encoder form and decode;
** 10 decode cases with the caption cut), plus its error paths.
*/
#include "harness.h"
#include "test_json.h"

#include "internal.h"
#include "wordpiece.h"

static int load_json(const char *rel, struct jv *v)
{
    size_t len;
    char *buf = read_file(data_path(rel), &len);
    if (!buf) return 0;
    struct jp j = {buf, buf + len, 0};
    jparse(&j, v);
    free(buf);
    return !j.bad;
}

static int ids_equal(const struct jv *a, const int32_t *ids, int n)
{
    if (!a || a->t != J_ARR || a->n != n) return 0;
    for (int i = 0; i < n; i++)
        if ((int32_t)a->items[i].num != ids[i]) return 0;
    return 1;
}

static int32_t *jv_ids(const struct jv *a, int *n)
{
    int32_t *ids = malloc(sizeof(int32_t) * (size_t)(a->n + 1));
    for (int i = 0; i < a->n; i++) ids[i] = (int32_t)a->items[i].num;
    *n = a->n;
    return ids;
}

static struct ram_wordpiece *load_vocab(void)
{
    size_t len;
    char *text = read_file("models/bert_vocab.txt", &len);
    struct ram_wordpiece *wp = NULL;
    struct ram_error err = {{0}};
    ram_status rc = text ? ram_wordpiece_init(text, len, &wp, &err) : RAM_ERR_IO;
    check(rc == RAM_OK, "wordpiece_init_vocab", "%s", text ? err.msg : "cannot read models/bert_vocab.txt");
    free(text);
    return wp;
}

static void test_special(struct ram_wordpiece *wp)
{
    struct jv s;
    if (!load_json("golden/tag2text/tokenizer/special.json", &s)) {
        check(0, "wordpiece_special_json", "cannot read special.json");
        return;
    }
    int ok = ram_wordpiece_size(wp) == (int)jget(&s, "len")->num &&
             ram_wordpiece_special(wp, RAM_WP_DEC) == (int32_t)jget(&s, "bos_token_id")->num &&
             ram_wordpiece_special(wp, RAM_WP_ENC) == (int32_t)jget(&s, "enc_token_id")->num &&
             ram_wordpiece_special(wp, RAM_WP_SEP) == (int32_t)jget(&s, "sep_token_id")->num &&
             ram_wordpiece_special(wp, RAM_WP_PAD) == (int32_t)jget(&s, "pad_token_id")->num &&
             ram_wordpiece_special(wp, RAM_WP_CLS) == (int32_t)jget(&s, "cls_token_id")->num;
    check(ok, "wordpiece_special_ids", "size %d dec %d enc %d", ram_wordpiece_size(wp),
          ram_wordpiece_special(wp, RAM_WP_DEC), ram_wordpiece_special(wp, RAM_WP_ENC));
    const struct jv *prompt = jget(&s, "prompt"), *pids = jget(&s, "prompt_ids");
    int32_t ids[8];
    int n = 0;
    struct ram_error err;
    ram_status rc = ram_wordpiece_tokenize(wp, prompt->str, prompt->len, ids + 1, 6, &n, &err);
    ids[0] = ram_wordpiece_special(wp, RAM_WP_CLS);
    ids[n + 1] = ram_wordpiece_special(wp, RAM_WP_SEP);
    check(!rc && ids_equal(pids, ids, n + 2), "wordpiece_prompt_ids", "n %d", n);
    jfree(&s);
}

/* Every golden string: tokens (by their strings), ids, the tag-encoder form, decode. */
static void test_strings(struct ram_wordpiece *wp)
{
    struct jv d;
    if (!load_json("golden/tag2text/tokenizer/bert_tokenizer.json", &d) || d.t != J_ARR) {
        check(0, "wordpiece_golden_json", "cannot read bert_tokenizer.json");
        return;
    }
    int n_tok = 0, n_ids = 0, n_enc = 0, n_dec = 0, n_decs = 0;
    char fails[512] = "";
    for (int i = 0; i < d.n; i++) {
        const struct jv *c = &d.items[i];
        const struct jv *text = jget(c, "text"), *tokens = jget(c, "tokens"), *gids = jget(c, "ids");
        struct ram_error err;
        int n = 0;
        ram_status rc = ram_wordpiece_tokenize(wp, text->str, text->len, NULL, 0, &n, &err);
        int32_t *ids = malloc(sizeof(int32_t) * (size_t)(n + 2));
        if (!rc) rc = ram_wordpiece_tokenize(wp, text->str, text->len, ids + 1, n, &n, &err);
        int ok = !rc && tokens->n == n;
        for (int k = 0; ok && k < n; k++) ok = !strcmp(ram_wordpiece_token(wp, ids[k + 1]), tokens->items[k].str);
        n_tok += ok;
        if (!ok && strlen(fails) < 400) snprintf(fails + strlen(fails), sizeof fails - strlen(fails), " tokens#%d", i);
        ids[0] = ram_wordpiece_special(wp, RAM_WP_CLS);
        ids[n + 1] = ram_wordpiece_special(wp, RAM_WP_SEP);
        ok = !rc && ids_equal(gids, ids, n + 2);
        n_ids += ok;
        if (!ok && strlen(fails) < 400) snprintf(fails + strlen(fails), sizeof fails - strlen(fails), " ids#%d", i);

        int32_t enc[40], mask[40];
        int used = 0;
        rc = ram_wordpiece_encode_fixed(wp, text->str, text->len, ram_wordpiece_special(wp, RAM_WP_ENC), 40, enc, mask,
                                        &used, &err);
        ok = !rc && ids_equal(jget(c, "tag_encoder_ids"), enc, 40) &&
             ids_equal(jget(c, "tag_encoder_attention_mask"), mask, 40);
        n_enc += ok;
        if (!ok && strlen(fails) < 400) snprintf(fails + strlen(fails), sizeof fails - strlen(fails), " enc#%d", i);

        for (int skip = 0; skip < 2; skip++) {
            char *s = NULL;
            const struct jv *want = jget(c, skip ? "decode_skip_special" : "decode");
            rc = ram_wordpiece_decode(wp, ids, n + 2, skip, 1, &s, &err);
            ok = !rc && s && !strcmp(s, want->str);
            if (skip)
                n_decs += ok;
            else
                n_dec += ok;
            if (!ok && strlen(fails) < 400)
                snprintf(fails + strlen(fails), sizeof fails - strlen(fails), " dec%d#%d", skip, i);
            ram_free(s);
        }
        free(ids);
    }
    check(n_tok == d.n, "wordpiece_golden_tokens", "%d of %d:%s", n_tok, d.n, fails);
    check(n_ids == d.n, "wordpiece_golden_ids", "%d of %d", n_ids, d.n);
    check(n_enc == d.n, "wordpiece_golden_tag_encoder_form", "%d of %d", n_enc, d.n);
    check(n_dec == d.n, "wordpiece_golden_decode", "%d of %d", n_dec, d.n);
    check(n_decs == d.n, "wordpiece_golden_decode_skip_special", "%d of %d", n_decs, d.n);
    check(d.n == 43, "wordpiece_golden_count", "%d strings", d.n);
    jfree(&d);
}

static void test_decode_cases(struct ram_wordpiece *wp)
{
    struct jv d;
    if (!load_json("golden/tag2text/tokenizer/decode.json", &d) || d.t != J_ARR) {
        check(0, "wordpiece_decode_json", "cannot read decode.json");
        return;
    }
    int good = 0;
    char fails[256] = "";
    for (int i = 0; i < d.n; i++) {
        const struct jv *c = &d.items[i];
        int n;
        int32_t *ids = jv_ids(jget(c, "ids"), &n);
        char *a = NULL, *b = NULL, *nc = NULL;
        struct ram_error err;
        int ok = !ram_wordpiece_decode(wp, ids, n, 0, 1, &a, &err) &&
                 !ram_wordpiece_decode(wp, ids, n, 1, 1, &b, &err) &&
                 !ram_wordpiece_decode(wp, ids, n, 1, 0, &nc, &err);
        const char *cap = b && strlen(b) >= 13 ? b + 13 : "";
        ok = ok && !strcmp(a, jget(c, "decode")->str) && !strcmp(b, jget(c, "decode_skip_special")->str) &&
             !strcmp(nc, jget(c, "decode_no_cleanup")->str) && !strcmp(cap, jget(c, "caption")->str);
        good += ok;
        if (!ok) snprintf(fails + strlen(fails), sizeof fails - strlen(fails), " #%d", i);
        ram_free(a);
        ram_free(b);
        ram_free(nc);
        free(ids);
    }
    check(good == d.n && d.n == 10, "wordpiece_golden_decode_cases", "%d of %d:%s", good, d.n, fails);
    jfree(&d);
}

static void test_errors(struct ram_wordpiece *wp)
{
    struct ram_error err;
    struct ram_wordpiece *w2 = NULL;
    check(ram_wordpiece_init("a\nb\n", 4, &w2, &err) == RAM_ERR_FORMAT && !w2, "wordpiece_vocab_too_small", "%s",
          err.msg);
    const char no_unk[] = "[PAD]\n[CLS]\n[SEP]\n[MASK]\nx\n";
    check(ram_wordpiece_init(no_unk, sizeof no_unk - 1, &w2, &err) == RAM_ERR_FORMAT && strstr(err.msg, "[UNK]"),
          "wordpiece_vocab_needs_unk", "%s", err.msg);
    const char nul[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nx\0y\n";
    check(ram_wordpiece_init(nul, sizeof nul - 1, &w2, &err) == RAM_ERR_FORMAT, "wordpiece_vocab_nul", "%s", err.msg);
    /* A tiny vocabulary: duplicates take their last id, unknown words are [UNK]. */
    const char tiny[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nab\n##c\nab\n";
    int32_t ids[8];
    int n = 0;
    int ok = ram_wordpiece_init(tiny, sizeof tiny - 1, &w2, &err) == RAM_OK &&
             ram_wordpiece_tokenize(w2, "ABC abd [DEC]", 13, ids, 8, &n, &err) == RAM_OK && n == 4 && ids[0] == 7 &&
             ids[1] == 6 && ids[2] == 1 && ids[3] == 8;
    check(ok, "wordpiece_tiny_vocab", "n %d ids %d %d %d %d", n, ids[0], ids[1], ids[2], ids[3]);
    ram_wordpiece_free(w2);

    /* Counting beyond the buffer; invalid UTF-8 is dropped as U+FFFD. */
    n = 0;
    check(ram_wordpiece_tokenize(wp, "a dog a cat", 11, ids, 2, &n, &err) == RAM_OK && n == 4 && ids[1] == 3899,
          "wordpiece_count_beyond_buffer", "n %d", n);
    check(ram_wordpiece_tokenize(wp, "do\xff\xfeg", 5, ids, 8, &n, &err) == RAM_OK && n == 1 && ids[0] == 3899,
          "wordpiece_invalid_utf8_dropped", "n %d id %d", n, ids[0]);
    char *big = malloc(RAM_WP_MAX_TEXT + 1);
    memset(big, 'a', RAM_WP_MAX_TEXT + 1);
    check(ram_wordpiece_tokenize(wp, big, RAM_WP_MAX_TEXT + 1, ids, 8, &n, &err) == RAM_ERR_TOO_BIG,
          "wordpiece_text_too_big", "%s", err.msg);
    free(big);
    check(ram_wordpiece_encode_fixed(wp, "x", 1, 30523, 1, ids, NULL, NULL, &err) == RAM_ERR_ARG,
          "wordpiece_fixed_needs_two", "%s", err.msg);
    /* Out-of-range ids decode as [UNK], as convert_ids_to_tokens does. */
    int32_t odd[3] = {-5, 1037, 99999};
    char *s = NULL;
    check(ram_wordpiece_decode(wp, odd, 3, 0, 1, &s, &err) == RAM_OK && s && !strcmp(s, "[UNK] a [UNK]"),
          "wordpiece_decode_out_of_range", "%s", s ? s : err.msg);
    ram_free(s);
#ifdef RAM_TEST
    int oom_ok = 1;
    for (long k = 0; k < 4; k++) {
        ram_alloc_fail_after(k);
        s = NULL;
        ram_status rc = ram_wordpiece_decode(wp, ids, 1, 0, 1, &s, &err);
        ram_alloc_fail_after(-1);
        if (rc != RAM_OK && rc != RAM_ERR_NOMEM) oom_ok = 0;
        if (rc == RAM_OK) ram_free(s);
        rc = RAM_OK;
        ram_alloc_fail_after(k);
        rc = ram_wordpiece_tokenize(wp, "hello", 5, ids, 8, &n, &err);
        ram_alloc_fail_after(-1);
        if (rc != RAM_OK && rc != RAM_ERR_NOMEM) oom_ok = 0;
    }
    check(oom_ok, "wordpiece_out_of_memory", "an allocation failure gave another error");
#endif
}

int main(void)
{
    (void)check_close_npy; /* harness helper this test does not need */
    struct ram_wordpiece *wp = load_vocab();
    if (wp) {
        test_special(wp);
        test_strings(wp);
        test_decode_cases(wp);
        test_errors(wp);
    }
    ram_wordpiece_free(wp);
    return harness_exit();
}
