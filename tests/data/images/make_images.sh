#!/bin/sh
# make_images.sh — regenerates the small test images of tests/data/images/
# that tests/test_image.c decodes. Run once from anywhere; the files are
# committed, so the test suite never needs this script (nor python3, nor the
# vips command-line tool).
#
#   sh tests/data/images/make_images.sh
#
# HOW IT WORKS: python3 (standard library only: zlib, struct) writes the
# lossless formats byte by byte (PNG of every colour type, an uncompressed-LZW
# GIF, raw pixel files, a hand-assembled lossless WebP), so every pixel value is
# known exactly; tests/test_image.c recomputes the same pattern:
#
#     pat(x, y, c) = (x*29 + y*47 + c*85 + ((x ^ y) & 7)*13) & 255
#
# The vips command-line tool (Debian libvips-tools) converts the raw/PNG
# sources into WebP, TIFF, CMYK JPEG, AVIF and the JPEGs that python3 then
# gives an EXIF orientation (an APP1 segment inserted after SOI).
#
# Files:
#   ga.png        8-bit grey + alpha, colour kept under alpha 0     23x17
#   pal.png       8-bit palette (40 colours) with tRNS              25x19
#   pal4.png      4-bit palette (16 colours), odd width             13x9
#   grey1.png     1-bit greyscale                                   19x11
#   grey16.png    16-bit greyscale (high byte = pat(x,y,0))         21x13
#   rgb16.png     16-bit RGB (high bytes = pat(x,y,c))              21x13
#   pal.gif       GIF89a, 64-colour palette, transparent index 5    27x15
#   rgb.webp      lossless WebP of pat                              31x23
#   solid.webp    hand-assembled lossless WebP, every pixel (12,34,56)  40x30
#   rgb.avif      AVIF (lossy) of a smooth gradient                 24x16
#   cmyk.tif      CMYK TIFF (deflate), 8 flat 8x8 blocks            32x16
#   cmyk.jpg      the same CMYK as an Adobe JPEG, quality 100       32x16
#   orient1..8.jpg  32x24 JPEG (quality 90) with EXIF orientation N
#   bomb.png      PNG header claiming 30000x30000 grey, with a small truncated
#                 IDAT (no deflate stream of 900 M pixels fits in a few KB)
#   bomb.webp     complete, valid 16383x16383 lossless WebP of 34 bytes (every
#                 prefix code has one symbol, so pixels cost zero bits)
set -eu
DIR=$(cd "$(dirname "$0")" && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT

python3 - "$DIR" "$TMP" <<'EOF'
import struct, sys, zlib

out, tmp = sys.argv[1], sys.argv[2]

def pat(x, y, c):
    return (x * 29 + y * 47 + c * 85 + ((x ^ y) & 7) * 13) & 255

def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

def png(path, w, h, depth, ctype, rows, extra=b"", idat=None):
    raw = b"".join(b"\0" + r for r in rows)
    data = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0))
    data += extra + chunk(b"IDAT", idat if idat is not None else zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    open(path, "wb").write(data)

def pack_bits(vals, bits):
    acc, n, outb = 0, 0, bytearray()
    for v in vals:
        acc = (acc << bits) | v
        n += bits
        while n >= 8:
            n -= 8
            outb.append((acc >> n) & 255)
    if n:
        outb.append((acc << (8 - n)) & 255)
    return bytes(outb)

# grey + alpha: alpha 0 on every third column, colour still there
w, h = 23, 17
png(out + "/ga.png", w, h, 8, 4,
    [bytes(v for x in range(w) for v in (pat(x, y, 0), 0 if x % 3 == 0 else pat(x, y, 1))) for y in range(h)])

# 8-bit palette with transparency for indices 0..3
pal = [(pat(i, 0, 0), pat(i, 1, 1), pat(i, 2, 2)) for i in range(40)]
w, h = 25, 19
png(out + "/pal.png", w, h, 8, 3, [bytes((x * 3 + y * 5) % 40 for x in range(w)) for y in range(h)],
    extra=chunk(b"PLTE", bytes(v for c in pal for v in c)) + chunk(b"tRNS", bytes([0, 0, 128, 0])))

# 4-bit palette, odd width
pal16 = [(pat(i, 3, 0), pat(i, 4, 1), pat(i, 5, 2)) for i in range(16)]
w, h = 13, 9
png(out + "/pal4.png", w, h, 4, 3, [pack_bits([(x + y * 7) % 16 for x in range(w)], 4) for y in range(h)],
    extra=chunk(b"PLTE", bytes(v for c in pal16 for v in c)))

# 1-bit grey
w, h = 19, 11
png(out + "/grey1.png", w, h, 1, 0, [pack_bits([1 if (x + y * 3) % 5 < 2 else 0 for x in range(w)], 1) for y in range(h)])

# 16-bit grey and RGB: the low byte is non-zero so that >>8 and /257 differ
w, h = 21, 13
png(out + "/grey16.png", w, h, 16, 0,
    [b"".join(struct.pack(">H", pat(x, y, 0) << 8 | pat(x, y, 2)) for x in range(w)) for y in range(h)])
png(out + "/rgb16.png", w, h, 16, 2,
    [b"".join(struct.pack(">H", pat(x, y, c) << 8 | pat(x, y, c + 1)) for x in range(w) for c in range(3)) for y in range(h)])

# RGB sources for the vips conversions
w, h = 31, 23
png(tmp + "/rgb.png", w, h, 8, 2, [bytes(pat(x, y, c) for x in range(w) for c in range(3)) for y in range(h)])
w, h = 24, 16
png(tmp + "/grad.png", w, h, 8, 2, [bytes(v for x in range(w) for v in (x * 10, y * 15, 128)) for y in range(h)])
w, h = 32, 24
png(tmp + "/orient.png", w, h, 8, 2,
    [bytes(v for x in range(w) for v in ((x // 8) * 80, (y // 8) * 120, 40 + (x + y) * 3)) for y in range(h)])

# CMYK raw: 8 blocks of 8x8, 4 bands
cmyk = [(0, 0, 0, 0), (255, 0, 0, 0), (0, 255, 0, 0), (0, 0, 255, 0),
        (0, 0, 0, 255), (128, 64, 32, 16), (10, 200, 90, 50), (255, 255, 255, 255)]
w, h = 32, 16
open(tmp + "/cmyk.raw", "wb").write(bytes(v for y in range(h) for x in range(w)
                                          for v in cmyk[(y // 8) * 4 + x // 8]))

# GIF89a with a 64-colour global table, transparent index 5, "uncompressed"
# LZW: 7-bit codes, a clear code every 61 pixels so the width never grows.
w, h = 27, 15
gpal = [(pat(i, 6, 0), pat(i, 7, 1), pat(i, 8, 2)) for i in range(64)]
idx = [(x * 7 + y * 3) % 64 for y in range(h) for x in range(w)]
codes = []
for i, v in enumerate(idx):
    if i % 61 == 0:
        codes.append(64)
    codes.append(v)
codes.append(65)
acc, n, lzw = 0, 0, bytearray()
for c in codes:
    acc |= c << n
    n += 7
    while n >= 8:
        lzw.append(acc & 255)
        acc >>= 8
        n -= 8
if n:
    lzw.append(acc & 255)
blocks = b"".join(bytes([len(lzw[i:i + 255])]) + lzw[i:i + 255] for i in range(0, len(lzw), 255)) + b"\0"
gif = b"GIF89a" + struct.pack("<HHBBB", w, h, 0xF5, 0, 0) + bytes(v for c in gpal for v in c)
gif += b"\x21\xf9\x04\x01\x00\x00\x05\x00"
gif += b"\x2c" + struct.pack("<HHHHB", 0, 0, w, h, 0) + b"\x06" + blocks + b"\x3b"
open(out + "/pal.gif", "wb").write(gif)

# Lossless WebP (VP8L) assembled by hand: no transform, no colour cache, no
# meta codes, five "simple" prefix codes with a single symbol each.
class Bits:
    def __init__(self):
        self.acc, self.n = 0, 0
    def put(self, v, k):
        self.acc |= v << self.n
        self.n += k
    def bytes(self):
        return self.acc.to_bytes((self.n + 7) // 8, "little")

def vp8l_solid(w, h, r, g, b, a=255):
    bw = Bits()
    bw.put(0x2F, 8)
    bw.put(w - 1, 14)
    bw.put(h - 1, 14)
    bw.put(0, 1)  # alpha_is_used hint
    bw.put(0, 3)  # version
    bw.put(0, 1)  # no transform
    bw.put(0, 1)  # no colour cache
    bw.put(0, 1)  # no meta prefix codes
    for sym in (g, r, b, a, 0):  # green, red, blue, alpha, distance
        bw.put(1, 1)  # simple code
        bw.put(0, 1)  # one symbol
        bw.put(1, 1)  # 8-bit symbol
        bw.put(sym, 8)
    data = bw.bytes()
    if len(data) % 2:
        data += b"\0"
    body = b"WEBP" + b"VP8L" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body

open(out + "/solid.webp", "wb").write(vp8l_solid(40, 30, 12, 34, 56))
open(out + "/bomb.webp", "wb").write(vp8l_solid(16383, 16383, 0, 0, 0))

# PNG header bomb: 30000x30000 grey, IDAT holds only 64 rows
w = 30000
png(out + "/bomb.png", w, w, 8, 0, [], idat=zlib.compress(b"".join(b"\0" + bytes(w) for _ in range(64)), 9))
EOF

vips copy "$TMP/rgb.png" "$DIR/rgb.webp[lossless]"
vips copy "$TMP/grad.png" "$DIR/rgb.avif[compression=av1,Q=90,strip]"
vips rawload "$TMP/cmyk.raw" "$TMP/cmyk.v" 32 16 4
vips copy "$TMP/cmyk.v" "$TMP/cmyk4.v" --interpretation cmyk
vips copy "$TMP/cmyk4.v" "$DIR/cmyk.tif[compression=deflate,strip]"
vips copy "$TMP/cmyk4.v" "$DIR/cmyk.jpg[Q=100,strip]"
vips copy "$TMP/orient.png" "$TMP/orient.jpg[Q=90,strip]"

# EXIF APP1 with one IFD0 entry, Orientation (0x0112, SHORT) = N, big-endian TIFF.
python3 - "$DIR" "$TMP/orient.jpg" <<'EOF'
import struct, sys
out, src = sys.argv[1], sys.argv[2]
jpg = open(src, "rb").read()
assert jpg[:2] == b"\xff\xd8"
for n in range(1, 9):
    tiff = b"MM\0\x2a" + struct.pack(">I", 8) + struct.pack(">H", 1)
    tiff += struct.pack(">HHIHH", 0x0112, 3, 1, n, 0) + struct.pack(">I", 0)
    app1 = b"Exif\0\0" + tiff
    seg = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    open("%s/orient%d.jpg" % (out, n), "wb").write(jpg[:2] + seg + jpg[2:])
EOF

# Sanity checks of the hand-made files with libvips itself.
vipsheader "$DIR/bomb.webp" "$DIR/bomb.png" "$DIR/orient6.jpg" >/dev/null
[ "$(vips getpoint "$DIR/solid.webp" 5 7)" = "12 34 56 " ] || { echo "solid.webp decodes wrong" >&2; exit 1; }
echo "images written to $DIR"
