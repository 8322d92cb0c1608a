/*
** model_path.c — where the extension looks for its default model when the
** connection has no ram_load() and RAM_MODEL is unset: the first readable
** file of
**
**   1. $XDG_DATA_HOME/sqlite-ram/default.ram   (unset: ~/.local/share/...)
**   2. EXT/../share/sqlite-ram/default.ram     (make install: PREFIX/lib/ram0.so
**                                              -> PREFIX/share/sqlite-ram)
**   3. D/sqlite-ram/default.ram for each D of $XDG_DATA_DIRS
**                                              (unset: /usr/local/share:/usr/share)
**   4. EXT/../models/default.ram               (the build: build/ram.so -> models/)
**
** where EXT is the directory of the loaded ram.so (dladdr). Places 2 and 4
** are relative to the library, not compiled in, so an installed tree can be
** moved (DESTDIR staging, a Python wheel, an npm package) and `make install
** PREFIX=...` needs no rebuild; place 3 covers system packages whose library
** directory is not PREFIX/lib (Debian's multiarch /usr/lib/x86_64-linux-gnu).
** A per-user file (1) wins over an installed one, an installed one over the
** build's, so `make install` of a real model is not shadowed by a checkout.
**
**     char *zTried = 0;
**     char *zPath = ram__model_search(&zTried);  -- NULL: none; zTried lists them
**
** The list of places is what the "no model" error prints, so a user can see
** where to put the file.
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

#include "model_path.h"

#include <dlfcn.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define RAM_MODEL_SUBDIR "sqlite-ram"
#define RAM_MODEL_FILE "default.ram"

/* The parent of the directory holding this shared object, resolved
** (build/ram.so -> the checkout; PREFIX/lib/ram0.so -> PREFIX), or NULL
** (sqlite3_free). */
static char *library_parent_dir(void)
{
    Dl_info info;
    if (!dladdr((void *)&library_parent_dir, &info) || !info.dli_fname) return 0;
    char *zSo = realpath(info.dli_fname, 0); /* libc malloc */
    if (!zSo) return 0;
    char *zSlash = strrchr(zSo, '/');
    if (zSlash) *zSlash = 0;
    char *zUp = ram__mprintf("%s/..", zSlash && zSo[0] ? zSo : "/");
    free(zSo);
    if (!zUp) return 0;
    char *zReal = realpath(zUp, 0); /* libc malloc */
    sqlite3_free(zUp);
    if (!zReal) return 0;
    char *z = ram__mprintf("%s", zReal);
    free(zReal);
    return z;
}

/* The places looked at so far, in order. */
struct search {
    sqlite3_str *pTried; /* "; "-separated places */
    int nTried;
    char **azSeen;       /* candidates so far (sqlite3_free, each too) */
    char *zFound;        /* first readable candidate (sqlite3_free) */
};

/* Appends zDir/zFile to the places unless already there; the first readable
** one becomes p->zFound. Out of memory only shortens the list. */
static void consider(struct search *p, const char *zDir, const char *zFile)
{
    /* XDG base directory spec: relative paths in these variables are invalid. */
    if (!zDir || zDir[0] != '/') return;
    size_t n = strlen(zDir);
    while (n > 1 && zDir[n - 1] == '/') n--;
    char *z = ram__mprintf("%.*s/%s", (int)n, zDir, zFile);
    if (!z) return;
    for (int i = 0; i < p->nTried; i++) {
        if (!strcmp(p->azSeen[i], z)) {
            sqlite3_free(z);
            return;
        }
    }
    char **a = sqlite3_realloc64(p->azSeen, sizeof(char *) * (sqlite3_uint64)(p->nTried + 1));
    if (!a) {
        sqlite3_free(z);
        return;
    }
    p->azSeen = a;
    a[p->nTried++] = z;
    if (p->nTried > 1) sqlite3_str_appendall(p->pTried, ", ");
    sqlite3_str_appendall(p->pTried, z);
    if (!p->zFound && access(z, R_OK) == 0) p->zFound = ram__mprintf("%s", z);
}

char *ram__model_search(char **pzTried)
{
    struct search s = {0};
    s.pTried = sqlite3_str_new(0);
    const char *zHome = getenv("HOME");
    const char *zData = getenv("XDG_DATA_HOME");
    char *zTmp = 0;
    if (zData && zData[0] == '/') {
        consider(&s, zData, RAM_MODEL_SUBDIR "/" RAM_MODEL_FILE);
    } else if (zHome && zHome[0] == '/') {
        zTmp = ram__mprintf("%s/.local/share", zHome);
        consider(&s, zTmp, RAM_MODEL_SUBDIR "/" RAM_MODEL_FILE);
        sqlite3_free(zTmp);
    }
    char *zParent = library_parent_dir();
    if (zParent) {
        zTmp = ram__mprintf("%s/share", zParent);
        consider(&s, zTmp, RAM_MODEL_SUBDIR "/" RAM_MODEL_FILE);
        sqlite3_free(zTmp);
    }
    const char *zDirs = getenv("XDG_DATA_DIRS");
    if (!zDirs || !zDirs[0]) zDirs = "/usr/local/share/:/usr/share/";
    while (*zDirs) {
        size_t n = strcspn(zDirs, ":");
        zTmp = ram__mprintf("%.*s", (int)n, zDirs);
        consider(&s, zTmp, RAM_MODEL_SUBDIR "/" RAM_MODEL_FILE);
        sqlite3_free(zTmp);
        zDirs += n;
        if (*zDirs == ':') zDirs++;
    }
    if (zParent) consider(&s, zParent, "models/" RAM_MODEL_FILE);
    sqlite3_free(zParent);

    for (int i = 0; i < s.nTried; i++) sqlite3_free(s.azSeen[i]);
    sqlite3_free(s.azSeen);
    char *zTried = sqlite3_str_finish(s.pTried);
    if (pzTried) {
        *pzTried = zTried;
    } else {
        sqlite3_free(zTried);
    }
    return s.zFound;
}
