/*
** func_thumbnail.c — ram_thumbnail(image, size): a JPEG preview of an image
** BLOB, for pages and tools that show a photo library (demo/serve.py caches
** them beside the database).
**
**     SELECT ram_thumbnail(readfile('cat.jpg'), 256);     -- JPEG BLOB, longest side 256
**     SELECT writefile('cat-small.jpg', ram_thumbnail(readfile('cat.jpg'), 512));
**
** The work is core/thumbnail.c's (libvips): the formats and the pixel limit
** of the model's decoder (ram_set_max_pixels of this connection, checked from
** the header), EXIF orientation always applied (ram_set_exif is about what
** the model sees; a preview for people is shown upright), 8-bit sRGB, no
** metadata. No model is needed. NULL image or size gives NULL.
**
** Messages:
**   ram_thumbnail(): argument 1 must be a BLOB of image bytes (use readfile('photo.jpg'))
**   ram_thumbnail(): argument 1 is too big (B bytes, over SQLITE_LIMIT_LENGTH L)  SQLITE_TOOBIG
**   ram_thumbnail(): argument 2 must be an INTEGER size in 1..4096
**   ram_thumbnail(): image: ... (libvips' reason; the pixel limit -> SQLITE_TOOBIG)
*/
#include "ext.h"
SQLITE_EXTENSION_INIT3

/* ram_thumbnail(image, size): JPEG BLOB whose longest side is size pixels. */
static void ramThumbnailFunc(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
    struct ram_conn *p = sqlite3_user_data(ctx);
    struct ram_error err;
    void *pJpeg = 0; /* ram_thumbnail_free, or handed to SQLite with it as destructor */
    size_t nJpeg = 0;
    int eImg = sqlite3_value_type(argv[0]), eSize = sqlite3_value_type(argv[1]);

    if (eSize != SQLITE_NULL && (eSize != SQLITE_INTEGER || sqlite3_value_int64(argv[1]) < 1 ||
                                 sqlite3_value_int64(argv[1]) > RAM_THUMBNAIL_MAX_SIZE)) {
        char *z = ram__mprintf("ram_thumbnail(): argument 2 must be an INTEGER size in 1..%d", RAM_THUMBNAIL_MAX_SIZE);
        ram__result_error(ctx, z ? SQLITE_ERROR : SQLITE_NOMEM, z);
        return;
    }
    if (eImg == SQLITE_NULL || eSize == SQLITE_NULL) return;
    if (eImg != SQLITE_BLOB) {
        sqlite3_result_error(ctx,
                             "ram_thumbnail(): argument 1 must be a BLOB of image bytes (use "
                             "readfile('photo.jpg'))",
                             -1);
        return;
    }
    const void *z = sqlite3_value_blob(argv[0]);
    sqlite3_int64 n = sqlite3_value_bytes(argv[0]);
    int mxLen = sqlite3_limit(p->db, SQLITE_LIMIT_LENGTH, -1);
    if (n > mxLen) {
        char *zErr = ram__mprintf("ram_thumbnail(): argument 1 is too big (%lld bytes, over "
                                  "SQLITE_LIMIT_LENGTH %d)",
                                  n, mxLen);
        ram__result_error(ctx, SQLITE_TOOBIG, zErr);
        return;
    }
    struct ram_image_params ip = ram_image_default_params();
    ip.max_pixels = (uint64_t)p->prep.mxPixels;
    ip.exif_rotate = 1;
    ram_status s =
        ram_thumbnail_jpeg(z ? z : "", z ? (size_t)n : 0, (int)sqlite3_value_int64(argv[1]), &ip, &pJpeg, &nJpeg, &err);
    if (s) {
        int rc = ram__rc(s);
        ram__result_error(ctx, rc, rc == SQLITE_NOMEM ? 0 : ram__mprintf("ram_thumbnail(): %s", err.msg));
        return;
    }
    if (nJpeg > (size_t)mxLen) {
        ram_thumbnail_free(pJpeg);
        sqlite3_result_error_toobig(ctx);
        return;
    }
    /* SQLite calls the destructor when it is done with the bytes (also if it fails). */
    sqlite3_result_blob64(ctx, pJpeg, (sqlite3_uint64)nJpeg, ram_thumbnail_free);
}

/* Flags: a pure function of its arguments and the build (no model; the
** connection's pixel limit can only turn a result into an error, never into
** another value), so DETERMINISTIC: usable in generated columns and
** indexes. INNOCUOUS: it reads nothing but its arguments. */
static const struct ram_func_def g_aFunc[] = {
    {"ram_thumbnail", 2, SQLITE_UTF8 | SQLITE_DETERMINISTIC | SQLITE_INNOCUOUS, ramThumbnailFunc},
};

int ram__register_thumbnail_funcs(sqlite3 *db, struct ram_conn *p, char **pzErrMsg)
{
    return ram__register_funcs(db, p, g_aFunc, (int)(sizeof g_aFunc / sizeof g_aFunc[0]), pzErrMsg);
}
