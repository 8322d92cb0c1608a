/*
** ext.h — declarations shared by the files of ext/, the SQLite side of
** sqlite-ram. Nothing here is exported from ram.so; every name shared
** between files is prefixed ram__ (stb's rule for cross-file private
** helpers). Each file of ext/ includes this header and then writes
** SQLITE_EXTENSION_INIT3, except ext/ram.c which owns SQLITE_EXTENSION_INIT1.
**
** LAYERS. Sections below go from the floor up; a file calls only files of
** its own section's layer or below (no circle: ext/README.md draws the graph).
**
**   entry     ram.c                  sqlite3_ram_init, registration, ram_version, ram_debug
**   surfaces  func_model.c func_tags.c func_score.c func_thresholds.c func_thumbnail.c
**             vtab_scores.c, vtab_tag_list.c, index_*.c (ram_index, private header index.h)
**   services  conn.c       the connection: its current context, settings, default model
**             context.c    struct ram_ctx, one model in use, and its effective thresholds
**             images.c     image arguments -> embeddings/probabilities of a context
**             texts.c      descriptions -> CLIP embeddings of a context
**             thresholds.c threshold overrides and main.ram_thresholds rows
**             registry.c   the process-wide model registry, the default model's path
**             cache.c      the process-wide image and text caches
**             embed_blob.c the ram_embed() BLOB format
**             entry_blob.c the ram_index entry BLOB (the entry column)
**             json_args.c  JSON arguments (description lists, vocabularies)
**   floor     util.c       rc mapping, core-error translation, mprintf, memdup, byte
**                          order, JSON strings; interrupt.c: sqlite3_interrupt polling
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

/* ================================================================== floor */

/* ------------------------------------------------------------------ util.c */

/* Maps a core status to an SQLite result code. */
int ram__rc(ram_status s);
/* The one translation of a core error into (rc, message): out of memory
** gives no message, an interruption "<zFunc>(): interrupted", anything else
** "<zFunc>(): <the engine's reason>". Returns the rc; *pzErr sqlite3_free. */
int ram__core_error(const char *zFunc, ram_status s, const struct ram_error *pErr, char **pzErr);
/* Reports (rc, zErr) as the result of a scalar function and frees zErr.
** zErr NULL with rc SQLITE_NOMEM reports out-of-memory. */
void ram__result_error(sqlite3_context *ctx, int rc, char *zErr);
/* sqlite3_mprintf wrapper that appends to a message under construction. */
char *ram__mprintf(const char *zFmt, ...);
/* Copy of the n bytes at z plus a terminating NUL, in sqlite3_malloc memory
** (NULL when out of memory). Unlike "%.*s" it keeps bytes after an embedded
** NUL, so the copy is exactly n bytes long, as callers that keep n assume. */
char *ram__memdup(const char *z, int n);
/* Little-endian float32 conversion for blobs (any host byte order). */
void ram__f32_to_le(unsigned char *pOut, const float *a, size_t n);
void ram__f32_from_le(float *a, const unsigned char *p, size_t n);
void ram__put_u32le(unsigned char *p, uint32_t v);
uint32_t ram__get_u32le(const unsigned char *p);
/* Appends z as a JSON string literal to s. */
void ram__json_str(sqlite3_str *s, const char *z);
/* A float threshold as the shortest decimal that reads back as the same
** float, so 0.68f shows as 0.68 rather than 0.680000007152557 (ram_tag_scores,
** ram_tag_list). */
double ram__float_display(float f);

/* ------------------------------------------------------------------ interrupt.c */

/* 1 once sqlite3_interrupt() was called on db (while a statement runs). The
** signature is the engine's abort callback (ram_state_set_abort; pDb is the
** sqlite3 *). */
int ram__interrupted(void *pDb);
/* Name of the interruption check in use ("sqlite3_is_interrupted" or
** "parser probe"), for ram_debug(). */
const char *ram__interrupt_method(void);
void ram__interrupt_init(const sqlite3_api_routines *pApi);

/* ================================================================== services */

/* ------------------------------------------------------------------ json_args.c */

/* A list of descriptions. Filled by ram__parse_text_list, az (with an in
** the same block) and each text are sqlite3_malloc'd; callers may also
** point az at their own arrays. */
struct ram_texts {
    const char **az;
    int *an;
    int n;
};

/* Parses a JSON array of strings (ram_score's list form). Returns
** SQLITE_OK and fills *pOut (free with ram__texts_free) when z is such an
** array; *pbList is 0 when z is not JSON at all
** (then it is a plain text). Errors (an element that is not a string, an
** empty array, over the description cap) come back with a message that
** starts with zWhere, e.g. "ram_score(): argument 2". */
int ram__parse_text_list(const char *z, int n, const char *zWhere, int *pbList, struct ram_texts *pOut, char **pzErr);
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

/* ------------------------------------------------------------------ cache.c */

struct ram_img_key {
    unsigned char hash[16]; /* XXH3-128 of the blob, canonical */
    char digest[33];        /* model */
    int exif;               /* preprocessing settings */
    sqlite3_int64 mxPixels;
};

/* Copies a cached entry: embeddings always, probabilities when aProb is
** not NULL and the entry has them (*pbProb says so). Returns 1 on a hit. */
int ram__imgcache_get(const struct ram_img_key *k, float *aEmbed, size_t nEmbed, float *aProb, size_t nProb,
                      int *pbProb);
/* Stores or completes an entry (aProb may be NULL). Out of memory only
** means the entry is not cached. */
void ram__imgcache_put(const struct ram_img_key *k, const float *aEmbed, size_t nEmbed, const float *aProb,
                       size_t nProb);

/* Text-embedding LRU: key is XXH3-128 of (model digest, text list). */
int ram__txtcache_get(const unsigned char key[16], float *aOut, size_t n);
void ram__txtcache_put(const unsigned char key[16], const float *a, size_t n);
/* Counters and sizes as a JSON object, for ram_debug() (sqlite3_free). */
char *ram__cache_json(void);
/* Frees every cached entry. */
void ram__cache_clear(void);

/* ------------------------------------------------------------------ embed_blob.c */

/* Layout of ram_embed() blobs (docs/SQL.md "ram_embed", embed_blob.c). */
#define RAM_EMBED_MAGIC "RAME"
#define RAM_EMBED_VERSION 1
#define RAM_EMBED_HEADER 64
#define RAM_EMBED_FLAG_EXIF 1u

/* 1 when the n bytes at z start like a ram_embed() blob (its magic). */
int ram__embed_blob_is(const unsigned char *z, sqlite3_int64 n);
/* The EXIF flag a ram_embed() blob records (call after ram__embed_blob_is). */
uint32_t ram__embed_blob_flags(const unsigned char *z);
/* Checks a ram_embed() blob against the model pI and copies its floats into
** aEmbed (n_image_tokens x embed_dim). Messages name zFunc and argument iArg. */
int ram__embed_blob_read(const struct ram_model_info *pI, const char *zFunc, int iArg, const unsigned char *z,
                         sqlite3_int64 n, float *aEmbed, char **pzErr);
/* A new ram_embed() blob of aEmbed for model pI with the given flags
** (sqlite3_free; NULL when out of memory); *pnByte receives its size. */
unsigned char *ram__embed_blob_write(const struct ram_model_info *pI, const float *aEmbed, uint32_t flags,
                                     sqlite3_uint64 *pnByte);

/* ------------------------------------------------------------------ entry_blob.c */

/* Layout of a ram_index entry blob (the hidden entry column; entry_blob.c). */
#define RAM_ENTRY_MAGIC "RAMX"
#define RAM_ENTRY_VERSION 1
#define RAM_ENTRY_HEADER 128

/* One entry, read from (pointers into the blob) or written to a blob. */
struct ram_entry_blob {
    unsigned char aKey[16];
    char zDigest[33]; /* model digest, 32 hex digits */
    char zPrep[33];   /* preprocessing, "prep1 exif=1" */
    float rFloor;     /* probabilities under it are not kept */
    int nTok, nDim, nClass;
    const unsigned char *aProbs, *aTokens, *aUnit;
    int nProbs, nTokens, nUnit;
};
/* 1 when the n bytes at z start like an entry blob (its magic). */
int ram__entry_blob_is(const unsigned char *z, sqlite3_int64 n);
/* Checks the blob's layout and fills *v (pointing into z). *pzErr: a
** message without a prefix (ram__mprintf; the caller frees it). */
int ram__entry_blob_parse(const unsigned char *z, sqlite3_int64 n, struct ram_entry_blob *v, char **pzErr);
/* SQLITE_ERROR (and *pzErr) unless v was made with model pI. */
int ram__entry_blob_check_model(const struct ram_entry_blob *v, const struct ram_model_info *pI, char **pzErr);
/* The entry's probabilities into aProb[nClass] (0 under its floor). */
void ram__entry_blob_probs(const struct ram_entry_blob *v, float *aProb);
/* A new blob of v (sqlite3_free; NULL when out of memory); *pnByte its size. */
unsigned char *ram__entry_blob_write(const struct ram_entry_blob *v, sqlite3_uint64 *pnByte);

/* ------------------------------------------------------------------ registry.c */

/* One loaded model file, shared read-only by every connection that uses it.
** Fields are immutable after load except nRef, which only the registry
** touches under its mutex. */
struct ram_entry {
    struct ram_entry *pNext;    /* registry list (owned by the registry) */
    char *zPath;                /* realpath of the file (sqlite3_free); with info.file_* the key */
    struct ram_model *pModel;   /* ram_model_free when nRef drops to 0 */
    struct ram_model_info info; /* strings borrowed from pModel */
    int nRef;                   /* contexts, cursors holding the entry */
    int *aHash;                 /* tag name -> class index, open addressing; -1 empty (sqlite3_free) */
    int nHash;                  /* slots in aHash (power of two) */
    int bVerified;              /* the data checksum was checked (guarded by the registry mutex) */
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

/* The optional verify argument of ram_load(path [, verify]) and
** ram_caption_model(path [, verify]): argv[1] when argc > 1, which must be
** the INTEGER 0 or 1, into *peVerify (RAM__VERIFY_SKIP or _ALWAYS). Else sets
** an error naming zFunc on ctx and returns SQLITE_ERROR. */
int ram__registry_verify_arg(sqlite3_context *ctx, const char *zFunc, int argc, sqlite3_value **argv, int *peVerify);
void ram__registry_addref(struct ram_entry *p);
/* 1 when the entry's data checksum has been checked (read under the mutex). */
int ram__registry_verified(const struct ram_entry *p);
void ram__registry_release(struct ram_entry *p);
/* Class index of English tag name z (exact match), or -1. */
int ram__entry_tag_index(const struct ram_entry *p, const char *z, int n);
/* JSON array describing the loaded models, for ram_debug() (sqlite3_free). */
char *ram__registry_json(void);
/* The default model's search order: model_path.h (ram__model_search). */
/* Number of live connection structs; when it drops to 0 the caches are
** emptied (so a process that closes every connection holds no memory). */
void ram__conn_count_add(int delta);

/* ------------------------------------------------------------------ thresholds.c */

struct ram_override {
    char *zTag; /* sqlite3_free */
    int nTag;
    double rVal;
};

/* The threshold sources of one connection: ram_set_threshold() overrides
** and the rows of main.ram_thresholds, re-read when the fingerprint changes.
** iGen grows at every change, so each context knows when to recompute. */
struct ram_thresh_src {
    struct ram_override *aOver; /* ram_set_threshold overrides (sqlite3_free) */
    int nOver, nOverAlloc;
    struct ram_override *aTab; /* main.ram_thresholds rows (sqlite3_free, each zTag too) */
    int nTab;
    int bTabValid;
    sqlite3_int64 tabChanges;    /* sqlite3_total_changes64 when read */
    unsigned int tabDataVersion; /* SQLITE_FCNTL_DATA_VERSION of main when read */
    int tabAutocommit;           /* sqlite3_get_autocommit when read */
    int bInTab;                  /* reading the table now (guards against recursion) */
    unsigned iGen;               /* bumped by every change of the overrides or rows */
};

/* Re-reads main.ram_thresholds of db into pSrc when it may have changed.
** Run before computing an image: the SELECT may call other functions of the
** connection (a view using ram_tags()), which reuse the context's buffers. */
int ram__thresh_refresh(struct ram_thresh_src *pSrc, sqlite3 *db, const char *zFunc, char **pzErr);
/* Effective threshold of tag name z: override, else table row, else dflt. */
double ram__thresh_by_name(const struct ram_thresh_src *pSrc, const char *z, int n, double dflt);
/* Sets (bSet) or removes the override of tag z; SQLITE_NOMEM on failure. */
int ram__thresh_override(struct ram_thresh_src *pSrc, const char *z, int n, int bSet, double rVal);
/* Removes every override; returns how many there were. */
int ram__thresh_reset(struct ram_thresh_src *pSrc);
/* Frees the overrides and the table rows. */
void ram__thresh_free(struct ram_thresh_src *pSrc);

/* ------------------------------------------------------------------ context.c */

/* One model in use: a registry entry with the engine state and scratch
** buffers to run it, and its effective thresholds. A connection owns the
** context of its current model; a ram_index table with its own model owns
** one. Reference counted (a ram_index table also holds the connection's
** context while it uses it); a context is used by one connection, hence one
** thread at a time (SQLite's rule), so nothing here is locked. */
struct ram_ctx {
    int nRef;
    sqlite3 *db;              /* the connection using it: interruption, SQLITE_LIMIT_LENGTH */
    struct ram_entry *pEntry; /* a registry reference (ram__registry_release) */
    struct ram_state *pState; /* scratch of the engine (ram_state_free) */
    float *aChw;              /* 3 * image_size^2 (sqlite3_free) */
    float *aEmbed;            /* n_image_tokens * embed_dim (sqlite3_free) */
    float *aProb;             /* num_class (sqlite3_free) */
    float *aThresh;           /* num_class effective thresholds (sqlite3_free) */
    int bThreshOk;            /* aThresh matches the sources as of iThreshGen */
    unsigned iThreshGen;
    int nThreads; /* threads for this context's inference; 0: the engine's default
                              ** (ram_set_threads, process-wide today). The per-call count of
                              ** core's thread pool (issue 17, core/jobs.c) is wired here. */
};

/* A new context for pEntry (takes over the caller's reference, also on
** failure) used by connection db; *ppCtx holds one reference. */
int ram__ctx_open(sqlite3 *db, struct ram_entry *pEntry, struct ram_ctx **ppCtx, char **pzErr);
void ram__ctx_ref(struct ram_ctx *c);
void ram__ctx_unref(struct ram_ctx *c);
/* Effective per-class thresholds of the context's model: the model's
** values, overridden by main.ram_thresholds rows, overridden by
** ram_set_threshold, recomputed only when a source changed. Borrowed. */
int ram__ctx_thresholds(struct ram_ctx *c, struct ram_thresh_src *pSrc, const char *zFunc, const float **paOut,
                        char **pzErr);

/* ------------------------------------------------------------------ images.c */

/* Image preprocessing settings (ram_set_exif, ram_set_max_pixels). */
struct ram_prep {
    int bExif;
    sqlite3_int64 mxPixels;
};

/* What an image argument resolved to. aEmbed/aProb point into the
** context's buffers (valid until its next use). */
struct ram_image {
    const float *aEmbed; /* n_image_tokens x embed_dim */
    const float *aProb;  /* num_class probabilities, or NULL if not asked */
};

/* The type and size checks of image argument pVal of zFunc (number iArg,
** 1-based), made before any model is needed: SQLITE_OK with *pbNull for
** NULL, SQLITE_OK for a BLOB within SQLITE_LIMIT_LENGTH, else an error. */
int ram__image_check(sqlite3 *db, const char *zFunc, int iArg, sqlite3_value *pVal, int *pbNull, char **pzErr);
/* Evaluates image argument pVal with context c: a BLOB of encoded image
** bytes, or a ram_embed() BLOB of c's model. Returns SQLITE_OK with *pbNull
** set for NULL, else fills *pOut (probs only when bProbs). Uses the
** process-wide cache, so each distinct blob is decoded and encoded once per
** model and settings. */
int ram__ctx_image(struct ram_ctx *c, const struct ram_prep *pPrep, const char *zFunc, int iArg, sqlite3_value *pVal,
                   int bProbs, int *pbNull, struct ram_image *pOut, char **pzErr);

/* ------------------------------------------------------------------ texts.c */

/* SQLITE_ERROR with "<zFunc>(): the current model has no text encoder ..."
** when c's model has no CLIP text tower. */
int ram__ctx_need_text(struct ram_ctx *c, const char *zFunc, char **pzErr);
/* L2-normalised CLIP embeddings of the n texts (n x embed_dim floats into
** aOut) with context c, through the text LRU. zFunc names the caller. */
int ram__ctx_encode_texts(struct ram_ctx *c, const char *zFunc, const struct ram_texts *pT, float *aOut, char **pzErr);

/* ------------------------------------------------------------------ conn.c */

/* State of one database connection: shared by every function and module
** registered on it (nRef counts the registrations; the last xDestroy, run
** when the connection closes, frees it). A connection is used by one thread
** at a time (SQLite's rule), so nothing here is locked. */
struct ram_conn {
    sqlite3 *db;
    int nRef;                 /* registrations pointing here */
    struct ram_ctx *pCtx;     /* current model in use: one reference, or NULL */
    struct ram_prep prep;     /* ram_set_exif, ram_set_max_pixels */
    struct ram_thresh_src th; /* ram_set_threshold, main.ram_thresholds */
    struct ram_trust *pTrust; /* model files named in this connection (model_trust.c; ram__trust_free) */
    struct ram_ctx *pCap;     /* caption model: ram_caption_model()'s, or the default caption model once
                              ** resolved (conn.c); one reference (ram__ctx_unref), or NULL */
};

/* A new connection state with one reference (ram__conn_unref), or NULL. */
struct ram_conn *ram__conn_new(sqlite3 *db);
/* Takes a reference for one more registration. */
void ram__conn_ref(struct ram_conn *p);
/* Destructor shared by every registration: drops one reference. */
void ram__conn_unref(void *pConn);
/* The connection's current context, resolving the default model (RAM_MODEL,
** then the bundled file) on first use. zFunc names the caller. Borrowed. */
int ram__conn_ctx(struct ram_conn *p, const char *zFunc, struct ram_ctx **ppCtx, char **pzErr);
/* The connection's caption model (a Tag2Text context), borrowed: the one
** ram_caption_model() set, else the connection's model when it is Tag2Text,
** else the file named by RAM_CAPTION_MODEL, else the default caption model
** (default_caption.ram in the default model's places: model_path.h),
** resolved on first use. zFunc names the
** caller in errors. */
int ram__conn_caption_ctx(struct ram_conn *p, const char *zFunc, struct ram_ctx **ppCtx, char **pzErr);
/* Makes pEntry the current model (takes over the caller's reference). */
int ram__conn_set_model(struct ram_conn *p, struct ram_entry *pEntry, char **pzErr);
/* A model file rewritten in place (ram_model_check_file fails) is mapped
** again, as a new ram_load would; nothing happens when that fails (the
** engine then reports "changed on disk"). Called first thing by every SQL
** entry point, before it borrows the context's buffers, which this may
** free; never while main.ram_thresholds is being read (th.bInTab). */
void ram__conn_refresh(struct ram_conn *p);

/* model_trust.c: a table's recorded model path is opened only inside the
** folders the user keeps models in or when named in this connection.
** ram__trust_add records zPath as named by the user (ram_load, CREATE ...
** model=, the 'model=' command): SQLITE_OK or SQLITE_NOMEM.
** ram__trust_check: SQLITE_OK when table zTable may open zPath, else an
** error code with *pzErr (sqlite3_free) naming the model and how to allow
** it. ram__trust_free releases p->pTrust. */
int ram__trust_add(struct ram_conn *p, const char *zPath);
int ram__trust_check(struct ram_conn *p, const char *zTable, const char *zPath, char **pzErr);
void ram__trust_free(struct ram_conn *p);
/* The connection's image path: ram__image_check, then the current context
** (resolved as ram__conn_ctx does) with the connection's settings. */
int ram__conn_image(struct ram_conn *p, const char *zFunc, int iArg, sqlite3_value *pVal, int bProbs, int *pbNull,
                    struct ram_image *pOut, char **pzErr);

/* Static description of one scalar function for the registration loops. */
struct ram_func_def {
    const char *zName;
    int nArg;
    int flags;
    void (*xFunc)(sqlite3_context *, int, sqlite3_value **);
};
/* Registers the table with p as user data (one reference each), stopping at
** the first failure with the STYLE.md message in *pzErrMsg. */
int ram__register_funcs(sqlite3 *db, struct ram_conn *p, const struct ram_func_def *a, int n, char **pzErrMsg);

/* ================================================================== surfaces */

/* Each registers its functions or modules (called by ram.c only). */
int ram__register_model_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg);     /* func_model.c */
int ram__register_tag_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg);       /* func_tags.c */
int ram__register_threshold_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg); /* func_thresholds.c */
int ram__register_score_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg);     /* func_score.c */
int ram__register_caption_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg);   /* func_caption.c */
int ram__register_thumbnail_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg); /* func_thumbnail.c */
int ram__register_xmp_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg);       /* func_xmp.c */
int ram__register_vtab(sqlite3 *db, struct ram_conn *p, char **pzErrMsg);            /* vtab_scores.c */
int ram__register_tag_list(sqlite3 *db, struct ram_conn *p, char **pzErrMsg);        /* vtab_tag_list.c */
int ram__register_index(sqlite3 *db, struct ram_conn *p, char **pzErrMsg);           /* index_vtab.c */

#endif /* RAM_EXT_H */
