/*
** json.c — the bounded, non-recursive JSON parser declared in json.h (used
** for safetensors headers and ram-convert config files).
**
** HOW IT WORKS: a small state machine walks the text once. Open containers
** live on an explicit stack of at most max_depth entries (no recursion, so
** hostile nesting cannot exhaust the C stack). Every value becomes one node;
** an object's key is a string node followed by the value's subtree. When a
** container closes, its node's `next` is set to the current node count,
** which is what makes sibling iteration O(1) per step.
*/
#include "json.h"

#include "internal.h"

#include <stdlib.h>
#include <string.h>

enum {
    ST_VALUE,        /* a value must follow (after ':' or ',' in an array) */
    ST_VALUE_OR_END, /* just after '[' */
    ST_KEY,          /* a key must follow (after ',' in an object) */
    ST_KEY_OR_END,   /* just after '{' */
    ST_COMMA_OR_END, /* after a value inside a container */
    ST_DONE          /* the root value is complete */
};

struct parser {
    const char *s;
    size_t len, pos;
    struct ram_json_node *nodes;
    int n, cap;
};

static int is_ws(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }
static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_hex(char c) { return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F'); }

/* Appends a node; returns its index or -1 on OOM. */
static int add_node(struct parser *p, int type, size_t start, size_t len)
{
    if (p->n == p->cap) {
        int nc = p->cap ? p->cap * 2 : 64;
        struct ram_json_node *nn = ram_realloc(p->nodes, sizeof *nn * (size_t)nc);
        if (!nn) return -1;
        p->nodes = nn;
        p->cap = nc;
    }
    struct ram_json_node *nd = &p->nodes[p->n];
    nd->type = type;
    nd->start = (uint32_t)start;
    nd->len = (uint32_t)len;
    nd->count = 0;
    nd->next = p->n + 1;
    return p->n++;
}

/* Scans a string starting at the opening quote; on success p->pos is past
** the closing quote and *start, *len delimit the raw contents. */
static int scan_string(struct parser *p, size_t *start, size_t *len)
{
    size_t i = p->pos + 1;
    *start = i;
    while (i < p->len) {
        unsigned char c = (unsigned char)p->s[i];
        if (c == '"') {
            *len = i - *start;
            p->pos = i + 1;
            return 1;
        }
        if (c < 0x20) return 0;
        if (c == '\\') {
            if (i + 1 >= p->len) return 0;
            char e = p->s[i + 1];
            if (e == 'u') {
                if (i + 5 >= p->len) return 0;
                for (int k = 2; k < 6; k++)
                    if (!is_hex(p->s[i + k])) return 0;
                i += 6;
                continue;
            }
            if (!strchr("\"\\/bfnrt", e) || e == 0) return 0;
            i += 2;
            continue;
        }
        i++;
    }
    return 0;
}

/* Scans a number per JSON's grammar; p->pos ends just past it. */
static int scan_number(struct parser *p, size_t *start, size_t *len)
{
    size_t i = p->pos;
    *start = i;
    if (i < p->len && p->s[i] == '-') i++;
    if (i >= p->len) return 0;
    if (p->s[i] == '0') {
        i++;
    } else if (p->s[i] >= '1' && p->s[i] <= '9') {
        while (i < p->len && is_digit(p->s[i])) i++;
    } else {
        return 0;
    }
    if (i < p->len && p->s[i] == '.') {
        i++;
        if (i >= p->len || !is_digit(p->s[i])) return 0;
        while (i < p->len && is_digit(p->s[i])) i++;
    }
    if (i < p->len && (p->s[i] == 'e' || p->s[i] == 'E')) {
        i++;
        if (i < p->len && (p->s[i] == '+' || p->s[i] == '-')) i++;
        if (i >= p->len || !is_digit(p->s[i])) return 0;
        while (i < p->len && is_digit(p->s[i])) i++;
    }
    *len = i - *start;
    p->pos = i;
    return 1;
}

ram_status ram_json_parse(const char *text, size_t len, int max_depth, struct ram_json *out, struct ram_error *err)
{
    struct parser p = {text, len, 0, NULL, 0, 0};
    int *stack = NULL;
    int depth = 0, state = ST_VALUE;
    ram_status rc = RAM_OK;
    const char *what = NULL;

    memset(out, 0, sizeof *out);
    if (!text && len) return ram_fail(err, RAM_ERR_ARG, "json: NULL text");
    if (len > RAM_JSON_MAX_TEXT)
        return ram_fail(err, RAM_ERR_TOO_BIG, "json: text of %zu bytes is over the limit", len);
    if (max_depth < 1) max_depth = 1;
    stack = ram_malloc(sizeof *stack * (size_t)max_depth);
    if (!stack) return ram_fail(err, RAM_ERR_NOMEM, "json: out of memory");
    if (len >= 3 && !memcmp(text, "\xEF\xBB\xBF", 3)) p.pos = 3;

    while (state != ST_DONE) {
        while (p.pos < len && is_ws(text[p.pos])) p.pos++;
        if (p.pos >= len) {
            what = "unexpected end of text";
            goto syntax;
        }
        char c = text[p.pos];
        int top = depth ? stack[depth - 1] : -1;

        if (state == ST_COMMA_OR_END) {
            int is_obj = p.nodes[top].type == RAM_JSON_OBJECT;
            if (c == ',') {
                p.pos++;
                state = is_obj ? ST_KEY : ST_VALUE;
                continue;
            }
            if (c == (is_obj ? '}' : ']')) goto close;
            what = is_obj ? "expected ',' or '}'" : "expected ',' or ']'";
            goto syntax;
        }
        if (state == ST_KEY_OR_END || state == ST_KEY) {
            if (state == ST_KEY_OR_END && c == '}') goto close;
            if (c != '"') {
                what = "expected a string key";
                goto syntax;
            }
            size_t s0, sl;
            if (!scan_string(&p, &s0, &sl)) {
                what = "bad string";
                goto syntax;
            }
            if (add_node(&p, RAM_JSON_STRING, s0, sl) < 0) goto nomem;
            p.nodes[top].count++;
            while (p.pos < len && is_ws(text[p.pos])) p.pos++;
            if (p.pos >= len || text[p.pos] != ':') {
                what = "expected ':'";
                goto syntax;
            }
            p.pos++;
            state = ST_VALUE;
            continue;
        }
        /* ST_VALUE or ST_VALUE_OR_END */
        if (state == ST_VALUE_OR_END && c == ']') goto close;
        if (top >= 0 && p.nodes[top].type == RAM_JSON_ARRAY) p.nodes[top].count++;
        if (c == '{' || c == '[') {
            if (depth >= max_depth) {
                what = "nested too deeply";
                goto syntax;
            }
            int k = add_node(&p, c == '{' ? RAM_JSON_OBJECT : RAM_JSON_ARRAY, p.pos, 1);
            if (k < 0) goto nomem;
            stack[depth++] = k;
            p.pos++;
            state = c == '{' ? ST_KEY_OR_END : ST_VALUE_OR_END;
            continue;
        }
        if (c == '"') {
            size_t s0, sl;
            if (!scan_string(&p, &s0, &sl)) {
                what = "bad string";
                goto syntax;
            }
            if (add_node(&p, RAM_JSON_STRING, s0, sl) < 0) goto nomem;
        } else if (c == '-' || is_digit(c)) {
            size_t s0, sl;
            if (!scan_number(&p, &s0, &sl)) {
                what = "bad number";
                goto syntax;
            }
            if (add_node(&p, RAM_JSON_NUMBER, s0, sl) < 0) goto nomem;
        } else {
            static const struct {
                const char *word;
                int type;
            } lit[3] = {{"null", RAM_JSON_NULL}, {"true", RAM_JSON_TRUE}, {"false", RAM_JSON_FALSE}};
            int found = 0;
            for (int i = 0; i < 3 && !found; i++) {
                size_t wl = strlen(lit[i].word);
                if (len - p.pos >= wl && !memcmp(text + p.pos, lit[i].word, wl)) {
                    if (add_node(&p, lit[i].type, p.pos, wl) < 0) goto nomem;
                    p.pos += wl;
                    found = 1;
                }
            }
            if (!found) {
                what = "unexpected character";
                goto syntax;
            }
        }
        state = depth ? ST_COMMA_OR_END : ST_DONE;
        continue;

    close:
        p.pos++;
        p.nodes[top].next = p.n;
        p.nodes[top].len = (uint32_t)(p.pos - p.nodes[top].start);
        depth--;
        state = depth ? ST_COMMA_OR_END : ST_DONE;
    }
    while (p.pos < len && is_ws(text[p.pos])) p.pos++;
    if (p.pos != len) {
        what = "trailing characters after the value";
        goto syntax;
    }
    out->text = text;
    out->len = len;
    out->nodes = p.nodes;
    out->n = p.n;
    p.nodes = NULL;
    goto cleanup;

syntax:
    rc = ram_fail(err, RAM_ERR_FORMAT, "json: %s at byte %zu", what, p.pos);
    goto cleanup;
nomem:
    rc = ram_fail(err, RAM_ERR_NOMEM, "json: out of memory");
cleanup:
    ram_free(p.nodes);
    ram_free(stack);
    return rc;
}

void ram_json_free(struct ram_json *j)
{
    if (!j) return;
    ram_free(j->nodes);
    memset(j, 0, sizeof *j);
}

int ram_json_first(const struct ram_json *j, int node)
{
    if (node < 0 || node >= j->n) return -1;
    const struct ram_json_node *nd = &j->nodes[node];
    if ((nd->type != RAM_JSON_ARRAY && nd->type != RAM_JSON_OBJECT) || nd->count == 0) return -1;
    return node + 1;
}

int ram_json_next(const struct ram_json *j, int container, int child)
{
    if (container < 0 || container >= j->n || child <= container || child >= j->n) return -1;
    const struct ram_json_node *c = &j->nodes[container];
    int nx;
    if (c->type == RAM_JSON_OBJECT) {
        if (child + 1 >= j->n) return -1;
        nx = j->nodes[child + 1].next;
    } else if (c->type == RAM_JSON_ARRAY) {
        nx = j->nodes[child].next;
    } else {
        return -1;
    }
    return nx < c->next ? nx : -1;
}

/* Decodes a string node's escapes into dst (room for the raw length, which
** is never exceeded: every escape shrinks or keeps its size). Returns the
** decoded length, or -1 on an invalid escape. */
static long decode_string(const char *raw, size_t len, char *dst)
{
    size_t i = 0, o = 0;
    while (i < len) {
        char c = raw[i];
        if (c != '\\') {
            dst[o++] = c;
            i++;
            continue;
        }
        char e = raw[i + 1];
        i += 2;
        switch (e) {
        case 'b': dst[o++] = '\b'; continue;
        case 'f': dst[o++] = '\f'; continue;
        case 'n': dst[o++] = '\n'; continue;
        case 'r': dst[o++] = '\r'; continue;
        case 't': dst[o++] = '\t'; continue;
        case 'u': break;
        default: dst[o++] = e; continue;
        }
        uint32_t cp = (uint32_t)strtoul((char[5]){raw[i], raw[i + 1], raw[i + 2], raw[i + 3], 0}, NULL, 16);
        i += 4;
        if (cp >= 0xD800 && cp <= 0xDBFF) {
            if (i + 6 > len || raw[i] != '\\' || raw[i + 1] != 'u') return -1;
            uint32_t lo = (uint32_t)strtoul((char[5]){raw[i + 2], raw[i + 3], raw[i + 4], raw[i + 5], 0}, NULL, 16);
            if (lo < 0xDC00 || lo > 0xDFFF) return -1;
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            i += 6;
        } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
            return -1;
        }
        /* 6 raw bytes (12 for a pair) always cover the <= 4 UTF-8 bytes. */
        if (cp < 0x80) {
            dst[o++] = (char)cp;
        } else if (cp < 0x800) {
            dst[o++] = (char)(0xC0 | (cp >> 6));
            dst[o++] = (char)(0x80 | (cp & 0x3F));
        } else if (cp < 0x10000) {
            dst[o++] = (char)(0xE0 | (cp >> 12));
            dst[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            dst[o++] = (char)(0x80 | (cp & 0x3F));
        } else {
            dst[o++] = (char)(0xF0 | (cp >> 18));
            dst[o++] = (char)(0x80 | ((cp >> 12) & 0x3F));
            dst[o++] = (char)(0x80 | ((cp >> 6) & 0x3F));
            dst[o++] = (char)(0x80 | (cp & 0x3F));
        }
    }
    return (long)o;
}

ram_status ram_json_strdup(const struct ram_json *j, int node, char **out, size_t *len_out, struct ram_error *err)
{
    *out = NULL;
    if (node < 0 || node >= j->n || j->nodes[node].type != RAM_JSON_STRING)
        return ram_fail(err, RAM_ERR_FORMAT, "json: expected a string");
    const struct ram_json_node *nd = &j->nodes[node];
    char *d = ram_malloc((size_t)nd->len + 1);
    if (!d) return ram_fail(err, RAM_ERR_NOMEM, "json: out of memory");
    long n = decode_string(j->text + nd->start, nd->len, d);
    if (n < 0) {
        ram_free(d);
        return ram_fail(err, RAM_ERR_FORMAT, "json: invalid \\u escape in the string at byte %u", (unsigned)nd->start);
    }
    d[n] = 0;
    if (len_out) *len_out = (size_t)n;
    *out = d;
    return RAM_OK;
}

int ram_json_streq(const struct ram_json *j, int node, const char *s)
{
    if (node < 0 || node >= j->n || j->nodes[node].type != RAM_JSON_STRING) return 0;
    const struct ram_json_node *nd = &j->nodes[node];
    const char *raw = j->text + nd->start;
    size_t sl = strlen(s);
    if (!memchr(raw, '\\', nd->len)) return sl == nd->len && !memcmp(raw, s, sl);
    size_t dl;
    char *d;
    if (ram_json_strdup(j, node, &d, &dl, NULL)) return 0;
    int eq = dl == sl && !memcmp(d, s, sl);
    ram_free(d);
    return eq;
}

int ram_json_find(const struct ram_json *j, int obj, const char *key)
{
    if (obj < 0 || obj >= j->n || j->nodes[obj].type != RAM_JSON_OBJECT) return -1;
    for (int k = ram_json_first(j, obj); k >= 0; k = ram_json_next(j, obj, k))
        if (ram_json_streq(j, k, key)) return k + 1;
    return -1;
}

int ram_json_int64(const struct ram_json *j, int node, int64_t *out)
{
    if (node < 0 || node >= j->n || j->nodes[node].type != RAM_JSON_NUMBER) return 0;
    const char *s = j->text + j->nodes[node].start;
    size_t n = j->nodes[node].len, i = 0;
    int neg = 0;
    if (s[0] == '-') {
        neg = 1;
        i = 1;
    }
    uint64_t v = 0;
    for (; i < n; i++) {
        if (!is_digit(s[i])) return 0; /* fraction or exponent */
        unsigned d = (unsigned)(s[i] - '0');
        if (v > (UINT64_MAX - d) / 10) return 0;
        v = v * 10 + d;
    }
    if (!neg && v > (uint64_t)INT64_MAX) return 0;
    if (neg && v > (uint64_t)INT64_MAX + 1) return 0;
    *out = neg ? (int64_t)(0 - v) : (int64_t)v;
    return 1;
}

int ram_json_double(const struct ram_json *j, int node, double *out)
{
    if (node < 0 || node >= j->n || j->nodes[node].type != RAM_JSON_NUMBER) return 0;
    char buf[64];
    size_t n = j->nodes[node].len;
    if (n >= sizeof buf) return 0;
    memcpy(buf, j->text + j->nodes[node].start, n);
    buf[n] = 0;
    char *end;
    *out = strtod(buf, &end);
    return *end == 0;
}
