// snapshot.mjs - one snapshotDownload of acme/tiny from HFM_URL into a fresh
// cache dir, checked against the source tree HFM_REPO and against the file
// list HFM_LIST_URL answers (upstream, while it is up).  Prints TAP-ish
// "ok"/"not ok" lines for tests/e2e/test_cache_npm.sh; exits 1 on a failure.
import { mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathsInfo, snapshotDownload } from "@huggingface/hub";

const hubUrl = process.env.HFM_URL;
const src = process.env.HFM_REPO;
const want = (process.env.HFM_FILES || "").split("\n").filter(Boolean).sort();
let failed = 0;
const report = (good, what) => {
	console.log(`${good ? "ok" : "not ok"} - ${what}`);
	if (!good) failed++;
};

const cacheDir = await mkdtemp(join(tmpdir(), "hfm-npm-"));
try {
	const info = await pathsInfo({ repo: "acme/tiny", hubUrl, paths: ["config.json"], expand: true });
	report(/^[0-9a-f]{40}$/.test(info[0]?.lastCommit?.id ?? ""), "pathsInfo(expand) has lastCommit.id");
	const folder = await snapshotDownload({ repo: "acme/tiny", hubUrl, cacheDir });
	const got = [];
	const walk = async (rel) => {
		for (const name of await readdir(join(folder, rel))) {
			const p = rel ? `${rel}/${name}` : name;
			if ((await stat(join(folder, p))).isDirectory()) await walk(p);
			else got.push(p);
		}
	};
	await walk("");
	got.sort();
	report(JSON.stringify(got) === JSON.stringify(want), `snapshot holds the repo's ${want.length} files`);
	let same = 0;
	for (const p of got)
		if ((await readFile(join(folder, p))).equals(await readFile(join(src, p)))) same++;
		else console.log(`# ${p}: content differs`);
	report(same === got.length && got.length > 0, "every file byte for byte");
} catch (e) {
	report(false, `snapshotDownload: ${e}`);
} finally {
	await rm(cacheDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
