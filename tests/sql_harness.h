/*
** sql_harness.h — SQL helpers shared by the C tests that drive ram.so through
** SQLite (test_index.c, test_similar.c): open a database with the extension
** loaded, read a statement's rows as one string to compare with an expected
** one, run a statement, read one number. Include after harness.h.
*/
#ifndef RAM_SQL_HARNESS_H
#define RAM_SQL_HARNESS_H

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A connection to file with the extension so loaded and the given busy
** timeout (ms, 0: none), or NULL (the reason printed as "# ..."). */
static sqlite3 *sqlh_open(const char *file, const char *so, int busy_ms)
{
    sqlite3 *db = 0;
    if (sqlite3_open(file, &db)) return 0;
    sqlite3_enable_load_extension(db, 1);
    char *err = 0;
    if (sqlite3_load_extension(db, so, 0, &err)) {
        printf("# load %s: %s\n", so, err);
        sqlite3_free(err);
        sqlite3_close(db);
        return 0;
    }
    if (busy_ms > 0) sqlite3_busy_timeout(db, busy_ms);
    return db;
}

/* Rows of one statement as "a|b\nc|d" (NULL as "NULL", reals printed with
** real_fmt, BLOBs as "blob(N)"), or "ERROR: message". Caller frees. */
static char *sqlh_rows(sqlite3 *db, const char *sql, const char *real_fmt)
{
    sqlite3_stmt *s = 0;
    sqlite3_str *out = sqlite3_str_new(0);
    if (sqlite3_prepare_v2(db, sql, -1, &s, 0)) {
        sqlite3_str_appendf(out, "ERROR: %s", sqlite3_errmsg(db));
        goto done;
    }
    int rc, first = 1;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        if (!first) sqlite3_str_appendchar(out, 1, '\n');
        first = 0;
        for (int i = 0; i < sqlite3_column_count(s); i++) {
            if (i) sqlite3_str_appendchar(out, 1, '|');
            switch (sqlite3_column_type(s, i)) {
            case SQLITE_NULL: sqlite3_str_appendall(out, "NULL"); break;
            case SQLITE_FLOAT: sqlite3_str_appendf(out, real_fmt, sqlite3_column_double(s, i)); break;
            case SQLITE_BLOB: sqlite3_str_appendf(out, "blob(%d)", sqlite3_column_bytes(s, i)); break;
            default: sqlite3_str_appendall(out, (const char *)sqlite3_column_text(s, i));
            }
        }
    }
    if (rc != SQLITE_DONE) {
        sqlite3_str_reset(out);
        sqlite3_str_appendf(out, "ERROR: %s", sqlite3_errmsg(db));
    }
done:
    sqlite3_finalize(s);
    char *z = sqlite3_str_finish(out);
    char *r = strdup(z ? z : "");
    sqlite3_free(z);
    return r;
}

/* sqlite3_exec, printing the error ("# sql: message"); returns its rc. */
static int sqlh_exec(sqlite3 *db, const char *sql)
{
    char *err = 0;
    int rc = sqlite3_exec(db, sql, 0, 0, &err);
    if (rc) printf("# %s: %s\n", sql, err);
    sqlite3_free(err);
    return rc;
}

/* The first column of the first row as an integer, else -1. */
static long long sqlh_num(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *s = 0;
    long long v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &s, 0) == SQLITE_OK && sqlite3_step(s) == SQLITE_ROW)
        v = sqlite3_column_int64(s, 0);
    sqlite3_finalize(s);
    return v;
}

#endif
