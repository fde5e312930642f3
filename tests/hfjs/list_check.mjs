// list_check.mjs - the npm client's repo listings (listModels, listDatasets,
// listSpaces) against the mirror's /api/{models,datasets,spaces}.  Prints
// "ok - ..." / "not ok - ..." lines for tests/e2e/test_ui_listing.sh; exits 1
// on a failure.
//
// env: HFM_URL (the mirror with the UI sources, lib_ui.sh), HFM_MODELS (the
//   model ids it must list, one a line), HFM_GIT_FILE (a file of acme/gitrepo),
//   HFM_BULK_URL and HFM_BULK_N (a mirror with N models: more than one page).
import { listDatasets, listModels, listSpaces } from "@huggingface/hub";

const hubUrl = process.env.HFM_URL;
let failed = 0;
const report = (good, what, why) => {
	console.log(`${good ? "ok" : "not ok"} - ${what}`);
	if (!good) {
		failed++;
		if (why) console.log(`# ${why}`);
	}
};
const collect = async (it) => {
	const out = [];
	for await (const x of it) out.push(x);
	return out;
};
const same = (got, want, what) =>
	report(JSON.stringify(got) === JSON.stringify(want), what, `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);

const want = process.env.HFM_MODELS.split("\n").filter(Boolean).sort();
const all = await collect(listModels({ hubUrl }));
same(all.map((m) => m.name).sort(), want, "listModels: every model of every source, cache-only included");
report(all.every((m) => m.updatedAt instanceof Date && !isNaN(m.updatedAt)), "listModels: each has a date");

same((await collect(listModels({ hubUrl, search: { query: "ODD.name" } }))).map((m) => m.name),
	["acme/odd.Name-1_x"], "listModels search: a substring in any case");
same((await collect(listModels({ hubUrl, search: { owner: "up" } }))).map((m) => m.name),
	["up/cached-only", "up/gated"], "listModels owner: the cache-only repos' owner, the private one left out");
same((await collect(listModels({ hubUrl, search: { owner: "up" }, accessToken: "hf_good" }))).map((m) => m.name),
	["up/cached-only", "up/gated", "up/priv"], "listModels with the token: the private repo too");
same((await collect(listModels({ hubUrl, search: { tags: ["ui-test"] } }))).map((m) => m.name),
	["acme/odd.Name-1_x"], "listModels tags: a tag of the model card");
same((await collect(listModels({ hubUrl, search: { task: "text-generation" } }))).map((m) => m.name),
	["acme/odd.Name-1_x"], "listModels task: the card's pipeline_tag");
same((await collect(listModels({ hubUrl, search: { query: "no-such-repo" } }))).length, 0,
	"listModels: a search nothing matches is empty");

const git = await collect(listModels({ hubUrl, search: { query: "gitrepo" }, additionalFields: ["filePaths"] }));
report(git.length === 1 && git[0].filePaths.includes(process.env.HFM_GIT_FILE),
	"listModels filePaths: the git mirror's files, odd names as they are", JSON.stringify(git));

const byDate = await collect(listModels({ hubUrl, sort: "lastModified" }));
report(byDate.every((m, i) => i === 0 || byDate[i - 1].updatedAt >= m.updatedAt),
	"listModels sort lastModified: newest first");

same((await collect(listDatasets({ hubUrl }))).map((d) => d.name), ["acme/ds"], "listDatasets");
same((await collect(listSpaces({ hubUrl }))).map((s) => s.name), ["acme/space"], "listSpaces");

const bulkUrl = process.env.HFM_BULK_URL;
const n = Number(process.env.HFM_BULK_N);
const bulk = (await collect(listModels({ hubUrl: bulkUrl }))).map((m) => m.name);
report(bulk.length === n && new Set(bulk).size === n,
	`listModels across pages: ${n} models, each once (pages of 500 joined by Link)`,
	`got ${bulk.length}, ${new Set(bulk).size} distinct`);
const some = await collect(listModels({ hubUrl: bulkUrl, limit: n - 7 }));
report(some.length === n - 7, "listModels limit: as many as asked, across pages", `got ${some.length}`);

process.exit(failed ? 1 : 0);
