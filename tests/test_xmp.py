#!/usr/bin/env python3
"""test_xmp.py — ram_xmp() and `ram-index --write-xmp`, read back with exiftool
(Debian libimage-exiftool-perl), the way a photo manager would read them:

- a new sidecar holds the selected tags as dc:subject and auto|TAG as
  lr:hierarchicalSubject;
- merged into a sidecar another tool wrote (keywords, a hierarchical keyword,
  rating, title, a darktable property, an xpacket wrapper), nothing of it is
  lost, and a keyword the user wrote that the tagger also selects is kept
  once and stays after a rerun;
- a rerun with other tags replaces the automatic keywords only;
- Chinese tag names (lang 'zh') and a Chinese user keyword come back intact;
- a corrupt, DOCTYPE or non-XMP sidecar is an SQL error with nothing printed
  on stderr by the XMP toolkit, and ram-index leaves such a sidecar byte for
  byte as it was (exit 1, the file named) while writing the others;
- ram-index's --xmp-name photo.xmp and --xmp-lang zh.

    RAM_BUILD=build python3 tests/test_xmp.py

Runs on the bundled default model (models/default.ram, named by RAM_MODEL).
"""
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile

import pyhost

pyhost.host("xmp.py_load")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(os.path.join(ROOT, os.environ.get("RAM_BUILD", "build")))
MODEL = os.path.join(ROOT, "models", "default.ram")
IMG1 = os.path.join(ROOT, "demo", "photos", "04-a-large-plain-pink-star.png")
IMG2 = os.path.join(ROOT, "demo", "photos", "02-two-large-striped-cyan-crosses.jpg")
IMG3 = os.path.join(ROOT, "demo", "photos", "05-three-large-plain-cyan-rings.jpg")
failed = 0


def check(ok, name, why=""):
    global failed
    if ok:
        print("PASS: xmp.%s" % name)
    else:
        failed += 1
        print("FAIL: xmp.%s: %s" % (name, why))


for f in (os.path.join(BUILD, "ram.so"), os.path.join(BUILD, "ram-index"), MODEL):
    if not os.path.exists(f):
        print("FAIL: xmp.build: %s is missing (run make first)" % f)
        sys.exit(1)
if not shutil.which("exiftool"):
    print("FAIL: xmp.exiftool: exiftool is not installed (Debian libimage-exiftool-perl, tools/deps.sh)")
    sys.exit(1)

T = tempfile.mkdtemp()
os.environ.update(RAM_MODEL=MODEL, XDG_DATA_HOME=os.path.join(T, "xdg"), XDG_DATA_DIRS=os.path.join(T, "xdgd"))


def exif(path):
    """exiftool's reading of an XMP file: {tag: value}, lists always lists."""
    out = subprocess.run(["exiftool", "-j", "-struct", "-XMP:all", path], capture_output=True, text=True)
    d = json.loads(out.stdout)[0]
    for k in ("Subject", "HierarchicalSubject"):
        if k in d and not isinstance(d[k], list):
            d[k] = [d[k]]
    return d


def write(name, text):
    p = os.path.join(T, name)
    with open(p, "w", encoding="utf-8") as f:
        f.write(text)
    return p


db = sqlite3.connect(":memory:")
db.enable_load_extension(True)
db.load_extension(os.path.join(BUILD, "ram"))
rb = lambda p: open(p, "rb").read()
tags = lambda img, lang="en": [t for t in db.execute("SELECT ram_tags(?, ?)", (rb(img), lang)).fetchone()[0].split(" | ") if t]
xmp = lambda *a: db.execute("SELECT ram_xmp(%s)" % ",".join("?" * len(a)), a).fetchone()[0]
t1, t2 = tags(IMG1), tags(IMG2)
check(len(t1) >= 3 and len(t2) >= 3 and set(t1) != set(t2), "tags", "%r %r" % (t1, t2))

# 1. a new sidecar
d = exif(write("new.xmp", xmp(rb(IMG1))))
check(d.get("Subject") == t1 and d.get("HierarchicalSubject") == ["auto|" + t for t in t1], "new",
      json.dumps(d, ensure_ascii=False))

# 2. merged into a sidecar another tool wrote
USER = """<?xpacket begin="\ufeff" id="W5M0MpCehiHzreSzNTczkc9d"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about=""
    xmlns:xmp="http://ns.adobe.com/xap/1.0/"
    xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:lr="http://ns.adobe.com/lightroom/1.0/"
    xmlns:darktable="http://darktable.sf.net/"
    xmp:Rating="4" darktable:xmp_version="5" darktable:history_end="3">
   <dc:title><rdf:Alt><rdf:li xml:lang="x-default">At the beach</rdf:li></rdf:Alt></dc:title>
   <dc:subject><rdf:Bag><rdf:li>holiday</rdf:li><rdf:li>猫咪</rdf:li><rdf:li>%s</rdf:li></rdf:Bag></dc:subject>
   <lr:hierarchicalSubject><rdf:Bag><rdf:li>places|Lisbon</rdf:li></rdf:Bag></lr:hierarchicalSubject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>
<?xpacket end="w"?>
""" % t1[0]
user_kw = ["holiday", "猫咪", t1[0]]
m1 = xmp(rb(IMG1), USER)
d = exif(write("m1.xmp", m1))
subj = d.get("Subject", [])
kept = d.get("Rating") == 4 and d.get("Title") == "At the beach" and str(d.get("Xmp_version")) == "5" \
    and str(d.get("History_end")) == "3"
check(kept and all(k in subj for k in user_kw) and all(t in subj for t in t1) and subj.count(t1[0]) == 1
      and "places|Lisbon" in d.get("HierarchicalSubject", []), "merge_keeps_user", json.dumps(d, ensure_ascii=False))

# 3. a rerun with other tags replaces only the automatic keywords
m2 = xmp(rb(IMG2), m1)
d = exif(write("m2.xmp", m2))
subj = d.get("Subject", [])
want = user_kw + [t for t in t2 if t not in user_kw]
gone = [t for t in t1 if t not in t2 and t not in user_kw]
check(sorted(subj) == sorted(want) and not any(g in subj for g in gone), "rerun_replaces_auto",
      "Subject %r, want %r" % (subj, want))
check(sorted(d.get("HierarchicalSubject", [])) == sorted(["places|Lisbon"] + ["auto|" + t for t in t2])
      and d.get("Rating") == 4 and d.get("Title") == "At the beach", "rerun_keeps_user",
      json.dumps(d, ensure_ascii=False))
# the same call again changes nothing
check(xmp(rb(IMG2), m2) == m2, "rerun_idempotent")
# tags as TEXT (the ram_index tags column), a deeper root, no root
d = exif(write("text.xmp", xmp("dog | grass", None, "ram|tags")))
check(d.get("Subject") == ["dog", "grass"] and d.get("HierarchicalSubject") == ["ram|tags|dog", "ram|tags|grass"],
      "text_tags_root", json.dumps(d))
d = exif(write("noroot.xmp", xmp("dog", None, "")))
check(d.get("Subject") == ["dog"] and "HierarchicalSubject" not in d, "no_root", json.dumps(d))

# 4. Chinese tag names
z1 = tags(IMG1, "zh")
d = exif(write("zh.xmp", xmp(rb(IMG1), m2, "auto", "zh")))
subj = d.get("Subject", [])
check(len(z1) == len(t1) and all(t in subj for t in z1) and "猫咪" in subj
      and not any(t in subj for t in t2 if t not in user_kw), "chinese", "Subject %r, zh tags %r" % (subj, z1))

# 5. refused sidecars: SQL errors, nothing on stderr from the toolkit
BAD = {
    "truncated": (USER[:len(USER) // 2], "not valid XML"),
    "garbage": ("\x00\x01 not xml at all", "not valid XML"),
    "doctype": ('<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><x>&a;</x>', "DOCTYPE"),
    "html": ("<html><body>a photo</body></html>", "no RDF"),
}
for name, (text, why) in BAD.items():
    try:
        xmp(rb(IMG1), text)
        check(False, "refuse_" + name, "accepted")
    except sqlite3.OperationalError as e:
        check("ram_xmp(): argument 2 (existing sidecar): " in str(e) and why in str(e), "refuse_" + name, str(e))
sh = subprocess.run(["sqlite3", "-batch", "-init", "/dev/null", ":memory:", ".load %s/ram" % BUILD,
                     "SELECT ram_xmp('dog', readfile('%s'))" % write("bad.xmp", BAD["truncated"][0])],
                    capture_output=True, text=True)
errs = [l for l in sh.stderr.splitlines() if l.strip()]
check(len(errs) == 1 and "not valid XML" in errs[0], "stderr_clean", repr(sh.stderr))
for args, why in ((("x", 42), "argument 2 must be"), ((42,), "argument 1 must be"),
                  (("x", None, 7), "argument 3 (root) must be TEXT"), (("x", None, "a", "fr"), "'en' or 'zh'")):
    try:
        xmp(*args)
        check(False, "arg_errors", "accepted %r" % (args,))
    except sqlite3.OperationalError as e:
        check(why in str(e), "arg_errors " + why, str(e))
for sql, why in (("SELECT ram_xmp(CAST(x'61207c2080' AS TEXT))", "argument 1 (tags) is not valid UTF-8"),
                 ("SELECT ram_xmp('a', NULL, CAST(x'eda080' AS TEXT))", "argument 3 (root) is not valid UTF-8")):
    try:
        db.execute(sql).fetchone()
        check(False, "utf8", "accepted: " + sql)
    except sqlite3.OperationalError as e:
        check(why in str(e), "utf8 " + why.split()[1], str(e))
check(xmp(None) is None, "null")

# 6. ram-index --write-xmp
P = os.path.join(T, "pics")
os.mkdir(P)
for img in (IMG1, IMG2, IMG3):
    shutil.copy(img, P)
n1, n2, n3 = (os.path.join(P, os.path.basename(i)) for i in (IMG1, IMG2, IMG3))
with open(n2 + ".xmp", "w", encoding="utf-8") as f:
    f.write(USER)
corrupt = USER[: len(USER) // 3]
with open(n3 + ".xmp", "w", encoding="utf-8") as f:
    f.write(corrupt)


def ram_index(*args):
    return subprocess.run([os.path.join(BUILD, "ram-index"), "pics", "pics.db", "--threads", "1", "--write-xmp"]
                          + list(args), cwd=T, capture_output=True, text=True)


r = ram_index()
d1, d2 = exif(n1 + ".xmp"), exif(n2 + ".xmp")
check(r.returncode == 1 and "05-three-large-plain-cyan-rings.jpg.xmp" in r.stderr and "not valid XML" in r.stderr
      and open(n3 + ".xmp", encoding="utf-8").read() == corrupt, "index_corrupt_left",
      "rc %d: %s" % (r.returncode, r.stderr))
check(d1.get("Subject") == t1, "index_new", json.dumps(d1, ensure_ascii=False))
check(all(k in d2.get("Subject", []) for k in user_kw + t2) and d2.get("Rating") == 4, "index_merge",
      json.dumps(d2, ensure_ascii=False))
os.remove(n3 + ".xmp")
r = ram_index("--xmp-lang", "zh")
z2 = tags(IMG2, "zh")
d1, d2 = exif(n1 + ".xmp"), exif(n2 + ".xmp")
check(r.returncode == 0 and d1.get("Subject") == z1 and sorted(d2.get("Subject", []))
      == sorted(user_kw + [t for t in z2 if t not in user_kw]) and os.path.exists(n3 + ".xmp"),
      "index_rerun_zh", "rc %d %s: %r %r" % (r.returncode, r.stderr, d1.get("Subject"), d2.get("Subject")))
r = ram_index("--xmp-name", "photo.xmp", "--xmp-root", "")
lr = os.path.splitext(n1)[0] + ".xmp"
d = exif(lr) if os.path.exists(lr) else {}
check(r.returncode == 0 and d.get("Subject") == t1 and "HierarchicalSubject" not in d, "index_lightroom_name",
      "rc %d %s: %r" % (r.returncode, r.stderr, d))
r = ram_index("--xmp-name", "photo.raw.xmp")
check(r.returncode == 2, "index_bad_option", "rc %d" % r.returncode)

shutil.rmtree(T)
sys.exit(1 if failed else 0)
