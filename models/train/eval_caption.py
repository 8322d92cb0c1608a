#!/usr/bin/python3
"""eval_caption.py -- measures the bundled default caption model through the
C engine: held-out generated pictures (seeds the training never used) are
captioned by SQL ram_caption() in build/ram.so with the converted model
(build/default_caption.ram), and each caption is checked against the
picture's true attributes. Writes the figures into models/default/caption.json
("c_engine") and prints them.

Usage (from the repository root, after `make build/default_caption.ram`):
    /usr/bin/python3 models/train/eval_caption.py [--n 400] [--n-novel 150]

"main": pictures of the training distribution (colour x shape pairs seen in
training, other random pictures); "novel": only the pairs of
shapes.HELDOUT_PAIRS, never seen in training. A caption names the colour
when the colour word is in it, the shape when the shape word (plural for
several objects) is, the count when it starts with the count's word ("a",
"an" for one); size, pattern ("plain" = no pattern word), position and
background likewise.
"""
import argparse
import io
import json
import os
import random
import sqlite3
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import shapes  # noqa: E402
from caption_text import POS_WORD  # noqa: E402

SEED_MAIN, SEED_NOVEL = 31, 32
ATTRS = ("colour", "shape", "count", "size", "pattern", "position", "background")


def judge(cap, a):
    w = cap.split()
    ok = {
        "colour": a["colour"] in w,
        "shape": (shapes.PLURAL[a["shape"]] if a["count"] != "one" else a["shape"]) in w,
        "count": bool(w) and (w[0] in ("a", "an") if a["count"] == "one" else w[0] == a["count"]),
        "size": a["size"] in w,
        "pattern": (a["pattern"] in w) if a["pattern"] != "plain"
        else not any(p in w for p in shapes.PATTERNS if p != "plain"),
        "background": ("%s background" % a["background"]) in cap,
    }
    if a.get("position"):
        ok["position"] = POS_WORD[a["position"]] in cap
    ok["colour+shape+count"] = ok["colour"] and ok["shape"] and ok["count"]
    ok["all"] = all(ok.values())
    return ok


def true_tags(a):
    """The picture's true tag string, as a user would give it to ram_caption."""
    return " | ".join(shapes.TAG_NAMES[i] for i in sorted(shapes.tag_indices(a)))


def measure(db, seed, n, novel, given=False):
    rng = random.Random(seed)
    hits, seen, examples = {}, {}, []
    for i in range(n):
        a = shapes.sample_attrs(rng, heldout=novel)
        w, h = rng.choice([(128, 128), (160, 128), (128, 160), (192, 144), (144, 192)])
        img = shapes.render(a, rng, w, h)
        buf = io.BytesIO()
        img.save(buf, "PNG")
        if given:
            cap = db.execute("SELECT ram_caption(?, ?)", (buf.getvalue(), true_tags(a))).fetchone()[0]
        else:
            cap = db.execute("SELECT ram_caption(?)", (buf.getvalue(),)).fetchone()[0]
        ok = judge(cap, a)
        ok["shape|" + a["count"]] = ok["shape"]
        for k, v in ok.items():
            hits[k] = hits.get(k, 0) + v
            seen[k] = seen.get(k, 0) + 1
        if i < 5:
            examples.append({"caption": cap, "truth": {k: v for k, v in a.items() if v is not None}})
    out = {k: round(hits[k] / seen[k], 4) for k in hits}
    out["n"] = n
    out["examples"] = examples
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=400)
    ap.add_argument("--n-novel", type=int, default=150)
    ap.add_argument("--lib", default="build/ram")
    ap.add_argument("--model", default="build/default_caption.ram")
    ap.add_argument("--json", default="models/default/caption.json")
    ap.add_argument("--seeds", default="%d,%d" % (SEED_MAIN, SEED_NOVEL), help="pictures' seeds (main,novel): "
                    "other seeds than the reported ones to choose between candidate models")
    ap.add_argument("--given-tags", action="store_true", help="guide each caption by the picture's "
                    "true tags (separates tagging errors from decoding errors; figures not written)")
    args = ap.parse_args()
    seed_main, seed_novel = (int(v) for v in args.seeds.split(","))
    db = sqlite3.connect(":memory:")
    db.enable_load_extension(True)
    db.load_extension(args.lib)
    db.execute("SELECT ram_caption_model(?)", (args.model,)).fetchone()
    res = {"how": "SQL ram_caption() of build/ram.so with %s, models/train/eval_caption.py" % args.model,
           "main": measure(db, seed_main, args.n, False, args.given_tags),
           "novel_pairs": measure(db, seed_novel, args.n_novel, True, args.given_tags)}
    for k in ("main", "novel_pairs"):
        print(k, {a: v for a, v in res[k].items() if a != "examples"})
    reported = args.seeds == "%d,%d" % (SEED_MAIN, SEED_NOVEL) and not args.given_tags
    if args.json and os.path.exists(args.json) and reported:
        with open(args.json) as f:
            info = json.load(f)
        info["c_engine"] = res
        with open(args.json, "w") as f:
            json.dump(info, f, indent=1)
            f.write("\n")


if __name__ == "__main__":
    main()
