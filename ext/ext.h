/*
** ext.h — declarations shared by the files of ext/, the SQLite side of
** sqlite-ram: the per-connection state, the process-wide model registry, the
** image and text caches, and the helpers every SQL function uses to read its
** arguments and report errors. Nothing here is exported from ram.so; every
** name shared between files is prefixed ram__ (stb's rule for cross-file
** private helpers).
**
** Each file of ext/ includes this header and then writes
** SQLITE_EXTENSION_INIT3, except ext/ram.c which owns SQLITE_EXTENSION_INIT1.
**
** OWNERSHIP. Everything ext/ allocates goes through sqlite3_malloc64 and is
** released with sqlite3_free, including the process-wide registry and caches
** (so one allocator is used for all memory handed to or kept beside SQLite).
** Core objects (struct ram_model, struct ram_state) are released with their
** own ram_*_free functions. Each pointer field says who frees it.
*/
#ifndef RAM_EXT_H
#define RAM_EXT_H

#include "sqlite3ext.h"

#include "ram.h"

#include <stddef.h>
#include <stdint.h>

/* Function flag of SQLite 3.45+ for functions that set a result subtype;
** older libraries mask unknown flags away, so it is safe to pass. */
#ifndef SQLITE_RESULT_SUBTYPE
#define SQLITE_RESULT_SUBTYPE 0x001000000
#endif

/* Subtype sqlite-vec gives float32 vectors; ram_cls() tags its result so. */
#define RAM_SUBTYPE_F32 223

/* Longest text accepted by the text functions (bytes); CLIP truncates to
** 77 tokens anyway, so longer input is almost certainly a mistake. */
#define RAM_MAX_TEXT (1024 * 1024)

/* Default pixel limit of a connection (ram_set_max_pixels changes it). */
#define RAM_DEFAULT_MAX_PIXELS 100000000LL

/* Layout of ram_embed() blobs (docs/SQL.md "ram_embed"). */
#define RAM_EMBED_MAGIC "RAME"
#define RAM_EMBED_VERSION 1
#define RAM_EMBED_HEADER 64
#define RAM_EMBED_FLAG_EXIF 1u

/* ------------------------------------------------------------------ registry */

/* One loaded model file, shared read-only by every connection that uses it
** (registry.c). Fields are immutable after load except nRef, which only the
** registry touches under its mutex. */
struct ram_entry {
    struct ram_entry *pNext;  /* registry list (owned by the registry) */
    char *zPath;              /* realpath of the file (sqlite3_free); with info.file_* the key */
    struct ram_model *pModel; /* ram_model_free when nRef drops to 0 */
    struct ram_model_info info; /* strings borrowed from pModel */
    int nRef;                 /* connections, cursors holding the entry */
    int *aHash;               /* tag name -> class index, open addressing; -1 empty (sqlite3_free) */
    int nHash;                /* slots in aHash (power of two) */
    int bVerified;            /* the data checksum was checked (guarded by the registry mutex) */
};

/* How ram__registry_acquire treats the model file's checksum. */
enum {
    RAM__VERIFY_SKIP = 0, /* ram_load(path, 0): map without hashing the data */
    RAM__VERIFY_ALWAYS,   /* ram_load(path): verified, now if an earlier load skipped it */
    RAM__VERIFY_ON_MAP    /* default model, ram_index tables: verify when mapping; take
                          ** an already mapped file as its loader chose */
};

/* Loads zPath once per process (keyed by its realpath) or takes another
** reference to the loaded copy. On failure returns an SQLite code and sets
** *pzErr to an sqlite3_mprintf message without function prefix (NULL for
** SQLITE_NOMEM). eVerify is one of RAM__VERIFY_*. */
int ram__registry_acquire(const char *zPath, int eVerify, struct ram_entry **ppEntry, char **pzErr);
void ram__registry_addref(struct ram_entry *p);
/* 1 when the entry's data checksum has been checked (read under the mutex). */
int ram__registry_verified(const struct ram_entry *p);
void ram__registry_release(struct ram_entry *p);
/* Class index of English tag name z (exact match), or -1. */
int ram__entry_tag_index(const struct ram_entry *p, const char *z, int n);
/* JSON array describing the loaded models, for ram_debug() (sqlite3_free). */
char *ram__registry_json(void);
/* Number of live connection structs; when it drops to 0 the caches are
** emptied (so a process that closes every connection holds no memory). */
void ram__conn_count_add(int delta);

/* ------------------------------------------------------------------ connection */

struct ram_override {
    char *zTag;  /* sqlite3_free */
    int nTag;
    double rVal;
};

/* State of one database connection: shared by every function and module
** registered on it (nRef counts the registrations; the last xDestroy, run
** when the connection closes, frees it). A connection is used by one thread
** at a time (SQLite's rule), so nothing here is locked. */
struct ram_conn {
    sqlite3 *db;
    int nRef;                 /* registrations pointing here */
    struct ram_entry *pEntry; /* current model: a registry reference, or NULL */
    struct ram_state *pState; /* scratch for pEntry (ram_state_free) */
    float *aChw;              /* 3 * image_size^2 (sqlite3_free) */
    float *aEmbed;            /* n_image_tokens * embed_dim (sqlite3_free) */
    float *aProb;             /* num_class (sqlite3_free) */
    float *aThresh;           /* effective thresholds for pEntry (sqlite3_free) */
    int bThreshOk;            /* aThresh matches the overrides and the table */

    sqlite3_int64 mxPixels;   /* ram_set_max_pixels */
    int bExif;                /* ram_set_exif */

    struct ram_override *aOver; /* ram_set_threshold overrides (sqlite3_free) */
    int nOver, nOverAlloc;

    /* Rows of main.ram_thresholds, re-read when the fingerprint changes. */
    struct ram_override *aTab; /* sqlite3_free, each zTag too */
    int nTab;
    int bTabValid;
    sqlite3_int64 tabChanges; /* sqlite3_total_changes64 when read */
    unsigned int tabDataVersion; /* SQLITE_FCNTL_DATA_VERSION of main when read */
    int tabAutocommit;        /* sqlite3_get_autocommit when read */
    int bInTab;               /* reading the table now (guards against recursion) */
};

/* The model of the connection, resolving the default (RAM_MODEL, then the
** bundled file) on first use. zFunc names the caller in the message. */
int ram__conn_model(struct ram_conn *p, const char *zFunc, char **pzErr);
/* A model file rewritten in place (ram_model_check_file fails) is mapped
** again, as a new ram_load would; nothing happens when that fails (the
** engine then reports "changed on disk"). Called first thing by every SQL
** entry point, before it borrows the connection's buffers, which this may
** free; never while main.ram_thresholds is being read (bInTab). */
void ram__conn_refresh(struct ram_conn *p);
/* Makes pEntry the current model (takes over the caller's reference). */
int ram__conn_set_model(struct ram_conn *p, struct ram_entry *pEntry, char **pzErr);
/* Abort callback for ram_state_set_abort: 1 once sqlite3_interrupt() was
** called on the connection. */
int ram__conn_interrupted(void *pConn);
/* Name of the interruption check in use ("sqlite3_is_interrupted" or
** "parser probe"), for ram_debug(). */
const char *ram__interrupt_method(void);
void ram__interrupt_init(const sqlite3_api_routines *pApi);

/* ------------------------------------------------------------------ errors */

/* Maps a core status to an SQLite result code. */
int ram__rc(ram_status s);
/* Reports (rc, zErr) as the result of a scalar function and frees zErr.
** zErr NULL with rc SQLITE_NOMEM reports out-of-memory. */
void ram__result_error(sqlite3_context *ctx, int rc, char *zErr);
/* sqlite3_mprintf wrapper that appends to a message under construction. */
char *ram__mprintf(const char *zFmt, ...);
/* Copy of the n bytes at z plus a terminating NUL, in sqlite3_malloc memory
** (NULL when out of memory). Unlike "%.*s" it keeps bytes after an embedded
** NUL, so the copy is exactly n bytes long, as callers that keep n assume. */
char *ram__memdup(const char *z, int n);

/* ------------------------------------------------------------------ images */

/* What an image argument resolved to. aEmbed/aProb point into the
** connection's buffers (valid until the next call on the connection). */
struct ram_image {
    const float *aEmbed; /* n_image_tokens x embed_dim */
    const float *aProb;  /* num_class probabilities, or NULL if not asked */
};

/* Reads argument pVal of zFunc (argument number iArg, 1-based) as an image:
** a BLOB of encoded image bytes, or a ram_embed() BLOB of the current model.
** Returns SQLITE_OK with *pbNull set for NULL, else fills *pOut (probs only
** when bProbs). Uses the process-wide cache, so each distinct blob is
** decoded and encoded once per model and settings. */
int ram__image_arg(struct ram_conn *p, const char *zFunc, int iArg, sqlite3_value *pVal,
                   int bProbs, int *pbNull, struct ram_image *pOut, char **pzErr);

/* Little-endian float32 conversion for blobs (any host byte order). */
void ram__f32_to_le(unsigned char *pOut, const float *a, size_t n);
void ram__f32_from_le(float *a, const unsigned char *p, size_t n);

/* ------------------------------------------------------------------ caches */

struct ram_img_key {
    unsigned char hash[16];   /* XXH3-128 of the blob, canonical */
    char digest[33];          /* model */
    int exif;                 /* preprocessing settings */
    sqlite3_int64 mxPixels;
};

/* Copies a cached entry: embeddings always, probabilities when aProb is
** not NULL and the entry has them (*pbProb says so). Returns 1 on a hit. */
int ram__imgcache_get(const struct ram_img_key *k, float *aEmbed, size_t nEmbed, float *aProb,
                      size_t nProb, int *pbProb);
/* Stores or completes an entry (aProb may be NULL). Out of memory only
** means the entry is not cached. */
void ram__imgcache_put(const struct ram_img_key *k, const float *aEmbed, size_t nEmbed,
                       const float *aProb, size_t nProb);

/* Text-embedding LRU: key is XXH3-128 of (model digest, text list). */
int ram__txtcache_get(const unsigned char key[16], float *aOut, size_t n);
void ram__txtcache_put(const unsigned char key[16], const float *a, size_t n);
/* Counters and sizes as a JSON object, for ram_debug() (sqlite3_free). */
char *ram__cache_json(void);
/* Frees every cached entry. */
void ram__cache_clear(void);

/* ------------------------------------------------------------------ text */

/* A list of descriptions. Filled by ram__parse_text_list, az (with an in
** the same block) and each text are sqlite3_malloc'd; callers may also
** point az at their own arrays. */
struct ram_texts {
    const char **az;
    int *an;
    int n;
};

/* L2-normalised CLIP embeddings of the n texts (n x embed_dim floats into
** aOut), through the text LRU. zFunc names the caller in messages. */
int ram__encode_texts(struct ram_conn *p, const char *zFunc, const struct ram_texts *pT,
                      float *aOut, char **pzErr);

/* Parses a JSON array of strings (ram_score's list form). Returns
** SQLITE_OK and fills *pOut (free with ram__texts_free) when z is such an
** array; *pbList is 0 when z is not JSON at all
** (then it is a plain text). Errors (an element that is not a string, an
** empty array, over the description cap) come back with a message that
** starts with zWhere, e.g. "ram_score(): argument 2". */
int ram__parse_text_list(const char *z, int n, const char *zWhere, int *pbList, struct ram_texts *pOut,
                         char **pzErr);
/* Frees what ram__parse_text_list filled in. */
void ram__texts_free(struct ram_texts *p);

/* An open-set vocabulary (ram_tag_scores' second argument). */
struct ram_vocab {
    int nTag;       /* tags */
    int nDes;       /* descriptions per tag, the same for every tag */
    char **azTag;   /* nTag English names (sqlite3_free each, and the array) */
    char **azTagZh; /* nTag Chinese names, NULL where not given (same) */
    char **azDes;   /* nTag * nDes descriptions, tag-major (same) */
    int *anDes;     /* their lengths in bytes (sqlite3_free) */
};
/* Parses the vocabulary JSON (forms in json_args.c). zFunc prefixes errors. */
int ram__parse_vocab(const char *z, int n, const char *zFunc, struct ram_vocab *pOut, char **pzErr);
void ram__vocab_free(struct ram_vocab *p);

/* ------------------------------------------------------------------ thresholds */

/* Effective per-class thresholds of the current model (model values,
** overridden by main.ram_thresholds rows, overridden by ram_set_threshold),
** recomputed only when something changed. Borrowed from p. */
int ram__thresholds(struct ram_conn *p, const char *zFunc, const float **paOut, char **pzErr);
/* Effective threshold of a named tag that is not in the model (open-set
** rows), dflt when nothing overrides it. Call after ram__thresholds (which
** refreshes the table rows). */
double ram__threshold_by_name(struct ram_conn *p, const char *z, int n, double dflt);
/* Frees the overrides and the table rows. */
void ram__thresholds_free(struct ram_conn *p);

/* ------------------------------------------------------------------ registration */

int ram__register_model_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg);
int ram__register_tag_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg);
int ram__register_threshold_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg);
int ram__register_score_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg);
int ram__register_vtab(sqlite3 *db, struct ram_conn *p, char **pzErrMsg);
/* The ram_index module and ram_index_stats() (vtab_index.c). */
int ram__register_index(sqlite3 *db, struct ram_conn *p, char **pzErrMsg);
/* ram_thumbnail() (func_thumbnail.c). */
int ram__register_thumbnail_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg);
int ram__register_xmp_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg);

/* ram_score's shortcut (vtab_index.c): the open-set probability of an image
** blob that a ram_index table of the main schema holds with the connection's
** model and EXIF setting, from its cached tokens (exactly what MATCH
** computes). *pbFound = 0 with SQLITE_OK when no table holds it. aLabel:
** nDes L2-normalised description rows of one concept. */
int ram__index_cached_score(struct ram_conn *p, sqlite3_value *pImage, const float *aLabel, int nDes,
                            float *pProb, int *pbFound, char **pzErr);

/* Destructor shared by every registration: drops one reference to the
** connection struct. */
void ram__conn_unref(void *pConn);
/* Takes a reference for one more registration. */
void ram__conn_ref(struct ram_conn *p);

/* Static description of one scalar function for the registration loops. */
struct ram_func_def {
    const char *zName;
    int nArg;
    int flags;
    void (*xFunc)(sqlite3_context *, int, sqlite3_value **);
};
/* Registers the table, stopping at the first failure with the STYLE.md
** message in *pzErrMsg. */
int ram__register_funcs(sqlite3 *db, struct ram_conn *p, const struct ram_func_def *a, int n,
                        char **pzErrMsg);

/* Appends z as a JSON string literal to s. */
void ram__json_str(sqlite3_str *s, const char *z);

#endif /* RAM_EXT_H */
