"""make_photos.py -- writes the demo pictures demo/photos/*.png|jpg and
demo/photos/MANIFEST.json (what each picture truly shows), once, with the
seeded generator of the default model's training data (models/train/shapes.py).
The output is committed: `make demo` and tests/test_demo.sh need no Python.

    python3 demo/make_photos.py            # needs Pillow and numpy

A few pictures are chosen by hand so that the demo's queries have answers
(some of them colour x shape pairs the model never saw in training, e.g. a
blue triangle); the rest are random pictures of the training distribution.
Sizes vary (not only the model's 128 x 128); noisy backgrounds, which PNG
compresses badly, and every fifth picture are saved as JPEG.
"""
import json
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "models", "train"))
import shapes  # noqa: E402

SEED = 2026
N_RANDOM = 42
OUT = os.path.join(HERE, "photos")

CHOSEN = [
    dict(shape="triangle", colour="blue", pattern="plain", count="one", size="small",
         position="center", background="white"),
    dict(shape="triangle", colour="blue", pattern="plain", count="one", size="small",
         position="left", background="gray"),
    dict(shape="triangle", colour="blue", pattern="plain", count="one", size="large",
         position="center", background="black"),
    dict(shape="circle", colour="red", pattern="plain", count="two", size="large",
         position=None, background="black"),
    dict(shape="circle", colour="red", pattern="plain", count="two", size="small",
         position=None, background="black"),
    dict(shape="circle", colour="red", pattern="dotted", count="two", size="large",
         position=None, background="white"),
    dict(shape="circle", colour="green", pattern="plain", count="one", size="large",
         position="center", background="white"),
    dict(shape="star", colour="yellow", pattern="plain", count="many", size="small",
         position=None, background="black"),
]


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = random.Random(SEED)
    attrs = [dict(a) for a in CHOSEN] + [shapes.sample_attrs(rng) for _ in range(N_RANDOM)]
    order = list(range(len(attrs)))
    rng.shuffle(order)  # the chosen ones are not the first files
    pics = []
    for n, i in enumerate(order, 1):
        a = attrs[i]
        w, h = rng.choice([(128, 128), (160, 128), (128, 160), (192, 144), (144, 192)])
        img = shapes.render(a, rng, w, h)
        cap = shapes.caption(a, random.Random(i))
        jpeg = a["background"] == "noisy" or n % 5 == 0
        name = "%02d-%s.%s" % (n, shapes.phrase(a, ("size", "pattern", "colour", "shape"))
                               .replace(" ", "-"), "jpg" if jpeg else "png")
        if jpeg:
            img.save(os.path.join(OUT, name), "JPEG", quality=88)
        else:
            img.save(os.path.join(OUT, name), "PNG", optimize=True)
        pics.append({"file": name, "width": w, "height": h,
                     "tags": [shapes.TAG_NAMES[t] for t in shapes.tag_indices(a)],
                     "attrs": {k: v for k, v in a.items() if v is not None},
                     "caption": cap, "chosen": i < len(CHOSEN),
                     "heldout_pair": (a["colour"], a["shape"]) in shapes.HELDOUT_PAIRS})
    with open(os.path.join(OUT, "MANIFEST.json"), "w") as f:
        json.dump({"generator": "demo/make_photos.py (models/train/shapes.py)", "seed": SEED,
                   "tags": shapes.TAG_NAMES, "pictures": pics}, f, indent=1, ensure_ascii=False)
        f.write("\n")
    print(len(pics), "pictures in", OUT)


if __name__ == "__main__":
    main()
