// probe.mjs - run @huggingface/hub calls against HFM_URL and print one line
// per call: "CALL => RESULT" where RESULT is the call's value (JSON) or
// "throws: MESSAGE".  The shell tests compare the lines.
//
// usage: HFM_URL=http://host:port node probe.mjs CALL...
//   repoExists REPO            fileExists REPO REV PATH
//   modelInfo REPO REV         downloadFile REPO REV PATH   (=> its size)
// REPO is "acme/tiny", "datasets/acme/ds" or "spaces/acme/s".  HFM_TOKEN,
// when set, is sent as the access token.
import { downloadFile, fileExists, modelInfo, repoExists } from "@huggingface/hub";

const hubUrl = process.env.HFM_URL;
const token = process.env.HFM_TOKEN ? { accessToken: process.env.HFM_TOKEN } : {};
const calls = {
	repoExists: (repo) => repoExists({ repo, hubUrl, ...token }),
	fileExists: (repo, revision, path) => fileExists({ repo, revision, path, hubUrl, ...token }),
	modelInfo: async (name, revision) => {
		const i = await modelInfo({ name, revision, hubUrl, additionalFields: ["sha"], ...token });
		return i.sha;
	},
	downloadFile: async (repo, revision, path) => {
		const blob = await downloadFile({ repo, revision, path, hubUrl, ...token });
		return blob ? (await blob.arrayBuffer()).byteLength : null;
	},
};

for (const call of process.argv.slice(2)) {
	const [name, ...args] = call.split(" ");
	let result;
	try {
		result = JSON.stringify(await calls[name](...args));
	} catch (e) {
		result = `throws: ${String(e.message ?? e).split("\n")[0]}`;
	}
	console.log(`${call} => ${result}`);
}
