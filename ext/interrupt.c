/*
** interrupt.c — how the extension sees sqlite3_interrupt(): the engine polls
** an abort callback between network stages, and the SQL surfaces poll it
** between descriptions and scan batches.
**
** sqlite3_is_interrupted() exists from SQLite 3.41; the API table handed to
** extensions grows only at its end, so when the running library is 3.41 or
** newer its entry is read from the slot after value_encoding (3.40's last
** entry), even though this file is compiled against 3.40's sqlite3ext.h. On
** 3.40 there is no public reader of the flag that sqlite3_interrupt() sets,
** but the SQL tokenizer checks that flag at every whitespace token and the
** flag is only cleared when no statement is running. Our function runs
** inside a running statement, so preparing the one-space SQL " " returns
** SQLITE_INTERRUPT exactly when the connection was interrupted (and
** prepares no statement otherwise): a public-API probe costing about a
** microsecond, polled a handful of times per image. (The engine calls the
** callback on the calling thread, between stages, never from its workers:
** the probe uses the connection, which only that thread may touch.) Either
** way the function then fails with SQLITE_INTERRUPT and the message
** "<function>(): interrupted".
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#include <string.h>

/* sqlite3_is_interrupted of the running library, or NULL before 3.41. Set
** at every load (always to the same value: one library per process), read
** by any thread: atomic, relaxed. */
typedef int (*is_interrupted_fn)(sqlite3 *);
static is_interrupted_fn g_is_interrupted;

void ram__interrupt_init(const sqlite3_api_routines *pApi)
{
    is_interrupted_fn x = 0;
#if SQLITE_VERSION_NUMBER >= 3041000
    if (sqlite3_libversion_number() >= 3041000) x = pApi->is_interrupted;
#else
    if (sqlite3_libversion_number() >= 3041000) {
        /* The slot after value_encoding (see the header comment). All
        ** members of sqlite3_api_routines are function pointers. */
        void *const *aSlot = (void *const *)pApi;
        size_t i = offsetof(sqlite3_api_routines, value_encoding) / sizeof(void *) + 1;
        memcpy(&x, &aSlot[i], sizeof x);
    }
#endif
    __atomic_store_n(&g_is_interrupted, x, __ATOMIC_RELAXED);
}

const char *ram__interrupt_method(void)
{
    return __atomic_load_n(&g_is_interrupted, __ATOMIC_RELAXED) ? "sqlite3_is_interrupted" : "parser probe";
}

int ram__interrupted(void *pDb)
{
    sqlite3 *db = pDb;
    is_interrupted_fn x = __atomic_load_n(&g_is_interrupted, __ATOMIC_RELAXED);
    if (x) return x(db) != 0;
    sqlite3_stmt *pStmt = 0;
    int rc = sqlite3_prepare_v2(db, " ", 1, &pStmt, 0);
    sqlite3_finalize(pStmt);
    return rc == SQLITE_INTERRUPT;
}
