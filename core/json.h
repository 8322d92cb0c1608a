/*
** json.h — a minimal, bounded JSON parser for the two places core/ and the
** converter read JSON: safetensors headers and ram-convert CONFIG.json files.
**
**     struct ram_json j;
**     if (ram_json_parse(text, len, 8, &j, &err)) return err_code;
**     int v = ram_json_find(&j, 0, "dtype");          // value node or -1
**     if (v >= 0 && ram_json_streq(&j, v, "F32")) ...
**     for (int k = ram_json_first(&j, 0); k >= 0; k = ram_json_next(&j, 0, k))
**         ...  // object: k is a key node, k + 1 its value
**     ram_json_free(&j);
**
** HOW IT WORKS: one pass over the text, without recursion, builds a flat
** array of nodes in document order (like jsmn). A container node records the
** index just past its subtree (`next`), so siblings are walked by jumping.
** Nesting deeper than max_depth, control characters in strings, bad escapes,
** trailing garbage and numbers outside JSON's grammar are errors. Strings
** stay undecoded in the text until asked for (ram_json_strdup decodes the
** escapes, \u surrogate pairs included, to UTF-8).
*/
#ifndef RAM_JSON_H
#define RAM_JSON_H

#include "ram.h"

#include <stddef.h>
#include <stdint.h>

/* Largest text accepted (bytes). */
#define RAM_JSON_MAX_TEXT ((size_t)1 << 28)

enum ram_json_type {
    RAM_JSON_NULL = 0,
    RAM_JSON_FALSE,
    RAM_JSON_TRUE,
    RAM_JSON_NUMBER,
    RAM_JSON_STRING,
    RAM_JSON_ARRAY,
    RAM_JSON_OBJECT
};

struct ram_json_node {
    int type;       /* enum ram_json_type */
    uint32_t start; /* byte offset of the value; for strings the first byte after the quote */
    uint32_t len;   /* bytes; for strings the raw (still escaped) contents */
    int count;      /* containers: elements, or key/value pairs */
    int next;       /* index of the first node after this value's subtree */
};

struct ram_json {
    const char *text; /* borrowed: the parsed text must outlive this */
    size_t len;
    struct ram_json_node *nodes; /* owned (ram_free via ram_json_free); node 0 is the root */
    int n;
};

/* Parses len bytes of text (need not be NUL-terminated; a leading UTF-8 BOM
** is skipped). max_depth bounds the nesting of arrays/objects (>= 1). On
** success *out holds the nodes (free with ram_json_free); on failure *out is
** empty and err says where the text went wrong (RAM_ERR_FORMAT, or
** RAM_ERR_TOO_BIG / RAM_ERR_NOMEM). */
ram_status ram_json_parse(const char *text, size_t len, int max_depth, struct ram_json *out, struct ram_error *err);
void ram_json_free(struct ram_json *j);

/* Value node of key in object node obj (the first match), or -1 when obj is
** not an object or has no such key. */
int ram_json_find(const struct ram_json *j, int obj, const char *key);

/* Children of a container: ram_json_first gives the first child (for an
** object: the first key node; its value is key + 1), ram_json_next the one
** after child; both return -1 at the end. */
int ram_json_first(const struct ram_json *j, int node);
int ram_json_next(const struct ram_json *j, int container, int child);

/* 1 if node is a string whose decoded value equals s (a NUL-terminated
** string), else 0. */
int ram_json_streq(const struct ram_json *j, int node, const char *s);

/* Decoded copy of a string node, NUL-terminated, into *out (caller frees
** with ram_free); *len_out (may be NULL) receives its length. Errors:
** RAM_ERR_FORMAT when the node is not a string or its escapes are invalid
** (lone surrogates), RAM_ERR_NOMEM. */
ram_status ram_json_strdup(const struct ram_json *j, int node, char **out, size_t *len_out, struct ram_error *err);

/* Integer value of a number node written without fraction or exponent;
** returns 1 on success, 0 if not such a number or out of int64 range. */
int ram_json_int64(const struct ram_json *j, int node, int64_t *out);

/* Value of a number node as a double; returns 1 on success. */
int ram_json_double(const struct ram_json *j, int node, double *out);

#endif /* RAM_JSON_H */
