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
for n in ("golden_ram.ram", "golden_ram_plus.ram", "golden_ram_plus_clip.ram", "golden_tag2text.ram", "heldout_tag2text.ram"):
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

# index: programs for fuzz_index.c (one byte picks the table name, one the
# statement template, then the template's choices and one value per bound
# parameter; see the reader in fuzz_index.c).
def nm(i=0): return bytes([i])
CREATE, INSERT, INS_ROWID, INS3, SELECT, DELETE, UPDATE, CMD, TX, DROP, RENAME, FUNC, THRESH, LOAD, JOIN, SCORECOL, SCHEMA, RAW = 0, 2, 4, 5, 6, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22
INTS = [0, 1, -1, 2, 5, 11, 12, 20, 1000]
REALS = [0.0, -0.0, 0.01, 0.009999, 0.5, 0.9, 1.0]
TEXTS = ["tag6", "hot dog", "Hot Dog", "标签6", "tag11", "a red bicycle", '["a dog","a red square"]', "[]"]
def v_null(): return b"\0"
def v_int(x): return bytes([1, INTS.index(x)])
def v_real(x): return bytes([2, REALS.index(x)])
def v_text(t): return bytes([4, TEXTS.index(t)])
def v_img(m): return bytes([5, m])
def v_cut(m, how, pos): return bytes([7, m, how, pos & 255, pos >> 8])
def v_emb(m): return bytes([8, m])
def v_raw(b, blob=False): return bytes([9, 1 if blob else 0, len(b)]) + b
def create(opts=b"", n=0, t=0): return nm(t) + bytes([CREATE, n]) + opts
def insert(path, img, t=0): return nm(t) + bytes([INSERT]) + path + img
def select(conds, cols=0, tail=0, t=0, vals=b""): return nm(t) + bytes([SELECT, len(conds)] + conds + [cols, tail]) + vals
def cmd(m, t=0): return nm(t) + bytes([CMD, m])
def tx(i): return nm() + bytes([TX, i])
def raw(sql): return nm() + bytes([RAW, len(sql)]) + sql
four = b"".join(insert(v_raw(b"p%d.jpg" % i), v_img(i)) for i in range(4))
opt_model = bytes([0, 0])                                  # model='BUILD/models/golden_ram_plus_clip.ram'
opt_floor = bytes([1, 1, 1, 7])                            # floor=0.01
opt_store = bytes([1, 2, 1, 1])                            # store_images=1
opt_raw = bytes([5, 9]) + b"exif = no"                     # raw option text
put("index", "tag_query", create() + four + select([0], 0, 0, vals=v_text("tag6"))
    + select([0, 3], 1, 1, vals=v_text("hot dog") + v_real(0.5)))
put("index", "match_k", create() + four + select([5, 6], 0, 1, vals=v_text("a red bicycle") + v_int(2))
    + select([5, 7, 0], 5, 3, vals=v_text('["a dog","a red square"]') + v_int(2) + v_text("tag6") + v_int(5)))
put("index", "options_reembed", create(opt_model + opt_floor + opt_store + opt_raw, 4) + four
    + cmd(4) + select([11], 1, 0, vals=v_int(1)) + cmd(1) + cmd(0) + select([], 2, 0))
put("index", "transactions", create() + tx(0) + four + tx(3) + nm() + bytes([DELETE, 0]) + v_int(1)
    + tx(5) + tx(1) + cmd(0) + select([], 4, 0))
put("index", "raw_sql", create() + four + raw(b"SELECT path, tags, score FROM t0 WHERE tag = 'tag6' AND score > 0.2")
    + raw(b"SELECT count(*) FROM t0_postings JOIN t0_files USING(img)"))
put("index", "rename_drop", create() + four + nm() + bytes([RENAME, 1]) + select([8], 1, 0, t=1, vals=v_int(2))
    + nm(1) + bytes([DROP]) + select([], 0, 0, t=1))
put("index", "thresholds", create() + four + nm() + bytes([THRESH]) + v_text("tag6") + v_real(0.9)
    + nm() + bytes([FUNC, 0]) + v_text("hot dog") + v_real(0.01) + select([0], 0, 0, vals=v_text("hot dog")))
put("index", "update_delete", create() + four + nm() + bytes([UPDATE, 0]) + v_raw(b"renamed") + v_int(1)
    + nm() + bytes([UPDATE, 1]) + v_img(3) + v_int(2) + nm() + bytes([UPDATE, 2]) + v_text("tag6") + v_int(1)
    + nm() + bytes([DELETE, 1]) + v_raw(b"p3.jpg") + cmd(0) + select([], 1, 4))
put("index", "model_switch", create() + four + cmd(7) + select([5], 0, 0, vals=v_text("a red bicycle"))
    + cmd(2) + nm() + bytes([LOAD, 1]) + cmd(3) + select([0], 0, 0, vals=v_text("tag6")))
put("index", "embeds_and_bad_images", create() + insert(v_raw(b"e0"), v_emb(0)) + insert(v_raw(b"e1"), v_emb(1))
    + insert(v_raw(b"cut"), v_cut(0, 1, 300)) + insert(v_raw(b"flip"), v_cut(5, 2, 40)) + insert(v_null(), v_img(1))
    + insert(v_int(5), v_raw(b"\x89PNG\r\n\x1a\n", True)) + insert(v_raw(b"t"), v_text("tag6"))
    + nm() + bytes([SCORECOL]) + v_text("a red bicycle") + v_int(1) + cmd(0))
put("index", "bad_create", create(bytes([1, 1, 1, 9]), 1) + create(bytes([1, 2, 1, 5]), 1, t=1)
    + create(bytes([0, 3]), 1, t=2) + create(bytes([0, 5]), 1) + create(bytes([1, 6, 1, 0]), 1)
    + nm(200) + bytes([CREATE, 0]) + nm(206) + bytes([CREATE, 0]) + create(bytes([0, 2]), 1)
    + select([5], 0, 0, vals=v_text("tag6")))
put("index", "join_schema", create() + four + nm() + bytes([JOIN]) + v_text("a red bicycle") + v_int(2)
    + nm() + bytes([SCHEMA]) + nm() + bytes([INS3]) + v_raw(b"a") + v_img(0) + v_raw(b"a") + v_img(1) + v_null() + v_img(2))
