/*
** image.c — the image path of the engine, on libvips (thumbnail.c and exif.c
** open headers the same way, with the loaders accepted here):
** encoded bytes -> RGB -> size x size (Pillow's bilinear, bit-exact) ->
** normalised float CHW, i.e. what the official pipeline gets from
** PIL.Image.open(f).convert('RGB') followed by torchvision's
** Resize((size, size)), ToTensor() and Normalize(ImageNet mean, std).
**
**     struct ram_image_params p = ram_image_default_params();
**     float *chw = malloc(sizeof(float) * 3 * 384 * 384);
**     if (ram_image_preprocess(jpeg, jpeg_len, 384, &p, chw, &err)) puts(err.msg);
**
** HOW IT WORKS
**
** Decoding (ram_image_decode_rgb). libvips is initialised once per process
** (pthread_once), with one worker thread per pipeline (vips_concurrency_set(1):
** we decode from many threads already), the operation cache off
** (vips_cache_set_max(0): blobs come and go, nothing would be reused), and its
** "VIPS" log domain silenced below G_LOG_LEVEL_CRITICAL, because libvips
** prints decoder warnings to stderr and an SQLite extension must not print.
** These three settings are process-wide; a host that uses libvips itself
** shares them. (Decoders below libvips can still print: libheif's AV1 decoder,
** dav1d, writes to stderr on corrupt AVIF data, and we cannot reach its logger.)
**   - Only libvips' trusted buffer loaders are accepted: jpeg, png, webp, gif
**     (first frame), tiff (first page), heif (HEIF/AVIF). Blobs that libvips
**     would give to svg, pdf, jp2k, jxl, rad or ImageMagick are refused with
**     RAM_ERR_IMAGE: those parsers are large and libvips itself flags them as
**     unsafe for untrusted input.
**   - The image is opened with access=sequential (pixels stream from the
**     decoder straight into our buffer, so memory is the RGB result plus a
**     few scan lines) and fail_on=error. The header is read first and the
**     image refused when width*height > max_pixels (RAM_ERR_TOO_BIG) or when
**     it is empty, before a single pixel is decoded.
**   - fail_on=error: for a photo library a truncated or corrupt file is
**     better reported than silently tagged from a half-grey picture (PIL, the
**     official decoder, also raises "image file is truncated"). Mere decoder
**     warnings (extraneous bytes, unknown markers: common in camera files)
**     are tolerated, again as PIL does. libjpeg cannot detect every kind of
**     damage in entropy-coded data; such files decode to whatever libjpeg
**     makes of them.
**   - Pixels are written by vips_image_write() into a ram_malloc'd buffer
**     wrapped with vips_image_new_from_memory(); nothing of libvips survives
**     the call, so the caller's blob is not referenced afterwards.
**
** RGB conversion, as PIL's convert('RGB') (where libvips allows):
**   grey (1, 2, 4, 8 bit)      replicated to R=G=B (low depths scaled to
**                              0..255 by the decoders, as PIL does);
**   grey+alpha, RGBA           alpha dropped WITHOUT compositing: the colour
**                              stored under transparent pixels is kept;
**   palette PNG                expanded through its palette (tRNS ignored);
**   GIF                        through its palette; libvips renders
**                              transparent pixels as 0,0,0,0, so they are
**                              given the palette colour of the transparent
**                              index again (read from the GIF's own bytes),
**                              which is what PIL's P -> RGB produces;
**   16 bit per sample          the high byte (v >> 8). This is what PIL does
**                              for 16-bit RGB/RGBA/LA PNGs; for 16-bit grey
**                              PIL opens mode I;16 and convert('RGB') clips
**                              every value above 255 to white, a quirk we do
**                              not copy (such photos would come out white);
**   CMYK (JPEG, TIFF)          Pillow's naive formula, no ICC colour
**                              management: R = (255-K) - C*(255-K)/255
**                              rounded as Pillow's MULDIV255, same for G/M,
**                              B/Y. Adobe (inverted) CMYK JPEGs are
**                              un-inverted by libvips as by PIL;
**   Lab, XYZ, LCh, HSV, scRGB  vips_colourspace() to sRGB (PIL cannot open
**                              most of these; this is our choice);
**   float / signed / 32-bit    vips_cast to uchar (clipped);
**   other multiband            the first three bands (one band: grey).
** ICC profiles are ignored, as PIL's convert() ignores them.
**
** EXIF orientation: with params->exif_rotate (default 1) the orientation
** libvips reads from the file (1..8) is applied to the RGB buffer here, by the
** same pixel mapping as vips_autorot (checked by the tests); 0 ignores it,
** which is the exact official behaviour. Doing it after the streamed decode
** keeps access=sequential possible.
**
** Resize (ram_image_resize_bilinear): Pillow's Resample.c arithmetic,
** rewritten from its description in docs/ARCHITECTURE.md section 2. Per output
** index i along an axis of in -> out samples: scale = in/out, filterscale =
** max(scale, 1), support = filterscale, center = (i + 0.5) * scale, taps j in
** [trunc(center - support + 0.5), trunc(center + support + 0.5)) clamped to
** [0, in), weight tri((j - center + 0.5) / filterscale) with tri(x) =
** max(0, 1 - |x|), weights divided by their sum (in double), then each
** converted to fixed point with 22 fractional bits (trunc(w * 2^22 + 0.5)).
** A pass accumulates 2^21 + sum(pixel * weight), shifts right by 22 and
** clamps to 0..255. The horizontal pass (to ow x h) runs first, the vertical
** one second, so the intermediate is rounded to uint8; a pass is skipped when
** its axis keeps its size.
**
** Normalisation (ram_image_normalize): v/255 in float32, then (x - mean) / std
** in float32 with mean/std rounded to float32, as torch computes it; one
** 256-entry table per channel holds the results.
*/
#include "image.h"

#include <math.h>
#include <pthread.h>
#include <string.h>

#include <vips/vips.h>

/* ------------------------------------------------------------ libvips setup */

static pthread_once_t g_vips_once = PTHREAD_ONCE_INIT;
static int g_vips_ok;       /* written once inside pthread_once, read-only after */
static char g_formats[128]; /* same: the accepted loaders this libvips has */

/* Nicknames of the loaders we accept (libvips' trusted buffer loaders). */
static const char *const g_loaders[] = {
    "jpegload_buffer", "pngload_buffer", "webpload_buffer", "gifload_buffer", "tiffload_buffer", "heifload_buffer",
};
#define N_LOADERS (sizeof g_loaders / sizeof g_loaders[0])

static void vips_quiet_log(const gchar *domain, GLogLevelFlags level, const gchar *message, gpointer user)
{
    (void)domain;
    (void)level;
    (void)message;
    (void)user;
}

static void vips_init_once(void)
{
    if (VIPS_INIT("sqlite-ram")) return;
    vips_concurrency_set(1);
    vips_cache_set_max(0);
    g_log_set_handler("VIPS", G_LOG_LEVEL_WARNING | G_LOG_LEVEL_MESSAGE | G_LOG_LEVEL_INFO | G_LOG_LEVEL_DEBUG,
                      vips_quiet_log, NULL);
    size_t len = 0;
    for (size_t i = 0; i < N_LOADERS; i++) {
        if (!vips_type_find("VipsOperation", g_loaders[i])) continue;
        const char *end = strstr(g_loaders[i], "load");
        int n = (int)(end - g_loaders[i]);
        len += (size_t)snprintf(g_formats + len, sizeof g_formats - len, "%s%.*s", len ? " " : "", n, g_loaders[i]);
    }
    g_vips_ok = 1;
}

static int vips_ready(void)
{
    pthread_once(&g_vips_once, vips_init_once);
    return g_vips_ok;
}

const char *ram_image_vips_version(void) { return vips_version_string(); }

const char *ram_image_formats(void) { return vips_ready() ? g_formats : ""; }

int ram_image_loader_accepted(const char *loader)
{
    const char *end = strstr(loader, "load");
    size_t n = end ? (size_t)(end - loader) : strlen(loader);
    const char *f = ram_image_formats();
    while (n && *f) {
        size_t w = strcspn(f, " ");
        if (w == n && !memcmp(f, loader, n)) return 1;
        f += w;
        while (*f == ' ') f++;
    }
    return 0;
}

/* Fails with code and "what: <libvips' message>". libvips' error buffer is
** process-wide and other threads append to it too, so only its last line is
** taken, which is the message of the call that just failed. */
ram_status ram_image_vips_fail(struct ram_error *err, ram_status code, const char *what)
{
    char *all = vips_error_buffer_copy();
    const char *msg = "";
    if (all) {
        size_t len = strlen(all);
        while (len && (all[len - 1] == '\n' || all[len - 1] == ' ')) all[--len] = 0;
        char *nl = strrchr(all, '\n');
        msg = nl ? nl + 1 : all;
    }
    ram_fail(err, code, "%s%s%s", what, *msg ? ": " : "", msg);
    g_free(all);
    return code;
}

/* ------------------------------------------------------------ pixel helpers */

/* Pillow's MULDIV255: a*b/255 rounded, exact for a, b in 0..255. */
static inline unsigned muldiv255(unsigned a, unsigned b)
{
    unsigned t = a * b + 128;
    return ((t >> 8) + t) >> 8;
}

/* In place: npix pixels of nb bands (nb = 1, 3 or 4, CMYK when cmyk) -> RGB.
** buf holds at least npix * max(nb, 3) bytes. */
static void to_rgb_in_place(uint8_t *buf, size_t npix, int nb, int cmyk)
{
    if (nb == 1) {
        /* Back to front: pixel i moves to 3i >= i, never over an unread one. */
        for (size_t i = npix; i-- > 0;) {
            uint8_t g = buf[i];
            buf[3 * i] = buf[3 * i + 1] = buf[3 * i + 2] = g;
        }
    } else if (nb == 4) {
        /* Front to back: pixel i moves to 3i <= 4i, after it was read. */
        for (size_t i = 0; i < npix; i++) {
            unsigned a = buf[4 * i], b = buf[4 * i + 1], c = buf[4 * i + 2], k = buf[4 * i + 3];
            if (cmyk) {
                unsigned nk = 255 - k;
                a = nk - muldiv255(a, nk);
                b = nk - muldiv255(b, nk);
                c = nk - muldiv255(c, nk);
            }
            buf[3 * i] = (uint8_t)a;
            buf[3 * i + 1] = (uint8_t)b;
            buf[3 * i + 2] = (uint8_t)c;
        }
    }
}

/* Applies EXIF orientation o (2..8) to an RGB image: *out (ram_malloc'd, w*h*3)
** receives the upright image, *ow x *oh. */
static ram_status orient_rgb(const uint8_t *src, int w, int h, int o, uint8_t **out, int *ow, int *oh)
{
    size_t n = (size_t)w * (size_t)h * 3;
    uint8_t *dst = ram_malloc(n);
    if (!dst) return RAM_ERR_NOMEM;
    int transpose = o >= 5;
    int dw = transpose ? h : w, dh = transpose ? w : h;
    for (int oy = 0; oy < dh; oy++) {
        for (int ox = 0; ox < dw; ox++) {
            int sx, sy;
            /* clang-format off */
            switch (o) {
            case 2: sx = w - 1 - ox; sy = oy; break;           /* mirror horizontal */
            case 3: sx = w - 1 - ox; sy = h - 1 - oy; break;   /* rotate 180 */
            case 4: sx = ox; sy = h - 1 - oy; break;           /* mirror vertical */
            case 5: sx = oy; sy = ox; break;                   /* transpose */
            case 6: sx = oy; sy = h - 1 - ox; break;           /* rotate 90 clockwise */
            case 7: sx = w - 1 - oy; sy = h - 1 - ox; break;   /* transverse */
            case 8: sx = w - 1 - oy; sy = ox; break;           /* rotate 270 clockwise */
            default: sx = ox; sy = oy; break;
            }
            /* clang-format on */
            const uint8_t *s = src + ((size_t)sy * (size_t)w + (size_t)sx) * 3;
            uint8_t *d = dst + ((size_t)oy * (size_t)dw + (size_t)ox) * 3;
            d[0] = s[0];
            d[1] = s[1];
            d[2] = s[2];
        }
    }
    *out = dst;
    *ow = dw;
    *oh = dh;
    return RAM_OK;
}

/* The colour a GIF's first image gives its transparent index: walks the
** blocks up to the first image descriptor (bounds-checked; any surprise just
** answers "none"). Returns 1 and fills rgb when the first image has a
** transparent index inside its colour table. */
static int gif_transparent_colour(const uint8_t *d, size_t n, uint8_t rgb[3])
{
    if (n < 13 || memcmp(d, "GIF8", 4)) return 0;
    size_t p = 13, table = 0, table_n = 0;
    if (d[10] & 0x80) {
        table = p;
        table_n = (size_t)2 << (d[10] & 7);
        p += 3 * table_n;
    }
    int tindex = -1;
    while (p < n) {
        uint8_t b = d[p++];
        if (b == 0x21) { /* extension: label, then sub-blocks */
            if (p >= n) return 0;
            uint8_t label = d[p++];
            if (label == 0xF9 && p + 5 <= n && d[p] == 4) tindex = (d[p + 1] & 1) ? d[p + 4] : -1;
            while (p < n && d[p]) p += (size_t)d[p] + 1;
            p++;
        } else if (b == 0x2C) { /* image descriptor */
            if (p + 9 > n) return 0;
            uint8_t flags = d[p + 8];
            p += 9;
            if (flags & 0x80) {
                table = p;
                table_n = (size_t)2 << (flags & 7);
            }
            break;
        } else {
            return 0;
        }
    }
    if (tindex < 0 || !table || (size_t)tindex >= table_n || table + 3 * table_n > n) return 0;
    memcpy(rgb, d + table + 3 * (size_t)tindex, 3);
    return 1;
}

/* ------------------------------------------------------------ decode */

static int is_colour_space(VipsInterpretation t)
{
    switch (t) {
    case VIPS_INTERPRETATION_LAB:
    case VIPS_INTERPRETATION_LABQ:
    case VIPS_INTERPRETATION_LABS:
    case VIPS_INTERPRETATION_LCH:
    case VIPS_INTERPRETATION_CMC:
    case VIPS_INTERPRETATION_XYZ:
    case VIPS_INTERPRETATION_YXY:
    case VIPS_INTERPRETATION_HSV:
    case VIPS_INTERPRETATION_scRGB: return 1;
    default: return 0;
    }
}

ram_status ram_image_decode_rgb(const void *data, size_t n, const struct ram_image_params *params, uint8_t **rgb,
                                int *w, int *h, struct ram_error *err)
{
    struct ram_image_params def = ram_image_default_params();
    VipsImage *in = 0, *mem = 0;
    VipsImage *t[8] = {0}; /* pipeline intermediates, unreffed at cleanup */
    uint8_t *buf = 0;      /* ram_malloc'd; handed to *rgb on success */
    uint8_t *rot = 0;
    ram_status rc = RAM_OK;

    if (rgb) *rgb = 0;
    if (!params) params = &def;
    if (!rgb || !w || !h || (!data && n)) return ram_fail(err, RAM_ERR_ARG, "image: NULL argument");
    if (n == 0) return ram_fail(err, RAM_ERR_IMAGE, "image: empty blob");
    if (!vips_ready()) return ram_image_vips_fail(err, RAM_ERR_IMAGE, "image: cannot initialise libvips");

    /* find_load_buffer names the GType (VipsForeignLoadJpegBuffer, ...);
    ** the class gives the stable nickname (jpegload_buffer, ...). */
    const char *type_name = vips_foreign_find_load_buffer(data, n);
    if (!type_name) return ram_image_vips_fail(err, RAM_ERR_IMAGE, "image: unrecognised format");
    const VipsObjectClass *cls = vips_class_find("VipsForeignLoad", type_name);
    const char *loader = cls && cls->nickname ? cls->nickname : type_name;
    int allowed = 0;
    for (size_t i = 0; i < N_LOADERS; i++)
        if (!strcmp(loader, g_loaders[i])) allowed = 1;
    if (!allowed) {
        const char *end = strstr(loader, "load");
        int len = end ? (int)(end - loader) : (int)strlen(loader);
        return ram_fail(err, RAM_ERR_IMAGE, "image: format not supported (%.*s)", len, loader);
    }
    int is_gif = !strcmp(loader, "gifload_buffer");

    /* Header only: libvips decodes no pixel before vips_image_write below. */
    in = vips_image_new_from_buffer(data, n, "", "access", VIPS_ACCESS_SEQUENTIAL, "fail_on", VIPS_FAIL_ON_ERROR, NULL);
    if (!in) return ram_image_vips_fail(err, RAM_ERR_IMAGE, "image: cannot read header");
    int iw = vips_image_get_width(in), ih = vips_image_get_height(in);
    if (iw <= 0 || ih <= 0) {
        rc = ram_fail(err, RAM_ERR_IMAGE, "image: empty image (%dx%d)", iw, ih);
        goto cleanup;
    }
    uint64_t npix64 = (uint64_t)iw * (uint64_t)ih;
    if (npix64 > params->max_pixels) {
        rc = ram_fail(err, RAM_ERR_TOO_BIG, "image: %dx%d is %llu pixels, over the limit of %llu", iw, ih,
                      (unsigned long long)npix64, (unsigned long long)params->max_pixels);
        goto cleanup;
    }
    int orientation = 1;
    if (params->exif_rotate && vips_image_get_typeof(in, VIPS_META_ORIENTATION)) {
        int o = 1;
        if (!vips_image_get_int(in, VIPS_META_ORIENTATION, &o) && o >= 1 && o <= 8) orientation = o;
    }

    /* The pipeline: decode coding, colour spaces, 8 bit, choose bands. */
    VipsImage *x = in;
    int k = 0;
    if (x->Coding != VIPS_CODING_NONE) {
        if (vips_image_decode(x, &t[k])) goto vips_error;
        x = t[k++];
    }
    VipsInterpretation interp = vips_image_guess_interpretation(x);
    int cmyk = interp == VIPS_INTERPRETATION_CMYK && x->Bands >= 4;
    if (!cmyk && is_colour_space(interp) && x->Bands >= 3) {
        if (vips_colourspace(x, &t[k], VIPS_INTERPRETATION_sRGB, NULL)) goto vips_error;
        x = t[k++];
    }
    if (x->BandFmt == VIPS_FORMAT_USHORT) {
        if (vips_rshift_const1(x, &t[k], 8, NULL)) goto vips_error;
        x = t[k++];
    }
    if (x->BandFmt != VIPS_FORMAT_UCHAR) {
        if (vips_cast_uchar(x, &t[k], NULL)) goto vips_error;
        x = t[k++];
    }
    int nb;
    if (cmyk || (is_gif && x->Bands == 4))
        nb = 4;
    else if (x->Bands >= 3)
        nb = 3;
    else
        nb = 1;
    if (x->Bands != nb) {
        if (vips_extract_band(x, &t[k], 0, "n", nb, NULL)) goto vips_error;
        x = t[k++];
    }

    if (x->Xsize != iw || x->Ysize != ih) { /* no step above resizes; never trust it blindly */
        rc = ram_fail(err, RAM_ERR_IMAGE, "image: size changed from %dx%d to %dx%d while decoding", iw, ih, x->Xsize,
                      x->Ysize);
        goto cleanup;
    }

    /* Materialise straight into our buffer (room for the RGB expansion). */
    size_t npix = (size_t)npix64, nbytes;
    if (!ram_mul_ok(npix, nb > 3 ? (size_t)nb : 3, &nbytes)) {
        rc = ram_fail(err, RAM_ERR_TOO_BIG, "image: %dx%d does not fit in memory", iw, ih);
        goto cleanup;
    }
    buf = ram_malloc(nbytes);
    if (!buf) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "image: out of memory for %dx%d pixels", iw, ih);
        goto cleanup;
    }
    mem = vips_image_new_from_memory(buf, npix * (size_t)nb, iw, ih, nb, VIPS_FORMAT_UCHAR);
    if (!mem) goto vips_error;
    if (vips_image_write(x, mem)) {
        rc = ram_image_vips_fail(err, RAM_ERR_IMAGE, "image: cannot decode");
        goto cleanup;
    }

    if (is_gif && nb == 4) {
        uint8_t tc[3];
        if (gif_transparent_colour(data, n, tc)) {
            for (size_t i = 0; i < npix; i++) {
                uint8_t *p = buf + 4 * i;
                if (p[3] == 0) memcpy(p, tc, 3);
            }
        }
    }
    to_rgb_in_place(buf, npix, nb, cmyk);

    int ow = iw, oh = ih;
    if (orientation != 1) {
        if (orient_rgb(buf, iw, ih, orientation, &rot, &ow, &oh)) {
            rc = ram_fail(err, RAM_ERR_NOMEM, "image: out of memory for %dx%d pixels", iw, ih);
            goto cleanup;
        }
        ram_free(buf);
        buf = rot;
        rot = 0;
    }
    *rgb = buf;
    buf = 0;
    *w = ow;
    *h = oh;
    goto cleanup;

vips_error:
    rc = ram_image_vips_fail(err, RAM_ERR_IMAGE, "image: cannot convert");
cleanup:
    if (mem) g_object_unref(mem);
    for (int i = 7; i >= 0; i--)
        if (t[i]) g_object_unref(t[i]);
    if (in) g_object_unref(in);
    ram_free(rot);
    ram_free(buf);
    return rc;
}

/* ------------------------------------------------------------ resize */

#define RESIZE_BITS 22 /* fractional bits of the fixed-point weights (Pillow's PRECISION_BITS) */

/* Filter taps of one axis: output i reads in[first[i] .. first[i]+count[i])
** with weights k[i*ksize ...]. */
struct taps {
    int ksize;
    int *first; /* ram_malloc'd, out entries */
    int *count; /* ram_malloc'd, out entries */
    int32_t *k; /* ram_malloc'd, out * ksize entries */
};

static void taps_free(struct taps *t)
{
    ram_free(t->first);
    ram_free(t->count);
    ram_free(t->k);
    memset(t, 0, sizeof *t);
}

static double triangle(double x)
{
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

static ram_status taps_init(int in, int out, struct taps *t)
{
    double *kd = 0;
    memset(t, 0, sizeof *t);
    double scale = (double)in / (double)out;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 1.0 * filterscale; /* the bilinear filter's support is 1 */
    /* The taps fit in [center - support, center + support + 1): at most
    ** 2*ceil(support)+1, and never more than the input. */
    double ks = ceil(support) * 2.0 + 1.0;
    int ksize = ks > (double)in + 1.0 ? in + 1 : (int)ks;
    size_t nk;
    if (!ram_mul_ok((size_t)out, (size_t)ksize, &nk)) return RAM_ERR_NOMEM;
    t->ksize = ksize;
    t->first = ram_malloc(sizeof(int) * (size_t)out);
    t->count = ram_malloc(sizeof(int) * (size_t)out);
    t->k = ram_calloc(nk, sizeof(int32_t));
    kd = ram_malloc(sizeof(double) * (size_t)ksize);
    if (!t->first || !t->count || !t->k || !kd) {
        ram_free(kd);
        taps_free(t);
        return RAM_ERR_NOMEM;
    }
    double ss = 1.0 / filterscale;
    for (int i = 0; i < out; i++) {
        double center = (i + 0.5) * scale;
        int lo = (int)(center - support + 0.5);
        int hi = (int)(center + support + 0.5);
        if (lo < 0) lo = 0;
        if (hi > in) hi = in;
        int cnt = hi - lo;
        if (cnt > ksize) cnt = ksize; /* cannot happen (see ksize); keeps writes in bounds */
        double sum = 0.0;
        for (int j = 0; j < cnt; j++) {
            double wgt = triangle(((double)(j + lo) - center + 0.5) * ss);
            kd[j] = wgt;
            sum += wgt;
        }
        int32_t *kk = t->k + (size_t)i * (size_t)ksize;
        for (int j = 0; j < cnt; j++) {
            double v = sum != 0.0 ? kd[j] / sum : kd[j];
            double f = v * (double)(1 << RESIZE_BITS);
            kk[j] = (int32_t)(v < 0.0 ? f - 0.5 : f + 0.5);
        }
        t->first[i] = lo;
        t->count[i] = cnt;
    }
    ram_free(kd);
    return RAM_OK;
}

static inline uint8_t clip_fixed(int64_t acc)
{
    int64_t v = acc >> RESIZE_BITS;
    return (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
}

/* src w x h -> dst ow x h. */
static void pass_horizontal(const uint8_t *src, int w, int h, uint8_t *dst, int ow, const struct taps *t)
{
    for (int y = 0; y < h; y++) {
        const uint8_t *row = src + (size_t)y * (size_t)w * 3;
        uint8_t *out = dst + (size_t)y * (size_t)ow * 3;
        for (int x = 0; x < ow; x++) {
            const int32_t *kk = t->k + (size_t)x * (size_t)t->ksize;
            const uint8_t *p = row + (size_t)t->first[x] * 3;
            int64_t a0 = 1 << (RESIZE_BITS - 1), a1 = a0, a2 = a0;
            for (int j = 0; j < t->count[x]; j++) {
                a0 += (int64_t)p[3 * j] * kk[j];
                a1 += (int64_t)p[3 * j + 1] * kk[j];
                a2 += (int64_t)p[3 * j + 2] * kk[j];
            }
            out[3 * x] = clip_fixed(a0);
            out[3 * x + 1] = clip_fixed(a1);
            out[3 * x + 2] = clip_fixed(a2);
        }
    }
}

/* src w x h -> dst w x oh. */
static void pass_vertical(const uint8_t *src, int w, uint8_t *dst, int oh, const struct taps *t)
{
    size_t stride = (size_t)w * 3;
    for (int y = 0; y < oh; y++) {
        const int32_t *kk = t->k + (size_t)y * (size_t)t->ksize;
        const uint8_t *base = src + (size_t)t->first[y] * stride;
        uint8_t *out = dst + (size_t)y * stride;
        for (size_t x = 0; x < stride; x++) {
            int64_t a = 1 << (RESIZE_BITS - 1);
            for (int j = 0; j < t->count[y]; j++) a += (int64_t)base[(size_t)j * stride + x] * kk[j];
            out[x] = clip_fixed(a);
        }
    }
}

ram_status ram_image_resize_bilinear(const uint8_t *src, int w, int h, uint8_t *dst, int ow, int oh)
{
    struct taps th = {0}, tv = {0};
    uint8_t *mid = 0; /* ram_malloc'd ow x h intermediate */
    ram_status rc = RAM_OK;
    if (!src || !dst || w <= 0 || h <= 0 || ow <= 0 || oh <= 0) return RAM_ERR_ARG;
    int need_h = ow != w, need_v = oh != h;
    if (!need_h && !need_v) {
        memcpy(dst, src, (size_t)w * (size_t)h * 3);
        return RAM_OK;
    }
    if (need_h && (rc = taps_init(w, ow, &th))) goto cleanup;
    if (need_v && (rc = taps_init(h, oh, &tv))) goto cleanup;
    if (need_h && need_v) {
        size_t n;
        if (!ram_mul_ok((size_t)ow * 3, (size_t)h, &n)) {
            rc = RAM_ERR_NOMEM;
            goto cleanup;
        }
        mid = ram_malloc(n);
        if (!mid) {
            rc = RAM_ERR_NOMEM;
            goto cleanup;
        }
        pass_horizontal(src, w, h, mid, ow, &th);
        pass_vertical(mid, ow, dst, oh, &tv);
    } else if (need_h) {
        pass_horizontal(src, w, h, dst, ow, &th);
    } else {
        pass_vertical(src, w, dst, oh, &tv);
    }
cleanup:
    ram_free(mid);
    taps_free(&tv);
    taps_free(&th);
    return rc;
}

/* ------------------------------------------------------------ normalise */

void ram_image_normalize(const uint8_t *rgb, int w, int h, float *chw)
{
    static const float mean[3] = {0.485f, 0.456f, 0.406f};
    static const float std[3] = {0.229f, 0.224f, 0.225f};
    float lut[3][256];
    for (int c = 0; c < 3; c++) {
        for (int v = 0; v < 256; v++) {
            float x = (float)v / 255.0f;
            x = x - mean[c];
            lut[c][v] = x / std[c];
        }
    }
    size_t npix = (size_t)w * (size_t)h;
    for (int c = 0; c < 3; c++) {
        float *plane = chw + (size_t)c * npix;
        for (size_t i = 0; i < npix; i++) plane[i] = lut[c][rgb[3 * i + (size_t)c]];
    }
}

/* ------------------------------------------------------------ public */

struct ram_image_params ram_image_default_params(void)
{
    struct ram_image_params p;
    memset(&p, 0, sizeof p);
    p.exif_rotate = 1;
    p.max_pixels = 100000000;
    return p;
}

ram_status ram_image_preprocess(const void *data, size_t n, int size, const struct ram_image_params *params, float *chw,
                                struct ram_error *err)
{
    uint8_t *rgb = 0;   /* ram_malloc'd decoded image */
    uint8_t *small = 0; /* ram_malloc'd size x size RGB */
    int w = 0, h = 0;
    ram_status rc;
    if (!chw) return ram_fail(err, RAM_ERR_ARG, "image: NULL output buffer");
    if (size <= 0 || size > RAM_IMAGE_MAX_SIZE)
        return ram_fail(err, RAM_ERR_ARG, "image: output size %d not in 1..%d", size, RAM_IMAGE_MAX_SIZE);
    if ((rc = ram_image_decode_rgb(data, n, params, &rgb, &w, &h, err))) return rc;
    small = ram_malloc((size_t)size * (size_t)size * 3);
    if (!small) {
        rc = ram_fail(err, RAM_ERR_NOMEM, "image: out of memory");
        goto cleanup;
    }
    if ((rc = ram_image_resize_bilinear(rgb, w, h, small, size, size))) {
        rc = ram_fail(err, rc, "image: out of memory resizing %dx%d to %dx%d", w, h, size, size);
        goto cleanup;
    }
    ram_image_normalize(small, size, size, chw);
cleanup:
    ram_free(small);
    ram_free(rgb);
    return rc;
}
