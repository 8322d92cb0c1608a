/*
** test_json.h — a small JSON reader for the tests (golden tokenizer cases,
** safetensors headers). Test code only: the engine has core/json.c.
*/
#ifndef RAM_TEST_JSON_H
#define RAM_TEST_JSON_H

#include <stdlib.h>
#include <string.h>

enum jt { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
struct jv {
    enum jt t;
    double num;
    char *str;
    size_t len;
    struct jv *items;
    char **keys;
    int n;
};

struct jp {
    const char *p, *end;
    int bad;
};

static void jskip(struct jp *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\n' || *j->p == '\r' || *j->p == '\t')) j->p++;
}

static size_t put_utf8(unsigned c, char *o)
{
    if (c < 0x80) {
        o[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        o[0] = (char)(0xC0 | (c >> 6));
        o[1] = (char)(0x80 | (c & 63));
        return 2;
    }
    if (c < 0x10000) {
        o[0] = (char)(0xE0 | (c >> 12));
        o[1] = (char)(0x80 | ((c >> 6) & 63));
        o[2] = (char)(0x80 | (c & 63));
        return 3;
    }
    o[0] = (char)(0xF0 | (c >> 18));
    o[1] = (char)(0x80 | ((c >> 12) & 63));
    o[2] = (char)(0x80 | ((c >> 6) & 63));
    o[3] = (char)(0x80 | (c & 63));
    return 4;
}

static unsigned hex4(struct jp *j)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = j->p < j->end ? *j->p++ : 0;
        v = v * 16 + (unsigned)(c >= '0' && c <= '9'   ? c - '0'
                                : c >= 'a' && c <= 'f' ? c - 'a' + 10
                                : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                                       : (j->bad = 1, 0));
    }
    return v;
}

static char *jstring(struct jp *j, size_t *len)
{
    j->p++;
    char *o = malloc((size_t)(j->end - j->p) + 1), *q = o;
    while (j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if (c != '\\') {
            *q++ = c;
            continue;
        }
        c = j->p < j->end ? *j->p++ : 0;
        switch (c) {
        case 'n': *q++ = '\n'; break;
        case 't': *q++ = '\t'; break;
        case 'r': *q++ = '\r'; break;
        case 'b': *q++ = '\b'; break;
        case 'f': *q++ = '\f'; break;
        case 'u': {
            unsigned u = hex4(j);
            if (u >= 0xD800 && u < 0xDC00 && j->p + 1 < j->end && j->p[0] == '\\' && j->p[1] == 'u') {
                j->p += 2;
                unsigned lo = hex4(j);
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
            }
            q += put_utf8(u, q);
            break;
        }
        default: *q++ = c;
        }
    }
    j->p++;
    *q = 0;
    *len = (size_t)(q - o);
    return o;
}

static void jparse(struct jp *j, struct jv *v)
{
    memset(v, 0, sizeof *v);
    jskip(j);
    if (j->p >= j->end) {
        j->bad = 1;
        return;
    }
    char c = *j->p;
    if (c == '"') {
        v->t = J_STR;
        v->str = jstring(j, &v->len);
    } else if (c == '[' || c == '{') {
        v->t = c == '[' ? J_ARR : J_OBJ;
        j->p++;
        int cap = 0;
        for (;;) {
            jskip(j);
            if (j->p >= j->end) {
                j->bad = 1;
                return;
            }
            if (*j->p == (c == '[' ? ']' : '}')) {
                j->p++;
                return;
            }
            if (*j->p == ',') {
                j->p++;
                continue;
            }
            if (v->n == cap) {
                cap = cap ? 2 * cap : 8;
                v->items = realloc(v->items, sizeof *v->items * (size_t)cap);
                v->keys = realloc(v->keys, sizeof *v->keys * (size_t)cap);
            }
            v->keys[v->n] = NULL;
            if (c == '{') {
                size_t kl;
                v->keys[v->n] = jstring(j, &kl);
                jskip(j);
                if (j->p < j->end && *j->p == ':') j->p++;
            }
            jparse(j, &v->items[v->n++]);
            if (j->bad) return;
        }
    } else if (c == 't' || c == 'f' || c == 'n') {
        v->t = c == 'n' ? J_NULL : J_BOOL;
        v->num = c == 't';
        while (j->p < j->end && *j->p >= 'a' && *j->p <= 'z') j->p++;
    } else {
        v->t = J_NUM;
        char *e;
        v->num = strtod(j->p, &e);
        if (e == j->p) j->bad = 1;
        j->p = e;
    }
}

static void jfree(struct jv *v)
{
    for (int i = 0; i < v->n; i++) {
        jfree(&v->items[i]);
        free(v->keys[i]);
    }
    free(v->items);
    free(v->keys);
    free(v->str);
}

static const struct jv *jget(const struct jv *o, const char *key)
{
    for (int i = 0; o && o->t == J_OBJ && i < o->n; i++)
        if (!strcmp(o->keys[i], key)) return &o->items[i];
    return NULL;
}

#endif /* RAM_TEST_JSON_H */
