"""shapes.py -- a seeded generator of synthetic pictures with known tags, the
training and test data of the bundled default model (models/default/).

Usage:
    import random, shapes
    rng = random.Random(7)
    attrs = shapes.sample_attrs(rng)                 # one picture's attributes
    img = shapes.render(attrs, rng, 160, 128)        # PIL RGB image
    shapes.tag_indices(attrs)                        # indices into shapes.TAGS
    shapes.caption(attrs, rng)   # "two small striped blue triangles on a white background"
    shapes.phrase(attrs, ("size", "colour", "shape"))  # "two small blue triangles"

    python3 models/train/shapes.py OUT_DIR   # writes a contact sheet and samples

HOW IT WORKS
  A picture holds 1, 2, 3 or 5-7 copies of ONE kind of object (same shape,
  colour, fill pattern and size class) on one background. Its tags are
  exactly one of each group below (41 tags in all):
    shape        8  circle square triangle star heart cross ring arrow
    colour       9  red green blue yellow orange purple pink cyan brown
    pattern      4  plain striped dotted checkered
    count        4  one two three many (many = 5..7)
    size         2  small large (many is always small)
    position     9  left right top bottom center, and the four corners
                    (top left ...), only for a single object
    background   5  white/black/gray/gradient/noisy background
  Pattern second colours are neutral (near black, or near white on a black
  background), and gradients and noise are grey, so no colour tag is ever
  ambiguous. Shapes are drawn on a 2x mask and box-filtered down, so edges
  are antialiased like photographs of drawings. Sizes, pattern periods and
  the noise grain are chosen so that all of it stays visible at the default
  model's 64 x 64 input (the shapes are 8 silhouettes that stay distinct at
  that resolution; hexagon/pentagon/diamond/crescent were dropped for it).

  Every tag has DES_PER_TAG = 6 text descriptions (the RAM++ label_embed
  rows) and a Chinese name. HELDOUT_PAIRS lists colour x shape combinations
  that never appear in training pictures or training texts: the
  compositional open-set test uses only them.
"""
import math
import random

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ["circle", "square", "triangle", "star", "heart", "cross", "ring", "arrow"]
COLOURS = ["red", "green", "blue", "yellow", "orange", "purple", "pink", "cyan", "brown"]
PATTERNS = ["plain", "striped", "dotted", "checkered"]
COUNTS = ["one", "two", "three", "many"]
SIZES = ["small", "large"]
POSITIONS = ["left", "right", "top", "bottom", "center", "top left", "top right", "bottom left",
             "bottom right"]
BACKGROUNDS = ["white", "black", "gray", "gradient", "noisy"]

GROUPS = [("shape", SHAPES), ("colour", COLOURS), ("pattern", PATTERNS), ("count", COUNTS),
          ("size", SIZES), ("position", POSITIONS), ("background", BACKGROUNDS)]

RGB = {
    "red": (220, 30, 35), "green": (40, 170, 55), "blue": (35, 75, 225),
    "yellow": (245, 220, 35), "orange": (248, 140, 20), "purple": (140, 50, 185),
    "pink": (248, 135, 195), "cyan": (45, 210, 225), "brown": (125, 78, 35),
}

# colour x shape pairs never shown in training (pictures or texts)
HELDOUT_PAIRS = {("blue", "triangle"), ("red", "star"), ("green", "heart"),
                 ("yellow", "ring"), ("purple", "circle"), ("orange", "square")}

DES_PER_TAG = 6

# (tag name, Chinese name, descriptions)
_TAG_TEXT = {
    "circle": ("圆形", ["a circle", "a round shape", "a circular object", "a disc",
                        "something round", "a drawing of a circle"]),
    "square": ("正方形", ["a square", "a square shape", "a box with four equal sides",
                         "something square", "a drawing of a square", "a square object"]),
    "triangle": ("三角形", ["a triangle", "a triangular shape", "a shape with three corners",
                           "something triangular", "a drawing of a triangle", "a triangle object"]),
    "star": ("星形", ["a star", "a star shape", "a five-pointed star",
                      "something shaped like a star", "a drawing of a star", "a star object"]),
    "heart": ("心形", ["a heart", "a heart shape", "a love heart", "something shaped like a heart",
                       "a drawing of a heart", "a heart symbol"]),
    "cross": ("十字形", ["a cross", "a plus sign", "a cross shape", "something shaped like a plus",
                        "a drawing of a cross", "a cross symbol"]),
    "ring": ("圆环", ["a ring", "a donut shape", "a hollow circle", "an annulus",
                      "a drawing of a ring", "a circle with a hole"]),
    "arrow": ("箭头", ["an arrow", "an arrow shape", "a pointing arrow",
                       "something shaped like an arrow", "a drawing of an arrow", "an arrow sign"]),
    "red": ("红色", ["a red object", "something coloured red", "red color", "a red shape",
                     "something red", "the colour red"]),
    "green": ("绿色", ["a green object", "something coloured green", "green color",
                       "a green shape", "something green", "the colour green"]),
    "blue": ("蓝色", ["a blue object", "something coloured blue", "blue color", "a blue shape",
                      "something blue", "the colour blue"]),
    "yellow": ("黄色", ["a yellow object", "something coloured yellow", "yellow color",
                        "a yellow shape", "something yellow", "the colour yellow"]),
    "orange": ("橙色", ["an orange object", "something coloured orange", "orange color",
                        "an orange shape", "something orange", "the colour orange"]),
    "purple": ("紫色", ["a purple object", "something coloured purple", "purple color",
                        "a violet shape", "something purple", "the colour purple"]),
    "pink": ("粉色", ["a pink object", "something coloured pink", "pink color", "a pink shape",
                      "something pink", "the colour pink"]),
    "cyan": ("青色", ["a cyan object", "something coloured cyan", "cyan color",
                      "a turquoise shape", "something cyan", "the colour cyan"]),
    "brown": ("棕色", ["a brown object", "something coloured brown", "brown color",
                       "a brown shape", "something brown", "the colour brown"]),
    "plain": ("纯色", ["a plain object", "a solid color shape", "a shape without a pattern",
                       "something plain", "a uniformly colored shape", "a solid fill"]),
    "striped": ("条纹", ["a striped object", "a shape with stripes", "something striped",
                         "a pattern of stripes", "a stripy shape", "a shape with lines"]),
    "dotted": ("圆点", ["a dotted object", "a shape with dots", "a polka dot pattern",
                        "something dotted", "a spotted shape", "a shape covered in dots"]),
    "checkered": ("格子", ["a checkered object", "a checkerboard pattern",
                           "a shape with a grid of squares", "something checkered",
                           "a chequered shape", "a checked pattern"]),
    "one": ("一个", ["one object", "a single object", "only one shape", "a single thing",
                     "one shape alone", "exactly one item"]),
    "two": ("两个", ["two objects", "a pair of shapes", "two things", "two shapes",
                     "exactly two items", "a couple of objects"]),
    "three": ("三个", ["three objects", "three shapes", "three things", "a trio of shapes",
                       "exactly three items", "a group of three"]),
    "many": ("许多", ["many objects", "lots of shapes", "several things", "a crowd of shapes",
                      "more than four items", "numerous objects"]),
    "small": ("小", ["a small object", "a tiny shape", "something small", "a little shape",
                     "a small item", "a shape of small size"]),
    "large": ("大", ["a large object", "a big shape", "something large", "a huge shape",
                     "a large item", "a shape of large size"]),
    "left": ("左边", ["an object on the left", "a shape at the left side", "something on the left",
                      "the left side of the picture", "a shape placed left",
                      "an object to the left"]),
    "right": ("右边", ["an object on the right", "a shape at the right side",
                       "something on the right", "the right side of the picture",
                       "a shape placed right", "an object to the right"]),
    "top": ("上方", ["an object at the top", "a shape near the top", "something at the top",
                     "the top of the picture", "a shape placed high",
                     "an object in the upper part"]),
    "bottom": ("下方", ["an object at the bottom", "a shape near the bottom",
                        "something at the bottom", "the bottom of the picture",
                        "a shape placed low", "an object in the lower part"]),
    "center": ("中间", ["an object in the center", "a shape in the middle", "something centered",
                        "the middle of the picture", "a centered shape",
                        "an object at the centre"]),
    "top left": ("左上角", ["an object in the top left corner", "a shape at the top left",
                          "something in the upper left", "the top left of the picture",
                          "a shape placed top left", "an object up and to the left"]),
    "top right": ("右上角", ["an object in the top right corner", "a shape at the top right",
                           "something in the upper right", "the top right of the picture",
                           "a shape placed top right", "an object up and to the right"]),
    "bottom left": ("左下角", ["an object in the bottom left corner", "a shape at the bottom left",
                             "something in the lower left", "the bottom left of the picture",
                             "a shape placed bottom left", "an object down and to the left"]),
    "bottom right": ("右下角", ["an object in the bottom right corner",
                              "a shape at the bottom right", "something in the lower right",
                              "the bottom right of the picture", "a shape placed bottom right",
                              "an object down and to the right"]),
    "white background": ("白色背景", ["a white background", "on white", "a plain white backdrop",
                                      "a picture with a white background", "white space around",
                                      "a bright white background"]),
    "black background": ("黑色背景", ["a black background", "on black", "a dark backdrop",
                                      "a picture with a black background", "a black backdrop",
                                      "a dark black background"]),
    "gray background": ("灰色背景", ["a gray background", "on gray", "a grey backdrop",
                                     "a picture with a grey background",
                                     "a neutral gray background", "a plain grey backdrop"]),
    "gradient background": ("渐变背景", ["a gradient background", "a smooth gradient",
                                         "a background fading from dark to light",
                                         "a picture with a shaded background",
                                         "a gradient backdrop", "a background with a gradient"]),
    "noisy background": ("噪点背景", ["a noisy background", "a grainy backdrop",
                                      "a background full of noise",
                                      "a picture with a speckled background",
                                      "a noisy texture behind", "a random noise background"]),
}


def _tag_name(group, value):
    return value + " background" if group == "background" else value


TAGS = []          # [(name, group, value)]
for _g, _vals in GROUPS:
    for _v in _vals:
        TAGS.append((_tag_name(_g, _v), _g, _v))
TAG_INDEX = {(g, v): i for i, (_, g, v) in enumerate(TAGS)}
TAG_NAMES = [t[0] for t in TAGS]
TAG_ZH = [_TAG_TEXT[n][0] for n in TAG_NAMES]
TAG_DESCRIPTIONS = [_TAG_TEXT[n][1] for n in TAG_NAMES]
assert all(len(d) == DES_PER_TAG for d in TAG_DESCRIPTIONS)
assert len(TAGS) == 41, len(TAGS)

PLURAL = {s: s + "s" for s in SHAPES}
PLURAL["cross"] = "crosses"


def sample_attrs(rng, heldout=False):
    """Attributes of one picture. heldout=False: never a HELDOUT_PAIRS pair;
    heldout=True: always one of them."""
    a = {}
    while True:
        a["shape"] = rng.choice(SHAPES)
        a["colour"] = rng.choice(COLOURS)
        if ((a["colour"], a["shape"]) in HELDOUT_PAIRS) == heldout:
            break
    a["pattern"] = rng.choice(PATTERNS)
    a["count"] = rng.choice(COUNTS)
    a["size"] = "small" if a["count"] == "many" else rng.choice(SIZES)
    a["position"] = rng.choice(POSITIONS) if a["count"] == "one" else None
    a["background"] = rng.choice(BACKGROUNDS)
    return a


def tag_indices(a):
    return [TAG_INDEX[(g, a[g])] for g, _ in GROUPS if a.get(g) is not None]


# ------------------------------------------------------------------ drawing

def _rot(points, cx, cy, ang):
    c, s = math.cos(ang), math.sin(ang)
    return [(cx + x * c - y * s, cy + x * s + y * c) for x, y in points]


def _regular(n, r, phase=-math.pi / 2):
    return [(r * math.cos(phase + 2 * math.pi * k / n), r * math.sin(phase + 2 * math.pi * k / n))
            for k in range(n)]


def _draw_shape(draw, shape, cx, cy, r, ang, rng):
    """Draws one filled shape of radius r (half its extent) into an L mask."""
    if shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
    elif shape == "ring":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        q = r * 0.55
        draw.ellipse([cx - q, cy - q, cx + q, cy + q], fill=0)
    elif shape == "crescent":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=255)
        off = r * 0.5
        ox, oy = cx + off * math.cos(ang), cy + off * math.sin(ang)
        q = r * 0.78
        draw.ellipse([ox - q, oy - q, ox + q, oy + q], fill=0)
    else:
        if shape == "square":
            pts = [(-r * 0.82, -r * 0.82), (r * 0.82, -r * 0.82), (r * 0.82, r * 0.82),
                   (-r * 0.82, r * 0.82)]
        elif shape == "triangle":
            pts = [(x, y + r * 0.15) for x, y in _regular(3, r * 1.08)]
        elif shape == "star":
            pts = []
            for k in range(10):
                rr = r if k % 2 == 0 else r * 0.42
                t = -math.pi / 2 + math.pi * k / 5
                pts.append((rr * math.cos(t), rr * math.sin(t)))
        elif shape == "heart":
            pts = []
            for k in range(48):
                t = 2 * math.pi * k / 48
                x = 16 * math.sin(t) ** 3
                y = -(13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t))
                pts.append((x * r / 16.5, (y + 2.5) * r / 16.5))
        elif shape == "cross":
            w = r * 0.36
            pts = [(-w, -r), (w, -r), (w, -w), (r, -w), (r, w), (w, w), (w, r), (-w, r), (-w, w),
                   (-r, w), (-r, -w), (-w, -w)]
        elif shape == "diamond":
            pts = [(0, -r), (r * 0.7, 0), (0, r), (-r * 0.7, 0)]
        elif shape == "hexagon":
            pts = _regular(6, r, 0)
        elif shape == "pentagon":
            pts = [(x, y + r * 0.08) for x, y in _regular(5, r)]
        elif shape == "arrow":
            h = r * 0.3
            pts = [(-r, -h), (r * 0.15, -h), (r * 0.15, -r * 0.7), (r, 0), (r * 0.15, r * 0.7),
                   (r * 0.15, h), (-r, h)]
        else:
            raise ValueError(shape)
        draw.polygon(_rot(pts, cx, cy, ang), fill=255)


def _background(kind, rng, nrng, w, h):
    if kind == "white":
        v = rng.randint(238, 255)
        return np.full((h, w, 3), v, np.float32)
    if kind == "black":
        v = rng.randint(0, 18)
        return np.full((h, w, 3), v, np.float32)
    if kind == "gray":
        v = rng.randint(105, 150)
        return np.full((h, w, 3), v, np.float32)
    if kind == "gradient":
        a = rng.uniform(20, 90)
        b = rng.uniform(170, 240)
        if rng.random() < 0.5:
            a, b = b, a
        t = rng.uniform(0, 2 * math.pi)
        yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
        p = (xx / max(w - 1, 1) - 0.5) * math.cos(t) + (yy / max(h - 1, 1) - 0.5) * math.sin(t)
        p = (p - p.min()) / max(float(p.max() - p.min()), 1e-6)
        g = a + (b - a) * p
        return np.repeat(g[:, :, None], 3, axis=2)
    if kind == "noisy":
        base = rng.uniform(90, 165)
        sd = rng.uniform(16, 30)
        # grain of 2-3 pixels, so that it survives the resize to the model's input
        k = max(2, round(min(w, h) / 48))
        g = sd * nrng.standard_normal((h // k + 1, w // k + 1)).astype(np.float32)
        g = base + np.repeat(np.repeat(g, k, 0), k, 1)[:h, :w]
        return np.repeat(g[:, :, None], 3, axis=2)
    raise ValueError(kind)


def _pattern_mask(kind, rng, w, h, period):
    """1 where the object's own colour shows, 0 where the neutral second colour does."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    ox, oy = rng.uniform(0, period), rng.uniform(0, period)
    if kind == "plain":
        return np.ones((h, w), np.float32)
    if kind == "striped":
        t = rng.choice([0.0, 45.0, 90.0, 135.0]) + rng.uniform(-12, 12)
        t = math.radians(t)
        u = (xx + ox) * math.cos(t) + (yy + oy) * math.sin(t)
        return ((u / period) % 1.0 < 0.55).astype(np.float32)
    if kind == "dotted":
        u = ((xx + ox) / period) % 1.0 - 0.5
        v = ((yy + oy) / period) % 1.0 - 0.5
        return (u * u + v * v > 0.3 ** 2).astype(np.float32)
    if kind == "checkered":
        cell = period * 0.6
        return (((np.floor((xx + ox) / cell) + np.floor((yy + oy) / cell)) % 2) == 0).astype(np.float32)
    raise ValueError(kind)


def _positions(a, rng, w, h, radius):
    """Centres for the objects: a region per position tag for one object,
    anywhere without overlap otherwise."""
    n = {"one": 1, "two": 2, "three": 3}.get(a["count"]) or rng.randint(5, 7)
    if n == 1:
        fx, fy = {"left": (0.24, 0.5), "right": (0.76, 0.5), "top": (0.5, 0.24),
                  "bottom": (0.5, 0.76), "center": (0.5, 0.5), "top left": (0.24, 0.24),
                  "top right": (0.76, 0.24), "bottom left": (0.24, 0.76),
                  "bottom right": (0.76, 0.76)}[a["position"]]
        fx += rng.uniform(-0.05, 0.05)
        fy += rng.uniform(-0.05, 0.05)
        x = min(max(fx * w, radius[0] + 1), w - radius[0] - 1)
        y = min(max(fy * h, radius[0] + 1), h - radius[0] - 1)
        return [(x, y)]
    for _ in range(200):
        pts = []
        for k in range(n):
            r = radius[k]
            for _ in range(100):
                x = rng.uniform(r + 1, w - r - 1)
                y = rng.uniform(r + 1, h - r - 1)
                if all((x - px) ** 2 + (y - py) ** 2 > (r + radius[j] + 2) ** 2
                       for j, (px, py) in enumerate(pts)):
                    pts.append((x, y))
                    break
            else:
                break
        if len(pts) == n:
            return pts
    raise RuntimeError("cannot place objects")


def render(a, rng, w=128, h=128, info=None):
    """The picture of attributes a, w x h pixels (PIL RGB). info: an optional
    dict that receives the objects' "centres" [(x, y)] and "radii" in pixels."""
    nrng = np.random.default_rng(rng.getrandbits(63))
    bg = _background(a["background"], rng, nrng, w, h)
    scale = math.sqrt(w * h) / 128.0
    n = {"one": 1, "two": 2, "three": 3}.get(a["count"]) or 7
    if a["size"] == "small":
        base = rng.uniform(12.0, 14.0) * scale
    else:
        base = rng.uniform(25.0, 31.0 if n <= 2 else 27.0) * scale
    radius = [base * rng.uniform(0.93, 1.07) for _ in range(n)]
    centres = _positions(a, rng, w, h, radius)
    if info is not None:
        info["centres"] = list(centres)
        info["radii"] = list(radius)
    # the object mask, drawn at 2x and box-filtered down (antialiasing)
    big = Image.new("L", (2 * w, 2 * h), 0)
    draw = ImageDraw.Draw(big)
    for (x, y), r in zip(centres, radius):
        if a["shape"] == "arrow":
            ang = rng.choice([0.0, 0.5, 1.0, 1.5]) * math.pi + math.radians(rng.uniform(-15, 15))
        else:
            ang = math.radians(rng.uniform(-15, 15))
        _draw_shape(draw, a["shape"], 2 * x, 2 * y, 2 * r, ang, rng)
    mask = np.asarray(big.resize((w, h), Image.BOX), np.float32) / 255.0
    # object colour with a little jitter, the pattern's neutral second colour
    col = np.array(RGB[a["colour"]], np.float32)
    col = np.clip(col * rng.uniform(0.9, 1.08) + np.array([rng.uniform(-12, 12) for _ in range(3)],
                                                          np.float32), 0, 255)
    second = np.array([232, 232, 232] if a["background"] == "black" else [28, 28, 28], np.float32)
    period = max(7.0, base * 0.6)
    pm = _pattern_mask(a["pattern"], rng, w, h, period)[:, :, None]
    fill = pm * col + (1 - pm) * second
    img = bg * (1 - mask[:, :, None]) + fill * mask[:, :, None]
    return Image.fromarray(np.clip(np.rint(img), 0, 255).astype(np.uint8), "RGB")


# ------------------------------------------------------------------ texts

_COUNT_WORDS = {"one": ["a", "one", "a single"], "two": ["two", "a pair of"],
                "three": ["three"], "many": ["many", "several", "lots of"]}
_POS_WORDS = {"left": ["on the left", "at the left"], "right": ["on the right", "at the right"],
              "top": ["at the top", "near the top"], "bottom": ["at the bottom", "near the bottom"],
              "top left": ["in the top left corner", "at the top left"],
              "top right": ["in the top right corner", "at the top right"],
              "bottom left": ["in the bottom left corner", "at the bottom left"],
              "bottom right": ["in the bottom right corner", "at the bottom right"],
              "center": ["in the center", "in the middle"]}
_BG_WORDS = {"white": ["on a white background", "on white"],
             "black": ["on a black background", "on black"],
             "gray": ["on a gray background", "on a grey background"],
             "gradient": ["on a gradient background", "over a gradient"],
             "noisy": ["on a noisy background", "on a grainy background"]}


def phrase(a, keys, rng=None, variant=0):
    """A noun phrase naming the attributes in keys (count always), e.g.
    phrase(a, ("size", "colour", "shape")) = "two small blue triangles".
    rng picks among synonyms; without it the first wording is used."""
    pick = (lambda xs: rng.choice(xs)) if rng else (lambda xs: xs[0])
    plural = a["count"] != "one"
    words = [pick(_COUNT_WORDS[a["count"]])]
    if "size" in keys:
        words.append(a["size"])
    if "pattern" in keys and a["pattern"] != "plain":
        words.append(a["pattern"])
    elif "pattern" in keys:
        words.append(pick(["plain", "solid"]))
    if "colour" in keys:
        words.append(a["colour"])
    if "shape" in keys:
        words.append(PLURAL[a["shape"]] if plural else a["shape"])
    else:
        words.append(pick(["objects", "shapes"]) if plural else pick(["object", "shape"]))
    if words[0] == "a" and words[1][0] in "aeiou":
        words[0] = "an"
    if "position" in keys and a.get("position"):
        words.append(pick(_POS_WORDS[a["position"]]))
    if "background" in keys:
        words.append(pick(_BG_WORDS[a["background"]]))
    return " ".join(words)


def caption(a, rng):
    """A full caption of the picture, e.g. "a large striped red star on the
    left on a black background"."""
    keys = ("size", "pattern", "colour", "shape", "position", "background")
    return phrase(a, keys, rng)


def mentions_heldout_pair(a, keys):
    return "colour" in keys and "shape" in keys and (a["colour"], a["shape"]) in HELDOUT_PAIRS


def matches(a, b, keys):
    """Does picture a satisfy the phrase built from b with keys (count always)?"""
    if a["count"] != b["count"]:
        return False
    for k in keys:
        if k == "pattern":
            if a["pattern"] != b["pattern"]:
                return False
        elif a.get(k) != b.get(k):
            return False
    return True


if __name__ == "__main__":
    import os
    import sys
    out = sys.argv[1] if len(sys.argv) > 1 else "/tmp/shapes_samples"
    os.makedirs(out, exist_ok=True)
    rng = random.Random(1)
    sheet = Image.new("RGB", (8 * 130, 6 * 130), (255, 0, 255))
    for k in range(48):
        a = sample_attrs(rng, heldout=(k >= 40))
        img = render(a, rng, 128, 128)
        sheet.paste(img, ((k % 8) * 130, (k // 8) * 130))
        print(k, caption(a, rng), "|", ", ".join(TAG_NAMES[i] for i in tag_indices(a)))
    sheet.save(os.path.join(out, "sheet.png"))
