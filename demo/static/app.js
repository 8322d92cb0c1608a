// app.js — the search page of demo/serve.py: asks the server's JSON API
// (/api/info, /api/tags, /api/search, /api/photo/ID), draws the ranked grid
// (with each picture's date, a page at a time, in score or date order) and
// the large view (with its "similar photos": search by example), and shows the SQL and timing of every answer. Text from
// the index (paths, tags) is only ever set with textContent, never as HTML.
"use strict";

const $ = (id) => document.getElementById(id);
const el = (tag, cls, text) => {
  const e = document.createElement(tag);
  if (cls) e.className = cls;
  if (text !== undefined) e.textContent = text;
  return e;
};
const fmt = (s) => (s === null || s === undefined ? "—" : Number(s).toFixed(3));

async function getJSON(url) {
  const r = await fetch(url);
  const body = await r.json().catch(() => null);
  // the server's reason when it gave one (JSON {"error"}), else the status
  if (!r.ok) throw new Error(body && body.error ? body.error : `${r.status} ${r.statusText}`);
  return body;
}

let current = null; // the last search answer
let page = 0;       // the page shown (0-based)

async function loadInfo() {
  try {
    const info = await getJSON("/api/info");
    $("info").textContent = `${info.count} pictures in table ${info.table} · model ${info.model.kind}, ` +
      `${info.model.tags} tags${info.model.text_encoder ? "" : " (no text encoder: tags only)"}`;
    if (info.k) $("k").value = new URLSearchParams(location.search).get("k") || info.k;
    $("sortbox").hidden = !info.dates; // a table made before capture dates has none
    $("inbox").hidden = !info.captions; // a table without captions=1 has none
  } catch (e) {
    $("info").textContent = `cannot reach the server: ${e.message}`;
  }
  try {
    const t = await getJSON("/api/tags");
    $("tagsql").textContent = t.sql;
    const list = $("taglist");
    const seen = new Set();
    for (const [en, zh] of t.tags) {
      for (const v of [en, zh]) {
        if (!v || seen.has(v)) continue;
        seen.add(v);
        const o = document.createElement("option");
        o.value = v;
        if (v === zh) o.label = en;
        list.appendChild(o);
      }
    }
  } catch (e) {
    $("tagsql").textContent = `no vocabulary: ${e.message}`;
  }
}

function card(r, i, answer) {
  const b = el("button", "card");
  b.type = "button";
  b.dataset.id = r.id;
  b.title = r.path || "";
  const box = el("div", "thumb");
  const img = el("img");
  img.src = `/thumb/${r.id}`;
  img.alt = r.path || `picture ${r.id}`;
  img.loading = "lazy";
  box.appendChild(img);
  b.appendChild(box);
  const cap = el("div", "cap");
  const top = el("div", "line");
  top.appendChild(el("span", "rank", `#${i + 1}`));
  top.appendChild(el("span", "score", answer.mode === "all" ? "" : fmt(r.score)));
  cap.appendChild(top);
  cap.appendChild(el("div", "path", (r.path || "").split("/").pop()));
  if (r.caption) cap.appendChild(el("div", "caption", r.caption));
  if (r.taken) {
    // the day, in the photo's own terms (EXIF local time, or the file's mtime in UTC, in italics)
    const d = el("div", `date ${r.taken_source || ""}`, r.taken.slice(0, 10));
    d.title = `${r.taken} (${r.taken_source === "mtime" ? "file modification time" : "EXIF capture time"})`;
    cap.appendChild(d);
  }
  const tags = el("div", "tags");
  for (const t of r.tags) {
    const chip = el("span", "chip", t);
    if (answer.tag && t.toLowerCase() === answer.tag.toLowerCase()) chip.classList.add("hit");
    tags.appendChild(chip);
  }
  cap.appendChild(tags);
  b.appendChild(cap);
  b.addEventListener("click", () => openViewer(r.id));
  return b;
}

async function search(q, k, push, pg = 0, like = null) {
  const sort = $("sort").value;
  const params = new URLSearchParams({ q, k: String(k) });
  if (pg) params.set("page", String(pg));
  if (sort !== "score") params.set("sort", sort);
  if (like !== null) params.set("like", String(like));
  if ($("in").value === "captions") params.set("in", "captions");
  if (push) history.replaceState(null, "", q || pg || sort !== "score" || like !== null ? `?${params}` : location.pathname);
  $("mode").textContent = "searching…";
  let a;
  try {
    a = await getJSON(`/api/search?${params}`);
  } catch (e) {
    a = { error: e.message, results: [], sql: "" };
  }
  current = a;
  page = pg;
  const order = { date: ", newest first", date_asc: ", oldest first" }[a.sort] || "";
  const modes = {
    tag: `tag query: "${a.tag}"${a.tag_zh ? " / " + a.tag_zh : ""}, ranked by its probability${order}`,
    match: order ? `free text: the best of RAM++'s open-set ranking of the description${order}`
                 : "free text: RAM++ open-set probability of the description, best first",
    all: `no query: the rows of the index${order}`,
    similar: `pictures like #${a.like}: cosine of their CLS embeddings, best first${order}`,
    caption: `captions: full-text search (FTS5, bm25), best first${order}`,
  };
  const without = a.excluded && a.excluded.length ? `; without ${a.excluded.join(", ")}` : "";
  $("mode").textContent = (modes[a.mode] || "") + (a.mode ? without : "");
  $("sql").textContent = a.sql || "";
  $("timing").textContent = a.error ? "" : `${a.results.length} rows in ${a.ms} ms`;
  $("error").hidden = !a.error;
  $("error").textContent = a.error || "";
  const grid = $("grid");
  grid.replaceChildren(...a.results.map((r, i) => card(r, pg * k + i, a)));
  if (!a.error && !a.results.length) grid.appendChild(el("p", "empty", "No picture matches."));
  $("pager").hidden = !!a.error || (!pg && !a.more);
  $("prev").disabled = pg === 0;
  $("next").disabled = !a.more;
  $("pageno").textContent = `page ${pg + 1}`;
  grid.dataset.state = a.error ? "error" : "done";
}

async function openViewer(id) {
  const v = $("viewer");
  v.dataset.id = String(id);
  $("big").src = `/photo/${id}`;
  $("orig").href = `/original/${id}`;
  $("vpath").textContent = "";
  $("vtags").textContent = "";
  $("vmeta").textContent = "";
  $("vcaption").textContent = "";
  $("vsql").textContent = "";
  const body = $("vscores").tBodies[0];
  body.replaceChildren();
  if (!v.open) v.showModal();
  let d;
  try {
    d = await getJSON(`/api/photo/${id}`);
  } catch (e) {
    $("vpath").textContent = `picture ${id}: ${e.message}`;
    return;
  }
  $("vpath").textContent = d.path || `picture ${id}`;
  $("vtags").textContent = d.tags.length ? d.tags.join(" · ") + (d.tags_zh.length ? "  (" + d.tags_zh.join(" · ") + ")" : "")
                                          : "no tag above its threshold";
  const meta = [];
  if (d.taken) meta.push(`${d.taken_source === "mtime" ? "file date" : "taken"} ${d.taken.replace("T", " ")}`);
  if (d.camera) meta.push(d.camera);
  if (d.latitude !== null && d.latitude !== undefined)
    meta.push(`${Math.abs(d.latitude).toFixed(5)}° ${d.latitude < 0 ? "S" : "N"}, ` +
              `${Math.abs(d.longitude).toFixed(5)}° ${d.longitude < 0 ? "W" : "E"}`);
  $("vmeta").textContent = meta.join(" · ");
  $("vcaption").textContent = d.caption || "";
  $("vsql").textContent = `${d.sql}\n-- ${d.ms} ms; ${d.note}\n${d.thumb_sql}`;
  for (const s of d.scores) {
    const tr = el("tr", s.selected ? "sel" : "");
    tr.appendChild(el("td", "", s.tag));
    tr.appendChild(el("td", "", s.tag_zh));
    const td = el("td", "bar");
    const bar = el("span");
    bar.style.width = `${Math.round(s.score * 100)}%`;
    td.appendChild(bar);
    td.appendChild(el("b", "", fmt(s.score)));
    tr.appendChild(td);
    tr.appendChild(el("td", "", fmt(s.threshold)));
    body.appendChild(tr);
  }
  v.dataset.state = "done";
}

$("close").addEventListener("click", () => $("viewer").close());
$("viewer").addEventListener("click", (e) => { if (e.target === $("viewer")) $("viewer").close(); });
$("viewer").addEventListener("close", () => { delete $("viewer").dataset.state; });
const rerun = (pg) => search(current ? current.query || "" : $("q").value.trim(), Number($("k").value) || 24, true, pg,
                             current && current.like !== undefined ? current.like : null);
$("search").addEventListener("submit", (e) => {
  e.preventDefault();
  search($("q").value.trim(), Number($("k").value) || 24, true);
});
$("sort").addEventListener("change", () => rerun(0));
$("similar").addEventListener("click", () => {
  // the pictures like the one in the large view (search by example), in the grid
  const id = Number($("viewer").dataset.id);
  $("viewer").close();
  search($("q").value.trim(), Number($("k").value) || 24, true, 0, id);
});
$("prev").addEventListener("click", () => { if (page > 0) rerun(page - 1); });
$("next").addEventListener("click", () => { if (current && current.more) rerun(page + 1); });

(async () => {
  const p = new URLSearchParams(location.search);
  $("q").value = p.get("q") || "";
  if (["date", "date_asc"].includes(p.get("sort"))) $("sort").value = p.get("sort");
  if (p.get("in") === "captions") $("in").value = "captions";
  await loadInfo();
  const like = /^[0-9]+$/.test(p.get("like") || "") ? Number(p.get("like")) : null;
  await search($("q").value.trim(), Number($("k").value) || 24, false, Number(p.get("page")) || 0, like);
})();
