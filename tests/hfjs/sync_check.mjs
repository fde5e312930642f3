// sync_check.mjs - what an offline mirror filled by `hfmirror sync` answers
// the npm client for one repo and revision, against the upstream it was
// synced from.  Prints TAP-ish "ok"/"not ok" lines for tests/e2e/test_sync_*.sh;
// exits 1 on a failure.
//
// env: HFM_URL (the offline mirror), HFM_REF (the upstream, asked directly),
//   HFM_REPO ("acme/tiny"), HFM_REVISION ("main"), HFM_TOKEN (optional),
//   HFM_FILES: "*" = every file (then snapshotDownload), else the wanted
//   paths, one a line (then downloadFileToCacheDir for each).
import { mkdtemp, readFile, readdir, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
	downloadFile,
	downloadFileToCacheDir,
	listFiles,
	modelInfo,
	pathsInfo,
	snapshotDownload,
} from "@huggingface/hub";

const hubUrl = process.env.HFM_URL;
const ref = process.env.HFM_REF;
const repo = process.env.HFM_REPO;
const revision = process.env.HFM_REVISION || "main";
const cred = process.env.HFM_TOKEN ? { accessToken: process.env.HFM_TOKEN } : {};
const all = (process.env.HFM_FILES || "*") === "*";
let failed = 0;
const tag = `${repo}@${revision}`;
const report = (good, what) => {
	console.log(`${good ? "ok" : "not ok"} - ${tag}: ${what}`);
	if (!good) failed++;
};
const listing = async (url) => {
	const out = [];
	for await (const e of listFiles({ repo, revision, recursive: true, hubUrl: url, ...cred }))
		out.push(JSON.stringify({ type: e.type, path: e.path, oid: e.oid, size: e.size, lfs: e.lfs ?? null }));
	return out.sort();
};
const bytesOf = async (url, path) =>
	Buffer.from(await (await downloadFile({ repo, revision, path, hubUrl: url, ...cred })).arrayBuffer());

const cacheDir = await mkdtemp(join(tmpdir(), "hfm-sync-"));
try {
	const [mine, theirs] = await Promise.all([
		modelInfo({ name: repo, revision, hubUrl, additionalFields: ["sha"], ...cred }),
		modelInfo({ name: repo, revision, hubUrl: ref, additionalFields: ["sha"], ...cred }),
	]);
	report(mine.sha === theirs.sha && /^[0-9a-f]{40}$/.test(mine.sha), `modelInfo: the upstream's commit ${theirs.sha}`);
	const [lm, lt] = [await listing(hubUrl), await listing(ref)];
	report(lm.length > 0 && JSON.stringify(lm) === JSON.stringify(lt),
		`listFiles: ${lt.length} entries, paths, oids, sizes and lfs ids equal to the upstream's`);
	const files = all
		? lt.map((l) => JSON.parse(l)).filter((e) => e.type === "file").map((e) => e.path)
		: process.env.HFM_FILES.split("\n").filter(Boolean);
	const got = new Map();
	if (all) {
		const folder = await snapshotDownload({ repo, revision, hubUrl, cacheDir, ...cred });
		const walk = async (rel) => {
			for (const name of await readdir(join(folder, rel))) {
				const p = rel ? `${rel}/${name}` : name;
				if ((await stat(join(folder, p))).isDirectory()) await walk(p);
				else got.set(p, join(folder, p));
			}
		};
		await walk("");
	} else {
		for (const path of files)
			got.set(path, await downloadFileToCacheDir({ repo, path, revision, hubUrl, cacheDir, ...cred }));
	}
	report(JSON.stringify([...got.keys()].sort()) === JSON.stringify([...files].sort()),
		`${all ? "snapshotDownload" : "downloadFileToCacheDir"}: the ${files.length} files`);
	let same = 0;
	for (const [p, local] of got)
		if ((await readFile(local)).equals(await bytesOf(ref, p))) same++;
		else console.log(`# ${p}: content differs`);
	report(same === files.length && same > 0, "every file byte for byte as the upstream's");
	const [pm, pt] = await Promise.all([
		pathsInfo({ repo, revision, paths: files, expand: true, hubUrl, ...cred }),
		pathsInfo({ repo, revision, paths: files, expand: true, hubUrl: ref, ...cred }),
	]);
	const ids = (l) => JSON.stringify(l.map((e) => [e.path, e.oid, e.lfs?.oid ?? null, e.lastCommit?.id ?? null]).sort());
	report(pm.length === files.length && ids(pm) === ids(pt) && pm.every((e) => e.lastCommit?.id),
		"pathsInfo(expand): ids and lastCommit as the upstream's");
} catch (e) {
	report(false, `${e}`);
} finally {
	await rm(cacheDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
