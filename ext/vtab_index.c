/*
** vtab_index.c — ram_index, the virtual table that indexes photos: it keeps
** each image's embeddings in shadow tables of the same database and answers
** tag and open-vocabulary queries from them without running the image model.
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
** exif=1|0 (apply EXIF orientation), resume=1|0 (the resume journal below).
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
**
** Tag queries (tag = ?, tag IN (...), optional score > x) range-scan
** photos_postings by class; MATCH ranks every current image (or the
** prefilter's candidates) with the folded open-set scorer of
** core/cache_score.c, batched; ram_score() on an indexed blob reuses the same
** cached tokens (ram__index_cached_score). A row whose generation is not the
** table's current one is "stale": tag and MATCH queries refuse to mix it in.
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
#include "ext.h"
SQLITE_EXTENSION_INIT3

#include "cache_score.h"
#include "ram.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

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
    COL_NAME,      /* HIDDEN, named like the table: MATCH and commands */
    N_COL
};
static const char *const azColName[N_COL] = {"path",    "image", "tags",  "score",   "tag",
                                              "k",       "prefilter", "key", "probs", "cls",
                                              "tags_zh", "stale", 0};

#define INDEX_PREP_VERSION 1   /* bump when core's preprocessing changes its output */
#define INDEX_SCHEMA_VERSION 3 /* layout of the shadow tables (3: integer scores in postings) */
#define INDEX_PROBS_VERSION 1  /* layout of photos_images.probs */
#define INDEX_BATCH 64         /* images per batched scoring call */
#define INDEX_MAX_DESCRIPTIONS 256
#define INDEX_JOURNAL_EVERY 8  /* journal commit every N embeddings (or 2 s) */

/* ------------------------------------------------------------------ stats */

/* Process-wide counters, read by ram_index_stats() (tests use them to prove
** that duplicates are embedded once and that tag queries do not scan). */
static struct {
    sqlite3_int64 hashed, inferences, reused, journal_hits, postings_read, images_scored, prefilter_scanned;
} g_stats;
#define STAT_ADD(f, n) __atomic_add_fetch(&g_stats.f, (n), __ATOMIC_RELAXED)
#define STAT_GET(f) __atomic_load_n(&g_stats.f, __ATOMIC_RELAXED)

/* ram_index_stats(): the counters as a JSON object. */
static void indexStatsFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    char *z = sqlite3_mprintf("{\"hashed\":%lld,\"inferences\":%lld,\"reused\":%lld,\"journal_hits\":%lld,"
                              "\"postings_read\":%lld,\"images_scored\":%lld,\"prefilter_scanned\":%lld}",
                              STAT_GET(hashed), STAT_GET(inferences), STAT_GET(reused), STAT_GET(journal_hits),
                              STAT_GET(postings_read), STAT_GET(images_scored), STAT_GET(prefilter_scanned));
    if (!z) {
        sqlite3_result_error_nomem(ctx);
        return;
    }
    sqlite3_result_text(ctx, z, -1, sqlite3_free);
}

/* ------------------------------------------------------------------ structs */

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
    N_STMT
};

struct IndexVtab {
    sqlite3_vtab base;
    sqlite3 *db;
    char *zDb;      /* schema name; sqlite3_free */
    char *zName;    /* table name; sqlite3_free */
    char *zModel;   /* configured model path or NULL (connection's model); sqlite3_free */
    double rFloor;
    int bStore, bExif, bResume;
    sqlite3_int64 iGen;   /* current generation */
    char *zGenDigest;     /* its model digest; sqlite3_free */
    char *zGenPrep;       /* its preprocessing; sqlite3_free */
    int nTok, nDim, nClass; /* sizes recorded at create */

    struct ram_conn *pConn;   /* the connection's extension state (the module's pAux) */
    struct ram_entry *pEntry; /* the table's model: a registry reference (ram__registry_release) */
    struct ram_model *pModel; /* pEntry->pModel (borrowed) */
    struct ram_state *pOwnState; /* when pEntry is not the connection's model (ram_state_free) */
    int bModelChecked;        /* pEntry's digest equals zGenDigest */
    float *aThresh;           /* nClass thresholds when pEntry is not the connection's model (sqlite3_free) */

    float *aEmbeds; /* nTok x nDim; sqlite3_free */
    float *aProbs;  /* nClass; sqlite3_free */
    unsigned char *aTokBlob; /* packed tokens; sqlite3_free */
    sqlite3_stmt *aStmt[N_STMT]; /* sqlite3_finalize */

    /* Resume journal (see the header). */
    sqlite3 *dbJournal;    /* sqlite3_close */
    sqlite3_stmt *pJrnGet, *pJrnPut;
    int nJrnPending;       /* embeddings written since the last journal commit */
    unsigned char *aTxnKey; /* keys embedded in the open transaction, 16 bytes each; sqlite3_free */
    int nTxnKey, nTxnKeyAlloc;
    time_t tJrnBegin;
    int bInWrite;          /* between xBegin and xCommit/xRollback */
    int bReloadConfig;     /* a rollback may have undone a command: reread the config first */
};

struct IndexHit {
    sqlite3_int64 img;
    float score;
};

enum { PLAN_SCAN = 0, PLAN_ROWID, PLAN_PATH, PLAN_TAG, PLAN_MATCH };
/* idxNum: plan in the low 4 bits, then flags for the arguments that follow
** the plan's own argument, in this order. */
#define IDX_SCORE_GT 0x10
#define IDX_SCORE_GE 0x20
#define IDX_K 0x40
#define IDX_PREFILTER 0x80
#define IDX_LIMIT 0x100
#define IDX_TAG 0x200 /* MATCH among the images that have a tag */

struct IndexCursor {
    sqlite3_vtab_cursor base;
    int plan;
    sqlite3_stmt *pStmt; /* current rows: fid, path, img, score, key, gen, probs */
    int bEof;
    int iTag;            /* PLAN_TAG: class index */
    sqlite3_int64 k, nPrefilter;
    int bHasK, bHasPrefilter;
    IndexHit *aHit;      /* PLAN_MATCH: ranked images; sqlite3_free */
    int nHit, iHit;
    sqlite3_int64 nOut;  /* rows returned so far (MATCH stops at k) */
};

/* ------------------------------------------------------------------ helpers */

static void vtab_set_error(sqlite3_vtab *pVtab, const char *zFmt, ...)
{
    va_list ap;
    sqlite3_free(pVtab->zErrMsg);
    va_start(ap, zFmt);
    pVtab->zErrMsg = sqlite3_vmprintf(zFmt, ap);
    va_end(ap);
}

/* Runs a formatted statement (no rows expected). */
static int index_exec(sqlite3 *db, char **pzErr, const char *zFmt, ...)
{
    va_list ap;
    va_start(ap, zFmt);
    char *zSql = sqlite3_vmprintf(zFmt, ap);
    va_end(ap);
    if (!zSql) return SQLITE_NOMEM;
    char *zErr = 0;
    int rc = sqlite3_exec(db, zSql, 0, 0, &zErr);
    sqlite3_free(zSql);
    if (rc && pzErr) {
        sqlite3_free(*pzErr);
        *pzErr = sqlite3_mprintf("ram_index: %s", zErr ? zErr : sqlite3_errstr(rc));
    }
    sqlite3_free(zErr);
    return rc;
}

static const char *const azStmtSql[N_STMT] = {
    [STMT_FILE_BY_PATH] = "SELECT f.id, f.img, i.key, i.gen FROM \"%w\".\"%w_files\" f "
                          "LEFT JOIN \"%w\".\"%w_images\" i ON i.id = f.img WHERE f.path = ?1",
    [STMT_IMAGE_BY_KEY] = "SELECT id, gen FROM \"%w\".\"%w_images\" WHERE key = ?1",
    [STMT_IMAGE_REF] = "UPDATE \"%w\".\"%w_images\" SET nref = nref + ?2 WHERE id = ?1 RETURNING nref",
    [STMT_IMAGE_INSERT] = "INSERT INTO \"%w\".\"%w_images\"(key, gen, nref, probs) VALUES(?1, ?2, 1, ?5)",
    [STMT_IMAGE_REWRITE] = "UPDATE \"%w\".\"%w_images\" SET gen = ?2, probs = ?5 WHERE id = ?1",
    [STMT_TOKENS_UPSERT] = "INSERT OR REPLACE INTO \"%w\".\"%w_tokens\"(id, tokens) VALUES(?1, ?2)",
    [STMT_TOKENS_DELETE] = "DELETE FROM \"%w\".\"%w_tokens\" WHERE id = ?1",
    [STMT_IMAGE_PROBS] = "SELECT probs FROM \"%w\".\"%w_images\" WHERE id = ?1",
    [STMT_IMAGE_DELETE] = "DELETE FROM \"%w\".\"%w_images\" WHERE id = ?1",
    [STMT_POSTING_INSERT] = "INSERT INTO \"%w\".\"%w_postings\"(tag, img, score) VALUES(?1, ?2, ?3)",
    [STMT_POSTING_DELETE] = "DELETE FROM \"%w\".\"%w_postings\" WHERE tag = ?1 AND img = ?2",
    [STMT_CLS_UPSERT] = "INSERT OR REPLACE INTO \"%w\".\"%w_cls\"(id, v) VALUES(?1, ?2)",
    [STMT_CLS_DELETE] = "DELETE FROM \"%w\".\"%w_cls\" WHERE id = ?1",
    [STMT_BLOB_UPSERT] = "INSERT OR REPLACE INTO \"%w\".\"%w_blobs\"(id, data) VALUES(?1, ?2)",
    [STMT_BLOB_DELETE] = "DELETE FROM \"%w\".\"%w_blobs\" WHERE id = ?1",
    [STMT_FILE_INSERT] = "INSERT INTO \"%w\".\"%w_files\"(id, path, img) VALUES(?1, ?2, ?3)",
    [STMT_FILE_SET_IMG] = "UPDATE \"%w\".\"%w_files\" SET img = ?2 WHERE id = ?1",
    [STMT_FILE_SET_PATH] = "UPDATE \"%w\".\"%w_files\" SET path = ?2 WHERE id = ?1",
    [STMT_FILE_GET] = "SELECT img, path FROM \"%w\".\"%w_files\" WHERE id = ?1",
    [STMT_FILE_DELETE] = "DELETE FROM \"%w\".\"%w_files\" WHERE id = ?1",
    [STMT_STALE_COUNT] = "SELECT count(*) FROM \"%w\".\"%w_images\" WHERE gen < ?1 OR gen > ?1",
    [STMT_TOKENS] = "SELECT tokens FROM \"%w\".\"%w_tokens\" WHERE id = ?1",
};

/* The cached statement i, reset and unbound, prepared on first use. */
static int index_stmt(IndexVtab *p, int i, sqlite3_stmt **ppStmt)
{
    if (!p->aStmt[i]) {
        char *zSql = sqlite3_mprintf(azStmtSql[i], p->zDb, p->zName, p->zDb, p->zName);
        if (!zSql) return SQLITE_NOMEM;
        int rc = sqlite3_prepare_v3(p->db, zSql, -1, SQLITE_PREPARE_PERSISTENT, &p->aStmt[i], 0);
        sqlite3_free(zSql);
        if (rc) {
            vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
            return rc;
        }
    }
    sqlite3_reset(p->aStmt[i]);
    sqlite3_clear_bindings(p->aStmt[i]);
    *ppStmt = p->aStmt[i];
    return SQLITE_OK;
}

/* Steps a write statement to completion; the error goes to the vtab. */
static int index_step_done(IndexVtab *p, sqlite3_stmt *pStmt)
{
    int rc = sqlite3_step(pStmt);
    if (rc == SQLITE_DONE || rc == SQLITE_ROW) {
        if (rc == SQLITE_ROW) while (sqlite3_step(pStmt) == SQLITE_ROW) {}
        rc = sqlite3_reset(pStmt);
    } else {
        rc = sqlite3_reset(pStmt);
        if (rc == SQLITE_OK) rc = SQLITE_ERROR;
    }
    if (rc) vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
    return rc;
}

/* 1 when sqlite3_interrupt() was called on the connection (ext/ram.c). */
static int index_interrupted(IndexVtab *p) { return ram__conn_interrupted(p->pConn); }

/* ------------------------------------------------------------------ config */

static int config_get(sqlite3 *db, const char *zDb, const char *zName, const char *zKey, sqlite3_value **ppOut)
{
    sqlite3_stmt *pStmt = 0;
    char *zSql = sqlite3_mprintf("SELECT value FROM \"%w\".\"%w_config\" WHERE key = ?1", zDb, zName);
    if (!zSql) return SQLITE_NOMEM;
    int rc = sqlite3_prepare_v2(db, zSql, -1, &pStmt, 0);
    sqlite3_free(zSql);
    *ppOut = 0;
    if (rc) return rc;
    sqlite3_bind_text(pStmt, 1, zKey, -1, SQLITE_STATIC);
    if (sqlite3_step(pStmt) == SQLITE_ROW) {
        *ppOut = sqlite3_value_dup(sqlite3_column_value(pStmt, 0));
        if (!*ppOut) rc = SQLITE_NOMEM;
    }
    int rc2 = sqlite3_finalize(pStmt);
    return rc ? rc : rc2;
}

/* Loads options and the current generation from photos_config/photos_gens. */
static int index_load_config(IndexVtab *p, char **pzErr)
{
    static const char *const azKey[] = {"model", "floor", "store_images", "exif", "resume", "gen",
                                        "n_tokens", "dim", "num_class", "version"};
    sqlite3_value *aVal[10] = {0};
    int rc = SQLITE_OK;
    for (int i = 0; i < 10 && rc == SQLITE_OK; i++) rc = config_get(p->db, p->zDb, p->zName, azKey[i], &aVal[i]);
    if (rc) {
        *pzErr = sqlite3_mprintf("ram_index: cannot read %s_config: %s", p->zName, sqlite3_errmsg(p->db));
        goto done;
    }
    if (!aVal[9] || sqlite3_value_int(aVal[9]) != INDEX_SCHEMA_VERSION) {
        *pzErr = sqlite3_mprintf("ram_index: %s was made by an unknown version (schema %s, this build reads %d)",
                                 p->zName, aVal[9] ? (const char *)sqlite3_value_text(aVal[9]) : "none",
                                 INDEX_SCHEMA_VERSION);
        rc = SQLITE_ERROR;
        goto done;
    }
    sqlite3_free(p->zModel);
    p->zModel = 0;
    if (aVal[0] && sqlite3_value_type(aVal[0]) == SQLITE_TEXT && sqlite3_value_bytes(aVal[0]) > 0) {
        p->zModel = sqlite3_mprintf("%s", sqlite3_value_text(aVal[0]));
        if (!p->zModel) rc = SQLITE_NOMEM;
    }
    p->rFloor = aVal[1] ? sqlite3_value_double(aVal[1]) : 0.01;
    p->bStore = aVal[2] ? sqlite3_value_int(aVal[2]) : 0;
    p->bExif = aVal[3] ? sqlite3_value_int(aVal[3]) : 1;
    p->bResume = aVal[4] ? sqlite3_value_int(aVal[4]) : 1;
    p->iGen = aVal[5] ? sqlite3_value_int64(aVal[5]) : 0;
    p->nTok = aVal[6] ? sqlite3_value_int(aVal[6]) : 0;
    p->nDim = aVal[7] ? sqlite3_value_int(aVal[7]) : 0;
    p->nClass = aVal[8] ? sqlite3_value_int(aVal[8]) : 0;
    if (rc == SQLITE_OK) {
        sqlite3_stmt *pStmt = 0;
        char *zSql = sqlite3_mprintf("SELECT digest, prep FROM \"%w\".\"%w_gens\" WHERE id = %lld", p->zDb,
                                     p->zName, p->iGen);
        rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &pStmt, 0) : SQLITE_NOMEM;
        sqlite3_free(zSql);
        if (rc == SQLITE_OK && sqlite3_step(pStmt) == SQLITE_ROW) {
            sqlite3_free(p->zGenDigest), sqlite3_free(p->zGenPrep);
            p->zGenDigest = sqlite3_mprintf("%s", sqlite3_column_text(pStmt, 0));
            p->zGenPrep = sqlite3_mprintf("%s", sqlite3_column_text(pStmt, 1));
            if (!p->zGenDigest || !p->zGenPrep) rc = SQLITE_NOMEM;
        } else if (rc == SQLITE_OK) {
            *pzErr = sqlite3_mprintf("ram_index: %s_config names generation %lld, which %s_gens lacks", p->zName,
                                     p->iGen, p->zName);
            rc = SQLITE_CORRUPT_VTAB;
        }
        sqlite3_finalize(pStmt);
    }
    if (rc == SQLITE_OK && (p->nTok < 1 || p->nDim < 1 || p->nClass < 1)) {
        *pzErr = sqlite3_mprintf("ram_index: %s_config lacks the model sizes", p->zName);
        rc = SQLITE_CORRUPT_VTAB;
    }
    /* Bounds far above any model (RAM++: 145 x 512, 4585 classes), so that
    ** a tampered config is a corrupt table, not an allocation of gigabytes. */
    if (rc == SQLITE_OK && (p->nTok > 65536 || p->nDim > 65536 || p->nClass > 1000000 ||
                            (sqlite3_int64)p->nTok * p->nDim > ((sqlite3_int64)1 << 26))) {
        *pzErr = sqlite3_mprintf("ram_index: %s_config holds impossible sizes (%d tokens x %d, %d classes)",
                                 p->zName, p->nTok, p->nDim, p->nClass);
        rc = SQLITE_CORRUPT_VTAB;
    }
done:
    for (int i = 0; i < 10; i++) sqlite3_value_free(aVal[i]);
    return rc;
}

static void index_model_drop(IndexVtab *p);

/* After a rollback (of the transaction, a savepoint or a failed statement)
** the commands it undid (model=, exif=) must be undone in memory too, or
** later rows would be written under a generation the table no longer has:
** the options and generation are read again, lazily, as FTS5 rereads its
** structure. SQLite calls xRollback/xRollbackTo after undoing the shadow
** tables, but running statements there is not safe, hence the flag. */
static int index_sync_config(IndexVtab *p)
{
    if (!p->bReloadConfig) return SQLITE_OK;
    char *zOld = p->zModel ? sqlite3_mprintf("%s", p->zModel) : 0;
    if (p->zModel && !zOld) return SQLITE_NOMEM;
    char *zErr = 0;
    int rc = index_load_config(p, &zErr);
    if (rc == SQLITE_OK) {
        if ((zOld == 0) != (p->zModel == 0) || (zOld && strcmp(zOld, p->zModel))) index_model_drop(p);
        p->bModelChecked = 0;
        p->bReloadConfig = 0;
    } else {
        vtab_set_error(&p->base, "%s", zErr ? zErr : sqlite3_errstr(rc));
    }
    sqlite3_free(zErr);
    sqlite3_free(zOld);
    return rc;
}

static char *index_prep_string(int bExif)
{
    return sqlite3_mprintf("prep%d exif=%d", INDEX_PREP_VERSION, bExif);
}

/* ------------------------------------------------------------------ the model */

static void index_model_drop(IndexVtab *p)
{
    if (p->pOwnState) ram_state_free(p->pOwnState);
    if (p->pEntry) ram__registry_release(p->pEntry);
    p->pOwnState = 0;
    p->pEntry = 0;
    p->pModel = 0;
    p->bModelChecked = 0;
}

/* The scratch state for the table's model: the connection's when it is the
** connection's current model (no second arena), else the table's own. */
static struct ram_state *index_state(IndexVtab *p)
{
    return p->pEntry == p->pConn->pEntry ? p->pConn->pState : p->pOwnState;
}

/* Acquires the table's model (the configured path through the registry, or
** the connection's current model) and a state for it. With bCheck, also
** requires that it is the model of the current generation: a different
** model file is refused rather than mixed. */
static int index_model(IndexVtab *p, int bCheck)
{
    char *zErr = 0;
    int rc;
    if (!p->zModel) {
        ram__conn_refresh(p->pConn);
        rc = ram__conn_model(p->pConn, "ram_index", &zErr);
        if (rc) {
            vtab_set_error(&p->base, "%s", zErr ? zErr : sqlite3_errstr(rc));
            sqlite3_free(zErr);
            return rc;
        }
        if (p->pEntry != p->pConn->pEntry) { /* ram_load() changed it */
            index_model_drop(p);
            ram__registry_addref(p->pConn->pEntry);
            p->pEntry = p->pConn->pEntry;
            p->pModel = p->pEntry->pModel;
        }
    } else {
        /* The table's own model file changed on disk (rewritten in place):
        ** map it again rather than fail every statement until reconnect. */
        struct ram_error e;
        if (p->pEntry && ram_model_check_file(p->pModel, &e) != RAM_OK) index_model_drop(p);
    }
    if (p->zModel && !p->pEntry) {
        if ((rc = ram__trust_check(p->pConn, p->zName, p->zModel, &zErr))) { /* model_trust.c */
            vtab_set_error(&p->base, "%s", zErr ? zErr : sqlite3_errstr(rc));
            sqlite3_free(zErr);
            return rc;
        }
        rc = ram__registry_acquire(p->zModel, RAM__VERIFY_ON_MAP, &p->pEntry, &zErr);
        if (rc) {
            vtab_set_error(&p->base, "ram_index: cannot load the model '%s': %s", p->zModel,
                           zErr ? zErr : sqlite3_errstr(rc));
            sqlite3_free(zErr);
            p->pEntry = 0;
            return rc;
        }
        p->pModel = p->pEntry->pModel;
    }
    if (p->pEntry != p->pConn->pEntry && !p->pOwnState) {
        struct ram_error err;
        ram_status st = ram_state_init(p->pModel, &p->pOwnState, &err);
        if (st) {
            vtab_set_error(&p->base, "ram_index: %s", err.msg);
            return ram__rc(st);
        }
        ram_state_set_abort(p->pOwnState, ram__conn_interrupted, p->pConn);
    }
    if (bCheck && !p->bModelChecked) {
        const struct ram_model_info *pI = &p->pEntry->info;
        if (strcmp(pI->digest, p->zGenDigest)) {
            if (p->zModel)
                vtab_set_error(&p->base,
                               "ram_index: the model file '%s' (digest %s) is not the one %s was built with "
                               "(digest %s); to switch, run INSERT INTO %s(%s) VALUES('model=%s')",
                               p->zModel, pI->digest, p->zName, p->zGenDigest, p->zName, p->zName, p->zModel);
            else
                vtab_set_error(&p->base,
                               "ram_index: the connection's model '%s' (digest %s) is not the one %s was built "
                               "with (digest %s); load that one, or run INSERT INTO %s(%s) VALUES('model') to "
                               "switch",
                               pI->path, pI->digest, p->zName, p->zGenDigest, p->zName, p->zName);
            return SQLITE_ERROR;
        }
        if (pI->n_image_tokens != p->nTok || pI->embed_dim != p->nDim || pI->num_class != p->nClass) {
            vtab_set_error(&p->base, "ram_index: the model's sizes do not match %s_config", p->zName);
            return SQLITE_CORRUPT_VTAB;
        }
        p->bModelChecked = 1;
    }
    return SQLITE_OK;
}

/* Refuses queries while images of another generation remain. */
static int index_check_stale(IndexVtab *p)
{
    sqlite3_stmt *pStmt;
    int rc = index_stmt(p, STMT_STALE_COUNT, &pStmt);
    if (rc) return rc;
    sqlite3_bind_int64(pStmt, 1, p->iGen);
    sqlite3_int64 n = sqlite3_step(pStmt) == SQLITE_ROW ? sqlite3_column_int64(pStmt, 0) : 0;
    rc = sqlite3_reset(pStmt);
    if (rc) return rc;
    if (n > 0) {
        vtab_set_error(&p->base,
                       "ram_index: %lld image%s in %s %s embedded with another model or preprocessing; "
                       "re-insert %s, or run INSERT INTO %s(%s) VALUES('reembed') or VALUES('delete-stale')",
                       n, n == 1 ? "" : "s", p->zName, n == 1 ? "was" : "were", n == 1 ? "it" : "them", p->zName,
                       p->zName);
        return SQLITE_ERROR;
    }
    return SQLITE_OK;
}

/* The thresholds that select tags, as ram_tags() applies them: the
** connection's effective ones (ram_set_threshold() over main.ram_thresholds
** over the model's) when the table's model is the connection's model; else
** the model's, with the overrides by name. Call after index_model(). */
static int index_thresholds(IndexVtab *p, const float **paOut)
{
    char *zErr = 0;
    if (p->pEntry == p->pConn->pEntry) {
        int rc = ram__thresholds(p->pConn, "ram_index", paOut, &zErr);
        if (rc) vtab_set_error(&p->base, "%s", zErr ? zErr : sqlite3_errstr(rc));
        sqlite3_free(zErr);
        return rc;
    }
    if (!p->aThresh) {
        p->aThresh = sqlite3_malloc64(sizeof(float) * (size_t)p->nClass);
        if (!p->aThresh) return SQLITE_NOMEM;
    }
    for (int c = 0; c < p->nClass; c++) {
        const char *z = ram_model_tag(p->pModel, c, RAM_LANG_EN);
        double dflt = ram_model_threshold(p->pModel, c);
        p->aThresh[c] = (float)(z ? ram__threshold_by_name(p->pConn, z, (int)strlen(z), dflt) : dflt);
    }
    *paOut = p->aThresh;
    return SQLITE_OK;
}

/* ------------------------------------------------------------------ embeddings */

/* Everything the index stores for one image (buffers are sqlite3_malloc'd
** unless borrowed from the vtab's scratch, see bBorrowed). */
typedef struct IndexEmbedding {
    const unsigned char *aTokens; int nTokens;
    unsigned char *aUnit; int nUnit;
    unsigned char *aProbs; int nProbs; /* version byte + 3 zero bytes + (u16 class, f32 prob) entries */
    void *pOwnTokens;                  /* sqlite3_free: tokens when not the vtab's scratch */
} IndexEmbedding;

static void embedding_clear(IndexEmbedding *e)
{
    sqlite3_free(e->aUnit), sqlite3_free(e->aProbs);
    sqlite3_free(e->pOwnTokens);
    memset(e, 0, sizeof *e);
}

static void put_u16(unsigned char *a, unsigned v) { a[0] = (unsigned char)v, a[1] = (unsigned char)(v >> 8); }
static unsigned get_u16(const unsigned char *a) { return a[0] | (unsigned)a[1] << 8; }
static void put_f32(unsigned char *a, float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    for (int i = 0; i < 4; i++) a[i] = (unsigned char)(u >> (8 * i));
}
static float get_f32(const unsigned char *a)
{
    uint32_t u = a[0] | (uint32_t)a[1] << 8 | (uint32_t)a[2] << 16 | (uint32_t)a[3] << 24;
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* Postings store a probability as the bit pattern of its float32, a 4-byte
** INTEGER instead of an 8-byte REAL (4 bytes less per posting, exact): for
** p >= 0 the patterns sort as the values do. */
static sqlite3_int64 prob_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return (sqlite3_int64)u;
}
static double bits_prob(sqlite3_int64 b)
{
    uint32_t u = (uint32_t)b;
    float f;
    memcpy(&f, &u, 4);
    return (double)f;
}

/* The least pattern b with: p > x (bGE: p >= x) <=> bits(p) >= b, for
** every float p >= 0. */
static sqlite3_int64 bound_bits(double x, int bGE)
{
    if (isnan(x) || x > FLT_MAX) return INT64_MAX; /* nothing qualifies */
    if (x < 0 || (bGE && x == 0)) return 0;        /* everything */
    float f = (float)x;
    if (bGE) {
        if ((double)f < x) f = nextafterf(f, INFINITY); /* the least float >= x */
        return prob_bits(f);
    }
    if ((double)f > x) f = nextafterf(f, -INFINITY); /* the largest float <= x */
    return prob_bits(f) + 1;
}

/* Checks a stored probs blob; returns its entry count or -1. */
static int probs_count(const unsigned char *a, int n, int nClass)
{
    if (!a || n < 4 || a[0] != INDEX_PROBS_VERSION || (n - 4) % 6) return -1;
    int cnt = (n - 4) / 6, prev = -1;
    for (int i = 0; i < cnt; i++) {
        int c = (int)get_u16(a + 4 + 6 * i);
        if (c <= prev || c >= nClass) return -1;
        prev = c;
    }
    return cnt;
}

/* Builds the stored form from fp32 image embeddings and probabilities. */
static int embedding_build(IndexVtab *p, const float *aEmb, const float *aProb, IndexEmbedding *e)
{
    struct ram_error err;
    memset(e, 0, sizeof *e);
    size_t nTok = ram_cache_packed_size(p->nTok, p->nDim);
    if (ram_cache_pack(aEmb, p->nTok, p->nDim, p->aTokBlob, nTok, &err)) {
        vtab_set_error(&p->base, "ram_index: %s", err.msg);
        return SQLITE_ERROR;
    }
    e->aTokens = p->aTokBlob;
    e->nTokens = (int)nTok;
    e->nUnit = (int)ram_cache_unit_size(p->nDim);
    e->aUnit = sqlite3_malloc(e->nUnit);
    int nKeep = 0;
    for (int c = 0; c < p->nClass; c++) nKeep += aProb[c] >= p->rFloor;
    e->nProbs = 4 + 6 * nKeep;
    e->aProbs = sqlite3_malloc(e->nProbs);
    if (!e->aUnit || !e->aProbs) goto nomem;
    ram_cache_pack_unit(aEmb, p->nDim, e->aUnit, (size_t)e->nUnit, &err);
    memset(e->aProbs, 0, 4);
    e->aProbs[0] = INDEX_PROBS_VERSION;
    for (int c = 0, i = 0; c < p->nClass; c++)
        if (aProb[c] >= p->rFloor) {
            put_u16(e->aProbs + 4 + 6 * i, (unsigned)c);
            put_f32(e->aProbs + 4 + 6 * i + 2, aProb[c]);
            i++;
        }
    return SQLITE_OK;
nomem:
    embedding_clear(e);
    return SQLITE_NOMEM;
}

/* ------------------------------------------------------------------ resume journal */

static int journal_open(IndexVtab *p)
{
    if (p->dbJournal) return SQLITE_OK;
    const char *zFile = sqlite3_db_filename(p->db, p->zDb);
    if (!zFile || !zFile[0]) return SQLITE_OK; /* memory or temp database: nothing to resume */
    char *zPath = sqlite3_mprintf("%s-ramjournal", zFile);
    if (!zPath) return SQLITE_NOMEM;
    int rc = sqlite3_open_v2(zPath, &p->dbJournal, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             0);
    sqlite3_free(zPath);
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(p->dbJournal, 5000);
        rc = sqlite3_exec(p->dbJournal,
                          "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                          "CREATE TABLE IF NOT EXISTS journal(tbl TEXT, key BLOB, digest TEXT, prep TEXT, "
                          "probs BLOB, unit BLOB, tokens BLOB, "
                          "PRIMARY KEY(tbl, key, digest, prep)) WITHOUT ROWID",
                          0, 0, 0);
    }
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(p->dbJournal,
                                "SELECT probs, unit, tokens FROM journal WHERE tbl = ?1 AND key = ?2 "
                                "AND digest = ?3 AND prep = ?4",
                                -1, &p->pJrnGet, 0);
    if (rc == SQLITE_OK)
        rc = sqlite3_prepare_v2(p->dbJournal,
                                "INSERT OR REPLACE INTO journal VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)", -1,
                                &p->pJrnPut, 0);
    if (rc) {
        /* The journal is an optimisation: without it, indexing still works. */
        sqlite3_finalize(p->pJrnGet), sqlite3_finalize(p->pJrnPut);
        sqlite3_close(p->dbJournal);
        p->pJrnGet = p->pJrnPut = 0;
        p->dbJournal = 0;
        p->bResume = 0;
    }
    return SQLITE_OK;
}

static void journal_close(IndexVtab *p)
{
    if (!p->dbJournal) return;
    if (p->nJrnPending) sqlite3_exec(p->dbJournal, "COMMIT", 0, 0, 0);
    sqlite3_finalize(p->pJrnGet), sqlite3_finalize(p->pJrnPut);
    sqlite3_close(p->dbJournal);
    p->dbJournal = 0;
    p->pJrnGet = p->pJrnPut = 0;
    p->nJrnPending = 0;
}

/* Looks key up in the journal; on a hit e owns copies of the stored parts. */
static int journal_get(IndexVtab *p, const unsigned char *aKey, IndexEmbedding *e)
{
    if (!p->bResume || !p->bInWrite) return 0;
    journal_open(p);
    if (!p->dbJournal) return 0;
    sqlite3_stmt *s = p->pJrnGet;
    sqlite3_bind_text(s, 1, p->zName, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, aKey, 16, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, p->zGenDigest, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, p->zGenPrep, -1, SQLITE_STATIC);
    int hit = 0;
    memset(e, 0, sizeof *e);
    if (sqlite3_step(s) == SQLITE_ROW) {
        struct ram_cache_tokens v;
        struct ram_error err;
        int nTok = sqlite3_column_bytes(s, 2), nProbs = sqlite3_column_bytes(s, 0);
        const void *aTok = sqlite3_column_blob(s, 2);
        if (aTok && ram_cache_view(aTok, (size_t)nTok, p->nTok, p->nDim, &v, &err) == RAM_OK &&
            probs_count(sqlite3_column_blob(s, 0), nProbs, p->nClass) >= 0 &&
            sqlite3_column_bytes(s, 1) == (int)ram_cache_unit_size(p->nDim)) {
            e->nTokens = nTok;
            e->pOwnTokens = sqlite3_malloc(nTok);
            e->nProbs = nProbs;
            e->aProbs = sqlite3_malloc(nProbs);
            e->nUnit = sqlite3_column_bytes(s, 1);
            e->aUnit = sqlite3_malloc(e->nUnit);
            if (e->pOwnTokens && e->aProbs && e->aUnit) {
                memcpy(e->pOwnTokens, aTok, (size_t)nTok);
                e->aTokens = e->pOwnTokens;
                memcpy(e->aProbs, sqlite3_column_blob(s, 0), (size_t)nProbs);
                memcpy(e->aUnit, sqlite3_column_blob(s, 1), (size_t)e->nUnit);
                hit = 1;
            } else {
                embedding_clear(e);
            }
        }
    }
    sqlite3_reset(s);
    return hit;
}

static void journal_commit(IndexVtab *p)
{
    if (p->dbJournal && p->nJrnPending) {
        sqlite3_exec(p->dbJournal, "COMMIT", 0, 0, 0);
        p->nJrnPending = 0;
    }
}

/* Records a freshly computed embedding; commits every few images. */
static void journal_put(IndexVtab *p, const unsigned char *aKey, const IndexEmbedding *e)
{
    if (!p->bResume || !p->bInWrite) return;
    journal_open(p);
    if (!p->dbJournal) return;
    if (p->nJrnPending == 0) {
        if (sqlite3_exec(p->dbJournal, "BEGIN", 0, 0, 0)) return;
        p->tJrnBegin = time(0);
    }
    sqlite3_stmt *s = p->pJrnPut;
    sqlite3_bind_text(s, 1, p->zName, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 2, aKey, 16, SQLITE_STATIC);
    sqlite3_bind_text(s, 3, p->zGenDigest, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 4, p->zGenPrep, -1, SQLITE_STATIC);
    sqlite3_bind_blob(s, 5, e->aProbs, e->nProbs, SQLITE_STATIC);
    sqlite3_bind_blob(s, 6, e->aUnit, e->nUnit, SQLITE_STATIC);
    sqlite3_bind_blob(s, 7, e->aTokens, e->nTokens, SQLITE_STATIC);
    sqlite3_step(s);
    sqlite3_reset(s);
    p->nJrnPending++;
    if (p->nJrnPending >= INDEX_JOURNAL_EVERY || time(0) - p->tJrnBegin >= 2) journal_commit(p);
}

/* Remembers that key's embedding went into the open transaction. */
static void journal_note(IndexVtab *p, const unsigned char *aKey)
{
    if (!p->dbJournal) return;
    if (p->nTxnKey == p->nTxnKeyAlloc) {
        int nNew = p->nTxnKeyAlloc ? 2 * p->nTxnKeyAlloc : 64;
        unsigned char *a = sqlite3_realloc64(p->aTxnKey, (size_t)nNew * 16);
        if (!a) return; /* the entry merely stays in the journal */
        p->aTxnKey = a, p->nTxnKeyAlloc = nNew;
    }
    memcpy(p->aTxnKey + 16 * (size_t)p->nTxnKey++, aKey, 16);
}

/* After the main transaction committed, its embeddings are durable there:
** their journal entries go. Entries of rolled-back work stay for a rerun. */
static void journal_forget(IndexVtab *p)
{
    if (!p->dbJournal) {
        p->nTxnKey = 0;
        return;
    }
    journal_commit(p);
    sqlite3_stmt *s = 0;
    if (p->nTxnKey && sqlite3_exec(p->dbJournal, "BEGIN", 0, 0, 0) == SQLITE_OK) {
        if (sqlite3_prepare_v2(p->dbJournal, "DELETE FROM journal WHERE tbl = ?1 AND key = ?2", -1, &s, 0) ==
            SQLITE_OK) {
            sqlite3_bind_text(s, 1, p->zName, -1, SQLITE_STATIC);
            for (int i = 0; i < p->nTxnKey; i++) {
                sqlite3_bind_blob(s, 2, p->aTxnKey + 16 * (size_t)i, 16, SQLITE_STATIC);
                sqlite3_step(s);
                sqlite3_reset(s);
            }
        }
        sqlite3_finalize(s);
        sqlite3_exec(p->dbJournal, "COMMIT", 0, 0, 0);
    }
    p->nTxnKey = 0;
}

/* DROP TABLE: every entry of the table goes. */
static void journal_drop(IndexVtab *p)
{
    journal_open(p);
    if (!p->dbJournal) return;
    journal_commit(p);
    char *zSql = sqlite3_mprintf("DELETE FROM journal WHERE tbl = %Q", p->zName);
    if (zSql) sqlite3_exec(p->dbJournal, zSql, 0, 0, 0);
    sqlite3_free(zSql);
}

/* ------------------------------------------------------------------ image entries */

/* Runs the model on one encoded image (or finds it in the journal). */
static int index_embed(IndexVtab *p, const unsigned char *aKey, const void *pBlob, int nBlob, IndexEmbedding *e)
{
    if (journal_get(p, aKey, e)) {
        STAT_ADD(journal_hits, 1);
        return SQLITE_OK;
    }
    struct ram_error err;
    struct ram_image_params ip = ram_image_default_params();
    ip.exif_rotate = p->bExif;
    ip.max_pixels = (uint64_t)p->pConn->mxPixels;
    ram_status st = ram_tag_image(index_state(p), pBlob, (size_t)nBlob, &ip, p->aEmbeds, p->aProbs, &err);
    if (st == RAM_ERR_INTERRUPTED) {
        vtab_set_error(&p->base, "interrupted");
        return SQLITE_INTERRUPT;
    }
    if (st) {
        vtab_set_error(&p->base, "ram_index: %s", err.msg);
        return st == RAM_ERR_NOMEM ? SQLITE_NOMEM : st == RAM_ERR_TOO_BIG ? SQLITE_TOOBIG : SQLITE_ERROR;
    }
    STAT_ADD(inferences, 1);
    int rc = embedding_build(p, p->aEmbeds, p->aProbs, e);
    if (rc == SQLITE_OK) journal_put(p, aKey, e);
    return rc;
}

/* Postings of an image: inserted from (or deleted along) its probs blob. */
static int index_postings(IndexVtab *p, sqlite3_int64 img, const unsigned char *aProbs, int nProbs, int bInsert)
{
    int cnt = probs_count(aProbs, nProbs, p->nClass);
    if (cnt < 0 && !bInsert) {
        /* A damaged row must still be deletable: drop its postings by image
        ** (a scan of the postings, for this rare case only). */
        return index_exec(p->db, &p->base.zErrMsg, "DELETE FROM \"%w\".\"%w_postings\" WHERE img = %lld", p->zDb,
                          p->zName, img);
    }
    if (cnt < 0) {
        vtab_set_error(&p->base, "ram_index: image %lld has a malformed probs blob", img);
        return SQLITE_CORRUPT_VTAB;
    }
    for (int i = 0; i < cnt; i++) {
        sqlite3_stmt *s;
        int rc = index_stmt(p, bInsert ? STMT_POSTING_INSERT : STMT_POSTING_DELETE, &s);
        if (rc) return rc;
        sqlite3_bind_int(s, 1, (int)get_u16(aProbs + 4 + 6 * i));
        sqlite3_bind_int64(s, 2, img);
        if (bInsert) sqlite3_bind_int64(s, 3, prob_bits(get_f32(aProbs + 4 + 6 * i + 2)));
        rc = index_step_done(p, s);
        if (rc) return rc;
    }
    return SQLITE_OK;
}

/* Deletes the postings of image img as recorded in its current probs blob. */
static int index_postings_drop(IndexVtab *p, sqlite3_int64 img)
{
    sqlite3_stmt *s;
    int rc = index_stmt(p, STMT_IMAGE_PROBS, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, img);
    if (sqlite3_step(s) != SQLITE_ROW) return sqlite3_reset(s);
    int n = sqlite3_column_bytes(s, 0);
    unsigned char *a = sqlite3_malloc(n ? n : 1);
    if (!a) return sqlite3_reset(s), SQLITE_NOMEM;
    if (n) memcpy(a, sqlite3_column_blob(s, 0), (size_t)n);
    sqlite3_reset(s);
    rc = index_postings(p, img, a, n, 0);
    sqlite3_free(a);
    return rc;
}

/* Writes e for a new image (iImg 0: INSERT, *pImg receives the id) or over a
** stale one (iImg > 0). */
static int index_write_image(IndexVtab *p, sqlite3_int64 iImg, const unsigned char *aKey, const IndexEmbedding *e,
                             const void *pBlob, int nBlob, sqlite3_int64 *pImg)
{
    sqlite3_stmt *s;
    int rc;
    if (iImg) {
        rc = index_postings_drop(p, iImg);
        if (rc) return rc;
        rc = index_stmt(p, STMT_IMAGE_REWRITE, &s);
        if (rc) return rc;
        sqlite3_bind_int64(s, 1, iImg);
    } else {
        rc = index_stmt(p, STMT_IMAGE_INSERT, &s);
        if (rc) return rc;
        sqlite3_bind_blob(s, 1, aKey, 16, SQLITE_STATIC);
    }
    sqlite3_bind_int64(s, 2, p->iGen);
    sqlite3_bind_blob(s, 5, e->aProbs, e->nProbs, SQLITE_STATIC);
    rc = index_step_done(p, s);
    if (rc) return rc;
    if (!iImg) iImg = sqlite3_last_insert_rowid(p->db);
    /* Tokens in their own table: a ~75 KB row keeps a ~1.2 KB part on its
    ** b-tree page, so three share a page (with the small columns beside
    ** them, one row per page and ~2 KB lost per image). */
    rc = index_stmt(p, STMT_TOKENS_UPSERT, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, iImg);
    sqlite3_bind_blob(s, 2, e->aTokens, e->nTokens, SQLITE_STATIC);
    rc = index_step_done(p, s);
    if (rc) return rc;
    journal_note(p, aKey);
    rc = index_postings(p, iImg, e->aProbs, e->nProbs, 1);
    if (rc) return rc;
    rc = index_stmt(p, STMT_CLS_UPSERT, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, iImg);
    sqlite3_bind_blob(s, 2, e->aUnit, e->nUnit, SQLITE_STATIC);
    rc = index_step_done(p, s);
    if (rc) return rc;
    if (p->bStore && pBlob) {
        rc = index_stmt(p, STMT_BLOB_UPSERT, &s);
        if (rc) return rc;
        sqlite3_bind_int64(s, 1, iImg);
        sqlite3_bind_blob(s, 2, pBlob, nBlob, SQLITE_STATIC);
        rc = index_step_done(p, s);
        if (rc) return rc;
    }
    *pImg = iImg;
    return SQLITE_OK;
}

/* Adds delta to an image's reference count; at zero the image goes. */
static int index_image_ref(IndexVtab *p, sqlite3_int64 img, int delta)
{
    sqlite3_stmt *s;
    int rc = index_stmt(p, STMT_IMAGE_REF, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, img);
    sqlite3_bind_int(s, 2, delta);
    sqlite3_int64 nref = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    rc = index_step_done(p, s);
    if (rc) return rc;
    if (nref > 0) return SQLITE_OK;
    if (nref < 0) {
        vtab_set_error(&p->base, "ram_index: a file points to missing image %lld", img);
        return SQLITE_CORRUPT_VTAB;
    }
    rc = index_postings_drop(p, img);
    static const int aDel[] = {STMT_CLS_DELETE, STMT_BLOB_DELETE, STMT_TOKENS_DELETE, STMT_IMAGE_DELETE};
    for (int i = 0; i < 4 && rc == SQLITE_OK; i++) {
        rc = index_stmt(p, aDel[i], &s);
        if (rc) break;
        sqlite3_bind_int64(s, 1, img);
        rc = index_step_done(p, s);
    }
    return rc;
}

/* The image entry for these bytes: an existing current one gains a reference,
** a stale one is re-embedded in place, a new one is embedded. */
static int index_acquire_image(IndexVtab *p, const unsigned char *aKey, const void *pBlob, int nBlob,
                               sqlite3_int64 *pImg)
{
    sqlite3_stmt *s;
    int rc = index_stmt(p, STMT_IMAGE_BY_KEY, &s);
    if (rc) return rc;
    sqlite3_bind_blob(s, 1, aKey, 16, SQLITE_STATIC);
    sqlite3_int64 img = 0, gen = 0;
    if (sqlite3_step(s) == SQLITE_ROW) {
        img = sqlite3_column_int64(s, 0);
        gen = sqlite3_column_int64(s, 1);
    }
    rc = sqlite3_reset(s);
    if (rc) return rc;
    if (img && gen == p->iGen) {
        STAT_ADD(reused, 1);
        *pImg = img;
        return index_image_ref(p, img, 1);
    }
    IndexEmbedding e;
    rc = index_embed(p, aKey, pBlob, nBlob, &e);
    if (rc) return rc;
    rc = index_write_image(p, img, aKey, &e, pBlob, nBlob, pImg);
    embedding_clear(&e);
    if (rc == SQLITE_OK && img) rc = index_image_ref(p, img, 1);
    return rc;
}

static void index_hash(const void *pBlob, int nBlob, unsigned char aKey[16])
{
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(pBlob, (size_t)nBlob));
    memcpy(aKey, c.digest, 16);
    STAT_ADD(hashed, 1);
}

/* ------------------------------------------------------------------ open-set queries */

/* CLIP embeddings (L2-normalised) of the texts with the table's model: the
** extension's cached path when it is the connection's model, else the same
** steps (and the same text-cache key) with the table's own state. */
static int index_encode_texts(IndexVtab *p, const struct ram_texts *pT, float *aOut)
{
    char *zErr = 0;
    int rc;
    if (!p->pEntry->info.has_text_encoder) {
        vtab_set_error(&p->base, "ram_index: MATCH needs a model with a CLIP text encoder (convert it with "
                                 "ram-convert --clip ...)");
        return SQLITE_ERROR;
    }
    if (p->pEntry == p->pConn->pEntry) {
        rc = ram__encode_texts(p->pConn, "ram_index", pT, aOut, &zErr);
        if (rc) vtab_set_error(&p->base, "%s", zErr ? zErr : sqlite3_errstr(rc));
        sqlite3_free(zErr);
        return rc;
    }
    const struct ram_model_info *pI = &p->pEntry->info;
    XXH3_state_t st;
    XXH3_128bits_reset(&st);
    XXH3_128bits_update(&st, pI->digest, strlen(pI->digest));
    for (int i = 0; i < pT->n; i++) {
        uint64_t n = (uint64_t)pT->an[i];
        XXH3_128bits_update(&st, &n, sizeof n);
        XXH3_128bits_update(&st, pT->az[i], (size_t)pT->an[i]);
    }
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits_digest(&st));
    if (ram__txtcache_get(c.digest, aOut, (size_t)pT->n * (size_t)p->nDim)) return SQLITE_OK;
    for (int i = 0; i < pT->n; i++) {
        int32_t aId[RAM_CLIP_CONTEXT];
        int nId = 0;
        struct ram_error err;
        if (ram__conn_interrupted(p->pConn)) { /* as ram__encode_texts: poll between descriptions */
            vtab_set_error(&p->base, "interrupted");
            return SQLITE_INTERRUPT;
        }
        ram_status s = ram_tokenize(p->pModel, pT->az[i], (size_t)pT->an[i], aId, &nId, &err);
        if (!s) s = ram_encode_text(p->pOwnState, aId, nId, aOut + (size_t)i * p->nDim, &err);
        if (s) {
            if (s == RAM_ERR_INTERRUPTED) vtab_set_error(&p->base, "interrupted");
            else vtab_set_error(&p->base, "ram_index: MATCH: %s", err.msg);
            return ram__rc(s);
        }
        ram_l2_normalize(aOut + (size_t)i * p->nDim, p->nDim);
    }
    ram__txtcache_put(c.digest, aOut, (size_t)pT->n * (size_t)p->nDim);
    return SQLITE_OK;
}

/* Label rows of a MATCH argument, read as ram_score() reads its second
** argument: a text is one description, a JSON array of strings the
** descriptions of one concept (weighed by each image's CLS, as RAM++ does).
** *paRow (sqlite3_free) receives *pnRow L2-normalised rows. */
static int index_label_embed(IndexVtab *p, sqlite3_value *pVal, float **paRow, int *pnRow)
{
    const char *z = (const char *)sqlite3_value_text(pVal);
    int n = sqlite3_value_bytes(pVal), bList = 0, rc;
    struct ram_texts list;
    char *zErr = 0;
    *paRow = 0;
    *pnRow = 0;
    memset(&list, 0, sizeof list);
    if (sqlite3_value_type(pVal) != SQLITE_TEXT || !z || !n) {
        if (sqlite3_value_type(pVal) == SQLITE_TEXT && !z) return SQLITE_NOMEM;
        vtab_set_error(&p->base, "ram_index: MATCH needs a text or a JSON array of texts");
        return SQLITE_ERROR;
    }
    if (n > RAM_MAX_TEXT) {
        vtab_set_error(&p->base, "ram_index: MATCH text is too long (%d bytes; the limit is %d)", n, RAM_MAX_TEXT);
        return SQLITE_TOOBIG;
    }
    rc = ram__parse_text_list(z, n, "ram_index: MATCH", &bList, &list, &zErr);
    if (rc) {
        if (zErr) vtab_set_error(&p->base, "%s", zErr);
        sqlite3_free(zErr);
        return rc;
    }
    const char *zOne = z;
    int nOne = n;
    struct ram_texts one = {&zOne, &nOne, 1};
    const struct ram_texts *pT = bList ? &list : &one;
    float *aRow = sqlite3_malloc64(sizeof(float) * (size_t)p->nDim * (size_t)pT->n);
    if (!aRow) {
        ram__texts_free(&list);
        return SQLITE_NOMEM;
    }
    rc = index_encode_texts(p, pT, aRow);
    if (rc) {
        sqlite3_free(aRow);
    } else {
        *paRow = aRow;
        *pnRow = pT->n;
    }
    ram__texts_free(&list);
    return rc;
}

/* Higher score first; ties by image id, so results are deterministic. */
static int hit_better(const IndexHit *a, const IndexHit *b)
{
    return a->score > b->score || (a->score == b->score && a->img < b->img);
}
static int hit_cmp(const void *a, const void *b)
{
    const IndexHit *x = a, *y = b;
    return hit_better(x, y) ? -1 : hit_better(y, x) ? 1 : 0;
}

/* A bounded min-heap of the best hits (cap 0: unbounded, no heap order). */
typedef struct HitSet {
    IndexHit *a;
    int n, nAlloc, cap;
} HitSet;

static void heap_sift_down(IndexHit *a, int n, int i)
{
    for (;;) {
        int w = i, l = 2 * i + 1, r = l + 1;
        if (l < n && hit_better(&a[w], &a[l])) w = l;
        if (r < n && hit_better(&a[w], &a[r])) w = r;
        if (w == i) return;
        IndexHit t = a[i];
        a[i] = a[w], a[w] = t, i = w;
    }
}

static int hitset_add(HitSet *h, sqlite3_int64 img, float score)
{
    IndexHit x = {img, score};
    if (h->cap && h->n == h->cap) {
        if (!hit_better(&x, &h->a[0])) return SQLITE_OK; /* worse than the worst kept */
        h->a[0] = x;
        heap_sift_down(h->a, h->n, 0);
        return SQLITE_OK;
    }
    if (h->n == h->nAlloc) {
        int nNew = h->nAlloc ? 2 * h->nAlloc : 64;
        IndexHit *aNew = sqlite3_realloc64(h->a, sizeof(IndexHit) * (size_t)nNew);
        if (!aNew) return SQLITE_NOMEM;
        h->a = aNew, h->nAlloc = nNew;
    }
    int i = h->n++;
    h->a[i] = x;
    if (h->cap) /* sift up: parents are the worse ones */
        while (i > 0 && hit_better(&h->a[(i - 1) / 2], &h->a[i])) {
            IndexHit t = h->a[i];
            h->a[i] = h->a[(i - 1) / 2], h->a[(i - 1) / 2] = t, i = (i - 1) / 2;
        }
    return SQLITE_OK;
}

/* Exact scoring of a batch of token blobs (copies in aBuf). */
static int score_batch(IndexVtab *p, struct ram_cache_query *q, unsigned char *aBuf, const sqlite3_int64 *aImg,
                       int n, HitSet *h)
{
    struct ram_cache_tokens v[INDEX_BATCH];
    float aScore[INDEX_BATCH];
    struct ram_error err;
    size_t nb = ram_cache_packed_size(p->nTok, p->nDim);
    for (int i = 0; i < n; i++)
        if (ram_cache_view(aBuf + nb * (size_t)i, nb, p->nTok, p->nDim, &v[i], &err)) {
            vtab_set_error(&p->base, "ram_index: image %lld: %s", aImg[i], err.msg);
            return SQLITE_CORRUPT_VTAB;
        }
    if (ram_cache_score(q, v, n, aScore, &err)) {
        vtab_set_error(&p->base, "ram_index: %s", err.msg);
        return SQLITE_ERROR;
    }
    STAT_ADD(images_scored, n);
    for (int i = 0; i < n; i++) {
        int rc = hitset_add(h, aImg[i], aScore[i]);
        if (rc) return rc;
    }
    return SQLITE_OK;
}

/* The images in which class iTag is selected (probability over thr) as
** candidates of a MATCH; with nPre > 0, only the nPre with the largest CLS
** cosine among them. */
static int tag_candidates(IndexVtab *p, struct ram_cache_query *q, int iTag, double thr, sqlite3_int64 nPre,
                          HitSet *pre)
{
    sqlite3_stmt *s = 0, *c = 0;
    char *zSql = sqlite3_mprintf("SELECT img FROM \"%w\".\"%w_postings\" WHERE tag = ?1 AND score >= ?2", p->zDb,
                                 p->zName);
    int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc == SQLITE_OK && nPre > 0) {
        zSql = sqlite3_mprintf("SELECT v FROM \"%w\".\"%w_cls\" WHERE id = ?1", p->zDb, p->zName);
        rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &c, 0) : SQLITE_NOMEM;
        sqlite3_free(zSql);
        pre->cap = nPre < 0x7fffffff ? (int)nPre : 0x7fffffff;
    }
    if (rc == SQLITE_OK) {
        sqlite3_bind_int(s, 1, iTag);
        sqlite3_bind_int64(s, 2, bound_bits(thr, 0));
    }
    while (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
        sqlite3_int64 img = sqlite3_column_int64(s, 0);
        float cos = 0;
        STAT_ADD(postings_read, 1);
        if (c) {
            sqlite3_bind_int64(c, 1, img);
            if (sqlite3_step(c) == SQLITE_ROW)
                cos = ram_cache_prefilter(q, sqlite3_column_blob(c, 0), (size_t)sqlite3_column_bytes(c, 0));
            sqlite3_reset(c);
        }
        rc = hitset_add(pre, img, cos);
    }
    int rc2 = sqlite3_finalize(s);
    sqlite3_finalize(c);
    if (rc == SQLITE_OK && rc2) vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
    return rc ? rc : rc2;
}

/* Ranks the images for a MATCH: *paHit (sqlite3_free) best first. iTag >= 0
** restricts it to the images where that tag is selected (thr). */
static int index_match(IndexVtab *p, sqlite3_value *pMatch, sqlite3_int64 k, sqlite3_int64 nPre, int iTag,
                       double thr, IndexHit **paHit, int *pnHit)
{
    float *aRow = 0;
    int nRow = 0, rc;
    struct ram_cache_query *q = 0;
    struct ram_error err;
    sqlite3_stmt *pScan = 0;
    unsigned char *aBuf = 0;
    sqlite3_int64 *aCand = 0;
    HitSet pre = {0}, res = {0};
    *paHit = 0;
    *pnHit = 0;

    rc = index_model(p, 1);
    if (rc) return rc;
    rc = index_check_stale(p);
    if (rc) return rc;
    rc = index_label_embed(p, pMatch, &aRow, &nRow);
    if (rc) return rc;
    if (ram_cache_query_init(p->pModel, aRow, 1, nRow, INDEX_BATCH, &q, &err)) {
        vtab_set_error(&p->base, "ram_index: MATCH: %s", err.msg);
        rc = SQLITE_ERROR;
        goto done;
    }
    size_t nb = ram_cache_packed_size(p->nTok, p->nDim);
    aBuf = sqlite3_malloc64(nb * INDEX_BATCH);
    if (!aBuf) goto nomem;
    res.cap = k > 0 && k < 0x7fffffff ? (int)k : 0;
    sqlite3_int64 aImg[INDEX_BATCH];
    int nBatch = 0;

    if (iTag >= 0) {
        rc = tag_candidates(p, q, iTag, thr, nPre, &pre);
        if (rc) goto done;
    } else if (nPre > 0) {
        /* Cosine prefilter over the compact photos_cls table. */
        pre.cap = nPre < 0x7fffffff ? (int)nPre : 0x7fffffff;
        char *zSql = sqlite3_mprintf("SELECT id, v FROM \"%w\".\"%w_cls\"", p->zDb, p->zName);
        rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &pScan, 0) : SQLITE_NOMEM;
        sqlite3_free(zSql);
        sqlite3_int64 nScan = 0;
        while (rc == SQLITE_OK && sqlite3_step(pScan) == SQLITE_ROW) {
            if ((size_t)sqlite3_column_bytes(pScan, 1) != ram_cache_unit_size(p->nDim)) {
                /* a damaged row must not silently drop out of the results */
                vtab_set_error(&p->base, "ram_index: image %lld has a malformed prefilter vector (run "
                               "integrity-check)", sqlite3_column_int64(pScan, 0));
                rc = SQLITE_CORRUPT_VTAB;
                break;
            }
            float c = ram_cache_prefilter(q, sqlite3_column_blob(pScan, 1), (size_t)sqlite3_column_bytes(pScan, 1));
            rc = hitset_add(&pre, sqlite3_column_int64(pScan, 0), c);
            if ((++nScan & 4095) == 0 && index_interrupted(p)) rc = SQLITE_INTERRUPT;
        }
        STAT_ADD(prefilter_scanned, nScan);
        if (rc == SQLITE_OK) rc = sqlite3_finalize(pScan);
        else sqlite3_finalize(pScan);
        pScan = 0;
        if (rc) goto done;
    }
    if (iTag >= 0 || nPre > 0) {
        sqlite3_stmt *pTok;
        for (int i = 0; i < pre.n && rc == SQLITE_OK; i++) {
            rc = index_stmt(p, STMT_TOKENS, &pTok);
            if (rc) break;
            sqlite3_bind_int64(pTok, 1, pre.a[i].img);
            if (sqlite3_step(pTok) == SQLITE_ROW && (size_t)sqlite3_column_bytes(pTok, 0) == nb) {
                memcpy(aBuf + nb * (size_t)nBatch, sqlite3_column_blob(pTok, 0), nb);
                aImg[nBatch++] = pre.a[i].img;
            } else {
                vtab_set_error(&p->base, "ram_index: image %lld has no valid tokens", pre.a[i].img);
                rc = SQLITE_CORRUPT_VTAB;
            }
            sqlite3_reset(pTok);
            if (rc == SQLITE_OK && nBatch == INDEX_BATCH) {
                rc = score_batch(p, q, aBuf, aImg, nBatch, &res);
                nBatch = 0;
                if (rc == SQLITE_OK && index_interrupted(p)) rc = SQLITE_INTERRUPT;
            }
        }
    } else {
        char *zSql = sqlite3_mprintf("SELECT id, tokens FROM \"%w\".\"%w_tokens\"", p->zDb, p->zName);
        rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &pScan, 0) : SQLITE_NOMEM;
        sqlite3_free(zSql);
        while (rc == SQLITE_OK && sqlite3_step(pScan) == SQLITE_ROW) {
            sqlite3_int64 img = sqlite3_column_int64(pScan, 0);
            if ((size_t)sqlite3_column_bytes(pScan, 1) != nb) {
                vtab_set_error(&p->base, "ram_index: image %lld has no valid tokens", img);
                rc = SQLITE_CORRUPT_VTAB;
                break;
            }
            memcpy(aBuf + nb * (size_t)nBatch, sqlite3_column_blob(pScan, 1), nb);
            aImg[nBatch++] = img;
            if (nBatch == INDEX_BATCH) {
                rc = score_batch(p, q, aBuf, aImg, nBatch, &res);
                nBatch = 0;
                if (rc == SQLITE_OK && index_interrupted(p)) rc = SQLITE_INTERRUPT;
            }
        }
        if (rc == SQLITE_OK) rc = sqlite3_finalize(pScan);
        else sqlite3_finalize(pScan);
        pScan = 0;
    }
    if (rc == SQLITE_OK && nBatch) rc = score_batch(p, q, aBuf, aImg, nBatch, &res);
    if (rc == SQLITE_INTERRUPT) vtab_set_error(&p->base, "interrupted");
    if (rc) goto done;
    /* res.a is NULL when no image matched (an empty table): qsort(NULL, 0) is UB. */
    if (res.n > 1) qsort(res.a, (size_t)res.n, sizeof(IndexHit), hit_cmp);
    *paHit = res.a;
    *pnHit = res.n;
    res.a = 0;
    goto done;
nomem:
    rc = SQLITE_NOMEM;
done:
    sqlite3_finalize(pScan);
    ram_cache_query_free(q);
    sqlite3_free(aRow);
    sqlite3_free(aBuf);
    sqlite3_free(aCand);
    sqlite3_free(pre.a);
    sqlite3_free(res.a);
    return rc;
}

/* For ram_score(): the open-set probability of an image blob that a
** ram_index table of the main schema already holds with the connection's
** model and preprocessing, from its cached tokens, computed as MATCH does.
** *pbFound = 0 (and SQLITE_OK) when no table holds it: the caller runs the
** model. aLabel: nDes L2-normalised description rows of one concept. */
int ram__index_cached_score(struct ram_conn *p, sqlite3_value *pImage, const float *aLabel, int nDes,
                            float *pProb, int *pbFound, char **pzErr)
{
    *pbFound = 0;
    if (!p->pEntry || sqlite3_value_type(pImage) != SQLITE_BLOB) return SQLITE_OK;
    const struct ram_model_info *pI = &p->pEntry->info;
    int nBlob = sqlite3_value_bytes(pImage);
    const void *pBlob = sqlite3_value_blob(pImage);
    sqlite3_stmt *pTabs = 0;
    int rc = sqlite3_prepare_v2(p->db,
                                "SELECT name FROM main.sqlite_schema WHERE type = 'table' AND "
                                "sql LIKE 'CREATE VIRTUAL TABLE%USING ram_index%'",
                                -1, &pTabs, 0);
    if (rc) return SQLITE_OK; /* no schema access: the caller runs the model */
    unsigned char aKey[16];
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, XXH3_128bits(pBlob ? pBlob : "", (size_t)nBlob));
    memcpy(aKey, c.digest, 16);
    char *zPrep = index_prep_string(p->bExif);
    if (!zPrep) {
        sqlite3_finalize(pTabs);
        return SQLITE_NOMEM;
    }
    while (!*pbFound && rc == SQLITE_OK && sqlite3_step(pTabs) == SQLITE_ROW) {
        const char *zTab = (const char *)sqlite3_column_text(pTabs, 0);
        char *zSql = sqlite3_mprintf("SELECT t.tokens FROM main.\"%w_images\" i JOIN main.\"%w_gens\" g "
                                     "ON g.id = i.gen JOIN main.\"%w_tokens\" t ON t.id = i.id "
                                     "WHERE i.key = ?1 AND g.digest = ?2 AND g.prep = ?3",
                                     zTab, zTab, zTab);
        sqlite3_stmt *s = 0;
        if (!zSql) rc = SQLITE_NOMEM;
        else if (sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) == SQLITE_OK) {
            sqlite3_bind_blob(s, 1, aKey, 16, SQLITE_STATIC);
            sqlite3_bind_text(s, 2, pI->digest, -1, SQLITE_STATIC);
            sqlite3_bind_text(s, 3, zPrep, -1, SQLITE_STATIC);
            struct ram_cache_tokens v;
            struct ram_cache_query *q = 0;
            struct ram_error err;
            if (sqlite3_step(s) == SQLITE_ROW &&
                ram_cache_view(sqlite3_column_blob(s, 0), (size_t)sqlite3_column_bytes(s, 0), pI->n_image_tokens,
                               pI->embed_dim, &v, &err) == RAM_OK) {
                ram_status st = ram_cache_query_init(p->pEntry->pModel, aLabel, 1, nDes, 1, &q, &err);
                if (!st) st = ram_cache_score(q, &v, 1, pProb, &err);
                if (st) {
                    rc = ram__rc(st);
                    *pzErr = rc == SQLITE_NOMEM ? 0 : sqlite3_mprintf("ram_score(): %s", err.msg);
                } else {
                    *pbFound = 1;
                }
                ram_cache_query_free(q);
            }
        }
        sqlite3_finalize(s);
        sqlite3_free(zSql);
    }
    sqlite3_finalize(pTabs);
    sqlite3_free(zPrep);
    return rc;
}

/* ------------------------------------------------------------------ create / connect */

/* Parses one "key=value" argument; the value may be quoted. */
static int parse_arg(const char *z, char **pzKey, char **pzVal)
{
    const char *eq = strchr(z, '=');
    *pzKey = *pzVal = 0;
    if (!eq) return SQLITE_ERROR;
    const char *k0 = z, *k1 = eq;
    while (*k0 == ' ') k0++;
    while (k1 > k0 && k1[-1] == ' ') k1--;
    const char *v0 = eq + 1, *v1 = z + strlen(z);
    while (*v0 == ' ') v0++;
    while (v1 > v0 && v1[-1] == ' ') v1--;
    *pzKey = sqlite3_mprintf("%.*s", (int)(k1 - k0), k0);
    if (v1 - v0 >= 2 && (*v0 == '\'' || *v0 == '"') && v1[-1] == *v0) {
        char q = *v0;
        sqlite3_str *s = sqlite3_str_new(0);
        for (const char *c = v0 + 1; c < v1 - 1; c++) {
            sqlite3_str_appendchar(s, 1, *c);
            if (*c == q && c + 1 < v1 - 1 && c[1] == q) c++;
        }
        /* an empty string finishes as NULL: '' is a value, not out of memory */
        int bNoMem = sqlite3_str_errcode(s) != SQLITE_OK;
        *pzVal = sqlite3_str_finish(s);
        if (!*pzVal && !bNoMem) *pzVal = sqlite3_mprintf("");
    } else {
        *pzVal = sqlite3_mprintf("%.*s", (int)(v1 - v0), v0);
    }
    if (!*pzKey || !*pzVal) {
        sqlite3_free(*pzKey), sqlite3_free(*pzVal);
        *pzKey = *pzVal = 0;
        return SQLITE_NOMEM;
    }
    return SQLITE_OK;
}

static int parse_bool(const char *z, int *pOut)
{
    if (!sqlite3_stricmp(z, "1") || !sqlite3_stricmp(z, "on") || !sqlite3_stricmp(z, "true") ||
        !sqlite3_stricmp(z, "yes"))
        return *pOut = 1, SQLITE_OK;
    if (!sqlite3_stricmp(z, "0") || !sqlite3_stricmp(z, "off") || !sqlite3_stricmp(z, "false") ||
        !sqlite3_stricmp(z, "no"))
        return *pOut = 0, SQLITE_OK;
    return SQLITE_ERROR;
}

static void index_free(IndexVtab *p)
{
    if (!p) return;
    for (int i = 0; i < N_STMT; i++) sqlite3_finalize(p->aStmt[i]);
    journal_close(p);
    index_model_drop(p);
    sqlite3_free(p->aEmbeds), sqlite3_free(p->aProbs), sqlite3_free(p->aTokBlob);
    sqlite3_free(p->aTxnKey);
    sqlite3_free(p->aThresh);
    sqlite3_free(p->zDb), sqlite3_free(p->zName), sqlite3_free(p->zModel);
    sqlite3_free(p->zGenDigest), sqlite3_free(p->zGenPrep);
    sqlite3_free(p->base.zErrMsg);
    sqlite3_free(p);
}

static int index_declare(sqlite3 *db, const char *zName)
{
    char *zSql = sqlite3_mprintf("CREATE TABLE x(path TEXT, image BLOB HIDDEN, tags TEXT, score REAL, "
                                 "tag HIDDEN, k HIDDEN, prefilter HIDDEN, key BLOB HIDDEN, probs BLOB HIDDEN, "
                                 "cls BLOB HIDDEN, tags_zh TEXT HIDDEN, stale HIDDEN, \"%w\" HIDDEN)",
                                 zName);
    if (!zSql) return SQLITE_NOMEM;
    int rc = sqlite3_declare_vtab(db, zSql);
    sqlite3_free(zSql);
    return rc;
}

/* Scratch sized by the model. */
static int index_alloc_scratch(IndexVtab *p)
{
    p->aEmbeds = sqlite3_malloc64(sizeof(float) * (size_t)p->nTok * (size_t)p->nDim);
    p->aProbs = sqlite3_malloc64(sizeof(float) * (size_t)p->nClass);
    p->aTokBlob = sqlite3_malloc64(ram_cache_packed_size(p->nTok, p->nDim));
    return p->aEmbeds && p->aProbs && p->aTokBlob ? SQLITE_OK : SQLITE_NOMEM;
}

static int indexInit(sqlite3 *db, void *pAux, int argc, const char *const *argv, sqlite3_vtab **ppVtab,
                     char **pzErr, int bCreate)
{
    IndexVtab *p = 0;
    char *zKey = 0, *zVal = 0, *zPrep = 0;
    int rc = SQLITE_OK;
    *ppVtab = 0;
    for (int i = 0; i < N_COL - 1; i++)
        if (!sqlite3_stricmp(argv[2], azColName[i])) {
            *pzErr = sqlite3_mprintf("ram_index: a table cannot be named like its column '%s'", azColName[i]);
            return SQLITE_ERROR;
        }
    p = sqlite3_malloc(sizeof *p);
    if (!p) return SQLITE_NOMEM;
    memset(p, 0, sizeof *p);
    p->db = db;
    p->pConn = pAux;
    p->zDb = sqlite3_mprintf("%s", argv[1]);
    p->zName = sqlite3_mprintf("%s", argv[2]);
    if (!p->zDb || !p->zName) goto nomem;
    p->rFloor = 0.01;
    p->bExif = 1;
    p->bResume = 1;

    if (bCreate) {
        for (int i = 3; i < argc; i++) {
            rc = parse_arg(argv[i], &zKey, &zVal);
            if (rc == SQLITE_NOMEM) goto nomem;
            if (rc) {
                *pzErr = sqlite3_mprintf("ram_index: argument '%s' is not key=value", argv[i]);
                goto fail;
            }
            if (!sqlite3_stricmp(zKey, "model")) {
                if (!zVal[0]) {
                    *pzErr = sqlite3_mprintf("ram_index: model= needs the path of a model file (leave it out to "
                                             "use the connection's model)");
                    rc = SQLITE_ERROR;
                    goto fail;
                }
                sqlite3_free(p->zModel);
                p->zModel = zVal;
                zVal = 0;
                if (ram__trust_add(p->pConn, p->zModel)) goto nomem; /* named here: may be opened */
            } else if (!sqlite3_stricmp(zKey, "floor")) {
                char *end = 0;
                double f = strtod(zVal, &end);
                if (!end || *end || !(f > 0 && f <= 1)) {
                    *pzErr = sqlite3_mprintf("ram_index: floor must be a number in (0, 1], got '%s'", zVal);
                    rc = SQLITE_ERROR;
                    goto fail;
                }
                p->rFloor = f;
            } else if (!sqlite3_stricmp(zKey, "store_images") || !sqlite3_stricmp(zKey, "exif") ||
                       !sqlite3_stricmp(zKey, "resume")) {
                int b;
                if (parse_bool(zVal, &b)) {
                    *pzErr = sqlite3_mprintf("ram_index: %s must be 0 or 1, got '%s'", zKey, zVal);
                    rc = SQLITE_ERROR;
                    goto fail;
                }
                if (zKey[0] == 's') p->bStore = b;
                else if (zKey[0] == 'e') p->bExif = b;
                else p->bResume = b;
            } else {
                *pzErr = sqlite3_mprintf("ram_index: unknown option '%s' (expected model, floor, store_images, "
                                         "exif or resume)",
                                         zKey);
                rc = SQLITE_ERROR;
                goto fail;
            }
            sqlite3_free(zKey), sqlite3_free(zVal);
            zKey = zVal = 0;
        }
        /* The model must be loadable now: its digest starts generation 1. */
        rc = index_model(p, 0);
        if (rc) {
            *pzErr = sqlite3_mprintf("%s", p->base.zErrMsg);
            goto fail;
        }
        struct ram_model_info info = p->pEntry->info;
        p->nTok = info.n_image_tokens;
        p->nDim = info.embed_dim;
        p->nClass = info.num_class;
        zPrep = index_prep_string(p->bExif);
        if (!zPrep) goto nomem;
        rc = index_exec(db, pzErr,
                        "CREATE TABLE \"%w\".\"%w_config\"(key TEXT PRIMARY KEY, value) WITHOUT ROWID;"
                        "CREATE TABLE \"%w\".\"%w_gens\"(id INTEGER PRIMARY KEY, digest TEXT NOT NULL, "
                        "  prep TEXT NOT NULL, model TEXT);"
                        "CREATE TABLE \"%w\".\"%w_images\"(id INTEGER PRIMARY KEY, key BLOB NOT NULL UNIQUE, "
                        "  gen INTEGER NOT NULL, nref INTEGER NOT NULL, probs BLOB NOT NULL);"
                        "CREATE TABLE \"%w\".\"%w_tokens\"(id INTEGER PRIMARY KEY, tokens BLOB NOT NULL);"
                        "CREATE INDEX \"%w\".\"%w_images_gen\" ON \"%w_images\"(gen);"
                        "CREATE TABLE \"%w\".\"%w_files\"(id INTEGER PRIMARY KEY, path TEXT UNIQUE, "
                        "  img INTEGER NOT NULL);"
                        "CREATE INDEX \"%w\".\"%w_files_img\" ON \"%w_files\"(img);"
                        "CREATE TABLE \"%w\".\"%w_postings\"(tag INTEGER, img INTEGER, score INTEGER NOT NULL, "
                        "  PRIMARY KEY(tag, img)) WITHOUT ROWID;"
                        "CREATE TABLE \"%w\".\"%w_cls\"(id INTEGER PRIMARY KEY, v BLOB NOT NULL);"
                        "CREATE TABLE \"%w\".\"%w_blobs\"(id INTEGER PRIMARY KEY, data BLOB NOT NULL);"
                        "INSERT INTO \"%w\".\"%w_gens\"(id, digest, prep, model) VALUES(1, %Q, %Q, %Q);"
                        "INSERT INTO \"%w\".\"%w_config\"(key, value) VALUES('version', %d), ('model', %Q), "
                        "  ('floor', %.17g), ('store_images', %d), ('exif', %d), ('resume', %d), ('gen', 1), "
                        "  ('n_tokens', %d), ('dim', %d), ('num_class', %d), ('layout', %d);",
                        p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName,
                        p->zName, p->zDb,
                        p->zName, p->zDb, p->zName, p->zName, p->zDb, p->zName, p->zDb, p->zName, p->zDb,
                        p->zName, p->zDb, p->zName, info.digest, zPrep, info.path, p->zDb, p->zName,
                        INDEX_SCHEMA_VERSION, p->zModel, p->rFloor, p->bStore, p->bExif, p->bResume, p->nTok,
                        p->nDim, p->nClass, RAM_CACHE_LAYOUT);
        if (rc) goto fail;
        sqlite3_free(p->zModel);
        p->zModel = 0;
    }
    rc = index_load_config(p, pzErr);
    if (rc) goto fail;
    rc = index_alloc_scratch(p);
    if (rc) goto nomem;
    rc = index_declare(db, argv[2]);
    if (rc) {
        *pzErr = sqlite3_mprintf("ram_index: %s", sqlite3_errmsg(db));
        goto fail;
    }
    /* It reads a model file and writes the resume journal beside the database. */
    sqlite3_vtab_config(db, SQLITE_VTAB_DIRECTONLY);
    sqlite3_vtab_config(db, SQLITE_VTAB_CONSTRAINT_SUPPORT, 1);
    sqlite3_free(zPrep);
    *ppVtab = &p->base;
    return SQLITE_OK;
nomem:
    rc = SQLITE_NOMEM;
fail:
    sqlite3_free(zKey), sqlite3_free(zVal), sqlite3_free(zPrep);
    index_free(p);
    return rc;
}

static int indexCreate(sqlite3 *db, void *pAux, int argc, const char *const *argv, sqlite3_vtab **ppVtab,
                       char **pzErr)
{
    return indexInit(db, pAux, argc, argv, ppVtab, pzErr, 1);
}

static int indexConnect(sqlite3 *db, void *pAux, int argc, const char *const *argv, sqlite3_vtab **ppVtab,
                        char **pzErr)
{
    return indexInit(db, pAux, argc, argv, ppVtab, pzErr, 0);
}

/* ------------------------------------------------------------------ planning */

static int indexBestIndex(sqlite3_vtab *pVtab, sqlite3_index_info *pInfo)
{
    int iMatch = -1, iTag = -1, iRowid = -1, iPath = -1, iScore = -1, iK = -1, iPre = -1, iLimit = -1;
    int bTagUnusable = 0, bMatchUnusable = 0, scoreOp = 0;
    for (int i = 0; i < pInfo->nConstraint; i++) {
        const struct sqlite3_index_constraint *c = &pInfo->aConstraint[i];
        int usable = c->usable;
        if (c->op == SQLITE_INDEX_CONSTRAINT_MATCH && c->iColumn == COL_NAME) {
            if (usable) iMatch = i;
            else bMatchUnusable = 1;
        } else if (c->op == SQLITE_INDEX_CONSTRAINT_EQ && c->iColumn == COL_TAG) {
            if (usable) iTag = i;
            else bTagUnusable = 1;
        } else if (!usable) {
            continue;
        } else if (c->op == SQLITE_INDEX_CONSTRAINT_EQ && c->iColumn == -1) {
            iRowid = i;
        } else if (c->op == SQLITE_INDEX_CONSTRAINT_EQ && c->iColumn == COL_PATH) {
            iPath = i;
        } else if ((c->op == SQLITE_INDEX_CONSTRAINT_GT || c->op == SQLITE_INDEX_CONSTRAINT_GE) &&
                   c->iColumn == COL_SCORE && iScore < 0) {
            iScore = i;
            scoreOp = c->op == SQLITE_INDEX_CONSTRAINT_GT ? IDX_SCORE_GT : IDX_SCORE_GE;
        } else if (c->op == SQLITE_INDEX_CONSTRAINT_EQ && c->iColumn == COL_K) {
            iK = i;
        } else if (c->op == SQLITE_INDEX_CONSTRAINT_EQ && c->iColumn == COL_PREFILTER) {
            iPre = i;
        } else if (c->op == SQLITE_INDEX_CONSTRAINT_LIMIT) {
            iLimit = i;
        }
    }
    /* A MATCH or tag constraint whose value is not available yet makes this
    ** plan unusable: the planner must find an order where it is. */
    if ((bMatchUnusable && iMatch < 0) || (bTagUnusable && iTag < 0)) return SQLITE_CONSTRAINT;

    int plan = PLAN_SCAN, nArg = 0, flags = 0;
    if (iMatch >= 0) {
        plan = PLAN_MATCH;
        pInfo->aConstraintUsage[iMatch].argvIndex = ++nArg;
        pInfo->aConstraintUsage[iMatch].omit = 1;
        if (iK >= 0) {
            flags |= IDX_K;
            pInfo->aConstraintUsage[iK].argvIndex = ++nArg;
            pInfo->aConstraintUsage[iK].omit = 1;
        }
        if (iPre >= 0) {
            flags |= IDX_PREFILTER;
            pInfo->aConstraintUsage[iPre].argvIndex = ++nArg;
            pInfo->aConstraintUsage[iPre].omit = 1;
        }
        if (iLimit >= 0 && iK < 0) {
            flags |= IDX_LIMIT;
            pInfo->aConstraintUsage[iLimit].argvIndex = ++nArg;
        }
        if (iTag >= 0) {
            flags |= IDX_TAG;
            pInfo->aConstraintUsage[iTag].argvIndex = ++nArg;
            pInfo->aConstraintUsage[iTag].omit = 1;
        }
        if (pInfo->nOrderBy == 1 && pInfo->aOrderBy[0].iColumn == COL_SCORE && pInfo->aOrderBy[0].desc)
            pInfo->orderByConsumed = 1;
        pInfo->estimatedCost = 1e4;
        pInfo->estimatedRows = 20;
        pInfo->idxStr = (char *)(iTag >= 0 ? "match+tag" : "match");
    } else if (iTag >= 0) {
        plan = PLAN_TAG;
        pInfo->aConstraintUsage[iTag].argvIndex = ++nArg;
        pInfo->aConstraintUsage[iTag].omit = 1;
        if (iScore >= 0) {
            flags |= scoreOp;
            pInfo->aConstraintUsage[iScore].argvIndex = ++nArg;
            pInfo->aConstraintUsage[iScore].omit = 1;
        }
        pInfo->estimatedCost = 100;
        pInfo->estimatedRows = 100;
        pInfo->idxStr = (char *)(iScore >= 0 ? "tag+score" : "tag");
    } else if (iRowid >= 0) {
        plan = PLAN_ROWID;
        pInfo->aConstraintUsage[iRowid].argvIndex = ++nArg;
        pInfo->aConstraintUsage[iRowid].omit = 1;
        pInfo->estimatedCost = 1;
        pInfo->estimatedRows = 1;
        pInfo->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
        pInfo->idxStr = (char *)("rowid");
    } else if (iPath >= 0) {
        plan = PLAN_PATH;
        pInfo->aConstraintUsage[iPath].argvIndex = ++nArg;
        pInfo->aConstraintUsage[iPath].omit = 1;
        pInfo->estimatedCost = 2;
        pInfo->estimatedRows = 1;
        pInfo->idxFlags = SQLITE_INDEX_SCAN_UNIQUE;
        pInfo->idxStr = (char *)("path");
    } else {
        pInfo->estimatedCost = 1e6;
        pInfo->estimatedRows = 100000;
        pInfo->idxStr = (char *)("scan");
        if (pInfo->nOrderBy == 1 && pInfo->aOrderBy[0].iColumn == -1 && !pInfo->aOrderBy[0].desc)
            pInfo->orderByConsumed = 1;
    }
    if (plan != PLAN_MATCH && (iK >= 0 || iPre >= 0)) {
        /* k and prefilter mean nothing without MATCH: pass them so that
        ** xFilter can say so instead of returning no rows. */
        if (iK >= 0) flags |= IDX_K, pInfo->aConstraintUsage[iK].argvIndex = ++nArg;
        if (iPre >= 0) flags |= IDX_PREFILTER, pInfo->aConstraintUsage[iPre].argvIndex = ++nArg;
    }
    pInfo->idxNum = plan | flags;
    (void)pVtab;
    return SQLITE_OK;
}

/* ------------------------------------------------------------------ disconnect / destroy */

static int indexDisconnect(sqlite3_vtab *pVtab)
{
    index_free((IndexVtab *)pVtab);
    return SQLITE_OK;
}

static int indexDestroy(sqlite3_vtab *pVtab)
{
    IndexVtab *p = (IndexVtab *)pVtab;
    for (int i = 0; i < N_STMT; i++) {
        sqlite3_finalize(p->aStmt[i]);
        p->aStmt[i] = 0;
    }
    int rc = index_exec(p->db, 0,
                        "DROP TABLE IF EXISTS \"%w\".\"%w_config\"; DROP TABLE IF EXISTS \"%w\".\"%w_gens\";"
                        "DROP TABLE IF EXISTS \"%w\".\"%w_images\"; DROP TABLE IF EXISTS \"%w\".\"%w_files\";"
                        "DROP TABLE IF EXISTS \"%w\".\"%w_postings\"; DROP TABLE IF EXISTS \"%w\".\"%w_cls\";"
                        "DROP TABLE IF EXISTS \"%w\".\"%w_blobs\"; DROP TABLE IF EXISTS \"%w\".\"%w_tokens\";",
                        p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName,
                        p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName);
    if (rc == SQLITE_OK) {
        journal_drop(p);
        index_free(p);
    }
    return rc;
}

/* ------------------------------------------------------------------ cursor */

static int indexOpen(sqlite3_vtab *pVtab, sqlite3_vtab_cursor **ppCur)
{
    IndexCursor *c = sqlite3_malloc(sizeof *c);
    if (!c) return SQLITE_NOMEM;
    memset(c, 0, sizeof *c);
    c->bEof = 1;
    *ppCur = &c->base;
    (void)pVtab;
    return SQLITE_OK;
}

static void cursor_reset(IndexCursor *c)
{
    sqlite3_finalize(c->pStmt);
    c->pStmt = 0;
    sqlite3_free(c->aHit);
    c->aHit = 0;
    c->nHit = c->iHit = 0;
    c->nOut = 0;
    c->bEof = 1;
    c->bHasK = c->bHasPrefilter = 0;
}

static int indexClose(sqlite3_vtab_cursor *pCur)
{
    cursor_reset((IndexCursor *)pCur);
    sqlite3_free(pCur);
    return SQLITE_OK;
}

#define ROW_COLS "f.id, f.path, i.id, %s, i.key, i.gen, i.probs"
enum { RC_FID = 0, RC_PATH, RC_IMG, RC_SCORE, RC_KEY, RC_GEN, RC_PROBS };

static int cursor_prepare(IndexCursor *c, const char *zFmt, ...)
{
    IndexVtab *p = (IndexVtab *)c->base.pVtab;
    va_list ap;
    va_start(ap, zFmt);
    char *zSql = sqlite3_vmprintf(zFmt, ap);
    va_end(ap);
    if (!zSql) return SQLITE_NOMEM;
    int rc = sqlite3_prepare_v2(p->db, zSql, -1, &c->pStmt, 0);
    sqlite3_free(zSql);
    if (rc) vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
    return rc;
}

static int cursor_step(IndexCursor *c)
{
    IndexVtab *p = (IndexVtab *)c->base.pVtab;
    int rc = sqlite3_step(c->pStmt);
    if (rc == SQLITE_ROW) {
        c->bEof = 0;
        if (c->plan == PLAN_TAG) STAT_ADD(postings_read, 1);
        return SQLITE_OK;
    }
    c->bEof = 1;
    rc = sqlite3_reset(c->pStmt);
    if (rc) vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
    return rc;
}

/* MATCH: the next row of the current hit, moving along the hits. */
static int cursor_match_next(IndexCursor *c)
{
    for (;;) {
        if (c->bHasK && c->nOut >= c->k) {
            c->bEof = 1;
            return SQLITE_OK;
        }
        if (c->iHit >= 0 && c->iHit < c->nHit) {
            if (sqlite3_step(c->pStmt) == SQLITE_ROW) {
                c->bEof = 0;
                c->nOut++;
                return SQLITE_OK;
            }
            int rc = sqlite3_reset(c->pStmt);
            if (rc) return rc;
            c->iHit++;
        } else if (c->iHit < 0) {
            c->iHit = 0;
        }
        if (c->iHit >= c->nHit) {
            c->bEof = 1;
            return SQLITE_OK;
        }
        sqlite3_bind_int64(c->pStmt, 1, c->aHit[c->iHit].img);
        sqlite3_bind_double(c->pStmt, 2, (double)c->aHit[c->iHit].score);
    }
}

/* Class index of a tag value: an integer, or an English or Chinese name
** (ASCII case ignored); -1 if unknown. */
static int index_find_tag(IndexVtab *p, sqlite3_value *v)
{
    if (sqlite3_value_type(v) == SQLITE_INTEGER) {
        sqlite3_int64 c = sqlite3_value_int64(v);
        return c >= 0 && c < p->nClass ? (int)c : -1;
    }
    const char *z = (const char *)sqlite3_value_text(v);
    if (!z) return -1;
    for (int lang = RAM_LANG_EN; lang <= RAM_LANG_ZH; lang++)
        for (int c = 0; c < p->nClass; c++) {
            const char *t = ram_model_tag(p->pModel, c, lang);
            if (t && !sqlite3_stricmp(t, z)) return c;
        }
    return -1;
}

static int indexFilter(sqlite3_vtab_cursor *pCur, int idxNum, const char *idxStr, int argc, sqlite3_value **argv)
{
    IndexCursor *c = (IndexCursor *)pCur;
    IndexVtab *p = (IndexVtab *)pCur->pVtab;
    int rc, iArg = 0;
    cursor_reset(c);
    if ((rc = index_sync_config(p)) != SQLITE_OK) return rc;
    c->plan = idxNum & 0xf;
    c->iTag = -1;
    sqlite3_value *pMain = c->plan != PLAN_SCAN ? argv[iArg++] : 0, *pScore = 0;
    if (idxNum & (IDX_SCORE_GT | IDX_SCORE_GE)) pScore = argv[iArg++];
    if (idxNum & IDX_K) {
        c->bHasK = 1;
        c->k = sqlite3_value_int64(argv[iArg]);
        if (sqlite3_value_type(argv[iArg]) != SQLITE_INTEGER || c->k < 1) {
            vtab_set_error(pCur->pVtab, "ram_index: k must be a positive integer");
            return SQLITE_ERROR;
        }
        iArg++;
    }
    if (idxNum & IDX_PREFILTER) {
        c->bHasPrefilter = 1;
        c->nPrefilter = sqlite3_value_int64(argv[iArg]);
        if (sqlite3_value_type(argv[iArg]) != SQLITE_INTEGER || c->nPrefilter < 1) {
            vtab_set_error(pCur->pVtab, "ram_index: prefilter must be a positive integer (candidates kept)");
            return SQLITE_ERROR;
        }
        iArg++;
    }
    if (idxNum & IDX_LIMIT) {
        if (!c->bHasK && sqlite3_value_type(argv[iArg]) == SQLITE_INTEGER && sqlite3_value_int64(argv[iArg]) >= 0) {
            c->bHasK = 1;
            c->k = sqlite3_value_int64(argv[iArg]);
        }
        iArg++;
    }
    sqlite3_value *pTagVal = idxNum & IDX_TAG ? argv[iArg++] : 0;
    if (c->plan != PLAN_MATCH && (idxNum & (IDX_K | IDX_PREFILTER))) {
        vtab_set_error(pCur->pVtab, "ram_index: k and prefilter need a MATCH constraint");
        return SQLITE_ERROR;
    }
    (void)idxStr;
    (void)argc;

    switch (c->plan) {
    case PLAN_SCAN:
    case PLAN_ROWID:
    case PLAN_PATH:
        rc = cursor_prepare(c,
                            "SELECT " ROW_COLS " FROM \"%w\".\"%w_files\" f LEFT JOIN \"%w\".\"%w_images\" i "
                            "ON i.id = f.img %s ORDER BY f.id",
                            "NULL", p->zDb, p->zName, p->zDb, p->zName,
                            c->plan == PLAN_ROWID ? "WHERE f.id = ?1" : c->plan == PLAN_PATH ? "WHERE f.path = ?1" : "");
        if (rc) return rc;
        if (pMain) sqlite3_bind_value(c->pStmt, 1, pMain);
        return cursor_step(c);
    case PLAN_TAG: {
        if (sqlite3_value_type(pMain) == SQLITE_NULL) return SQLITE_OK; /* tag = NULL: no rows */
        rc = index_model(p, 1);
        if (rc == SQLITE_OK) rc = index_check_stale(p);
        if (rc) return rc;
        c->iTag = index_find_tag(p, pMain);
        if (c->iTag < 0) {
            vtab_set_error(pCur->pVtab,
                           "ram_index: no tag '%s' in the model's vocabulary (use MATCH for free text)",
                           sqlite3_value_text(pMain));
            return SQLITE_ERROR;
        }
        const float *aThr;
        rc = index_thresholds(p, &aThr);
        if (rc) return rc;
        double thr = aThr[c->iTag];
        int ge = 0;
        if (pScore) {
            if (sqlite3_value_numeric_type(pScore) == SQLITE_NULL) return SQLITE_OK;
            thr = sqlite3_value_double(pScore);
            ge = (idxNum & IDX_SCORE_GE) != 0;
            if (ge ? thr < p->rFloor : thr < p->rFloor && nextafter(thr, 2) < p->rFloor) {
                vtab_set_error(pCur->pVtab,
                               "ram_index: score %s %g is below the index floor %g (probabilities under the "
                               "floor are not kept; see the floor option)",
                               ge ? ">=" : ">", thr, p->rFloor);
                return SQLITE_ERROR;
            }
        }
        rc = cursor_prepare(c,
                            "SELECT " ROW_COLS " FROM \"%w\".\"%w_postings\" p JOIN \"%w\".\"%w_images\" i "
                            "ON i.id = p.img JOIN \"%w\".\"%w_files\" f ON f.img = p.img "
                            "WHERE p.tag = ?1 AND p.score >= ?2",
                            "p.score", p->zDb, p->zName, p->zDb, p->zName, p->zDb, p->zName);
        if (rc) return rc;
        sqlite3_bind_int(c->pStmt, 1, c->iTag);
        sqlite3_bind_int64(c->pStmt, 2, bound_bits(thr, ge));
        return cursor_step(c);
    }
    case PLAN_MATCH: {
        if (sqlite3_value_type(pMain) == SQLITE_NULL) return SQLITE_OK;
        double thr = 0;
        if (pTagVal) {
            const float *aThr;
            if (sqlite3_value_type(pTagVal) == SQLITE_NULL) return SQLITE_OK;
            rc = index_model(p, 1);
            if (rc == SQLITE_OK) rc = index_thresholds(p, &aThr);
            if (rc) return rc;
            c->iTag = index_find_tag(p, pTagVal);
            if (c->iTag < 0) {
                vtab_set_error(pCur->pVtab,
                               "ram_index: no tag '%s' in the model's vocabulary (use MATCH for free text)",
                               sqlite3_value_text(pTagVal));
                return SQLITE_ERROR;
            }
            thr = aThr[c->iTag];
        }
        rc = index_match(p, pMain, c->bHasK ? c->k : 0, c->bHasPrefilter ? c->nPrefilter : 0, c->iTag, thr,
                         &c->aHit, &c->nHit);
        if (rc) return rc;
        rc = cursor_prepare(c,
                            "SELECT " ROW_COLS " FROM \"%w\".\"%w_files\" f JOIN \"%w\".\"%w_images\" i "
                            "ON i.id = f.img WHERE f.img = ?1 ORDER BY f.id",
                            "?2", p->zDb, p->zName, p->zDb, p->zName);
        if (rc) return rc;
        c->iHit = -1;
        return cursor_match_next(c);
    }
    }
    return SQLITE_OK;
}

static int indexNext(sqlite3_vtab_cursor *pCur)
{
    IndexCursor *c = (IndexCursor *)pCur;
    if (c->plan == PLAN_MATCH) return cursor_match_next(c);
    return cursor_step(c);
}

static int indexEof(sqlite3_vtab_cursor *pCur) { return ((IndexCursor *)pCur)->bEof; }

/* A stored blob column of image img through a one-off statement. */
static int column_lookup(IndexVtab *p, sqlite3_context *ctx, const char *zFmt, sqlite3_int64 img)
{
    sqlite3_stmt *s = 0;
    char *zSql = sqlite3_mprintf(zFmt, p->zDb, p->zName);
    int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, img);
    if (sqlite3_step(s) == SQLITE_ROW) sqlite3_result_value(ctx, sqlite3_column_value(s, 0));
    return sqlite3_finalize(s);
}

/* The tags of the current row: its stored probabilities over the current
** thresholds, in class order, ' | ' joined (ram_tags' output); NULL for a
** stale row, whose classes belong to another model. */
static int column_tags(IndexVtab *p, sqlite3_context *ctx, sqlite3_stmt *s, int lang)
{
    if (sqlite3_column_type(s, RC_GEN) == SQLITE_NULL || sqlite3_column_int64(s, RC_GEN) != p->iGen)
        return SQLITE_OK;
    const float *aThr;
    int rc = index_model(p, 1);
    if (rc == SQLITE_OK) rc = index_thresholds(p, &aThr);
    if (rc) {
        sqlite3_result_error(ctx, p->base.zErrMsg ? p->base.zErrMsg : sqlite3_errstr(rc), -1);
        return rc;
    }
    const unsigned char *a = sqlite3_column_blob(s, RC_PROBS);
    int cnt = probs_count(a, sqlite3_column_bytes(s, RC_PROBS), p->nClass), n = 0;
    if (cnt < 0) return SQLITE_OK;
    sqlite3_str *str = sqlite3_str_new(p->db);
    for (int e = 0; e < cnt; e++) {
        int c = (int)get_u16(a + 4 + 6 * e);
        if (get_f32(a + 4 + 6 * e + 2) > aThr[c]) {
            const char *t = ram_model_tag(p->pModel, c, lang);
            sqlite3_str_appendf(str, "%s%s", n++ ? " | " : "", t ? t : "");
        }
    }
    if (sqlite3_str_errcode(str)) {
        sqlite3_free(sqlite3_str_finish(str));
        return SQLITE_NOMEM;
    }
    char *z = sqlite3_str_finish(str);
    sqlite3_result_text(ctx, z ? z : "", -1, z ? sqlite3_free : SQLITE_STATIC);
    return SQLITE_OK;
}

static int indexColumn(sqlite3_vtab_cursor *pCur, sqlite3_context *ctx, int i)
{
    IndexCursor *c = (IndexCursor *)pCur;
    IndexVtab *p = (IndexVtab *)pCur->pVtab;
    sqlite3_stmt *s = c->pStmt;
    /* UPDATE asks for unchanged columns: report "no change" for the costly ones. */
    if (sqlite3_vtab_nochange(ctx) && i != COL_PATH) return SQLITE_OK;
    sqlite3_int64 img = sqlite3_column_int64(s, RC_IMG);
    switch (i) {
    case COL_PATH:
        sqlite3_result_value(ctx, sqlite3_column_value(s, RC_PATH));
        break;
    case COL_IMAGE:
        return column_lookup(p, ctx, "SELECT data FROM \"%w\".\"%w_blobs\" WHERE id = ?1", img);
    case COL_TAGS:
        return column_tags(p, ctx, s, RAM_LANG_EN);
    case COL_SCORE:
        if (c->plan == PLAN_TAG)
            sqlite3_result_double(ctx, bits_prob(sqlite3_column_int64(s, RC_SCORE)));
        else
            sqlite3_result_value(ctx, sqlite3_column_value(s, RC_SCORE));
        break;
    case COL_TAG:
        if (c->iTag >= 0 && p->pModel)
            sqlite3_result_text(ctx, ram_model_tag(p->pModel, c->iTag, RAM_LANG_EN), -1, SQLITE_TRANSIENT);
        break;
    case COL_K:
        if (c->bHasK) sqlite3_result_int64(ctx, c->k);
        break;
    case COL_PREFILTER:
        if (c->bHasPrefilter) sqlite3_result_int64(ctx, c->nPrefilter);
        break;
    case COL_KEY:
        sqlite3_result_value(ctx, sqlite3_column_value(s, RC_KEY));
        break;
    case COL_PROBS: {
        const unsigned char *a = sqlite3_column_blob(s, RC_PROBS);
        int n = sqlite3_column_bytes(s, RC_PROBS), cnt = probs_count(a, n, p->nClass);
        if (cnt < 0) break;
        unsigned char *out = sqlite3_malloc64((size_t)p->nClass * 4);
        if (!out) return SQLITE_NOMEM;
        memset(out, 0, (size_t)p->nClass * 4);
        for (int e = 0; e < cnt; e++) memcpy(out + 4 * get_u16(a + 4 + 6 * e), a + 4 + 6 * e + 2, 4);
        sqlite3_result_blob64(ctx, out, (sqlite3_uint64)p->nClass * 4, sqlite3_free);
        break;
    }
    case COL_CLS: {
        sqlite3_stmt *t;
        int rc = index_stmt(p, STMT_TOKENS, &t);
        if (rc) return rc;
        sqlite3_bind_int64(t, 1, img);
        struct ram_cache_tokens v;
        struct ram_error err;
        if (sqlite3_step(t) == SQLITE_ROW &&
            ram_cache_view(sqlite3_column_blob(t, 0), (size_t)sqlite3_column_bytes(t, 0), p->nTok, p->nDim, &v,
                           &err) == RAM_OK) {
            float *out = sqlite3_malloc64(sizeof(float) * (size_t)p->nDim);
            if (!out) return sqlite3_reset(t), SQLITE_NOMEM;
            ram_cache_cls(&v, out);
            sqlite3_result_blob64(ctx, out, sizeof(float) * (sqlite3_uint64)p->nDim, sqlite3_free);
        }
        sqlite3_reset(t);
        break;
    }
    case COL_TAGS_ZH:
        return column_tags(p, ctx, s, RAM_LANG_ZH);
    case COL_STALE:
        if (sqlite3_column_type(s, RC_GEN) != SQLITE_NULL)
            sqlite3_result_int(ctx, sqlite3_column_int64(s, RC_GEN) != p->iGen);
        break;
    default:
        break;
    }
    return SQLITE_OK;
}

static int indexRowid(sqlite3_vtab_cursor *pCur, sqlite_int64 *pRowid)
{
    *pRowid = sqlite3_column_int64(((IndexCursor *)pCur)->pStmt, RC_FID);
    return SQLITE_OK;
}

/* ------------------------------------------------------------------ commands */

static int cmd_integrity(IndexVtab *p)
{
    static const struct {
        const char *zSql, *zWhat;
    } aCheck[] = {
        {"SELECT count(*) FROM \"%w\".\"%w_files\" f LEFT JOIN \"%w\".\"%w_images\" i ON i.id = f.img "
         "WHERE i.id IS NULL",
         "file rows point to missing images"},
        {"SELECT count(*) FROM \"%w\".\"%w_images\" i WHERE nref <> (SELECT count(*) FROM \"%w\".\"%w_files\" f "
         "WHERE f.img = i.id)",
         "images have a wrong reference count"},
        {"SELECT count(*) FROM \"%w\".\"%w_images\" i WHERE NOT EXISTS (SELECT 1 FROM \"%w\".\"%w_cls\" c "
         "WHERE c.id = i.id)",
         "images lack a prefilter vector"},
        {"SELECT count(*) FROM \"%w\".\"%w_cls\" c WHERE NOT EXISTS (SELECT 1 FROM \"%w\".\"%w_images\" i "
         "WHERE i.id = c.id)",
         "prefilter vectors belong to no image"},
        {"SELECT count(*) FROM \"%w\".\"%w_tokens\" t WHERE NOT EXISTS (SELECT 1 FROM \"%w\".\"%w_images\" i "
         "WHERE i.id = t.id)",
         "token rows belong to no image"},
        {"SELECT count(*) FROM \"%w\".\"%w_blobs\" b WHERE NOT EXISTS (SELECT 1 FROM \"%w\".\"%w_images\" i "
         "WHERE i.id = b.id)",
         "stored images belong to no image entry"},
        {"SELECT count(*) FROM \"%w\".\"%w_postings\" t WHERE NOT EXISTS (SELECT 1 FROM \"%w\".\"%w_images\" i "
         "WHERE i.id = t.img)",
         "postings belong to no image"},
        {"SELECT count(*) FROM \"%w\".\"%w_images\" i WHERE NOT EXISTS (SELECT 1 FROM \"%w\".\"%w_gens\" g "
         "WHERE g.id = i.gen)",
         "images name an unknown generation"},
        {"SELECT count(*) FROM \"%w\".\"%w_images\" i WHERE length(key) <> 16 OR typeof(key) <> 'blob'",
         "images have a malformed key"},
    };
    int rc = SQLITE_OK;
    for (size_t k = 0; k < sizeof aCheck / sizeof aCheck[0] && rc == SQLITE_OK; k++) {
        sqlite3_stmt *s = 0;
        char *zSql = sqlite3_mprintf(aCheck[k].zSql, p->zDb, p->zName, p->zDb, p->zName);
        rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
        sqlite3_free(zSql);
        if (rc) break;
        sqlite3_int64 n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
        rc = sqlite3_finalize(s);
        if (rc == SQLITE_OK && n) {
            vtab_set_error(&p->base, "ram_index: integrity-check failed: %lld %s", n, aCheck[k].zWhat);
            return SQLITE_CORRUPT_VTAB;
        }
    }
    if (rc) return rc;
    {
        sqlite3_stmt *c = 0;
        char *zCls = sqlite3_mprintf("SELECT count(*) FROM \"%w\".\"%w_cls\" WHERE typeof(v) <> 'blob' OR "
                                     "length(v) <> %lld", p->zDb, p->zName, (long long)ram_cache_unit_size(p->nDim));
        rc = zCls ? sqlite3_prepare_v2(p->db, zCls, -1, &c, 0) : SQLITE_NOMEM;
        sqlite3_free(zCls);
        if (rc) return rc;
        sqlite3_int64 n = sqlite3_step(c) == SQLITE_ROW ? sqlite3_column_int64(c, 0) : 0;
        rc = sqlite3_finalize(c);
        if (rc == SQLITE_OK && n) {
            vtab_set_error(&p->base, "ram_index: integrity-check failed: %lld prefilter vectors have a wrong size", n);
            return SQLITE_CORRUPT_VTAB;
        }
        if (rc) return rc;
    }
    /* Per image: tokens readable, probs blob well formed, postings equal to it. */
    sqlite3_stmt *s = 0, *t = 0;
    char *zSql = sqlite3_mprintf("SELECT i.id, i.probs, t.tokens FROM \"%w\".\"%w_images\" i "
                                 "LEFT JOIN \"%w\".\"%w_tokens\" t ON t.id = i.id",
                                 p->zDb, p->zName, p->zDb, p->zName);
    rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc) return rc;
    zSql = sqlite3_mprintf("SELECT score FROM \"%w\".\"%w_postings\" WHERE tag = ?1 AND img = ?2", p->zDb, p->zName);
    rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &t, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    sqlite3_int64 nPost = 0;
    while (rc == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW) {
        sqlite3_int64 img = sqlite3_column_int64(s, 0);
        struct ram_cache_tokens v;
        struct ram_error err;
        if (ram_cache_view(sqlite3_column_blob(s, 2), (size_t)sqlite3_column_bytes(s, 2), p->nTok, p->nDim, &v,
                           &err)) {
            vtab_set_error(&p->base, "ram_index: integrity-check failed: image %lld: %s", img, err.msg);
            rc = SQLITE_CORRUPT_VTAB;
            break;
        }
        const unsigned char *a = sqlite3_column_blob(s, 1);
        int cnt = probs_count(a, sqlite3_column_bytes(s, 1), p->nClass);
        if (cnt < 0) {
            vtab_set_error(&p->base, "ram_index: integrity-check failed: image %lld has a malformed probs blob",
                           img);
            rc = SQLITE_CORRUPT_VTAB;
            break;
        }
        for (int e = 0; e < cnt && rc == SQLITE_OK; e++) {
            sqlite3_bind_int(t, 1, (int)get_u16(a + 4 + 6 * e));
            sqlite3_bind_int64(t, 2, img);
            if (sqlite3_step(t) != SQLITE_ROW || sqlite3_column_int64(t, 0) != prob_bits(get_f32(a + 4 + 6 * e + 2))) {
                vtab_set_error(&p->base, "ram_index: integrity-check failed: image %lld lacks the posting of tag %u",
                               img, get_u16(a + 4 + 6 * e));
                rc = SQLITE_CORRUPT_VTAB;
            }
            sqlite3_reset(t);
        }
        nPost += cnt;
    }
    sqlite3_finalize(s);
    sqlite3_finalize(t);
    if (rc) return rc;
    zSql = sqlite3_mprintf("SELECT count(*) FROM \"%w\".\"%w_postings\"", p->zDb, p->zName);
    rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc) return rc;
    sqlite3_int64 nHave = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : -1;
    rc = sqlite3_finalize(s);
    if (rc == SQLITE_OK && nHave != nPost) {
        vtab_set_error(&p->base, "ram_index: integrity-check failed: %lld postings, the images record %lld", nHave,
                       nPost);
        rc = SQLITE_CORRUPT_VTAB;
    }
    return rc;
}

/* Starts a new generation for (digest, prep), reusing a matching old one. */
static int index_set_generation(IndexVtab *p, const char *zDigest, const char *zPrep, const char *zModelPath,
                                const char *zModelCfg, int bExif)
{
    sqlite3_stmt *s = 0;
    char *zSql = sqlite3_mprintf("SELECT id FROM \"%w\".\"%w_gens\" WHERE digest = ?1 AND prep = ?2", p->zDb,
                                 p->zName);
    int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc) return rc;
    sqlite3_bind_text(s, 1, zDigest, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, zPrep, -1, SQLITE_STATIC);
    sqlite3_int64 gen = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_finalize(s);
    if (!gen) {
        rc = index_exec(p->db, &p->base.zErrMsg, "INSERT INTO \"%w\".\"%w_gens\"(digest, prep, model) VALUES(%Q, %Q, %Q)",
                        p->zDb, p->zName, zDigest, zPrep, zModelPath);
        if (rc) return rc;
        gen = sqlite3_last_insert_rowid(p->db);
    }
    rc = index_exec(p->db, &p->base.zErrMsg,
                    "INSERT OR REPLACE INTO \"%w\".\"%w_config\"(key, value) VALUES('gen', %lld), ('model', %Q), "
                    "('exif', %d)",
                    p->zDb, p->zName, gen, zModelCfg, bExif);
    if (rc) return rc;
    /* zDigest may be p->zGenDigest itself: copy before freeing. */
    char *zD = sqlite3_mprintf("%s", zDigest), *zP = sqlite3_mprintf("%s", zPrep);
    if (!zD || !zP) {
        sqlite3_free(zD), sqlite3_free(zP);
        return SQLITE_NOMEM;
    }
    p->iGen = gen;
    p->bExif = bExif;
    sqlite3_free(p->zGenDigest), sqlite3_free(p->zGenPrep);
    p->zGenDigest = zD;
    p->zGenPrep = zP;
    p->bModelChecked = 0;
    return SQLITE_OK;
}

/* 'model' / 'model=PATH': index with another model from now on. */
static int cmd_model(IndexVtab *p, const char *zPath)
{
    char *zNew = zPath && zPath[0] ? sqlite3_mprintf("%s", zPath) : 0;
    if (zPath && zPath[0] && !zNew) return SQLITE_NOMEM;
    if (zNew && ram__trust_add(p->pConn, zNew)) { /* named here: may be opened */
        sqlite3_free(zNew);
        return SQLITE_NOMEM;
    }
    index_model_drop(p);
    sqlite3_free(p->zModel);
    p->zModel = zNew;
    int rc = index_model(p, 0);
    struct ram_model_info info;
    if (rc == SQLITE_OK) {
        ram_model_get_info(p->pModel, &info);
        if (info.n_image_tokens != p->nTok || info.embed_dim != p->nDim || info.num_class != p->nClass) {
            vtab_set_error(&p->base,
                           "ram_index: the model '%s' has %d tokens x %d, %d classes; %s holds %d x %d, %d classes "
                           "(create a new table for it)",
                           info.path, info.n_image_tokens, info.embed_dim, info.num_class, p->zName, p->nTok,
                           p->nDim, p->nClass);
            rc = SQLITE_ERROR;
        }
    }
    if (rc == SQLITE_OK) {
        char *zPrep = index_prep_string(p->bExif);
        rc = zPrep ? index_set_generation(p, info.digest, zPrep, info.path, p->zModel, p->bExif) : SQLITE_NOMEM;
        sqlite3_free(zPrep);
    }
    if (rc != SQLITE_OK) {
        /* The table keeps its model: the config was not changed (or is
        ** rolled back with the statement); reread it before the next use. */
        index_model_drop(p);
        p->bReloadConfig = 1;
    }
    return rc;
}

static int cmd_exif(IndexVtab *p, int bExif)
{
    int rc = index_model(p, 1);
    if (rc) return rc;
    char *zPrep = index_prep_string(bExif);
    if (!zPrep) return SQLITE_NOMEM;
    struct ram_model_info info;
    ram_model_get_info(p->pModel, &info);
    rc = index_set_generation(p, p->zGenDigest, zPrep, info.path, p->zModel, bExif);
    sqlite3_free(zPrep);
    return rc;
}

/* Collects the ids of stale images (gen other than the current one). */
static int stale_images(IndexVtab *p, const char *zExtra, sqlite3_int64 **paImg, int *pnImg)
{
    sqlite3_stmt *s = 0;
    char *zSql = sqlite3_mprintf("SELECT id FROM \"%w\".\"%w_images\" i WHERE (gen < ?1 OR gen > ?1) %s", p->zDb,
                                 p->zName, zExtra);
    int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    *paImg = 0;
    *pnImg = 0;
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, p->iGen);
    int n = 0, nAlloc = 0;
    sqlite3_int64 *a = 0;
    while (sqlite3_step(s) == SQLITE_ROW) {
        if (n == nAlloc) {
            nAlloc = nAlloc ? 2 * nAlloc : 64;
            sqlite3_int64 *b = sqlite3_realloc64(a, sizeof(sqlite3_int64) * (size_t)nAlloc);
            if (!b) {
                sqlite3_free(a);
                sqlite3_finalize(s);
                return SQLITE_NOMEM;
            }
            a = b;
        }
        a[n++] = sqlite3_column_int64(s, 0);
    }
    rc = sqlite3_finalize(s);
    if (rc) {
        sqlite3_free(a);
        return rc;
    }
    *paImg = a;
    *pnImg = n;
    return SQLITE_OK;
}

/* 'reembed': recomputes every stale image from its stored bytes. */
static int cmd_reembed(IndexVtab *p)
{
    int rc = index_model(p, 1);
    if (rc) return rc;
    sqlite3_int64 *a = 0;
    int n = 0;
    char *zExtra = sqlite3_mprintf("AND NOT EXISTS (SELECT 1 FROM \"%w\".\"%w_blobs\" b WHERE b.id = i.id)", p->zDb,
                                   p->zName);
    if (!zExtra) return SQLITE_NOMEM;
    rc = stale_images(p, zExtra, &a, &n);
    sqlite3_free(zExtra);
    sqlite3_free(a);
    if (rc) return rc;
    if (n) {
        vtab_set_error(&p->base,
                       "ram_index: reembed: %d stale image%s no stored bytes (store_images=0); re-insert %s files, "
                       "or run INSERT INTO %s(%s) VALUES('delete-stale')",
                       n, n == 1 ? " has" : "s have", n == 1 ? "its" : "their", p->zName, p->zName);
        return SQLITE_ERROR;
    }
    rc = stale_images(p, "", &a, &n);
    for (int i = 0; i < n && rc == SQLITE_OK; i++) {
        sqlite3_stmt *s = 0, *k = 0;
        char *zSql = sqlite3_mprintf("SELECT b.data, i.key FROM \"%w\".\"%w_blobs\" b JOIN \"%w\".\"%w_images\" i "
                                     "ON i.id = b.id WHERE b.id = ?1",
                                     p->zDb, p->zName, p->zDb, p->zName);
        rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
        sqlite3_free(zSql);
        if (rc) break;
        sqlite3_bind_int64(s, 1, a[i]);
        if (sqlite3_step(s) == SQLITE_ROW) {
            int nBlob = sqlite3_column_bytes(s, 0);
            void *pBlob = sqlite3_malloc(nBlob ? nBlob : 1);
            unsigned char aKey[16] = {0};
            if (!pBlob) rc = SQLITE_NOMEM;
            else {
                memcpy(pBlob, sqlite3_column_blob(s, 0), (size_t)nBlob);
                if (sqlite3_column_bytes(s, 1) == 16) memcpy(aKey, sqlite3_column_blob(s, 1), 16);
            }
            sqlite3_finalize(s);
            s = 0;
            if (rc == SQLITE_OK) {
                IndexEmbedding e;
                sqlite3_int64 img;
                rc = index_embed(p, aKey, pBlob, nBlob, &e);
                if (rc == SQLITE_OK) rc = index_write_image(p, a[i], aKey, &e, 0, 0, &img);
                embedding_clear(&e);
            }
            sqlite3_free(pBlob);
        }
        sqlite3_finalize(s);
        (void)k;
    }
    sqlite3_free(a);
    return rc;
}

/* 'delete-stale': removes the files whose image is stale. */
static int cmd_delete_stale(IndexVtab *p)
{
    sqlite3_int64 *a = 0;
    int n = 0;
    int rc = stale_images(p, "", &a, &n);
    for (int i = 0; i < n && rc == SQLITE_OK; i++) {
        rc = index_exec(p->db, &p->base.zErrMsg, "DELETE FROM \"%w\".\"%w_files\" WHERE img = %lld", p->zDb,
                        p->zName, a[i]);
        if (rc == SQLITE_OK) {
            /* Drop the image entry whatever its count: its files are gone. */
            rc = index_exec(p->db, &p->base.zErrMsg, "UPDATE \"%w\".\"%w_images\" SET nref = 1 WHERE id = %lld",
                            p->zDb, p->zName, a[i]);
            if (rc == SQLITE_OK) rc = index_image_ref(p, a[i], -1);
        }
    }
    sqlite3_free(a);
    return rc;
}

static int index_command(IndexVtab *p, sqlite3_value *pCmd)
{
    const char *z = (const char *)sqlite3_value_text(pCmd);
    if (!z) return SQLITE_NOMEM;
    if (!strcmp(z, "integrity-check")) return cmd_integrity(p);
    if (!strcmp(z, "reembed")) return cmd_reembed(p);
    if (!strcmp(z, "delete-stale")) return cmd_delete_stale(p);
    if (!strcmp(z, "model")) return cmd_model(p, 0);
    if (!strncmp(z, "model=", 6)) return cmd_model(p, z + 6);
    if (!strncmp(z, "exif=", 5)) {
        int b;
        if (parse_bool(z + 5, &b) == SQLITE_OK) return cmd_exif(p, b);
    }
    vtab_set_error(&p->base,
                   "ram_index: unknown command '%s' (expected integrity-check, reembed, delete-stale, model, "
                   "model=PATH or exif=0|1)",
                   z);
    return SQLITE_ERROR;
}

/* ------------------------------------------------------------------ writes */

/* The image value of an INSERT or UPDATE, checked. */
static int index_image_arg(IndexVtab *p, sqlite3_value *v, const void **ppBlob, int *pnBlob)
{
    int t = sqlite3_value_type(v);
    if (t != SQLITE_BLOB) {
        vtab_set_error(&p->base, "ram_index: image must be a BLOB of encoded image bytes, got %s",
                       t == SQLITE_NULL ? "NULL" : t == SQLITE_TEXT ? "TEXT" : "a number");
        return SQLITE_MISMATCH;
    }
    *pnBlob = sqlite3_value_bytes(v);
    *ppBlob = sqlite3_value_blob(v);
    if (!*ppBlob) *ppBlob = "";
    return SQLITE_OK;
}

static int index_insert(IndexVtab *p, sqlite3_value **argv, sqlite_int64 *pRowid)
{
    sqlite3_value *pPath = argv[2 + COL_PATH];
    const void *pBlob;
    int nBlob, rc;
    unsigned char aKey[16];
    rc = index_image_arg(p, argv[2 + COL_IMAGE], &pBlob, &nBlob);
    if (rc) return rc;
    rc = index_model(p, 1);
    if (rc) return rc;
    index_hash(pBlob, nBlob, aKey);

    sqlite3_int64 fid = 0, oldImg = 0, newImg = 0;
    if (sqlite3_value_type(pPath) != SQLITE_NULL) {
        sqlite3_stmt *s;
        rc = index_stmt(p, STMT_FILE_BY_PATH, &s);
        if (rc) return rc;
        sqlite3_bind_value(s, 1, pPath);
        if (sqlite3_step(s) == SQLITE_ROW) {
            fid = sqlite3_column_int64(s, 0);
            oldImg = sqlite3_column_int64(s, 1);
            int same = sqlite3_column_bytes(s, 2) == 16 && !memcmp(sqlite3_column_blob(s, 2), aKey, 16) &&
                       sqlite3_column_int64(s, 3) == p->iGen;
            if (same) {
                /* The same file again: nothing to do (resumable INSERT ... SELECT). */
                sqlite3_reset(s);
                STAT_ADD(reused, 1);
                *pRowid = fid;
                return SQLITE_OK;
            }
        }
        rc = sqlite3_reset(s);
        if (rc) return rc;
    }
    if (fid && sqlite3_value_type(argv[1]) != SQLITE_NULL && sqlite3_value_int64(argv[1]) != fid) {
        vtab_set_error(&p->base, "ram_index: path '%s' already has rowid %lld", sqlite3_value_text(pPath), fid);
        return SQLITE_CONSTRAINT;
    }
    rc = index_acquire_image(p, aKey, pBlob, nBlob, &newImg);
    if (rc) return rc;
    sqlite3_stmt *s;
    if (fid) {
        /* The path exists with other bytes: the file changed, point it at them. */
        rc = index_stmt(p, STMT_FILE_SET_IMG, &s);
        if (rc) return rc;
        sqlite3_bind_int64(s, 1, fid);
        sqlite3_bind_int64(s, 2, newImg);
        rc = index_step_done(p, s);
        if (rc == SQLITE_OK) rc = index_image_ref(p, oldImg, -1);
        *pRowid = fid;
        return rc;
    }
    rc = index_stmt(p, STMT_FILE_INSERT, &s);
    if (rc) return rc;
    sqlite3_bind_value(s, 1, argv[1]);
    sqlite3_bind_value(s, 2, pPath);
    sqlite3_bind_int64(s, 3, newImg);
    rc = index_step_done(p, s);
    if (rc) return rc;
    *pRowid = sqlite3_last_insert_rowid(p->db);
    return SQLITE_OK;
}

static int index_delete(IndexVtab *p, sqlite3_int64 fid)
{
    sqlite3_stmt *s;
    int rc = index_stmt(p, STMT_FILE_GET, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, fid);
    if (sqlite3_step(s) != SQLITE_ROW) return sqlite3_reset(s);
    sqlite3_int64 img = sqlite3_column_int64(s, 0);
    sqlite3_reset(s);
    rc = index_stmt(p, STMT_FILE_DELETE, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, fid);
    rc = index_step_done(p, s);
    if (rc) return rc;
    return index_image_ref(p, img, -1);
}

static int index_update(IndexVtab *p, sqlite3_value **argv)
{
    sqlite3_int64 fid = sqlite3_value_int64(argv[0]);
    static const int aReadOnly[] = {COL_TAGS, COL_SCORE, COL_KEY, COL_PROBS, COL_CLS, COL_TAGS_ZH, COL_STALE};
    for (size_t i = 0; i < sizeof aReadOnly / sizeof aReadOnly[0]; i++) {
        sqlite3_value *v = argv[2 + aReadOnly[i]];
        if (!sqlite3_value_nochange(v) && sqlite3_value_type(v) != SQLITE_NULL) {
            vtab_set_error(&p->base, "ram_index: column %s is read-only", azColName[aReadOnly[i]]);
            return SQLITE_READONLY;
        }
    }
    if (sqlite3_value_int64(argv[1]) != fid) {
        vtab_set_error(&p->base, "ram_index: the rowid cannot change");
        return SQLITE_READONLY;
    }
    sqlite3_stmt *s;
    int rc = index_stmt(p, STMT_FILE_SET_PATH, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, fid);
    sqlite3_bind_value(s, 2, argv[2 + COL_PATH]);
    rc = index_step_done(p, s);
    if (rc) return rc;
    sqlite3_value *pImage = argv[2 + COL_IMAGE];
    if (sqlite3_value_nochange(pImage)) return SQLITE_OK;
    const void *pBlob;
    int nBlob;
    unsigned char aKey[16];
    rc = index_image_arg(p, pImage, &pBlob, &nBlob);
    if (rc == SQLITE_OK) rc = index_model(p, 1);
    if (rc) return rc;
    index_hash(pBlob, nBlob, aKey);
    rc = index_stmt(p, STMT_FILE_GET, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, fid);
    sqlite3_int64 oldImg = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    sqlite3_reset(s);
    sqlite3_int64 newImg = 0;
    rc = index_acquire_image(p, aKey, pBlob, nBlob, &newImg);
    if (rc || newImg == oldImg) return rc ? rc : index_image_ref(p, newImg, -1);
    rc = index_stmt(p, STMT_FILE_SET_IMG, &s);
    if (rc) return rc;
    sqlite3_bind_int64(s, 1, fid);
    sqlite3_bind_int64(s, 2, newImg);
    rc = index_step_done(p, s);
    if (rc == SQLITE_OK && oldImg) rc = index_image_ref(p, oldImg, -1);
    return rc;
}

static int indexUpdate(sqlite3_vtab *pVtab, int argc, sqlite3_value **argv, sqlite_int64 *pRowid)
{
    IndexVtab *p = (IndexVtab *)pVtab;
    int rc = index_sync_config(p);
    if (rc != SQLITE_OK) return rc;
    if (argc == 1) return index_delete(p, sqlite3_value_int64(argv[0]));
    if (sqlite3_value_type(argv[0]) == SQLITE_NULL) {
        if (sqlite3_value_type(argv[2 + COL_NAME]) != SQLITE_NULL) return index_command(p, argv[2 + COL_NAME]);
        return index_insert(p, argv, pRowid);
    }
    return index_update(p, argv);
}

/* ------------------------------------------------------------------ transactions */

static int indexBegin(sqlite3_vtab *pVtab)
{
    ((IndexVtab *)pVtab)->bInWrite = 1;
    return SQLITE_OK;
}

static int indexSync(sqlite3_vtab *pVtab)
{
    journal_commit((IndexVtab *)pVtab);
    return SQLITE_OK;
}

static int indexCommit(sqlite3_vtab *pVtab)
{
    IndexVtab *p = (IndexVtab *)pVtab;
    p->bInWrite = 0;
    journal_forget(p);
    return SQLITE_OK;
}

static int indexRollback(sqlite3_vtab *pVtab)
{
    IndexVtab *p = (IndexVtab *)pVtab;
    p->bInWrite = 0;
    p->nTxnKey = 0;
    p->bReloadConfig = 1;
    journal_commit(p); /* keep the work: the next run resumes from it */
    return SQLITE_OK;
}

static int indexRename(sqlite3_vtab *pVtab, const char *zNew)
{
    IndexVtab *p = (IndexVtab *)pVtab;
    static const char *const azSuffix[] = {"config", "gens", "images", "tokens", "files", "postings", "cls", "blobs"};
    for (int i = 0; i < N_STMT; i++) {
        sqlite3_finalize(p->aStmt[i]);
        p->aStmt[i] = 0;
    }
    int rc = SQLITE_OK;
    for (int i = 0; i < 8 && rc == SQLITE_OK; i++)
        rc = index_exec(p->db, &p->base.zErrMsg, "ALTER TABLE \"%w\".\"%w_%s\" RENAME TO \"%w_%s\"", p->zDb,
                        p->zName, azSuffix[i], zNew, azSuffix[i]);
    if (rc == SQLITE_OK) {
        char *z = sqlite3_mprintf("%s", zNew);
        if (!z) return SQLITE_NOMEM;
        sqlite3_free(p->zName);
        p->zName = z;
    }
    return rc;
}

static int indexSavepoint(sqlite3_vtab *pVtab, int iSavepoint)
{
    (void)pVtab, (void)iSavepoint;
    return SQLITE_OK;
}

static int indexRelease(sqlite3_vtab *pVtab, int iSavepoint)
{
    (void)pVtab, (void)iSavepoint;
    return SQLITE_OK;
}

static int indexRollbackTo(sqlite3_vtab *pVtab, int iSavepoint)
{
    (void)iSavepoint;
    ((IndexVtab *)pVtab)->bReloadConfig = 1;
    return SQLITE_OK;
}

static int indexShadowName(const char *zName)
{
    static const char *const azShadow[] = {"config", "gens", "images", "tokens", "files", "postings", "cls", "blobs"};
    for (size_t i = 0; i < sizeof azShadow / sizeof azShadow[0]; i++)
        if (!sqlite3_stricmp(zName, azShadow[i])) return 1;
    return 0;
}

static const sqlite3_module g_indexModule = {
    /* iVersion    */ 3,
    /* xCreate     */ indexCreate,
    /* xConnect    */ indexConnect,
    /* xBestIndex  */ indexBestIndex,
    /* xDisconnect */ indexDisconnect,
    /* xDestroy    */ indexDestroy,
    /* xOpen       */ indexOpen,
    /* xClose      */ indexClose,
    /* xFilter     */ indexFilter,
    /* xNext       */ indexNext,
    /* xEof        */ indexEof,
    /* xColumn     */ indexColumn,
    /* xRowid      */ indexRowid,
    /* xUpdate     */ indexUpdate,
    /* xBegin      */ indexBegin,
    /* xSync       */ indexSync,
    /* xCommit     */ indexCommit,
    /* xRollback   */ indexRollback,
    /* xFindFunction */ 0,
    /* xRename     */ indexRename,
    /* xSavepoint  */ indexSavepoint,
    /* xRelease    */ indexRelease,
    /* xRollbackTo */ indexRollbackTo,
    /* xShadowName */ indexShadowName,
};

/* Flags, on purpose: ram_index_stats reports process state, so it is neither
** deterministic nor innocuous; DIRECTONLY as ram_debug(). */
static const struct ram_func_def g_aFunc[] = {
    {"ram_index_stats", 0, SQLITE_UTF8 | SQLITE_DIRECTONLY, indexStatsFunc},
};

int ram__register_index(sqlite3 *db, struct ram_conn *p, char **pzErrMsg)
{
    ram__conn_ref(p); /* dropped by the module destructor, also on failure */
    int rc = sqlite3_create_module_v2(db, "ram_index", &g_indexModule, p, ram__conn_unref);
    if (rc != SQLITE_OK) {
        *pzErrMsg = sqlite3_mprintf("ram: cannot register ram_index: %s", sqlite3_errmsg(db));
        return rc;
    }
    return ram__register_funcs(db, p, g_aFunc, (int)(sizeof g_aFunc / sizeof g_aFunc[0]), pzErrMsg);
}
