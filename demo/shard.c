/*
** shard.c — the slicing rule of `ram-index --shard I/N`, and `ram-index
** --merge`, which moves the rows of shard databases into one serving index
** by their entries, without running the model (docs/SCALE.md).
**
**     ram-index --files-from LIST --shard 2/4 shard2.db
**     ram-index --merge serving.db shard0.db shard1.db shard2.db shard3.db
**     ram-index --merge new0.db --shard 0/8 --root /lib shard*.db  # 4 -> 8
**
** HOW IT WORKS
** - Slicing: a file belongs to shard XXH3-64(name) mod N, where name is its
**   path relative to the folder indexed (or the --files-from line as
**   written), lexically normalised. Nothing but the name enters the rule: a
**   file added to the library never moves an old one to another shard, and
**   every task of an array computes the same slices without talking to the
**   others. (Changing N does move files: choose N once.)
** - Merging: each shard is ATTACHed; its table's current generation (model
**   digest, preprocessing) must be the target's, and none of its rows stale;
**   for each of its rows the target's key
**   for the same path is looked up; a new or different one is stored with
**   INSERT INTO t(path, entry) (the entry carries the key, tokens and
**   probabilities; the table refuses one of another model). Rerunning a
**   merge therefore costs a lookup per row and stores nothing.
** - Re-sharding (N shards into M): a merge that keeps only the rows of one
**   new slice. A row's name for the rule is recovered from its stored path:
**   made absolute from its shard's folder, then relative to the folder the
**   names were sliced from (--root). Every row of the old shards goes to
**   exactly one new shard, the one `--shard I/M` would have indexed it
**   into, so the new layout's tasks find their files already stored.
*/
#include "shard.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

int ram_shard_parse(const char *z, unsigned *pI, unsigned *pN)
{
    char *end = 0;
    errno = 0;
    long long i = strtoll(z, &end, 10);
    if (end == z || *end != '/' || errno) return 0;
    const char *zN = end + 1;
    long long n = strtoll(zN, &end, 10);
    if (end == zN || *end || errno) return 0;
    if (n < 1 || n > 1000000 || i < 0 || i >= n) return 0;
    *pI = (unsigned)i, *pN = (unsigned)n;
    return 1;
}

unsigned ram_shard_of(const char *name, unsigned n)
{
    size_t len = strlen(name), o = 0;
    char *buf = malloc(len + 1);
    if (!buf) return 0; /* never reached in practice; shard 0 keeps the file somewhere */
    for (const char *p = name; *p;) {
        while (*p == '/') { /* one '/' kept for an absolute name, none after */
            if (o == 0 && p == name) buf[o++] = '/';
            p++;
        }
        const char *e = strchr(p, '/');
        size_t seg = e ? (size_t)(e - p) : strlen(p);
        if (seg == 0) break;
        if (!(seg == 1 && p[0] == '.')) {
            if (o > 0 && buf[o - 1] != '/') buf[o++] = '/';
            memcpy(buf + o, p, seg);
            o += seg;
        }
        p += seg;
    }
    unsigned s = (unsigned)(XXH3_64bits(buf, o) % n);
    free(buf);
    return s;
}

char *ram_path_normalised(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 3;
    char *in = malloc(n), *out = malloc(n);
    if (!in || !out) {
        free(in), free(out);
        return 0;
    }
    snprintf(in, n, name[0] == '/' ? "%s" : "%s/%s", name[0] == '/' ? name : dir, name);
    size_t o = 0;
    for (const char *p = in; *p;) {
        while (*p == '/') p++;
        const char *e = strchr(p, '/');
        size_t len = e ? (size_t)(e - p) : strlen(p);
        if (len == 0) break;
        if (len == 2 && p[0] == '.' && p[1] == '.') {
            while (o > 0 && out[o - 1] != '/') o--;
            if (o > 0) o--;
        } else if (!(len == 1 && p[0] == '.')) {
            out[o++] = '/';
            memcpy(out + o, p, len);
            o += len;
        }
        p += len;
    }
    if (o == 0) out[o++] = '/';
    out[o] = 0;
    free(in);
    return out;
}

const char *ram_path_relative(const char *full, const char *dir)
{
    size_t n = strlen(dir);
    if (n == 1) return full[0] == '/' ? full + 1 : full;
    if (!strncmp(full, dir, n) && full[n] == '/') return full + n + 1;
    return full;
}

const char *ram_shard_name(const char *full, const char *zRoot)
{
    if (!strcmp(zRoot, "/")) return full;
    size_t n = strlen(zRoot);
    return !strncmp(full, zRoot, n) && full[n] == '/' && full[n + 1] ? full + n + 1 : 0;
}

/* The realpath of the folder holding file z (malloc'd), or NULL. */
static char *folder_of(const char *z)
{
    char *real = realpath(z, 0);
    if (!real) return 0;
    char *slash = strrchr(real, '/');
    if (slash == real)
        slash[1] = 0;
    else if (slash)
        *slash = 0;
    return real;
}

int ram_shard_merge(sqlite3 *db, const char *table, const char *zDbDir, const char *zShard, const RamMergeSlice *pSlice,
                    RamMergeCounts *pCounts, char **pzErr)
{
    int rc = SQLITE_OK, bAttached = 0, bTxn = 0, nInTxn = 0;
    sqlite3_stmt *sAttach = 0, *sIsTable = 0, *sGen = 0, *sRows = 0, *sMine = 0, *sIns = 0;
    char *zSql = 0, *zShardDir = folder_of(zShard);
    *pzErr = 0;
    if (!zShardDir) {
        *pzErr = sqlite3_mprintf("--merge %s: %s", zShard, strerror(errno));
        return SQLITE_CANTOPEN;
    }
#define MERGE_TRY(x)                             \
    do {                                         \
        if ((rc = (x)) != SQLITE_OK) goto error; \
    } while (0)
    MERGE_TRY(sqlite3_prepare_v2(db, "ATTACH ?1 AS ram_shard", -1, &sAttach, 0));
    sqlite3_bind_text(sAttach, 1, zShard, -1, SQLITE_STATIC);
    if (sqlite3_step(sAttach) != SQLITE_DONE) {
        rc = sqlite3_errcode(db);
        goto error;
    }
    bAttached = 1;
    /* (a missing file was refused by folder_of: ATTACH would have made it) */
    MERGE_TRY(sqlite3_prepare_v2(db,
                                 "SELECT 1 FROM ram_shard.sqlite_schema WHERE type = 'table' AND name = ?1 AND sql "
                                 "LIKE 'CREATE VIRTUAL TABLE%ram_index%'",
                                 -1, &sIsTable, 0));
    sqlite3_bind_text(sIsTable, 1, table, -1, SQLITE_STATIC);
    if (sqlite3_step(sIsTable) != SQLITE_ROW) {
        rc =
            sqlite3_errcode(db) == SQLITE_OK || sqlite3_errcode(db) == SQLITE_DONE ? SQLITE_ERROR : sqlite3_errcode(db);
        *pzErr = sqlite3_mprintf("--merge %s: no ram_index table %s in it", zShard, table);
        goto error;
    }
    /* The shard's current generation (model digest, preprocessing) must be
    ** the target's: rows with equal keys are otherwise not the same entry. */
    zSql = sqlite3_mprintf("SELECT s.digest, s.prep, m.digest, m.prep FROM ram_shard.\"%w_gens\" s, main.\"%w_gens\" m "
                           "WHERE s.id = (SELECT value FROM ram_shard.\"%w_config\" WHERE key = 'gen') AND m.id = "
                           "(SELECT value FROM main.\"%w_config\" WHERE key = 'gen')",
                           table, table, table, table);
    MERGE_TRY(zSql ? sqlite3_prepare_v2(db, zSql, -1, &sGen, 0) : SQLITE_NOMEM);
    sqlite3_free(zSql);
    zSql = 0;
    if (sqlite3_step(sGen) != SQLITE_ROW) {
        rc = SQLITE_CORRUPT;
        *pzErr = sqlite3_mprintf("--merge %s: table %s has no current generation", zShard, table);
        goto error;
    }
    for (int c = 0; c < 2; c++) {
        const char *zS = (const char *)sqlite3_column_text(sGen, c),
                   *zM = (const char *)sqlite3_column_text(sGen, c + 2);
        if (!zS || !zM || strcmp(zS, zM)) {
            rc = SQLITE_ERROR;
            *pzErr = sqlite3_mprintf("--merge %s: its table %s was made with another model or preprocessing (digest "
                                     "%.12s..., %s) than %s uses (digest %.12s..., %s): merge shards of one model",
                                     zShard, table, sqlite3_column_text(sGen, 0), sqlite3_column_text(sGen, 1), table,
                                     sqlite3_column_text(sGen, 2), sqlite3_column_text(sGen, 3));
            goto error;
        }
    }
    zSql = sqlite3_mprintf("SELECT rowid, path, key, stale FROM ram_shard.\"%w\"", table);
    MERGE_TRY(zSql ? sqlite3_prepare_v2(db, zSql, -1, &sRows, 0) : SQLITE_NOMEM);
    sqlite3_free(zSql);
    zSql = sqlite3_mprintf("SELECT key FROM main.\"%w\" WHERE path = ?1", table);
    MERGE_TRY(zSql ? sqlite3_prepare_v2(db, zSql, -1, &sMine, 0) : SQLITE_NOMEM);
    sqlite3_free(zSql);
    /* The row's caption (NULL unless both tables have captions=1), date,
    ** camera and place go along with its entry (an entry carries no image
    ** bytes to read them from again). The shard's row is there: sRows reads
    ** the same snapshot. */
#define SHARD_META "caption, taken, taken_source, camera_make, camera_model, latitude, longitude"
    zSql = sqlite3_mprintf("INSERT INTO main.\"%w\"(path, entry, " SHARD_META ") SELECT ?1, entry, " SHARD_META
                           " FROM ram_shard.\"%w\" WHERE rowid = ?2",
                           table, table);
#undef SHARD_META
    MERGE_TRY(zSql ? sqlite3_prepare_v2(db, zSql, -1, &sIns, 0) : SQLITE_NOMEM);
    sqlite3_free(zSql);
    zSql = 0;
    /* The shard is read inside the write transaction: its rows and their
    ** entries come from one snapshot per commit. */
    for (;;) {
        if (!bTxn) {
            MERGE_TRY(sqlite3_exec(db, "BEGIN IMMEDIATE", 0, 0, 0));
            bTxn = 1;
        }
        int step = sqlite3_step(sRows);
        if (step == SQLITE_DONE) break;
        if (step != SQLITE_ROW) {
            rc = sqlite3_errcode(db);
            goto error;
        }
        const char *zPath = (const char *)sqlite3_column_text(sRows, 1);
        if (!zPath) {
            pCounts->nNoPath++;
            continue;
        }
        if (sqlite3_column_int(sRows, 3)) { /* embedded with an older generation of the shard */
            rc = SQLITE_ERROR;
            *pzErr = sqlite3_mprintf("--merge %s: %s was embedded with another model than the shard's current one "
                                     "(stale): finish that shard first (ram-index --switch-model, or the "
                                     "delete-stale command)",
                                     zShard, zPath);
            goto error;
        }
        char *zFull = ram_path_normalised(zShardDir, zPath);
        if (!zFull) {
            rc = SQLITE_NOMEM;
            goto error;
        }
        if (pSlice) { /* re-sharding: only the rows of the slice asked for */
            const char *zRuled = ram_shard_name(zFull, pSlice->zRoot);
            if (!zRuled) {
                rc = SQLITE_ERROR;
                *pzErr = sqlite3_mprintf("--merge %s: %s is not under --root %s, so its slice is unknown: give the "
                                         "folder the names were sliced from (the DIR of `ram-index DIR`, the folder a "
                                         "--files-from list's relative names are read from, or / for absolute names)",
                                         zShard, zFull, pSlice->zRoot);
                free(zFull);
                goto error;
            }
            if (ram_shard_of(zRuled, pSlice->n) != pSlice->i) {
                pCounts->nOther++;
                free(zFull);
                continue;
            }
        }
        const char *zName = ram_path_relative(zFull, zDbDir);
        sqlite3_bind_text(sMine, 1, zName, -1, SQLITE_STATIC);
        int have = sqlite3_step(sMine);
        int bSame = have == SQLITE_ROW && sqlite3_column_bytes(sMine, 0) == 16 &&
                    sqlite3_column_bytes(sRows, 2) == 16 &&
                    !memcmp(sqlite3_column_blob(sMine, 0), sqlite3_column_blob(sRows, 2), 16);
        if (have != SQLITE_ROW && have != SQLITE_DONE) {
            free(zFull);
            rc = sqlite3_errcode(db);
            goto error;
        }
        sqlite3_reset(sMine);
        if (bSame) {
            pCounts->nUnchanged++;
        } else {
            sqlite3_bind_text(sIns, 1, zName, -1, SQLITE_STATIC);
            sqlite3_bind_int64(sIns, 2, sqlite3_column_int64(sRows, 0));
            int ins = sqlite3_step(sIns);
            sqlite3_reset(sIns);
            if (ins != SQLITE_DONE) {
                rc = sqlite3_errcode(db);
                *pzErr = sqlite3_mprintf("--merge %s: %s: %s", zShard, zName, sqlite3_errmsg(db));
                free(zFull);
                goto error;
            }
            if (have == SQLITE_ROW)
                pCounts->nChanged++;
            else
                pCounts->nNew++;
        }
        free(zFull);
        if (++nInTxn == 256) {
            /* the row cursor stays open over the commit: WAL keeps its snapshot */
            MERGE_TRY(sqlite3_exec(db, "COMMIT", 0, 0, 0));
            bTxn = 0, nInTxn = 0;
        }
    }
    sqlite3_reset(sRows);
    if (bTxn) MERGE_TRY(sqlite3_exec(db, "COMMIT", 0, 0, 0));
    bTxn = 0;
error:
    if (rc != SQLITE_OK && !*pzErr) *pzErr = sqlite3_mprintf("--merge %s: %s", zShard, sqlite3_errmsg(db));
    sqlite3_finalize(sAttach);
    sqlite3_finalize(sIsTable);
    sqlite3_finalize(sGen);
    sqlite3_finalize(sRows);
    sqlite3_finalize(sMine);
    sqlite3_finalize(sIns);
    sqlite3_free(zSql);
    if (bTxn) sqlite3_exec(db, "ROLLBACK", 0, 0, 0);
    if (bAttached) sqlite3_exec(db, "DETACH ram_shard", 0, 0, 0);
    free(zShardDir);
    return rc;
#undef MERGE_TRY
}
