/*
** exif.c — capture date, camera and GPS position of a photo from its EXIF
** block (ram_exif_read in ram.h), for ram_index's taken/camera/latitude
** columns.
**
**     struct ram_exif x;
**     if (ram_exif_read(jpeg, n, &x, &err) == RAM_OK && x.taken[0]) puts(x.taken);
**
** HOW IT WORKS: libvips (through libexif) parses the EXIF block when it
** reads an image header and exposes each entry as a string field named
** "exif-ifd<N>-<Tag>" (ifd0: the image, ifd2: the Exif sub-IFD, ifd3: GPS),
** formatted "VALUE (READABLE, Format, N components, M bytes)"; rationals
** read "38/1 43/1 507/25". The header is opened with the loaders image.c
** accepts and nothing is decoded. EXIF is written by cameras, phones and
** editors of every quality, and by attackers: every value is validated and
** an implausible one is dropped (empty), never reported as an error, so a
** photo with broken metadata still indexes.
**
** The value is recovered from libvips' string as follows: for an ASCII
** entry libvips prints the text twice, "V (V, ASCII, ...)", so V is the
** first half when the halves agree (this keeps a model name holding " (");
** otherwise, or when libvips cut a long value short, V ends at the first
** " (". libvips gives "<invalid utf-8 string>" for text that is not UTF-8:
** such a value is absent.
*/
#include "image.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vips/vips.h>

/* Longest field string considered (libvips cuts its strings shorter). */
#define EXIF_MAX_FIELD 1024

/* The raw value of libvips' field string z into out (cap bytes, NUL
** terminated, possibly cut). */
static void field_value(const char *z, char *out, size_t cap)
{
    size_t n = strnlen(z, EXIF_MAX_FIELD);
    size_t len = n;
    const char *asc = 0;
    for (const char *q = z; (q = strstr(q, ", ASCII, ")) && (size_t)(q - z) < n; q++) asc = q;
    if (asc) {
        size_t r = (size_t)(asc - z); /* "V (V" */
        if (r >= 2 && (r - 2) % 2 == 0) {
            size_t h = (r - 2) / 2;
            if (!memcmp(z + h, " (", 2) && !memcmp(z, z + h + 2, h)) len = h;
        }
    }
    if (len == n) {
        const char *paren = strstr(z, " (");
        if (paren && (size_t)(paren - z) < n) len = (size_t)(paren - z);
    }
    if (len >= cap) len = cap - 1;
    memcpy(out, z, len);
    out[len] = 0;
}

/* Makes s valid UTF-8 without control characters ('?' for anything else),
** trims trailing spaces and cuts it to fit cap at a character boundary. */
static void clean_text(char *s, size_t cap)
{
    size_t n = strlen(s), o = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = (unsigned char)s[i];
        size_t w = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;
        int ok = w > 0 && i + w <= n;
        for (size_t k = 1; ok && k < w; k++) ok = ((unsigned char)s[i + k] & 0xc0) == 0x80;
        if (ok && w == 2 && c < 0xc2) ok = 0; /* overlong */
        if (ok && w == 1 && (c < 0x20 || c == 0x7f)) ok = 0;
        if (!ok) w = 1;
        if (o + (ok ? w : 1) >= cap) break;
        if (ok)
            memmove(s + o, s + i, w), o += w;
        else
            s[o++] = '?';
        i += w;
    }
    while (o > 0 && s[o - 1] == ' ') o--;
    s[o] = 0;
}

/* The cleaned text of field zName into out, or "" when absent. */
static void get_text(VipsImage *im, const char *zName, char *out, size_t cap)
{
    const char *z = 0;
    out[0] = 0;
    if (!vips_image_get_typeof(im, zName) || vips_image_get_string(im, zName, &z) || !z) {
        vips_error_clear();
        return;
    }
    /* libvips replaces a string that is not UTF-8 by this text */
    if (!strcmp(z, "<invalid utf-8 string>")) return;
    field_value(z, out, cap);
    clean_text(out, cap);
}

/* n digits at s as a number, or -1. */
static int digits(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

/* "YYYY:MM:DD HH:MM:SS" (':' or '-' between date parts, ' ' or 'T'
** before the time) into ISO 8601 "YYYY-MM-DDTHH:MM:SS"; 0 when the text is
** not a plausible date (cameras without a clock write 0000:00:00 00:00:00). */
static int parse_datetime(const char *z, char out[20])
{
    if (strlen(z) < 19) return 0;
    int Y = digits(z, 4), M = digits(z + 5, 2), D = digits(z + 8, 2);
    int h = digits(z + 11, 2), m = digits(z + 14, 2), s = digits(z + 17, 2);
    if ((z[4] != ':' && z[4] != '-') || z[7] != z[4] || (z[10] != ' ' && z[10] != 'T') || z[13] != ':' || z[16] != ':')
        return 0;
    if (Y < 1800 || Y > 9999 || M < 1 || M > 12 || D < 1 || D > 31 || h < 0 || h > 23 || m < 0 || m > 59 || s < 0 ||
        s > 60)
        return 0;
    snprintf(out, 20, "%04d-%02d-%02dT%02d:%02d:%02d", Y, M, D, h, m, s);
    return 1;
}

/* OffsetTimeOriginal "+HH:MM" / "-HH:MM" (at most 14 hours); 0 otherwise. */
static int parse_offset(const char *z, char out[7])
{
    if (strlen(z) != 6 || (z[0] != '+' && z[0] != '-') || z[3] != ':') return 0;
    int h = digits(z + 1, 2), m = digits(z + 4, 2);
    if (h < 0 || h > 14 || m < 0 || m > 59) return 0;
    memcpy(out, z, 7); /* checked: sign, two digits, ':', two digits, NUL */
    return 1;
}

/* "d/1 m/1 s/100" (degrees, minutes, seconds as rationals) into decimal
** degrees; 0 when malformed (zero denominator, missing parts). */
static int parse_dms(const char *z, double *pDeg)
{
    double part[3];
    const char *p = z;
    for (int i = 0; i < 3; i++) {
        char *end;
        while (*p == ' ') p++;
        if (*p < '0' || *p > '9') return 0;
        unsigned long long num = strtoull(p, &end, 10);
        if (*end != '/') return 0;
        p = end + 1;
        if (*p < '0' || *p > '9') return 0;
        unsigned long long den = strtoull(p, &end, 10);
        if (den == 0) return 0;
        p = end;
        part[i] = (double)num / (double)den;
    }
    if (part[1] >= 60 || part[2] >= 60) return 0;
    *pDeg = part[0] + part[1] / 60.0 + part[2] / 3600.0;
    return 1;
}

/* One coordinate: its rationals and its reference letter (N/S or E/W). */
static int get_coord(VipsImage *im, const char *zVal, const char *zRef, char pos, char neg, double limit, double *pOut)
{
    char v[128], r[8];
    get_text(im, zVal, v, sizeof v);
    get_text(im, zRef, r, sizeof r);
    double d;
    if (!v[0] || !parse_dms(v, &d) || d > limit) return 0;
    if (r[0] == pos && !r[1])
        *pOut = d;
    else if (r[0] == neg && !r[1])
        *pOut = -d;
    else
        return 0; /* without its reference the sign is unknown */
    return 1;
}

ram_status ram_exif_read(const void *data, size_t n, struct ram_exif *out, struct ram_error *err)
{
    if (!out || (!data && n)) return ram_fail(err, RAM_ERR_ARG, "exif: NULL argument");
    memset(out, 0, sizeof *out);
    if (n == 0) return ram_fail(err, RAM_ERR_IMAGE, "image: empty blob");
    if (!ram_image_formats()[0]) return ram_image_vips_fail(err, RAM_ERR_IMAGE, "image: cannot initialise libvips");
    const char *type_name = vips_foreign_find_load_buffer(data, n);
    if (!type_name) return ram_image_vips_fail(err, RAM_ERR_IMAGE, "image: unrecognised format");
    const VipsObjectClass *cls = vips_class_find("VipsForeignLoad", type_name);
    const char *loader = cls && cls->nickname ? cls->nickname : type_name;
    if (!ram_image_loader_accepted(loader)) return ram_fail(err, RAM_ERR_IMAGE, "image: format not supported");
    VipsImage *im = vips_image_new_from_buffer(data, n, "", "access", VIPS_ACCESS_SEQUENTIAL, NULL);
    if (!im) return ram_image_vips_fail(err, RAM_ERR_IMAGE, "image: cannot read header");

    char dt[64], off[16], iso[20], tz[7];
    get_text(im, "exif-ifd2-DateTimeOriginal", dt, sizeof dt);
    if (parse_datetime(dt, iso)) {
        get_text(im, "exif-ifd2-OffsetTimeOriginal", off, sizeof off);
        snprintf(out->taken, sizeof out->taken, "%s%s", iso, parse_offset(off, tz) ? tz : "");
    }
    get_text(im, "exif-ifd0-Make", out->make, sizeof out->make);
    get_text(im, "exif-ifd0-Model", out->model, sizeof out->model);
    double lat, lon;
    if (get_coord(im, "exif-ifd3-GPSLatitude", "exif-ifd3-GPSLatitudeRef", 'N', 'S', 90.0, &lat) &&
        get_coord(im, "exif-ifd3-GPSLongitude", "exif-ifd3-GPSLongitudeRef", 'E', 'W', 180.0, &lon)) {
        out->has_gps = 1;
        out->latitude = lat;
        out->longitude = lon;
    }
    g_object_unref(im);
    return RAM_OK;
}
