/*
** test_image.c — tests of core/image.c: decoding every supported kind of
** image to PIL's convert('RGB'), the PIL-exact bilinear resize and the
** normalisation against the official golden tensors, EXIF orientation
** against vips_autorot, errors for corrupt/foreign/oversized input, the
** decompression-bomb refusal, out-of-memory paths and concurrent use.
** Test images: tests/data/golden/images (official) and tests/data/images
** (made by tests/data/images/make_images.sh, which documents each one).
*/
#include "harness.h"
#include "image.h"

#include <pthread.h>
#include <time.h>

#include <vips/vips.h>

/* LeakSanitizer hook (used only in sanitizer builds): libdav1d, the AV1
** decoder under libheif, leaks 40 bytes on some corrupt AVIF streams that the
** mutation test feeds it. Not our memory; everything else stays checked. */
const char *__lsan_default_suppressions(void);
const char *__lsan_default_suppressions(void) { return "leak:libdav1d.so\n"; }

/* The pattern tests/data/images/make_images.sh writes. */
static int pat(int x, int y, int c) { return (x * 29 + y * 47 + c * 85 + ((x ^ y) & 7) * 13) & 255; }

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

/* Decodes tests/data/<rel> with params (NULL = defaults). */
static ram_status decode_file(const char *rel, const struct ram_image_params *params, uint8_t **rgb, int *w, int *h,
                              struct ram_error *err)
{
    size_t n = 0;
    void *blob = read_file(data_path(rel), &n);
    if (!blob) {
        snprintf(err->msg, sizeof err->msg, "cannot read %s", rel);
        *rgb = 0;
        return RAM_ERR_IO;
    }
    ram_status rc = ram_image_decode_rgb(blob, n, params, rgb, w, h, err);
    free(blob);
    return rc;
}

/* ------------------------------------------------------------ golden */

static const char *const golden_images[4] = {"golden/images/img0.jpg", "golden/images/img1.png",
                                             "golden/images/img2.jpg", "golden/images/img3.png"};

static void test_golden(void)
{
    char name[128], path[256];
    for (int i = 0; i < 4; i++) {
        struct ram_error err = {{0}};
        struct npy dec, res, inp;
        snprintf(path, sizeof path, "golden/preprocess/img%d_decoded_u8.npy", i);
        int ok1 = npy_load(data_path(path), &dec);
        snprintf(path, sizeof path, "golden/preprocess/img%d_resized_u8.npy", i);
        int ok2 = npy_load(data_path(path), &res);
        snprintf(path, sizeof path, "golden/preprocess/img%d_input.npy", i);
        int ok3 = npy_load(data_path(path), &inp);
        snprintf(name, sizeof name, "golden img%d: npy files load", i);
        check(ok1 && ok2 && ok3 && dec.ndim == 3 && res.ndim == 3 && inp.ndim == 4, name,
              "cannot read the golden preprocess files");
        if (!(ok1 && ok2 && ok3 && dec.ndim == 3 && res.ndim == 3 && inp.ndim == 4)) goto next;
        int gh = (int)dec.shape[0], gw = (int)dec.shape[1];
        int oh = (int)res.shape[0], ow = (int)res.shape[1];

        /* Decode (our libvips path) vs PIL's decode + convert('RGB'). */
        uint8_t *rgb = 0;
        int w = 0, h = 0;
        struct ram_image_params p = ram_image_default_params();
        p.exif_rotate = 0;
        ram_status rc = decode_file(golden_images[i], &p, &rgb, &w, &h, &err);
        snprintf(name, sizeof name, "golden img%d: decodes to %dx%d", i, gw, gh);
        check(rc == RAM_OK && w == gw && h == gh, name, "rc %d (%s), %dx%d", rc, err.msg, w, h);
        if (rc == RAM_OK && w == gw && h == gh) {
            size_t n = (size_t)w * h * 3, ndiff = 0;
            int maxd = 0;
            for (size_t k = 0; k < n; k++) {
                int d = abs((int)rgb[k] - (int)dec.data[k]);
                if (d) ndiff++;
                if (d > maxd) maxd = d;
            }
            printf("  img%d decode vs PIL: max diff %d, %zu of %zu values differ\n", i, maxd, ndiff, n);
            snprintf(name, sizeof name, "golden img%d: decoded RGB identical to PIL", i);
            check(maxd == 0, name, "max diff %d, %zu values differ", maxd, ndiff);
        }
        ram_free(rgb);

        /* Resize of the golden decoded pixels: bit-exact with Pillow. */
        uint8_t *src = malloc((size_t)gw * gh * 3), *dst = malloc((size_t)ow * oh * 3);
        for (size_t k = 0; k < (size_t)gw * gh * 3; k++) src[k] = (uint8_t)dec.data[k];
        rc = ram_image_resize_bilinear(src, gw, gh, dst, ow, oh);
        size_t nbad = 0;
        for (size_t k = 0; k < (size_t)ow * oh * 3; k++) nbad += dst[k] != (uint8_t)res.data[k];
        snprintf(name, sizeof name, "golden img%d: resize %dx%d -> %dx%d bit-exact", i, gw, gh, ow, oh);
        check(rc == RAM_OK && nbad == 0, name, "rc %d, %zu of %d values differ", rc, nbad, ow * oh * 3);

        /* Normalisation of the golden resized pixels. */
        float *chw = malloc(sizeof(float) * 3 * ow * oh);
        for (size_t k = 0; k < (size_t)ow * oh * 3; k++) dst[k] = (uint8_t)res.data[k];
        ram_image_normalize(dst, ow, oh, chw);
        snprintf(name, sizeof name, "golden img%d: normalize within 1e-6", i);
        check(max_abs_diff(chw, inp.data, inp.n) <= 1e-6, name, "max abs %.3g", max_abs_diff(chw, inp.data, inp.n));

        /* The whole public path from the file's bytes. */
        size_t n = 0;
        void *blob = read_file(data_path(golden_images[i]), &n);
        memset(chw, 0, sizeof(float) * 3 * ow * oh);
        rc = ram_image_preprocess(blob, n, ow, NULL, chw, &err);
        snprintf(name, sizeof name, "golden img%d: ram_image_preprocess succeeds", i);
        check(rc == RAM_OK && oh == ow, name, "rc %d (%s)", rc, err.msg);
        snprintf(name, sizeof name, "golden img%d: ram_image_preprocess within 1e-6", i);
        snprintf(path, sizeof path, "golden/preprocess/img%d_input.npy", i);
        check_close_npy(name, chw, (size_t)3 * ow * oh, data_path(path), 1e-6);
        free(blob);
        free(chw);
        free(src);
        free(dst);
    next:
        npy_free(&dec);
        npy_free(&res);
        npy_free(&inp);
    }
}

/* ------------------------------------------------------------ resize properties */

static void test_resize_properties(void)
{
    /* A constant image stays constant at any scale: the weights sum to 1. */
    int sizes[][4] = {{1, 1, 7, 5},     {300, 200, 13, 384}, {97, 131, 128, 128}, {5, 3, 1, 1},
                      {1000, 2, 3, 17}, {2, 1000, 384, 384}, {384, 384, 384, 100}};
    int ok = 1;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int w = sizes[s][0], h = sizes[s][1], ow = sizes[s][2], oh = sizes[s][3];
        uint8_t *src = malloc((size_t)w * h * 3), *dst = malloc((size_t)ow * oh * 3);
        for (size_t k = 0; k < (size_t)w * h; k++) {
            src[3 * k] = 0;
            src[3 * k + 1] = 137;
            src[3 * k + 2] = 255;
        }
        if (ram_image_resize_bilinear(src, w, h, dst, ow, oh)) ok = 0;
        for (size_t k = 0; k < (size_t)ow * oh; k++)
            if (dst[3 * k] != 0 || dst[3 * k + 1] != 137 || dst[3 * k + 2] != 255) ok = 0;
        free(src);
        free(dst);
    }
    check(ok, "resize: a constant image stays constant at every scale", "a value moved");

    /* Two passes = horizontal-only call followed by vertical-only call (each
    ** pass rounds to uint8, a skipped pass is a copy). */
    int w = 97, h = 131, ow = 61, oh = 200;
    uint8_t *src = malloc((size_t)w * h * 3), *mid = malloc((size_t)ow * h * 3);
    uint8_t *a = malloc((size_t)ow * oh * 3), *b = malloc((size_t)ow * oh * 3);
    for (int y = 0; y < h; y++)
        for (int x = 0; x < w; x++)
            for (int c = 0; c < 3; c++) src[(y * w + x) * 3 + c] = (uint8_t)pat(x, y, c);
    int rc1 = ram_image_resize_bilinear(src, w, h, a, ow, oh);
    int rc2 = ram_image_resize_bilinear(src, w, h, mid, ow, h);
    int rc3 = ram_image_resize_bilinear(mid, ow, h, b, ow, oh);
    check(!rc1 && !rc2 && !rc3 && !memcmp(a, b, (size_t)ow * oh * 3),
          "resize: horizontal pass first, rounded, then vertical", "results differ");
    uint8_t *same = malloc((size_t)w * h * 3);
    rc1 = ram_image_resize_bilinear(src, w, h, same, w, h);
    check(!rc1 && !memcmp(same, src, (size_t)w * h * 3), "resize: same size is a copy", "differs");
    free(same);
    /* Upscaling 1 pixel wide: plain copy along that axis (support 1). */
    uint8_t one[3] = {10, 20, 30}, up[3 * 4 * 3];
    rc1 = ram_image_resize_bilinear(one, 1, 1, up, 4, 3);
    int up_ok = !rc1;
    for (int k = 0; k < 12; k++) up_ok &= up[3 * k] == 10 && up[3 * k + 1] == 20 && up[3 * k + 2] == 30;
    check(up_ok, "resize: 1x1 -> 4x3 replicates the pixel", "rc %d", rc1);
    check(ram_image_resize_bilinear(src, 0, h, a, ow, oh) == RAM_ERR_ARG &&
              ram_image_resize_bilinear(src, w, h, a, ow, -1) == RAM_ERR_ARG,
          "resize: non-positive size -> RAM_ERR_ARG", "accepted");
    /* Out of memory: every allocation failing is reported, never a crash. */
    int nomem_ok = 1;
    for (long k = 0; k < 8; k++) {
        ram_alloc_fail_after(k);
        int rc = ram_image_resize_bilinear(src, w, h, a, ow, oh);
        ram_alloc_fail_after(-1);
        if (rc != RAM_OK && rc != RAM_ERR_NOMEM) nomem_ok = 0;
        if (k == 0 && rc != RAM_ERR_NOMEM) nomem_ok = 0;
    }
    check(nomem_ok, "resize: allocation failures give RAM_ERR_NOMEM", "unexpected status");
    free(src);
    free(mid);
    free(a);
    free(b);
}

static void test_normalize(void)
{
    uint8_t px[6] = {0, 128, 255, 255, 0, 1};
    float chw[6];
    ram_image_normalize(px, 2, 1, chw);
    float e0 = (0.0f / 255.0f - 0.485f) / 0.229f;
    float e1 = (255.0f / 255.0f - 0.485f) / 0.229f;
    float e3 = (128.0f / 255.0f - 0.456f) / 0.224f;
    float e5 = (1.0f / 255.0f - 0.406f) / 0.225f;
    check(chw[0] == e0 && chw[1] == e1 && chw[2] == e3 && chw[5] == e5, "normalize: planar CHW, (v/255 - mean)/std",
          "%g %g %g %g", chw[0], chw[1], chw[2], chw[5]);
}

/* ------------------------------------------------------------ formats */

typedef void (*expect_fn)(int x, int y, uint8_t out[3]);

static void exp_ga(int x, int y, uint8_t o[3]) { o[0] = o[1] = o[2] = (uint8_t)pat(x, y, 0); }
static void exp_pal(int x, int y, uint8_t o[3])
{
    int i = (x * 3 + y * 5) % 40;
    o[0] = (uint8_t)pat(i, 0, 0), o[1] = (uint8_t)pat(i, 1, 1), o[2] = (uint8_t)pat(i, 2, 2);
}
static void exp_pal4(int x, int y, uint8_t o[3])
{
    int i = (x + y * 7) % 16;
    o[0] = (uint8_t)pat(i, 3, 0), o[1] = (uint8_t)pat(i, 4, 1), o[2] = (uint8_t)pat(i, 5, 2);
}
static void exp_grey1(int x, int y, uint8_t o[3]) { o[0] = o[1] = o[2] = (x + y * 3) % 5 < 2 ? 255 : 0; }
static void exp_rgb(int x, int y, uint8_t o[3])
{
    for (int c = 0; c < 3; c++) o[c] = (uint8_t)pat(x, y, c);
}
static void exp_gif(int x, int y, uint8_t o[3])
{
    int i = (x * 7 + y * 3) % 64; /* index 5 is transparent: its palette colour, as PIL */
    o[0] = (uint8_t)pat(i, 6, 0), o[1] = (uint8_t)pat(i, 7, 1), o[2] = (uint8_t)pat(i, 8, 2);
}
static void exp_solid(int x, int y, uint8_t o[3])
{
    (void)x, (void)y;
    o[0] = 12, o[1] = 34, o[2] = 56;
}
static void exp_cmyk(int x, int y, uint8_t o[3])
{
    /* Pillow's CMYK -> RGB of the 8 blocks (computed by hand, see image.c). */
    static const uint8_t want[8][3] = {{255, 255, 255}, {0, 255, 255},   {255, 0, 255},  {255, 255, 0},
                                       {0, 0, 0},       {119, 179, 209}, {197, 44, 133}, {0, 0, 0}};
    memcpy(o, want[(y / 8) * 4 + x / 8], 3);
}
static void exp_grad(int x, int y, uint8_t o[3]) { o[0] = (uint8_t)(x * 10), o[1] = (uint8_t)(y * 15), o[2] = 128; }

static void check_format(const char *rel, int ew, int eh, expect_fn fn, int max_tol, double mean_tol)
{
    char name[160];
    const char *ext = strrchr(rel, '.') + 1;
    const char *loader = !strcmp(ext, "jpg")    ? "jpeg"
                         : !strcmp(ext, "tif")  ? "tiff"
                         : !strcmp(ext, "avif") ? "heif"
                                                : ext;
    if (!strstr(ram_image_formats(), loader)) {
        printf("SKIP: format %s: this libvips has no %s loader\n", rel, loader);
        return;
    }
    struct ram_error err = {{0}};
    uint8_t *rgb = 0;
    int w = 0, h = 0;
    ram_status rc = decode_file(rel, NULL, &rgb, &w, &h, &err);
    snprintf(name, sizeof name, "format %s: decodes to %dx%d RGB as PIL", rel, ew, eh);
    if (rc != RAM_OK || w != ew || h != eh) {
        check(0, name, "rc %d (%s), %dx%d", rc, err.msg, w, h);
        ram_free(rgb);
        return;
    }
    int maxd = 0;
    double sum = 0;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            uint8_t e[3];
            fn(x, y, e);
            for (int c = 0; c < 3; c++) {
                int d = abs((int)rgb[(y * w + x) * 3 + c] - (int)e[c]);
                sum += d;
                if (d > maxd) maxd = d;
            }
        }
    }
    double mean = sum / (3.0 * w * h);
    check(maxd <= max_tol && mean <= mean_tol, name, "max diff %d (tol %d), mean %.3f (tol %.3f)", maxd, max_tol, mean,
          mean_tol);
    ram_free(rgb);
}

static void test_formats(void)
{
    check_format("images/ga.png", 23, 17, exp_ga, 0, 0);
    check_format("images/pal.png", 25, 19, exp_pal, 0, 0);
    check_format("images/pal4.png", 13, 9, exp_pal4, 0, 0);
    check_format("images/grey1.png", 19, 11, exp_grey1, 0, 0);
    check_format("images/grey16.png", 21, 13, exp_ga, 0, 0); /* high byte = pat(x,y,0) */
    check_format("images/rgb16.png", 21, 13, exp_rgb, 0, 0);
    check_format("images/pal.gif", 27, 15, exp_gif, 0, 0);
    check_format("images/rgb.webp", 31, 23, exp_rgb, 0, 0);
    check_format("images/solid.webp", 40, 30, exp_solid, 0, 0);
    check_format("images/cmyk.tif", 32, 16, exp_cmyk, 0, 0);
    check_format("images/cmyk.jpg", 32, 16, exp_cmyk, 3, 1.0);
    check_format("images/rgb.avif", 24, 16, exp_grad, 24, 4.0); /* lossy AV1, 4:2:0 */
}

/* ------------------------------------------------------------ EXIF orientation */

/* Reference: libvips' own vips_autorot of the same file. */
static int autorot_reference(const void *blob, size_t n, uint8_t **px, int *w, int *h)
{
    VipsImage *in = vips_image_new_from_buffer(blob, n, "", NULL), *rot = 0;
    int ok = 0;
    if (in && !vips_autorot(in, &rot, NULL) && rot->Bands == 3) {
        size_t len = 0;
        *px = vips_image_write_to_memory(rot, &len);
        *w = rot->Xsize;
        *h = rot->Ysize;
        ok = *px && len == (size_t)*w * *h * 3;
    }
    if (rot) g_object_unref(rot);
    if (in) g_object_unref(in);
    vips_error_clear();
    return ok;
}

static void test_orientation(void)
{
    char rel[64], name[128];
    uint8_t *upright = 0;
    int uw = 0, uh = 0;
    struct ram_error err = {{0}};
    struct ram_image_params off = ram_image_default_params();
    off.exif_rotate = 0;
    ram_status rc0 = decode_file("images/orient1.jpg", NULL, &upright, &uw, &uh, &err);
    for (int o = 1; o <= 8; o++) {
        snprintf(rel, sizeof rel, "images/orient%d.jpg", o);
        size_t n = 0;
        void *blob = read_file(data_path(rel), &n);
        uint8_t *got = 0, *raw = 0, *ref = 0;
        int w = 0, h = 0, rw = 0, rh = 0, fw = 0, fh = 0;
        ram_status rc = blob ? ram_image_decode_rgb(blob, n, NULL, &got, &w, &h, &err) : RAM_ERR_IO;
        int have_ref = blob && autorot_reference(blob, n, &ref, &rw, &rh);
        snprintf(name, sizeof name, "exif orientation %d: same pixels as vips_autorot", o);
        check(rc == RAM_OK && have_ref && w == rw && h == rh && !memcmp(got, ref, (size_t)w * h * 3), name,
              "rc %d (%s), %dx%d vs %dx%d", rc, err.msg, w, h, rw, rh);
        rc = blob ? ram_image_decode_rgb(blob, n, &off, &raw, &fw, &fh, &err) : RAM_ERR_IO;
        snprintf(name, sizeof name, "exif orientation %d: ignored with exif_rotate=0", o);
        check(rc == RAM_OK && rc0 == RAM_OK && fw == uw && fh == uh && !memcmp(raw, upright, (size_t)uw * uh * 3), name,
              "rc %d (%s), %dx%d", rc, err.msg, fw, fh);
        if (o == 6 && got && raw) {
            /* Rotated 90 degrees clockwise: output (x, y) = stored (y, H-1-x). */
            int ok = w == fh && h == fw;
            for (int y = 0; ok && y < h; y++)
                for (int x = 0; ok && x < w; x++)
                    ok = !memcmp(got + ((size_t)y * w + x) * 3, raw + ((size_t)(fh - 1 - x) * fw + y) * 3, 3);
            check(ok, "exif orientation 6: rotated 90 degrees clockwise by default", "%dx%d", w, h);
        }
        ram_free(got);
        ram_free(raw);
        g_free(ref);
        free(blob);
    }
    ram_free(upright);
}

/* ------------------------------------------------------------ errors */

static void expect_error(const char *name, const void *blob, size_t n, const struct ram_image_params *p,
                         ram_status want, const char *needle)
{
    struct ram_error err = {{0}};
    uint8_t *rgb = (uint8_t *)1;
    int w = 0, h = 0;
    ram_status rc = ram_image_decode_rgb(blob, n, p, &rgb, &w, &h, &err);
    check(rc == want && rgb == NULL && err.msg[0] && (!needle || strstr(err.msg, needle)), name,
          "rc %d (want %d), msg '%s'", rc, want, err.msg);
    if (rc == RAM_OK) ram_free(rgb);
}

static void test_errors(void)
{
    size_t n0 = 0, n1 = 0;
    unsigned char *jpg = read_file(data_path("golden/images/img0.jpg"), &n0);
    unsigned char *png = read_file(data_path("golden/images/img1.png"), &n1);
    if (!jpg || !png) {
        check(0, "errors: golden images readable", "missing");
        free(jpg);
        free(png);
        return;
    }
    expect_error("error: truncated JPEG -> RAM_ERR_IMAGE", jpg, n0 / 2, NULL, RAM_ERR_IMAGE, "decode");
    expect_error("error: JPEG cut inside its header -> RAM_ERR_IMAGE", jpg, 300, NULL, RAM_ERR_IMAGE, NULL);
    expect_error("error: truncated PNG -> RAM_ERR_IMAGE", png, n1 / 2, NULL, RAM_ERR_IMAGE, "decode");
    /* PNG with a corrupted IDAT byte: CRC mismatch / bad deflate data. */
    unsigned char *bad = malloc(n1);
    memcpy(bad, png, n1);
    for (size_t i = n1 / 2; i < n1 / 2 + 16; i++) bad[i] ^= 0x5a;
    expect_error("error: PNG with corrupt data -> RAM_ERR_IMAGE", bad, n1, NULL, RAM_ERR_IMAGE, NULL);
    free(bad);

    /* A decoder warning is not an error: 3 stray bytes before EOI give libjpeg's
    ** "Corrupt JPEG data: 3 extraneous bytes before marker 0xd9" warning;
    ** PIL accepts such files too. */
    if (n0 > 4 && jpg[n0 - 2] == 0xFF && jpg[n0 - 1] == 0xD9) {
        unsigned char *extra = malloc(n0 + 3);
        memcpy(extra, jpg, n0 - 2);
        memcpy(extra + n0 - 2, "\x11\x22\x33\xff\xd9", 5);
        struct ram_error e1 = {{0}}, e2 = {{0}};
        uint8_t *a = 0, *b = 0;
        int aw = 0, ah = 0, bw = 0, bh = 0;
        ram_status r1 = ram_image_decode_rgb(jpg, n0, NULL, &a, &aw, &ah, &e1);
        ram_status r2 = ram_image_decode_rgb(extra, n0 + 3, NULL, &b, &bw, &bh, &e2);
        check(r1 == RAM_OK && r2 == RAM_OK && aw == bw && ah == bh && !memcmp(a, b, (size_t)aw * ah * 3),
              "warning: JPEG with extraneous bytes before EOI decodes", "rc %d (%s)", r2, e2.msg);
        ram_free(a);
        ram_free(b);
        free(extra);
    } else {
        check(0, "warning: JPEG with extraneous bytes before EOI decodes", "img0.jpg does not end with EOI");
    }

    unsigned char rnd[4096];
    uint32_t s = 12345;
    for (size_t i = 0; i < sizeof rnd; i++) {
        s = s * 1103515245u + 12345u;
        rnd[i] = (unsigned char)(s >> 16);
    }
    expect_error("error: random bytes -> RAM_ERR_IMAGE", rnd, sizeof rnd, NULL, RAM_ERR_IMAGE, "image:");
    expect_error("error: empty blob -> RAM_ERR_IMAGE", "", 0, NULL, RAM_ERR_IMAGE, "empty");
    const char *text = "this is a text, not an image\n";
    expect_error("error: text -> RAM_ERR_IMAGE", text, strlen(text), NULL, RAM_ERR_IMAGE, "format");
    const char *svg = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"10\" height=\"10\"></svg>";
    expect_error("error: SVG (untrusted loader) refused", svg, strlen(svg), NULL, RAM_ERR_IMAGE, "svg");
    const char *pdf = "%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n";
    expect_error("error: PDF refused", pdf, strlen(pdf), NULL, RAM_ERR_IMAGE, NULL);

    /* A PNG header declaring 0x0 (invalid IHDR). */
    static const unsigned char zero_png[] = {
        0x89, 'P', 'N', 'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 'I', 'H', 'D', 'R', 0,   0,   0, 0, 0, 0, 0,
        0,    8,   2,   0,   0,    0,    0,    0,    0, 0, 0, 0,  0,   0,   'I', 'E', 'N', 'D', 0, 0, 0, 0};
    expect_error("error: zero-sized PNG -> RAM_ERR_IMAGE", zero_png, sizeof zero_png, NULL, RAM_ERR_IMAGE, NULL);

    /* max_pixels: 300x200 = 60000 pixels. */
    struct ram_image_params p = ram_image_default_params();
    p.max_pixels = 59999;
    expect_error("limit: max_pixels 59999 refuses 300x200", jpg, n0, &p, RAM_ERR_TOO_BIG, "300x200");
    struct ram_error err = {{0}};
    uint8_t *rgb = 0;
    int w, h;
    p.max_pixels = 60000;
    ram_status rc = ram_image_decode_rgb(jpg, n0, &p, &rgb, &w, &h, &err);
    check(rc == RAM_OK && w == 300 && h == 200, "limit: max_pixels 60000 accepts 300x200", "rc %d (%s)", rc, err.msg);
    ram_free(rgb);

    /* Arguments of the public entry point. */
    float chw[3];
    check(ram_image_preprocess(jpg, n0, 0, NULL, chw, &err) == RAM_ERR_ARG, "preprocess: size 0 -> RAM_ERR_ARG", "%s",
          err.msg);
    check(ram_image_preprocess(jpg, n0, 128, NULL, NULL, &err) == RAM_ERR_ARG, "preprocess: NULL output -> RAM_ERR_ARG",
          "%s", err.msg);
    check(ram_image_preprocess(NULL, 10, 1, NULL, chw, &err) == RAM_ERR_ARG, "preprocess: NULL data -> RAM_ERR_ARG",
          "%s", err.msg);
    rc = ram_image_preprocess(text, strlen(text), 1, NULL, chw, &err);
    check(rc == RAM_ERR_IMAGE, "preprocess: text -> RAM_ERR_IMAGE", "rc %d", rc);

    /* Out of memory at every allocation of a decode + preprocess. */
    int nomem_ok = 1, reached_ok = 0;
    for (long k = 0; k < 16 && !reached_ok; k++) {
        float *out = malloc(sizeof(float) * 3 * 32 * 32);
        ram_alloc_fail_after(k);
        rc = ram_image_preprocess(jpg, n0, 32, NULL, out, &err);
        ram_alloc_fail_after(-1);
        if (rc == RAM_OK)
            reached_ok = 1;
        else if (rc != RAM_ERR_NOMEM)
            nomem_ok = 0;
        free(out);
    }
    check(nomem_ok && reached_ok, "preprocess: every allocation failure gives RAM_ERR_NOMEM", "nomem_ok %d ok %d",
          nomem_ok, reached_ok);
    free(jpg);
    free(png);
}

/* ------------------------------------------------------------ bombs */

static void test_bombs(void)
{
    const char *files[2] = {"images/bomb.png", "images/bomb.webp"};
    const char *dims[2] = {"30000x30000", "16383x16383"};
    for (int i = 0; i < 2; i++) {
        char name[128];
        size_t n = 0;
        void *blob = read_file(data_path(files[i]), &n);
        struct ram_error err = {{0}};
        uint8_t *rgb = 0;
        int w, h;
        /* Every core allocation fails: the refusal must come before any. */
        ram_alloc_fail_after(0);
        double t0 = now_s();
        ram_status rc = blob ? ram_image_decode_rgb(blob, n, NULL, &rgb, &w, &h, &err) : RAM_ERR_IO;
        double dt = now_s() - t0;
        ram_alloc_fail_after(-1);
        snprintf(name, sizeof name, "bomb %s (%zu bytes): RAM_ERR_TOO_BIG from the header, no allocation", files[i], n);
        check(rc == RAM_ERR_TOO_BIG && strstr(err.msg, dims[i]) && strstr(err.msg, "100000000") && dt < 2.0, name,
              "rc %d, '%s', %.2f s", rc, err.msg, dt);
        float chw[3 * 4 * 4];
        rc = blob ? ram_image_preprocess(blob, n, 4, NULL, chw, &err) : RAM_ERR_IO;
        snprintf(name, sizeof name, "bomb %s: ram_image_preprocess refuses it", files[i]);
        check(rc == RAM_ERR_TOO_BIG, name, "rc %d", rc);
        free(blob);
    }
}

/* ------------------------------------------------------------ mutations */

/* Random byte flips, insertions of 0xFF and truncations of valid files of
** every format: the decoder must answer OK, IMAGE or TOO_BIG, never crash
** (ASan runs this too). The pixel limit is small so that a mutated header
** cannot make the test allocate much. */
static void test_mutations(void)
{
    static const char *const files[] = {"golden/images/img1.png", "images/pal.gif",  "images/rgb.webp",
                                        "images/orient6.jpg",     "images/cmyk.tif", "images/ga.png",
                                        "images/rgb16.png",       "images/rgb.avif", "images/solid.webp"};
    struct ram_image_params p = ram_image_default_params();
    p.max_pixels = 1 << 20;
    uint32_t s = 2024;
    int bad = 0, runs = 0, decoded = 0;
    for (size_t f = 0; f < sizeof files / sizeof files[0]; f++) {
        size_t n = 0;
        unsigned char *orig = read_file(data_path(files[f]), &n);
        if (!orig || n < 8) {
            bad++;
            free(orig);
            continue;
        }
        unsigned char *buf = malloc(n);
        for (int it = 0; it < 120; it++) {
            memcpy(buf, orig, n);
            size_t len = n;
            s = s * 1103515245u + 12345u;
            int nflip = 1 + (int)((s >> 16) % 4);
            for (int k = 0; k < nflip; k++) {
                s = s * 1103515245u + 12345u;
                size_t at = (s >> 8) % n;
                s = s * 1103515245u + 12345u;
                buf[at] = (s >> 20) & 1 ? (unsigned char)(s >> 12) : 0xFF;
            }
            s = s * 1103515245u + 12345u;
            if ((s >> 16) % 3 == 0) len = 1 + (s >> 8) % n;
            struct ram_error err = {{0}};
            uint8_t *rgb = 0;
            int w = 0, h = 0;
            ram_status rc = ram_image_decode_rgb(buf, len, &p, &rgb, &w, &h, &err);
            runs++;
            if (rc == RAM_OK) {
                decoded++;
                if (!rgb || w <= 0 || h <= 0 || (uint64_t)w * h > p.max_pixels)
                    bad++;
                else
                    rgb[(size_t)w * h * 3 - 1] ^= 1; /* the whole buffer is ours */
            } else if ((rc != RAM_ERR_IMAGE && rc != RAM_ERR_TOO_BIG) || rgb || !err.msg[0]) {
                bad++;
            }
            ram_free(rgb);
        }
        free(buf);
        free(orig);
    }
    check(bad == 0, "mutations: damaged files of every format give OK/IMAGE/TOO_BIG", "%d of %d bad", bad, runs);
    printf("  %d mutated files, %d still decoded\n", runs, decoded);
}

/* ------------------------------------------------------------ threads */

#define N_THREADS 4
#define OUT_SIZE 64

struct job {
    void *blob[4];
    size_t n[4];
    float *want[4];
    int ok;
};

static void *worker(void *arg)
{
    struct job *j = arg;
    float *out = malloc(sizeof(float) * 3 * OUT_SIZE * OUT_SIZE);
    j->ok = 1;
    for (int rep = 0; rep < 3; rep++) {
        for (int i = 0; i < 4; i++) {
            struct ram_error err;
            if (ram_image_preprocess(j->blob[i], j->n[i], OUT_SIZE, NULL, out, &err) ||
                memcmp(out, j->want[i], sizeof(float) * 3 * OUT_SIZE * OUT_SIZE))
                j->ok = 0;
        }
        /* errors from several threads at once */
        struct ram_error err;
        if (ram_image_preprocess(j->blob[0], j->n[0] / 2, OUT_SIZE, NULL, out, &err) != RAM_ERR_IMAGE) j->ok = 0;
    }
    free(out);
    return NULL;
}

static void test_threads(void)
{
    struct job jobs[N_THREADS];
    void *blob[4];
    size_t n[4];
    float *want[4];
    int ok = 1;
    for (int i = 0; i < 4; i++) {
        struct ram_error err;
        blob[i] = read_file(data_path(golden_images[i]), &n[i]);
        want[i] = malloc(sizeof(float) * 3 * OUT_SIZE * OUT_SIZE);
        if (!blob[i] || ram_image_preprocess(blob[i], n[i], OUT_SIZE, NULL, want[i], &err)) ok = 0;
    }
    pthread_t th[N_THREADS];
    for (int t = 0; t < N_THREADS; t++) {
        for (int i = 0; i < 4; i++) {
            jobs[t].blob[i] = blob[i];
            jobs[t].n[i] = n[i];
            jobs[t].want[i] = want[i];
        }
        if (pthread_create(&th[t], NULL, worker, &jobs[t])) ok = 0;
    }
    for (int t = 0; t < N_THREADS; t++) {
        pthread_join(th[t], NULL);
        if (!jobs[t].ok) ok = 0;
    }
    check(ok, "threads: 4 threads preprocessing at once give identical results", "a result differed");
    for (int i = 0; i < 4; i++) {
        free(blob[i]);
        free(want[i]);
    }
}

int main(void)
{
    const char *v = ram_image_vips_version();
    check(v && v[0] >= '8' && strchr(v, '.'), "ram_image_vips_version", "'%s'", v ? v : "(null)");
    struct ram_image_params d = ram_image_default_params();
    check(d.exif_rotate == 1 && d.max_pixels == 100000000, "default params", "%d %llu", d.exif_rotate,
          (unsigned long long)d.max_pixels);
    const char *f = ram_image_formats();
    check(strstr(f, "jpeg") && strstr(f, "png"), "ram_image_formats has jpeg and png", "'%s'", f);
    printf("  libvips %s, formats: %s\n", v, f);
    test_golden();
    test_resize_properties();
    test_normalize();
    test_formats();
    test_orientation();
    test_errors();
    test_bombs();
    test_mutations();
    test_threads();
    return harness_exit();
}
