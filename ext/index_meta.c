/*
** index_meta.c — when, with what and where each photo of a ram_index table
** was taken: the hidden columns taken, taken_source, camera_make,
** camera_model, latitude, longitude (and the input column mtime), kept in
** the shadow table photos_meta, one row per file row (id = photos_files.id).
**
**     INSERT INTO photos(path, image, mtime) SELECT name, data, mtime FROM fsdir('Pictures');
**     SELECT path, taken FROM photos WHERE tag = 'dog' AND taken >= '2019-01-01' ORDER BY taken;
**     SELECT path, camera_model, latitude, longitude FROM photos WHERE latitude IS NOT NULL;
**
** HOW IT WORKS: an INSERT (or UPDATE ... SET image) with image bytes reads
** their EXIF (core's ram_exif_read: header only, no pixel decoded):
** DateTimeOriginal with OffsetTimeOriginal -> taken, taken_source 'exif';
** without a usable date, the mtime given in the same statement (seconds
** since 1970, as fsdir() gives) -> taken as UTC "YYYY-MM-DDTHH:MM:SSZ",
** taken_source 'mtime'. A value given for a column in the statement wins
** over EXIF (so INSERT INTO main.photos(path, entry, taken, ...) SELECT
** path, entry, taken, ... FROM shard.photos copies them along with the
** entries, which carry no image bytes). ISO 8601 text sorts and compares as
** dates: taken >= '2019-01-01'; SQLite's date functions read it
** (datetime(taken) is UTC when an offset is known).
**
** The values live in their own shadow table so that the rest of the schema
** is untouched: a table made before it has no photos_meta, reads NULL in
** these columns, and gains the table at its first write (rerunning the
** same INSERT ... SELECT fills it: an unchanged file costs a hash and an
** EXIF read, no inference).
*/
#include "index.h"
SQLITE_EXTENSION_INIT3

#include <stdio.h>
#include <time.h>

/* Columns of photos_meta after id, in the order of COL_TAKEN ... COL_LONGITUDE. */
#define META_COLS "taken, taken_source, camera_make, camera_model, latitude, longitude"
#define N_META 6

int ram__index_meta_create(IndexVtab *p)
{
    if (p->eMeta == 1) return SQLITE_OK;
    int rc = ram__index_exec(p->db, &p->base.zErrMsg,
                             "CREATE TABLE IF NOT EXISTS \"%w\".\"%w_meta\"(id INTEGER PRIMARY KEY, taken TEXT, "
                             "taken_source TEXT, camera_make TEXT, camera_model TEXT, latitude REAL, longitude REAL)",
                             p->zDb, p->zName);
    if (rc == SQLITE_OK) p->eMeta = 1;
    return rc;
}

void ram__index_meta_reset(IndexVtab *p)
{
    sqlite3_finalize(p->pMetaGet);
    p->pMetaGet = 0;
    p->eMeta = 0;
}

int ram__index_meta_exists(IndexVtab *p)
{
    if (p->eMeta) return p->eMeta > 0;
    sqlite3_stmt *s = 0;
    char *zSql = sqlite3_mprintf("SELECT 1 FROM \"%w\".sqlite_master WHERE type = 'table' AND name = '%q_meta'", p->zDb,
                                 p->zName);
    if (zSql && sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) == SQLITE_OK)
        p->eMeta = sqlite3_step(s) == SQLITE_ROW ? 1 : -1;
    sqlite3_finalize(s);
    sqlite3_free(zSql);
    return p->eMeta > 0;
}

/* The stored values of row fid into a[] (copies; NULL where absent or no
** row); *pbRow (when not NULL) says whether the row exists. */
static int meta_read(IndexVtab *p, sqlite3_int64 fid, sqlite3_value *a[N_META], int *pbRow)
{
    for (int i = 0; i < N_META; i++) a[i] = 0;
    if (pbRow) *pbRow = 0;
    if (!ram__index_meta_exists(p)) return SQLITE_OK;
    if (!p->pMetaGet) {
        char *zSql = sqlite3_mprintf("SELECT " META_COLS " FROM \"%w\".\"%w_meta\" WHERE id = ?1", p->zDb, p->zName);
        if (!zSql) return SQLITE_NOMEM;
        int rc = sqlite3_prepare_v3(p->db, zSql, -1, SQLITE_PREPARE_PERSISTENT, &p->pMetaGet, 0);
        sqlite3_free(zSql);
        if (rc) {
            ram__vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
            return rc;
        }
    }
    sqlite3_bind_int64(p->pMetaGet, 1, fid);
    int rc = SQLITE_OK;
    int bRow = sqlite3_step(p->pMetaGet) == SQLITE_ROW;
    if (pbRow) *pbRow = bRow;
    if (bRow)
        for (int i = 0; i < N_META && rc == SQLITE_OK; i++)
            if (sqlite3_column_type(p->pMetaGet, i) != SQLITE_NULL &&
                !(a[i] = sqlite3_value_dup(sqlite3_column_value(p->pMetaGet, i))))
                rc = SQLITE_NOMEM;
    int rc2 = sqlite3_reset(p->pMetaGet);
    if (rc == SQLITE_OK && rc2 != SQLITE_OK) {
        ram__vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
        rc = rc2;
    }
    return rc;
}

static void meta_free(sqlite3_value *a[N_META])
{
    for (int i = 0; i < N_META; i++) sqlite3_value_free(a[i]), a[i] = 0;
}

int ram__index_meta_column(IndexVtab *p, sqlite3_context *ctx, sqlite3_int64 fid, int iCol)
{
    if (iCol == COL_MTIME) return SQLITE_OK; /* input only */
    sqlite3_value *a[N_META];
    int rc = meta_read(p, fid, a, 0);
    if (rc == SQLITE_OK && a[iCol - COL_TAKEN]) sqlite3_result_value(ctx, a[iCol - COL_TAKEN]);
    meta_free(a);
    return rc;
}

int ram__index_meta_delete(IndexVtab *p, sqlite3_int64 fid)
{
    if (!ram__index_meta_exists(p)) return SQLITE_OK;
    if (fid < 0)
        return ram__index_exec(p->db, &p->base.zErrMsg,
                               "DELETE FROM \"%w\".\"%w_meta\" WHERE id NOT IN (SELECT id FROM \"%w\".\"%w_files\")",
                               p->zDb, p->zName, p->zDb, p->zName);
    return ram__index_exec(p->db, &p->base.zErrMsg, "DELETE FROM \"%w\".\"%w_meta\" WHERE id = %lld", p->zDb, p->zName,
                           fid);
}

/* A value given for column iCol in the statement (not NULL; for an UPDATE
** not reported unchanged) is checked here: the text columns take TEXT,
** latitude and longitude a number in range. */
static int given_check(IndexVtab *p, sqlite3_value *v, int iCol)
{
    int t = sqlite3_value_type(v);
    const char *zCol = ram__index_col_names[iCol];
    if (iCol == COL_LATITUDE || iCol == COL_LONGITUDE) {
        double lim = iCol == COL_LATITUDE ? 90.0 : 180.0, d = sqlite3_value_double(v);
        if ((t != SQLITE_INTEGER && t != SQLITE_FLOAT) || !(d >= -lim && d <= lim)) {
            ram__vtab_set_error(&p->base, "ram_index: %s must be a number of degrees from %g to %g, or NULL", zCol,
                                -lim, lim);
            return SQLITE_MISMATCH;
        }
    } else if (iCol == COL_MTIME) {
        double d = sqlite3_value_double(v);
        /* years 1800 to 9999, so that the ISO text keeps four digits */
        if ((t != SQLITE_INTEGER && t != SQLITE_FLOAT) || !(d >= -5364662400.0 && d < 253402300800.0)) {
            ram__vtab_set_error(&p->base, "ram_index: mtime must be the file's modification time in seconds since "
                                          "1970 (as fsdir() gives), or NULL");
            return SQLITE_MISMATCH;
        }
    } else if (t != SQLITE_TEXT) {
        ram__vtab_set_error(&p->base, "ram_index: %s must be TEXT or NULL", zCol);
        return SQLITE_MISMATCH;
    }
    return SQLITE_OK;
}

/* 1 when the statement gives column iCol a value. */
static int is_given(sqlite3_value **argv, int iCol, int bUpdate)
{
    sqlite3_value *v = argv[2 + iCol];
    if (bUpdate && sqlite3_value_nochange(v)) return 0;
    return sqlite3_value_type(v) != SQLITE_NULL;
}

int ram__index_meta_check(IndexVtab *p, sqlite3_value **argv, int bUpdate)
{
    for (int c = COL_TAKEN; c <= COL_MTIME; c++) {
        int rc = is_given(argv, c, bUpdate) ? given_check(p, argv[2 + c], c) : SQLITE_OK;
        if (rc) return rc;
    }
    return SQLITE_OK;
}

int ram__index_meta_write(IndexVtab *p, sqlite3_int64 fid, sqlite3_value **argv, const void *pBlob, int nBlob,
                          int bUpdate)
{
    int bAny = pBlob != 0, rc = ram__index_meta_check(p, argv, bUpdate);
    if (rc) return rc;
    /* The same file inserted again (a rerun of INSERT ... SELECT) whose
    ** values are stored: its bytes say nothing new, and reading their EXIF
    ** opens the image header with libvips, far dearer than the hash the
    ** rerun otherwise costs, so the row is kept as an UPDATE keeps it (a new
    ** mtime still replaces a date that came from one). */
    if (!bUpdate && pBlob && p->bSameFile) {
        int bRow = 0, bGiven = 0;
        sqlite3_value *aTmp[N_META];
        rc = meta_read(p, fid, aTmp, &bRow);
        meta_free(aTmp);
        if (rc) return rc;
        for (int c = COL_TAKEN; c < COL_MTIME; c++) bGiven |= is_given(argv, c, 0);
        if (bRow && !bGiven) return ram__index_meta_write(p, fid, argv, 0, 0, 1);
    }
    for (int c = COL_TAKEN; c <= COL_MTIME; c++) bAny |= is_given(argv, c, bUpdate);
    /* An UPDATE of other columns (a rename) leaves the values alone. */
    if (bUpdate && !bAny) return SQLITE_OK;
    sqlite3_value *aOld[N_META] = {0};
    if (bUpdate && (rc = meta_read(p, fid, aOld, 0))) goto done;
    struct ram_exif x;
    struct ram_error err;
    memset(&x, 0, sizeof x);
    /* Broken EXIF or undecodable bytes give no values, never an error:
    ** the image path reports bad images. */
    if (pBlob && ram_exif_read(pBlob, (size_t)nBlob, &x, &err) != RAM_OK) memset(&x, 0, sizeof x);
    /* An UPDATE without new bytes keeps an EXIF date over a new mtime. */
    if (bUpdate && !pBlob && aOld[0] && aOld[1] && !strcmp((const char *)sqlite3_value_text(aOld[1]), "exif")) {
        const char *z = (const char *)sqlite3_value_text(aOld[0]);
        if (z) snprintf(x.taken, sizeof x.taken, "%s", z);
    }
    char zMtime[32] = "";
    if (is_given(argv, COL_MTIME, bUpdate)) {
        time_t t = (time_t)sqlite3_value_int64(argv[2 + COL_MTIME]);
        struct tm tm;
        if (gmtime_r(&t, &tm)) strftime(zMtime, sizeof zMtime, "%Y-%m-%dT%H:%M:%SZ", &tm);
    }
    if ((rc = ram__index_meta_create(p))) goto done;
    sqlite3_stmt *s = 0;
    char *zSql = sqlite3_mprintf("INSERT OR REPLACE INTO \"%w\".\"%w_meta\"(id, " META_COLS
                                 ") VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                                 p->zDb, p->zName);
    rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc) goto done;
    sqlite3_bind_int64(s, 1, fid);
    /* Each column: the statement's value, else what the bytes say, else
    ** (UPDATE without new bytes) the stored one. */
    for (int c = COL_TAKEN; c <= COL_LONGITUDE; c++) {
        int iBind = 2 + (c - COL_TAKEN);
        if (is_given(argv, c, bUpdate)) {
            sqlite3_bind_value(s, iBind, argv[2 + c]);
            continue;
        }
        const char *z = 0;
        switch (c) {
        case COL_TAKEN: z = x.taken[0] ? x.taken : zMtime[0] && !is_given(argv, COL_TAKEN, bUpdate) ? zMtime : 0; break;
        case COL_TAKEN_SOURCE:
            if (is_given(argv, COL_TAKEN, bUpdate)) break; /* a given date's source is not known */
            z = x.taken[0] ? "exif" : zMtime[0] ? "mtime" : 0;
            break;
        case COL_CAMERA_MAKE: z = x.make[0] ? x.make : 0; break;
        case COL_CAMERA_MODEL: z = x.model[0] ? x.model : 0; break;
        case COL_LATITUDE:
            if (x.has_gps) sqlite3_bind_double(s, iBind, x.latitude);
            break;
        case COL_LONGITUDE:
            if (x.has_gps) sqlite3_bind_double(s, iBind, x.longitude);
            break;
        default: break;
        }
        if (z) {
            sqlite3_bind_text(s, iBind, z, -1, SQLITE_TRANSIENT);
            continue;
        }
        /* Nothing new for this column: an UPDATE keeps what it had,
        ** unless new bytes replaced the image (then they decide). */
        int bKeep = bUpdate && !pBlob && aOld[c - COL_TAKEN];
        if (bKeep && sqlite3_bind_value(s, iBind, aOld[c - COL_TAKEN]) != SQLITE_OK) rc = SQLITE_NOMEM;
    }
    if (rc == SQLITE_OK) sqlite3_step(s);
    int rc2 = sqlite3_finalize(s);
    if (rc == SQLITE_OK && rc2 != SQLITE_OK) {
        ram__vtab_set_error(&p->base, "ram_index: %s", sqlite3_errmsg(p->db));
        rc = rc2;
    }
done:
    meta_free(aOld);
    return rc;
}

int ram__index_meta_integrity(IndexVtab *p)
{
    if (!ram__index_meta_exists(p)) return SQLITE_OK;
    sqlite3_stmt *s = 0;
    char *zSql = sqlite3_mprintf("SELECT count(*) FROM \"%w\".\"%w_meta\" m WHERE NOT EXISTS (SELECT 1 FROM "
                                 "\"%w\".\"%w_files\" f WHERE f.id = m.id)",
                                 p->zDb, p->zName, p->zDb, p->zName);
    int rc = zSql ? sqlite3_prepare_v2(p->db, zSql, -1, &s, 0) : SQLITE_NOMEM;
    sqlite3_free(zSql);
    if (rc) return rc;
    sqlite3_int64 n = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
    rc = sqlite3_finalize(s);
    if (rc == SQLITE_OK && n) {
        ram__vtab_set_error(&p->base, "ram_index: integrity-check failed: %lld photos_meta rows belong to no file", n);
        return SQLITE_CORRUPT_VTAB;
    }
    return rc;
}
