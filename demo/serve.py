#!/usr/bin/python3
"""serve.py — a local search page over a ram_index table (issue 8).

    make serve DB=demo/photos.db                 # http://127.0.0.1:8765/
    /usr/bin/python3 demo/serve.py demo/photos.db --port 8080 --ext build/ram

One page (demo/static/): a search box (a tag of the model, English or
Chinese, with autocompletion from the model's vocabulary; or any free-text
description), a grid of thumbnails ranked by score with the score and tags
under each, and a large view of a photo with all its tag probabilities. The
page shows every SQL statement the server ran, with its timing, so that it
doubles as a lesson in the SQL surface of sqlite-ram.

Python standard library only (http.server, sqlite3): Python 3 and its sqlite3
module are already needed by the tests, so the page adds no dependency. It
must be a Python whose sqlite3 can load extensions: Debian's /usr/bin/python3
can; pyenv's default builds cannot (enable_load_extension is missing).

What is served, and why it is safe to leave running (README "Security"):
- Binds 127.0.0.1 unless --host says otherwise, and (on loopback) answers
  only requests whose Host header names the loopback address, so that a web
  page elsewhere cannot reach it through DNS rebinding.
- The root: --root, else the folders build/ram-index indexed into the
  table (ram_index_roots, relative to the database's folder; one that is /,
  holds the home folder or is not a folder is left out), else the folder
  holding the database (refused when that is / or holds the home folder:
  then --root is required). Never a folder the rows suggest. Pictures are
  asked for by the index's row id (/thumb/ID, /photo/ID, /original/ID),
  never by path; a row's stored path (relative ones looked up under the
  root, the current folder, then the database's folder; with recorded
  roots the database's folder first) is served only when its real path
  (symlinks resolved) lies inside a root (else 403), is a regular file
  (else 404) and libvips identifies it as an image from its header (else
  403), whatever the database says. Paths are bytes: a name that is not
  UTF-8 is shown escaped (\\xNN) and its file is still served.
- The model: --model, else the table's recorded model file only when the
  extension trusts it (ext/model_trust.c: in the default model's or
  RAM_MODEL's folder), else it stops and says how to allow it.
- A browser's request made by another site (Sec-Fetch-Site: cross-site) is
  refused, and every answer says Cross-Origin-Resource-Policy: same-origin,
  so a web page elsewhere cannot show or probe the pictures.
- The database is opened read-only; only SELECTs are run. API answers hold
  no absolute path unless the server was started with --show-paths.
- Bounded: at most MAX_CONNECTIONS connections at once (more are closed at
  once), a request must arrive whole within --timeout seconds (idle and
  slow connections are closed), request bodies are read and dropped (over
  64 KB, or chunked: the connection is closed after the answer), malformed
  queries are 400, and thumbnails are made by at most THUMB_WORKERS
  threads on their own connections (searches never wait for them), one
  job per identical thumbnail.
- Thumbnails are made by the extension's ram_thumbnail() (libvips, inside
  the same gate as the model's decoder: accepted formats, pixel limit) and
  cached as files in DB.thumbs/ beside the database (--thumbs), named by the
  index's content key (XXH3-128 of the bytes), the file's size and mtime
  (an edited file gets a new one) and the thumbnail size, or in memory when
  that folder cannot be written. Files over 256 MB are not read.
"""
import argparse
import array
import http.server
import ipaddress
import json
import os
import queue
import re
import socket
import sqlite3
import sys
import threading
import time
import urllib.parse
from collections import OrderedDict
from contextlib import contextmanager

HERE = os.path.dirname(os.path.abspath(__file__))
STATIC_DIR = os.path.join(HERE, "static")
THUMB = 256       # grid thumbnails: longest side
LARGE = 1024      # the large view
K_DEFAULT = 24
K_MAX = 500       # results per page
PAGE_MAX = 10000  # pages
Q_MAX = 1000      # characters of a query
POOL = 4          # database connections for queries (one per concurrent request)
THUMB_WORKERS = 2 # connections (and threads at once) making thumbnails
TIMEOUT = 10.0    # seconds for a request to arrive whole (idle keep-alive included)
MAX_CONNECTIONS = 64  # served at once (a thread each); more are closed at once
BODY_MAX = 64 << 10  # request body bytes read and dropped; larger: the connection closes
IDENT_WHOLE = 16 << 20  # files up to this size are identified from all their bytes,
IDENT_HEAD = 1 << 20    # larger ones from their first MB (where the headers are)
MEMCACHE_BYTES = 64 << 20
FILE_MAX = 256 << 20  # bytes of a picture the server reads to make a thumbnail


class HttpError(Exception):
    def __init__(self, status, message):
        super().__init__(message)
        self.status = status


def sql_literal(v):
    """v as an SQL literal, to show a statement as one could type it."""
    if v is None:
        return "NULL"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, bytes):
        return "?  -- %d bytes" % len(v)
    return "'" + str(v).replace("'", "''") + "'"


def show_sql(sql, params):
    """The statement with its parameters inlined (for display only: the
    server always binds them)."""
    parts = sql.split("?")
    out = parts[0]
    for i, rest in enumerate(parts[1:]):
        out += (sql_literal(params[i]) if i < len(params) else "?") + rest
    return out


SQL_WORDS = set("""abort action add after all alter and as asc attach before begin between by
cascade case cast check collate column commit conflict constraint create cross current default
delete desc detach distinct drop each else end escape except exists explain fail filter for foreign
from full glob group having if in index inner insert instead intersect into is isnull join key left
like limit match natural no not notnull null of offset on or order outer over primary raise
recursive references regexp reindex release rename replace restrict right rollback row rows
savepoint select set table temp then to transaction trigger union unique update using vacuum
values view virtual when where window with without""".split())


def quote_ident(name):
    if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) and name.lower() not in SQL_WORDS:
        return name  # shown as one would type it
    return '"' + name.replace('"', '""') + '"'


def ascii_lower(s):
    """ram_index compares English tag names ignoring ASCII case only."""
    return s.translate({c: c + 32 for c in range(65, 91)})


def holds_home(d):
    """d is / or holds the home folder: too wide to serve pictures from."""
    home = os.path.realpath(os.path.expanduser("~"))
    return d == "/" or home == d or home.startswith(d.rstrip("/") + "/")


def shown_name(p):
    """A stored path as text that is safe to show: bytes that are not UTF-8
    (surrogate-escaped by the connection's text factory) become \\xNN,
    control characters \\n, \\t or \\xNN, a backslash \\\\."""
    if p is None:
        return None
    out = []
    for ch in p:
        c = ord(ch)
        if 0xDC80 <= c <= 0xDCFF:     # an undecodable byte
            out.append("\\x%02x" % (c - 0xDC00))
        elif ch == "\\":
            out.append("\\\\")
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif c < 0x20 or 0x7F <= c < 0xA0 or 0xD800 <= c <= 0xDFFF:
            out.append("\\x%02x" % c if c < 0x100 else "\\u%04x" % c)
        else:
            out.append(ch)
    return "".join(out)


def text_factory(b):
    """TEXT columns as str; bytes that are not UTF-8 (a file name is any
    bytes) kept as surrogate escapes, which os functions turn back into the
    same bytes, instead of failing the whole query."""
    return b.decode("utf-8", "surrogateescape")


def sniff(data):
    """Content type of an original file, from its first bytes."""
    if data[:3] == b"\xff\xd8\xff":
        return "image/jpeg"
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "image/png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


class Library:
    """The database side: a pool of read-only connections with the extension
    loaded, the vocabulary, queries, and the files of the index."""

    def __init__(self, db_path, ext, table=None, model=None, root=None, thumbs=None, show_paths=False):
        self.db_path = os.path.abspath(db_path)
        self.ext = ext
        self.model = model
        self.show_paths = show_paths
        self.pool = queue.LifoQueue()        # queries
        self.thumb_pool = queue.LifoQueue()  # thumbnail work, apart: a search never waits for it
        self.made = {id(self.pool): 0, id(self.thumb_pool): 0}
        self.lock = threading.Lock()
        self.probe_lock = threading.Lock()   # the connection that identifies images
        self.jobs = {}                       # thumbnail name -> [Event, result, error]
        self.jobs_lock = threading.Lock()
        if not os.path.isfile(self.db_path):
            raise SystemExit("serve: %s: no such database (index a folder first: "
                             "build/ram-index DIR DB, or make demo)" % db_path)
        try:
            self._startup(table)
            self.roots, self.locate_dirs = self._choose_roots(root)
            self.root = self.roots[0]
            self.probe = self._connect()
            # Any image's header is over a 1-pixel limit: the error says
            # libvips identified it (SQLITE_TOOBIG), without decoding it.
            self.probe.execute("SELECT ram_set_max_pixels(1)").fetchone()
        except sqlite3.Error as e:
            raise SystemExit("serve: %s: %s" % (db_path, e))
        self.thumbs = thumbs or self.db_path + ".thumbs"
        self.memcache = OrderedDict()
        self.membytes = 0
        self.memlock = threading.Lock()

    def _startup(self, table):
        with self.conn(first=True) as db:
            self.table = table or self._find_table(db)
            self.t = quote_ident(self.table)
            if not self.model:
                m = self._table_model(db)
                if m and self._table_may_open(db, m):
                    self.model = m  # the vocabulary and MATCH use the table's model
                    db.execute("SELECT ram_load(?)", (m,)).fetchone()
            self.model_info = json.loads(db.execute("SELECT ram_model()").fetchone()[0])
            self._load_vocabulary(db)
            self.count = db.execute("SELECT count(*) FROM %s" % self.t).fetchone()[0]
            if self.vocab:  # a table of another model refuses every tag and MATCH query: say so now
                try:
                    db.execute("SELECT rowid FROM %s WHERE tag = ? LIMIT 1" % self.t,
                               (self.vocab[0][0],)).fetchall()
                except sqlite3.Error as e:
                    raise SystemExit(
                        "serve: %s: table %s cannot answer queries: %s\n  re-embed it with "
                        "build/ram-index DIR %s --switch-model (make demo does), or serve it with "
                        "its model: --model FILE" % (self.db_path, self.table, e, self.db_path))

    # ------------------------------------------------------------ connections

    def _connect(self):
        uri = "file:%s?mode=ro" % urllib.parse.quote(self.db_path)
        db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        db.text_factory = text_factory  # a path is any bytes
        if not hasattr(db, "enable_load_extension"):
            raise SystemExit("serve: this Python's sqlite3 cannot load extensions "
                             "(run it with Debian's /usr/bin/python3)")
        db.enable_load_extension(True)
        try:
            db.load_extension(self.ext)
        except sqlite3.Error as e:
            raise SystemExit("serve: cannot load the extension %s: %s (run make first)"
                             % (self.ext, e))
        db.enable_load_extension(False)
        if self.model:
            db.execute("SELECT ram_load(?)", (self.model,)).fetchone()
        return db

    @contextmanager
    def conn(self, first=False, pool=None):
        """A connection for one request: each is used by one thread at a time.
        pool: self.pool (queries, POOL of them) or self.thumb_pool
        (thumbnails, THUMB_WORKERS)."""
        pool = self.pool if pool is None else pool
        most = THUMB_WORKERS if pool is self.thumb_pool else POOL
        db = None
        try:
            db = pool.get_nowait()
        except queue.Empty:
            with self.lock:
                if self.made[id(pool)] < most or first:
                    self.made[id(pool)] += 1
                    make = True
                else:
                    make = False
            db = self._connect() if make else pool.get()
        try:
            yield db
        finally:
            pool.put(db)

    # ------------------------------------------------------------ startup

    def _find_table(self, db):
        names = [r[0] for r in db.execute(
            "SELECT name FROM sqlite_schema WHERE type = 'table' "
            "AND sql LIKE 'CREATE VIRTUAL TABLE%USING ram_index%'")]
        if len(names) != 1:
            raise SystemExit("serve: %s has %s ram_index tables%s: name one with --table" % (
                self.db_path, len(names) or "no", (" (" + ", ".join(names) + ")") if names else ""))
        return names[0]

    def _table_may_open(self, db, m):
        """Whether the extension lets the table open its recorded model file
        m: only in the folders the user keeps models in (ext/model_trust.c).
        serve.py does not load that file on the database's word either."""
        try:
            db.execute("SELECT rowid FROM %s WHERE tag = '' LIMIT 1" % self.t).fetchall()
        except sqlite3.Error as e:
            if "nor named in this connection" in str(e):
                raise SystemExit(
                    "serve: table %s records the model file %s, outside the folders trusted for models: a "
                    "database does not choose the files this server opens. If you trust that file, serve "
                    "with --model FILE (make serve MODEL=FILE), or set RAM_MODEL to it"
                    % (self.table, shown_name(m)))
        return True

    def _table_model(self, db):
        """The model file the table is bound to (model=, kept in its _config
        table: build/ram-index --model writes one, --switch-model changes
        it), so that the vocabulary and MATCH use it."""
        row = db.execute('SELECT value FROM "%s" WHERE key = \'model\'' %
                         (self.table + "_config").replace('"', '""')).fetchone()
        return row[0] if row and isinstance(row[0], str) and row[0] else None

    def _load_vocabulary(self, db):
        # The model's vocabulary as a table: every tag in class order with
        # the threshold in force; no image, no inference.
        self.vocab_sql = "SELECT class, tag, tag_zh, threshold FROM ram_tag_list ORDER BY class"
        rows = db.execute(self.vocab_sql).fetchall()
        self.vocab = [(r[1], (r[2] or "").strip(), r[3]) for r in rows]
        self.by_name = {}
        for i, (en, zh, _) in enumerate(self.vocab):
            self.by_name.setdefault(ascii_lower(en), i)
            if zh:
                self.by_name.setdefault(zh, i)
        # Captions (ram_index(captions=1), ram-index --captions): shown under
        # each picture and searchable with FTS5 in <table>_captions.
        row = db.execute('SELECT value FROM "%s" WHERE key = \'captions\'' %
                         (self.table + "_config").replace('"', '""')).fetchone()
        self.has_captions = bool(row and row[0] == 1)
        # Tables made before the capture dates (photos_meta) read NULL there:
        # the page then hides the date column rather than showing blanks.
        self.has_dates = db.execute("SELECT count(*) FROM sqlite_schema WHERE name = ?",
                                    (self.table + "_meta",)).fetchone()[0] > 0

    def _choose_roots(self, root):
        """(roots, folders relative paths are looked up in): every served
        file must lie in a root. The user's choice (--root); else the folders
        build/ram-index indexed into the table (ram_index_roots, see
        _recorded_roots); else the folder holding the database, which the user
        chose by putting the database there. Never a folder the rows suggest.
        A default may not be / nor hold the home folder: a database in ~ would
        otherwise open every picture of the home folder to the page."""
        d = os.path.realpath(os.path.dirname(self.db_path))
        if root:
            if not os.path.isdir(root):
                raise SystemExit("serve: --root %s is not a folder" % root)
            r = os.path.realpath(root)
            return [r], [r, os.getcwd(), d]
        recorded = self._recorded_roots(d)
        if recorded:  # ram-index stores names relative to the database's folder
            return recorded, [d] + recorded + [os.getcwd()]
        if holds_home(d):
            raise SystemExit(
                "serve: the database is in %s, which holds your home folder: name the photo folder with "
                "--root DIR (files outside it are refused)" % d)
        return [d], [d, os.getcwd()]

    def _recorded_roots(self, d):
        """The folders build/ram-index indexed into this table, recorded in
        ram_index_roots relative to the database's folder d: the indexer the
        user ran wrote them, and each is still held to the rule of the
        default (an existing folder, not /, not holding the home folder); one
        that breaks it is left out and named on stderr. [] for an index made
        before ram-index recorded its roots."""
        try:
            with self.conn() as db:
                rows = db.execute("SELECT root FROM ram_index_roots WHERE tbl = ? ORDER BY root",
                                  (self.table,)).fetchall()
        except sqlite3.Error:  # no such table
            return []
        out = []
        for (r,) in rows:
            if not isinstance(r, str) or not r:
                continue
            p = os.path.realpath(os.path.join(d, r))
            why = "not a folder" if not os.path.isdir(p) else "it holds your home folder" if holds_home(p) else None
            if why:
                sys.stderr.write("serve: the recorded root %s is not served from: %s\n" % (shown_name(r), why))
            elif p not in out:
                out.append(p)
        # a root inside another adds nothing
        return [p for p in out if not any(q != p and os.path.commonpath([p, q]) == q for q in out)]

    def root_of(self, real):
        """The root a real path lies in, or None."""
        for r in self.roots:
            if os.path.commonpath([real, r]) == r:
                return r
        return None

    # ------------------------------------------------------------ queries

    def tag_of(self, q):
        """Class index of q when it names a tag (English, ASCII case ignored,
        or Chinese), else None."""
        return self.by_name.get(ascii_lower(q), self.by_name.get(q))

    def parse_query(self, q):
        """(positive text, [excluded class indexes]): words of the box that
        start with '-' exclude a tag ('dog -leash', '-"hot dog"'); the rest is
        the tag or description searched for. Only tags can be excluded."""
        pos, neg = [], []
        for m in re.finditer(r'(-?)"([^"]*)"|(\S+)', q):
            if m.group(2) is not None:
                word, minus = m.group(2).strip(), m.group(1) == "-"
            else:
                word, minus = m.group(3), False
                if len(word) > 1 and word.startswith("-"):
                    word, minus = word[1:], True
            if not minus:
                pos.append(word)
                continue
            i = self.tag_of(word)
            if i is None:
                raise HttpError(400, "-%s: only tags of the model can be excluded, and '%s' is not one"
                                % (word, word))  # search() shows it as the query's error
            if i not in neg:
                neg.append(i)
        return " ".join(w for w in pos if w), neg

    SORTS = {"score": "", "date": " ORDER BY taken IS NULL, taken DESC, rowid",
             "date_asc": " ORDER BY taken IS NULL, taken, rowid"}

    def search(self, q, k, page=0, sort="score", like=None, where="pictures"):
        q = q.strip()
        if len(q) > Q_MAX:
            raise HttpError(400, "the query is longer than %d characters" % Q_MAX)
        if sort not in self.SORTS:
            raise HttpError(400, "sort must be one of %s" % ", ".join(self.SORTS))
        if not 0 <= page <= PAGE_MAX:
            raise HttpError(400, "page must be in 0..%d" % PAGE_MAX)
        try:
            text, neg = self.parse_query(q)
        except HttpError as e:  # the box's words, not the request: shown as a query that failed
            return {"query": q, "mode": "", "sql": "", "k": k, "page": page, "sort": sort, "excluded": [],
                    "error": str(e), "results": [], "more": False}
        t = self.t
        if where not in ("pictures", "captions"):
            raise HttpError(400, "in must be pictures or captions")
        if where == "captions" and not self.has_captions:
            raise HttpError(400, "table %s has no captions (ram-index --captions makes a table with them)"
                            % self.table)
        cols = "rowid, path, score, tags, taken, taken_source, caption"
        # Excluded tags: rows holding any of them are left out (the page's
        # "dog -leash"); a tag lookup each, answered by the inverted index.
        excl = "".join(" AND rowid NOT IN (SELECT rowid FROM %s WHERE tag = ?)" % t for _ in neg)
        neg_names = tuple(self.vocab[i][0] for i in neg)
        order = self.SORTS[sort]
        # One row more than the page: whether a next page exists.
        lim = " LIMIT ? OFFSET ?"
        win = (k + 1, page * k)
        if where == "captions" and text and like is None:
            # FTS5 over the captions (porter stemming: 'triangle' finds
            # 'triangles'); score: the negated bm25 rank, higher is better.
            mode = "caption"
            ft = quote_ident(self.table + "_captions")
            inner = ("SELECT p.rowid AS rowid, p.path AS path, -c.rank AS score, p.tags AS tags, p.taken AS taken, "
                     "p.taken_source AS taken_source, p.caption AS caption FROM %s c JOIN %s p ON p.rowid = c.rowid "
                     "WHERE %s MATCH ?" % (ft, t, ft))
            sql = "SELECT * FROM (%s)%s%s%s" % (inner, (" WHERE" + excl[4:]) if excl else "",
                                               order or " ORDER BY score DESC", lim)
            # each word quoted: all must occur (FTS5's implicit AND), and no
            # word can be FTS5 syntax (a stray quote, NEAR, a column filter)
            terms = " ".join('"%s"' % w.replace('"', '""') for w in text.split())
            params = (terms,) + neg_names + win
        elif like is not None:
            # Search by example: the row's stored entry ranks the index by
            # the cosine of CLS embeddings (no inference); the picture itself
            # comes first at 1 and is dropped, hence one more asked for.
            mode = "similar"
            k_all = (page + 1) * k + 2
            if neg:
                with self.conn() as db:
                    k_all += db.execute("SELECT count(*) FROM %s WHERE %s" % (
                        t, " OR ".join("rowid IN (SELECT rowid FROM %s WHERE tag = ?)" % t for _ in neg)),
                        neg_names).fetchone()[0]
            inner = "SELECT %s FROM %s WHERE %s MATCH (SELECT entry FROM %s WHERE rowid = ?) AND k = ?" % (
                cols, t, t, t)
            sql = "SELECT * FROM (%s) WHERE rowid != ?%s%s%s" % (inner, excl, order, lim)
            params = (like, k_all, like) + neg_names + win
        elif not text:
            mode = "all"
            where = (" WHERE" + excl[4:]) if excl else ""
            sql = "SELECT %s FROM %s%s%s%s" % (cols, t, where, order or " ORDER BY rowid", lim)
            params = neg_names + win
        elif self.tag_of(text) is not None:
            mode = "tag"
            sql = "SELECT %s FROM %s WHERE tag = ?%s%s%s" % (cols, t, excl, order or " ORDER BY score DESC", lim)
            params = (text,) + neg_names + win
        else:
            # MATCH ranks the best k_all; the page is cut from them (in
            # score order, or by date among them). Excluded rows are asked
            # for on top, so that a full page remains after they go.
            mode = "match"
            k_all = (page + 1) * k + 1
            if neg:
                with self.conn() as db:
                    k_all += db.execute("SELECT count(*) FROM %s WHERE %s" % (
                        t, " OR ".join("rowid IN (SELECT rowid FROM %s WHERE tag = ?)" % t for _ in neg)),
                        neg_names).fetchone()[0]
            inner = "SELECT %s FROM %s WHERE %s MATCH ? AND k = ?" % (cols, t, t)
            sql = "SELECT * FROM (%s)%s%s%s" % (inner, (" WHERE" + excl[4:]) if excl else "", order, lim) \
                if (neg or order) else inner + lim
            params = (text, k_all) + neg_names + win
        out = {"query": q, "mode": mode, "sql": show_sql(sql, params), "k": k, "page": page, "sort": sort,
               "excluded": [self.vocab[i][0] for i in neg]}
        if like is not None:
            out["like"] = like
        if mode == "tag":
            i = self.tag_of(text)
            out["tag"], out["tag_zh"] = self.vocab[i][0], self.vocab[i][1]
        with self.conn() as db:
            t0 = time.perf_counter()
            try:
                rows = db.execute(sql, params).fetchall()
            except sqlite3.Error as e:
                out["error"] = str(e)
                out["results"] = []
                return out
            out["ms"] = round((time.perf_counter() - t0) * 1000, 2)
        out["more"] = len(rows) > k
        out["results"] = [{"id": r[0], "path": self.shown_path(r[1]), "score": r[2],
                           "tags": r[3].split(" | ") if r[3] else [], "taken": r[4], "taken_source": r[5],
                           "caption": r[6]}
                          for r in rows[:k]]
        return out

    def details(self, rowid):
        sql = ("SELECT path, tags, tags_zh, probs, taken, taken_source, camera_make, camera_model, latitude, "
               "longitude, caption FROM %s WHERE rowid = ?" % self.t)
        with self.conn() as db:
            t0 = time.perf_counter()
            row = db.execute(sql, (rowid,)).fetchone()
            ms = round((time.perf_counter() - t0) * 1000, 2)
        if not row:
            raise HttpError(404, "no row %d in the index" % rowid)
        path, tags, tags_zh, probs = row[:4]
        taken, taken_source, make, model, lat, lon, caption = row[4:]
        scores = []
        if probs:
            # num_class little-endian float32, in class order (docs/INDEX.md)
            a = array.array("f")
            a.frombytes(probs[:len(probs) // 4 * 4])
            if sys.byteorder == "big":
                a.byteswap()
            for i, p in enumerate(a[:len(self.vocab)]):
                if p > 0:
                    en, zh, th = self.vocab[i]
                    scores.append({"tag": en, "tag_zh": zh, "score": p, "threshold": th,
                                   "selected": p > th})
            scores.sort(key=lambda s: -s["score"])
        camera = " ".join(x for x in (make, model) if x)
        if make and model and model.lower().startswith(make.lower()):
            camera = model  # "Canon" + "Canon EOS 5D"
        return {"id": rowid, "path": self.shown_path(path), "tags": tags.split(" | ") if tags else [],
                "taken": taken, "taken_source": taken_source, "camera": camera or None,
                "latitude": lat, "longitude": lon, "caption": caption,
                "tags_zh": tags_zh.split(" | ") if tags_zh else [], "scores": scores,
                "sql": show_sql(sql, (rowid,)), "ms": ms,
                "thumb_sql": "SELECT ram_thumbnail(?, %d)  -- ?: the file's bytes; %d for the grid; "
                             "cached in %s" % (LARGE, THUMB, os.path.basename(self.thumbs)),
                "note": "probs: the stored probabilities (float32 per class, 0 under the floor), "
                        "named with the vocabulary query"}

    def info(self):
        m = self.model_info
        f = m.get("file") or ""
        return {"table": self.table, "count": self.count,
                # absolute paths only when asked for (--show-paths): any local
                # program may query this port
                "root": self.root if self.show_paths else os.path.basename(self.root),
                "roots": len(self.roots),
                "model": {"kind": m.get("kind"), "tags": m.get("tags"),
                          "file": f if self.show_paths else os.path.basename(f),
                          "text_encoder": m.get("text_encoder")},
                "vocab_sql": self.vocab_sql, "k": K_DEFAULT, "dates": self.has_dates,
                "captions": self.has_captions}

    def tags(self):
        return {"sql": self.vocab_sql, "tags": [[en, zh] for en, zh, _ in self.vocab]}

    # ------------------------------------------------------------ files

    def shown_path(self, p):
        """The path as the page shows it: relative to the root when inside
        it (else as stored, unless absolute paths are hidden: then the file
        name), escaped (shown_name)."""
        if p is None:
            return None
        full = os.path.normpath(self._locate(p))
        r = self.root_of(full) or self.root
        rel = os.path.relpath(full, r)
        if len(self.roots) > 1 and not rel.startswith(".."):
            rel = os.path.join(os.path.basename(r), rel)  # several roots: which one
        if rel.startswith(".."):
            rel = p if (self.show_paths or not os.path.isabs(p)) else os.path.basename(p)
        return shown_name(rel)

    def _locate(self, p):
        """A stored path as a file name: absolute as it is; relative under
        the folders of locate_dirs (--root, the current folder, the
        database's folder; with recorded roots the database's folder first,
        where build/ram-index's names start), the first that exists. Where
        it points is checked by file_of, not here."""
        if os.path.isabs(p):
            return p
        cands = [os.path.join(d, p) for d in self.locate_dirs]
        for c in cands:
            if os.path.lexists(c):
                return c
        return cands[0]

    def file_of(self, rowid, identify=True):
        """(real path, content key) of a row's file: 404 without such a row
        or regular file, 403 when it resolves outside the root or (identify)
        libvips does not identify it as an image."""
        with self.conn() as db:
            row = db.execute("SELECT path, hex(key) FROM %s WHERE rowid = ?" % self.t,
                             (rowid,)).fetchone()
        if not row or row[0] is None:
            raise HttpError(404, "no picture %d in the index" % rowid)
        path, key = row
        real = os.path.realpath(self._locate(path))
        if self.root_of(real) is None:
            raise HttpError(403, "picture %d is outside the root folder" % rowid)
        if not os.path.isfile(real):
            raise HttpError(404, "the file of picture %d is gone" % rowid)
        if identify and not self.is_image(real):
            raise HttpError(403, "the file of picture %d is not an image" % rowid)
        return real, (key or "").lower()

    def is_image(self, real):
        """libvips identifies the file as an image it can read, from its
        header (nothing is decoded): given the whole file up to IDENT_WHOLE
        bytes, else its first IDENT_HEAD; one file at a time."""
        with self.probe_lock:
            try:
                with open(real, "rb") as f:
                    n = os.fstat(f.fileno()).st_size
                    head = f.read(n if n <= IDENT_WHOLE else IDENT_HEAD)
            except OSError:
                return False
            try:
                self.probe.execute("SELECT ram_thumbnail(?, 1)", (head,)).fetchone()
                return True  # a 1-pixel image
            except sqlite3.DataError:
                return True  # SQLITE_TOOBIG: over the 1-pixel limit, so its header was read
            except sqlite3.Error:
                return False

    def original(self, rowid):
        """An open file of the row's picture (the caller streams and closes it)."""
        real, _ = self.file_of(rowid)
        return open(real, "rb")

    def thumbnail(self, rowid, size):
        # A cached thumbnail was made from an image of this content, size
        # and mtime; otherwise the file is identified before it is decoded.
        real, key = self.file_of(rowid, identify=False)
        st = os.stat(real)
        name = None
        if re.fullmatch(r"[0-9a-f]{32}", key):
            # The file's size and mtime are in the name, so a file edited
            # since it was indexed gets a new thumbnail, not the old one.
            name = "%s-%x-%x-%d.jpg" % (key, st.st_size, st.st_mtime_ns, size)
            cached = self._cache_get(name)
            if cached is not None:
                return cached
        if st.st_size > FILE_MAX:
            raise HttpError(413, "picture %d is a file of %d bytes, over the %d the server reads"
                            % (rowid, st.st_size, FILE_MAX))
        if not self.is_image(real):
            raise HttpError(403, "the file of picture %d is not an image" % rowid)
        job = name or "%s-%x-%x-%d" % (real, st.st_size, st.st_mtime_ns, size)
        with self.jobs_lock:  # identical requests wait for one job
            mine = job not in self.jobs
            if mine:
                self.jobs[job] = [threading.Event(), None, None]
            entry = self.jobs[job]
        if not mine:
            entry[0].wait()
            if entry[2]:  # the same answer, in an exception of this thread's own
                raise HttpError(entry[2].status, str(entry[2]))
            return entry[1]
        try:
            entry[1] = self._make_thumbnail(rowid, real, size)
            if name:
                self._cache_put(name, entry[1])
            return entry[1]
        except HttpError as e:
            entry[2] = e
            raise
        except Exception as e:
            entry[2] = HttpError(500, "thumbnail of picture %d: %s" % (rowid, e))
            raise
        finally:
            with self.jobs_lock:
                del self.jobs[job]
            entry[0].set()

    def _make_thumbnail(self, rowid, real, size):
        # At most THUMB_WORKERS at once, on their own connections: files in
        # memory and decoding threads are bounded, and queries keep theirs.
        with self.conn(pool=self.thumb_pool) as db:
            t0 = time.perf_counter()
            with open(real, "rb") as f:
                data = f.read(FILE_MAX + 1)
            try:
                jpeg = db.execute("SELECT ram_thumbnail(?, ?)", (data, size)).fetchone()[0]
            except sqlite3.Error as e:
                raise HttpError(415, str(e))
            if Handler.verbose:
                sys.stderr.write("serve: made the %d px thumbnail of picture %d in %.0f ms\n"
                                 % (size, rowid, (time.perf_counter() - t0) * 1000))
        return jpeg

    def _cache_get(self, name):
        with self.memlock:
            if name in self.memcache:
                self.memcache.move_to_end(name)
                return self.memcache[name]
        try:
            with open(os.path.join(self.thumbs, name), "rb") as f:
                return f.read()
        except OSError:
            return None

    def _cache_put(self, name, jpeg):
        try:
            os.makedirs(self.thumbs, exist_ok=True)
            tmp = os.path.join(self.thumbs, ".%s.%d.%d" % (name, os.getpid(), threading.get_ident()))
            with open(tmp, "wb") as f:
                f.write(jpeg)
            os.replace(tmp, os.path.join(self.thumbs, name))
            return
        except OSError:
            pass
        with self.memlock:  # an unwritable folder: keep them in memory, bounded
            self.memcache[name] = jpeg
            self.membytes += len(jpeg)
            while self.membytes > MEMCACHE_BYTES and self.memcache:
                _, old = self.memcache.popitem(last=False)
                self.membytes -= len(old)


STATIC = {"/": ("index.html", "text/html; charset=utf-8"),
          "/static/app.js": ("app.js", "text/javascript; charset=utf-8"),
          "/static/app.css": ("app.css", "text/css; charset=utf-8")}

SECURITY_HEADERS = [
    ("Content-Security-Policy", "default-src 'self'; img-src 'self'; object-src 'none'; "
                                "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"),
    ("X-Content-Type-Options", "nosniff"),
    ("Referrer-Policy", "no-referrer"),
    # Another site may not embed the pictures (<img src=http://127.0.0.1:...>).
    ("Cross-Origin-Resource-Policy", "same-origin"),
]


class Reaper:
    """Closes connections whose request has not arrived whole by its
    deadline. The socket timeout alone bounds each read, so a client
    sending a byte every few seconds (slowloris) would hold its thread
    forever; here the whole request (and the idle wait before it) has one
    deadline, checked by one thread."""

    def __init__(self):
        self.deadlines = {}
        self.lock = threading.Lock()
        threading.Thread(target=self._run, name="reaper", daemon=True).start()

    def arm(self, handler, seconds):
        with self.lock:
            self.deadlines[handler] = time.monotonic() + seconds

    def disarm(self, handler):
        with self.lock:
            self.deadlines.pop(handler, None)

    def _run(self):
        while True:
            time.sleep(0.2)
            now = time.monotonic()
            with self.lock:
                late = [h for h, t in self.deadlines.items() if t <= now]
                for h in late:
                    del self.deadlines[h]
            for h in late:
                try:  # the blocked read returns: the handler ends the connection
                    h.connection.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "sqlite-ram-serve"
    protocol_version = "HTTP/1.1"
    lib = None          # set by main()
    static = {}         # path -> (bytes, content type)
    allowed_hosts = None
    verbose = False
    timeout = TIMEOUT   # each socket read or write (StreamRequestHandler.setup applies it)
    reaper = None       # set by main()

    def handle_one_request(self):
        # the request line, headers and body must arrive within the timeout
        # (counted from the end of the previous answer: idle included)
        self.reaper.arm(self, self.timeout)
        try:
            super().handle_one_request()
        except OSError:  # shut down by the reaper, or reset by the client
            self.close_connection = True
        finally:
            self.reaper.disarm(self)

    def parse_request(self):
        """The request's body is read and dropped (no route takes one), so
        that bytes after the headers are never taken for another request;
        a body over BODY_MAX, a chunked one or a bad length closes the
        connection after the answer instead."""
        if not super().parse_request():
            return False
        te, cl = self.headers.get("Transfer-Encoding"), self.headers.get("Content-Length")
        if te is not None or (cl is not None and not re.fullmatch(r"[0-9]{1,12}", cl.strip())):
            self.close_connection = True
        elif cl is not None and int(cl) > BODY_MAX:
            self.close_connection = True
        elif cl is not None and int(cl) > 0:
            left = int(cl)
            while left > 0:
                chunk = self.rfile.read(min(left, 16384))
                if not chunk:
                    self.close_connection = True
                    break
                left -= len(chunk)
        self.reaper.disarm(self)
        return True

    def log_message(self, fmt, *args):
        if self.verbose:
            sys.stderr.write("serve: %s %s\n" % (self.address_string(), fmt % args))

    def send_head(self, status, ctype, length, extra=()):
        self.send_response(status)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(length))
        for k, v in SECURITY_HEADERS + list(extra):
            self.send_header(k, v)
        self.end_headers()

    def send(self, status, body, ctype, extra=()):
        self.send_head(status, ctype, len(body), extra)
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_file(self, f):
        """Streams an original in chunks (no whole file in memory)."""
        head = f.read(16)
        ctype = sniff(head)
        extra = [("Cache-Control", "private, max-age=60")]
        if not ctype:  # not something a browser shows: download it
            ctype = "application/octet-stream"
            extra.append(("Content-Disposition", "attachment"))
        size = os.fstat(f.fileno()).st_size
        self.send_head(200, ctype, size, extra)
        if self.command == "HEAD":
            return
        self.wfile.write(head)
        left = size - len(head)
        while left > 0:
            chunk = f.read(min(left, 1 << 20))
            if not chunk:  # the file shrank meanwhile: a short body, and this
                self.close_connection = True  # connection cannot carry another answer
                break
            self.wfile.write(chunk)
            left -= len(chunk)

    def send_json(self, obj, status=200):
        self.send(status, json.dumps(obj, ensure_ascii=False).encode(), "application/json; charset=utf-8",
                  [("Cache-Control", "no-store")])

    def send_error_text(self, status, message):
        self.send(status, (message + "\n").encode(), "text/plain; charset=utf-8",
                  [("Cache-Control", "no-store")])

    def do_HEAD(self):
        self.do_GET()

    def fail(self, status, message):
        """API answers carry the reason as JSON {"error"}, which the page shows."""
        if self.path.startswith("/api/"):
            self.send_json({"error": message}, status)
        else:
            self.send_error_text(status, "%d %s" % (status, message))

    def do_GET(self):
        try:
            self.route()
        except HttpError as e:
            self.fail(e.status, str(e))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except sqlite3.Error as e:  # e.g. the database changed under the server
            self.fail(500, "database error: %s" % e)
        except OSError as e:  # a file that cannot be read: its reason, not its path
            self.fail(403, "cannot read the file: %s" % (e.strerror or "error"))
        except Exception as e:  # a bug or an unreadable file: say so, keep serving
            sys.stderr.write("serve: %s: %r\n" % (self.path, e))
            self.fail(500, "internal error: %s" % e)

    def route(self):
        if self.allowed_hosts is not None and self.headers.get("Host", "") not in self.allowed_hosts:
            raise HttpError(403, "unexpected Host header (this server answers only on loopback)")
        if self.headers.get("Sec-Fetch-Site", "") == "cross-site":
            raise HttpError(403, "a request from another site (Sec-Fetch-Site: cross-site)")
        url = urllib.parse.urlsplit(self.path)
        path = url.path  # raw: never unquoted, so %2e%2e matches no route
        if path in self.static:
            body, ctype = self.static[path]
            return self.send(200, body, ctype, [("Cache-Control", "no-cache")])
        try:
            args = urllib.parse.parse_qs(url.query, max_num_fields=10, errors="strict")
        except ValueError as e:  # too many fields, bad UTF-8 in an escape
            raise HttpError(400, "malformed query string: %s" % e)
        if path == "/api/search":
            q = args.get("q", [""])[0]
            try:
                k = int(args.get("k", [K_DEFAULT])[0])
            except ValueError:
                raise HttpError(400, "k must be an integer")
            if not 1 <= k <= K_MAX:
                raise HttpError(400, "k must be in 1..%d" % K_MAX)
            try:
                page = int(args.get("page", ["0"])[0])
            except ValueError:
                raise HttpError(400, "page must be an integer")
            like = args.get("like", [None])[0]
            if like is not None:
                if not re.fullmatch(r"[0-9]{1,15}", like):
                    raise HttpError(400, "like must be a picture's row id")
                like = int(like)
            return self.send_json(self.lib.search(q, k, page, args.get("sort", ["score"])[0], like,
                                                  args.get("in", ["pictures"])[0]))
        if path == "/favicon.ico":  # none: an empty answer keeps the console clean
            return self.send(204, b"", "image/x-icon", [("Cache-Control", "max-age=86400")])
        if path == "/api/info":
            return self.send_json(self.lib.info())
        if path == "/api/tags":
            return self.send_json(self.lib.tags())
        m = re.fullmatch(r"/(api/photo|thumb|photo|original)/([0-9]{1,15})", path)
        if not m:
            raise HttpError(404, "not found")
        kind, rowid = m.group(1), int(m.group(2))
        if kind == "api/photo":
            return self.send_json(self.lib.details(rowid))
        if kind == "original":
            with self.lib.original(rowid) as f:
                return self.send_file(f)
        jpeg = self.lib.thumbnail(rowid, THUMB if kind == "thumb" else LARGE)
        return self.send(200, jpeg, "image/jpeg", [("Cache-Control", "private, max-age=3600")])


def is_loopback(host):
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def main(argv=None):
    ap = argparse.ArgumentParser(description="A local search page over a ram_index table.")
    ap.add_argument("db", help="the SQLite database holding the ram_index table (e.g. demo/photos.db)")
    ap.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1: this machine only)")
    ap.add_argument("--port", type=int, default=8765, help="port (default 8765; 0: any free port)")
    ap.add_argument("--root", help="folder every served file must lie in, relative stored paths looked up "
                                   "there first (default: the folder holding the database)")
    ap.add_argument("--table", help="the ram_index table (default: the only one in the database)")
    ap.add_argument("--model", help="model file (default: the table's when it is in a folder trusted for "
                                    "models, else RAM_MODEL, else the bundled one)")
    ap.add_argument("--ext", default=os.path.join(HERE, "..", "build", "ram"),
                    help="the extension (default build/ram next to demo/)")
    ap.add_argument("--thumbs", help="thumbnail cache folder (default: DB.thumbs beside the database)")
    ap.add_argument("--show-paths", action="store_true",
                    help="API answers may hold absolute paths (root, model file, files outside the root); "
                         "by default they hold names relative to the root or bare file names")
    ap.add_argument("--timeout", type=float, default=TIMEOUT,
                    help="seconds a request may take to arrive, idle time before it included (default %g)" % TIMEOUT)
    ap.add_argument("-v", "--verbose", action="store_true", help="log every request on stderr")
    a = ap.parse_args(argv)

    if not hasattr(sqlite3.Connection, "enable_load_extension"):
        raise SystemExit("serve: %s's sqlite3 cannot load extensions: run it with Debian's "
                         "/usr/bin/python3" % sys.executable)
    lib = Library(a.db, a.ext, table=a.table, model=a.model, root=a.root, thumbs=a.thumbs,
                  show_paths=a.show_paths)
    Handler.lib = lib
    Handler.verbose = a.verbose
    Handler.timeout = a.timeout
    Handler.reaper = Reaper()
    Handler.static = {}
    for path, (name, ctype) in STATIC.items():
        with open(os.path.join(STATIC_DIR, name), "rb") as f:
            Handler.static[path] = (f.read(), ctype)

    class Server(http.server.ThreadingHTTPServer):
        daemon_threads = True
        request_queue_size = 128  # listen backlog: a burst of connections is accepted at once
                                  # (5, the default, leaves the rest to SYN-ACK retries, seconds)
        address_family = socket.AF_INET6 if ":" in a.host else socket.AF_INET
        active = 0  # connections being served, one thread each
        active_lock = threading.Lock()

        def process_request(self, request, client_address):
            # At most MAX_CONNECTIONS threads: one more connection is closed
            # at once (its client may retry) instead of costing a thread.
            with self.active_lock:
                full = self.active >= MAX_CONNECTIONS
                if not full:
                    self.active += 1
            if full:
                self.shutdown_request(request)
                return
            try:
                super().process_request(request, client_address)
            except Exception:
                with self.active_lock:
                    self.active -= 1
                raise

        def process_request_thread(self, request, client_address):
            try:
                super().process_request_thread(request, client_address)
            finally:
                with self.active_lock:
                    self.active -= 1

    try:
        srv = Server((a.host, a.port), Handler)
    except OSError as e:
        raise SystemExit("serve: cannot listen on %s:%d: %s (choose another --port)" % (a.host, a.port, e.strerror))
    port = srv.server_address[1]
    shown = "[%s]" % a.host if ":" in a.host else a.host
    if is_loopback(a.host):
        Handler.allowed_hosts = {"%s:%d" % (h, port) for h in (shown, "127.0.0.1", "localhost", "[::1]")}
    else:
        print("serve: WARNING: listening on %s, not loopback: anyone who can reach this port "
              "sees the pictures of the index" % a.host, file=sys.stderr)
    m = lib.model_info
    print("serve: http://%s:%d/  (%s: table %s, %d pictures; model %s, %s tags; root %s)" % (
        shown, port, a.db, lib.table, lib.count, m.get("file"), m.get("tags"), ", ".join(lib.roots)), flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        srv.server_close()


if __name__ == "__main__":
    main()
