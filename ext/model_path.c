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
**     int n; char **az = ram__model_places(&n);  -- the places themselves
**
** The list of places is what the "no model" error prints, so a user can see
** where to put the file. The default caption model (a Tag2Text model that
** ram_caption and ram_index's captions=1 use when the connection names
** none) is looked up in the same places as default_caption.ram
** (ram__model_search_of(RAM_CAPTION_MODEL_FILE, ...)).
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

/* The places, in order, without duplicates. */
struct places {
    char **az; /* sqlite3_free, each too */
    int n;
    int bNoMem;
};

/* Appends zDir/zFile unless already there. Relative directories are skipped
** (the XDG base directory spec calls them invalid). */
static void add_place(struct places *p, const char *zDir, const char *zFile)
{
    if (!zDir || zDir[0] != '/') return;
    size_t n = strlen(zDir);
    while (n > 1 && zDir[n - 1] == '/') n--;
    char *z = ram__mprintf("%.*s/%s", (int)n, zDir, zFile);
    if (!z) {
        p->bNoMem = 1;
        return;
    }
    for (int i = 0; i < p->n; i++) {
        if (!strcmp(p->az[i], z)) {
            sqlite3_free(z);
            return;
        }
    }
    char **a = sqlite3_realloc64(p->az, sizeof(char *) * (sqlite3_uint64)(p->n + 1));
    if (!a) {
        sqlite3_free(z);
        p->bNoMem = 1;
        return;
    }
    p->az = a;
    a[p->n++] = z;
}

static void add_place_under(struct places *p, const char *zBase, const char *zSub, const char *zFile)
{
    char *z = zBase ? ram__mprintf("%s%s/" RAM_MODEL_SUBDIR, zBase, zSub) : 0;
    if (zBase && !z) p->bNoMem = 1;
    add_place(p, z, zFile);
    sqlite3_free(z);
}

char **ram__model_places(int *pn) { return ram__model_places_of(RAM_MODEL_FILE, pn); }

char **ram__model_places_of(const char *zFile, int *pn)
{
    struct places s = {0};
    const char *zData = getenv("XDG_DATA_HOME");
    const char *zHome = getenv("HOME");
    if (zData && zData[0] == '/')
        add_place_under(&s, zData, "", zFile);
    else if (zHome && zHome[0] == '/')
        add_place_under(&s, zHome, "/.local/share", zFile);
    char *zParent = library_parent_dir();
    add_place_under(&s, zParent, "/share", zFile);
    const char *zDirs = getenv("XDG_DATA_DIRS");
    if (!zDirs || !zDirs[0]) zDirs = "/usr/local/share/:/usr/share/";
    while (*zDirs) {
        size_t n = strcspn(zDirs, ":");
        char *zDir = ram__mprintf("%.*s", (int)n, zDirs);
        if (!zDir) s.bNoMem = 1;
        add_place_under(&s, zDir, "", zFile);
        sqlite3_free(zDir);
        zDirs += n;
        if (*zDirs == ':') zDirs++;
    }
    char *zModels = zParent ? ram__mprintf("%s/models", zParent) : 0;
    if (zParent && !zModels) s.bNoMem = 1;
    add_place(&s, zModels, zFile);
    sqlite3_free(zModels);
    sqlite3_free(zParent);
    if (s.bNoMem) {
        ram__model_places_free(s.az, s.n);
        *pn = 0;
        return 0;
    }
    *pn = s.n;
    return s.az;
}

void ram__model_places_free(char **az, int n)
{
    for (int i = 0; i < n; i++) sqlite3_free(az[i]);
    sqlite3_free(az);
}

char *ram__model_search(char **pzTried) { return ram__model_search_of(RAM_MODEL_FILE, pzTried); }

char *ram__model_search_of(const char *zFile, char **pzTried)
{
    int n = 0;
    char **az = ram__model_places_of(zFile, &n);
    char *zFound = 0;
    sqlite3_str *pTried = pzTried ? sqlite3_str_new(0) : 0;
    for (int i = 0; i < n; i++) {
        if (!zFound && access(az[i], R_OK) == 0) zFound = ram__mprintf("%s", az[i]);
        if (pTried) {
            if (i) sqlite3_str_appendall(pTried, ", ");
            sqlite3_str_appendall(pTried, az[i]);
        }
    }
    ram__model_places_free(az, n);
    if (pzTried) *pzTried = sqlite3_str_finish(pTried); /* NULL when empty or out of memory */
    return zFound;
}
