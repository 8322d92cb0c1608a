/*
** test_similar.c — search by example (MATCH with a BLOB), near-duplicate
** groups (ram_index_duplicates, ram-index --duplicates) and ram_text_embed,
** on the bundled default model and pictures of demo/photos with variants
** made here by libvips: half size, 1.6x as JPEG, recompressed at JPEG
** quality 30, 5% cropped from each side, and (for queries only) cropped,
** shrunk and recompressed at once.
**
** - every variant is in its original's group, and no two distinct pictures
**   share a group (among them pairs the model describes alike: 07 and 33
**   are both "two small plain red circles"); an exact copy joins its group;
** - MATCH with a picture's bytes, its entry, its cls, its ram_embed() blob
**   ranks its own group first; bytes the table holds cost no inference;
** - ram_text_embed() orders the images as MATCH 'text' AND prefilter = j
**   chooses its candidates (within the int8 rounding of a near tie);
** - bad input: clear errors, a missing entry (NULL) no rows.
** Prints the measured cosines ("# ..."): the lowest between a picture and
** its variants, the highest between distinct pictures (the default
** threshold sits between them). RAM_SIMILAR_ALL=1 uses all 50 pictures;
** RAM_SIMILAR_MODEL=file measures another model (its checks may fail).
**
** Environment: RAM_BUILD (build folder: ram.so, ram-index).
*/
#include "harness.h"
#include "sql_harness.h"

#include <pthread.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>
#include <vips/vips.h>

static char g_so[1024], g_build[1024], g_db[256];

#define N_VARIANT 4 /* stored variants per picture (a fifth is a query only) */

static sqlite3 *open_db(const char *file) { return sqlh_open(file, g_so, 0); }

/* Rows of one statement, reals with %.4f (sql_harness.h). Caller frees. */
static char *rows(sqlite3 *db, const char *sql) { return sqlh_rows(db, sql, "%.4f"); }

static void check_sql(const char *name, sqlite3 *db, const char *sql, const char *want)
{
    char *got = rows(db, sql);
    check(!strcmp(got, want), name, "%s\n  got:  %s\n  want: %s", sql, got, want);
    free(got);
}

static int exec(sqlite3 *db, const char *sql) { return sqlh_exec(db, sql); }

static long long num(sqlite3 *db, const char *sql) { return sqlh_num(db, sql); }

/* "n|n|1" */
static const char *fmt_int2(int n)
{
    static char buf[64];
    snprintf(buf, sizeof buf, "%d|%d|1", n, n);
    return buf;
}

static long inferences(sqlite3 *db) { return (long)num(db, "SELECT json_extract(ram_index_stats(), '$.inferences')"); }

/* ------------------------------------------------------------------ pictures */

/* Variant `kind` of the encoded picture src (g_malloc'd bytes, *len), or NULL. */
static void *make_variant(const void *src, size_t n, int kind, size_t *len)
{
    VipsImage *in = vips_image_new_from_buffer(src, n, "", NULL), *a = 0, *b = 0;
    void *buf = 0;
    *len = 0;
    if (!in) return 0;
    int w = in->Xsize, h = in->Ysize, ok = 0;
    switch (kind) {
    case 0: ok = !vips_resize(in, &a, 0.5, NULL) && !vips_pngsave_buffer(a, &buf, len, NULL); break;
    case 1: ok = !vips_resize(in, &a, 1.6, NULL) && !vips_jpegsave_buffer(a, &buf, len, "Q", 90, NULL); break;
    case 2: ok = !vips_jpegsave_buffer(in, &buf, len, "Q", 30, NULL); break;
    case 3:
        ok = !vips_crop(in, &a, w / 40, h / 40, w - 2 * (w / 40), h - 2 * (h / 40), NULL) &&
             !vips_pngsave_buffer(a, &buf, len, NULL);
        break;
    default: /* the query-only variant: all three at once */
        ok = !vips_crop(in, &a, w / 33, h / 25, w - w / 33 - w / 40, h - h / 25 - h / 50, NULL) &&
             !vips_resize(a, &b, 0.8, NULL) && !vips_jpegsave_buffer(b, &buf, len, "Q", 60, NULL);
    }
    if (a) g_object_unref(a);
    if (b) g_object_unref(b);
    g_object_unref(in);
    if (!ok) {
        g_free(buf);
        return 0;
    }
    return buf;
}

static int insert(sqlite3 *db, const char *path, const void *p, size_t n)
{
    sqlite3_stmt *s = 0;
    int rc = sqlite3_prepare_v2(db, "INSERT INTO photos(path, image) VALUES(?1, ?2)", -1, &s, 0);
    if (rc == SQLITE_OK) {
        sqlite3_bind_text(s, 1, path, -1, SQLITE_TRANSIENT);
        sqlite3_bind_blob(s, 2, p, (int)n, SQLITE_STATIC);
        rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
        if (rc) printf("# insert %s: %s\n", path, sqlite3_errmsg(db));
    }
    sqlite3_finalize(s);
    return rc;
}

/* The demo pictures: a subset by default (pairs the model describes alike
** included), all with RAM_SIMILAR_ALL=1. */
static const char *const g_azPick[] = {
    "01-a-large-plain-purple-cross.png",        "03-many-small-checkered-brown-crosses.png",
    "04-a-large-plain-pink-star.png",           "07-two-small-plain-red-circles.png",
    "10-many-small-checkered-brown-hearts.jpg", "17-two-large-plain-red-circles.png",
    "21-a-small-plain-blue-triangle.png",       "24-a-small-plain-blue-triangle.png",
    "27-three-large-plain-purple-squares.png",  "28-two-large-plain-purple-squares.jpg",
    "33-two-small-plain-red-circles.png",       "44-many-small-striped-red-circles.jpg",
};
#define N_PICK (int)(sizeof g_azPick / sizeof g_azPick[0])

static char **g_azName;
static int g_nName;

static void list_pictures(void)
{
    if (getenv("RAM_SIMILAR_ALL")) {
        char **az = 0;
        int n = 0;
        for (int i = 1; i <= 99; i++) {
            char cmd[64];
            snprintf(cmd, sizeof cmd, "%02d-", i);
            GDir *d = g_dir_open("demo/photos", 0, 0);
            const char *e;
            while (d && (e = g_dir_read_name(d)))
                if (!strncmp(e, cmd, 3)) {
                    az = realloc(az, sizeof *az * (size_t)(n + 1));
                    az[n++] = strdup(e);
                }
            if (d) g_dir_close(d);
        }
        g_azName = az, g_nName = n;
        return;
    }
    g_azName = malloc(sizeof *g_azName * N_PICK);
    for (int i = 0; i < N_PICK; i++) g_azName[i] = strdup(g_azPick[i]);
    g_nName = N_PICK;
}

/* ------------------------------------------------------------------ tests */

/* Fills photos with the pictures (orig/NAME) and their variants (vK/NAME);
** g_aQuery[i] receives the query-only variant of picture i. */
static void **g_aQuery;
static size_t *g_anQuery;

static int fill(sqlite3 *db)
{
    g_aQuery = calloc((size_t)g_nName, sizeof *g_aQuery);
    g_anQuery = calloc((size_t)g_nName, sizeof *g_anQuery);
    if (exec(db, "BEGIN")) return 1;
    for (int i = 0; i < g_nName; i++) {
        char path[512];
        size_t n = 0;
        snprintf(path, sizeof path, "demo/photos/%s", g_azName[i]);
        void *src = read_file(path, &n);
        if (!src) {
            printf("# cannot read %s\n", path);
            return 1;
        }
        snprintf(path, sizeof path, "orig/%s", g_azName[i]);
        if (insert(db, path, src, n)) return 1;
        for (int k = 0; k <= N_VARIANT; k++) {
            size_t nv = 0;
            void *v = make_variant(src, n, k, &nv);
            if (!v) {
                printf("# variant %d of %s: %s\n", k, g_azName[i], vips_error_buffer());
                return 1;
            }
            if (k == N_VARIANT) {
                g_aQuery[i] = v, g_anQuery[i] = nv;
                continue;
            }
            snprintf(path, sizeof path, "v%d/%s", k, g_azName[i]);
            int rc = insert(db, path, v, nv);
            g_free(v);
            if (rc) return 1;
        }
        free(src);
    }
    return exec(db, "COMMIT");
}

/* The cls column of every row, L2-normalised (rows of 4096 floats at most),
** with the paths; returns the count. */
static int read_cls(sqlite3 *db, float **paV, char ***pazPath, int *pDim)
{
    int n = (int)num(db, "SELECT count(*) FROM photos"), m = 0;
    float *aV = calloc((size_t)n * 4096, sizeof(float));
    char **azPath = calloc((size_t)n, sizeof *azPath);
    sqlite3_stmt *s = 0;
    sqlite3_prepare_v2(db, "SELECT path, cls FROM photos ORDER BY rowid", -1, &s, 0);
    while (sqlite3_step(s) == SQLITE_ROW && m < n) {
        int dim = sqlite3_column_bytes(s, 1) / 4;
        if (dim > 4096) break;
        *pDim = dim;
        azPath[m] = strdup((const char *)sqlite3_column_text(s, 0));
        float *v = aV + (size_t)m * 4096;
        memcpy(v, sqlite3_column_blob(s, 1), sizeof(float) * (size_t)dim);
        double ss = 0;
        for (int d = 0; d < dim; d++) ss += (double)v[d] * v[d];
        for (int d = 0; d < dim; d++) v[d] = (float)(v[d] / sqrt(ss));
        m++;
    }
    sqlite3_finalize(s);
    *paV = aV, *pazPath = azPath;
    return m;
}

static double dot(const float *a, const float *b, int dim)
{
    double c = 0;
    for (int d = 0; d < dim; d++) c += (double)a[d] * b[d];
    return c;
}

/* Groups from ram_index_duplicates against the pictures they came from. */
static void test_duplicates(sqlite3 *db)
{
    /* measured: the cosines between which the default threshold must lie */
    float *aV = 0;
    char **azPath = 0;
    int dim = 0, m = read_cls(db, &aV, &azPath, &dim);
    /* lo: the weakest of the rows' best links to their own picture's rows
    ** (a group is connected through such links); hi: the closest pair of
    ** distinct pictures */
    double lo = 2, hi = -2;
    char lo_what[512] = "", hi_what[512] = "";
    for (int i = 0; i < m; i++) {
        double best = -2;
        int jBest = -1;
        for (int j = 0; j < m; j++) {
            if (j == i) continue;
            const char *bi = strchr(azPath[i], '/') + 1, *bj = strchr(azPath[j], '/') + 1;
            double c = dot(aV + (size_t)i * 4096, aV + (size_t)j * 4096, dim);
            if (!strcmp(bi, bj)) {
                if (c > best) best = c, jBest = j;
            } else if (c > hi) {
                hi = c, snprintf(hi_what, sizeof hi_what, "%s ~ %s", azPath[i], azPath[j]);
            }
        }
        if (jBest >= 0 && best < lo) lo = best, snprintf(lo_what, sizeof lo_what, "%s ~ %s", azPath[i], azPath[jBest]);
    }
    printf("# measured on %d pictures x %d stored variants, embed_dim %d: weakest best link of a row to its own "
           "picture's rows %.4f (%s); closest distinct pictures %.4f (%s)\n",
           g_nName, N_VARIANT, dim, lo, lo_what, hi, hi_what);
    for (int i = 0; i < m; i++) free(azPath[i]);
    free(azPath), free(aV);
    check(lo > hi, "similar.dup.separable", "variants %.4f <= distinct %.4f", lo, hi);
    double thr = -1;
    sqlite3_stmt *st = 0;
    if (sqlite3_prepare_v2(db, "SELECT threshold FROM ram_index_duplicates('photos') LIMIT 1", -1, &st, 0) ==
            SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        thr = sqlite3_column_double(st, 0);
    sqlite3_finalize(st);
    check(hi < thr && thr <= lo, "similar.dup.default_between_measured",
          "the default threshold %.4f is not between distinct %.4f and variants %.4f", thr, hi, lo);

    /* each picture's rows form exactly one group: its own 1 + N_VARIANT rows */
    int bad = 0;
    for (int i = 0; i < g_nName; i++) {
        char sql[1024], want[32];
        snprintf(sql, sizeof sql,
                 "WITH d AS (SELECT * FROM ram_index_duplicates('photos')) "
                 "SELECT count(DISTINCT grp), count(*), (SELECT count(*) FROM d e WHERE e.grp = "
                 "(SELECT grp FROM d WHERE path = 'orig/%s')) FROM d WHERE substr(path, instr(path, '/') + 1) = '%s'",
                 g_azName[i], g_azName[i]);
        snprintf(want, sizeof want, "1|%d|%d", 1 + N_VARIANT, 1 + N_VARIANT);
        char *got = rows(db, sql);
        if (strcmp(got, want) && !bad++)
            printf("# %s: (groups|rows|rows in its group) %s, want %s\n", g_azName[i], got, want);
        free(got);
    }
    check(!bad, "similar.dup.variants_grouped", "%d of %d pictures not grouped with exactly their variants", bad,
          g_nName);
    char want[64];
    snprintf(want, sizeof want, "%d|%d", g_nName, g_nName * (1 + N_VARIANT));
    check_sql("similar.dup.groups", db, "SELECT count(DISTINCT grp), count(*) FROM ram_index_duplicates('photos')",
              want);
    check_sql("similar.dup.first_row_similarity_1", db,
              "WITH d AS (SELECT * FROM ram_index_duplicates('photos')) SELECT count(*), sum(similarity = 1), "
              "max(similarity) <= 1 FROM d WHERE id = (SELECT min(id) FROM d e WHERE e.grp = d.grp)",
              fmt_int2(g_nName));
    check_sql("similar.dup.ordered", db,
              "SELECT count(*) FROM (SELECT grp, id, lag(grp) OVER () pg, lag(id) OVER () pid FROM "
              "ram_index_duplicates('photos')) WHERE pg > grp OR (pg = grp AND pid > id)",
              "0");
    check_sql("similar.dup.grp_numbers", db,
              "SELECT min(grp), max(grp) = count(DISTINCT grp) FROM ram_index_duplicates('photos')", "1|1");

    /* a copy with the same bytes is in its picture's group at similarity 1,
    ** and alone in it at threshold 1 */
    size_t nb = 0;
    char path[512];
    snprintf(path, sizeof path, "demo/photos/%s", g_azName[1]);
    void *b = read_file(path, &nb);
    insert(db, "copy/same-bytes", b, nb);
    free(b);
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT d.similarity, d.grp = (SELECT grp FROM ram_index_duplicates('photos') WHERE path = 'orig/%s') "
             "FROM ram_index_duplicates('photos') d WHERE path = 'copy/same-bytes'",
             g_azName[1]);
    check_sql("similar.dup.exact_copy", db, sql, "1.0000|1");
    snprintf(want, sizeof want, "orig/%s copy/same-bytes", g_azName[1]);
    check_sql("similar.dup.threshold_1", db,
              "SELECT group_concat(path, ' ') FROM ram_index_duplicates('photos', 1.0) WHERE grp = 1", want);
    exec(db, "DELETE FROM photos WHERE path = 'copy/same-bytes'");

    /* a stricter threshold splits groups; a looser one merges them */
    check(num(db, "SELECT count(*) FROM ram_index_duplicates('photos', 0.995)") < g_nName * (1 + N_VARIANT),
          "similar.dup.stricter_leaves_out", "every row still grouped at 0.995");
    check(num(db, "SELECT count(DISTINCT grp) FROM ram_index_duplicates('photos', 0.3)") < g_nName,
          "similar.dup.looser_merges", "no group merged at 0.3");
    exec(db, "CREATE VIRTUAL TABLE temp.empty USING ram_index(resume=0)");
    check_sql("similar.dup.empty_table", db, "SELECT count(*) FROM ram_index_duplicates('empty')", "0");
    check_sql("similar.match.empty_table", db,
              "SELECT count(*) FROM empty WHERE empty MATCH (SELECT cls FROM photos WHERE rowid = 1)", "0");
    exec(db, "DROP TABLE temp.empty");
    check_sql("similar.dup.schema_arg", db,
              "SELECT count(*) = (SELECT count(*) FROM ram_index_duplicates('photos')) FROM "
              "ram_index_duplicates('photos', NULL, 'main')",
              "1");
}

/* MATCH with a BLOB: each form of the query ranks the picture's group first. */
static void test_search_by_example(sqlite3 *db)
{
    int bad = 0, badForms = 0;
    long inf0 = inferences(db);
    for (int i = 0; i < g_nName; i++) {
        /* the query-only variant, never inserted: one inference */
        sqlite3_stmt *s = 0;
        sqlite3_prepare_v2(db,
                           "SELECT count(*) FROM (SELECT path FROM photos WHERE photos MATCH ?1 AND k = ?2) "
                           "WHERE substr(path, instr(path, '/') + 1) = ?3",
                           -1, &s, 0);
        sqlite3_bind_blob(s, 1, g_aQuery[i], (int)g_anQuery[i], SQLITE_STATIC);
        sqlite3_bind_int(s, 2, 1 + N_VARIANT);
        sqlite3_bind_text(s, 3, g_azName[i], -1, SQLITE_STATIC);
        int got = sqlite3_step(s) == SQLITE_ROW ? sqlite3_column_int(s, 0) : -1;
        if (got != 1 + N_VARIANT && !bad++)
            printf("# the new variant of %s: %d of its %d rows in the first %d\n", g_azName[i], got, 1 + N_VARIANT,
                   1 + N_VARIANT);
        sqlite3_finalize(s);
    }
    check(!bad, "similar.match.new_variant_finds_its_group", "%d of %d pictures", bad, g_nName);
    check(inferences(db) - inf0 == g_nName, "similar.match.new_picture_one_inference", "%ld inferences for %d queries",
          inferences(db) - inf0, g_nName);

    /* the stored picture by its bytes or its entry: itself first at 1 (no
    ** inference), the same ranking; by its cls or ram_embed() (vectors, no
    ** identity): its own rows first, in cosine order */
    for (int i = 0; i < g_nName; i++) {
        char path[512], sql[2048], want[512];
        size_t nb = 0;
        snprintf(path, sizeof path, "demo/photos/%s", g_azName[i]);
        void *b = read_file(path, &nb);
        long before = inferences(db);
        sqlite3_stmt *s = 0;
        sqlite3_prepare_v2(db,
                           "SELECT group_concat(path || ':' || score, ',') FROM (SELECT path, score FROM photos WHERE "
                           "photos MATCH ?1 AND k = 8)",
                           -1, &s, 0);
        sqlite3_bind_blob(s, 1, b, (int)nb, SQLITE_STATIC);
        char *byBytes =
            strdup(sqlite3_step(s) == SQLITE_ROW && sqlite3_column_text(s, 0) ? (const char *)sqlite3_column_text(s, 0)
                                                                              : "(none)");
        sqlite3_finalize(s);
        if (inferences(db) != before && !badForms++) printf("# stored bytes of %s cost an inference\n", g_azName[i]);
        snprintf(want, sizeof want, "orig/%s:1.0,", g_azName[i]);
        if (strncmp(byBytes, want, strlen(want)) && !badForms++)
            printf("# %s is not first at 1 for its own bytes: %s\n", g_azName[i], byBytes);
        snprintf(sql, sizeof sql,
                 "SELECT group_concat(path || ':' || score, ',') FROM (SELECT path, score FROM photos WHERE photos "
                 "MATCH (SELECT entry FROM photos WHERE path = 'orig/%s') AND k = 8)",
                 g_azName[i]);
        char *got = rows(db, sql);
        if (strcmp(got, byBytes) && !badForms++)
            printf("# %s by entry:\n#   %s\n# by bytes:\n#   %s\n", g_azName[i], got, byBytes);
        free(got);
        for (int f = 0; f < 2; f++) {
            /* ?1: the picture's bytes */
            snprintf(sql, sizeof sql,
                     "SELECT count(*), sum(substr(path, instr(path, '/') + 1) = '%s'), min(score) <= max(score) FROM "
                     "(SELECT path, score FROM photos WHERE photos MATCH %s AND k = %d)",
                     g_azName[i], f ? "ram_embed(?1)" : "(SELECT cls FROM photos WHERE path = 'orig/' || ?2)",
                     1 + N_VARIANT);
            snprintf(want, sizeof want, "%d|%d|1", 1 + N_VARIANT, 1 + N_VARIANT);
            sqlite3_prepare_v2(db, sql, -1, &s, 0);
            sqlite3_bind_blob(s, 1, b, (int)nb, SQLITE_STATIC);
            sqlite3_bind_text(s, 2, g_azName[i], -1, SQLITE_STATIC);
            char got2[128] = "";
            if (sqlite3_step(s) == SQLITE_ROW)
                snprintf(got2, sizeof got2, "%d|%d|%d", sqlite3_column_int(s, 0), sqlite3_column_int(s, 1),
                         sqlite3_column_int(s, 2));
            else
                snprintf(got2, sizeof got2, "ERROR: %s", sqlite3_errmsg(db));
            sqlite3_finalize(s);
            if (strcmp(got2, want) && !badForms++)
                printf("# %s by %s: %s, want %s\n", g_azName[i], f ? "ram_embed" : "cls", got2, want);
        }
        free(byBytes);
        free(b);
    }
    check(!badForms, "similar.match.forms_agree", "%d differences (above)", badForms);
    check_sql("similar.match.self_first_at_1", db,
              "SELECT path, score FROM photos WHERE photos MATCH (SELECT entry FROM photos WHERE rowid = 1) AND k = 1",
              "orig/01-a-large-plain-purple-cross.png|1.0000");
    check_sql("similar.match.limit", db,
              "SELECT count(*) FROM (SELECT path FROM photos WHERE photos MATCH (SELECT cls FROM photos WHERE "
              "rowid = 1) ORDER BY score DESC LIMIT 3)",
              "3");
    check_sql("similar.match.leave_self_out", db,
              "SELECT count(*), sum(rowid = 1) FROM photos WHERE photos MATCH (SELECT entry FROM photos WHERE rowid = "
              "1) AND k = 6 AND rowid != 1",
              "5|0");
    check_sql("similar.match.scores_descend", db,
              "SELECT count(*) FROM (SELECT score, lag(score) OVER () p FROM photos WHERE photos MATCH (SELECT cls "
              "FROM photos WHERE rowid = 7)) WHERE p < score",
              "0");
    check_sql("similar.match.with_tag", db,
              "SELECT count(*) = (SELECT count(*) FROM photos WHERE tag = 'circle') FROM photos WHERE photos MATCH "
              "(SELECT cls FROM photos WHERE rowid = 1) AND tag = 'circle'",
              "1");
    check_sql("similar.match.missing_entry_no_rows", db,
              "SELECT count(*) FROM photos WHERE photos MATCH (SELECT entry FROM photos WHERE path = 'nope')", "0");
}

/* ram_text_embed: the prefilter's cosine, for vec0 users. */
static void test_text_embed(sqlite3 *db)
{
    check_sql("similar.text.shape", db,
              "SELECT length(ram_text_embed('a red circle')), subtype(ram_text_embed('a red circle')), "
              "length(ram_text_embed('a red circle')) = length((SELECT cls FROM photos LIMIT 1))",
              "2048|223|1");
    float *aV = 0;
    char **azPath = 0;
    int dim = 0, m = read_cls(db, &aV, &azPath, &dim);
    static const char *const azText[] = {"two small plain red circles", "a large yellow star",
                                         "purple squares on a white background", "a blue triangle"};
    int bad = 0, badVec = 0, badUnit = 0;
    for (int t = 0; t < 4; t++) {
        /* the text's vector, read back */
        float e[4096];
        sqlite3_stmt *s = 0;
        sqlite3_prepare_v2(db, "SELECT ram_text_embed(?1)", -1, &s, 0);
        sqlite3_bind_text(s, 1, azText[t], -1, SQLITE_STATIC);
        if (sqlite3_step(s) != SQLITE_ROW || sqlite3_column_bytes(s, 0) != 4 * dim) {
            check(0, "similar.text.embed", "%s", sqlite3_errmsg(db));
            sqlite3_finalize(s);
            break;
        }
        memcpy(e, sqlite3_column_blob(s, 0), sizeof(float) * (size_t)dim);
        sqlite3_finalize(s);
        if (fabs(dot(e, e, dim) - 1) > 1e-5) badUnit++;
        /* cosines in C, by row */
        double *c = malloc(sizeof(double) * (size_t)m);
        for (int i = 0; i < m; i++) c[i] = dot(e, aV + (size_t)i * 4096, dim);
        /* MATCH 'text' AND prefilter = j with the cascade of the codes
        ** (refit=0; the default refit cascade chooses by exact scores) keeps
        ** the j best by the prefilter's cosine: each kept row must be at
        ** least as close as the j-th best C cosine, up to the int8 rounding
        ** (2e-3) */
        exec(db, "INSERT INTO photos(photos) VALUES('refit=0')");
        for (int j = 1; j <= 6; j++) {
            double *sorted = malloc(sizeof(double) * (size_t)m);
            memcpy(sorted, c, sizeof(double) * (size_t)m);
            for (int a = 0; a < m; a++)
                for (int b2 = a + 1; b2 < m; b2++)
                    if (sorted[b2] > sorted[a]) {
                        double x = sorted[a];
                        sorted[a] = sorted[b2], sorted[b2] = x;
                    }
            sqlite3_prepare_v2(db, "SELECT rowid FROM photos WHERE photos MATCH ?1 AND prefilter = ?2", -1, &s, 0);
            sqlite3_bind_text(s, 1, azText[t], -1, SQLITE_STATIC);
            sqlite3_bind_int(s, 2, j);
            int got = 0;
            while (sqlite3_step(s) == SQLITE_ROW) {
                int r = sqlite3_column_int(s, 0) - 1;
                got++;
                if (r < 0 || r >= m || c[r] < sorted[j - 1] - 2e-3) {
                    if (!bad++)
                        printf("# '%s' prefilter = %d kept row %d at cosine %.4f; the %d-th best is %.4f\n", azText[t],
                               j, r + 1, r >= 0 && r < m ? c[r] : -9, j, sorted[j - 1]);
                }
            }
            sqlite3_finalize(s);
            /* a row may be in several files: at least j rows */
            if (got < j && !bad++) printf("# '%s' prefilter = %d gave %d rows\n", azText[t], j, got);
            free(sorted);
        }
        exec(db, "INSERT INTO photos(photos) VALUES('refit=64')"); /* back to the default */
        /* MATCH ram_text_embed('text'): the same cosines, best first */
        sqlite3_prepare_v2(db, "SELECT rowid, score FROM photos WHERE photos MATCH ram_text_embed(?1)", -1, &s, 0);
        sqlite3_bind_text(s, 1, azText[t], -1, SQLITE_STATIC);
        int nGot = 0;
        while (sqlite3_step(s) == SQLITE_ROW) {
            int r = sqlite3_column_int(s, 0) - 1;
            double sc = sqlite3_column_double(s, 1);
            nGot++;
            if ((r < 0 || r >= m || fabs(c[r] - sc) > 2e-3) && !badVec++)
                printf("# '%s': row %d scored %.4f by MATCH, %.4f in C\n", azText[t], r + 1, sc,
                       r >= 0 && r < m ? c[r] : -9);
        }
        sqlite3_finalize(s);
        if (nGot != m && !badVec++) printf("# '%s': MATCH ram_text_embed gave %d rows of %d\n", azText[t], nGot, m);
        free(c);
    }
    check(!badUnit, "similar.text.unit_length", "%d vectors not of length 1", badUnit);
    check(!bad, "similar.text.agrees_with_prefilter", "%d disagreements", bad);
    check(!badVec, "similar.text.match_vector_is_cosine", "%d disagreements", badVec);
    for (int i = 0; i < m; i++) free(azPath[i]);
    free(azPath), free(aV);
}

static void test_errors(sqlite3 *db)
{
    char path_g[256];
    check_sql("similar.err.empty_blob", db, "SELECT path FROM photos WHERE photos MATCH x''",
              "ERROR: ram_index: MATCH needs a text, a JSON array of texts, or a non-empty BLOB (an image, an entry, "
              "a ram_embed() BLOB or a float32 vector)");
    check_sql("similar.err.number", db, "SELECT path FROM photos WHERE photos MATCH 42",
              "ERROR: ram_index: MATCH needs a text, a JSON array of texts, or a non-empty BLOB (an image, an entry, "
              "a ram_embed() BLOB or a float32 vector)");
    check_sql("similar.err.empty_text", db, "SELECT path FROM photos WHERE photos MATCH ''",
              "ERROR: ram_index: MATCH needs a text, a JSON array of texts, or a non-empty BLOB (an image, an entry, "
              "a ram_embed() BLOB or a float32 vector)");
    check_sql("similar.err.wrong_size", db, "SELECT path FROM photos WHERE photos MATCH zeroblob(2044)",
              "ERROR: ram_index: MATCH: a BLOB of 2044 bytes that is neither an image (image: format not supported "
              "(magick)) nor a float32 vector of the table's width (512 floats, 2048 bytes), an entry or a ram_embed() "
              "BLOB");
    /* a vector whose first bytes look like a JPEG's is still a vector */
    {
        float v[512];
        sqlite3_stmt *s = 0;
        sqlite3_prepare_v2(db, "SELECT cls FROM photos WHERE rowid = 1", -1, &s, 0);
        if (sqlite3_step(s) == SQLITE_ROW) memcpy(v, sqlite3_column_blob(s, 0), sizeof v);
        sqlite3_finalize(s);
        memcpy(v, "\xff\xd8\xff\x3c", 4);
        sqlite3_prepare_v2(db, "SELECT rowid FROM photos WHERE photos MATCH ?1 AND k = 1", -1, &s, 0);
        sqlite3_bind_blob(s, 1, v, sizeof v, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        check(rc == SQLITE_ROW, "similar.match.vector_like_jpeg", "rc %d: %s", rc, sqlite3_errmsg(db));
        sqlite3_finalize(s);
    }
    check_sql("similar.err.zero_vector", db, "SELECT path FROM photos WHERE photos MATCH zeroblob(2048)",
              "ERROR: ram_index: MATCH: the query vector is zero (no direction to compare with)");
    /* a vector of NaNs, and one with an infinity */
    for (int f = 0; f < 2; f++) {
        float v[512];
        for (int d = 0; d < 512; d++) v[d] = f ? (d == 7 ? INFINITY : 0.5f) : NAN;
        sqlite3_stmt *s = 0;
        sqlite3_prepare_v2(db, "SELECT path FROM photos WHERE photos MATCH ?1", -1, &s, 0);
        sqlite3_bind_blob(s, 1, v, sizeof v, SQLITE_STATIC);
        int rc = sqlite3_step(s);
        const char *want = "ram_index: MATCH: the query vector is not finite (NaN or infinity)";
        check(rc == SQLITE_ERROR && !strcmp(sqlite3_errmsg(db), want),
              f ? "similar.err.inf_vector" : "similar.err.nan_vector", "rc %d: %s", rc, sqlite3_errmsg(db));
        sqlite3_finalize(s);
    }
    check_sql("similar.err.broken_entry", db,
              "SELECT path FROM photos WHERE photos MATCH substr((SELECT entry FROM photos LIMIT 1), 1, 200)",
              "ERROR: ram_index: MATCH: entry: not a valid ram_index entry BLOB (sizes do not add up)");
    check_sql("similar.err.broken_embed", db, "SELECT path FROM photos WHERE photos MATCH x'52414d4501000000'",
              "ERROR: ram_index: MATCH(): argument 1 is not a valid ram_embed() BLOB (bad header)");
    /* an entry of another model's table */
    char sql[1200];
    snprintf(sql, sizeof sql,
             "CREATE VIRTUAL TABLE temp.g USING ram_index(model='%s/models/golden_ram_plus_clip.ram', resume=0)",
             g_build);
    exec(db, sql);
    snprintf(path_g, sizeof path_g, "%s", "tests/data/golden/images/img0.jpg");
    {
        size_t nb = 0;
        void *b = read_file(path_g, &nb);
        sqlite3_stmt *s = 0;
        sqlite3_prepare_v2(db, "INSERT INTO temp.g(path, image) VALUES('img0', ?1)", -1, &s, 0);
        sqlite3_bind_blob(s, 1, b, (int)nb, SQLITE_STATIC);
        sqlite3_step(s);
        sqlite3_finalize(s);
        free(b);
    }
    char *got = rows(db, "SELECT path FROM photos WHERE photos MATCH (SELECT entry FROM temp.g)");
    const char *want = "ERROR: ram_index: MATCH: the entry was made with another model or preprocessing (digest ";
    check(!strncmp(got, want, strlen(want)) && strstr(got, ") than photos uses (digest "),
          "similar.err.entry_other_model", "%s", got);
    free(got);
    exec(db, "DROP TABLE temp.g");
    /* prefilter = N: the N closest by the 1-bit codes get their cosine (index_codes.c); N covering the
    ** table gives exactly the full ranking, N = 3 three rows at most, and never with tag = */
    check_sql("similar.prefilter.all_same", db,
              "SELECT (SELECT group_concat(path || printf('%.6f', score)) FROM photos WHERE photos MATCH (SELECT cls "
              "FROM photos LIMIT 1)) = (SELECT group_concat(path || printf('%.6f', score)) FROM photos WHERE photos "
              "MATCH (SELECT cls FROM photos LIMIT 1) AND prefilter = 100000)",
              "1");
    check_sql("similar.prefilter.few", db,
              "SELECT count(*) <= 3 AND count(*) > 0 FROM photos WHERE photos MATCH (SELECT cls FROM photos LIMIT 1) "
              "AND prefilter = 3",
              "1");
    check_sql("similar.err.prefilter_tag", db,
              "SELECT path FROM photos WHERE photos MATCH (SELECT cls FROM photos LIMIT 1) AND tag = 'circle' AND "
              "prefilter = 3",
              "ERROR: ram_index: prefilter in a search by example needs the codes of a whole table (not with tag =, "
              "not before the table's upgrade)");
    check_sql("similar.err.text_empty", db, "SELECT ram_text_embed('')",
              "ERROR: ram_text_embed(): argument 1 is empty (a description is needed)");
    check_sql("similar.err.text_blob", db, "SELECT ram_text_embed(x'41')",
              "ERROR: ram_text_embed(): argument 1 must be TEXT (a description)");
    check_sql("similar.err.text_null", db, "SELECT ram_text_embed(NULL) IS NULL", "1");
    exec(db, "CREATE TABLE IF NOT EXISTS t(x)");
    check_sql("similar.err.text_in_index_refused", db, "CREATE INDEX ti ON t(ram_text_embed(x))",
              "ERROR: non-deterministic functions prohibited in index expressions");
    check_sql("similar.err.dup_no_table", db, "SELECT * FROM ram_index_duplicates('nope')",
              "ERROR: ram_index_duplicates(): no ram_index table 'nope'");
    check_sql("similar.err.dup_no_table_in_schema", db, "SELECT * FROM ram_index_duplicates('photos', 0.9, 'temp')",
              "ERROR: ram_index_duplicates(): no ram_index table 'photos' in schema 'temp'");
    check_sql("similar.err.dup_not_ram_index", db, "SELECT * FROM ram_index_duplicates('t')",
              "ERROR: ram_index_duplicates(): no ram_index table 't'");
    check_sql("similar.err.dup_no_arg", db, "SELECT * FROM ram_index_duplicates",
              "ERROR: ram_index_duplicates(): argument 1 must be the name of a ram_index table, as in SELECT * FROM "
              "ram_index_duplicates('photos')");
    check_sql("similar.err.dup_threshold", db, "SELECT * FROM ram_index_duplicates('photos', 1.5)",
              "ERROR: ram_index_duplicates(): argument 2, the threshold, must be a cosine in (0, 1] (default 0.91)");
    check_sql("similar.err.dup_threshold_text", db, "SELECT * FROM ram_index_duplicates('photos', 'high')",
              "ERROR: ram_index_duplicates(): argument 2, the threshold, must be a cosine in (0, 1] (default 0.91)");
}

/* sqlite3_interrupt() stops ram_index_duplicates over many vectors (here
** 20,000 generated ones, written straight into the shadow tables). */
static void *interrupt_later(void *db)
{
    usleep(200000);
    sqlite3_interrupt(db);
    return 0;
}

static void test_interrupt(void)
{
    sqlite3 *db = open_db(":memory:");
    if (!db || exec(db, "SELECT ram_load('models/default.ram')") ||
        exec(db, "CREATE VIRTUAL TABLE photos USING ram_index") ||
        exec(db, "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 20000) "
                 "INSERT INTO photos_images(id, key, gen, nref, probs) SELECT i, randomblob(16), 1, 1, x'01000000' "
                 "FROM n") ||
        exec(db, "INSERT INTO photos_cls(id, v) SELECT id, x'0000803c' || randomblob(512) FROM photos_images")) {
        check(0, "similar.dup.interrupt", "setup failed (above)");
        sqlite3_close(db);
        return;
    }
    pthread_t t;
    pthread_create(&t, 0, interrupt_later, db);
    char *got = rows(db, "SELECT count(*) FROM ram_index_duplicates('photos')");
    pthread_join(t, 0);
    check(!strcmp(got, "ERROR: interrupted"), "similar.dup.interrupt", "got %s", got);
    free(got);
    sqlite3_close(db);
}

/* ram-index --duplicates prints the groups. */
static void test_cli(void)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "%s/ram-index --duplicates %s 2>&1", g_build, g_db);
    FILE *f = popen(cmd, "r");
    char line[1024];
    int nGroup = 0, nFile = 0, bLast = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "group ", 6)) nGroup++;
        if (!strncmp(line, "  ", 2)) nFile++;
        char want[128];
        snprintf(want, sizeof want, "ram-index: %d groups of near-duplicates, %d files (threshold 0.91)", g_nName,
                 g_nName * (1 + N_VARIANT));
        if (!strncmp(line, want, strlen(want))) bLast = 1;
    }
    int rc = f ? pclose(f) : -1;
    check(rc == 0 && nGroup == g_nName && nFile == g_nName * (1 + N_VARIANT) && bLast, "similar.cli.duplicates",
          "exit %d, %d groups, %d files, last line %s", rc, nGroup, nFile, bLast ? "ok" : "missing");
    snprintf(cmd, sizeof cmd, "%s/ram-index --duplicates --threshold 2 %s >/dev/null 2>&1", g_build, g_db);
    rc = system(cmd);
    check(WIFEXITED(rc) && WEXITSTATUS(rc) == 2, "similar.cli.bad_threshold", "exit %d", rc);
    snprintf(cmd, sizeof cmd, "%s/ram-index --duplicates %s.missing 2>&1", g_build, g_db);
    f = popen(cmd, "r");
    int bSaid = 0;
    while (f && fgets(line, sizeof line, f))
        if (strstr(line, "ram-index: cannot open ")) bSaid = 1;
    rc = f ? pclose(f) : -1;
    check(WIFEXITED(rc) && WEXITSTATUS(rc) == 1 && bSaid, "similar.cli.missing_db", "exit %d, said %d", rc, bSaid);
    struct stat st;
    snprintf(cmd, sizeof cmd, "%s.missing", g_db);
    check(stat(cmd, &st) != 0, "similar.cli.missing_db_not_created", "%s was created", cmd);
}

int main(void)
{
    const char *build = getenv("RAM_BUILD") ? getenv("RAM_BUILD") : "build";
    snprintf(g_build, sizeof g_build, "%s", build);
    snprintf(g_so, sizeof g_so, "%s/ram", build);
    snprintf(g_db, sizeof g_db, "/tmp/test_similar.%d.db", (int)getpid());
    if (VIPS_INIT("test_similar")) {
        check(0, "similar.vips", "%s", vips_error_buffer());
        return harness_exit();
    }
    (void)check_close_npy, (void)data_path;
    list_pictures();
    /* RAM_SIMILAR_MODEL: measure another model (the checks are the default model's) */
    char *zLoad = sqlite3_mprintf("SELECT ram_load(%Q)",
                                  getenv("RAM_SIMILAR_MODEL") ? getenv("RAM_SIMILAR_MODEL") : "models/default.ram");
    sqlite3 *db = open_db(g_db);
    if (!db || exec(db, zLoad) || exec(db, "CREATE VIRTUAL TABLE photos USING ram_index(resume=0)") || fill(db)) {
        check(0, "similar.setup", "cannot build the table (above)");
        return harness_exit();
    }
    sqlite3_free(zLoad);
    test_duplicates(db);
    test_search_by_example(db);
    test_text_embed(db);
    test_errors(db);
    sqlite3_close(db);
    test_cli();
    test_interrupt();
    if (!getenv("RAM_SIMILAR_KEEP"))
        unlink(g_db);
    else
        printf("# kept %s\n", g_db);
    for (int i = 0; i < g_nName; i++) g_free(g_aQuery[i]), free(g_azName[i]);
    free(g_aQuery), free(g_anQuery), free(g_azName);
    vips_shutdown();
    return harness_exit();
}
