// app.js — the search page of demo/serve.py: asks the server's JSON API
// (/api/info, /api/tags, /api/search, /api/photo/ID), draws the ranked grid
// and the large view, and shows the SQL and timing of every answer. Text from
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

async function loadInfo() {
  try {
    const info = await getJSON("/api/info");
    $("info").textContent = `${info.count} pictures in table ${info.table} · model ${info.model.kind}, ` +
      `${info.model.tags} tags${info.model.text_encoder ? "" : " (no text encoder: tags only)"}`;
    if (info.k) $("k").value = new URLSearchParams(location.search).get("k") || info.k;
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

async function search(q, k, push) {
  const params = new URLSearchParams({ q, k: String(k) });
  if (push) history.replaceState(null, "", q ? `?${params}` : location.pathname);
  $("mode").textContent = "searching…";
  let a;
  try {
    a = await getJSON(`/api/search?${params}`);
  } catch (e) {
    a = { error: e.message, results: [], sql: "" };
  }
  current = a;
  const modes = {
    tag: `tag query: "${a.tag}"${a.tag_zh ? " / " + a.tag_zh : ""}, ranked by its probability`,
    match: "free text: RAM++ open-set probability of the description, best first",
    all: "no query: the first rows of the index",
  };
  $("mode").textContent = modes[a.mode] || "";
  $("sql").textContent = a.sql || "";
  $("timing").textContent = a.error ? "" : `${a.results.length} rows in ${a.ms} ms`;
  $("error").hidden = !a.error;
  $("error").textContent = a.error || "";
  const grid = $("grid");
  grid.replaceChildren(...a.results.map((r, i) => card(r, i, a)));
  if (!a.error && !a.results.length) grid.appendChild(el("p", "empty", "No picture matches."));
  grid.dataset.state = a.error ? "error" : "done";
}

async function openViewer(id) {
  const v = $("viewer");
  $("big").src = `/photo/${id}`;
  $("orig").href = `/original/${id}`;
  $("vpath").textContent = "";
  $("vtags").textContent = "";
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
$("search").addEventListener("submit", (e) => {
  e.preventDefault();
  search($("q").value.trim(), Number($("k").value) || 24, true);
});

(async () => {
  const p = new URLSearchParams(location.search);
  $("q").value = p.get("q") || "";
  await loadInfo();
  await search($("q").value.trim(), Number($("k").value) || 24, false);
})();
