/*
** ram-index — indexes a photo library into a ram_index table.
**
**     ram-index DIR DB [--model FILE] [--table NAME] [--threads N] [--batch N] [--rescan] [--captions]
**               [--switch-model] [--no-verify] [--hidden] [--prune] [--max-pixels N]
**               [--exclude GLOB]... [--follow-symlinks] [-v]
**               [--write-xmp [--xmp-name photo.jpg.xmp|photo.xmp] [--xmp-root ROOT] [--xmp-lang en|zh]]
**     ram-index --files-from LIST DB [options]
**     ram-index --duplicates DB [--table NAME] [--threshold T]
**     ram-index --files-from LIST --shard I/N SHARD.db [options]   (one slice)
**     ram-index --merge DB SHARD.db... [--model FILE] [--table NAME]
**     ram-index --merge DB --shard I/M --root DIR SHARD.db...   (re-sharding)
**
** Walks DIR recursively (sorted; dot files and folders skipped, counted and
** reported, unless --hidden; symlinks to folders not followed), and INSERTs
** every file into the ram_index virtual
** table NAME (default "photos") of the SQLite database DB, created when
** missing, using build/ram.so loaded from next to this executable (installed:
** PREFIX/lib/ram0.so beside PREFIX/bin).
**
** - Names: DIR's symlinks are resolved and every file is stored relative to
**   the database's folder (absolute when outside it), without "./" or "//":
**   `dir`, `./dir/` and its absolute path give the same rows.
** - Change detection: ram_index_stat keeps each file's size, mtime (ns) and
**   inode; a rerun reads only the files whose record differs (then the
**   table hashes them and re-embeds only new bytes). A new name whose bytes
**   are those of a row whose file is gone is that file moved: its image is
**   reused (no inference) and the old row goes. Rows of DIR whose file is
**   gone are reported; --prune deletes them. The last line counts new,
**   unchanged, changed, moved, gone and not indexed files (by reason) and
**   the inferences.
** - Non-images are found by trying the decode: the INSERT of a file libvips
**   cannot decode fails, the file is counted as skipped and the walk goes on.
** - Resumable: a path already in the table is skipped without reading it
**   (--rescan reads it again: the table then hashes the bytes, XXH3-128, and
**   re-embeds only a file whose bytes changed). Work is committed every
**   --batch images (default 16); a Ctrl-C or SIGTERM stores the images of
**   the batch already embedded, then stops (a SIGKILL loses at most the
**   batch being prepared).
** - Several writers: a batch's new images are embedded into a staging
**   ram_index table of an in-memory database, outside the write
**   transaction; one short transaction then stores the batch by entry (no
**   inference while holding the write lock); the busy timeout is 10 minutes.
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
** - --shard I/N indexes only the files of slice I of N (demo/shard.c: a
**   hash of the name relative to DIR, or of the list's line); --merge stores
**   the rows of shard databases into DB by entry, without inference; with
**   --shard I/M (and --root, the folder the names were sliced from) only
**   the rows of slice I of M: N shards become M without inference
**   (docs/SCALE.md).
** - --write-xmp: after indexing, each indexed file's tags go into its XMP
**   sidecar as keywords (write_xmp_sidecars(), through ram_xmp()).
**
** - --duplicates: lists the groups of near-duplicate pictures of the table
**   (ram_index_duplicates(): cosine of the CLS embeddings >= T, default
**   0.91) and indexes nothing.
**
** Exit status: 0 done, 1 error (or a sidecar left unwritten), 2 usage, 130
** interrupted (rerun to resume).
*/
#include <dirent.h>
#include <fnmatch.h>
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

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "shard.h"

#define MAX_FILE_BYTES (512LL << 20) /* larger files are skipped unread */

static sqlite3 *g_db;
static volatile sig_atomic_t g_stop;
/* 1 in the batch loop outside an inference: a signal then only sets g_stop,
** which the loop checks, so the statements that hash, claim and store a
** batch are not cut short (the staged images are stored before stopping). */
static volatile sig_atomic_t g_soft;

static void on_signal(int sig)
{
    (void)sig;
    g_stop = 1;
    if (g_db && !g_soft) sqlite3_interrupt(g_db); /* safe from a signal handler */
    signal(sig, SIG_DFL);                         /* a second Ctrl-C ends the process */
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
        if (c == 0xE0 && z[1] < 0xA0) return 0;  /* overlong */
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

static const char *stored_name(const char *full);

/* What the walk takes and counts. */
typedef struct {
    int bHidden, bFollow, bVerbose;
    const char **azExclude; /* --exclude globs */
    int nExclude;
    size_t nRoot; /* length of the root's name: names below it are matched by the globs */
    size_t nHidden, nExcluded, nLinked;
    struct {
        dev_t dev;
        ino_t ino;
    } * aSeen; /* folders walked: a symlink loop or a folder linked twice is walked once */
    size_t nSeen, capSeen;
} WalkOpts;

/* 1 when the file or folder p (below the root) matches an --exclude glob:
** by its name, or by its path below the root ('*' crosses '/'). */
static int excluded(const WalkOpts *o, const char *p)
{
    const char *rel = strlen(p) > o->nRoot ? p + o->nRoot + (p[o->nRoot] == '/') : p;
    const char *base = strrchr(p, '/');
    base = base ? base + 1 : p;
    for (int i = 0; i < o->nExclude; i++)
        if (!fnmatch(o->azExclude[i], base, 0) || !fnmatch(o->azExclude[i], rel, 0)) return 1;
    return 0;
}

/* Marks a folder walked; 0 when it already was. */
static int seen_dir(WalkOpts *o, const struct stat *st)
{
    for (size_t i = 0; i < o->nSeen; i++)
        if (o->aSeen[i].dev == st->st_dev && o->aSeen[i].ino == st->st_ino) return 0;
    if (o->nSeen == o->capSeen) {
        o->capSeen = o->capSeen ? 2 * o->capSeen : 64;
        o->aSeen = realloc(o->aSeen, o->capSeen * sizeof *o->aSeen);
        if (!o->aSeen) die("out of memory");
    }
    o->aSeen[o->nSeen].dev = st->st_dev;
    o->aSeen[o->nSeen].ino = st->st_ino;
    o->nSeen++;
    return 1;
}

/* Regular files under dir (symlinks to files included; symlinks to folders
** reported, followed with --follow-symlinks), in no particular order. Names
** starting with '.' are skipped and counted unless bHidden; --exclude
** matches are skipped and counted. */
static void walk(const char *dir, PathList *out, int depth, WalkOpts *o)
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
        if (e->d_name[0] == '.' && !o->bHidden) {
            o->nHidden++;
            continue;
        }
        size_t n = strlen(dir) + strlen(e->d_name) + 2;
        char *p = malloc(n);
        if (!p) die("out of memory");
        snprintf(p, n, "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/", e->d_name);
        struct stat lst, st;
        if (o->nExclude && excluded(o, p)) {
            o->nExcluded++;
        } else if (lstat(p, &lst) == 0) {
            if (S_ISDIR(lst.st_mode)) {
                if (depth < 64) list_add(&sub, p);
            } else if (stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
                list_add(out, p);
            } else if (S_ISLNK(lst.st_mode) && stat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
                if (o->bFollow) {
                    if (depth < 64) list_add(&sub, p);
                } else {
                    o->nLinked++;
                    fprintf(stderr,
                            "ram-index: %s is a symlink to a folder: not followed (--follow-symlinks "
                            "follows it)\n",
                            esc(stored_name(p)));
                }
            }
        }
        free(p);
    }
    closedir(d);
    for (size_t i = 0; i < sub.n; i++) {
        struct stat st;
        /* a folder reached twice (a symlink loop, or linked twice) is walked once */
        if (stat(sub.a[i], &st) == 0 && seen_dir(o, &st))
            walk(sub.a[i], out, depth + 1, o);
        else if (o->bVerbose)
            fprintf(stderr, "ram-index: %s: folder already walked (a symlink loop or a second link), skipped\n",
                    esc(sub.a[i]));
        free(sub.a[i]);
    }
    free(sub.a);
}

/* The files --files-from names (one per line; "-": stdin), each made
** absolute and normalised, its folder's symlinks resolved (not the file's:
** its name is kept). Missing files are reported and left out. With
** nShard, only the lines of slice iShard (ram_shard_of) are looked at. */
static void read_file_list(const char *zList, PathList *out, unsigned iShard, unsigned nShard)
{
    FILE *f = strcmp(zList, "-") ? fopen(zList, "r") : stdin;
    if (!f) die("--files-from %s: %s", esc(zList), strerror(errno));
    char *line = 0;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r')) line[--len] = 0;
        if (!len || (nShard && ram_shard_of(line, nShard) != iShard)) continue;
        char *slash = strrchr(line, '/');
        const char *base = slash ? slash + 1 : line;
        char *folder = slash ? (slash == line ? strdup("/") : strndup(line, (size_t)(slash - line))) : strdup(".");
        if (!folder) die("out of memory");
        char *real = realpath(folder, 0);
        struct stat st;
        char *full = real ? malloc(strlen(real) + strlen(base) + 2) : 0;
        if (full) sprintf(full, "%s%s%s", real, strcmp(real, "/") ? "/" : "", base);
        if (!full || !*base || stat(full, &st) != 0 || !S_ISREG(st.st_mode))
            fprintf(stderr, "ram-index: --files-from: %s is not a file, left out\n", esc(line));
        else
            list_add(out, full);
        free(full), free(real), free(folder);
    }
    free(line);
    if (f != stdin) fclose(f);
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

/* ------------------------------------------------------------------ library names */

/* Rows name files relative to the database's folder when they lie in it
** (else by their absolute path), with the root's symlinks resolved and no
** "./", "//" or "..": so `photos`, `./photos/` and the absolute path of the
** same folder give the same rows, and the index moves with its folder. */
static char *g_dbDir; /* realpath of the database's folder (malloc'd) */

static const char *stored_name(const char *full) { return ram_path_relative(full, g_dbDir); }

/* The absolute, lexically normalised path of a stored name (relative ones
** are read from the database's folder). malloc'd. */
static char *full_name(const char *stored)
{
    char *out = ram_path_normalised(g_dbDir, stored);
    if (!out) die("out of memory");
    return out;
}

/* 1 when the normalised absolute path full lies under the folder root. */
static int under_root(const char *full, const char *root)
{
    size_t n = strlen(root);
    if (n == 1) return 1;
    return !strncmp(full, root, n) && full[n] == '/';
}

/* Rows of this root whose file is gone (or that name a file under another
** spelling than the normalised one, written by an older ram-index): a new
** row with the same key is that file moved, and replaces it; the rest are
** reported as gone and deleted by --prune. */
typedef struct {
    char *path;            /* stored name; malloc'd */
    unsigned char key[16]; /* the image's key */
    int bAlias;            /* the file exists, under its normalised name */
    int bDone;             /* replaced by a moved file, or pruned */
} GoneRow;

typedef struct {
    GoneRow *a;
    size_t n, cap;
} GoneList;

static void gone_add(GoneList *g, const char *path, const void *key, int bAlias)
{
    if (g->n == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 64;
        g->a = realloc(g->a, g->cap * sizeof *g->a);
        if (!g->a) die("out of memory");
    }
    GoneRow *r = &g->a[g->n++];
    memset(r, 0, sizeof *r);
    if (!(r->path = strdup(path))) die("out of memory");
    if (key) memcpy(r->key, key, 16);
    r->bAlias = bAlias;
}

/* ------------------------------------------------------------------ progress */

typedef struct {
    int tty;
    double t0, tLast;
    size_t total, done; /* files handled (any outcome) */
    size_t embedded;    /* inserted and new (or re-embedded) */
    size_t reembedded;  /* of which stale files embedded again */
    size_t present, skipped;
    double tWork0;    /* time of the first real insert, for the rate */
    size_t workDone;  /* inserts measured by the rate */
    size_t workTotal; /* files that will need an insert */
    int rescan;       /* inserts of known files count as checked, not new */
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
                          "WHERE c.key = 'gen'",
                          table, table);
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
            "  table until every image is re-embedded), or index into another table with --table NEW,\n"
            "  or name their model with --model FILE.",
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
    if (!ok && sqlite3_prepare_v2(g_db, "SELECT value FROM json_each(json_extract(ram_debug(), '$.model_search'))", -1,
                                  &s, 0) == SQLITE_OK) {
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

/* ------------------------------------------------------------------ change detection */

static sqlite3_int64 file_mtime(const struct stat *st)
{
    return (sqlite3_int64)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* Records a file's size, mtime and inode (ram_index_stat). */
static void stat_put(sqlite3_stmt *s, const char *table, const char *name, const struct stat *st)
{
    sqlite3_bind_text(s, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_text(s, 2, name, -1, SQLITE_STATIC);
    sqlite3_bind_int64(s, 3, (sqlite3_int64)st->st_size);
    sqlite3_bind_int64(s, 4, file_mtime(st));
    sqlite3_bind_int64(s, 5, (sqlite3_int64)st->st_ino);
    if (sqlite3_step(s) != SQLITE_DONE) die("%s", sqlite3_errmsg(g_db));
    sqlite3_reset(s);
}

/* The key of the row named name (1), or 0 when there is none. */
static int row_key(sqlite3_stmt *s, const char *name, unsigned char key[16])
{
    sqlite3_bind_text(s, 1, name, -1, SQLITE_STATIC);
    int rc = sqlite3_step(s), ok = rc == SQLITE_ROW && sqlite3_column_bytes(s, 0) == 16;
    if (ok) memcpy(key, sqlite3_column_blob(s, 0), 16);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) die("%s", sqlite3_errmsg(g_db));
    sqlite3_reset(s);
    return ok;
}

/* Deletes the row of a file and its size/mtime record. */
static void delete_row(sqlite3_stmt *sDel, sqlite3_stmt *sStatDel, const char *table, const char *name)
{
    sqlite3_bind_text(sDel, 1, name, -1, SQLITE_STATIC);
    if (sqlite3_step(sDel) != SQLITE_DONE) die("deleting %s: %s", esc(name), sqlite3_errmsg(g_db));
    sqlite3_reset(sDel);
    sqlite3_bind_text(sStatDel, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_text(sStatDel, 2, name, -1, SQLITE_STATIC);
    if (sqlite3_step(sStatDel) != SQLITE_DONE) die("%s", sqlite3_errmsg(g_db));
    sqlite3_reset(sStatDel);
}

/* ------------------------------------------------------------------ several writers */

/* 1 when the table holds a current image of this key. */
static int key_known(sqlite3_stmt *sKnown, const unsigned char key[16])
{
    sqlite3_bind_blob(sKnown, 1, key, 16, SQLITE_STATIC);
    int rc = sqlite3_step(sKnown);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) die("%s", sqlite3_errmsg(g_db));
    sqlite3_reset(sKnown);
    return rc == SQLITE_ROW;
}

/* Claims a key this process is about to embed (ram_index_claims, one row
** per key being embedded by a live ram-index): 1 when it is this process's
** now, 0 when another live process holds it. A dead holder's claim is
** taken over. (Processes of one machine: the holder is checked by pid.) */
static int claim_key(const char *table, const unsigned char key[16])
{
    static sqlite3_stmt *sPut, *sOwner, *sTake;
    if (!table) { /* cleanup */
        sqlite3_finalize(sPut), sqlite3_finalize(sOwner), sqlite3_finalize(sTake);
        sPut = sOwner = sTake = 0;
        return 0;
    }
    if (!sPut) {
        exec_or_die("CREATE TABLE IF NOT EXISTS ram_index_claims(tbl TEXT, key BLOB, pid INTEGER, "
                    "PRIMARY KEY (tbl, key)) WITHOUT ROWID");
        sPut = prep("INSERT INTO ram_index_claims VALUES(?1, ?2, ?3) ON CONFLICT DO NOTHING");
        sOwner = prep("SELECT pid FROM ram_index_claims WHERE tbl = ?1 AND key = ?2");
        sTake = prep("UPDATE ram_index_claims SET pid = ?3 WHERE tbl = ?1 AND key = ?2 AND pid = ?4");
    }
    sqlite3_bind_text(sPut, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_blob(sPut, 2, key, 16, SQLITE_STATIC);
    sqlite3_bind_int64(sPut, 3, (sqlite3_int64)getpid());
    if (sqlite3_step(sPut) != SQLITE_DONE) die("%s", sqlite3_errmsg(g_db));
    sqlite3_reset(sPut);
    if (sqlite3_changes(g_db) == 1) return 1;
    sqlite3_bind_text(sOwner, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_blob(sOwner, 2, key, 16, SQLITE_STATIC);
    sqlite3_int64 pid = sqlite3_step(sOwner) == SQLITE_ROW ? sqlite3_column_int64(sOwner, 0) : 0;
    sqlite3_reset(sOwner);
    if (pid == (sqlite3_int64)getpid()) return 1;
    if (pid > 0 && (kill((pid_t)pid, 0) == 0 || errno != ESRCH)) return 0;
    sqlite3_bind_text(sTake, 1, table, -1, SQLITE_STATIC);
    sqlite3_bind_blob(sTake, 2, key, 16, SQLITE_STATIC);
    sqlite3_bind_int64(sTake, 3, (sqlite3_int64)getpid());
    sqlite3_bind_int64(sTake, 4, pid);
    if (sqlite3_step(sTake) != SQLITE_DONE) die("%s", sqlite3_errmsg(g_db));
    sqlite3_reset(sTake);
    return sqlite3_changes(g_db) == 1 || pid == 0 ? claim_key(table, key) : 0;
}

/* Drops this process's claims (its batch is stored, or it stops). */
static void claims_release(const char *table)
{
    char *sql =
        sqlite3_mprintf("DELETE FROM ram_index_claims WHERE tbl = %Q AND pid = %lld", table, (long long)getpid());
    sqlite3_exec(g_db, sql, 0, 0, 0); /* absent table or busy: the claims die with the process */
    sqlite3_free(sql);
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
        if (!(*c == '_' || (*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z'))) return 0;
    return !(z[0] >= '0' && z[0] <= '9');
}

/* ------------------------------------------------------------------ --write-xmp */

/* --write-xmp: how the sidecars are named and what they hold. */
typedef struct XmpOpts {
    int write;        /* --write-xmp */
    int stripExt;     /* --xmp-name photo.xmp (Lightroom) instead of photo.jpg.xmp (darktable, digiKam) */
    const char *root; /* --xmp-root: lr:hierarchicalSubject root ('' none) */
    int zh;           /* --xmp-lang zh: Chinese tag names */
} XmpOpts;

/* Writes (or merges into) the XMP sidecar of every file of this run that the
** table holds, with the tags the table stores (no inference): ram_xmp() keeps
** what the user wrote in an existing sidecar and replaces only the keywords a
** previous run added. A sidecar ram_xmp() refuses (not XMP, corrupt) is left
** untouched and named; an unchanged one is not rewritten. Each is written to a
** temporary file in the same folder and renamed over the old one, so a crash
** never leaves half a sidecar. Returns the number refused or not written. */
static long long write_xmp_sidecars(const char *table, char **paths, size_t n, const char *todo, const XmpOpts *o)
{
    char *sql = sqlite3_mprintf("SELECT %s FROM \"%w\" WHERE path = ?1", o->zh ? "tags_zh" : "tags", table);
    sqlite3_stmt *sTags = prep(sql);
    sqlite3_free(sql);
    sqlite3_stmt *sXmp = prep("SELECT ram_xmp(?1, ?2, ?3)");
    long long nWritten = 0, nSame = 0, nBad = 0;
    for (size_t i = 0; i < n && !g_stop; i++) {
        if (!todo[i] || todo[i] == 3) continue; /* the database itself, or not an image */
        sqlite3_bind_text(sTags, 1, stored_name(paths[i]), -1, SQLITE_STATIC); /* the row's name */
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
        if (old)
            sqlite3_bind_blob64(sXmp, 2, old, (sqlite3_uint64)nOld, SQLITE_STATIC);
        else
            sqlite3_bind_null(sXmp, 2);
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

/* ------------------------------------------------------------------ --duplicates */

/* Prints the groups of near-duplicates of the table (ram_index_duplicates),
** one line per file under a line per group, and a count on stderr. */
static void list_duplicates(const char *table, const char *zThreshold)
{
    char *q = sqlite3_mprintf("SELECT grp, similarity, path, threshold FROM ram_index_duplicates(%Q, %s)", table,
                              zThreshold ? zThreshold : "NULL");
    if (!q) die("out of memory");
    sqlite3_stmt *s = prep(q);
    sqlite3_int64 grp = 0, nFile = 0;
    double thr = zThreshold ? atof(zThreshold) : 0;
    int rc;
    while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
        thr = sqlite3_column_double(s, 3); /* the threshold in force */
        if (sqlite3_column_int64(s, 0) != grp) {
            grp = sqlite3_column_int64(s, 0);
            printf("group %lld\n", grp);
        }
        const char *zPath = (const char *)sqlite3_column_text(s, 2);
        printf("  %.3f  %s\n", sqlite3_column_double(s, 1), zPath ? esc(zPath) : "(no path)");
        nFile++;
    }
    if (rc != SQLITE_DONE) die("%s", sqlite3_errmsg(g_db));
    sqlite3_finalize(s);
    sqlite3_free(q);
    if (thr > 0)
        fprintf(stderr, "ram-index: %lld groups of near-duplicates, %lld files (threshold %g)\n", grp, nFile, thr);
    else
        fprintf(stderr, "ram-index: no near-duplicates (default threshold)\n");
}

static void usage(void)
{
    fputs("usage: ram-index DIR DB [--model FILE] [--table NAME] [--threads N] [--batch N] [--rescan]\n"
          "                 [--switch-model] [--no-verify] [--hidden] [--prune] [--max-pixels N]\n"
          "                 [--exclude GLOB]... [--follow-symlinks] [-v] [--write-xmp ...]\n"
          "       ram-index --files-from LIST DB [options]\n"
          "       ram-index --duplicates DB [--table NAME] [--threshold T]\n"
          "       ram-index --merge DB SHARD.db... [--model FILE] [--table NAME]\n"
          "       ram-index --merge DB --shard I/M --root DIR SHARD.db...\n"
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
          "  --prune       delete the rows of files under DIR that are gone (without it they are\n"
          "                counted, and named with -v)\n"
          "  --max-pixels N  refuse pictures of more than N pixels (default 100000000); pictures\n"
          "                skipped for the previous limit are tried again\n"
          "  --exclude GLOB  leave out files and folders whose name, or path below DIR, matches\n"
          "                GLOB ('*' crosses '/'); repeatable\n"
          "  --files-from LIST  index the files LIST names, one per line ('-': stdin), instead of\n"
          "                a folder (no gone files are looked for)\n"
          "  --shard I/N   index only slice I (0..N-1) of the files: a hash of each name (relative\n"
          "                to DIR, or LIST's line), so every task of N computes the same slices\n"
          "  --merge DB SHARD.db...  store the rows of shard databases into DB by their entries\n"
          "                (no inference; rerunning stores nothing twice)\n"
          "  --merge DB --shard I/M --root DIR SHARD.db...  re-sharding: store only the rows of\n"
          "                slice I of M, by each name relative to DIR (the folder the shards' names\n"
          "                were sliced from: ram-index's DIR, or where LIST's relative names are read\n"
          "                from; / for a LIST of absolute names); no inference\n"
          "  --follow-symlinks  walk symlinked folders (by default each is named and left out);\n"
          "                a folder reached twice (a loop) is walked once\n"
          "  -v            name every skipped file (on every run, with its reason) and gone file\n"
          "  --write-xmp   write each indexed file's tags into its XMP sidecar as keywords\n"
          "                (dc:subject, lr:hierarchicalSubject), keeping what the sidecar holds\n"
          "  --xmp-name photo.jpg.xmp|photo.xmp  sidecar name: darktable/digiKam (default) or Lightroom\n"
          "  --xmp-root ROOT  hierarchical keyword root (default auto: 'auto|dog'; '' for none)\n"
          "  --xmp-lang en|zh  tag names in the sidecars (default en)\n"
          "  --duplicates  list the groups of near-duplicate pictures of the table DB holds (resized,\n"
          "                recompressed, cropped copies); indexes nothing\n"
          "  --threshold T  cosine of the CLS embeddings from which two pictures are near-duplicates\n"
          "                (0 < T <= 1; default 0.91)\n"
          "  --captions    a new table also stores a caption per file (ram_index captions=1, the\n"
          "                extension's caption model; full-text search: the table's _captions)\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *dir = 0, *dbPath = 0, *model = 0, *table = "photos";
    int threads = 0, batch = 16, rescan = 0, verbose = 0, verify = 1, switchModel = 0, hidden = 0, prune = 0;
    int follow = 0, nExclude = 0, captions = 0;
    long long maxPixels = 0;
    const char **azExclude = 0, *zFilesFrom = 0, *zSliceRoot = 0; /* --root: of --merge --shard */
    unsigned iShard = 0, nShard = 0;                              /* --shard I/N (nShard 0: every file) */
    int bMerge = 0, nMergeArg = 0;                                /* --merge DB SHARD.db...: the positional arguments */
    const char **azMergeArg = 0;
    XmpOpts xmp = {0, 0, "auto", 0}; /* --write-xmp and its options */
    int dupes = 0;                   /* --duplicates */
    const char *zThreshold = 0;      /* --threshold, checked */
    /* Ctrl-C and SIGTERM stop between (or inside) images and keep the work
    ** done, from the first instruction on (a signal before the handlers would
    ** kill the process with 143 instead of 130); a SIGINT ignored by the
    ** parent (background job) stays ignored. */
    if (signal(SIGINT, SIG_IGN) != SIG_IGN) signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    for (int i = 1; i < argc; i++) bMerge |= !strcmp(argv[i], "--merge"); /* its arguments may come first */
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
        else if (!strcmp(a, "--prune"))
            prune = 1;
        else if (!strcmp(a, "--follow-symlinks"))
            follow = 1;
        else if (!strcmp(a, "--max-pixels") && i + 1 < argc) {
            char *end = 0;
            maxPixels = strtoll(argv[++i], &end, 10);
            if (!end || *end || maxPixels < 1) die("--max-pixels: '%s' is not a positive number of pixels", argv[i]);
        } else if (!strcmp(a, "--exclude") && i + 1 < argc) {
            azExclude = realloc(azExclude, (size_t)(nExclude + 1) * sizeof *azExclude);
            if (!azExclude) die("out of memory");
            azExclude[nExclude++] = argv[++i];
        } else if (!strcmp(a, "--files-from") && i + 1 < argc)
            zFilesFrom = argv[++i];
        else if (!strcmp(a, "--shard") && i + 1 < argc) {
            if (!ram_shard_parse(argv[++i], &iShard, &nShard))
                die("--shard: '%s' is not I/N with 0 <= I < N (e.g. 0/4 for the first of 4 shards)", argv[i]);
        } else if (!strcmp(a, "--merge"))
            bMerge = 1;
        else if (!strcmp(a, "--root") && i + 1 < argc)
            zSliceRoot = argv[++i];
        else if (!strcmp(a, "--switch-model"))
            switchModel = 1;
        else if (!strcmp(a, "--no-verify"))
            verify = 0;
        else if (!strcmp(a, "-v") || !strcmp(a, "--verbose"))
            verbose = 1;
        else if (!strcmp(a, "--captions"))
            captions = 1;
        else if (!strcmp(a, "--write-xmp"))
            xmp.write = 1;
        else if (!strcmp(a, "--xmp-name") && i + 1 < argc &&
                 (!strcmp(argv[i + 1], "photo.jpg.xmp") || !strcmp(argv[i + 1], "photo.xmp")))
            xmp.stripExt = !strcmp(argv[++i], "photo.xmp");
        else if (!strcmp(a, "--xmp-root") && i + 1 < argc)
            xmp.root = argv[++i];
        else if (!strcmp(a, "--xmp-lang") && i + 1 < argc && (!strcmp(argv[i + 1], "en") || !strcmp(argv[i + 1], "zh")))
            xmp.zh = !strcmp(argv[++i], "zh");
        else if (!strcmp(a, "--duplicates"))
            dupes = 1;
        else if (!strcmp(a, "--threshold") && i + 1 < argc) {
            char *end = 0;
            double t = strtod(argv[++i], &end);
            if (!end || *end || !(t > 0 && t <= 1)) {
                fprintf(stderr, "ram-index: --threshold: '%s' is not a cosine in (0, 1]\n", esc(argv[i]));
                exit(2);
            }
            zThreshold = argv[i];
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help"))
            usage();
        else if (a[0] == '-' && a[1])
            usage();
        else if (bMerge) {
            azMergeArg = realloc(azMergeArg, (size_t)(nMergeArg + 1) * sizeof *azMergeArg);
            if (!azMergeArg) die("out of memory");
            azMergeArg[nMergeArg++] = a;
        } else if (!dir)
            dir = a;
        else if (!dbPath)
            dbPath = a;
        else
            usage();
    }
    if (zFilesFrom && dir && !dbPath) dbPath = dir, dir = 0;           /* ram-index --files-from LIST DB */
    if (dupes && dir && !dbPath && !zFilesFrom) dbPath = dir, dir = 0; /* ram-index --duplicates DB */
    if ((zThreshold && !dupes) || (dupes && (dir || zFilesFrom || !dbPath || bMerge || nShard))) usage();
    if (bMerge) { /* ram-index --merge DB SHARD.db... */
        if (dir || zFilesFrom || nMergeArg < 2 || (zSliceRoot && !nShard)) usage();
        if (nShard && !zSliceRoot)
            die("--merge with --shard %u/%u needs --root DIR: the folder the shards' names were sliced from (the "
                "DIR of `ram-index DIR DB`, the folder a --files-from list's relative names are read from, or / for "
                "a list of absolute names)",
                iShard, nShard);
        dbPath = azMergeArg[0];
    } else if (zSliceRoot)
        usage();
    if (!dupes && ((!dir && !zFilesFrom && !bMerge) || (dir && zFilesFrom) || !dbPath || batch < 1)) usage();
    if (!valid_name(table)) die("--table: '%s' is not a plain SQL name", table);
    struct stat st;
    if (dir && (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))) die("%s is not a folder", esc(dir));

    /* OpenBLAS reads its thread count when ram.so brings it in. */
    if (threads <= 0) {
        long nc = sysconf(_SC_NPROCESSORS_ONLN);
        threads = nc > 0 ? (int)nc : 1;
    }
    char tbuf[16];
    snprintf(tbuf, sizeof tbuf, "%d", threads);
    setenv("OPENBLAS_NUM_THREADS", tbuf, 1);

    if (sqlite3_open_v2(dbPath, &g_db, dupes ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, 0) !=
        SQLITE_OK)
        die("cannot open %s: %s", esc(dbPath), g_db ? sqlite3_errmsg(g_db) : "out of memory");
    /* Another writer (a second ram-index, a shell) holds the write lock for
    ** one batch's store at a time (milliseconds here), or for its own
    ** statements: wait up to 10 minutes rather than fail. */
    sqlite3_busy_timeout(g_db, 600000);
    sqlite3_db_config(g_db, SQLITE_DBCONFIG_ENABLE_LOAD_EXTENSION, 1, (int *)0);
    char *so_dir = exe_dir(argv[0]);
    char *so = extension_path(so_dir);
    char *err = 0;
    if (sqlite3_load_extension(g_db, so, 0, &err) != SQLITE_OK)
        die("cannot load the extension %s: %s", esc(so), err ? err : "?");
    sqlite3_free(so);
    if (dupes) { /* reads the table, runs no model */
        free(so_dir);
        list_duplicates(table, zThreshold);
        sqlite3_close(g_db);
        return 0;
    }
    if (maxPixels) {
        char *q = sqlite3_mprintf("SELECT ram_set_max_pixels(%lld)", maxPixels);
        char *z = sql_text(q);
        sqlite3_free(q), sqlite3_free(z);
    }

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
    char *zLoad = zModel    ? sqlite3_mprintf("%s", zModel)
                  : *zBound ? sqlite3_mprintf("%s", zBound)
                  : !verify ? extension_default_model()
                            : 0;
    if (zLoad) {
        char *zWhy = !zModel && *zBound ? sqlite3_mprintf("table %s is bound to this model file (model=); name "
                                                          "another with --model FILE --switch-model: ",
                                                          table)
                                        : 0;
        load_model(zLoad, verify, zWhy);
        sqlite3_free(zWhy);
        sqlite3_free(zLoad);
    }
    sqlite3_free(zBound);
    char *zDefPath = sqlite3_mprintf("%s/../models/default.ram", so_dir);
    char *zDefault = zDefPath ? realpath(zDefPath, 0) : 0; /* the bundled demo model, when built */
    sqlite3_free(zDefPath);
    free(so_dir);
    /* Switching a new database to WAL takes an exclusive lock, for which
    ** SQLite does not call the busy handler: two runs starting on one new
    ** database retry it (for up to the busy timeout). */
    for (int tries = 0;; tries++) {
        char *zWal = 0;
        int rc = sqlite3_exec(g_db, "PRAGMA journal_mode=WAL", 0, 0, &zWal);
        if (rc == SQLITE_OK) break;
        if ((rc & 0xff) != SQLITE_BUSY && (rc & 0xff) != SQLITE_LOCKED) die("%s\n  in: PRAGMA journal_mode=WAL", zWal);
        sqlite3_free(zWal);
        if (tries >= 6000 || g_stop) die("PRAGMA journal_mode=WAL: database is locked");
        struct timespec ts = {0, 100000000};
        nanosleep(&ts, 0);
    }
    exec_or_die("PRAGMA synchronous=NORMAL");
    {
        char *sql = zModel ? sqlite3_mprintf("CREATE VIRTUAL TABLE IF NOT EXISTS \"%w\" USING ram_index(model=%Q%s)",
                                             table, zModel, captions ? ", captions=1" : "")
                           : sqlite3_mprintf("CREATE VIRTUAL TABLE IF NOT EXISTS \"%w\" USING ram_index%s", table,
                                             captions ? "(captions=1)" : "");
        exec_or_die(sql);
        sqlite3_free(sql);
    }
    check_table_model(table, &zModel, switchModel);
    {
        sqlite3_stmt *s = prep("SELECT json_extract(ram_model(), '$.file'), json_extract(ram_model(), '$.kind'), "
                               "json_extract(ram_model(), '$.tags'), json_extract(ram_model(), '$.image_size')");
        if (sqlite3_step(s) != SQLITE_ROW) die("%s", sqlite3_errmsg(g_db));
        fprintf(stderr, "ram-index: model %s (%s, %d tags), %d thread%s\n",
                esc((const char *)sqlite3_column_text(s, 0)), sqlite3_column_text(s, 1), sqlite3_column_int(s, 2),
                threads, threads == 1 ? "" : "s");
        /* The bundled default model (and the test models) look at tiny
        ** pictures of a few synthetic tags: say so before a user indexes
        ** real photos with it. */
        char *zReal = sqlite3_column_text(s, 0) ? realpath((const char *)sqlite3_column_text(s, 0), 0) : 0;
        int bBundled = zReal && zDefault && !strcmp(zReal, zDefault);
        if (bBundled || sqlite3_column_int(s, 3) < 224)
            fprintf(stderr,
                    "ram-index: this is %s (%d tags, %dx%d pixels): it does not recognise real-world "
                    "objects; for photos run `make model`, then --model models/ram_plus.ram\n",
                    bBundled ? "the bundled demo model" : "a demo or test model", sqlite3_column_int(s, 2),
                    sqlite3_column_int(s, 3), sqlite3_column_int(s, 3));
        free(zReal);
        free(zDefault);
        sqlite3_finalize(s);
    }

    /* The root with its symlinks resolved: every name below it is then
    ** normalised, and stored relative to the database's folder. */
    char *rootReal = dir ? realpath(dir, 0) : 0; /* NULL with --files-from: no folder, no gone files */
    g_dbDir = real_folder(dbPath);
    if ((dir && !rootReal) || !g_dbDir) die("cannot resolve %s: %s", esc(g_dbDir ? dir : dbPath), strerror(errno));
    if (bMerge) { /* shards into DB, by entry: no folder, no inference */
        RamMergeCounts mc = {0};
        RamMergeSlice slice = {iShard, nShard, 0};
        char *zRootReal = zSliceRoot ? realpath(zSliceRoot, 0) : 0;
        if (zSliceRoot && (!zRootReal || stat(zRootReal, &st) != 0 || !S_ISDIR(st.st_mode)))
            die("--root %s: %s", esc(zSliceRoot), zRootReal ? "not a folder" : strerror(errno));
        slice.zRoot = zRootReal;
        for (int m = 1; m < nMergeArg; m++) {
            char *zErr = 0;
            if (ram_shard_merge(g_db, table, g_dbDir, azMergeArg[m], nShard ? &slice : 0, &mc, &zErr) != SQLITE_OK)
                die("%s", zErr);
        }
        char *zInf = sql_text("SELECT json_extract(ram_index_stats(), '$.inferences')");
        char zOther[96] = "";
        if (nShard)
            snprintf(zOther, sizeof zOther, ", %lld of other slices than %u/%u left out", mc.nOther, iShard, nShard);
        fprintf(stderr, "ram-index: merged %d shard%s: %lld new, %lld unchanged, %lld changed%s%s; %s inferences\n",
                nMergeArg - 1, nMergeArg == 2 ? "" : "s", mc.nNew, mc.nUnchanged, mc.nChanged, zOther,
                mc.nNoPath ? " (rows without a path left out)" : "", zInf);
        sqlite3_free(zInf);
        free(zRootReal);
        free(azMergeArg), free(g_dbDir), sqlite3_free(zModel);
        if (sqlite3_close(g_db) != SQLITE_OK) die("closing %s: %s", esc(dbPath), sqlite3_errmsg(g_db));
        return 0;
    }
    PathList files = {0};
    WalkOpts wo = {0};
    wo.bHidden = hidden, wo.bFollow = follow, wo.bVerbose = verbose;
    wo.azExclude = azExclude, wo.nExclude = nExclude;
    if (rootReal) {
        wo.nRoot = strlen(rootReal);
        struct stat rst;
        if (stat(rootReal, &rst) == 0) seen_dir(&wo, &rst);
        walk(rootReal, &files, 0, &wo);
        if (nShard) { /* this run's slice, by the name relative to DIR */
            size_t o = 0;
            for (size_t i = 0; i < files.n; i++) {
                if (ram_shard_of(files.a[i] + wo.nRoot + (wo.nRoot > 1), nShard) == iShard)
                    files.a[o++] = files.a[i];
                else
                    free(files.a[i]);
            }
            files.n = o;
        }
    } else {
        read_file_list(zFilesFrom, &files, iShard, nShard);
    }
    size_t nHidden = wo.nHidden;
    free(wo.aSeen);
    wo.aSeen = 0;
    if (files.n) qsort(files.a, files.n, sizeof *files.a, cmp_str); /* a stable order: resumes read alike */

    /* Never index the database itself or its side files. */
    char *dbReal = realpath(dbPath, 0);

    /* stale: embedded with another model or preprocessing (after
    ** --switch-model, or an interrupted run of it): indexed again. */
    char *sql = sqlite3_mprintf("SELECT stale FROM \"%w\" WHERE path = ?1", table);
    sqlite3_stmt *sHave = prep(sql);
    sqlite3_free(sql);
    sql = sqlite3_mprintf("SELECT key FROM \"%w\" WHERE path = ?1", table);
    sqlite3_stmt *sKey = prep(sql);
    sqlite3_free(sql);
    sql = sqlite3_mprintf("DELETE FROM \"%w\" WHERE path = ?1", table);
    sqlite3_stmt *sDel = prep(sql);
    sqlite3_free(sql);
    /* Files found not to be images, remembered with their size and mtime so
    ** that a rerun does not read them again (a regular table beside the
    ** index; --rescan tries them again). */
    exec_or_die("CREATE TABLE IF NOT EXISTS ram_index_skipped(tbl TEXT, path TEXT, size INTEGER, mtime INTEGER, "
                "reason TEXT, PRIMARY KEY (tbl, path)) WITHOUT ROWID");
    /* Size, mtime (ns) and inode of every indexed file: a rerun reads only
    ** the files whose size or mtime changed (docs/INDEX.md, ram-index). */
    exec_or_die("CREATE TABLE IF NOT EXISTS ram_index_stat(tbl TEXT, path TEXT, size INTEGER, mtime INTEGER, "
                "ino INTEGER, PRIMARY KEY (tbl, path)) WITHOUT ROWID");
    sqlite3_stmt *sSkipped = prep("SELECT reason FROM ram_index_skipped WHERE tbl = ?1 AND path = ?2 AND size = ?3 AND "
                                  "mtime = ?4");
    sqlite3_stmt *sSkip = prep("INSERT OR REPLACE INTO ram_index_skipped VALUES(?1, ?2, ?3, ?4, ?5)");
    sqlite3_stmt *sStatGet = prep("SELECT size, mtime, ino FROM ram_index_stat WHERE tbl = ?1 AND path = ?2");
    sqlite3_stmt *sStatPut = prep("INSERT OR REPLACE INTO ram_index_stat VALUES(?1, ?2, ?3, ?4, ?5)");
    sqlite3_stmt *sStatDel = prep("DELETE FROM ram_index_stat WHERE tbl = ?1 AND path = ?2");
    /* mtime: the table's taken column falls back to it (docs/INDEX.md) */
    sql = sqlite3_mprintf("INSERT INTO \"%w\"(path, image, mtime) VALUES(?1, ?2, ?3)", table);
    sqlite3_stmt *sIns = prep(sql);
    sqlite3_free(sql);
    sqlite3_stmt *sBegin = prep("BEGIN IMMEDIATE"), *sCommit = prep("COMMIT");

    Progress P = {0};
    P.tty = isatty(2);
    P.rescan = rescan;
    P.t0 = P.tLast = now();
    P.total = files.n;

    /* Rows of this root that are gone (or spelled otherwise). */
    GoneList gone = {0};
    {
        sql = sqlite3_mprintf("SELECT path, key FROM \"%w\" WHERE path IS NOT NULL", table);
        sqlite3_stmt *s = prep(sql);
        sqlite3_free(sql);
        int rc;
        while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
            const char *path = (const char *)sqlite3_column_text(s, 0);
            char *full = full_name(path);
            struct stat lst;
            if (rootReal && under_root(full, rootReal) && sqlite3_column_bytes(s, 1) == 16) {
                int bAlias = strcmp(stored_name(full), path) != 0;
                if (bAlias || lstat(full, &lst) != 0) gone_add(&gone, path, sqlite3_column_blob(s, 1), bAlias);
            }
            free(full);
        }
        if (rc != SQLITE_DONE) die("%s", sqlite3_errmsg(g_db));
        sqlite3_finalize(s);
    }

    /* First pass (cheap, no file read): which files are already present
    ** and unchanged (same size, mtime and inode as recorded). Files indexed
    ** by an older ram-index have no record: it is made now, from the file
    ** as it is. */
    char *todo = calloc(files.n + 1, 1);
    if (!todo) die("out of memory");
    enum { T_NEW = 1, T_PRESENT, T_SKIPPED, T_STALE, T_TOUCHED };
    /* What became of each file, for the summary line. */
    size_t nNew = 0, nUnchanged = 0, nChanged = 0, nMoved = 0, nNotImage = 0, nTooBig = 0, nUnreadable = 0;
    if (sqlite3_step(sBegin) != SQLITE_DONE) die("BEGIN: %s", sqlite3_errmsg(g_db));
    sqlite3_reset(sBegin);
    for (size_t i = 0; i < files.n; i++) {
        const char *name = stored_name(files.a[i]);
        if (dbReal) {
            char *r = realpath(files.a[i], 0);
            int self = r && !strncmp(r, dbReal, strlen(dbReal));
            free(r);
            if (self) continue; /* not counted */
        }
        todo[i] = T_NEW;
        if (rescan) {
            P.workTotal++;
            continue;
        }
        struct stat fst;
        int bStat = stat(files.a[i], &fst) == 0;
        sqlite3_bind_text(sHave, 1, name, -1, SQLITE_STATIC);
        int rc = sqlite3_step(sHave);
        if (rc == SQLITE_ROW)
            todo[i] = sqlite3_column_int(sHave, 0) ? T_STALE : T_PRESENT;
        else if (rc != SQLITE_DONE)
            die("%s", sqlite3_errmsg(g_db));
        sqlite3_reset(sHave);
        if (todo[i] == T_PRESENT && bStat) {
            sqlite3_bind_text(sStatGet, 1, table, -1, SQLITE_STATIC);
            sqlite3_bind_text(sStatGet, 2, name, -1, SQLITE_STATIC);
            rc = sqlite3_step(sStatGet);
            if (rc == SQLITE_ROW) {
                if (sqlite3_column_int64(sStatGet, 0) != (sqlite3_int64)fst.st_size ||
                    sqlite3_column_int64(sStatGet, 1) != file_mtime(&fst) ||
                    sqlite3_column_int64(sStatGet, 2) != (sqlite3_int64)fst.st_ino)
                    todo[i] = T_TOUCHED;
            } else if (rc == SQLITE_DONE) {
                stat_put(sStatPut, table, name, &fst);
            } else {
                die("%s", sqlite3_errmsg(g_db));
            }
            sqlite3_reset(sStatGet);
        }
        if (todo[i] == T_NEW && bStat) {
            sqlite3_bind_text(sSkipped, 1, table, -1, SQLITE_STATIC);
            sqlite3_bind_text(sSkipped, 2, name, -1, SQLITE_STATIC);
            sqlite3_bind_int64(sSkipped, 3, (sqlite3_int64)fst.st_size);
            sqlite3_bind_int64(sSkipped, 4, (sqlite3_int64)fst.st_mtime);
            rc = sqlite3_step(sSkipped);
            if (rc == SQLITE_ROW) {
                todo[i] = T_SKIPPED;
                const char *zWhy = (const char *)sqlite3_column_text(sSkipped, 0);
                const char *zLimit = zWhy ? strstr(zWhy, " pixels, over the limit of ") : 0;
                int bPixels = zLimit != 0;
                /* skipped under another limit than this run's: try it again */
                if (bPixels && atoll(zLimit + 27) != (maxPixels ? maxPixels : 100000000LL)) {
                    todo[i] = T_NEW;
                    sqlite3_reset(sSkipped);
                    P.workTotal++;
                    continue;
                }
                if (bPixels)
                    nTooBig++;
                else
                    nNotImage++;
                /* -v names skipped files on every run, with the reason found
                ** when the file was read */
                if (verbose)
                    fprintf(stderr, "ram-index: skipped %s: %s (unchanged since a previous run: not read again)\n",
                            esc(name), esc((const char *)sqlite3_column_text(sSkipped, 0)));
            } else if (rc != SQLITE_DONE) {
                die("%s", sqlite3_errmsg(g_db));
            }
            sqlite3_reset(sSkipped);
        }
        if (todo[i] != T_PRESENT && todo[i] != T_SKIPPED) P.workTotal++;
    }
    if (sqlite3_step(sCommit) != SQLITE_DONE) die("COMMIT: %s", sqlite3_errmsg(g_db));
    sqlite3_reset(sCommit);
    free(dbReal);
    for (size_t i = 0; i < files.n; i++)
        if (!todo[i]) P.total--;

    if (g_stop) { /* Ctrl-C while scanning or loading: nothing was written yet */
        fprintf(stderr, "ram-index: interrupted before any work; rerun the same command\n");
        exit(130);
    }

    /* Several writers: the model runs outside the write transaction. A
    ** batch is read and hashed; images the table lacks are embedded into a
    ** staging ram_index table of an in-memory database (same model,
    ** preprocessing and floor); then one short write transaction stores the
    ** batch: staged images by their entry (no inference), known ones by their
    ** bytes (the table reuses the image). The write lock is held for
    ** milliseconds, not for a batch of inferences. */
    {
        exec_or_die("ATTACH ':memory:' AS ram_stage");
        sql = sqlite3_mprintf("SELECT (SELECT value FROM \"%w_config\" WHERE key = 'floor'), "
                              "(SELECT value FROM \"%w_config\" WHERE key = 'exif'), "
                              "(SELECT iif(value = 1, ', captions=1', '') FROM \"%w_config\" WHERE key = 'captions'), "
                              "(SELECT quote(value) FROM \"%w_config\" WHERE key = 'caption_model' AND value <> '')",
                              table, table, table, table);
        sqlite3_stmt *c = prep(sql);
        sqlite3_free(sql);
        if (sqlite3_step(c) != SQLITE_ROW) die("%s", sqlite3_errmsg(g_db));
        /* A table with captions: they are written in the stage too, outside
        ** the write transaction, and stored with the entry. */
        const char *zCapModel = (const char *)sqlite3_column_text(c, 3);
        sql =
            sqlite3_mprintf("CREATE VIRTUAL TABLE ram_stage.s USING ram_index(floor=%s, exif=%d, resume=0%s%s%s)",
                            sqlite3_column_type(c, 0) == SQLITE_NULL ? "0.01" : (const char *)sqlite3_column_text(c, 0),
                            sqlite3_column_type(c, 1) == SQLITE_NULL ? 1 : sqlite3_column_int(c, 1),
                            sqlite3_column_type(c, 2) == SQLITE_NULL ? "" : (const char *)sqlite3_column_text(c, 2),
                            zCapModel ? ", caption_model=" : "", zCapModel ? zCapModel : "");
        sqlite3_finalize(c);
        exec_or_die(sql);
        sqlite3_free(sql);
    }
    sqlite3_stmt *sStage = prep("INSERT INTO ram_stage.s(path, image, mtime) VALUES(?1, ?2, ?3)");
    sqlite3_stmt *sUnstage = prep("DELETE FROM ram_stage.s");
    /* the staged row's date, camera, place and caption go along with its entry */
#define STAGED(c) "(SELECT " c " FROM ram_stage.s WHERE path = ?1)"
    sql = sqlite3_mprintf(
        "INSERT INTO \"%w\"(path, entry, taken, taken_source, camera_make, camera_model, latitude, "
        "longitude, caption) VALUES(?1, " STAGED("entry") ", " STAGED("taken") ", " STAGED("taken_source") ", " STAGED(
            "camera_make") ", " STAGED("camera_model") ", " STAGED("latitude") ", " STAGED("longitude") ", " STAGED("ca"
                                                                                                                    "pt"
                                                                                                                    "io"
                                                                                                                    "n") ")",
        table);
#undef STAGED
    sqlite3_stmt *sInsEntry = prep(sql);
    sqlite3_free(sql);
    sql = sqlite3_mprintf("SELECT 1 FROM \"%w_images\" WHERE key = ?1 AND gen = (SELECT value FROM \"%w_config\" "
                          "WHERE key = 'gen')",
                          table, table);
    sqlite3_stmt *sKnown = prep(sql);
    sqlite3_free(sql);

    typedef struct {
        size_t i;            /* index in files */
        unsigned char *data; /* the bytes (known images), else NULL */
        long long n;
        struct stat st;
        int bStat, bStaged;
        unsigned char key[16]; /* XXH3-128 of the bytes */
        char *zSkip;           /* why it is not an image (sqlite3_malloc'd), else NULL */
        int rcSkip;
    } Pending;
    Pending *aPend = calloc((size_t)batch, sizeof *aPend);
    if (!aPend) die("out of memory");
    int interrupted = 0, bLastBatch = 0;
    P.tWork0 = now();
    /* The files in walk order; a file whose image another writer is
    ** embedding (it holds the key's claim) goes to the end, and is stored
    ** from that writer's image, without an inference. */
    size_t nOrder = 0, capOrder = files.n + 16;
    size_t *aOrder = malloc(capOrder * sizeof *aOrder);
    char *bDeferred = calloc(files.n + 1, 1);
    if (!aOrder || !bDeferred) die("out of memory");
    for (size_t i = 0; i < files.n; i++)
        if (todo[i]) aOrder[nOrder++] = i;
    g_soft = 1;
    for (size_t pos = 0; pos < nOrder && !g_stop;) {
        /* 1. read, hash, and embed what the table lacks: no write lock */
        int nPend = 0;
        for (; pos < nOrder && nPend < batch && !g_stop; pos++) {
            size_t i = aOrder[pos];
            /* A deferred file may wait for another writer: store this
            ** batch first, releasing its claims, or two writers waiting on
            ** each other's claims would never finish. */
            if (bDeferred[i] && nPend > 0) break;
            const char *path = files.a[i], *name = stored_name(path);
            if (todo[i] == T_SKIPPED) { /* counted by reason in the first pass */
                P.skipped++;
                P.done++;
                continue;
            }
            if (todo[i] == T_PRESENT) {
                P.present++;
                P.done++;
                nUnchanged++;
                progress(&P, path, 0);
                continue;
            }
            Pending *q = &aPend[nPend];
            memset(q, 0, sizeof *q);
            q->i = i;
            q->bStat = stat(path, &q->st) == 0;
            const char *why = 0;
            q->data = read_file(path, &q->n, &why);
            if (!q->data) {
                P.skipped++;
                P.done++;
                P.workDone++;
                if (!strcmp(why, "too large"))
                    nTooBig++;
                else
                    nUnreadable++;
                if (verbose) fprintf(stderr, "%sram-index: skipped %s: %s\n", P.tty ? "\r\033[K" : "", esc(name), why);
                continue;
            }
            XXH128_canonical_t h;
            XXH128_canonicalFromHash(&h, XXH3_128bits(q->data, (size_t)q->n));
            memcpy(q->key, h.digest, 16);
            int bKnown = key_known(sKnown, q->key), bMine = 0;
            /* a file met again after deferral waits for the other writer */
            for (int w = 0; !bKnown && !(bMine = claim_key(table, q->key)) && bDeferred[i] && !g_stop && w < 12000;
                 w++) {
                struct timespec ts = {0, 50000000};
                nanosleep(&ts, 0);
                bKnown = key_known(sKnown, q->key);
            }
            /* The claim may be free because its holder has just stored the
            ** image and let go: look again, or the image is embedded twice. */
            if (bMine && !bKnown) bKnown = key_known(sKnown, q->key);
            if (!bKnown && !bMine && !bDeferred[i]) {
                bDeferred[i] = 1;
                free(q->data);
                if (nOrder == capOrder) {
                    capOrder *= 2;
                    aOrder = realloc(aOrder, capOrder * sizeof *aOrder);
                    if (!aOrder) die("out of memory");
                }
                aOrder[nOrder++] = i;
                continue;
            }
            nPend++;
            if (bKnown || !bMine) continue; /* stored by its bytes: the table reuses the image */
            sqlite3_bind_text(sStage, 1, name, -1, SQLITE_STATIC);
            sqlite3_bind_blob64(sStage, 2, q->data, (sqlite3_uint64)q->n, SQLITE_STATIC);
            if (q->bStat) sqlite3_bind_int64(sStage, 3, (sqlite3_int64)q->st.st_mtime);
            g_soft = 0; /* a signal interrupts the inference */
            int rc = sqlite3_step(sStage);
            g_soft = 1;
            /* the message now: sqlite3_reset and the next binds clear it */
            char *zErr = rc == SQLITE_DONE ? 0 : sqlite3_mprintf("%s", sqlite3_errmsg(g_db));
            sqlite3_reset(sStage);
            sqlite3_clear_bindings(sStage);
            free(q->data);
            q->data = 0;
            if (rc == SQLITE_DONE) {
                q->bStaged = 1;
            } else if (rc == SQLITE_INTERRUPT || g_stop) {
                sqlite3_free(zErr);
                nPend--;
                bLastBatch = 1;
                break;
            } else if (rc == SQLITE_TOOBIG || (rc == SQLITE_ERROR && !strncmp(zErr, "ram_index: image:", 17))) {
                /* Not an image (or over the pixel limit): recorded with the
                ** batch. Any other error (no model, I/O) stops the run. */
                q->zSkip = zErr;
                q->rcSkip = rc;
                zErr = 0;
            } else {
                die("%s: %s", esc(name), zErr);
            }
            sqlite3_free(zErr);
        }
        /* Ctrl-C or SIGTERM (scancel, a pre-empted job): the images staged
        ** so far are stored below before stopping, so a stop loses at most
        ** the image being embedded (a SIGKILL: at most this batch). */
        if (g_stop) bLastBatch = 1;
        if (!nPend && bLastBatch) {
            interrupted = 1;
            break;
        }
        if (!nPend) continue;

        /* 2. store the batch in one short write transaction */
        if (sqlite3_step(sBegin) != SQLITE_DONE) die("BEGIN: %s", sqlite3_errmsg(g_db));
        sqlite3_reset(sBegin);
        for (int k = 0; k < nPend; k++) {
            Pending *q = &aPend[k];
            const char *path = files.a[q->i], *name = stored_name(path);
            int t = todo[q->i];
            P.done++;
            P.workDone++;
            if (q->zSkip) {
                P.skipped++;
                if (q->rcSkip == SQLITE_TOOBIG)
                    nTooBig++;
                else
                    nNotImage++;
                if (verbose)
                    fprintf(stderr, "%sram-index: skipped %s: %s\n", P.tty ? "\r\033[K" : "", esc(name), esc(q->zSkip));
                if (q->bStat) {
                    sqlite3_bind_text(sSkip, 1, table, -1, SQLITE_STATIC);
                    sqlite3_bind_text(sSkip, 2, name, -1, SQLITE_STATIC);
                    sqlite3_bind_int64(sSkip, 3, (sqlite3_int64)q->st.st_size);
                    sqlite3_bind_int64(sSkip, 4, (sqlite3_int64)q->st.st_mtime);
                    sqlite3_bind_text(sSkip, 5, q->zSkip, -1, SQLITE_TRANSIENT);
                    if (sqlite3_step(sSkip) != SQLITE_DONE) die("%s", sqlite3_errmsg(g_db));
                    sqlite3_reset(sSkip);
                }
                sqlite3_free(q->zSkip);
                q->zSkip = 0;
                continue;
            }
            unsigned char oldKey[16] = {0};
            int bOldKey = row_key(sKey, name, oldKey);
            if (t == T_NEW && bOldKey && !memcmp(oldKey, q->key, 16)) {
                /* another writer stored this file meanwhile, or --rescan
                ** met it unchanged: then its bytes still go to the table (a
                ** hash, no inference), which records their date, camera
                ** and place in a table made before those columns */
                if (rescan && q->data && !q->bStaged) {
                    sqlite3_bind_text(sIns, 1, name, -1, SQLITE_STATIC);
                    sqlite3_bind_blob64(sIns, 2, q->data, (sqlite3_uint64)q->n, SQLITE_STATIC);
                    if (q->bStat) sqlite3_bind_int64(sIns, 3, (sqlite3_int64)q->st.st_mtime);
                    int rc = sqlite3_step(sIns);
                    sqlite3_reset(sIns);
                    sqlite3_clear_bindings(sIns);
                    if (rc != SQLITE_DONE && !g_stop) die("%s: %s", esc(name), sqlite3_errmsg(g_db));
                }
                free(q->data);
                q->data = 0;
                P.present++;
                nUnchanged++;
                if (q->bStat) stat_put(sStatPut, table, name, &q->st);
                continue;
            }
            sqlite3_stmt *ins = q->bStaged ? sInsEntry : sIns;
            sqlite3_bind_text(ins, 1, name, -1, SQLITE_STATIC);
            if (!q->bStaged) sqlite3_bind_blob64(ins, 2, q->data, (sqlite3_uint64)q->n, SQLITE_STATIC);
            if (!q->bStaged && q->bStat) sqlite3_bind_int64(ins, 3, (sqlite3_int64)q->st.st_mtime);
            int rc = sqlite3_step(ins);
            char *zErr = rc == SQLITE_DONE ? 0 : sqlite3_mprintf("%s", sqlite3_errmsg(g_db));
            sqlite3_reset(ins);
            sqlite3_clear_bindings(ins);
            free(q->data);
            q->data = 0;
            if (rc != SQLITE_DONE) {
                if (rc == SQLITE_INTERRUPT || g_stop) {
                    sqlite3_free(zErr);
                    interrupted = 1;
                    break;
                }
                die("%s: %s", esc(name), zErr);
            }
            unsigned char key[16];
            int bKey = row_key(sKey, name, key);
            if (t == T_STALE) {
                P.embedded++;
                P.reembedded++;
            } else if (t == T_TOUCHED && bOldKey && bKey && !memcmp(key, oldKey, 16)) {
                P.present++; /* touched, same bytes: a hash, no inference */
                nUnchanged++;
            } else if (t == T_TOUCHED || bOldKey) { /* other bytes under a known name (--rescan too) */
                P.embedded++;
                nChanged++;
            } else {
                /* A new name: the same bytes as a gone row are that file
                ** moved (its image was reused: no inference); the old row goes. */
                int bMoved = 0;
                for (size_t g = 0; bKey && g < gone.n; g++) {
                    if (gone.a[g].bDone || memcmp(gone.a[g].key, key, 16)) continue;
                    delete_row(sDel, sStatDel, table, gone.a[g].path);
                    gone.a[g].bDone = 1;
                    bMoved = 1;
                }
                if (bMoved) {
                    P.present++;
                    nMoved++;
                } else {
                    P.embedded++;
                    nNew++;
                }
            }
            if (q->bStat) stat_put(sStatPut, table, name, &q->st);
            progress(&P, path, 0);
        }
        if (interrupted) {
            /* the batch is rolled back whole; its files are counted again by the rerun */
            for (int k = 0; k < nPend; k++) free(aPend[k].data), sqlite3_free(aPend[k].zSkip);
            if (!sqlite3_get_autocommit(g_db)) sqlite3_exec(g_db, "ROLLBACK", 0, 0, 0);
            break;
        }
        if (sqlite3_step(sCommit) != SQLITE_DONE) die("COMMIT: %s", sqlite3_errmsg(g_db));
        sqlite3_reset(sCommit);
        if (sqlite3_step(sUnstage) != SQLITE_DONE) die("%s", sqlite3_errmsg(g_db));
        sqlite3_reset(sUnstage);
        claims_release(table);
        if (bLastBatch) {
            interrupted = 1;
            break;
        }
    }
    g_soft = 0;
    if (g_stop) interrupted = 1;
    claims_release(table);
    free(aPend);
    free(aOrder);
    free(bDeferred);
    int inTxn = 0;
    /* Gone files: reported; their rows deleted with --prune. */
    size_t nGone = 0;
    for (size_t g = 0; !interrupted && g < gone.n; g++) {
        if (gone.a[g].bDone) continue;
        nGone++;
        if (verbose)
            fprintf(stderr, "ram-index: %s %s\n", esc(gone.a[g].path),
                    prune ? "is gone: its row is deleted" : "is gone (--prune deletes its row)");
        if (prune) {
            if (!inTxn) {
                if (sqlite3_step(sBegin) != SQLITE_DONE) die("BEGIN: %s", sqlite3_errmsg(g_db));
                sqlite3_reset(sBegin);
                inTxn = 1;
            }
            delete_row(sDel, sStatDel, table, gone.a[g].path);
        }
    }
    if (inTxn) {
        /* every row of the batch is complete: keep them */
        if (sqlite3_step(sCommit) != SQLITE_DONE) die("COMMIT: %s", sqlite3_errmsg(g_db));
        sqlite3_reset(sCommit);
    }
    progress(&P, 0, 1);
    if (!interrupted && rootReal) {
        /* The table's library roots: the folders indexed into it, named as
        ** their files are (relative to the database's folder, "." for it). */
        const char *zRoot = strcmp(rootReal, g_dbDir) ? stored_name(rootReal) : ".";
        char *q = sqlite3_mprintf("CREATE TABLE IF NOT EXISTS ram_index_roots(tbl TEXT, root TEXT, last_run INTEGER, "
                                  "PRIMARY KEY (tbl, root)) WITHOUT ROWID;"
                                  "INSERT OR REPLACE INTO ram_index_roots VALUES(%Q, %Q, unixepoch())",
                                  table, zRoot);
        exec_or_die(q);
        sqlite3_free(q);
    }
    if (!interrupted) {
        /* what became of each file, and what it cost (ram_index_stats()) */
        char *zInf = sql_text("SELECT json_extract(ram_index_stats(), '$.inferences')");
        fprintf(stderr,
                "ram-index: %zu new, %zu unchanged, %zu changed, %zu moved, %zu gone%s; not indexed: %zu (%zu not "
                "images, %zu too large, %zu unreadable); %s inferences\n",
                nNew, nUnchanged, nChanged, nMoved, nGone,
                !nGone  ? ""
                : prune ? " (rows deleted)"
                        : " (--prune deletes their rows)",
                nNotImage + nTooBig + nUnreadable, nNotImage, nTooBig, nUnreadable, zInf);
        sqlite3_free(zInf);
    }
    if (wo.nExcluded)
        fprintf(stderr, "ram-index: %zu file%s or folder%s left out by --exclude\n", wo.nExcluded,
                wo.nExcluded == 1 ? "" : "s", wo.nExcluded == 1 ? "" : "s");
    if (nHidden)
        fprintf(stderr,
                "ram-index: %zu hidden file%s or folder%s skipped (names starting with '.'; --hidden indexes them)\n",
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
    claim_key(0, 0);
    sqlite3_finalize(sHave);
    sqlite3_finalize(sStage);
    sqlite3_finalize(sUnstage);
    sqlite3_finalize(sInsEntry);
    sqlite3_finalize(sKnown);
    sqlite3_finalize(sKey);
    sqlite3_finalize(sDel);
    sqlite3_finalize(sStatGet);
    sqlite3_finalize(sStatPut);
    sqlite3_finalize(sStatDel);
    for (size_t g = 0; g < gone.n; g++) free(gone.a[g].path);
    free(gone.a);
    free(rootReal);
    free(g_dbDir);
    free(azExclude);
    sqlite3_finalize(sSkipped);
    sqlite3_finalize(sSkip);
    sqlite3_finalize(sIns);
    sqlite3_finalize(sBegin);
    sqlite3_finalize(sCommit);
    /* The handlers stay: a signal from here on interrupts the checkpoint
    ** (die() then exits 130; WAL keeps the committed work either way). */
    /* (another process still using the database may keep the WAL: that is
    ** not an error, its last connection checkpoints it) */
    if (!interrupted) sqlite3_exec(g_db, "PRAGMA wal_checkpoint(TRUNCATE)", 0, 0, 0);
    char *zInfDone = interrupted ? sql_text("SELECT json_extract(ram_index_stats(), '$.inferences')") : 0;
    long long nInferences = zInfDone ? atoll(zInfDone) : 0;
    sqlite3_free(zInfDone);
    sqlite3 *db = g_db;
    g_db = 0;
    if (sqlite3_close(db) != SQLITE_OK) die("closing %s: %s", esc(dbPath), sqlite3_errmsg(db));
    for (size_t i = 0; i < files.n; i++) free(files.a[i]);
    free(files.a);
    free(todo);
    sqlite3_free(zModel);
    if (interrupted) {
        fprintf(stderr,
                "ram-index: interrupted; the work done is kept (%lld inferences): rerun the same command to "
                "resume\n",
                nInferences);
    }
    return interrupted ? 130 : nXmpBad ? 1 : 0;
}
