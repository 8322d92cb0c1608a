/*
** ram-index — indexes a photo library into a ram_index table.
**
**     ram-index DIR DB [--model FILE] [--table NAME] [--threads N] [--batch N] [--rescan]
**               [--switch-model] [--no-verify] [--hidden] [-v]
**               [--write-xmp [--xmp-name photo.jpg.xmp|photo.xmp] [--xmp-root ROOT] [--xmp-lang en|zh]]
**
** Walks DIR recursively (sorted; dot files and folders skipped, counted and
** reported, unless --hidden; symlinks to folders not followed), and INSERTs
** every file into the ram_index virtual
** table NAME (default "photos") of the SQLite database DB, created when
** missing, using build/ram.so loaded from next to this executable (installed:
** PREFIX/lib/ram0.so beside PREFIX/bin).
**
** - Non-images are found by trying the decode: the INSERT of a file libvips
**   cannot decode fails, the file is counted as skipped and the walk goes on.
** - Resumable: a path already in the table is skipped without reading it
**   (--rescan reads it again: the table then hashes the bytes, XXH3-128, and
**   re-embeds only a file whose bytes changed). Work is committed every
**   --batch images (default 16), and ram_index's resume journal keeps
**   embeddings computed inside an interrupted batch, so Ctrl-C loses nothing.
** - One model per table: when the table's images were embedded with another
**   model than this run's, it stops and says so; --switch-model makes this
**   run's model the table's and re-embeds the files (stale ones count as new
**   work, so an interrupted switch resumes like any run).
** - Progress on stderr: one line rewritten in place on a terminal, plain
**   lines every few seconds otherwise; files/s and ETA.
** - Threads: OpenBLAS threads for the inference (default: every core).
** - File names are bytes: stored as they are (UTF-8 or not), and printed
**   escaped (control characters and invalid UTF-8 as \xNN, see
**   term_name), so that a name cannot move the cursor, retitle or clear
**   the terminal, or break a line.
** - The model a table records (model=) is loaded only from a folder the
**   extension trusts (ext/model_trust.c): a database does not choose the
**   files this program opens; --model FILE allows another.
**
** - --write-xmp: after indexing, each indexed file's tags go into its XMP
**   sidecar as keywords (write_xmp_sidecars(), through ram_xmp()).
**
** Exit status: 0 done, 1 error (or a sidecar left unwritten), 2 usage, 130
** interrupted (rerun to resume).
*/
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define MAX_FILE_BYTES (512LL << 20) /* larger files are skipped unread */

static sqlite3 *g_db;
static volatile sig_atomic_t g_stop;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    if (g_db) sqlite3_interrupt(g_db); /* safe from a signal handler */
    signal(sig, SIG_DFL);              /* a second Ctrl-C ends the process */
}

static int utf8_len(const unsigned char *z);

/* Prints a message on stderr with its control characters but newlines, and
** bytes that are not UTF-8, as \xNN: the SQLite errors it may carry can
** quote a file name. (Names are escaped wholly, newlines too, by esc().) */
static void put_safe(const char *z)
{
    for (const unsigned char *p = (const unsigned char *)z; *p;) {
        int k = utf8_len(p);
        if (k == 0 || (k == 1 && *p != '\n' && (*p < 0x20 || *p == 0x7f))) {
            fprintf(stderr, "\\x%02x", *p++);
        } else {
            fwrite(p, 1, (size_t)k, stderr);
            p += k;
        }
    }
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *z = sqlite3_vmprintf(fmt, ap);
    va_end(ap);
    fputs("ram-index: ", stderr);
    put_safe(z ? z : "out of memory");
    fputc('\n', stderr);
    sqlite3_free(z);
    /* a Ctrl-C makes SQLite fail whatever statement was running (e.g. the
       model load): that is an interruption, not an error */
    exit(g_stop ? 130 : 1);
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------ names */

/* Length of the valid UTF-8 sequence at z (1-4), or 0 when the bytes there
** are not one (overlong forms, surrogates and code points over U+10FFFF
** included), nor C1 control characters (U+0080..U+009F, which terminals
** obey like ESC). */
static int utf8_len(const unsigned char *z)
{
    unsigned c = z[0];
    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) return (z[1] & 0xC0) == 0x80 && !(c == 0xC2 && z[1] < 0xA0) ? 2 : 0;
    if (c >= 0xE0 && c <= 0xEF) {
        if ((z[1] & 0xC0) != 0x80 || (z[2] & 0xC0) != 0x80) return 0;
        if (c == 0xE0 && z[1] < 0xA0) return 0; /* overlong */
        if (c == 0xED && z[1] >= 0xA0) return 0; /* surrogate */
        return 3;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        if ((z[1] & 0xC0) != 0x80 || (z[2] & 0xC0) != 0x80 || (z[3] & 0xC0) != 0x80) return 0;
        if (c == 0xF0 && z[1] < 0x90) return 0;  /* overlong */
        if (c == 0xF4 && z[1] >= 0x90) return 0; /* over U+10FFFF */
        return 4;
    }
    return 0;
}

/* z as text that is safe to print on a terminal: control characters,
** DEL, C1 controls and bytes that are not valid UTF-8 become \xNN, a
** backslash \\; at most cap - 1 bytes, cut at a character boundary (and
** ending "..." when cut). Returns out. */
static char *term_name(const char *z, char *out, size_t cap)
{
    size_t n = 0;
    const unsigned char *p = (const unsigned char *)(z ? z : "");
    if (cap < 8) return cap ? (*out = 0, out) : out;
    while (*p) {
        static const char hex[] = "0123456789abcdef";
        char piece[4];
        size_t m, k = (size_t)utf8_len(p);
        if (k == 0 || (k == 1 && (*p < 0x20 || *p == 0x7f))) {
            piece[0] = '\\', piece[1] = 'x', piece[2] = hex[*p >> 4], piece[3] = hex[*p & 15];
            m = 4, k = 1;
        } else if (*p == '\\') {
            piece[0] = piece[1] = '\\';
            m = 2;
        } else {
            memcpy(piece, p, k);
            m = k;
        }
        if (cap - n < m + 4) { /* keep room for "..." and the NUL */
            memcpy(out + n, "...", 3);
            n += 3;
            break;
        }
        memcpy(out + n, piece, m);
        n += m;
        p += k;
    }
    out[n] = 0;
    return out;
}

/* term_name into one of a few static buffers: for the arguments of one
** message (this program is single-threaded). */
static const char *esc(const char *z)
{
    static char buf[4][3 * PATH_MAX];
    static int i;
    i = (i + 1) % 4;
    return term_name(z, buf[i], sizeof buf[i]);
}

/* The last n characters of the escaped z (a suffix that starts on a
** character boundary), preceded by "..." when cut. */
static const char *esc_tail(const char *z, size_t nChars)
{
    const char *e = esc(z);
    size_t len = strlen(e), nc = 0;
    const char *p = e + len;
    while (p > e && nc < nChars) {
        p--;
        if (((unsigned char)*p & 0xC0) != 0x80) nc++;
    }
    if (p == e) return e;
    static char out[3 * PATH_MAX + 4];
    snprintf(out, sizeof out, "...%s", p);
    return out;
}

/* ------------------------------------------------------------------ walk */

typedef struct {
    char **a;
    size_t n, cap;
} PathList;

static void list_add(PathList *l, const char *p)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? 2 * l->cap : 256;
        l->a = realloc(l->a, l->cap * sizeof *l->a);
        if (!l->a) die("out of memory");
    }
    if (!(l->a[l->n++] = strdup(p))) die("out of memory");
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Regular files under dir (symlinks to files included, to folders not), in
** no particular order. Names starting with '.' are skipped and counted in
** *pnHidden unless bHidden. */
static void walk(const char *dir, PathList *out, int depth, int bHidden, size_t *pnHidden)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "ram-index: cannot open folder %s: %s\n", esc(dir), strerror(errno));
        return;
    }
    PathList sub = {0};
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        if (e->d_name[0] == '.' && !bHidden) {
            (*pnHidden)++;
            continue;
        }
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(n);
        if (!p) die("out of memory");
        snprintf(p, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", e->d_name);
        struct stat lst, st;
        if (lstat(p, &lst) == 0) {
            if (S_ISDIR(lst.st_mode)) {
                if (depth < 64) list_add(&sub, p);
            } else if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
                list_add(out, p);
            }
        }
        free(p);
    }
    closedir(d);
    for (size_t i = 0; i < sub.n; i++) {
        walk(sub.a[i], out, depth + 1, bHidden, pnHidden);
        free(sub.a[i]);
    }
    free(sub.a);
}

static unsigned char *read_file(const char *path, long long *pn, const char **why)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        *why = strerror(errno);
        return 0;
    }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || st.st_size > MAX_FILE_BYTES) {
        fclose(f);
        *why = "too large";
        return 0;
    }
    size_t cap = (size_t)st.st_size + 1, n = 0;
    unsigned char *b = malloc(cap);
    if (!b) die("out of memory");
    size_t r;
    while ((r = fread(b + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            if ((long long)cap > MAX_FILE_BYTES) {
                fclose(f);
                free(b);
                *why = "too large";
                return 0;
            }
            cap *= 2;
            b = realloc(b, cap);
            if (!b) die("out of memory");
        }
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(b);
        *why = "read error";
        return 0;
    }
    *pn = (long long)n;
    return b;
}

/* ------------------------------------------------------------------ progress */

typedef struct {
    int tty;
    double t0, tLast;
    size_t total, done;     /* files handled (any outcome) */
    size_t embedded;        /* inserted and new (or re-embedded) */
    size_t reembedded;      /* of which stale files embedded again */
    size_t present, skipped;
    double tWork0;          /* time of the first real insert, for the rate */
    size_t workDone;        /* inserts measured by the rate */
    size_t workTotal;       /* files that will need an insert */
    int rescan;             /* inserts of known files count as checked, not new */
} Progress;

static void fmt_time(double s, char *buf, size_t n)
{
    if (s < 0 || s > 1e7) {
        snprintf(buf, n, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else if (t >= 60)
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(buf, n, "%lds", t);
}

static void progress(Progress *p, const char *path, int final)
{
    double t = now();
    if (!final && !p->tty && t - p->tLast < 5.0) return;
    if (!final && p->tty && t - p->tLast < 0.1) return;
    p->tLast = t;
    double rate = 0, eta = -1;
    if (p->workDone > 0 && t > p->tWork0) {
        rate = p->workDone / (t - p->tWork0);
        eta = (p->workTotal - p->workDone) / rate;
    }
    char e[32], el[32];
    fmt_time(eta, e, sizeof e);
    fmt_time(t - p->t0, el, sizeof el);
    char line[512];
    int n = snprintf(line, sizeof line, "%zu/%zu files (%.0f%%), ", p->done, p->total,
                     p->total ? 100.0 * p->done / p->total : 100.0);
    if (!final) n += snprintf(line + n, sizeof line - n, "%.1f files/s, ETA %s: ", rate, e);
    n += snprintf(line + n, sizeof line - n, "%zu %s, ", p->embedded - p->reembedded,
                  p->rescan ? "indexed or checked" : "new");
    if (p->reembedded) n += snprintf(line + n, sizeof line - n, "%zu re-embedded, ", p->reembedded);
    n += snprintf(line + n, sizeof line - n, "%zu already indexed, %zu not images", p->present, p->skipped);
    if (final) snprintf(line + n, sizeof line - n, " in %s (%.1f files/s)", el, rate);
    if (p->tty) {
        /* one line, rewritten, ending with the current file's path:
        ** escaped, its last 40 characters */
        char out[1024];
        snprintf(out, sizeof out, "%s%s%.200s", line, path && !final ? " " : "",
                 path && !final ? esc_tail(path, 40) : "");
        /* never wider than the terminal, or \r could not rewrite it; cut
        ** between characters (a UTF-8 character takes at least as many
        ** bytes as columns, but for wide ones: 3 bytes, 2 columns) */
        struct winsize ws;
        if (!final && ioctl(2, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 10 && strlen(out) >= ws.ws_col) {
            size_t cut = ws.ws_col - 1;
            while (cut > 0 && ((unsigned char)out[cut] & 0xC0) == 0x80) cut--;
            out[cut] = 0;
        }
        fprintf(stderr, "\r\033[K%s%s", out, final ? "\n" : "");
    } else {
        fprintf(stderr, "%s\n", line);
    }
    fflush(stderr);
}

/* ------------------------------------------------------------------ sql */

static void exec_or_die(const char *sql)
{
    char *err = 0;
    if (sqlite3_exec(g_db, sql, 0, 0, &err) != SQLITE_OK) die("%s\n  in: %s", err ? err : "error", sql);
}

static sqlite3_stmt *prep(const char *sql)
{
    sqlite3_stmt *s;
    if (sqlite3_prepare_v2(g_db, sql, -1, &s, 0) != SQLITE_OK) die("%s\n  in: %s", sqlite3_errmsg(g_db), sql);
    return s;
}

/* First column of the first row of sql as sqlite3_malloc'd text: "" when
** there is no row or it is NULL. */
static char *sql_text(const char *sql)
{
    sqlite3_stmt *s = prep(sql);
    int rc = sqlite3_step(s);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) die("%s\n  in: %s", sqlite3_errmsg(g_db), sql);
    const unsigned char *z = rc == SQLITE_ROW ? sqlite3_column_text(s, 0) : 0;
    char *out = sqlite3_mprintf("%s", z ? (const char *)z : "");
    sqlite3_finalize(s);
    if (!out) die("out of memory");
    return out;
}

/* ram_load(path, verify) on the connection; zWhy, when set, says why this
** file (it precedes the error). */
static void load_model(const char *path, int verify, const char *zWhy)
{
    char *sql = sqlite3_mprintf("SELECT ram_load(%Q, %d)", path, verify);
    sqlite3_stmt *s = prep(sql);
    if (sqlite3_step(s) != SQLITE_ROW) die("%s%s", zWhy ? zWhy : "", sqlite3_errmsg(g_db));
    sqlite3_finalize(s);
    sqlite3_free(sql);
}

/* The model file a table is bound to (its model= option, kept in its
** _config table): sqlite3_malloc'd, "" when it has none or does not exist. */
static char *table_bound_model(const char *table)
{
    char *sql = sqlite3_mprintf("SELECT 1 FROM sqlite_schema WHERE type = 'table' AND name = '%q_config'", table);
    char *zHave = sql_text(sql);
    sqlite3_free(sql);
    int bHave = *zHave != 0;
    sqlite3_free(zHave);
    if (!bHave) return sqlite3_mprintf("");
    sql = sqlite3_mprintf("SELECT value FROM \"%w_config\" WHERE key = 'model'", table);
    char *z = sql_text(sql);
    sqlite3_free(sql);
    return z;
}

/* A table answers only from images embedded with its current model (its
** generation, docs/INDEX.md). When this run's model is another one (the
** default model was retrained, --model names another file, the table's
** model= file changed), indexing on would leave queries refusing to mix
** the two: stop and say what to do, or with --switch-model make this run's
** model the table's (every image becomes stale; the walk re-embeds the
** files it finds, resumably). A table bound to a file (model=) that this
** run did not name with --model is indexed with that file. *pzModel: the
** realpath of --model, or NULL; set to the bound file when one is used. */
static void check_table_model(const char *table, char **pzModel, int switchModel)
{
    char *zBound = table_bound_model(table), *sql;
    int rebind = 0;
    if (*zBound) {
        char *real = realpath(zBound, 0);
        if (!*pzModel) { /* main() loaded it */
            *pzModel = sqlite3_mprintf("%s", real ? real : zBound);
        } else if (!real || strcmp(real, *pzModel)) {
            rebind = 1;
        }
        free(real);
    }
    char *zDigest = sql_text("SELECT json_extract(ram_model(), '$.digest')");
    sql = sqlite3_mprintf("SELECT g.digest FROM \"%w_config\" c JOIN \"%w_gens\" g ON g.id = c.value "
                          "WHERE c.key = 'gen'", table, table);
    char *zGen = sql_text(sql); /* digest of the model the table's images belong to */
    sqlite3_free(sql);
    int same = *zDigest && !strcmp(zGen, zDigest);
    sql = sqlite3_mprintf("SELECT count(*) FROM \"%w_images\"", table);
    char *zImages = sql_text(sql);
    sqlite3_free(sql);
    long long nImg = atoll(zImages);
    sqlite3_free(zImages);
    if (same && !rebind) goto done;
    /* The same content under another path only rebinds: the images stay. */
    if (!same && nImg > 0 && !switchModel) {
        char *zFile = sql_text("SELECT json_extract(ram_model(), '$.file')");
        die("table %s holds %lld image%s embedded with another model (digest %s%s%s);\n"
            "  this run's model is %s (digest %s).\n"
            "  Rerun with --switch-model to re-embed them with it (tag and MATCH queries refuse the\n"
            "  table until every image is re-embedded), or name their model with --model FILE.",
            table, nImg, nImg == 1 ? "" : "s", zGen, *zBound ? ", the table's model= file " : "", zBound, zFile,
            zDigest);
    }
    sql = *pzModel ? sqlite3_mprintf("INSERT INTO \"%w\"(\"%w\") VALUES('model=' || %Q)", table, table, *pzModel)
                   : sqlite3_mprintf("INSERT INTO \"%w\"(\"%w\") VALUES('model')", table, table);
    exec_or_die(sql);
    sqlite3_free(sql);
    if (!same && nImg > 0)
        fprintf(stderr, "ram-index: table %s now uses this run's model: its %lld image%s will be re-embedded\n", table,
                nImg, nImg == 1 ? "" : "s");
done:
    sqlite3_free(zBound);
    sqlite3_free(zDigest);
    sqlite3_free(zGen);
}

/* The real folder of path: its file's (symlinks resolved) when it exists,
** else its folder's. malloc'd; NULL when neither resolves. */
static char *real_folder(const char *path)
{
    char *r = realpath(path, 0);
    if (!r) {
        char *d = strdup(path);
        if (!d) die("out of memory");
        char *sl = strrchr(d, '/');
        if (sl) sl[sl == d] = 0;
        r = realpath(sl ? d : ".", 0);
        free(d);
        return r;
    }
    char *sl = strrchr(r, '/');
    if (sl) sl[sl == r] = 0;
    return r;
}

/* Whether this program may load the model file a table records on the
** table's word: only from the folders the user keeps models in, the rule of
** ext/model_trust.c (RAM_MODEL's folder and every folder of the default
** model's search order, which the loaded extension lists in ram_debug()).
** A database does not choose the files this program opens: ram_load() here
** would make the extension trust the file too. soDir is unused (the
** extension knows its own folder). */
static int bound_model_trusted(const char *zBound, const char *soDir)
{
    (void)soDir;
    char *f = real_folder(zBound);
    if (!f) return 0;
    const char *zEnv = getenv("RAM_MODEL");
    char *b = zEnv && *zEnv ? real_folder(zEnv) : 0;
    int ok = b && !strcmp(b, f);
    free(b);
    /* the folders of the extension's default-model search order (ext/model_path.c) */
    sqlite3_stmt *s = 0;
    if (!ok && sqlite3_prepare_v2(g_db, "SELECT value FROM json_each(json_extract(ram_debug(), '$.model_search'))",
                                  -1, &s, 0) == SQLITE_OK) {
        while (!ok && sqlite3_step(s) == SQLITE_ROW) {
            char *a = real_folder((const char *)sqlite3_column_text(s, 0));
            ok = a && !strcmp(a, f);
            free(a);
        }
    }
    sqlite3_finalize(s);
    free(f);
    return ok;
}

/* The directory holding this executable (for ram.so). */
static char *exe_dir(const char *argv0)
{
    char buf[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
    if (n > 0) {
        buf[n] = 0;
    } else {
        snprintf(buf, sizeof buf, "%s", argv0);
    }
    char *slash = strrchr(buf, '/');
    if (!slash) return strdup(".");
    *slash = 0;
    return strdup(buf[0] ? buf : "/");
}

/* The extension: ram.so beside this executable (the build folder), else
** ../lib/ram0.so (make install's layout: PREFIX/bin, PREFIX/lib). */
static char *extension_path(const char *exeDir)
{
    char *z = sqlite3_mprintf("%s/ram.so", exeDir);
    if (z && access(z, R_OK) != 0) {
        char *zInst = sqlite3_mprintf("%s/../lib/ram0.so", exeDir);
        if (zInst && access(zInst, R_OK) == 0) {
            sqlite3_free(z);
            return zInst;
        }
        sqlite3_free(zInst);
    }
    return z;
}

/* The default model file the extension would pick (RAM_MODEL, else the first
** of its search places, ext/model_path.c), as ram_debug() reports it, or
** NULL (sqlite3_free). */
static char *extension_default_model(void)
{
    const char *zEnv = getenv("RAM_MODEL");
    if (zEnv && *zEnv) return sqlite3_mprintf("%s", zEnv);
    sqlite3_stmt *s = 0;
    char *z = 0;
    if (sqlite3_prepare_v2(g_db, "SELECT json_extract(ram_debug(), '$.default_model')", -1, &s, 0) == SQLITE_OK &&
        sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) == SQLITE_TEXT)
        z = sqlite3_mprintf("%s", sqlite3_column_text(s, 0));
    sqlite3_finalize(s);
    return z;
}

static int valid_name(const char *z)
{
    if (!*z) return 0;
    for (const char *c = z; *c; c++)
        if (!(*c == '_' || (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')))
            return 0;
    return !(z[0] >= '0' && z[0] <= '9');
}

/* ------------------------------------------------------------------ --write-xmp */

/* --write-xmp: how the sidecars are named and what they hold. */
typedef struct XmpOpts {
    int write;         /* --write-xmp */
    int stripExt;      /* --xmp-name photo.xmp (Lightroom) instead of photo.jpg.xmp (darktable, digiKam) */
    const char *root;  /* --xmp-root: lr:hierarchicalSubject root ('' none) */
    int zh;            /* --xmp-lang zh: Chinese tag names */
} XmpOpts;

/* Writes (or merges into) the XMP sidecar of every file of this run that the
** table holds, with the tags the table stores (no inference): ram_xmp() keeps
** what the user wrote in an existing sidecar and replaces only the keywords a
** previous run added. A sidecar ram_xmp() refuses (not XMP, corrupt) is left
** untouched and named; an unchanged one is not rewritten. Each is written to a
** temporary file in the same folder and renamed over the old one, so a crash
** never leaves half a sidecar. Returns the number refused or not written. */
static long long write_xmp_sidecars(const char *table, char **paths, size_t n, const char *todo,
                                    const XmpOpts *o)
{
    char *sql = sqlite3_mprintf("SELECT %s FROM \"%w\" WHERE path = ?1", o->zh ? "tags_zh" : "tags", table);
    sqlite3_stmt *sTags = prep(sql);
    sqlite3_free(sql);
    sqlite3_stmt *sXmp = prep("SELECT ram_xmp(?1, ?2, ?3)");
    long long nWritten = 0, nSame = 0, nBad = 0;
    for (size_t i = 0; i < n && !g_stop; i++) {
        if (!todo[i] || todo[i] == 3) continue; /* the database itself, or not an image */
        sqlite3_bind_text(sTags, 1, paths[i], -1, SQLITE_STATIC);
        int rc = sqlite3_step(sTags);
        char *tags = rc == SQLITE_ROW && sqlite3_column_type(sTags, 0) == SQLITE_TEXT
                         ? sqlite3_mprintf("%s", sqlite3_column_text(sTags, 0))
                         : 0;
        sqlite3_reset(sTags);
        if (!tags) continue; /* not indexed (skipped) or stale */
        const char *slash = strrchr(paths[i], '/');
        const char *dot = strrchr(slash ? slash + 1 : paths[i], '.');
        char *side = o->stripExt && dot && dot != (slash ? slash + 1 : paths[i])
                         ? sqlite3_mprintf("%.*s.xmp", (int)(dot - paths[i]), paths[i])
                         : sqlite3_mprintf("%s.xmp", paths[i]);
        if (!side) die("out of memory");
        long long nOld = 0;
        const char *why = 0;
        errno = 0;
        unsigned char *old = read_file(side, &nOld, &why);
        if (!old && errno != ENOENT) {
            fprintf(stderr, "ram-index: %s: cannot read it (%s): left as it is\n", side, why);
            nBad++;
            goto next;
        }
        sqlite3_bind_text(sXmp, 1, tags, -1, SQLITE_STATIC);
        if (old) sqlite3_bind_blob64(sXmp, 2, old, (sqlite3_uint64)nOld, SQLITE_STATIC);
        else sqlite3_bind_null(sXmp, 2);
        sqlite3_bind_text(sXmp, 3, o->root, -1, SQLITE_STATIC);
        if (sqlite3_step(sXmp) != SQLITE_ROW) {
            fprintf(stderr, "ram-index: %s: %s: left as it is\n", side, sqlite3_errmsg(g_db));
            nBad++;
        } else {
            const void *z = sqlite3_column_text(sXmp, 0);
            long long nz = sqlite3_column_bytes(sXmp, 0);
            if (old && nz == nOld && !memcmp(z, old, (size_t)nz)) {
                nSame++;
            } else {
                char *tmp = sqlite3_mprintf("%s.ram-index-tmp", side);
                FILE *f = tmp ? fopen(tmp, "wb") : 0;
                int ok = f && fwrite(z, 1, (size_t)nz, f) == (size_t)nz;
                if (f && fclose(f) != 0) ok = 0;
                if (ok && rename(tmp, side) == 0) {
                    nWritten++;
                } else {
                    fprintf(stderr, "ram-index: %s: cannot write it (%s): left as it is\n", side, strerror(errno));
                    if (tmp) remove(tmp);
                    nBad++;
                }
                sqlite3_free(tmp);
            }
        }
        sqlite3_reset(sXmp);
        sqlite3_clear_bindings(sXmp);
    next:
        free(old);
        sqlite3_free(side);
        sqlite3_free(tags);
    }
    sqlite3_finalize(sTags);
    sqlite3_finalize(sXmp);
    fprintf(stderr, "ram-index: XMP sidecars: %lld written, %lld unchanged, %lld left as they were (errors above)\n",
            nWritten, nSame, nBad);
    return nBad;
}

static void usage(void)
{
    fputs("usage: ram-index DIR DB [--model FILE] [--table NAME] [--threads N] [--batch N] [--rescan]\n"
          "                 [--switch-model] [--no-verify] [--hidden] [-v] [--write-xmp ...]\n"
          "  Indexes every image under DIR into the ram_index table NAME (default photos) of the\n"
          "  SQLite database DB. Rerun to resume or to add new files. Non-images are skipped.\n"
          "  --model FILE  model file (default: RAM_MODEL, else the extension's default model)\n"
          "  --threads N   inference threads (default: all cores)\n"
          "  --batch N     images per committed transaction (default 16)\n"
          "  --rescan      read files already indexed again (re-embeds those whose bytes changed)\n"
          "  --switch-model  when the table's images were embedded with another model, make this\n"
          "                run's model the table's and re-embed them (without it: stop and say so)\n"
          "  --no-verify   skip the checksum pass over the model file at load (the header and\n"
          "                every tensor bound are still checked)\n"
          "  --hidden      index files and folders whose names start with '.' too (by default\n"
          "                they are skipped, and counted)\n"
          "  -v            name every skipped file\n"
          "  --write-xmp   write each indexed file's tags into its XMP sidecar as keywords\n"
          "                (dc:subject, lr:hierarchicalSubject), keeping what the sidecar holds\n"
          "  --xmp-name photo.jpg.xmp|photo.xmp  sidecar name: darktable/digiKam (default) or Lightroom\n"
          "  --xmp-root ROOT  hierarchical keyword root (default auto: 'auto|dog'; '' for none)\n"
          "  --xmp-lang en|zh  tag names in the sidecars (default en)\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *dir = 0, *dbPath = 0, *model = 0, *table = "photos";
    int threads = 0, batch = 16, rescan = 0, verbose = 0, verify = 1, switchModel = 0, hidden = 0;
    XmpOpts xmp = {0, 0, "auto", 0}; /* --write-xmp and its options */
    /* Ctrl-C and SIGTERM stop between (or inside) images and keep the work
    ** done, from the first instruction on (a signal before the handlers would
    ** kill the process with 143 instead of 130); a SIGINT ignored by the
    ** parent (background job) stays ignored. */
    if (signal(SIGINT, SIG_IGN) != SIG_IGN) signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--model") && i + 1 < argc)
            model = argv[++i];
        else if (!strcmp(a, "--table") && i + 1 < argc)
            table = argv[++i];
        else if (!strcmp(a, "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(a, "--batch") && i + 1 < argc)
            batch = atoi(argv[++i]);
        else if (!strcmp(a, "--rescan"))
            rescan = 1;
        else if (!strcmp(a, "--hidden"))
            hidden = 1;
        else if (!strcmp(a, "--switch-model"))
            switchModel = 1;
        else if (!strcmp(a, "--no-verify"))
            verify = 0;
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
            verbose = 1;
        else if (!strcmp(a, "--write-xmp"))
            xmp.write = 1;
        else if (!strcmp(a, "--xmp-name") && i + 1 < argc && (!strcmp(argv[i + 1], "photo.jpg.xmp") || !strcmp(argv[i + 1], "photo.xmp")))
            xmp.stripExt = !strcmp(argv[++i], "photo.xmp");
        else if (!strcmp(a, "--xmp-root") && i + 1 < argc)
            xmp.root = argv[++i];
        else if (!strcmp(a, "--xmp-lang") && i + 1 < argc && (!strcmp(argv[i + 1], "en") || !strcmp(argv[i + 1], "zh")))
            xmp.zh = !strcmp(argv[++i], "zh");
        else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            usage();
        else if (a[0] == '-' && a[1])
            usage();
        else if (!dir)
            dir = a;
        else if (!dbPath)
            dbPath = a;
        else
            usage();
    }
    if (!dir || !dbPath || batch < 1) usage();
    if (!valid_name(table)) die("--table: '%s' is not a plain SQL name", table);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) die("%s is not a folder", esc(dir));

    /* OpenBLAS reads its thread count when ram.so brings it in. */
    if (threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc > 0 ? (int)nc : 1;
    }
    char tbuf[16];
    snprintf(tbuf, sizeof tbuf, "%d", threads);
    setenv("OPENBLAS_NUM_THREADS", tbuf, 1);

    if (sqlite3_open_v2(dbPath, &g_db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 0) != SQLITE_OK)
        die("cannot open %s: %s", esc(dbPath), g_db ? sqlite3_errmsg(g_db) : "out of memory");
    sqlite3_busy_timeout(g_db, 5000);
    sqlite3_db_config(g_db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, (int *)0);
    char *so_dir = exe_dir(argv[0]);
    char *so = extension_path(so_dir);
    char *err = 0;
    if (sqlite3_load_extension(g_db, so, 0, &err) != SQLITE_OK)
        die("cannot load the extension %s: %s", esc(so), err ? err : "?");
    sqlite3_free(so);

    /* The model: --model, else the extension's default (RAM_MODEL, then the
    ** bundled models/default.ram); checked before any file is read. */
    char *zModel = 0;
    if (model) {
        char *abs = realpath(model, 0);
        if (!abs) die("cannot open the model %s: %s", esc(model), strerror(errno));
        zModel = sqlite3_mprintf("%s", abs);
        free(abs);
    }
    /* Else the file the table is bound to (model=), else, with --no-verify,
    ** the default file the extension would pick (RAM_MODEL, else
    ** models/default.ram beside the folder of ram.so), loaded here without
    ** its checksum pass before creating the table would load it verified. */
    char *zBound = table_bound_model(table);
    if (!zModel && *zBound && !bound_model_trusted(zBound, so_dir))
        die("table %s records the model file '%s', which is not in a folder trusted for models (the default "
            "model's, RAM_MODEL's): a database does not choose the files this program opens; if you trust that "
            "file, rerun with --model '%s'",
            table, esc(zBound), esc(zBound));
    char *zLoad = zModel ? sqlite3_mprintf("%s", zModel)
                : *zBound ? sqlite3_mprintf("%s", zBound)
                : !verify ? extension_default_model()
                          : 0;
    if (zLoad) {
        char *zWhy = !zModel && *zBound ? sqlite3_mprintf("table %s is bound to this model file (model=); name "
                                                          "another with --model FILE --switch-model: ", table)
                                        : 0;
        load_model(zLoad, verify, zWhy);
        sqlite3_free(zWhy);
        sqlite3_free(zLoad);
    }
    sqlite3_free(zBound);
    free(so_dir);
    exec_or_die("PRAGMA journal_mode=WAL");
    exec_or_die("PRAGMA synchronous=NORMAL");
    {
        char *sql = zModel ? sqlite3_mprintf("CREATE VIRTUAL TABLE IF NOT EXISTS \"%w\" USING ram_index(model=%Q)",
                                             table, zModel)
                           : sqlite3_mprintf("CREATE VIRTUAL TABLE IF NOT EXISTS \"%w\" USING ram_index", table);
        exec_or_die(sql);
        sqlite3_free(sql);
    }
    check_table_model(table, &zModel, switchModel);
    {
        sqlite3_stmt *s = prep("SELECT json_extract(ram_model(), '$.file'), json_extract(ram_model(), '$.kind'), "
                               "json_extract(ram_model(), '$.tags')");
        if (sqlite3_step(s) != SQLITE_ROW) die("%s", sqlite3_errmsg(g_db));
        fprintf(stderr, "ram-index: model %s (%s, %d tags), %d thread%s\n", esc((const char *)sqlite3_column_text(s, 0)),
                sqlite3_column_text(s, 1), sqlite3_column_int(s, 2), threads, threads == 1 ? "" : "s");
        sqlite3_finalize(s);
    }


    PathList files = {0};
    size_t nHidden = 0;
    walk(dir, &files, 0, hidden, &nHidden);
    if (files.n) qsort(files.a, files.n, sizeof *files.a, cmp_str); /* a stable order: resumes read alike */

    /* Never index the database itself or its side files. */
    char *dbReal = realpath(dbPath, 0);

    /* stale: embedded with another model or preprocessing (after
    ** --switch-model, or an interrupted run of it): indexed again. */
    char *sql = sqlite3_mprintf("SELECT stale FROM \"%w\" WHERE path = ?1", table);
    sqlite3_stmt *sHave = prep(sql);
    sqlite3_free(sql);
    /* Files found not to be images, remembered with their size and mtime so
    ** that a rerun does not read them again (a regular table beside the
    ** index; --rescan tries them again). */
    exec_or_die("CREATE TABLE IF NOT EXISTS ram_index_skipped(tbl TEXT, path TEXT, size INTEGER, mtime INTEGER, "
                "reason TEXT, PRIMARY KEY (tbl, path)) WITHOUT ROWID");
    sqlite3_stmt *sSkipped = prep("SELECT 1 FROM ram_index_skipped WHERE tbl = ?1 AND path = ?2 AND size = ?3 AND "
                                  "mtime = ?4");
    sqlite3_stmt *sSkip = prep("INSERT OR REPLACE INTO ram_index_skipped VALUES(?1, ?2, ?3, ?4, ?5)");
    sql = sqlite3_mprintf("INSERT INTO \"%w\"(path, image) VALUES(?1, ?2)", table);
    sqlite3_stmt *sIns = prep(sql);
    sqlite3_free(sql);
    sqlite3_stmt *sBegin = prep("BEGIN IMMEDIATE"), *sCommit = prep("COMMIT");

    Progress P = {0};
    P.tty = isatty(2);
    P.rescan = rescan;
    P.t0 = P.tLast = now();
    P.total = files.n;

    /* First pass (cheap): which paths are already present. */
    char *todo = calloc(files.n + 1, 1);
    if (!todo) die("out of memory");
    for (size_t i = 0; i < files.n; i++) {
        if (dbReal) {
            char *r = realpath(files.a[i], 0);
            int self = r && !strncmp(r, dbReal, strlen(dbReal));
            free(r);
            if (self) continue; /* not counted */
        }
        todo[i] = 1;
        if (!rescan) {
            sqlite3_bind_text(sHave, 1, files.a[i], -1, SQLITE_STATIC);
            int rc = sqlite3_step(sHave);
            if (rc == SQLITE_ROW) todo[i] = sqlite3_column_int(sHave, 0) ? 4 : 2;
            else if (rc != SQLITE_DONE) die("%s", sqlite3_errmsg(g_db));
            sqlite3_reset(sHave);
            struct stat fst;
            if (todo[i] == 1 && stat(files.a[i], &fst) == 0) {
                sqlite3_bind_text(sSkipped, 1, table, -1, SQLITE_STATIC);
                sqlite3_bind_text(sSkipped, 2, files.a[i], -1, SQLITE_STATIC);
                sqlite3_bind_int64(sSkipped, 3, (sqlite3_int64)fst.st_size);
                sqlite3_bind_int64(sSkipped, 4, (sqlite3_int64)fst.st_mtime);
                rc = sqlite3_step(sSkipped);
                if (rc == SQLITE_ROW) todo[i] = 3;
                else if (rc != SQLITE_DONE) die("%s", sqlite3_errmsg(g_db));
                sqlite3_reset(sSkipped);
            }
        }
        if (todo[i] == 1 || todo[i] == 4) P.workTotal++;
    }
    free(dbReal);
    for (size_t i = 0; i < files.n; i++)
        if (!todo[i]) P.total--;

    if (g_stop) { /* Ctrl-C while scanning or loading: nothing was written yet */
        fprintf(stderr, "ram-index: interrupted before any work; rerun the same command\n");
        exit(130);
    }

    int inTxn = 0, nInTxn = 0, interrupted = 0;
    P.tWork0 = now();
    for (size_t i = 0; i < files.n && !g_stop; i++) {
        if (!todo[i]) continue;
        const char *path = files.a[i];
        if (todo[i] == 3) {
            P.skipped++;
            P.done++;
            continue;
        }
        if (todo[i] == 2) {
            P.present++;
            P.done++;
            progress(&P, path, 0);
            continue;
        }
        long long n = 0;
        const char *why = 0;
        unsigned char *data = read_file(path, &n, &why);
        if (!data) {
            P.skipped++;
            P.done++;
            P.workDone++;
            if (verbose) fprintf(stderr, "%sram-index: skipped %s: %s\n", P.tty ? "\r\033[K" : "", esc(path), why);
            continue;
        }
        if (!inTxn) {
            if (sqlite3_step(sBegin) != SQLITE_DONE) die("BEGIN: %s", sqlite3_errmsg(g_db));
            sqlite3_reset(sBegin);
            inTxn = 1;
        }
        sqlite3_bind_text(sIns, 1, path, -1, SQLITE_STATIC);
        sqlite3_bind_blob64(sIns, 2, data, (sqlite3_uint64)n, SQLITE_STATIC);
        int rc = sqlite3_step(sIns);
        sqlite3_reset(sIns);
        sqlite3_clear_bindings(sIns);
        free(data);
        P.done++;
        P.workDone++;
        if (rc == SQLITE_DONE) {
            P.embedded++;
            if (todo[i] == 4) P.reembedded++;
            nInTxn++;
        } else if (rc == SQLITE_INTERRUPT || g_stop) {
            interrupted = 1;
            P.done--;
            P.workDone--;
            break;
        } else if (rc == SQLITE_TOOBIG || (rc == SQLITE_ERROR && !strncmp(sqlite3_errmsg(g_db), "ram_index: image:", 17))) {
            /* Not an image (or over the pixel limit): the statement is
            ** rolled back, the transaction goes on. Any other error (no
            ** model, a table of another model, I/O) stops the run. */
            P.skipped++;
            if (verbose)
                fprintf(stderr, "%sram-index: skipped %s: %s\n", P.tty ? "\r\033[K" : "", esc(path),
                        esc(sqlite3_errmsg(g_db)));
            struct stat fst;
            if (stat(path, &fst) == 0) {
                sqlite3_bind_text(sSkip, 1, table, -1, SQLITE_STATIC);
                sqlite3_bind_text(sSkip, 2, path, -1, SQLITE_STATIC);
                sqlite3_bind_int64(sSkip, 3, (sqlite3_int64)fst.st_size);
                sqlite3_bind_int64(sSkip, 4, (sqlite3_int64)fst.st_mtime);
                sqlite3_bind_text(sSkip, 5, sqlite3_errmsg(g_db), -1, SQLITE_TRANSIENT);
                if (sqlite3_step(sSkip) != SQLITE_DONE) die("%s", sqlite3_errmsg(g_db));
                sqlite3_reset(sSkip);
            }
        } else {
            die("%s: %s", esc(path), sqlite3_errmsg(g_db));
        }
        if (nInTxn >= batch) {
            if (sqlite3_step(sCommit) != SQLITE_DONE) die("COMMIT: %s", sqlite3_errmsg(g_db));
            sqlite3_reset(sCommit);
            inTxn = 0;
            nInTxn = 0;
        }
        progress(&P, path, 0);
    }
    if (g_stop) interrupted = 1;
    if (inTxn && sqlite3_get_autocommit(g_db)) {
        /* SQLite rolled the batch back with the interrupted INSERT; the
        ** embeddings computed in it stay in ram_index's resume journal, so
        ** a rerun costs a hash per file for them. */
        P.embedded -= (size_t)nInTxn;
    } else if (inTxn) {
        /* every row of the batch is complete: keep them */
        if (sqlite3_step(sCommit) != SQLITE_DONE) die("COMMIT: %s", sqlite3_errmsg(g_db));
        sqlite3_reset(sCommit);
    }
    progress(&P, 0, 1);
    if (nHidden)
        fprintf(stderr, "ram-index: %zu hidden file%s or folder%s skipped (names starting with '.'; --hidden indexes them)\n",
                nHidden, nHidden == 1 ? "" : "s", nHidden == 1 ? "" : "s");
    if (!interrupted) {
        /* Files of another folder (or gone) that a model switch left stale:
        ** queries refuse the table until they are dealt with. */
        char *q = sqlite3_mprintf("SELECT count(*) FROM \"%w\" WHERE stale", table);
        char *zStale = sql_text(q);
        sqlite3_free(q);
        long long nStale = atoll(zStale);
        sqlite3_free(zStale);
        if (nStale > 0)
            fprintf(stderr,
                    "ram-index: %lld file%s of table %s %s still embedded with another model (not found under %s):\n"
                    "  index their folder too, or drop them: INSERT INTO %s(%s) VALUES('delete-stale')\n",
                    nStale, nStale == 1 ? "" : "s", table, nStale == 1 ? "is" : "are", esc(dir), table, table);
    }
    long long nXmpBad = !interrupted && xmp.write ? write_xmp_sidecars(table, files.a, files.n, todo, &xmp) : 0;
    if (g_stop) interrupted = 1;
    sqlite3_finalize(sHave);
    sqlite3_finalize(sSkipped);
    sqlite3_finalize(sSkip);
    sqlite3_finalize(sIns);
    sqlite3_finalize(sBegin);
    sqlite3_finalize(sCommit);
    /* The handlers stay: a signal from here on interrupts the checkpoint
    ** (die() then exits 130; WAL keeps the committed work either way). */
    if (!interrupted) exec_or_die("PRAGMA wal_checkpoint(TRUNCATE)");
    sqlite3 *db = g_db;
    g_db = 0;
    if (sqlite3_close(db) != SQLITE_OK) die("closing %s: %s", esc(dbPath), sqlite3_errmsg(db));
    for (size_t i = 0; i < files.n; i++) free(files.a[i]);
    free(files.a);
    free(todo);
    sqlite3_free(zModel);
    if (interrupted) {
        fprintf(stderr, "ram-index: interrupted; the work done is kept: rerun the same command to resume\n");
    }
    return interrupted ? 130 : nXmpBad ? 1 : 0;
}
