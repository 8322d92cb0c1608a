/*
** model_trust.c — which model files a ram_index table may open on its own.
**
** A ram_index table records the path of its model file (model=, kept in its
** _config table). The database is data, and may come from someone else: if
** that path were opened as it is, a database could make the process open
** any file it names (/etc/shadow, a FIFO, a file on a network share) and
** learn from the error whether it exists. So a recorded path is opened only
** when the user has a say in it:
**
**   - it lies in a folder of the default model's search order
**     (model_path.c: $XDG_DATA_HOME/sqlite-ram, PREFIX/share/sqlite-ram
**     beside the installed extension, each $XDG_DATA_DIRS/sqlite-ram, models/
**     beside build/) or in the folder of the file RAM_MODEL names (the
**     folders the user keeps models in), or
**   - it is a file named in this connection: by ram_load(path), by CREATE
**     VIRTUAL TABLE ... USING ram_index(model=path), or by the command
**     INSERT INTO t(t) VALUES('model=path') (ram_index is DIRECTONLY: a view
**     or trigger of the database cannot run those).
**
**     SELECT ram_load('/data/models/ram_plus.ram');   -- allows that file here
**     SELECT * FROM photos WHERE tag = 'dog';        -- table recording it: opens it
**
** Otherwise the table's statements fail with a message that names the model
** it needs and the ways to allow it; the file is not opened (not even
** stat'ed beyond realpath, and a missing file says the same as a present
** one), so nothing about it leaks.
**
** HOW IT WORKS: paths are compared after realpath() (symlinks and .. are
** resolved, so a link inside a trusted folder pointing out of it is not
** trusted). A path that does not resolve is checked by its folder's
** realpath. The files named in the connection are a small list of
** realpaths owned by struct ram_conn (pTrust), freed with it.
*/
#include "ext.h"
#include "model_path.h"
SQLITE_EXTENSION_INIT3

#include <limits.h>
#include <stdlib.h>
#include <string.h>

/* Files named in one connection: realpaths, sqlite3_free each and az. */
struct ram_trust {
    char **az;
    int n, nAlloc;
};

/* realpath of zPath, else of its folder with the last component appended
** (a file that does not exist yet or any more), as sqlite3_malloc memory;
** NULL when neither resolves (or out of memory). */
static char *resolve(const char *zPath)
{
    char *z = realpath(zPath, 0); /* libc malloc */
    if (z) {
        char *r = sqlite3_mprintf("%s", z);
        free(z);
        return r;
    }
    const char *zSlash = strrchr(zPath, '/');
    const char *zBase = zSlash ? zSlash + 1 : zPath;
    if (!*zBase || !strcmp(zBase, ".") || !strcmp(zBase, "..")) return 0;
    char *zDir =
        zSlash ? sqlite3_mprintf("%.*s", (int)(zSlash - zPath) + (zSlash == zPath), zPath) : sqlite3_mprintf(".");
    if (!zDir) return 0;
    z = realpath(zDir, 0);
    sqlite3_free(zDir);
    if (!z) return 0;
    char *r = sqlite3_mprintf("%s%s%s", z, strcmp(z, "/") ? "/" : "", zBase);
    free(z);
    return r;
}

/* 1 when zReal lies in the folder holding the file zFile (resolved). */
static int in_folder_of(const char *zReal, const char *zFile)
{
    if (!zFile || !*zFile) return 0;
    char *zR = resolve(zFile);
    if (!zR) return 0;
    char *zSlash = strrchr(zR, '/');
    int b = 0;
    if (zSlash) {
        size_t n = (size_t)(zSlash - zR) + 1; /* the folder with its slash */
        b = strlen(zReal) > n && !strncmp(zReal, zR, n) && !strchr(zReal + n, '/');
    }
    sqlite3_free(zR);
    return b;
}

int ram__trust_add(struct ram_conn *p, const char *zPath)
{
    char *zReal = resolve(zPath);
    if (!zReal) return SQLITE_OK; /* nothing to open: the load will say why */
    struct ram_trust *t = p->pTrust;
    for (int i = 0; t && i < t->n; i++)
        if (!strcmp(t->az[i], zReal)) {
            sqlite3_free(zReal);
            return SQLITE_OK;
        }
    if (!t) {
        t = p->pTrust = sqlite3_malloc(sizeof *t);
        if (!t) goto nomem;
        memset(t, 0, sizeof *t);
    }
    if (t->n == t->nAlloc) {
        int nNew = t->nAlloc ? 2 * t->nAlloc : 4;
        char **az = sqlite3_realloc64(t->az, sizeof *az * (sqlite3_uint64)nNew);
        if (!az) goto nomem;
        t->az = az;
        t->nAlloc = nNew;
    }
    t->az[t->n++] = zReal;
    return SQLITE_OK;
nomem:
    sqlite3_free(zReal);
    return SQLITE_NOMEM;
}

/* zPath as shown in a message: control bytes escaped (\xNN), so that a
** path from the database cannot drive the terminal showing the error, and
** cut at 300 bytes (sqlite3_malloc memory, NULL on OOM). */
static char *shown(const char *zPath)
{
    sqlite3_str *s = sqlite3_str_new(0);
    size_t n = strlen(zPath);
    for (size_t i = 0; i < n && i < 300; i++) {
        unsigned char c = (unsigned char)zPath[i];
        if (c < 0x20 || c == 0x7f || c == '\\')
            sqlite3_str_appendf(s, "\\x%02x", c);
        else if (c == '\'')
            sqlite3_str_appendall(s, "''");
        else
            sqlite3_str_appendchar(s, 1, (char)c);
    }
    if (n > 300) sqlite3_str_appendall(s, "...");
    return sqlite3_str_finish(s);
}

int ram__trust_check(struct ram_conn *p, const char *zTable, const char *zPath, char **pzErr)
{
    *pzErr = 0;
    char *zReal = resolve(zPath);
    int bOk = 0;
    if (zReal) {
        struct ram_trust *t = p->pTrust;
        for (int i = 0; t && i < t->n && !bOk; i++) bOk = !strcmp(t->az[i], zReal);
        if (!bOk) bOk = in_folder_of(zReal, getenv("RAM_MODEL"));
        if (!bOk) { /* every folder of the default model's search order (model_path.c) */
            int n = 0;
            char **az = ram__model_places(&n);
            for (int i = 0; i < n && !bOk; i++) bOk = in_folder_of(zReal, az[i]);
            ram__model_places_free(az, n);
        }
        sqlite3_free(zReal);
    }
    if (bOk) return SQLITE_OK;
    char *zShown = shown(zPath);
    if (!zShown) return SQLITE_NOMEM;
    *pzErr = sqlite3_mprintf("ram_index: table %s records the model file '%s', which is not in a folder trusted "
                             "for models (the default model's or RAM_MODEL's) nor named in this connection: a "
                             "database does not choose the files this process opens; if you trust that file, "
                             "run SELECT ram_load('%s') first, or set RAM_MODEL to it",
                             zTable, zShown, zShown);
    sqlite3_free(zShown);
    return *pzErr ? SQLITE_ERROR : SQLITE_NOMEM;
}

void ram__trust_free(struct ram_conn *p)
{
    struct ram_trust *t = p->pTrust;
    if (!t) return;
    for (int i = 0; i < t->n; i++) sqlite3_free(t->az[i]);
    sqlite3_free(t->az);
    sqlite3_free(t);
    p->pTrust = 0;
}
