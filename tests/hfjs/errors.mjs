// errors.mjs - what the @huggingface/hub npm client makes of a mirror's
// misses: a file, a revision and a repo that are not there.  Run by
// tests/e2e/test_chain_errors.sh once per server of its matrix, with:
//   HFM_URL     the server (the client's hubUrl)
//   HFM_REPO    a repo the server has, with file a.txt on main
//   HFM_LABEL   a name for the server, put in front of every line
//   HFM_NOREPO_NAME  a repo nobody has (default acme/none)
//   HFM_NOREPO  "miss" when that repo must be a plain miss (repoExists
//               false), anything else when the server cannot know (upstream down)
// Prints one "ok - ..." / "not ok - ..." line per check; exits 1 on a failure.
import { fileDownloadInfo, fileExists, listFiles, modelInfo, repoExists } from "@huggingface/hub";

const hubUrl = process.env.HFM_URL;
const repo = process.env.HFM_REPO;
const label = process.env.HFM_LABEL ?? "";
const noRepo = process.env.HFM_NOREPO_NAME ?? "acme/none";
const noRepoIsMiss = process.env.HFM_NOREPO === "miss";
let failed = 0;
const report = (good, what, detail) => {
	console.log(`${good ? "ok" : "not ok"} - ${label}: npm ${what}`);
	if (!good) {
		failed++;
		if (detail) console.log(`# ${String(detail).split("\n").join("\n# ")}`);
	}
};

// outcome(fn): { value } or { error } without throwing
async function outcome(fn) {
	try {
		return { value: await fn() };
	} catch (error) {
		return { error };
	}
}

// A revision miss is the Hub's 404 that names the revision: the client
// throws it (it is not "no such file"), and the server's message (the JSON
// "error", without the URL the client appends) speaks of the revision.
function revisionMiss(o) {
	return o.error?.statusCode === 404 && /rev/i.test(o.error.data?.error ?? "");
}
const why = (o) =>
	o.error ? `${o.error.statusCode}: ${o.error.data?.error ?? o.error.message}` : JSON.stringify(o.value);

const rev = "nope";
let o;

o = await outcome(() => repoExists({ repo, hubUrl }));
report(o.value === true, `repoExists(${repo}) is true`, o.error);

o = await outcome(() => fileExists({ repo, hubUrl, path: "a.txt" }));
report(o.value === true, `fileExists(${repo}, a.txt) is true`, o.error);

o = await outcome(() => fileExists({ repo, hubUrl, path: "nope.txt" }));
report(o.value === false, `fileExists(${repo}, nope.txt) is false`, o.error);

o = await outcome(() => fileDownloadInfo({ repo, hubUrl, path: "nope.txt" }));
report(o.value === null, `fileDownloadInfo(${repo}, nope.txt) is null (EntryNotFound)`, o.error);

o = await outcome(() => fileExists({ repo, hubUrl, path: "a.txt", revision: rev }));
report(o.value === false, `fileExists(${repo}, a.txt, revision nope) is false, not an error`, o.error);

o = await outcome(() => fileDownloadInfo({ repo, hubUrl, path: "a.txt", revision: rev }));
report(revisionMiss(o), `fileDownloadInfo(${repo}, a.txt, revision nope) throws a 404 about the revision`,
	why(o));

o = await outcome(() => modelInfo({ name: repo, hubUrl, revision: rev }));
report(revisionMiss(o), `modelInfo(${repo}, revision nope) throws a 404 about the revision`,
	why(o));

o = await outcome(async () => {
	const out = [];
	for await (const f of listFiles({ repo, hubUrl, revision: rev })) out.push(f);
	return out;
});
report(revisionMiss(o), `listFiles(${repo}, revision nope) throws a 404 about the revision`,
	why(o));

o = await outcome(() => repoExists({ repo: noRepo, hubUrl }));
if (noRepoIsMiss)
	report(o.value === false, `repoExists(${noRepo}) is false`, o.error);
else
	report(o.error?.statusCode >= 500, `repoExists(${noRepo}) throws a 5xx (upstream down: nobody can tell)`,
		why(o));

process.exit(failed ? 1 : 0);
