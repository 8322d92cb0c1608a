/*
** test_interrupt_vocab.c — sqlite3_interrupt() stops the encoding of a long
** open-set description list promptly. The CLIP text tower has no abort
** callback, so before the fix a vocabulary of a million descriptions ran
** for seconds after the interrupt. Here a list just under the cap of
** 262,144 descriptions (several seconds of work) is interrupted from
** another thread after 200 ms; the statement must end with SQLITE_INTERRUPT
** within 1 s of the interrupt, and the connection must work afterwards.
**
**     RAM_BUILD=build build/test_interrupt_vocab
*/
#include "harness.h"

#include <pthread.h>
#include <sqlite3.h>
#include <time.h>

#define N_DES 262143 /* one under the cap: accepted, then interrupted */

static char g_so[1024], g_clip[1024];

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

struct interrupter {
    sqlite3 *db;
    double tFired; /* when sqlite3_interrupt was called */
};

static void *interrupt_later(void *pArg)
{
    struct interrupter *x = pArg;
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, 0);
    x->tFired = now_s();
    sqlite3_interrupt(x->db);
    return 0;
}

/* JSON array of nItem strings made by zFmt from the separator and the
** index (a format may ignore the index: extra arguments are allowed), in a malloc'd
** buffer. */
static char *big_list(const char *zFmt, int nItem)
{
    size_t cap = (size_t)nItem * 16 + 16, n = 0;
    char *z = malloc(cap);
    if (!z) return 0;
    z[n++] = '[';
    for (int i = 0; i < nItem; i++) n += (size_t)snprintf(z + n, cap - n, zFmt, i ? "," : "", i);
    z[n++] = ']';
    z[n] = 0;
    return z;
}

/* Runs sql (?1 the image, ?2 the text) while another thread interrupts it
** after 200 ms; checks the code, the message and the latency. */
static void run_interrupted(sqlite3 *db, const char *zName, const char *sql, const void *pImg, size_t nImg,
                            const char *zText, const char *zWantMsg)
{
    sqlite3_stmt *st = 0;
    int rc = sqlite3_prepare_v2(db, sql, -1, &st, 0);
    if (rc != SQLITE_OK) {
        check(0, zName, "prepare: %s", sqlite3_errmsg(db));
        return;
    }
    sqlite3_bind_blob(st, 1, pImg, (int)nImg, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, zText, -1, SQLITE_STATIC);
    struct interrupter x = {db, 0};
    pthread_t th;
    pthread_create(&th, 0, interrupt_later, &x);
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {}
    double tEnd = now_s();
    pthread_join(th, 0);
    const char *zMsg = sqlite3_errmsg(db);
    double lag = tEnd - x.tFired;
    check(rc == SQLITE_INTERRUPT && strstr(zMsg, zWantMsg) && lag < 1.0, zName,
          "rc %d (%s), %.3f s after the interrupt", rc, zMsg, lag);
    printf("INFO: %s: ended %.3f s after the interrupt\n", zName, lag);
    sqlite3_finalize(st);
}

int main(void)
{
    (void)check_close_npy; /* harness.h helper this test does not need */
    const char *b = getenv("RAM_BUILD");
    if (!b) b = "build";
    snprintf(g_so, sizeof g_so, "%s/ram.so", b);
    snprintf(g_clip, sizeof g_clip, "%s/models/golden_ram_plus_clip.ram", b);
    size_t nImg = 0;
    unsigned char *pImg = read_file(data_path("golden/images/img0.jpg"), &nImg);
    /* Distinct tags: the text cache, keyed per tag, cannot answer them. */
    char *zVocab = big_list("%s\"t%d\"", N_DES);
    /* ram_score's list must fit its 1 MB text limit: 200,000 short items
    ** (one cache key for the whole list, so repeats are all encoded). */
    char *zList = big_list("%s\"a\"", 200000);
    sqlite3 *db = 0;
    char *zErr = 0;
    sqlite3_open(":memory:", &db);
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, (int *)0);
    int rc = sqlite3_load_extension(db, g_so, 0, &zErr);
    check(rc == SQLITE_OK && pImg && zVocab && zList, "interrupt_vocab_setup", "%s", zErr ? zErr : "no data");
    sqlite3_free(zErr);
    if (rc != SQLITE_OK || !pImg || !zVocab || !zList) return harness_exit();
    char sql[1200];
    snprintf(sql, sizeof sql, "SELECT ram_load('%s')", g_clip);
    rc = sqlite3_exec(db, sql, 0, 0, 0);
    check(rc == SQLITE_OK, "interrupt_vocab_load", "%s", sqlite3_errmsg(db));

    run_interrupted(db, "interrupt_vocab_tag_scores", "SELECT count(*) FROM ram_tag_scores(?1, ?2)", pImg, nImg, zVocab,
                    "ram_tag_scores(): interrupted");
    run_interrupted(db, "interrupt_vocab_score", "SELECT ram_score(?1, ?2)", pImg, nImg, zList,
                    "ram_score(): interrupted");

    /* The connection still works. */
    sqlite3_stmt *st = 0;
    sqlite3_prepare_v2(db, "SELECT count(*) FROM ram_tag_scores(?1, '[\"a cat\", \"a dog\"]')", -1, &st, 0);
    sqlite3_bind_blob(st, 1, pImg, (int)nImg, SQLITE_STATIC);
    rc = sqlite3_step(st);
    check(rc == SQLITE_ROW && sqlite3_column_int(st, 0) == 2, "interrupt_vocab_recovers", "rc %d: %s", rc,
          sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(pImg);
    free(zVocab);
    free(zList);
    return harness_exit();
}
