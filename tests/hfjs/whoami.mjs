// whoami.mjs - the npm client's whoAmI against a mirror, for test_auth_access.sh.
// Env: HFM_URL (the mirror), HFM_TOKEN.  Prints the answer as JSON and exits 0,
// or prints "error <status>: <message>" and exits 1.
import { whoAmI } from "@huggingface/hub";

try {
	const me = await whoAmI({ hubUrl: process.env.HFM_URL, accessToken: process.env.HFM_TOKEN });
	console.log(JSON.stringify(me));
} catch (e) {
	console.log(`error ${e.statusCode ?? "-"}: ${e.message}`);
	process.exit(1);
}
