/*
** thumbnail.c — small JPEG previews of encoded images, for people rather than
** for the model: ram_thumbnail_jpeg() (declared in ram.h), behind the SQL
** function ram_thumbnail() and the search page (demo/serve.py).
**
**     void *jpeg = 0; size_t len = 0;
**     if (ram_thumbnail_jpeg(blob, n, 256, 0, &jpeg, &len, &err)) puts(err.msg);
**     ...
**     ram_thumbnail_free(jpeg);
**
** HOW IT WORKS
**
** The same gate as the model's decoder (core/image.c), so that a preview is
** never a way around its limits: libvips is initialised by image.c (one
** thread per pipeline, no operation cache, quiet log), the format must be one
** of the loaders image.c accepts (ram_image_formats() names them: jpeg, png,
** webp, gif, tiff, heif; svg, pdf and ImageMagick are refused), and the
** header is read and width x height checked against params->max_pixels
** before a pixel is decoded. Then vips_thumbnail_buffer() does the work: it
** shrinks while loading where the format allows (JPEG's DCT scaling, WebP,
** HEIF thumbnails), applies the EXIF orientation (params->exif_rotate), and
** imports CMYK or tagged images to sRGB. What comes out is made plain 8-bit
** sRGB (grey expanded, 16 bit reduced, alpha flattened on white) and saved
** as a baseline JPEG (quality 80) without metadata: no EXIF, no GPS position
** and no ICC profile leave the library through a preview.
**
** Unlike the model's decoder, damaged files are not refused (libvips'
** default fail_on=none): a truncated photo still gets a preview of what is
** there.
*/
#include "image.h"

#include <string.h>

#include <vips/vips.h>

#define THUMB_QUALITY 80

/* The header checks of image.c's decoder: known and accepted format, not
** empty, at most max_pixels. Nothing is decoded. */
static ram_status check_header(const void *data, size_t n, uint64_t max_pixels, struct ram_error *err)
{
    const char *type_name = vips_foreign_find_load_buffer(data, n);
    if (!type_name) return ram_image_vips_fail(err, RAM_ERR_IMAGE, "image: unrecognised format");
    const VipsObjectClass *cls = vips_class_find("VipsForeignLoad", type_name);
    const char *loader = cls && cls->nickname ? cls->nickname : type_name;
    if (!ram_image_loader_accepted(loader)) {
        const char *end = strstr(loader, "load");
        int len = end ? (int)(end - loader) : (int)strlen(loader);
        return ram_fail(err, RAM_ERR_IMAGE, "image: format not supported (%.*s)", len, loader);
    }
    VipsImage *in = vips_image_new_from_buffer(data, n, "", "access", VIPS_ACCESS_SEQUENTIAL, NULL);
    if (!in) return ram_image_vips_fail(err, RAM_ERR_IMAGE, "image: cannot read header");
    int w = vips_image_get_width(in), h = vips_image_get_height(in);
    g_object_unref(in);
    if (w <= 0 || h <= 0) return ram_fail(err, RAM_ERR_IMAGE, "image: empty image (%dx%d)", w, h);
    uint64_t npix = (uint64_t)w * (uint64_t)h;
    if (npix > max_pixels)
        return ram_fail(err, RAM_ERR_TOO_BIG, "image: %dx%d is %llu pixels, over the limit of %llu", w, h,
                        (unsigned long long)npix, (unsigned long long)max_pixels);
    return RAM_OK;
}

ram_status ram_thumbnail_jpeg(const void *data, size_t n, int size, const struct ram_image_params *params, void **jpeg,
                              size_t *jpeg_len, struct ram_error *err)
{
    struct ram_image_params def = ram_image_default_params();
    VipsImage *t[8] = {0}; /* pipeline images, unreffed at cleanup */
    void *buf = 0;
    size_t len = 0;
    ram_status rc;

    if (jpeg) *jpeg = 0;
    if (jpeg_len) *jpeg_len = 0;
    if (!params) params = &def;
    if (!jpeg || !jpeg_len || (!data && n)) return ram_fail(err, RAM_ERR_ARG, "image: NULL argument");
    if (size < 1 || size > RAM_THUMBNAIL_MAX_SIZE)
        return ram_fail(err, RAM_ERR_ARG, "thumbnail size %d not in 1..%d", size, RAM_THUMBNAIL_MAX_SIZE);
    if (n == 0) return ram_fail(err, RAM_ERR_IMAGE, "image: empty blob");
    /* Initialises libvips as image.c does (ram_image_formats() goes through
    ** its pthread_once); "" means libvips could not start. */
    if (!*ram_image_formats()) return ram_image_vips_fail(err, RAM_ERR_IMAGE, "image: cannot initialise libvips");
    if ((rc = check_header(data, n, params->max_pixels, err))) return rc;

    /* Longest side = size, up or down (VIPS_SIZE_BOTH), aspect kept. libvips
    ** takes a non-const buffer but only reads it. */
    int k = 0;
    if (vips_thumbnail_buffer((void *)data, n, &t[k], size, "height", size, "size", VIPS_SIZE_BOTH, "no_rotate",
                              params->exif_rotate ? FALSE : TRUE, NULL)) {
        rc = ram_image_vips_fail(err, RAM_ERR_IMAGE, "image: cannot decode");
        goto cleanup;
    }
    VipsImage *x = t[k++];
    if (x->Coding != VIPS_CODING_NONE) {
        if (vips_image_decode(x, &t[k])) goto vips_error;
        x = t[k++];
    }
    /* sRGB, 8 bit (grey, 16-bit and the other colour spaces converted; an
    ** alpha band is carried along and flattened next). */
    if (x->Type != VIPS_INTERPRETATION_sRGB || x->BandFmt != VIPS_FORMAT_UCHAR) {
        if (vips_colourspace(x, &t[k], VIPS_INTERPRETATION_sRGB, NULL)) goto vips_error;
        x = t[k++];
    }
    if (vips_image_hasalpha(x)) {
        VipsArrayDouble *white = vips_array_double_newv(1, 255.0);
        int bad = !white || vips_flatten(x, &t[k], "background", white, NULL);
        if (white) vips_area_unref(VIPS_AREA(white));
        if (bad) goto vips_error;
        x = t[k++];
    }
    if (x->Bands > 3) {
        if (vips_extract_band(x, &t[k], 0, "n", 3, NULL)) goto vips_error;
        x = t[k++];
    }
    if (x->BandFmt != VIPS_FORMAT_UCHAR) {
        if (vips_cast_uchar(x, &t[k], NULL)) goto vips_error;
        x = t[k++];
    }
    if (vips_jpegsave_buffer(x, &buf, &len, "Q", THUMB_QUALITY, "strip", TRUE, NULL)) {
        rc = ram_image_vips_fail(err, RAM_ERR_IMAGE, "image: cannot encode the thumbnail");
        goto cleanup;
    }
    *jpeg = buf;
    *jpeg_len = len;
    rc = RAM_OK;
    goto cleanup;

vips_error:
    rc = ram_image_vips_fail(err, RAM_ERR_IMAGE, "image: cannot convert");
cleanup:
    for (int i = 7; i >= 0; i--)
        if (t[i]) g_object_unref(t[i]);
    return rc;
}

void ram_thumbnail_free(void *jpeg) { g_free(jpeg); }
