#!/bin/bash
# test_cache_npm.sh - the npm client (@huggingface/hub, pinned in tests/hfjs)
# through `hfmirror proxy`: snapshotDownload cold (filled from an upstream
# hfmirror), then again with the upstream stopped (soft offline), each time
# compared byte for byte with the source tree.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fixtures.sh"

hfjs_ready

make_fixture_tree "$T/root" "$T/outside"
start_server up model-bin --path "$T/root" || exit 1
start_server cache proxy --hf-scheme http --hf-netloc "${up_URL#http://}" \
	--repos-path "$T/store" --wait-timeout 30 || exit 1

# The repo's files as upstream lists them.
FILES=$(curl -s "$up_URL/api/models/acme/tiny/tree/main?recursive=true" |
	$PYTHON -c 'import json,sys; print("\n".join(e["path"] for e in json.load(sys.stdin) if e["type"] == "file"))')
like "$(echo "$FILES" | wc -l)" '^[1-9][0-9]*$' "upstream lists the repo's files"

# npm PASS: run snapshot.mjs against the cache, fold its lines into our TAP.
npm_run() {
	(cd "$HFJS" && HFM_URL=$cache_URL HFM_REPO=$T/root/acme/tiny HFM_FILES=$FILES \
		node snapshot.mjs) >"$T/npm-$1.out" 2>"$T/npm-$1.err"
	node_tap "$1" $? "$T/npm-$1.out" "$T/npm-$1.err"
}

npm_run cold
stop_server up
is "$(curl -s -o /dev/null -w '%{http_code}' "$up_URL/api/models/acme/tiny")" 000 "upstream is stopped"
npm_run "warm, upstream stopped"

done_testing
