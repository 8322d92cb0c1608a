/*
** fuzz_image.c — arbitrary bytes through ram_image_preprocess (libvips
** decode, RGB conversion, antialiased resize, normalisation).
** The pixel limit is lowered to 4 MP so the fuzzer spends its time in the
** parsers rather than resizing large valid images; the first input byte picks
** EXIF rotation and the output size.
*/
#include "fuzz.h"
#include "ram.h"

FUZZ_ENTRY(data, size)
{
    static float chw[3 * 64 * 64];
    struct ram_image_params p = ram_image_default_params();
    struct ram_error err;
    int out = 32;
    if (size > 0) {
        p.exif_rotate = data[0] & 1;
        out = (data[0] & 2) ? 64 : 17;
    }
    p.max_pixels = 4u << 20;
    ram_status rc = ram_image_preprocess(data, size, out, &p, chw, &err);
    if (rc != RAM_OK && err.msg[0] == 0) abort(); /* every failure names its cause */
    return 0;
}
