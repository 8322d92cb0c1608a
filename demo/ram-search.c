/*
** ram-search — one query over several shard databases of a photo index
** (scatter-gather; docs/SCALE.md).
**
**     ram-search 'a red circle' shard0.db shard1.db shard2.db shard3.db
**     ram-search --k 20 --tag red shard*.db
**     ram-search --k 5 --model models/ram_plus.ram 'a dog on a beach' shard*.db
**
** Prints the k best rows over all shards, best first, one per line:
** score (%.9g), the shard file, the path as that shard stores it
** (relative to the shard's folder), separated by tabs; in names, control
** characters (tab and newline too) are printed as \xNN and a backslash as
** \\, so that a line is always one row and a name cannot drive the
** terminal. Then, on stderr, how
** many shards and rows were read and the inferences run (0: no image is
** embedded; a MATCH query encodes its text once).
**
** HOW IT WORKS
** Each shard answers its own top k (ram_index's MATCH ... AND k = K scores
** every stored picture exactly; a tag query reads the tag's postings), and
** the answers are merged by score: since a score is a probability that
** depends only on the picture and the query, the k best of the union are
** among the per-shard k best, so the merged list equals the k best of one
** index holding every shard (exact by construction). Shards are ATTACHed
** to an in-memory database in groups of up to SQLITE_LIMIT_ATTACHED (10 by
** default), one UNION ALL statement per group; more shards are read group
** after group. The SQL of one group is the documented pattern:
**
**     SELECT path, score FROM (
**       SELECT path, score FROM s0.photos WHERE photos MATCH ?1 AND k = ?2
**       UNION ALL
**       SELECT path, score FROM s1.photos WHERE photos MATCH ?1 AND k = ?2)
**     ORDER BY score DESC LIMIT ?2;
**
** Exit status: 0 done (also with no row), 1 error (a missing shard, no
** such table, a model other than the shards'), 2 usage.
*/
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sqlite3.h>

static void put_name(FILE *f, const char *z);

/* The message on stderr, escaped like the names it may quote (put_name). */
static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *z = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    fputs("ram-search: ", stderr);
    put_name(stderr, z ? z : "out of memory");
    fputc('\n', stderr);
    sqlite3_free(z);
    exit(1);
}

/* z with control characters as \xNN and '\\' doubled (see the header). */
static void put_name(FILE *f, const char *z)
{
    for (const unsigned char *p = (const unsigned char *)z; *p; p++) {
        if (*p < 0x20 || *p == 0x7f)
            fprintf(f, "\\x%02x", *p);
        else if (*p == '\\')
            fputs("\\\\", f);
        else
            fputc(*p, f);
    }
}

static void usage(void)
{
    fputs("usage: ram-search [--k K] [--tag] [--prefilter N] [--model FILE] [--table NAME] QUERY SHARD.db...\n"
          "  The K best pictures (default 10) for QUERY over every shard database, merged by score\n"
          "  (the same rows as one index holding every shard). Prints score, shard and path per line.\n"
          "  QUERY     free text (MATCH), or with --tag a tag name of the model\n"
          "  --k K     rows wanted (1..10000)\n"
          "  --tag     QUERY is a tag: its pictures by the tag's probability\n"
          "  --prefilter N  MATCH scores N pictures of each shard exactly, chosen by the table's\n"
          "                cascade (faster, approximate; default: every picture, exact)\n"
          "  --model FILE  the model the shards were made with (default: the extension's default)\n"
          "  --table NAME  the ram_index table of every shard (default photos)\n",
          stderr);
    exit(2);
}

/* The extension: ram.so beside this executable (the build folder), else
** ../lib/ram0.so (make install's layout). sqlite3_free. */
static char *extension_path(const char *argv0)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0)
        buf[n] = 0;
    else
        snprintf(buf, sizeof buf, "%s", argv0);
    char *slash = strrchr(buf, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(buf, sizeof buf, ".");
    char *z = sqlite3_mprintf("%s/ram.so", buf);
    if (z && access(z, R_OK) != 0) {
        sqlite3_free(z);
        z = sqlite3_mprintf("%s/../lib/ram0.so", buf);
    }
    if (!z) die("out of memory");
    return z;
}

/* One row of an answer; zPath and the shard name are malloc'd / borrowed. */
typedef struct Hit {
    double score;
    const char *zShard; /* borrowed from argv */
    char *zPath;        /* malloc'd; NULL for a row without a path */
} Hit;

static int cmp_hit(const void *a, const void *b)
{
    const Hit *x = a, *y = b;
    if (x->score != y->score) return x->score < y->score ? 1 : -1;
    int c = strcmp(x->zShard, y->zShard); /* ties: a fixed order */
    if (c) return c;
    return strcmp(x->zPath ? x->zPath : "", y->zPath ? y->zPath : "");
}

static int valid_name(const char *z)
{
    if (!*z) return 0;
    for (const char *p = z; *p; p++)
        if (!(*p == '_' || (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (p > z && *p >= '0' && *p <= '9')))
            return 0;
    return 1;
}

int main(int argc, char **argv)
{
    const char *zQuery = 0, *zModel = 0, *zTable = "photos";
    long k = 10, prefilter = 0;
    int bTag = 0, nShard = 0;
    const char **azShard = calloc((size_t)argc, sizeof *azShard);
    if (!azShard) die("out of memory");
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        char *end = 0;
        if (!strcmp(a, "--k") && i + 1 < argc) {
            k = strtol(argv[++i], &end, 10);
            if (!*argv[i] || *end || k < 1 || k > 10000) die("--k: '%s' is not a number from 1 to 10000", argv[i]);
        } else if (!strcmp(a, "--prefilter") && i + 1 < argc) {
            prefilter = strtol(argv[++i], &end, 10);
            if (!*argv[i] || *end || prefilter < 1 || prefilter > 100000000)
                die("--prefilter: '%s' is not a positive number", argv[i]);
        } else if (!strcmp(a, "--tag"))
            bTag = 1;
        else if (!strcmp(a, "--model") && i + 1 < argc)
            zModel = argv[++i];
        else if (!strcmp(a, "--table") && i + 1 < argc)
            zTable = argv[++i];
        else if (!strcmp(a, "-h") || !strcmp(a, "--help") || (a[0] == '-' && a[1]))
            usage();
        else if (!zQuery)
            zQuery = a;
        else
            azShard[nShard++] = a;
    }
    if (!zQuery || !nShard) usage();
    if (!valid_name(zTable)) die("--table: '%s' is not a plain SQL name", zTable);
    if (bTag && prefilter) die("--prefilter applies to a MATCH query, not to --tag");

    sqlite3 *db = 0;
    if (sqlite3_open(":memory:", &db) != SQLITE_OK) die("cannot open an in-memory database");
    sqlite3_db_config(db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, (int *)0);
    sqlite3_busy_timeout(db, 10000); /* a shard being written: wait for its writer's short commits */
    char *so = extension_path(argv[0]), *err = 0;
    if (sqlite3_load_extension(db, so, 0, &err) != SQLITE_OK) die("cannot load the extension %s: %s", so, err);
    sqlite3_free(so);
    if (zModel) {
        sqlite3_stmt *s = 0;
        if (sqlite3_prepare_v2(db, "SELECT ram_load(?1)", -1, &s, 0) != SQLITE_OK) die("%s", sqlite3_errmsg(db));
        sqlite3_bind_text(s, 1, zModel, -1, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_ROW) die("%s", sqlite3_errmsg(db));
        sqlite3_finalize(s);
    }

    int nGroup = sqlite3_limit(db, SQLITE_LIMIT_ATTACHED, -1);
    if (nGroup < 1) die("this SQLite allows no ATTACHed database");
    Hit *aHit = 0;
    size_t nHit = 0, capHit = 0;
    for (int g0 = 0; g0 < nShard; g0 += nGroup) {
        int g1 = g0 + nGroup < nShard ? g0 + nGroup : nShard;
        sqlite3_str *sql = sqlite3_str_new(db);
        sqlite3_str_appendf(sql, "SELECT path, score, shard FROM (");
        for (int s = g0; s < g1; s++) {
            /* ATTACH would create a missing file: name it instead */
            if (access(azShard[s], R_OK) != 0) die("%s: %s", azShard[s], strerror(errno));
            char *zAttach = sqlite3_mprintf("ATTACH %Q AS s%d", azShard[s], s - g0);
            if (!zAttach || sqlite3_exec(db, zAttach, 0, 0, &err) != SQLITE_OK) die("%s: %s", azShard[s], err);
            sqlite3_free(zAttach);
            if (bTag)
                sqlite3_str_appendf(sql,
                                    "%sSELECT * FROM (SELECT path, score, %d AS shard FROM s%d.\"%w\" WHERE tag = ?1 "
                                    "ORDER BY score DESC LIMIT ?2)",
                                    s > g0 ? " UNION ALL " : "", s, s - g0, zTable);
            else
                sqlite3_str_appendf(
                    sql, "%sSELECT path, score, %d AS shard FROM s%d.\"%w\" WHERE \"%w\" MATCH ?1 AND k = ?2%s",
                    s > g0 ? " UNION ALL " : "", s, s - g0, zTable, zTable, prefilter ? " AND prefilter = ?3" : "");
        }
        sqlite3_str_appendf(sql, ") ORDER BY score DESC LIMIT ?2");
        char *zSql = sqlite3_str_finish(sql);
        if (!zSql) die("out of memory");
        sqlite3_stmt *st = 0;
        if (sqlite3_prepare_v2(db, zSql, -1, &st, 0) != SQLITE_OK) {
            /* name the shard that lacks the table */
            for (int s = g0; s < g1; s++) {
                char *q = sqlite3_mprintf("SELECT 1 FROM s%d.sqlite_schema WHERE name = %Q", s - g0, zTable);
                sqlite3_stmt *c = 0;
                int bHas = q && sqlite3_prepare_v2(db, q, -1, &c, 0) == SQLITE_OK && sqlite3_step(c) == SQLITE_ROW;
                sqlite3_finalize(c);
                sqlite3_free(q);
                if (!bHas) die("%s: no table %s in it", azShard[s], zTable);
            }
            die("%s", sqlite3_errmsg(db));
        }
        sqlite3_free(zSql);
        sqlite3_bind_text(st, 1, zQuery, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, k);
        if (prefilter) sqlite3_bind_int64(st, 3, prefilter);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (nHit == capHit) {
                capHit = capHit ? 2 * capHit : 64;
                aHit = realloc(aHit, capHit * sizeof *aHit);
                if (!aHit) die("out of memory");
            }
            const char *zPath = (const char *)sqlite3_column_text(st, 0);
            aHit[nHit].score = sqlite3_column_double(st, 1);
            aHit[nHit].zShard = azShard[sqlite3_column_int(st, 2)];
            aHit[nHit].zPath = zPath ? strdup(zPath) : 0;
            if (zPath && !aHit[nHit].zPath) die("out of memory");
            nHit++;
        }
        if (rc != SQLITE_DONE) die("%s", sqlite3_errmsg(db));
        sqlite3_finalize(st);
        for (int s = g0; s < g1; s++) {
            char *zDetach = sqlite3_mprintf("DETACH s%d", s - g0);
            if (!zDetach || sqlite3_exec(db, zDetach, 0, 0, &err) != SQLITE_OK) die("DETACH: %s", err);
            sqlite3_free(zDetach);
        }
    }
    if (nHit) qsort(aHit, nHit, sizeof *aHit, cmp_hit);
    for (size_t i = 0; i < nHit && i < (size_t)k; i++) {
        printf("%.9g\t", aHit[i].score);
        put_name(stdout, aHit[i].zShard);
        putchar('\t');
        put_name(stdout, aHit[i].zPath ? aHit[i].zPath : "");
        putchar('\n');
    }
    sqlite3_stmt *s = 0;
    if (sqlite3_prepare_v2(db, "SELECT json_extract(ram_index_stats(), '$.inferences')", -1, &s, 0) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW)
        fprintf(stderr, "ram-search: %d shard%s, %zu rows read, %lld inferences\n", nShard, nShard == 1 ? "" : "s",
                nHit, sqlite3_column_int64(s, 0));
    sqlite3_finalize(s);
    for (size_t i = 0; i < nHit; i++) free(aHit[i].zPath);
    free(aHit);
    free(azShard);
    if (sqlite3_close(db) != SQLITE_OK) die("closing: %s", sqlite3_errmsg(db));
    return fflush(stdout) == 0 ? 0 : 1;
}
