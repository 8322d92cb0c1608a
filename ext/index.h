/*
** index.h — private header of ram_index, the virtual table that indexes
** photos (docs/INDEX.md is the reference). The table is cut along its seams,
** each file calling only the ones listed before it:
**
**     index_store.c    shadow-table statements, options and generation, the
**                      table's model context and thresholds, the stored form
**                      of one image's embeddings
**     index_journal.c  the resume journal (a side database of embeddings)
**     index_images.c   image entries: embed, write, reference-count, postings
**     index_entry.c    the entry column: an image's stored form as a blob that
**                      another table stores without running the model
**     index_similar.c  MATCH with a BLOB: search by example (CLS cosine)
**     index_match.c    MATCH: open-set ranking from the int8 token cache
**     index_meta.c     capture date, camera and GPS of each row (photos_meta)
**     index_update.c   xUpdate: row inserts, updates, deletes and commands
**     index_cursor.c   xOpen/xFilter/xNext/xColumn: the query plans' scans
**     index_duplicates.c  ram_index_duplicates(): groups of near-duplicates,
**                      read from a table's shadow tables
**     index_vtab.c     xCreate/xConnect, xBestIndex, transactions, the module
**
** ram_index keeps each image's embeddings in shadow tables of the same
** database and answers tag and open-vocabulary queries from them without
** running the image model.
**
**     CREATE VIRTUAL TABLE photos USING ram_index;          -- or ram_index(model='x.ram', ...)
**     INSERT INTO photos(path, image)
**       SELECT name, data FROM fsdir('Pictures') WHERE name GLOB '*.jpg';
**     SELECT path, tags FROM photos WHERE tag = 'dog';                  -- inverted index
**     SELECT path, score FROM photos WHERE tag = 'dog' AND score > 0.9;  -- no inference
**     SELECT path, score FROM photos
**       WHERE photos MATCH 'a dog catching a frisbee' AND k = 20;       -- ranked, from the cache
**     INSERT INTO photos(photos) VALUES('integrity-check');
**
** Options: model='file.ram' (default: the connection's current model),
** floor=0.01 (smallest probability kept for tag queries), store_images=0|1,
** exif=1|0 (apply EXIF orientation), resume=1|0 (the resume journal below),
** on_error=fail|skip (skip: refused images recorded in photos_skipped).
** docs/INDEX.md is the reference (columns, commands, errors, storage layout).
**
** HOW IT WORKS
**
** Rows are files (path -> image). Images are keyed by XXH3-128 of their
** encoded bytes, so identical files (duplicates, renames) share one image
** entry, counted by nref. Per image the shadow tables hold: the image tokens
** the tagging decoder attends over, int8 with one scale per token
** (core/cache_score.h, layout 2, 74,836 bytes at full size), a unit int8 copy
** of the CLS embedding for the cosine prefilter, the tag probabilities at or
** above the floor (exact float32; the tags are selected from them at read
** time with the current thresholds), and the generation:
** which model file (digest) and preprocessing produced them. Shadow tables,
** all named photos_*:
**
**     photos_config(key PRIMARY KEY, value)      options, current generation
**     photos_gens(id, digest, prep, model)       model digest + preprocessing
**     photos_images(id, key UNIQUE, gen, nref, probs)
**     photos_tokens(id, tokens)                  the int8 tokens, one row per image
**     photos_files(id, path UNIQUE, img)         the rows of photos (rowid = id)
**     photos_postings(tag, img, score)           inverted index, PK (tag, img)
**     photos_cls(id, v)                          prefilter vectors
**     photos_blobs(id, data)                     image bytes (store_images=1)
**     photos_skipped(path, reason)               images refused (on_error=skip)
**     photos_meta(id, taken, taken_source, camera_make, camera_model, latitude, longitude)
**                                                per row (id = photos_files.id): index_meta.c
**     photos_captions(caption, img)              FTS5, rowid = row (captions=1, index_caption.c)
**
** Tag queries (tag = ?, tag IN (...), optional score > x) range-scan
** photos_postings by class; MATCH ranks every current image (or the
** prefilter's candidates) with the folded open-set scorer of
** core/cache_score.c, batched (ram_score() never looks into these tables: it
** computes in fp32 from the image or a ram_embed() blob, whether or not a
** table holds the image). A row whose generation is not the table's current
** one is "stale": tag and MATCH queries refuse to mix it in.
**
** Integrity: every write of one row happens in the statement's transaction,
** so an INSERT is atomic with its embeddings. Because a long
** INSERT ... SELECT is one transaction, an interrupt or a crash rolls it back;
** the resume journal keeps the work: each embedding computed inside a write
** transaction is also committed, every few images, to a side database
** "<db file>-ramjournal" (its own connection, WAL). Rerunning the same INSERT
** finds those embeddings by key and generation and costs a hash per image.
** Entries are deleted once the main transaction commits. The journal is a
** cache: deleting the file is always safe.
*/
#ifndef RAM_INDEX_H
#define RAM_INDEX_H

#include "ext.h"

#include "cache_score.h"

#include <string.h>
#include <time.h>

/* Columns of the declared table, in order. */
enum {
    COL_PATH = 0,
    COL_IMAGE,     /* HIDDEN: the encoded bytes (input; output when stored) */
    COL_TAGS,      /* tags selected by the current thresholds, English, ' | ' joined */
    COL_SCORE,     /* the queried tag's probability, or the MATCH probability */
    COL_TAG,       /* HIDDEN: tag constraint */
    COL_K,         /* HIDDEN: MATCH result count */
    COL_PREFILTER, /* HIDDEN: MATCH prefilter candidate count */
    COL_KEY,       /* HIDDEN: XXH3-128 of the bytes, 16-byte big-endian BLOB */
    COL_PROBS,     /* HIDDEN: num_class float32 BLOB (0 under the floor) */
    COL_CLS,       /* HIDDEN: CLS embedding, float32 BLOB (from the int8 cache) */
    COL_TAGS_ZH,   /* HIDDEN: selected tags, Chinese */
    COL_STALE,     /* HIDDEN: 1 when embedded with another model or preprocessing */
    COL_ENTRY,     /* HIDDEN: the stored entry as a blob (entry_blob.c); INSERT input */
    /* HIDDEN: when, with what and where the photo was taken (index_meta.c) */
    COL_TAKEN,        /* ISO 8601 text: EXIF DateTimeOriginal[+offset], else the file's mtime (UTC, 'Z') */
    COL_TAKEN_SOURCE, /* 'exif' or 'mtime' (NULL: unknown or given by the INSERT) */
    COL_CAMERA_MAKE,  /* EXIF Make */
    COL_CAMERA_MODEL, /* EXIF Model */
    COL_LATITUDE,     /* GPS, signed decimal degrees (north positive) */
    COL_LONGITUDE,    /* GPS, signed decimal degrees (east positive) */
    COL_MTIME,        /* INSERT/UPDATE input: the file's mtime in seconds (fsdir's); reads NULL */
    COL_CAPTION,      /* HIDDEN: the row's caption (captions=1, index_caption.c), else NULL */
    COL_NAME,         /* HIDDEN, named like the table: MATCH and commands */
    N_COL
};
/* Their names (index_store.c). */
extern const char *const ram__index_col_names[N_COL];

#define INDEX_PREP_VERSION 1 /* bump when core's preprocessing changes its output */
/* Layout of the shadow tables: 3 integer scores in postings; 4 the codes and
** the postings in score order (index_codes.c), and 3 is still read. */
#define INDEX_SCHEMA_VERSION 4
/* Survivors of the cascade's 1-bit stage (cascade=): bench_cascade measured
** the same recall at 4000, 16,000 and 0 (every int8 vector) over 1M
** pictures; 4000 was the fastest. */
#define INDEX_CASCADE_DEFAULT 4000
#define RAM_INDEX_MAX_CODE 8192 /* bytes of a sign code at the widest width (65536) */
/* Codes kept in memory per table and connection: 3.7M pictures at 512 dims. */
#define INDEX_CODE_CACHE_BYTES ((sqlite3_uint64)256 << 20)
/* The refit cascade (refit=P): a picture costs P + 8 bytes in memory per
** connection; above this nothing is kept (the table is remembered as too
** large until its next write) and MATCH takes the refit=0 path. */
#define INDEX_REFIT_CACHE_BYTES ((sqlite3_uint64)256 << 20)
#define INDEX_REFIT_MAX_AXES 256
/* Axes of the refit cascade when the table has no refit= (tests/bench/
** cascade_proxies.py --axes and bench_cascade: 64 keeps recall@20 over 0.95
** at 5 % of 20,000 real outputs, 32 does not). */
#define INDEX_REFIT_DEFAULT 64
#define INDEX_PROBS_VERSION 1 /* layout of photos_images.probs */
#define INDEX_BATCH 64        /* images per batched scoring call */
#define INDEX_MAX_DESCRIPTIONS 256
#define INDEX_JOURNAL_EVERY 8 /* journal commit every N embeddings (or 2 s) */

/* Process-wide counters, read by ram_index_stats() (index_store.c). */
struct ram_index_stats {
    sqlite3_int64 hashed, inferences, reused, journal_hits, postings_read, images_scored, prefilter_scanned,
        codes_scanned, codes_loaded;
};
extern struct ram_index_stats ram__index_stats;
#define STAT_ADD(f, n) __atomic_add_fetch(&ram__index_stats.f, (n), __ATOMIC_RELAXED)
#define STAT_GET(f) __atomic_load_n(&ram__index_stats.f, __ATOMIC_RELAXED)

typedef struct IndexVtab IndexVtab;
typedef struct IndexCursor IndexCursor;
typedef struct IndexHit IndexHit;

enum {
    STMT_FILE_BY_PATH,
    STMT_IMAGE_BY_KEY,
    STMT_IMAGE_REF,
    STMT_IMAGE_INSERT,
    STMT_IMAGE_REWRITE,
    STMT_TOKENS_UPSERT,
    STMT_TOKENS_DELETE,
    STMT_IMAGE_PROBS,
    STMT_IMAGE_DELETE,
    STMT_POSTING_INSERT,
    STMT_POSTING_DELETE,
    STMT_CLS_UPSERT,
    STMT_CLS_DELETE,
    STMT_BLOB_UPSERT,
    STMT_BLOB_DELETE,
    STMT_FILE_INSERT,
    STMT_FILE_SET_IMG,
    STMT_FILE_SET_PATH,
    STMT_FILE_GET,
    STMT_FILE_DELETE,
    STMT_STALE_COUNT,
    STMT_TOKENS,
    STMT_CODE_UPSERT,
    STMT_CODE_DELETE,
    N_STMT
};

struct IndexVtab {
    sqlite3_vtab base;
    sqlite3 *db;
    char *zDb;    /* schema name; sqlite3_free */
    char *zName;  /* table name; sqlite3_free */
    char *zModel; /* configured model path or NULL (connection's model); sqlite3_free */
    double rFloor;
    int bStore, bExif, bResume;
    int bSkipErrors;          /* on_error=skip: undecodable or oversized images are recorded in photos_skipped */
    int bImageError;          /* the last embed failed on the image itself (decoder, pixel limit) */
    sqlite3_int64 iGen;       /* current generation */
    char *zGenDigest;         /* its model digest; sqlite3_free */
    char *zGenPrep;           /* its preprocessing; sqlite3_free */
    int nTok, nDim, nClass;   /* sizes recorded at create */
    int iSchema;              /* 3 or 4 (index_codes.c) */
    sqlite3_int64 nCascade;   /* MATCH prefilter: survivors of the 1-bit stage (0: none) */
    struct IndexCodeCache {   /* photos_codes in memory (index_codes.c): valid while nWrites and the
                             ** file's data version are those it was read at */
        sqlite3_int64 *aId;   /* sqlite3_free */
        unsigned char *aCode; /* n codes; sqlite3_free */
        sqlite3_int64 n, nWrites, nWritesAt;
        unsigned int uVersion;
        int bValid;
    } codes;
    int nRefit;              /* MATCH prefilter: axes of the refit cascade (refit=; 0: the cascade above) */
    struct IndexRefitCache { /* the CLS on nRefit principal axes, int8, in memory (index_codes.c); valid
                             ** like codes (the same write counter) */
        sqlite3_int64 *aId;  /* n ids in id order; sqlite3_free */
        int8_t *aQ;          /* n x nAxes coordinates; sqlite3_free */
        float *aScale;       /* nAxes: coordinate = aQ * aScale; sqlite3_free (with aMean, aAxes) */
        float *aMean;        /* nDim: the sample's mean unit CLS */
        float *aAxes;        /* nAxes x nDim orthonormal rows */
        sqlite3_int64 n, nWritesAt;
        unsigned int uVersion;
        int nAxes, bValid;
        int bTooLarge; /* the copy would pass INDEX_REFIT_CACHE_BYTES at (nWritesAt, uVersion, nAxes) */
    } refit;

    struct ram_conn *pConn;   /* the connection's extension state (the module's pAux) */
    struct ram_ctx *pCtx;     /* the table's model in use: the connection's context, or its own
                              ** (model=); one reference (ram__ctx_unref) */
    struct ram_model *pModel; /* pCtx->pEntry->pModel (borrowed) */
    int bModelChecked;        /* the model's digest equals zGenDigest */

    float *aEmbeds;              /* nTok x nDim; sqlite3_free */
    float *aProbs;               /* nClass; sqlite3_free */
    unsigned char *aTokBlob;     /* packed tokens; sqlite3_free */
    sqlite3_stmt *aStmt[N_STMT]; /* sqlite3_finalize */

    /* Resume journal (see the header). */
    sqlite3 *dbJournal; /* sqlite3_close */
    sqlite3_stmt *pJrnGet, *pJrnPut;
    int nJrnPending;        /* embeddings written since the last journal commit */
    unsigned char *aTxnKey; /* keys embedded in the open transaction, 16 bytes each; sqlite3_free */
    int nTxnKey, nTxnKeyAlloc;
    time_t tJrnBegin;
    int bInWrite;           /* between xBegin and xCommit/xRollback */
    int bReloadConfig;      /* a rollback may have undone a command: reread the config first */
    int eMeta;              /* photos_meta: 0 not looked up yet, 1 present, -1 absent (index_meta.c) */
    int bSameFile;          /* the last INSERT met its path with the same bytes (index_meta.c then skips EXIF) */
    sqlite3_stmt *pMetaGet; /* reads a row of photos_meta (sqlite3_finalize) */

    /* Captions (index_caption.c). */
    int bCaptions;           /* captions=1: photos_captions (FTS5) holds a caption per row */
    char *zCapModel;         /* caption_model= path or NULL (the connection's caption model); sqlite3_free */
    struct ram_ctx *pCapCtx; /* zCapModel's context once opened: one reference */
};

struct IndexHit {
    sqlite3_int64 img;
    float score;
};

/* PLAN_REFUSED: a constraint on tag or score the table cannot answer; idxStr
** is "refused: " and the error xFilter reports. */
enum { PLAN_SCAN = 0, PLAN_ROWID, PLAN_PATH, PLAN_TAG, PLAN_MATCH, PLAN_REFUSED };
/* idxNum: plan in the low 4 bits, then flags for the arguments that follow
** the plan's own argument, in this order. */
#define IDX_SCORE_GT 0x10
#define IDX_SCORE_GE 0x20
#define IDX_K 0x40
#define IDX_PREFILTER 0x80
#define IDX_LIMIT 0x100
#define IDX_TAG 0x200         /* MATCH among the images that have a tag */
#define IDX_SCORE_ORDER 0x400 /* tag plan: SQLite takes the rows as sorted by score, best first */

struct IndexCursor {
    sqlite3_vtab_cursor base;
    int plan;
    sqlite3_stmt *pStmt; /* current rows: fid, path, img, score, key, gen, probs */
    int bEof;
    int iTag; /* PLAN_TAG: class index */
    sqlite3_int64 k, nPrefilter;
    int bHasK, bHasPrefilter;
    IndexHit *aHit; /* PLAN_MATCH: ranked images; sqlite3_free */
    int nHit, iHit;
    sqlite3_int64 nOut; /* rows returned so far (MATCH stops at k) */
};

/* Everything the index stores for one image (buffers are sqlite3_malloc'd,
** except aTokens when it points into the vtab's scratch aTokBlob). */
typedef struct IndexEmbedding {
    const unsigned char *aTokens;
    int nTokens;
    unsigned char *aUnit;
    int nUnit;
    unsigned char *aProbs;
    int nProbs;       /* version byte + 3 zero bytes + (u16 class, f32 prob) entries */
    void *pOwnTokens; /* sqlite3_free: tokens when not the vtab's scratch */
} IndexEmbedding;

/* Little-endian fields of the stored probs blob, and the posting score:
** a probability stored as the bit pattern of its float32 (see
** index_store.c). */
static inline void put_u16(unsigned char *a, unsigned v) { a[0] = (unsigned char)v, a[1] = (unsigned char)(v >> 8); }

static inline unsigned get_u16(const unsigned char *a) { return a[0] | (unsigned)a[1] << 8; }

static inline void put_f32(unsigned char *a, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int i = 0; i < 4; i++) a[i] = (unsigned char)(u >> (8 * i));
}

static inline float get_f32(const unsigned char *a)
{
    uint32_t u = a[0] | (uint32_t)a[1] << 8 | (uint32_t)a[2] << 16 | (uint32_t)a[3] << 24;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Postings store a probability as the bit pattern of its float32, a 4-byte
** INTEGER instead of an 8-byte REAL (4 bytes less per posting, exact): for
** p >= 0 the patterns sort as the values do. */
static inline sqlite3_int64 prob_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (sqlite3_int64)u;
}

static inline double bits_prob(sqlite3_int64 b)
{
    uint32_t u = (uint32_t)b;
    float f;
    memcpy(&f, &u, 4);
    return (double)f;
}

/* ------------------------------------------------------------------ index_store.c */

void ram__vtab_set_error(sqlite3_vtab *pVtab, const char *zFmt, ...);
int ram__index_exec(sqlite3 *db, char **pzErr, const char *zFmt, ...);
int ram__index_stmt(IndexVtab *p, int i, sqlite3_stmt **ppStmt);
int ram__index_step_done(IndexVtab *p, sqlite3_stmt *pStmt);
/* 1 when sqlite3_interrupt() was called on the connection. */
int ram__index_interrupted(IndexVtab *p);
int ram__parse_bool(const char *z, int *pOut);
int ram__index_load_config(IndexVtab *p, char **pzErr);
int ram__index_sync_config(IndexVtab *p);
char *ram__index_prep_string(int bExif);
void ram__index_model_drop(IndexVtab *p);
int ram__index_model(IndexVtab *p, int bCheck);
int ram__index_check_stale(IndexVtab *p);
int ram__index_thresholds(IndexVtab *p, const float **paOut);
void ram__embedding_clear(IndexEmbedding *e);
sqlite3_int64 ram__bound_bits(double x, int bGE);
int ram__probs_count(const unsigned char *a, int n, int nClass);
int ram__embedding_build(IndexVtab *p, const float *aEmb, const float *aProb, IndexEmbedding *e);

/* ------------------------------------------------------------------ index_journal.c */

void ram__journal_close(IndexVtab *p);
int ram__journal_get(IndexVtab *p, const unsigned char *aKey, IndexEmbedding *e);
void ram__journal_commit(IndexVtab *p);
void ram__journal_put(IndexVtab *p, const unsigned char *aKey, const IndexEmbedding *e);
void ram__journal_note(IndexVtab *p, const unsigned char *aKey);
void ram__journal_forget(IndexVtab *p);
void ram__journal_drop(IndexVtab *p);

/* ------------------------------------------------------------------ index_images.c */

int ram__index_embed(IndexVtab *p, const unsigned char *aKey, const void *pBlob, int nBlob, IndexEmbedding *e);
int ram__index_write_image(IndexVtab *p, sqlite3_int64 iImg, const unsigned char *aKey, const IndexEmbedding *e,
                           const void *pBlob, int nBlob, sqlite3_int64 *pImg);
int ram__index_image_ref(IndexVtab *p, sqlite3_int64 img, int delta);
int ram__index_acquire_image(IndexVtab *p, const unsigned char *aKey, const void *pBlob, int nBlob,
                             IndexEmbedding *pGiven, sqlite3_int64 *pImg);
void ram__index_hash(const void *pBlob, int nBlob, unsigned char aKey[16]);

/* ------------------------------------------------------------------ index_entry.c */

/* The entry blob of image img as ctx's result (SQLITE_CORRUPT_VTAB when damaged). */
int ram__index_entry_column(IndexVtab *p, sqlite3_context *ctx, sqlite3_int64 img);
/* An INSERT's entry value, checked against the table's generation: its key
** and embeddings (e: ram__embedding_clear). */
int ram__index_entry_arg(IndexVtab *p, sqlite3_value *pVal, unsigned char aKey[16], IndexEmbedding *e);

/* ------------------------------------------------------------------ index_caption.c */

/* A CREATE option captions= or caption_model= (*pbHandled 0: not one of them;
** caption_model takes over *pzVal). */
int ram__index_caption_option(IndexVtab *p, const char *zKey, char **pzVal, int *pbHandled, char **pzErr);
int ram__index_caption_create(IndexVtab *p, char **pzErr); /* at CREATE: the FTS5 table, the config */
int ram__index_caption_load(IndexVtab *p, char **pzErr);   /* at CREATE and CONNECT: reads the config */
void ram__index_caption_drop(IndexVtab *p);
/* After row fid points at its image (pImage: the inserted bytes, or NULL;
** pGiven: the INSERT's caption value, stored as given when TEXT, or NULL). */
int ram__index_caption_put(IndexVtab *p, sqlite3_int64 fid, sqlite3_value *pImage, sqlite3_value *pGiven);
int ram__index_caption_delete(IndexVtab *p, sqlite3_int64 fid);
int ram__index_caption_column(IndexVtab *p, sqlite3_context *ctx, sqlite3_int64 fid);
int ram__index_caption_check(IndexVtab *p); /* integrity-check */
int ram__index_caption_rename(IndexVtab *p, const char *zNew);

/* ------------------------------------------------------------------ index_similar.c */

/* MATCH with a BLOB (an image, an entry, a ram_embed() BLOB or a float32
** vector): the images ranked by the cosine of their CLS with the query's,
** *paHit (sqlite3_free) best first, at most k (k 0: all); iTag >= 0 keeps
** the images where that tag is over thr. nPre > 0 is refused. */
int ram__index_similar(IndexVtab *p, sqlite3_value *pMatch, sqlite3_int64 k, sqlite3_int64 nPre, int iTag, double thr,
                       IndexHit **paHit, int *pnHit);

/* ------------------------------------------------------------------ index_codes.c */

int ram__index_code_put(IndexVtab *p, sqlite3_int64 img, const unsigned char *aUnit, int nUnit);
int ram__index_code_delete(IndexVtab *p, sqlite3_int64 img);
int ram__index_codes_create(sqlite3 *db, const char *zDb, const char *zName, char **pzErr);
int ram__index_upgrade(IndexVtab *p);
int ram__index_cmd_cascade(IndexVtab *p, const char *zVal);
/* The table's codes and their ids (*pn of them; -1: too many to keep, read
** the table), from memory when nothing changed since they were read;
** borrowed until the next call. */
int ram__index_codes_get(IndexVtab *p, const sqlite3_int64 **paId, const unsigned char **paCode, sqlite3_int64 *pn);
void ram__index_codes_free(IndexVtab *p);
int ram__index_cmd_refit(IndexVtab *p, const char *zVal);
/* The refit cascade's copy of the table: every picture's unit CLS on the
** table's nRefit principal axes (fitted on an even sample of 4096 rows when
** the copy is made), in memory like the codes; *pr points at it (borrowed
** until the next call), or is NULL when it would not fit
** (INDEX_REFIT_CACHE_BYTES) or refit is 0. */
int ram__index_refit_get(IndexVtab *p, const struct IndexRefitCache **pr);
void ram__index_refit_free(IndexVtab *p);
/* The cascade's 1-bit stage for any query the scorer takes (texts, a
** picture's CLS): the nKeep images with the closest codes, *paHit
** (sqlite3_free) in id order. */
int ram__index_code_candidates(IndexVtab *p, struct ram_cache_query *q, int nRow, sqlite3_int64 nKeep, IndexHit **paHit,
                               int *pnHit);

/* ------------------------------------------------------------------ index_match.c */

int ram__index_match(IndexVtab *p, sqlite3_value *pMatch, sqlite3_int64 k, sqlite3_int64 nPre, int iTag, double thr,
                     IndexHit **paHit, int *pnHit);

/* ------------------------------------------------------------------ index_meta.c */

/* photos_meta, the capture date, camera and GPS position of each row, kept
** apart from the other shadow tables (tables made before it gain it at
** their first write). Create: makes the table (xCreate, and lazily). Write:
** the row fid's values after an INSERT or UPDATE whose column values are
** argv[2 + COL_*] (bUpdate: columns SQLite reports unchanged are kept), the
** EXIF of pBlob when given. Delete: row fid (fid < 0: the rows whose file
** row is gone). Column: COL_TAKEN ... COL_MTIME of row fid (NULL for a
** table without photos_meta). Exists: 1 when photos_meta exists (looked up
** once until a reset). Reset: forget the cached statement and lookup
** (rollback, rename, free). Check: the type and range checks of the values
** the statement gives, made before anything is written. */
int ram__index_meta_create(IndexVtab *p);
int ram__index_meta_check(IndexVtab *p, sqlite3_value **argv, int bUpdate);
int ram__index_meta_exists(IndexVtab *p);
/* integrity-check's part: SQLITE_CORRUPT_VTAB with the message when rows of
** photos_meta belong to no file row. */
int ram__index_meta_integrity(IndexVtab *p);
int ram__index_meta_write(IndexVtab *p, sqlite3_int64 fid, sqlite3_value **argv, const void *pBlob, int nBlob,
                          int bUpdate);
int ram__index_meta_delete(IndexVtab *p, sqlite3_int64 fid);
int ram__index_meta_column(IndexVtab *p, sqlite3_context *ctx, sqlite3_int64 fid, int iCol);
void ram__index_meta_reset(IndexVtab *p);

/* ------------------------------------------------------------------ index_duplicates.c */

/* Registers ram_index_duplicates (the groups of near-duplicates of a table). */
int ram__register_index_duplicates(sqlite3 *db, char **pzErrMsg);

/* ------------------------------------------------------------------ index_update.c */

int ram__indexUpdate(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv, sqlite_int64 *pRowid);

/* ------------------------------------------------------------------ index_cursor.c */

int ram__indexOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur);
int ram__indexClose(sqlite3_vtab_cursor *pCur);
int ram__indexFilter(sqlite3_vtab_cursor *pCur, int idxNum, const char *idxStr, int argc, sqlite3_value **argv);
int ram__indexNext(sqlite3_vtab_cursor *pCur);
int ram__indexEof(sqlite3_vtab_cursor *pCur);

int ram__indexColumn(sqlite3_vtab_cursor *pCur, sqlite3_context *ctx, int i);
int ram__indexRowid(sqlite3_vtab_cursor *pCur, sqlite_int64 *pRowid);

#endif /* RAM_INDEX_H */
