// serve_hostile.mjs — the search page of demo/serve.py in headless Chromium
// (playwright-core) over an index whose file names are hostile (issue 20):
// HTML and script in names, control characters, bytes that are not UTF-8.
// Every name must be shown as the text the API gives (escaped), in the grid
// and the large view, and nothing of it may run: no dialog, no injected
// element, no script error. Prints PASS/FAIL lines for tests/test_serve.sh.
//
// Environment: URL (the server), NPM_DIR (holds node_modules/playwright-core),
// PROFILE (a fresh user-data dir), COUNT (pictures in the index).
import { createRequire } from "node:module";
import path from "node:path";

const env = process.env;
const require = createRequire(path.join(env.NPM_DIR, "node_modules", "x.js"));
const { chromium } = require("playwright-core");

let failed = 0;
const check = (n, ok, why) => {
  if (ok) console.log(`PASS: serve.hostile.${n}`);
  else { failed++; console.log(`FAIL: serve.hostile.${n}: ${why}`); }
};

const ctx = await chromium.launchPersistentContext(env.PROFILE, {
  executablePath: "/usr/bin/chromium",
  headless: true,
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  viewport: { width: 1280, height: 900 },
});
const page = ctx.pages()[0] || (await ctx.newPage());
const errors = [], dialogs = [];
page.on("pageerror", (e) => errors.push(String(e)));
page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
page.on("dialog", (d) => { dialogs.push(d.message()); d.dismiss().catch(() => {}); });
page.setDefaultTimeout(30000);

try {
  await page.goto(env.URL, { waitUntil: "load" });
  await page.waitForSelector("#grid[data-state]");
  const api = await page.evaluate(() => fetch("/api/search?q=&k=50").then((r) => r.json()));
  const cards = await page.$$eval("#grid .card", (cs) => cs.map((c) => ({ id: Number(c.dataset.id), title: c.title })));
  const want = new Map(api.results.map((r) => [r.id, r.path]));
  check("grid_names_as_text", cards.length === Number(env.COUNT) && cards.every((c) => c.title === want.get(c.id)),
        `${cards.length} cards; titles ${JSON.stringify(cards.map((c) => c.title))}`);
  const hostile = api.results.filter((r) => /[<>"]|\\x/.test(r.path));
  check("hostile_names_indexed", hostile.length >= 3, JSON.stringify(api.results.map((r) => r.path)));
  for (const r of hostile) { // the large view of each
    await page.click(`#grid .card[data-id="${r.id}"]`);
    await page.waitForSelector("#viewer[open][data-state=done]");
    const shown = await page.textContent("#vpath");
    check(`viewer_name_${r.id}`, shown === r.path, `shown ${JSON.stringify(shown)}, API ${JSON.stringify(r.path)}`);
    await page.keyboard.press("Escape");
    await page.waitForFunction(() => !document.getElementById("viewer").open);
  }
  await page.waitForTimeout(300);
  const injected = await page.evaluate(() => ({
    pwned: window.__pwned || 0,
    imgs: [...document.querySelectorAll("img")].filter((i) => !/^\/(thumb|photo)\/\d+$/.test(i.getAttribute("src") || "")).length,
    svgs: document.querySelectorAll("svg, script:not([src])").length,
  }));
  check("nothing_ran", dialogs.length === 0 && injected.pwned === 0 && injected.imgs === 0 && injected.svgs === 0,
        `dialogs ${JSON.stringify(dialogs)}, ${JSON.stringify(injected)}`);
  check("no_js_errors", errors.length === 0, errors.join(" | "));
} catch (e) {
  check("run", false, String((e && e.stack) || e).split("\n").slice(0, 3).join(" "));
} finally {
  await ctx.close();
}
process.exit(failed ? 1 : 0);
