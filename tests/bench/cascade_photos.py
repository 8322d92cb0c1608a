"""cascade_photos.py -- N generated pictures for bench_cascade (make bench): the
training distribution of the bundled default model (models/train/shapes.py),
seeded, 128 x 128 PNG, written once into a folder of build/bench.

    /usr/bin/python3 tests/bench/cascade_photos.py OUT_DIR N     # Pillow, numpy
"""
import os
import random
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "models", "train"))
import shapes  # noqa: E402


def main():
    out, n = sys.argv[1], int(sys.argv[2])
    os.makedirs(out, exist_ok=True)
    rng = random.Random(1616)
    for i in range(n):
        a = shapes.sample_attrs(rng, heldout=rng.random() < 0.1)
        shapes.render(a, rng, 128, 128).save(os.path.join(out, "%05d.png" % i), "PNG")
    print(n, "pictures in", out)


if __name__ == "__main__":
    main()
