"""cascade_photos.py -- N generated pictures for bench_cascade (make bench): the
training distribution of the bundled default model (models/train/shapes.py),
seeded, 128 x 128 PNG, written once into a folder of build/bench.

    /usr/bin/python3 tests/bench/cascade_photos.py OUT_DIR N [FROM]   # Pillow, numpy

FROM: write only pictures FROM..N-1 of the same sequence (the earlier ones are
drawn, not saved): the pictures that follow those of a folder made with
N = FROM, so that tests/bench/cascade_proxies.py can read both as one table.
"""
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "models", "train"))
import shapes  # noqa: E402


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    first = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    os.makedirs(out, exist_ok=True)
    rng = random.Random(1616)
    for i in range(n):
        a = shapes.sample_attrs(rng, heldout=rng.random() < 0.1)
        picture = shapes.render(a, rng, 128, 128)
        if i >= first:
            picture.save(os.path.join(out, "%05d.png" % i), "PNG")
    print(n - first, "pictures in", out)


if __name__ == "__main__":
    main()
