#!/usr/bin/env python3
"""Writes the seed corpora of tests/fuzz/corpus/<target>/ (run from the
repository root after `make`; the seeds are committed, this documents them).
Regression inputs found by `make fuzz` are added by hand next to the seeds.
No torch needed: the tiny .pth is pickled with stand-in torch classes."""
import io, os, pickle, shutil, struct, sys, types, zipfile

C = "tests/fuzz/corpus"
def put(target, name, data):
    os.makedirs(f"{C}/{target}", exist_ok=True)
    with open(f"{C}/{target}/{name}", "wb") as f:
        f.write(data)

# image: the small hostile/odd images of tests/data/images, two goldens cut
# down, and broken headers.
for n in sorted(os.listdir("tests/data/images")):
    if not n.endswith(".sh"):
        shutil.copy(f"tests/data/images/{n}", f"{C}/image/{n}") if os.path.isdir(f"{C}/image") else (os.makedirs(f"{C}/image"), shutil.copy(f"tests/data/images/{n}", f"{C}/image/{n}"))
png = open("tests/data/images/grey1.png", "rb").read()
put("image", "empty", b"")
put("image", "png_truncated", png[: len(png) // 2])
put("image", "png_magic_only", b"\x89PNG\r\n\x1a\n")
put("image", "jpeg_soi_only", b"\xff\xd8\xff")
put("image", "gif_header", b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")
put("image", "svg_text", b'<svg xmlns="http://www.w3.org/2000/svg" width="4" height="4"/>')
put("image", "pbm", b"P1\n2 2\n0 1 1 0\n")

# pth: a tiny torch-style zip (protocol 2 pickle of an OrderedDict of
# _rebuild_tensor_v2 calls with persistent storage ids), plus broken ones.
torch = types.ModuleType("torch"); utils = types.ModuleType("torch._utils")
class FloatStorage: pass
class HalfStorage: pass
FloatStorage.__module__ = HalfStorage.__module__ = "torch"
def _rebuild_tensor_v2(*a): pass
_rebuild_tensor_v2.__module__ = "torch._utils"
torch.FloatStorage, torch.HalfStorage, utils._rebuild_tensor_v2 = FloatStorage, HalfStorage, _rebuild_tensor_v2
sys.modules["torch"], sys.modules["torch._utils"] = torch, utils
class T:
    def __init__(self, key, cls, shape, n):
        self.key, self.cls, self.shape, self.n = key, cls, shape, n
    def __reduce__(self):
        stride, s = [], 1
        for d in reversed(self.shape):
            stride.insert(0, s); s *= d
        return (_rebuild_tensor_v2, (Storage(self.key, self.cls, self.n), 0, tuple(self.shape), tuple(stride), False, __import__("collections").OrderedDict()))
class Storage:
    def __init__(self, key, cls, n): self.key, self.cls, self.n = key, cls, n
class P(pickle.Pickler):
    def persistent_id(self, o):
        return ("storage", o.cls, o.key, "cpu", o.n) if isinstance(o, Storage) else None
import collections
sd = collections.OrderedDict([("a.weight", T("0", FloatStorage, [2, 3], 6)), ("b.bias", T("1", HalfStorage, [4], 4))])
buf = io.BytesIO(); P(buf, protocol=2).dump(sd)
def pth(pkl, entries):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", pkl)
        for k, v in entries.items(): z.writestr(f"archive/data/{k}", v)
        z.writestr("archive/version", b"3\n")
    return out.getvalue()
good = pth(buf.getvalue(), {"0": struct.pack("<6f", *range(6)), "1": b"\0\x3c" * 4})
put("pth", "tiny.pth", good)
put("pth", "tiny_short_storage.pth", pth(buf.getvalue(), {"0": b"\0" * 8, "1": b""}))
put("pth", "truncated.pth", good[: len(good) // 2])
put("pth", "empty", b"")
put("pth", "eocd_only", b"PK\x05\x06" + b"\0" * 18)
put("pth", "pickle_bad_opcode.pth", pth(b"\x80\x02\xfe.", {}))
put("pth", "pickle_deep.pth", pth(b"\x80\x02" + b"]" * 5000 + b".", {}))

# model: the header (+ a little data) of each golden model file.
for n in ("golden_ram.ram", "golden_ram_plus.ram", "golden_ram_plus_clip.ram"):
    b = open(f"build/models/{n}", "rb").read(1 << 20)
    h = 8 + struct.unpack("<Q", b[:8])[0]
    put("model", n + ".head", b[: h + 64])
put("model", "empty", b"")
put("model", "huge_header_len", struct.pack("<Q", 1 << 62) + b"{}")
put("model", "json_only", struct.pack("<Q", 2) + b"{}")
put("model", "bad_offsets", struct.pack("<Q", 70) + b'{"t":{"dtype":"F32","shape":[4],"data_offsets":[0,999999999]}}      ')

# bpe: strings.
for i, s in enumerate(["a photo of a cat.", "", " ", "Hello, World! it's 3.14", "日本語のテキスト 🐱",
                       "\xff\xfe invalid", "a" * 300, "don't 've 're 'll", "#vocab\n#version\na b\n"]):
    put("bpe", f"s{i}", s.encode("utf-8", "surrogateescape") if "\xff" not in s else b"\xff\xfe invalid")
put("bpe", "s_invalid_utf8", b"caf\xc3 \xed\xa0\x80 \xf4\x90\x80\x80")

# sql: fn byte, nargs byte, typed args (see tests/fuzz/fuzz_sql.c).
def text(s): b = s.encode(); return b"\x03" + struct.pack("<H", len(b)) + b
def blob(b): return b"\x04" + struct.pack("<H", len(b)) + b
img = lambda i: b"\x05" + bytes([i])
FN = ["ram_tags", "ram_tag_scores", "ram_score", "ram_tokenize", "ram_embed", "ram_cls", "ram_model",
      "ram_set_threshold", "ram_reset_thresholds", "ram_set_max_pixels", "ram_set_exif", "ram_version", "ram_debug"]
f = lambda n, *a: bytes([FN.index(n), len(a)]) + b"".join(a)
seeds = {
    "tags_img": f("ram_tags", img(0)), "tags_zh": f("ram_tags", img(1), text("zh")),
    "tags_badlang": f("ram_tags", img(1), text("fr")), "tags_blob": f("ram_tags", blob(png)),
    "tags_null": f("ram_tags", b"\x00"), "tags_int": f("ram_tags", b"\x01" + struct.pack("<q", 7)),
    "tag_scores": f("ram_tag_scores", img(2)), "tag_scores_vocab": f("ram_tag_scores", img(2), text('["a cat","a dog"]')),
    "tag_scores_badjson": f("ram_tag_scores", img(2), text('["a cat",')),
    "score": f("ram_score", img(3), text("a photo of a cat")), "score_json": f("ram_score", img(3), text('["x",1]')),
    "tokenize": f("ram_tokenize", text("hello world")), "embed": f("ram_embed", img(0)), "cls": f("ram_cls", img(1)),
    "model": f("ram_model"), "thr": f("ram_set_threshold", text("tag0"), b"\x02" + struct.pack("<d", 0.3)),
    "thr_nan": f("ram_set_threshold", text("tag0"), b"\x02" + struct.pack("<d", float("nan"))),
    "maxpix": f("ram_set_max_pixels", b"\x01" + struct.pack("<q", 16)), "exif": f("ram_set_exif", b"\x01" + struct.pack("<q", 0)),
    "reset": f("ram_reset_thresholds"), "version": f("ram_version"), "debug": f("ram_debug"),
}
for k, v in seeds.items(): put("sql", k, v)
