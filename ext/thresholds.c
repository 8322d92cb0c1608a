/*
** thresholds.c — the sources of editable tag thresholds: per-connection
** overrides (set by ram_set_threshold(), func_thresholds.c) and persistent
** ones read from a table main.ram_thresholds. context.c combines them with
** a model's own thresholds into the effective per-class thresholds that
** ram_tags(), ram_tag_scores and ram_index use.
**
**     SELECT ram_set_threshold('cat', 0.5);   -- this connection only
**     SELECT ram_set_threshold('cat', NULL);  -- remove that override
**     SELECT ram_reset_thresholds();          -- remove all; returns how many
**     CREATE TABLE ram_thresholds(tag TEXT PRIMARY KEY, threshold REAL);
**     INSERT INTO ram_thresholds VALUES ('dog', 0.9);   -- kept in the file
**
** Precedence: ram_set_threshold() over a ram_thresholds row over the model's
** threshold (or 0.5 for open-set tags). Tags are English names, matched
** exactly; a name the model does not have still applies to open-set rows of
** that name. A tag is selected when score > threshold (strictly), as in the
** official code, so 1.0 never selects and 0.0 selects any positive score.
**
** HOW IT WORKS: the table is read with one SELECT when the database may have
** changed since the last read, and the effective thresholds are recomputed
** only then or when an override changes; so a statement tagging 10,000 rows
** reads the table once. "May have changed" is a fingerprint of three cheap
** values: sqlite3_total_changes64() (rows changed by this connection,
** counted when each statement completes), the SQLITE_FCNTL_DATA_VERSION of
** main (commits by any connection, this one included) and
** sqlite3_get_autocommit() (a transaction ending, by COMMIT or ROLLBACK).
** Known limit: inside one explicit transaction, a DROP TABLE of
** ram_thresholds or a ROLLBACK TO a savepoint is seen at the end of the
** transaction, not before (neither changes any of the three values).
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#include <string.h>

static void free_rows(struct ram_override *a, int n)
{
    for (int i = 0; i < n; i++) sqlite3_free(a[i].zTag);
    sqlite3_free(a);
}

void ram__thresh_free(struct ram_thresh_src *p)
{
    free_rows(p->aOver, p->nOver);
    p->aOver = 0;
    p->nOver = p->nOverAlloc = 0;
    free_rows(p->aTab, p->nTab);
    p->aTab = 0;
    p->nTab = 0;
    p->bTabValid = 0;
    p->iGen++;
}

static int table_exists(sqlite3 *db)
{
    sqlite3_stmt *pStmt = 0;
    int bFound = 0;
    if (sqlite3_prepare_v2(db,
                           "SELECT 1 FROM main.sqlite_schema WHERE name = 'ram_thresholds' "
                           "AND type IN ('table', 'view')",
                           -1, &pStmt, 0) == SQLITE_OK) {
        bFound = sqlite3_step(pStmt) == SQLITE_ROW;
    }
    sqlite3_finalize(pStmt);
    return bFound;
}

int ram__thresh_refresh(struct ram_thresh_src *p, sqlite3 *db, const char *zFunc, char **pzErr)
{
    sqlite3_int64 nChange = sqlite3_total_changes64(db);
    unsigned int v = 0;
    int rcV = sqlite3_file_control(db, "main", SQLITE_FCNTL_DATA_VERSION, &v);
    int bAuto = sqlite3_get_autocommit(db);
    if (p->bTabValid && rcV == SQLITE_OK && nChange == p->tabChanges && v == p->tabDataVersion &&
        bAuto == p->tabAutocommit) {
        return SQLITE_OK;
    }

    /* Reading the table can run SQL functions (a view, a generated column):
    ** one that calls ram_tags() would come back here and recurse until the
    ** stack overflows. */
    if (p->bInTab) {
        *pzErr = ram__mprintf("%s(): main.ram_thresholds cannot itself call ram_tags() or "
                              "ram_tag_scores()",
                              zFunc);
        return SQLITE_ERROR;
    }
    struct ram_override *a = 0;
    int n = 0, nAlloc = 0, rc = SQLITE_OK;
    sqlite3_stmt *pStmt = 0;
    p->bInTab = 1;
    rc = sqlite3_prepare_v2(db, "SELECT tag, threshold FROM main.ram_thresholds", -1, &pStmt, 0);
    if (rc != SQLITE_OK) {
        if (rc == SQLITE_NOMEM) goto done;
        /* The message first: table_exists() runs another statement. */
        char *zMsg = ram__mprintf("%s(): cannot read main.ram_thresholds: %s", zFunc, sqlite3_errmsg(db));
        if (!table_exists(db)) {
            sqlite3_free(zMsg);
            rc = SQLITE_OK; /* no table: no persistent overrides */
        } else {
            *pzErr = zMsg;
            if (!zMsg) rc = SQLITE_NOMEM;
        }
        goto done;
    }
    while ((rc = sqlite3_step(pStmt)) == SQLITE_ROW) {
        if (sqlite3_column_type(pStmt, 0) == SQLITE_NULL || sqlite3_column_type(pStmt, 1) == SQLITE_NULL) continue;
        const char *zTag = (const char *)sqlite3_column_text(pStmt, 0);
        int nTag = sqlite3_column_bytes(pStmt, 0);
        if (!zTag) {
            rc = SQLITE_NOMEM;
            goto done;
        }
        int t = sqlite3_column_type(pStmt, 1);
        double r = sqlite3_column_double(pStmt, 1);
        if ((t != SQLITE_INTEGER && t != SQLITE_FLOAT) || !(r >= 0.0 && r <= 1.0)) {
            *pzErr = ram__mprintf("%s(): main.ram_thresholds: the threshold of '%s' must be a number "
                                  "in [0, 1]",
                                  zFunc, zTag);
            rc = SQLITE_ERROR;
            goto done;
        }
        if (n == nAlloc) {
            int nNew = nAlloc ? 2 * nAlloc : 16;
            struct ram_override *aNew = sqlite3_realloc64(a, sizeof *a * (sqlite3_uint64)nNew);
            if (!aNew) {
                rc = SQLITE_NOMEM;
                goto done;
            }
            a = aNew;
            nAlloc = nNew;
        }
        a[n].zTag = ram__memdup(zTag, nTag);
        if (!a[n].zTag) {
            rc = SQLITE_NOMEM;
            goto done;
        }
        a[n].nTag = nTag;
        a[n].rVal = r;
        n++;
    }
    if (rc == SQLITE_DONE) {
        rc = SQLITE_OK;
    } else if (rc != SQLITE_NOMEM) {
        *pzErr = ram__mprintf("%s(): cannot read main.ram_thresholds: %s", zFunc, sqlite3_errmsg(db));
    }

done:
    sqlite3_finalize(pStmt);
    p->bInTab = 0;
    if (rc != SQLITE_OK) {
        free_rows(a, n);
        return rc;
    }
    free_rows(p->aTab, p->nTab);
    p->aTab = a;
    p->nTab = n;
    p->bTabValid = rcV == SQLITE_OK;
    p->tabChanges = nChange;
    p->tabDataVersion = v;
    p->tabAutocommit = bAuto;
    p->iGen++;
    return SQLITE_OK;
}

static int find_row(const struct ram_override *a, int n, const char *z, int nz)
{
    for (int i = 0; i < n; i++) {
        if (a[i].nTag == nz && !memcmp(a[i].zTag, z, (size_t)nz)) return i;
    }
    return -1;
}

double ram__thresh_by_name(const struct ram_thresh_src *p, const char *z, int n, double dflt)
{
    int i = find_row(p->aOver, p->nOver, z, n);
    if (i >= 0) return p->aOver[i].rVal;
    i = find_row(p->aTab, p->nTab, z, n);
    if (i >= 0) return p->aTab[i].rVal;
    return dflt;
}

int ram__thresh_override(struct ram_thresh_src *p, const char *zTag, int nTag, int bSet, double r)
{
    int i = find_row(p->aOver, p->nOver, zTag, nTag);
    if (!bSet) {
        if (i >= 0) {
            sqlite3_free(p->aOver[i].zTag);
            p->aOver[i] = p->aOver[--p->nOver];
            p->iGen++;
        }
        return SQLITE_OK;
    }
    if (i < 0) {
        if (p->nOver == p->nOverAlloc) {
            int nNew = p->nOverAlloc ? 2 * p->nOverAlloc : 8;
            struct ram_override *aNew = sqlite3_realloc64(p->aOver, sizeof *aNew * (sqlite3_uint64)nNew);
            if (!aNew) return SQLITE_NOMEM;
            p->aOver = aNew;
            p->nOverAlloc = nNew;
        }
        char *z = ram__memdup(zTag, nTag);
        if (!z) return SQLITE_NOMEM;
        i = p->nOver++;
        p->aOver[i].zTag = z;
        p->aOver[i].nTag = nTag;
    }
    p->aOver[i].rVal = r;
    p->iGen++;
    return SQLITE_OK;
}

int ram__thresh_reset(struct ram_thresh_src *p)
{
    int n = p->nOver;
    free_rows(p->aOver, p->nOver);
    p->aOver = 0;
    p->nOver = p->nOverAlloc = 0;
    p->iGen++;
    return n;
}
