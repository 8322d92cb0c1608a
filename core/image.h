/*
** image.h — internal API of core/image.c (the image path: decode, RGB
** conversion, PIL-exact bilinear resize, ImageNet normalisation), exposed so
** that tests and ext/ram.c's ram_debug() can reach the steps one by one. The
** public entry point is ram_image_preprocess() in ram.h, which chains them:
**
**     uint8_t *rgb = 0; int w, h;
**     if (ram_image_decode_rgb(blob, n, 0, &rgb, &w, &h, &err)) return ...;
**     uint8_t *small = ram_malloc(3 * 384 * 384);
**     ram_image_resize_bilinear(rgb, w, h, small, 384, 384);
**     ram_image_normalize(small, 384, 384, chw);
**     ram_free(small); ram_free(rgb);
**
** Every function is thread-safe (several threads may decode at once).
*/
#ifndef RAM_IMAGE_H
#define RAM_IMAGE_H

#include "internal.h"

/* Largest side accepted by ram_image_preprocess() for its output size. */
#define RAM_IMAGE_MAX_SIZE 8192

/* Decodes encoded image bytes (JPEG, PNG, WebP, GIF first frame, TIFF first
** page, HEIF/AVIF) into 8-bit RGB, rows top to bottom, 3 bytes per pixel, as
** PIL's Image.open(...).convert('RGB') does (details in image.c). params may
** be NULL for the defaults (EXIF orientation applied, 100 M pixel limit).
** On success *rgb owns w*h*3 bytes (caller frees with ram_free) and *w, *h
** are the dimensions after orientation. On failure *rgb is NULL and err
** holds the reason: RAM_ERR_IMAGE (not an image, unsupported or corrupt),
** RAM_ERR_TOO_BIG (over params->max_pixels, refused from the header before
** any pixel is decoded) or RAM_ERR_NOMEM. data is only read during the call. */
ram_status ram_image_decode_rgb(const void *data, size_t n, const struct ram_image_params *params, uint8_t **rgb,
                                int *w, int *h, struct ram_error *err);

/* Resizes an interleaved 8-bit RGB image of w x h pixels to ow x oh with
** Pillow's Image.resize(BILINEAR) arithmetic, bit for bit (antialiased
** triangle filter, horizontal pass then vertical, 22-bit fixed point, uint8
** between the passes; a pass is skipped when its size is unchanged). src and
** dst are borrowed (dst holds ow*oh*3 bytes and must not overlap src).
** Returns RAM_ERR_ARG for a non-positive size and RAM_ERR_NOMEM when its
** scratch (coefficients, the ow x h intermediate) cannot be allocated. */
ram_status ram_image_resize_bilinear(const uint8_t *src, int w, int h, uint8_t *dst, int ow, int oh);

/* torchvision ToTensor + Normalize(ImageNet mean, std) of an interleaved RGB
** image: chw (3*w*h floats, caller's buffer) receives channel planes of
** (v/255 - mean[c]) / std[c], each step rounded to float32 as torch does. */
void ram_image_normalize(const uint8_t *rgb, int w, int h, float *chw);

/* Runtime libvips version, e.g. "8.14.1" (static string). */
const char *ram_image_vips_version(void);

/* The image formats accepted and built into this libvips, space-separated
** libvips loader names: "jpeg png webp gif tiff heif" at most (static
** string; "" if libvips cannot be initialised). For ram_debug() and for
** tests that skip what is not built in. */
const char *ram_image_formats(void);

/* 1 when libvips' loader nickname ("pngload_buffer") is one of the formats
** accepted here (ram_image_formats()). For thumbnail.c and exif.c, which
** open headers themselves. */
int ram_image_loader_accepted(const char *loader);

/* Fails with code and "what: <libvips' message>": only the last line of
** libvips' process-wide error buffer, the one of the call that just failed
** (other threads append to it too). Shared by image.c and thumbnail.c. */
ram_status ram_image_vips_fail(struct ram_error *err, ram_status code, const char *what);

#endif /* RAM_IMAGE_H */
