/*
** index_journal.c — the resume journal of ram_index: embeddings computed inside a
** write transaction are also committed, every few images, to a side
** database "<db file>-ramjournal", so that an interrupted INSERT ... SELECT
** rerun costs a hash per image already done (index.h tells the story).
*/
#include "index.h"
SQLITE_EXTENSION_INIT3

#include <time.h>

/* ------------------------------------------------------------------ resume journal */

static int journal_open(IndexVtab *p)
{
    if (p->dbJournal) return SQLITE_OK;
    const char *zFile = sqlite3_db_filename(p->db, p->zDb);
    if (!zFile || !zFile[0]) return SQLITE_OK; /* memory or temp database: nothing to resume */
    char *zPath = sqlite3_mprintf("%s-ramjournal", zFile);
    if (!zPath) return SQLITE_NOMEM;
    int rc = sqlite3_open_v2(zPath, &p->dbJournal, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, 0);
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
        rc = sqlite3_prepare_v2(p->dbJournal, "INSERT OR REPLACE INTO journal VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)", -1,
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

void ram__journal_close(IndexVtab *p)
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
int ram__journal_get(IndexVtab *p, const unsigned char *aKey, IndexEmbedding *e)
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
            ram__probs_count(sqlite3_column_blob(s, 0), nProbs, p->nClass) >= 0 &&
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
                ram__embedding_clear(e);
            }
        }
    }
    sqlite3_reset(s);
    return hit;
}

void ram__journal_commit(IndexVtab *p)
{
    if (p->dbJournal && p->nJrnPending) {
        sqlite3_exec(p->dbJournal, "COMMIT", 0, 0, 0);
        p->nJrnPending = 0;
    }
}

/* Records a freshly computed embedding; commits every few images. */
void ram__journal_put(IndexVtab *p, const unsigned char *aKey, const IndexEmbedding *e)
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
    if (p->nJrnPending >= INDEX_JOURNAL_EVERY || time(0) - p->tJrnBegin >= 2) ram__journal_commit(p);
}

/* Remembers that key's embedding went into the open transaction. */
void ram__journal_note(IndexVtab *p, const unsigned char *aKey)
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
void ram__journal_forget(IndexVtab *p)
{
    if (!p->dbJournal) {
        p->nTxnKey = 0;
        return;
    }
    ram__journal_commit(p);
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
void ram__journal_drop(IndexVtab *p)
{
    journal_open(p);
    if (!p->dbJournal) return;
    ram__journal_commit(p);
    char *zSql = sqlite3_mprintf("DELETE FROM journal WHERE tbl = %Q", p->zName);
    if (zSql) sqlite3_exec(p->dbJournal, zSql, 0, 0, 0);
    sqlite3_free(zSql);
}
