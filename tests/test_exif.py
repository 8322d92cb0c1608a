#!/usr/bin/env python3
"""test_exif.py — capture date, camera and GPS position in ram_index
(core/exif.c, ext/index_meta.c), on JPEGs given EXIF by exiftool (Debian
libimage-exiftool-perl) and then damaged byte by byte:

- DateTimeOriginal + OffsetTimeOriginal -> taken '2019-07-14T10:20:30+02:00',
  taken_source 'exif'; Make/Model; GPS rationals and refs -> signed degrees
  (N/E positive, S/W negative);
- no EXIF date: the mtime given in the INSERT, as UTC '...Z', source 'mtime';
  neither: NULL;
- filtering and sorting: tag = ... AND taken >= '2019-01-01' ORDER BY taken;
- hostile values (a date of 9999:99:99, NUL and 0xFF bytes in the date, a
  make with control characters and invalid UTF-8, a zero GPS denominator, a
  latitude of 91 degrees, a missing GPS ref, an APP1 Exif segment of random
  bytes, an EXIF block cut short): the image still indexes, the damaged
  value is NULL (text is valid UTF-8), never a crash;
- the columns a statement gives win (and are type-checked), so
  INSERT ... SELECT path, entry, taken, ... copies them between tables;
  UPDATE of mtime keeps an EXIF date; delete, delete-stale, RENAME and DROP
  keep photos_meta in step;
- a table made before photos_meta (the table dropped, as main's tables
  are) reads NULL, also read-only, and the same INSERT again fills it
  without an inference.

    RAM_BUILD=build python3 tests/test_exif.py
"""
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import tempfile

import pyhost

pyhost.host("exif.py_load")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.path.abspath(os.path.join(ROOT, os.environ.get("RAM_BUILD", "build")))
MODEL = os.path.join(BUILD, "models", "golden_ram_plus.ram")
BASE = os.path.join(ROOT, "tests", "data", "golden", "images", "img0.jpg")
PNG = os.path.join(ROOT, "tests", "data", "golden", "images", "img1.png")
failed = 0


def check(ok, name, why=""):
    global failed
    if ok:
        print("PASS: exif.%s" % name)
    else:
        failed += 1
        print("FAIL: exif.%s: %s" % (name, why))


for f in (os.path.join(BUILD, "ram.so"), MODEL):
    if not os.path.exists(f):
        print("FAIL: exif.build: %s is missing (run make first)" % f)
        sys.exit(1)
if not shutil.which("exiftool"):
    print("FAIL: exif.exiftool: exiftool is not installed (Debian libimage-exiftool-perl, tools/deps.sh)")
    sys.exit(1)

T = tempfile.mkdtemp()


def tagged(name, *args):
    """A copy of the base JPEG with exiftool's -TAG=VALUE arguments applied."""
    p = os.path.join(T, name)
    shutil.copy(BASE, p)
    r = subprocess.run(["exiftool", "-q", "-overwrite_original"] + list(args) + [p], capture_output=True, text=True)
    if r.returncode != 0:
        print("FAIL: exif.exiftool_%s: %s" % (name, r.stderr.strip()))
        sys.exit(1)
    return open(p, "rb").read()


def patched(data, old, new):
    assert len(old) == len(new) and data.count(old) == 1, (old, new)
    return data.replace(old, new)


FULL = ["-DateTimeOriginal=2019:07:14 10:20:30", "-OffsetTimeOriginal=+02:00", "-Make=Canon",
        "-Model=Canon EOS 5D (Mark II)", "-GPSLatitude=38.7223", "-GPSLatitudeRef=N", "-GPSLongitude=9.1393",
        "-GPSLongitudeRef=W"]
full = tagged("full.jpg", *FULL)
south = tagged("south.jpg", "-DateTimeOriginal=2021:02:03 04:05:06", "-GPSLatitude=33.8688",
               "-GPSLatitudeRef=S", "-GPSLongitude=151.2093", "-GPSLongitudeRef=E", "-Make=Apple")
old = tagged("old.jpg", "-DateTimeOriginal=2005:12:31 23:59:59", "-Model=EX-Z750")
plain = open(BASE, "rb").read()
png = open(PNG, "rb").read()

# hostile variants, made from the well-formed file by patching bytes in place
bad_date = patched(full, b"2019:07:14 10:20:30", b"9999:99:99 99:99:99")
nul_date = patched(full, b"2019:07:14 10:20:30", b"\x00\xff\x012019:07:14 10:2\x00")
bad_make = patched(full, b"Canon\x00", b"C\x01\x07a(\x00")  # control characters
bad_utf8 = patched(full, b"Canon\x00", b"C\xff\xc3(n\x00")  # not UTF-8
rationals = b"\x00\x00\x00\x26\x00\x00\x00\x01\x00\x00\x00\x2b\x00\x00\x00\x01\x00\x00\x01\xfb\x00\x00\x00\x19"
zero_den = patched(full, rationals, rationals[:20] + b"\x00\x00\x00\x00")  # 507/0 seconds of latitude
lat91 = patched(full, rationals, b"\x00\x00\x00\x5b" + rationals[4:])  # 91 degrees
no_ref = tagged("noref.jpg", *(FULL + ["-GPSLatitudeRef="]))
rnd = random.Random(18)
junk = bytes(rnd.randrange(256) for _ in range(600))
app1 = b"Exif\x00\x00MM\x00\x2a\x00\x00\x00\x08" + junk
garbage = plain[:2] + b"\xff\xe1" + (len(app1) + 2).to_bytes(2, "big") + app1 + plain[2:]
cut = b"Exif\x00\x00" + full[full.index(b"MM\x00\x2a"):][:40]  # IFD0 entries pointing past the end
short = plain[:2] + b"\xff\xe1" + (len(cut) + 2).to_bytes(2, "big") + cut + plain[2:]

db = sqlite3.connect(os.path.join(T, "photos.db"))
db.enable_load_extension(True)
db.load_extension(os.path.join(BUILD, "ram"))
db.execute("SELECT ram_load(?)", (MODEL,)).fetchone()
db.execute("CREATE VIRTUAL TABLE photos USING ram_index")
COLS = "taken, taken_source, camera_make, camera_model, latitude, longitude"
row = lambda path, t="photos": db.execute("SELECT %s FROM %s WHERE path = ?" % (COLS, t), (path,)).fetchone()
MTIME = 1600000000  # 2020-09-13T12:26:40Z
ins = "INSERT INTO photos(path, image, mtime) VALUES(?, ?, ?)"
for path, data, mtime in [("full.jpg", full, MTIME), ("south.jpg", south, None), ("old.jpg", old, MTIME),
                          ("plain.jpg", plain, MTIME), ("png.png", png, MTIME), ("none.jpg", plain, None)]:
    db.execute(ins, (path, data, mtime))
db.commit()

r = row("full.jpg")
check(r[:4] == ("2019-07-14T10:20:30+02:00", "exif", "Canon", "Canon EOS 5D (Mark II)")
      and abs(r[4] - 38.7223) < 1e-6 and abs(r[5] + 9.1393) < 1e-6, "full", repr(r))
r = row("south.jpg")
check(r[:4] == ("2021-02-03T04:05:06", "exif", "Apple", None) and abs(r[4] + 33.8688) < 1e-6
      and abs(r[5] - 151.2093) < 1e-6, "south_east", repr(r))
check(row("old.jpg") == ("2005-12-31T23:59:59", "exif", None, "EX-Z750", None, None), "old", repr(row("old.jpg")))
check(row("plain.jpg") == ("2020-09-13T12:26:40Z", "mtime", None, None, None, None), "mtime_jpeg",
      repr(row("plain.jpg")))
check(row("png.png") == ("2020-09-13T12:26:40Z", "mtime", None, None, None, None), "mtime_png", repr(row("png.png")))
check(row("none.jpg") == (None,) * 6, "nothing_known", repr(row("none.jpg")))
check(db.execute("SELECT count(*) FROM photos").fetchone()[0] == 6
      and db.execute("SELECT path FROM photos").fetchone() is not None
      and len(db.execute("SELECT * FROM photos").description) == 3, "select_star_unchanged")

# filtering and sorting with a tag: every picture of the golden model has 'hot dog' or not alike
tag = db.execute("SELECT tag FROM ram_tag_scores(?) WHERE selected LIMIT 1", (plain,)).fetchone()[0]
got = [p for p, in db.execute("SELECT path FROM photos WHERE tag = ? AND taken >= '2019-01-01' ORDER BY taken",
                              (tag,))]
want = [p for p, t in sorted(db.execute("SELECT path, taken FROM photos WHERE taken >= '2019-01-01'").fetchall(),
                             key=lambda x: x[1])
        if db.execute("SELECT count(*) FROM photos WHERE tag = ? AND path = ?", (tag, p)).fetchone()[0]]
check(got == want and got[:2] == ["full.jpg", "plain.jpg"], "tag_and_date", repr((got, want)))
check(db.execute("SELECT min(datetime(taken)) FROM photos WHERE taken_source = 'exif'").fetchone()[0]
      == "2005-12-31 23:59:59", "sqlite_date_functions")

# hostile EXIF: the row is there, the bad value is NULL, the rest stays
for name, data in [("bad_date", bad_date), ("nul_date", nul_date), ("bad_make", bad_make), ("bad_utf8", bad_utf8),
                   ("zero_den", zero_den), ("lat91", lat91), ("no_ref", no_ref), ("garbage", garbage),
                   ("short", short)]:
    try:
        db.execute(ins, (name, data, MTIME))
        r = row(name)
    except sqlite3.Error as e:
        check(False, "hostile_" + name, str(e))
        continue
    if name in ("bad_date", "nul_date"):
        ok = r[:2] == ("2020-09-13T12:26:40Z", "mtime") and r[2] == "Canon" and r[4] is not None
    elif name == "bad_make":
        ok = r[0] == "2019-07-14T10:20:30+02:00" and r[2] == "C??a("
    elif name == "bad_utf8":
        ok = r[0] == "2019-07-14T10:20:30+02:00" and r[2] is None and r[3] == "Canon EOS 5D (Mark II)"
    elif name in ("zero_den", "lat91", "no_ref"):
        ok = r[0] == "2019-07-14T10:20:30+02:00" and r[4] is None and r[5] is None
    else:
        ok = r[:2] == ("2020-09-13T12:26:40Z", "mtime") and r[2:] == (None,) * 4
    tags = db.execute("SELECT tags FROM photos WHERE path = ?", (name,)).fetchone()[0]
    check(ok and tags is not None, "hostile_" + name, repr(r))

# values given by the statement: type checks, then copied between tables with entries
for sql, args, msg in [
        ("INSERT INTO photos(path, image, taken) VALUES('x', ?, 5)", (plain,), "taken must be TEXT or NULL"),
        ("INSERT INTO photos(path, image, latitude) VALUES('x', ?, 91)", (plain,), "latitude must be a number"),
        ("INSERT INTO photos(path, image, longitude) VALUES('x', ?, 'east')", (plain,), "longitude must be"),
        ("INSERT INTO photos(path, image, mtime) VALUES('x', ?, 'yesterday')", (plain,), "mtime must be"),
        ("INSERT INTO photos(path, image, mtime) VALUES('x', ?, 1e300)", (plain,), "mtime must be"),
        ("UPDATE photos SET camera_make = x'00' WHERE path = 'full.jpg'", (), "camera_make must be TEXT")]:
    try:
        db.execute(sql, args)
        check(False, "given_error_" + msg.split()[0], "no error")
    except sqlite3.Error as e:
        check(msg in str(e), "given_error_" + msg.split()[0], str(e))
db.execute("INSERT INTO photos(path, image, taken, camera_make) VALUES('given.jpg', ?, '1999-01-01', 'Mine')",
           (full,))
check(row("given.jpg")[:4] == ("1999-01-01", None, "Mine", "Canon EOS 5D (Mark II)"), "given_wins",
      repr(row("given.jpg")))
db.execute("CREATE VIRTUAL TABLE copy USING ram_index")
n0 = db.execute("SELECT json_extract(ram_index_stats(), '$.inferences')").fetchone()[0]
db.execute("INSERT INTO copy(path, entry, %s) SELECT path, entry, %s FROM photos" % (COLS, COLS))
n1 = db.execute("SELECT json_extract(ram_index_stats(), '$.inferences')").fetchone()[0]
a = db.execute("SELECT path, %s FROM photos ORDER BY path" % COLS).fetchall()
b = db.execute("SELECT path, %s FROM copy ORDER BY path" % COLS).fetchall()
check(a == b and n1 == n0, "copied_with_entries", "%d inferences; %r" % (n1 - n0, [x for x in zip(a, b) if x[0] != x[1]]))

# updates: a new mtime keeps an EXIF date and replaces an mtime date; a rename keeps everything
db.execute("UPDATE photos SET mtime = 0 WHERE path IN ('full.jpg', 'plain.jpg')")
check(row("full.jpg")[:2] == ("2019-07-14T10:20:30+02:00", "exif")
      and row("plain.jpg")[:2] == ("1970-01-01T00:00:00Z", "mtime"), "update_mtime",
      repr((row("full.jpg"), row("plain.jpg"))))
# the same file inserted again (a rerun): the stored values stay, a new mtime replaces an mtime date
db.execute(ins, ("plain.jpg", plain, 86400))
db.execute(ins, ("full.jpg", full, 86400))
check(row("plain.jpg")[:2] == ("1970-01-02T00:00:00Z", "mtime") and row("full.jpg")[:3]
      == ("2019-07-14T10:20:30+02:00", "exif", "Canon"), "rerun_same_file", repr((row("plain.jpg"), row("full.jpg"))))
before = row("south.jpg")
db.execute("UPDATE photos SET path = 'renamed.jpg' WHERE path = 'south.jpg'")
check(row("renamed.jpg") == before, "rename_keeps", repr(row("renamed.jpg")))
db.execute("UPDATE photos SET image = ? WHERE path = 'renamed.jpg'", (old,))
check(row("renamed.jpg") == ("2005-12-31T23:59:59", "exif", None, "EX-Z750", None, None), "new_image_new_exif",
      repr(row("renamed.jpg")))
db.execute("UPDATE photos SET latitude = -1.5, longitude = 2 WHERE path = 'renamed.jpg'")
check(row("renamed.jpg")[3:] == ("EX-Z750", -1.5, 2.0), "update_gps", repr(row("renamed.jpg")))
db.execute("DELETE FROM photos WHERE path = 'old.jpg'")
orphans = "SELECT count(*) FROM photos_meta WHERE id NOT IN (SELECT id FROM photos_files)"
check(db.execute(orphans).fetchone()[0] == 0 and db.execute("SELECT count(*) FROM photos_meta").fetchone()[0]
      == db.execute("SELECT count(*) FROM photos").fetchone()[0], "delete_keeps_step",
      repr(db.execute("SELECT id FROM photos_files WHERE id NOT IN (SELECT id FROM photos_meta)").fetchall()))
db.execute("ALTER TABLE copy RENAME TO copy2")
check(db.execute("SELECT taken FROM copy2 WHERE path = 'full.jpg'").fetchone()[0] == "2019-07-14T10:20:30+02:00",
      "alter_rename")
db.execute("DROP TABLE copy2")
check(db.execute("SELECT count(*) FROM sqlite_master WHERE name LIKE 'copy%'").fetchone()[0] == 0, "drop")
try:
    db.execute("INSERT INTO photos(photos) VALUES('integrity-check')")
    check(True, "integrity")
except sqlite3.Error as e:
    check(False, "integrity", str(e))
db.execute("INSERT INTO photos_meta(id, taken) VALUES(999999, '2000-01-01')")
try:
    db.execute("INSERT INTO photos(photos) VALUES('integrity-check')")
    check(False, "integrity_orphan", "passed")
except sqlite3.Error as e:
    check("1 photos_meta rows belong to no file" in str(e), "integrity_orphan", str(e))
db.execute("DELETE FROM photos_meta WHERE id = 999999")
db.commit()

# a table made before photos_meta: NULLs (read-only too), then the same INSERT fills it, no inference
db.execute("DROP TABLE photos_meta")
db.commit()
db.close()
ro = sqlite3.connect("file:%s?mode=ro" % os.path.join(T, "photos.db"), uri=True)
ro.enable_load_extension(True)
ro.load_extension(os.path.join(BUILD, "ram"))
ro.execute("SELECT ram_load(?)", (MODEL,)).fetchone()
r = ro.execute("SELECT count(*), count(taken), count(camera_make) FROM photos").fetchone()
check(r[0] > 0 and r[1:] == (0, 0), "old_table_readonly", repr(r))
ro.close()
db = sqlite3.connect(os.path.join(T, "photos.db"))
db.enable_load_extension(True)
db.load_extension(os.path.join(BUILD, "ram"))
db.execute("SELECT ram_load(?)", (MODEL,)).fetchone()
check(db.execute("SELECT count(taken) FROM photos").fetchone()[0] == 0, "old_table_nulls")
n0 = db.execute("SELECT json_extract(ram_index_stats(), '$.inferences')").fetchone()[0]
db.execute(ins, ("full.jpg", full, MTIME))
db.execute(ins, ("plain.jpg", plain, MTIME))
n1 = db.execute("SELECT json_extract(ram_index_stats(), '$.inferences')").fetchone()[0]
check(row("full.jpg")[0] == "2019-07-14T10:20:30+02:00" and row("plain.jpg")[1] == "mtime" and n1 == n0,
      "old_table_filled", "%r %r, %d inferences" % (row("full.jpg"), row("plain.jpg"), n1 - n0))
db.commit()
db.close()

# build/ram-index passes each file's mtime and carries the staged values along with the entries
lib = os.path.join(T, "lib")
os.mkdir(lib)
for name, data in [("a.jpg", full), ("dup.jpg", full), ("plain.jpg", plain)]:
    with open(os.path.join(lib, name), "wb") as f:
        f.write(data)
os.utime(os.path.join(lib, "plain.jpg"), (MTIME, MTIME))
r = subprocess.run([os.path.join(BUILD, "ram-index"), lib, os.path.join(T, "lib.db")], capture_output=True, text=True,
                   env=dict(os.environ, RAM_MODEL=os.path.join(ROOT, "models", "default.ram")))
got = []
if r.returncode == 0:
    db = sqlite3.connect(os.path.join(T, "lib.db"))
    db.enable_load_extension(True)
    db.load_extension(os.path.join(BUILD, "ram"))
    got = db.execute("SELECT path, taken, taken_source, camera_make FROM photos ORDER BY path").fetchall()
    db.close()
check(got == [("lib/a.jpg", "2019-07-14T10:20:30+02:00", "exif", "Canon"),
              ("lib/dup.jpg", "2019-07-14T10:20:30+02:00", "exif", "Canon"),
              ("lib/plain.jpg", "2020-09-13T12:26:40Z", "mtime", None)], "ram_index_cli", repr(got) + r.stderr[-300:])
# shards merged into one index (ram-index --shard, --merge): the values travel with the entries
env = dict(os.environ, RAM_MODEL=os.path.join(ROOT, "models", "default.ram"))
runs = [subprocess.run([os.path.join(BUILD, "ram-index"), lib, os.path.join(T, "s%d.db" % i), "--shard", "%d/2" % i],
                       capture_output=True, text=True, env=env) for i in (0, 1)]
runs.append(subprocess.run([os.path.join(BUILD, "ram-index"), "--merge", os.path.join(T, "merged.db"),
                            os.path.join(T, "s0.db"), os.path.join(T, "s1.db")], capture_output=True, text=True, env=env))
merged = []
if all(x.returncode == 0 for x in runs):
    db = sqlite3.connect(os.path.join(T, "merged.db"))
    db.enable_load_extension(True)
    db.load_extension(os.path.join(BUILD, "ram"))
    merged = db.execute("SELECT path, taken, taken_source, camera_make FROM photos ORDER BY path").fetchall()
    db.close()
check(merged == got, "shards_merged", repr(merged) + "".join(x.stderr[-200:] for x in runs))

# an index made before photos_meta: ram-index --rescan fills it without an inference
db = sqlite3.connect(os.path.join(T, "lib.db"))
db.execute("DROP TABLE photos_meta")
db.commit()
db.close()
r = subprocess.run([os.path.join(BUILD, "ram-index"), "--rescan", lib, os.path.join(T, "lib.db")],
                   capture_output=True, text=True, env=dict(os.environ, RAM_MODEL=os.path.join(ROOT, "models",
                                                                                              "default.ram")))
db = sqlite3.connect(os.path.join(T, "lib.db"))
db.enable_load_extension(True)
db.load_extension(os.path.join(BUILD, "ram"))
again = db.execute("SELECT path, taken, taken_source, camera_make FROM photos ORDER BY path").fetchall()
db.close()
check(r.returncode == 0 and again == got and " 0 inferences" in r.stderr, "ram_index_rescan_fills",
      repr(again) + r.stderr[-300:])
shutil.rmtree(T)
sys.exit(1 if failed else 0)
