// ui_browser.mjs - the web UI in headless Chromium (puppeteer-core), for
// tests/e2e/test_ui_browser.sh.  Prints "ok - ..." / "not ok - ..." lines and
// exits 1 on a failure.
//
// env: HFM_URL (a mirror serving lib_ui.sh's sources, the cache-only repo
//   warm), HFM_MODELS (the model ids it lists, one a line), HFM_HIDDEN (repos
//   the page must not show, one a line), HFM_HOSTILE (names no page may show raw, one a line),
//   CHROMIUM (the browser), SHOT_DIR (where screenshots go).
import { mkdirSync } from "node:fs";
import puppeteer from "puppeteer-core";

const base = process.env.HFM_URL;
const shots = process.env.SHOT_DIR;
const models = process.env.HFM_MODELS.split("\n").filter(Boolean);
const hostile = process.env.HFM_HOSTILE.split("\n").filter(Boolean);
let failed = 0;
const report = (good, what, why) => {
	console.log(`${good ? "ok" : "not ok"} - ${what}`);
	if (!good) {
		failed++;
		for (const l of String(why ?? "").split("\n").slice(0, 20)) if (l) console.log(`# ${l}`);
	}
};
mkdirSync(shots, { recursive: true });

// Chromium's sandbox needs user namespaces, which a root process may not
// use without --no-sandbox; an unprivileged user keeps the sandbox.
const args = ["--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"];
if (process.getuid && process.getuid() === 0) args.push("--no-sandbox");
const browser = await puppeteer.launch({
	executablePath: process.env.CHROMIUM,
	headless: true,
	args,
	defaultViewport: { width: 1000, height: 720, deviceScaleFactor: 1 },
});

// Everything that goes wrong on a page, whatever page it is.
const problems = [];
const page = await browser.newPage();
page.on("console", (m) => {
	if (m.type() === "error" || m.type() === "warn") problems.push(`${page.url()}: console ${m.type()}: ${m.text()}`);
});
page.on("pageerror", (e) => problems.push(`${page.url()}: page error: ${e.message}`));
page.on("dialog", async (d) => {
	problems.push(`${page.url()}: a dialog opened (${d.message()}): script ran`);
	await d.dismiss();
});
page.on("requestfailed", (r) => problems.push(`${r.url()}: request failed: ${r.failure()?.errorText}`));
page.on("response", (r) => {
	if (r.status() >= 400) problems.push(`${r.url()}: ${r.status()}`);
});

async function visit(url) {
	const res = await page.goto(url, { waitUntil: "load" });
	return { status: res.status(), html: await res.text() };
}
const rowNames = () => page.$$eval("#repos tr.repo td.name > a", (as) => as.map((a) => a.textContent));
const shot = (name) => page.screenshot({ path: `${shots}/${name}.png` });

// ---- home ------------------------------------------------------------------------------------
{
	const { status } = await visit(`${base}/`);
	report(status === 200, "home: 200");
	const names = await rowNames();
	const missing = [...models, "acme/ds", "acme/space"].filter((n) => !names.includes(n));
	report(missing.length === 0, "home: every repo of every source, the cache-only one included", `missing ${missing}`);
	const hidden = process.env.HFM_HIDDEN.split("\n").filter(Boolean);
	report(hidden.every((h) => !names.includes(h)), "home: no repo the rules hide, no private repo without its token", names);
	const cells = await page.$$eval("#repos tr.repo", (trs) => trs.map((tr) => [...tr.cells].map((c) => c.textContent)));
	const cached = cells.find((c) => c[0].startsWith("up/cached-only"));
	report(cached && cached[2] === "cache" && /\d/.test(cached[3]) && /UTC/.test(cached[4]),
		"home: the cache-only repo with its source, size and date", JSON.stringify(cached));
	report(cells.every((c) => c[3] && c[4]), "home: every row has a size and a last-modified cell");
	await shot("home");
}

// ---- search and filters: the form, submitted as a user would --------------------------------------
async function submit(q, type, source) {
	await page.goto(`${base}/`, { waitUntil: "load" });
	await page.$eval("input[name=q]", (e, v) => { e.value = v; }, q);
	await page.select("select[name=type]", type);
	await page.select("select[name=source]", source);
	await Promise.all([page.waitForNavigation({ waitUntil: "load" }), page.click("form.search button")]);
	return rowNames();
}
const sourceValue = async (kind) =>
	page.$$eval("select[name=source] option", (os, k) => os.find((o) => o.textContent === k)?.value, kind);
{
	await page.goto(`${base}/`);
	const cacheSrc = await sourceValue("cache");
	const gitSrc = await sourceValue("git");
	let got = await submit("ODD.name", "", "");
	report(JSON.stringify(got) === '["acme/odd.Name-1_x"]', "search: by name, any case", got);
	report((await page.$eval("input[name=q]", (e) => e.value)) === "ODD.name", "search: the box keeps the query");
	await shot("search");
	got = await submit("", "datasets", "");
	report(JSON.stringify(got) === '["acme/ds"]', "filter by type: datasets", got);
	got = await submit("", "", cacheSrc);
	report(JSON.stringify(got) === '["up/cached-only","up/gated"]', "filter by source: the cache", got);
	got = await submit("", "models", gitSrc);
	report(JSON.stringify(got) === '["acme/gitrepo"]', "filter by source: the git mirror", got);
	got = await submit("no such thing", "", "");
	report(got.length === 0 && (await page.$("#none")) !== null, "search: nothing matches, said so");

	// the same form without JavaScript: a plain GET
	const nojs = await browser.newPage();
	await nojs.setJavaScriptEnabled(false);
	await nojs.goto(`${base}/`);
	await nojs.type("input[name=q]", "tiny");
	await Promise.all([nojs.waitForNavigation(), nojs.keyboard.press("Enter")]);
	const n2 = await nojs.$$eval("#repos tr.repo td.name > a", (as) => as.map((a) => a.textContent));
	report(JSON.stringify(n2) === '["acme/tiny"]', "search works with JavaScript off", n2);
	await nojs.close();
}

// ---- every page, every link --------------------------------------------------------------------------
// Pages are crawled from home; each link is requested once (files by GET of
// their first byte); HTML pages are visited in the browser too.
const seen = new Set();
const linkStatus = new Map();
const queue = [`${base}/`, `${base}/-/status`];
const pages = [];
const isPage = (u) => u.startsWith(base) && !/\/(resolve|raw)\//.test(u) && !u.endsWith(".css");
while (queue.length && pages.length < 400) {
	const url = queue.shift();
	if (seen.has(url)) continue;
	seen.add(url);
	const { status, html } = await visit(url);
	pages.push({ url, status, html });
	const links = await page.$$eval("a[href], link[href]", (as) => as.map((a) => a.href));
	for (const l of links) {
		const u = l.split("#")[0];
		if (!linkStatus.has(u)) {
			let s;
			try {
				const r = await fetch(u, { headers: { range: "bytes=0-0" } });
				s = r.status;
				// a gated repo's files need a token: the Hub's answer, not a broken link
				if (s === 401 && r.headers.get("x-error-code") === "GatedRepo") s = "gated";
			} catch (e) {
				s = `error ${e.message}`;
			}
			linkStatus.set(u, s);
		}
		if (isPage(u) && !seen.has(u)) queue.push(u);
	}
}
report(pages.length > 10, `crawled ${pages.length} pages`);
const badPages = pages.filter((p) => p.status !== 200).map((p) => `${p.url}: ${p.status}`);
report(badPages.length === 0, "every page answers 200", badPages.join("\n"));
const badLinks = [...linkStatus].filter(([, s]) => !(s >= 200 && s < 400) && s !== "gated").map(([u, s]) => `${u}: ${s}`);
report(badLinks.length === 0, `every link resolves (${linkStatus.size} links)`, badLinks.join("\n"));
const gatedLinks = [...linkStatus].filter(([, s]) => s === "gated").map(([u]) => u);
report(gatedLinks.length > 0 && gatedLinks.every((u) => u.startsWith(`${base}/up/gated/`)),
	"only the gated repo's files answer GatedRepo without a token", gatedLinks.join("\n"));
report(problems.length === 0, "no console errors, failed requests or script on any page", problems.join("\n"));
const pwned = await page.evaluate(() => window.__pwned);
report(pwned === undefined, "no script from a repo ran", `window.__pwned = ${pwned}`);

// No page carries a hostile name raw (the HTML as the server sent it).
const raw = [];
for (const p of pages) for (const h of hostile) if (p.html.includes(h)) raw.push(`${p.url}: ${h}`);
report(raw.length === 0, `no page has a name unescaped (${pages.length} pages, ${hostile.length} names)`, raw.join("\n"));
const esc = (s) => s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/'/g, "&#39;");
const odd = pages.find((p) => p.url === `${base}/acme/odd.Name-1_x`);
report(odd && hostile.slice(0, 1).every((h) => odd.html.includes(esc(h))), "the odd repo's page shows its file names, escaped");

// ---- the repo pages --------------------------------------------------------------------------
{
	await visit(`${base}/acme/odd.Name-1_x`);
	const readme = await page.$eval(".readme", (e) => ({
		h1: e.querySelector("h1")?.textContent,
		scripts: e.querySelectorAll("script").length,
		handlers: [...e.querySelectorAll("*")].filter((x) => [...x.attributes].some((a) => a.name.startsWith("on"))).length,
		js: [...e.querySelectorAll("a")].filter((a) => a.href.startsWith("javascript:")).length,
		strong: e.querySelector("strong")?.textContent,
	}));
	report(readme.h1?.startsWith("Odd") && readme.strong === "bold", "README rendered (headings, emphasis)", JSON.stringify(readme));
	report(readme.scripts === 0 && readme.handlers === 0 && readme.js === 0,
		"README: no raw HTML, no event handlers, no javascript: links", JSON.stringify(readme));
	const lfs = await page.$$eval("#tree .lfs", (x) => x.length);
	report(lfs === 0, "odd repo: no LFS marks on small text files");
	await shot("repo-odd");

	await visit(`${base}/acme/tiny`);
	const rows = await page.$$eval("#tree tr.file", (trs) => trs.map((tr) => [tr.cells[0].textContent, tr.cells[1].textContent]));
	const w = rows.find((r) => r[0].startsWith("weights.bin"));
	report(w && /LFS/.test(w[0]) && /MiB/.test(w[1]), "repo page: an LFS file marked, with its size", JSON.stringify(w));
	const cmds = await page.$$eval("pre.cmd code", (cs) => cs.map((c) => c.textContent));
	report(cmds.some((c) => c === `HF_ENDPOINT=${base} hf download acme/tiny`) &&
		cmds.some((c) => c === `HF_ENDPOINT=${base} huggingface-cli download acme/tiny`) &&
		cmds.some((c) => c === `git clone ${base}/acme/tiny`), "repo page: the hf, huggingface-cli and git commands", cmds.join("\n"));
	await shot("repo");

	await visit(`${base}/acme/gitrepo/tree/dev`);
	const refs = await page.$$eval(".refs a", (as) => as.map((a) => [a.textContent, a.getAttribute("aria-current")]));
	report(JSON.stringify(refs) === '[["dev","page"],["main",null],["v1",null]]', "git mirror: branches and tags, the current one marked", JSON.stringify(refs));
	const files = await page.$$eval("#tree td.name a", (as) => as.map((a) => a.textContent));
	report(files.includes("dev.txt"), "git mirror: the branch's files", files);
	const clone = await page.$$eval("pre.cmd code", (cs) => cs.map((c) => c.textContent));
	report(clone.includes(`git clone --branch dev ${base}/acme/gitrepo`) &&
		clone.includes(`HF_ENDPOINT=${base} hf download acme/gitrepo --revision dev`), "git mirror: the commands name the branch", clone.join("\n"));
	await shot("repo-git");

	await visit(`${base}/datasets/acme/ds/tree/main/data`);
	const crumbs = await page.$$eval(".crumbs a", (as) => as.map((a) => a.textContent));
	report(JSON.stringify(crumbs) === '["Files","data"]', "a folder: breadcrumbs", JSON.stringify(crumbs));
}

// ---- status --------------------------------------------------------------------------------------
{
	await visit(`${base}/-/status`);
	const st = await page.$eval("main", (m) => ({
		upstream: m.querySelector(".upstream-state")?.textContent,
		store: m.querySelector("#store")?.textContent,
		kinds: [...m.querySelectorAll("#sources tr td:nth-child(2)")].map((td) => td.textContent),
	}));
	report(st.upstream === "reachable", "status: the upstream's state", JSON.stringify(st));
	report(/Objects\s*[1-9]/.test(st.store ?? "") && /Fills\s*[1-9]\d* started/.test(st.store ?? ""),
		"status: store usage and fills", st.store);
	report(JSON.stringify(st.kinds) === '["model-bin","git","cache"]', "status: every source", st.kinds);
	await page.setViewport({ width: 1000, height: 560 });
	await shot("status");
}

await browser.close();
process.exit(failed ? 1 : 0);
