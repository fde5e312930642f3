// hub.test.mjs - the real @huggingface/hub npm client against hfmirror.
//
// Run by tests/e2e/test_modelbin_hfjs.sh, which generates the fixture tree
// (tests/e2e/lib_fixtures.sh), starts `hfmirror model-bin` on it and sets:
//   HFM_URL   the server's base URL (the client's `hubUrl`; npm ignores HF_ENDPOINT)
//   HFM_ROOT  the served directory, to compare what the client gets with the source
// Every expectation is computed from the files on disk, not hard-coded.
import test from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { mkdtemp, readFile, readdir, lstat, realpath, rm, stat } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
	datasetInfo,
	downloadFile,
	fileDownloadInfo,
	fileExists,
	listCommits,
	listFiles,
	listModels,
	modelInfo,
	pathsInfo,
	repoExists,
	snapshotDownload,
	spaceInfo,
} from "@huggingface/hub";

const hubUrl = process.env.HFM_URL;
const root = process.env.HFM_ROOT;
if (!hubUrl || !root) {
	throw new Error("HFM_URL and HFM_ROOT must be set (run through tests/e2e/test_modelbin_hfjs.sh)");
}
const tiny = join(root, "acme/tiny");
const HEX40 = /^[0-9a-f]{40}$/;

const sha256 = (buf) => createHash("sha256").update(buf).digest("hex");
const gitBlobId = (buf) =>
	createHash("sha1").update(`blob ${buf.length}\0`).update(buf).digest("hex");

// The files a client should see: regular files, and symlinks that resolve
// inside the repo's own folder (the others are not served at all).
async function repoFiles(dir, rel = "") {
	const out = [];
	const realRepo = await realpath(dir);
	for (const name of await readdir(join(dir, rel))) {
		if (rel === "" && name === ".git") continue;
		const p = rel ? `${rel}/${name}` : name;
		const full = join(dir, p);
		const st = await lstat(full);
		if (st.isSymbolicLink()) {
			const target = await realpath(full);
			if (!target.startsWith(realRepo + "/")) continue;
			if ((await stat(full)).isDirectory()) out.push(...(await repoFiles(dir, p)));
			else out.push(p);
		} else if (st.isDirectory()) {
			out.push(...(await repoFiles(dir, p)));
		} else if (st.isFile()) {
			out.push(p);
		}
	}
	return out.sort();
}

async function collect(iter) {
	const out = [];
	for await (const x of iter) out.push(x);
	return out;
}

async function blobBytes(blob) {
	assert.ok(blob, "downloadFile returned null");
	return Buffer.from(await blob.arrayBuffer());
}

let commit;

test("modelInfo: id, name, sha (40 hex), lastModified", async () => {
	const info = await modelInfo({ name: "acme/tiny", hubUrl, additionalFields: ["sha"] });
	assert.equal(info.name, "acme/tiny");
	assert.equal(typeof info.id, "string", "modelInfo.id comes from _id");
	assert.ok(info.id.length > 0);
	assert.match(info.sha, HEX40);
	assert.ok(!Number.isNaN(info.updatedAt.getTime()), "lastModified parses as a date");
	assert.equal(info.private, false);
	commit = info.sha;
});

test("modelInfo: filePaths are exactly the served files", async () => {
	const info = await modelInfo({ name: "acme/tiny", hubUrl, additionalFields: ["filePaths"] });
	assert.deepEqual([...info.filePaths].sort(), await repoFiles(tiny));
});

test("listFiles recursive on a repo with more than 1000 entries: every entry across pages", async () => {
	const entries = await collect(listFiles({ repo: "acme/many", hubUrl, recursive: true }));
	const paths = entries.map((e) => e.path);
	assert.equal(new Set(paths).size, paths.length, "no entry twice");
	assert.equal(entries.filter((e) => e.type === "file").length, 1101, "1100 files + README.md");
	assert.deepEqual(
		entries.filter((e) => e.type === "directory").map((e) => e.path),
		["f"],
	);
	assert.equal(entries.length, 1102);
});

test("listFiles non-recursive lists one level", async () => {
	const top = await collect(listFiles({ repo: "acme/tiny", hubUrl }));
	const want = [...new Set((await repoFiles(tiny)).map((p) => p.split("/")[0]))].sort();
	assert.deepEqual(top.map((e) => e.path).sort(), want);
	assert.equal(top.find((e) => e.path === "sub").type, "directory");
	const many = await collect(listFiles({ repo: "acme/many", hubUrl, path: "f" }));
	assert.equal(many.length, 1100, "a 1100-entry directory, paginated");
});

test("listFiles of a nested path, with expand", async () => {
	const entries = await collect(listFiles({ repo: "acme/tiny", hubUrl, path: "sub/dir", expand: true }));
	assert.deepEqual(entries.map((e) => e.path), ["sub/dir/nested file.txt"]);
	const buf = await readFile(join(tiny, "sub/dir/nested file.txt"));
	assert.equal(entries[0].oid, gitBlobId(buf));
	assert.equal(entries[0].size, buf.length);
	assert.match(entries[0].lastCommit.id, HEX40);
	assert.ok(entries[0].lastCommit.title !== undefined);
});

test("listFiles: LFS entries carry lfs {oid, size, pointerSize}", async () => {
	const entries = await collect(listFiles({ repo: "acme/tiny", hubUrl }));
	const w = entries.find((e) => e.path === "weights.bin");
	const buf = await readFile(join(tiny, "weights.bin"));
	assert.equal(w.type, "file");
	assert.equal(w.size, buf.length);
	assert.equal(w.lfs.oid, sha256(buf));
	assert.equal(w.lfs.size, buf.length);
	const pointer = `version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(buf)}\nsize ${buf.length}\n`;
	assert.equal(w.lfs.pointerSize, pointer.length);
	assert.equal(w.oid, gitBlobId(Buffer.from(pointer)));
	assert.equal(entries.find((e) => e.path === "config.json").lfs, undefined);
});

test("pathsInfo: existing paths only, LFS and directory entries", async () => {
	const infos = await pathsInfo({
		repo: "acme/tiny",
		hubUrl,
		paths: ["config.json", "weights.bin", "sub", "nope.json"],
	});
	assert.deepEqual(infos.map((i) => i.path).sort(), ["config.json", "sub", "weights.bin"]);
	const cfg = await readFile(join(tiny, "config.json"));
	assert.equal(infos.find((i) => i.path === "config.json").oid, gitBlobId(cfg));
	assert.equal(infos.find((i) => i.path === "sub").type, "directory");
	const w = await readFile(join(tiny, "weights.bin"));
	assert.equal(infos.find((i) => i.path === "weights.bin").lfs.oid, sha256(w));
});

test("pathsInfo with expand: lastCommit", async () => {
	const infos = await pathsInfo({
		repo: "acme/tiny",
		hubUrl,
		paths: ["sub/dir/nested file.txt"],
		expand: true,
	});
	assert.equal(infos.length, 1);
	assert.match(infos[0].lastCommit.id, HEX40);
	assert.ok(!Number.isNaN(infos[0].lastCommit.date.getTime()), "lastCommit.date parses");
});

for (const [what, path] of [
	["small", "config.json"],
	["~5 MB text", "tokenizer.json"],
	["12 MiB LFS", "weights.bin"],
	["nested path with a space", "sub/dir/nested file.txt"],
	["binary (LFS by NUL byte)", "small.bin"],
	["symlink inside the root", "link-inside.json"],
]) {
	test(`downloadFile ${what}: bytes equal the source`, async () => {
		const got = await blobBytes(await downloadFile({ repo: "acme/tiny", hubUrl, path }));
		const want = await readFile(join(tiny, path));
		assert.equal(got.length, want.length);
		assert.ok(got.equals(want), `${path}: content differs`);
	});
}

test("downloadFile of a zero-length file (the bytes=0-0 probe)", async () => {
	const got = await blobBytes(await downloadFile({ repo: "acme/tiny", hubUrl, path: "empty.txt" }));
	assert.equal(got.length, 0);
});

test("downloadFile raw: the LFS pointer", async () => {
	const got = await blobBytes(await downloadFile({ repo: "acme/tiny", hubUrl, path: "weights.bin", raw: true }));
	const w = await readFile(join(tiny, "weights.bin"));
	assert.equal(
		got.toString(),
		`version https://git-lfs.github.com/spec/v1\noid sha256:${sha256(w)}\nsize ${w.length}\n`,
	);
});

test("downloadFile of a missing file: null", async () => {
	assert.equal(await downloadFile({ repo: "acme/tiny", hubUrl, path: "nope.json" }), null);
});

test("downloadFile of a symlink leaving the root: null (not served)", async () => {
	assert.equal(await downloadFile({ repo: "acme/tiny", hubUrl, path: "link-outside.txt" }), null);
});

test("fileDownloadInfo: size and etag", async () => {
	const w = await readFile(join(tiny, "weights.bin"));
	const info = await fileDownloadInfo({ repo: "acme/tiny", hubUrl, path: "weights.bin" });
	assert.equal(info.size, w.length);
	assert.equal(info.etag.replace(/"/g, ""), sha256(w));
	assert.equal(info.xet, undefined, "no Xet");
});

test("fileExists: present and missing paths", async () => {
	assert.equal(await fileExists({ repo: "acme/tiny", hubUrl, path: "config.json" }), true);
	assert.equal(await fileExists({ repo: "acme/tiny", hubUrl, path: "sub/dir/nested file.txt" }), true);
	assert.equal(await fileExists({ repo: "acme/tiny", hubUrl, path: "nope.json" }), false);
	assert.equal(await fileExists({ repo: "datasets/acme/ds", hubUrl, path: "data/train.csv" }), true);
	assert.equal(await fileExists({ repo: "datasets/acme/ds", hubUrl, path: "data/nope.csv" }), false);
});

test("repoExists", async () => {
	assert.equal(await repoExists({ repo: "acme/tiny", hubUrl }), true);
	assert.equal(await repoExists({ repo: "acme/nope", hubUrl }), false);
	assert.equal(await repoExists({ repo: { type: "dataset", name: "acme/ds" }, hubUrl }), true);
});

test("snapshotDownload: every file, byte for byte", async () => {
	const cacheDir = await mkdtemp(join(tmpdir(), "hfm-hfjs-"));
	try {
		const folder = await snapshotDownload({ repo: "acme/tiny", hubUrl, cacheDir });
		assert.match(folder, /snapshots\/[0-9a-f]{40}$/);
		const want = await repoFiles(tiny);
		for (const p of want) {
			const got = await readFile(join(folder, p));
			assert.ok(got.equals(await readFile(join(tiny, p))), `${p}: content differs`);
		}
		// nothing extra: the snapshot holds exactly the repo's files
		const listed = [];
		const walk = async (rel) => {
			for (const name of await readdir(join(folder, rel))) {
				const p = rel ? `${rel}/${name}` : name;
				if ((await stat(join(folder, p))).isDirectory()) await walk(p);
				else listed.push(p);
			}
		};
		await walk("");
		assert.deepEqual(listed.sort(), want);
	} finally {
		await rm(cacheDir, { recursive: true, force: true });
	}
});

test("datasets: datasetInfo, listFiles and downloadFile with {type: 'dataset'}", async () => {
	const ds = join(root, "datasets/acme/ds");
	const info = await datasetInfo({ name: "acme/ds", hubUrl, additionalFields: ["sha"] });
	assert.equal(info.name, "acme/ds");
	assert.match(info.sha, HEX40);
	const repo = { type: "dataset", name: "acme/ds" };
	const files = (await collect(listFiles({ repo, hubUrl, recursive: true })))
		.filter((e) => e.type === "file")
		.map((e) => e.path)
		.sort();
	assert.deepEqual(files, await repoFiles(ds));
	const got = await blobBytes(await downloadFile({ repo, hubUrl, path: "data/train.parquet" }));
	assert.ok(got.equals(await readFile(join(ds, "data/train.parquet"))));
});

test("spaces: spaceInfo", async () => {
	const info = await spaceInfo({ name: "acme/space", hubUrl, additionalFields: ["sha"] });
	assert.equal(info.name, "acme/space");
	assert.match(info.sha, HEX40);
});

test("a model at a commit sha revision", async () => {
	const { sha } = await modelInfo({ name: "acme/tiny", hubUrl, additionalFields: ["sha"] });
	if (commit) assert.equal(sha, commit, "the commit is stable between calls");
	const atSha = await modelInfo({ name: "acme/tiny", hubUrl, revision: sha, additionalFields: ["sha"] });
	assert.equal(atSha.sha, sha);
	const got = await blobBytes(await downloadFile({ repo: "acme/tiny", hubUrl, path: "config.json", revision: sha }));
	assert.ok(got.equals(await readFile(join(tiny, "config.json"))));
	const entries = await collect(listFiles({ repo: "acme/tiny", hubUrl, recursive: true, revision: sha }));
	assert.deepEqual(
		entries.filter((e) => e.type === "file").map((e) => e.path).sort(),
		await repoFiles(tiny),
	);
	assert.equal(await fileExists({ repo: "acme/tiny", hubUrl, path: "config.json", revision: sha }), true);
	const infos = await pathsInfo({ repo: "acme/tiny", hubUrl, paths: ["config.json"], revision: sha });
	assert.equal(infos.length, 1);
});

test("a missing revision is an error, not an empty answer", async () => {
	await assert.rejects(modelInfo({ name: "acme/tiny", hubUrl, revision: "nope" }));
	await assert.rejects(collect(listFiles({ repo: "acme/tiny", hubUrl, revision: "nope" })));
});

test("listCommits: the commit of main", async () => {
	const { sha } = await modelInfo({ name: "acme/tiny", hubUrl, additionalFields: ["sha"] });
	const commits = await collect(listCommits({ repo: "acme/tiny", hubUrl }));
	assert.ok(commits.length >= 1);
	assert.equal(commits[0].oid, sha);
});

test("listModels: the served model repos", async () => {
	const ids = (await collect(listModels({ hubUrl }))).map((m) => m.name);
	assert.ok(ids.includes("acme/tiny"), `acme/tiny in ${ids}`);
	assert.ok(ids.includes("acme/many"), `acme/many in ${ids}`);
	assert.ok(!ids.includes("acme/ds"), "datasets are not models");
});
