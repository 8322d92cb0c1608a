/*
** test_limits_rss.c — steady state: ram_tags calls through SQL (one
** connection, golden_ram.ram, the tiny test model) keep the resident set
** flat: the 10,000 calls in make test (about 20 s on 2 cores; 1,000
** under ASan; RAM_RSS_CALLS=N for another count). Every call gets a different blob (an 8x8 greyscale TIFF whose pixels
** encode the call number), so neither the per-statement nor the 8-slot image
** cache hides the work: each call decodes, encodes and tags, and the cache
** keeps evicting.
** RSS is read from /proc/self/statm after the first fifth of the calls
** (warm-up) and at the end; the test fails when it grew by more than
** RSS_BOUND_MB: 4 MB, so over the 8,000 measured calls a leak of 512 bytes
** per call fails (measured growth: under 0.1 MB). Under the sanitizers (RAM_SANITIZE=1) ASan's quarantine grows RSS by
** design, so LeakSanitizer, not RSS, is the judge; the growth is INFO.
*/
#include "harness.h"
#include <sqlite3.h>
#include <unistd.h>

#define RSS_BOUND_MB 4.0

static double rss_mb(void)
{
    long pages = 0, res = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f) return 0;
    if (fscanf(f, "%ld %ld", &pages, &res) != 2) res = 0;
    fclose(f);
    return res * (double)sysconf(_SC_PAGESIZE) / (1 << 20);
}

static void put16(unsigned char *p, unsigned v)
{
    p[0] = v & 255;
    p[1] = v >> 8;
}
static void put32(unsigned char *p, unsigned v)
{
    put16(p, v & 0xffff);
    put16(p + 2, v >> 16);
}

/* An uncompressed 8x8 8-bit greyscale little-endian TIFF (174 bytes). */
static size_t make_tiff(unsigned char *t, unsigned seed)
{
    static const unsigned tags[8][2] = {{256, 8}, {257, 8},   {258, 8}, {259, 1},
                                        {262, 1}, {273, 110}, {278, 8}, {279, 64}};
    memset(t, 0, 174);
    memcpy(t, "II*\0", 4);
    put32(t + 4, 8);
    put16(t + 8, 8);
    for (int i = 0; i < 8; i++) {
        unsigned char *e = t + 10 + 12 * i;
        put16(e, tags[i][0]);
        put16(e + 2, tags[i][0] == 273 || tags[i][0] == 279 ? 4 : 3); /* LONG or SHORT */
        put32(e + 4, 1);
        put32(e + 8, tags[i][1]);
    }
    put32(t + 10 + 96, 0);
    for (int i = 0; i < 64; i++) t[110 + i] = (unsigned char)((seed >> (i % 24)) * 37 + i * 11);
    return 174;
}

int main(void)
{
    const char *b = getenv("RAM_BUILD");
    const char *san = getenv("RAM_SANITIZE");
    int sanitized = san && *san == '1';
    const char *nc = getenv("RAM_RSS_CALLS");
    int calls = nc && atoi(nc) > 0 ? atoi(nc) : sanitized ? 1000 : 10000;
    int warm = calls / 5;
    char path[512];
    char *e = NULL;
    sqlite3 *db = NULL;
    sqlite3_open(":memory:", &db);
    sqlite3_enable_load_extension(db, 1);
    snprintf(path, sizeof path, "%s/ram.so", b && *b ? b : "build");
    if (sqlite3_load_extension(db, path, 0, &e) != SQLITE_OK) {
        check(0, "rss_load", "%s", e ? e : "");
        return harness_exit();
    }
    snprintf(path, sizeof path, "SELECT ram_load('%s/models/golden_ram.ram')", b && *b ? b : "build");
    if (sqlite3_exec(db, path, 0, 0, &e) != SQLITE_OK) {
        check(0, "rss_ram_load", "%s", e ? e : "");
        return harness_exit();
    }
    sqlite3_stmt *st = NULL;
    sqlite3_prepare_v2(db, "SELECT ram_tags(?)", -1, &st, 0);
    unsigned char tiff[174];
    int errors = 0;
    double r0 = 0;
    for (int i = 0; i < calls; i++) {
        if (i == warm) r0 = rss_mb();
        size_t n = make_tiff(tiff, (unsigned)i * 2654435761u);
        sqlite3_bind_blob(st, 1, tiff, (int)n, SQLITE_TRANSIENT);
        if (sqlite3_step(st) != SQLITE_ROW) {
            if (errors++ == 0) printf("  call %d: %s\n", i, sqlite3_errmsg(db));
        }
        sqlite3_reset(st);
    }
    double r1 = rss_mb();
    sqlite3_finalize(st);
    sqlite3_close(db);
    check(errors == 0, "rss_calls_succeed", "%d of %d calls failed", errors, calls);
    printf("INFO: %d ram_tags calls: RSS %.1f MB after %d, %.1f MB at the end: growth %.2f MB (bound %.0f MB%s)\n",
           calls, r0, warm, r1, r1 - r0, RSS_BOUND_MB, sanitized ? ", not applied under ASan" : "");
    if (!sanitized)
        check(r1 - r0 <= RSS_BOUND_MB, "rss_steady_state", "RSS grew by %.2f MB over %d calls", r1 - r0, calls - warm);
    (void)data_path;
    (void)check_close_npy;
    (void)read_file;
    return harness_exit();
}
