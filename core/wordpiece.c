/*
** wordpiece.c — the BERT tokenizer of Tag2Text (API and what is reproduced:
** wordpiece.h): the slow Hugging Face BertTokenizer with [DEC]/[ENC] added.
**
** HOW IT WORKS
**
** Text is decoded to code points, then, as transformers' tokenize() and
** BasicTokenizer do:
**   1. Special-token strings are cut out of the raw text (none is a prefix
**      of another, so a left-to-right scan is the reference's trie split).
**   2. Every other character is lower-cased on its own: the reference
**      lowercases with re.sub(r"(specials)|(.+?)", ...), whose lazy group
**      matches one character at a time, so str.lower() never sees a
**      neighbour (capital sigma always becomes σ). BasicTokenizer's own
**      per-token lower() then changes nothing (lowering is idempotent and no
**      capital sigma is left; the table generator asserts the former).
**   3. _clean_text: NUL, U+FFFD and category C* dropped (tab, newline, CR
**      kept), whitespace (those three, ' ' and Zs) -> ' '; spaces around
**      CJK ideographs; then str.split() (str.isspace()).
**   4. Per word: NFD with Mn marks removed (a per-character table; Hangul
**      syllables decomposed arithmetically into their jamo, which are
**      letters and stay), then one token per punctuation character (ASCII
**      symbols or category P*), runs of the rest as tokens.
**   5. WordPiece per token: greedy longest prefix in the vocabulary, '##'
**      before every piece but the first; a token with no full cover, or of
**      more than 100 characters, is one [UNK].
** Vocabulary lookups go through an open-addressing hash table of ids keyed
** by the token's UTF-8 bytes.
*/
#include "wordpiece.h"

#include "bpe.h"
#include "internal.h"
#include "wordpiece_tables.h"

#include <string.h>

#define WP_MAX_WORD 100 /* max_input_chars_per_word */

static const char *const special_names[7] = {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[DEC]", "[ENC]"};

struct ram_wordpiece {
    /* All in the allocation of the struct itself: */
    char *text;    /* the vocabulary, one NUL-terminated token per id, then "[DEC]" "[ENC]" */
    uint32_t *off; /* n_total offsets into text */
    uint32_t *len; /* n_total byte lengths */
    int32_t *slot; /* hash table of ids (-1: empty), mask + 1 entries */
    size_t mask;
    int n_vocab;        /* lines of vocab.txt */
    int n_total;        /* n_vocab + 2 */
    int32_t special[7]; /* enum ram_wp_special -> id */
};

/* ------------------------------------------------------------------ tables */

static int in_ranges(const struct ram_wp_range *r, size_t n, uint32_t c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (c < r[mid].lo)
            hi = mid;
        else if (c > r[mid].hi)
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

#define IN_TABLE(t, c) in_ranges((t), sizeof(t) / sizeof((t)[0]), (c))

static int is_control(uint32_t c) /* _is_control */
{
    if (c == '\t' || c == '\n' || c == '\r') return 0;
    return IN_TABLE(ram_wp_control, c);
}

static int is_whitespace(uint32_t c) /* _is_whitespace */
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || IN_TABLE(ram_wp_zs, c);
}

static int is_py_space(uint32_t c) /* str.isspace() */ { return IN_TABLE(ram_wp_pyspace, c); }

static int is_punct(uint32_t c) /* _is_punctuation */
{
    if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return 1;
    return IN_TABLE(ram_wp_punct, c);
}

static int is_cjk(uint32_t c) /* _is_chinese_char */
{
    return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
           (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

/* str.lower() of one character into out (room for RAM_WP_LOWER_MAX); returns the count. */
static int lower_char(uint32_t c, uint32_t *out)
{
    if (c < 0x80) {
        out[0] = (c >= 'A' && c <= 'Z') ? c + 32 : c;
        return 1;
    }
    for (size_t k = 0; k < sizeof ram_wp_lowerm / sizeof ram_wp_lowerm[0]; k++)
        if (ram_wp_lowerm[k].cp == c) {
            for (int i = 0; i < ram_wp_lowerm[k].n; i++) out[i] = ram_wp_lowerm[k].to[i];
            return ram_wp_lowerm[k].n;
        }
    size_t lo = 0, hi = sizeof ram_wp_lower1 / sizeof ram_wp_lower1[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ram_wp_lower1[mid].cp == c) {
            out[0] = ram_wp_lower1[mid].to;
            return 1;
        }
        if (ram_wp_lower1[mid].cp < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    out[0] = c;
    return 1;
}

/* NFD of one character without its Mn marks into out (room for 3). */
static int strip_char(uint32_t c, uint32_t *out)
{
    if (c < 0x80) {
        out[0] = c;
        return 1;
    }
    if (c >= 0xAC00 && c <= 0xD7A3) { /* Hangul syllable: L V (T), Unicode 3.12 */
        uint32_t s = c - 0xAC00, t = s % 28;
        out[0] = 0x1100 + s / 588;
        out[1] = 0x1161 + (s % 588) / 28;
        if (!t) return 2;
        out[2] = 0x11A7 + t;
        return 3;
    }
    if (IN_TABLE(ram_wp_mn, c)) return 0;
    size_t lo = 0, hi = sizeof ram_wp_strip_map / sizeof ram_wp_strip_map[0];
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        const struct ram_wp_strip *e = &ram_wp_strip_map[mid];
        if (e->cp == c) {
            for (int i = 0; i < e->n; i++) out[i] = ram_wp_strip_pool[e->off + i];
            return e->n;
        }
        if (e->cp < c)
            lo = mid + 1;
        else
            hi = mid;
    }
    out[0] = c;
    return 1;
}

/* ------------------------------------------------------------------ vocabulary */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 0x100000001b3ULL;
    return h ^ (h >> 29);
}

static int32_t lookup(const struct ram_wordpiece *wp, const char *s, size_t n)
{
    for (size_t h = hash_bytes(s, n) & wp->mask;; h = (h + 1) & wp->mask) {
        int32_t id = wp->slot[h];
        if (id < 0) return -1;
        if (wp->len[id] == n && !memcmp(wp->text + wp->off[id], s, n)) return id;
    }
}

/* Adds id under its string; a string seen before now maps to id (dict order). */
static void insert(struct ram_wordpiece *wp, int32_t id)
{
    const char *s = wp->text + wp->off[id];
    size_t n = wp->len[id];
    for (size_t h = hash_bytes(s, n) & wp->mask;; h = (h + 1) & wp->mask) {
        int32_t o = wp->slot[h];
        if (o < 0 || (wp->len[o] == n && !memcmp(wp->text + wp->off[o], s, n))) {
            wp->slot[h] = id;
            return;
        }
    }
}

void ram_wordpiece_free(struct ram_wordpiece *wp) { ram_free(wp); }

ram_status ram_wordpiece_init(const char *vocab_text, size_t len, struct ram_wordpiece **out, struct ram_error *err)
{
    struct ram_wordpiece *wp = NULL;
    ram_status rc = RAM_OK;
    if (!out || (!vocab_text && len)) return ram_fail(err, RAM_ERR_ARG, "wordpiece: NULL argument");
    *out = NULL;
    if (len > RAM_WP_MAX_VOCAB_TEXT)
        return ram_fail(err, RAM_ERR_TOO_BIG, "BERT vocabulary: %zu bytes is too big", len);
    if (len && memchr(vocab_text, 0, len)) return ram_fail(err, RAM_ERR_FORMAT, "BERT vocabulary: contains a NUL byte");
    size_t lines = 0;
    for (size_t i = 0; i < len; i++) lines += vocab_text[i] == '\n';
    if (len && vocab_text[len - 1] != '\n') lines++;
    if (lines < 5 || lines > (1u << 24)) return ram_fail(err, RAM_ERR_FORMAT, "BERT vocabulary: %zu lines", lines);
    /* One allocation (so that a model can own it with ram_free): the struct,
    ** the offsets, lengths, hash slots, then the text. */
    size_t n_total = lines + 2, cap = 64;
    while (cap < 2 * n_total) cap *= 2;
    size_t head = (sizeof *wp + 15) & ~(size_t)15;
    size_t bytes = head + sizeof(uint32_t) * 2 * n_total + sizeof(int32_t) * cap + len + 16;
    char *block = ram_malloc(bytes);
    if (!block) return ram_fail(err, RAM_ERR_NOMEM, "out of memory");
    wp = (struct ram_wordpiece *)block;
    memset(wp, 0, sizeof *wp);
    wp->n_vocab = (int)lines;
    wp->n_total = wp->n_vocab + 2;
    wp->mask = cap - 1;
    wp->off = (uint32_t *)(block + head);
    wp->len = wp->off + n_total;
    wp->slot = (int32_t *)(wp->len + n_total);
    wp->text = (char *)(wp->slot + cap);
    memset(wp->slot, 0xff, sizeof(int32_t) * cap);
    size_t pos = 0, o = 0;
    for (int id = 0; id < wp->n_vocab; id++) {
        const char *nl = memchr(vocab_text + pos, '\n', len - pos);
        size_t e = nl ? (size_t)(nl - vocab_text) : len;
        memcpy(wp->text + o, vocab_text + pos, e - pos);
        wp->off[id] = (uint32_t)o;
        wp->len[id] = (uint32_t)(e - pos);
        o += e - pos;
        wp->text[o++] = 0;
        pos = e + 1;
    }
    for (int k = 0; k < 2; k++) { /* "[DEC]\0[ENC]\0": 12 bytes, within the 16 spare */
        memcpy(wp->text + o, special_names[RAM_WP_DEC + k], 6);
        wp->off[wp->n_vocab + k] = (uint32_t)o;
        wp->len[wp->n_vocab + k] = 5;
        o += 6;
    }
    for (int id = 0; id < wp->n_vocab; id++) insert(wp, id);
    for (int k = 0; k < 5; k++) {
        wp->special[k] = lookup(wp, special_names[k], strlen(special_names[k]));
        if (wp->special[k] < 0) {
            rc = ram_fail(err, RAM_ERR_FORMAT, "BERT vocabulary: no %s token", special_names[k]);
            goto fail;
        }
    }
    /* The added tokens are matched before WordPiece and never looked up:
    ** left out of the table, as they are of the reference's vocab dict. */
    wp->special[RAM_WP_DEC] = wp->n_vocab;
    wp->special[RAM_WP_ENC] = wp->n_vocab + 1;
    *out = wp;
    return RAM_OK;
fail:
    ram_wordpiece_free(wp);
    return rc;
}

int32_t ram_wordpiece_special(const struct ram_wordpiece *wp, enum ram_wp_special which)
{
    if (!wp || which < RAM_WP_PAD || which > RAM_WP_ENC) return -1;
    return wp->special[which];
}

int ram_wordpiece_size(const struct ram_wordpiece *wp) { return wp ? wp->n_total : 0; }

const char *ram_wordpiece_token(const struct ram_wordpiece *wp, int32_t id)
{
    if (id < 0 || id >= wp->n_total) id = wp->special[RAM_WP_UNK];
    return wp->text + wp->off[id];
}

/* ------------------------------------------------------------------ encoding */

struct emit {
    int32_t *ids;
    int max, n;
};

static void emit_id(struct emit *e, int32_t id)
{
    if (e->n < e->max) e->ids[e->n] = id;
    e->n++;
}

/* WordPiece of one token w[0..n). */
static void wordpiece(const struct ram_wordpiece *wp, const uint32_t *w, size_t n, struct emit *e)
{
    char buf[2 + 4 * WP_MAX_WORD];
    int32_t pieces[WP_MAX_WORD];
    int np = 0;
    if (n > WP_MAX_WORD) {
        emit_id(e, wp->special[RAM_WP_UNK]);
        return;
    }
    for (size_t start = 0; start < n;) {
        int32_t found = -1;
        size_t end = n;
        for (; end > start; end--) {
            size_t b = 0;
            if (start > 0) buf[b++] = '#', buf[b++] = '#';
            for (size_t i = start; i < end; i++) b += ram_utf8_encode(w[i], (unsigned char *)buf + b);
            found = lookup(wp, buf, b);
            if (found >= 0) break;
        }
        if (found < 0) {
            emit_id(e, wp->special[RAM_WP_UNK]);
            return;
        }
        pieces[np++] = found;
        start = end;
    }
    for (int i = 0; i < np; i++) emit_id(e, pieces[i]);
}

/* Steps 4-5 on one whitespace-separated word; tmp has room for 3 * n. */
static void word(const struct ram_wordpiece *wp, const uint32_t *w, size_t n, uint32_t *tmp, struct emit *e)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) m += (size_t)strip_char(w[i], tmp + m);
    size_t start = 0;
    for (size_t i = 0; i < m; i++)
        if (is_punct(tmp[i])) {
            if (i > start) wordpiece(wp, tmp + start, i - start, e);
            wordpiece(wp, tmp + i, 1, e);
            start = i + 1;
        }
    if (m > start) wordpiece(wp, tmp + start, m - start, e);
}

/* Steps 2-5 on a stretch of text without special tokens. buf has room for
** 3 * n, tmp for 3 * 3 * n code points. */
static void basic(const struct ram_wordpiece *wp, const uint32_t *s, size_t n, uint32_t *buf, uint32_t *tmp,
                  struct emit *e)
{
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        uint32_t lc[RAM_WP_LOWER_MAX];
        int k = lower_char(s[i], lc);
        for (int j = 0; j < k; j++) {
            uint32_t c = lc[j];
            if (c == 0 || c == 0xFFFD || is_control(c)) continue;
            if (is_whitespace(c)) {
                buf[m++] = ' ';
            } else if (is_cjk(c)) {
                buf[m++] = ' ';
                buf[m++] = c;
                buf[m++] = ' ';
            } else {
                buf[m++] = c;
            }
        }
    }
    size_t start = 0;
    for (size_t i = 0; i <= m; i++)
        if (i == m || is_py_space(buf[i])) {
            if (i > start) word(wp, buf + start, i - start, tmp, e);
            start = i + 1;
        }
}

/* The special token starting at s[0..n), or -1. */
static int special_at(const uint32_t *s, size_t n)
{
    if (n < 5 || s[0] != '[') return -1;
    for (int k = 0; k < 7; k++) {
        const char *p = special_names[k];
        size_t l = strlen(p);
        if (l > n) continue;
        size_t i = 0;
        while (i < l && s[i] == (unsigned char)p[i]) i++;
        if (i == l) return k;
    }
    return -1;
}

static ram_status tokenize(const struct ram_wordpiece *wp, const char *text, size_t len, struct emit *e,
                           struct ram_error *err)
{
    if (len > RAM_WP_MAX_TEXT)
        return ram_fail(err, RAM_ERR_TOO_BIG, "text of %zu bytes is over the limit of %d", len, RAM_WP_MAX_TEXT);
    /* code points (n), lowered/cleaned (3n: CJK spacing or a 2-character lowering),
    ** a word stripped (3 per character of a cleaned word). */
    size_t n_cp = len + 1;
    uint32_t *cp = ram_malloc(sizeof(uint32_t) * 13 * n_cp);
    if (!cp) return ram_fail(err, RAM_ERR_NOMEM, "out of memory tokenizing %zu bytes", len);
    uint32_t *buf = cp + n_cp, *tmp = buf + 3 * n_cp;
    size_t n = ram_utf8_decode((const unsigned char *)text, len, cp);
    size_t start = 0;
    for (size_t i = 0; i < n;) {
        int k = special_at(cp + i, n - i);
        if (k < 0) {
            i++;
            continue;
        }
        if (i > start) basic(wp, cp + start, i - start, buf, tmp, e);
        emit_id(e, wp->special[k]);
        i += strlen(special_names[k]);
        start = i;
    }
    if (n > start) basic(wp, cp + start, n - start, buf, tmp, e);
    ram_free(cp);
    return RAM_OK;
}

ram_status ram_wordpiece_tokenize(const struct ram_wordpiece *wp, const char *text, size_t len, int32_t *ids,
                                  int max_ids, int *n_ids, struct ram_error *err)
{
    if (!wp || !n_ids || (!text && len) || max_ids < 0 || (!ids && max_ids))
        return ram_fail(err, RAM_ERR_ARG, "wordpiece: NULL argument");
    struct emit e = {ids, max_ids, 0};
    *n_ids = 0;
    ram_status rc = tokenize(wp, text ? text : "", len, &e, err);
    if (rc) return rc;
    *n_ids = e.n;
    return RAM_OK;
}

ram_status ram_wordpiece_encode_fixed(const struct ram_wordpiece *wp, const char *text, size_t len, int32_t first_id,
                                      int n, int32_t *ids, int32_t *mask, int *n_used, struct ram_error *err)
{
    if (!wp || !ids || (!text && len) || n < 2) return ram_fail(err, RAM_ERR_ARG, "wordpiece: bad argument");
    struct emit e = {ids + 1, n - 2, 0};
    ram_status rc = tokenize(wp, text ? text : "", len, &e, err);
    if (rc) return rc;
    int used = 1 + (e.n < n - 2 ? e.n : n - 2); /* truncation keeps the first n - 2 */
    ids[0] = first_id;
    ids[used++] = wp->special[RAM_WP_SEP];
    for (int i = used; i < n; i++) ids[i] = wp->special[RAM_WP_PAD];
    if (mask)
        for (int i = 0; i < n; i++) mask[i] = i < used;
    if (n_used) *n_used = used;
    return RAM_OK;
}

/* ------------------------------------------------------------------ decoding */

/* A growing string (ram_malloc'd). */
struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
};

static void sb_put(struct sbuf *b, const char *s, size_t n)
{
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t nc = b->cap ? b->cap : 64;
        while (nc < b->n + n + 1) nc *= 2;
        char *np = ram_realloc(b->p, nc);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

static int is_special_id(const struct ram_wordpiece *wp, int32_t id)
{
    for (int k = 0; k < 7; k++)
        if (wp->special[k] == id) return 1;
    return 0;
}

/* convert_tokens_to_string of pieces [a, b): " ".join, then " ##" removed,
** then strip() (the pieces hold no whitespace: only the join's spaces and
** none at either end, so there is nothing to strip). */
static void pieces_to_string(const struct ram_wordpiece *wp, const int32_t *ids, const int *sel, int a, int b,
                             struct sbuf *out)
{
    for (int i = a; i < b; i++) {
        const char *t = ram_wordpiece_token(wp, ids[sel[i]]);
        if (i > a) {
            if (!strncmp(t, "##", 2))
                t += 2; /* " ##" removed: the space and the hashes */
            else
                sb_put(out, " ", 1);
        }
        sb_put(out, t, strlen(t));
    }
}

/* Python's str.replace(old, new) over b, in place (new is never longer). */
static void replace_all(struct sbuf *b, const char *old, const char *new_)
{
    size_t lo = strlen(old), ln = strlen(new_), r = 0, w = 0;
    if (!b->p) return;
    while (r < b->n) {
        if (r + lo <= b->n && !memcmp(b->p + r, old, lo)) {
            memmove(b->p + w, new_, ln);
            w += ln;
            r += lo;
        } else {
            b->p[w++] = b->p[r++];
        }
    }
    b->n = w;
    b->p[w] = 0;
}

ram_status ram_wordpiece_decode(const struct ram_wordpiece *wp, const int32_t *ids, int n, int skip_special,
                                int clean_up, char **out, struct ram_error *err)
{
    if (!wp || !out || n < 0 || (!ids && n)) return ram_fail(err, RAM_ERR_ARG, "wordpiece: NULL argument");
    *out = NULL;
    struct sbuf b = {0};
    int *sel = ram_malloc(sizeof(int) * (size_t)(n + 1));
    if (!sel) return ram_fail(err, RAM_ERR_NOMEM, "out of memory");
    int m = 0;
    for (int i = 0; i < n; i++)
        if (!(skip_special && is_special_id(wp, ids[i]))) sel[m++] = i;
    /* Added tokens ([DEC], [ENC], by string) are pieces of their own; the
    ** runs between them go through convert_tokens_to_string; all joined
    ** with ' ' (spaces_between_special_tokens). */
    int run = 0, parts = 0;
    sb_put(&b, "", 0);
    for (int i = 0; i <= m; i++) {
        int added = 0;
        if (i < m) {
            const char *t = ram_wordpiece_token(wp, ids[sel[i]]);
            added = !strcmp(t, special_names[RAM_WP_DEC]) || !strcmp(t, special_names[RAM_WP_ENC]);
        }
        if (i == m || added) {
            if (i > run) {
                if (parts++) sb_put(&b, " ", 1);
                pieces_to_string(wp, ids, sel, run, i, &b);
            }
            if (added) {
                if (parts++) sb_put(&b, " ", 1);
                const char *t = ram_wordpiece_token(wp, ids[sel[i]]);
                sb_put(&b, t, strlen(t));
            }
            run = i + 1;
        }
    }
    ram_free(sel);
    if (b.oom) {
        ram_free(b.p);
        return ram_fail(err, RAM_ERR_NOMEM, "out of memory");
    }
    if (clean_up) {
        static const char *const rep[10][2] = {{" .", "."},     {" ?", "?"},     {" !", "!"},   {" ,", ","},
                                               {" ' ", "'"},    {" n't", "n't"}, {" 'm", "'m"}, {" 's", "'s"},
                                               {" 've", "'ve"}, {" 're", "'re"}};
        for (int k = 0; k < 10; k++) replace_all(&b, rep[k][0], rep[k][1]);
    }
    *out = b.p;
    return RAM_OK;
}
