#!/bin/bash
# test_sync_offline.sh - `hfmirror sync` of a manifest against a local
# upstream (an hfmirror serving git clones) behind faultrelay.py, which
# plays the Hub: acme/gated is gated (token hf_good) and LFS files go
# through a CDN redirect.  Afterwards `hfmirror proxy --offline` on the
# store answers the npm client with every file, bytes and ids equal to the
# upstream's, for a branch, a tag and a commit id, and opens no upstream
# connection.  Also: a run without the token names the gated files it could
# not fetch; --dry-run totals equal what the run then fetches; a new commit
# upstream is fetched as its new objects only, and a run with nothing new
# fetches nothing; repos the rules deny are skipped; a revision upstream
# lacks fails by name (exit 1); a branch the upstream cannot answer for
# fails by name (exit 1; its store commit kept, other repos fetched) unless
# --allow-stale; a bad manifest is exit 2 with FILE:LINE.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_import.sh"
. "$(dirname "$0")/lib_sync.sh"

hfjs_ready || { not_ok "npm dependencies of tests/hfjs are installed"; done_testing; exit 1; }

UP=$T/up/models/acme
for r in tiny gated priv denied hidden; do make_upstream "$UP/$r"; done
make_upstream "$T/up/datasets/acme/ds"
start_git_hub 'gated acme/gated hf_good' 'private acme/priv hf_good' || exit 1
relay_mode redirect
REF=$up_URL
DEV=$(git -C "$UP/tiny" rev-parse dev)

S=$T/store
sync_config "$T/config.toml" "$S"
cat >>"$T/config.toml" <<EOF

[[accessibility.proxy]]
repo = "*"
allow = true

[[accessibility.proxy]]
repo = "acme/hidden"
allow = false

[[accessibility.cache]]
repo = "*"
allow = true

[[accessibility.cache]]
repo = "acme/denied"
allow = false
EOF
cat >"$T/sync.toml" <<EOF
# what the site asked for
[[repo]]
id = "acme/tiny"
revisions = ["main", "v1.0", "$DEV"]

[[repo]]
id = "acme/gated"
include = ["*.bin", "*.json"]
exclude = ["data/*"]

[[repo]]
id = "acme/priv"
include = "config.json"

[[repo]]
id = "acme/denied"

[[repo]]
id = "acme/hidden"

[[repo]]
id = "acme/ds"
type = "dataset"
revisions = "refs/pr/1"
include = "data/"
EOF

obj() { echo "$S/objects/$(echo "$1" | cut -c1-2)/$1"; }
lfs_sha() { sha256sum <"$1" | cut -c1-64; }

# ---- a manifest with mistakes --------------------------------------------------
cat >"$T/bad.toml" <<'EOF'
[[repo]]
id = "acme/tiny"
revision = ["main"]

[[repo]]
id = "acme/../x"
include = ["*.json", 3]
EOF
is "$("$HFMIRROR" sync -m "$T/bad.toml" --repos-path "$T/nostore" 2>"$T/bad.err"; echo $?)" 2 \
	"bad manifest: exit status 2"
like "$(cat "$T/bad.err")" "bad.toml:3: repo\[0\]\.revision: unknown key \(did you mean revisions" \
	"bad manifest: FILE:LINE: key: why (a misspelt key)"
like "$(cat "$T/bad.err")" "bad.toml:6: repo\[1\]\.id: \"acme/\.\./x\" is not a repo id" \
	"bad manifest: a bad repo id"
like "$(cat "$T/bad.err")" "bad.toml:7: repo\[1\]\.include\[1\]: expected a string, got an integer" \
	"bad manifest: a pattern that is not a string"
check "bad manifest: nothing was created" test ! -e "$T/nostore"
is "$("$HFMIRROR" sync --repos-path "$S" 2>"$T/nomanifest.err"; echo $?)" 2 "no manifest: exit status 2"

# ---- no token: the gated repo's files fail, named ------------------------------
unset HF_TOKEN
is "$(run_sync notoken -m "$T/sync.toml" --json)" 1 "without a token: exit status 1"
is "$(jq_repo "$T/notoken.json" acme/gated 'j["status"]')" failed "without a token: the gated repo failed"
like "$(jq_repo "$T/notoken.json" acme/gated '[e["path"] for e in j["failed"]["errors"]]')" \
	"weights.bin" "without a token: the gated file is named"
like "$(jq_repo "$T/notoken.json" acme/gated 'j["failed"]["errors"][0]["error"]')" \
	"gated|restricted" "without a token: and why"
is "$(jq_repo "$T/notoken.json" acme/tiny 'j["status"]')" ok "without a token: the open repo is fetched"
like "$(jq_repo "$T/notoken.json" acme/priv 'j["status"], j["error"]')" "^failed .*not found.*token" \
	"without a token: the private repo is not found, and the report says a token may help"

# ---- dry run, then the real run with the token -----------------------------------
echo hf_good >"$T/token"
b0=$(relay_bytes)
is "$(run_sync dry -m "$T/sync.toml" --json --dry-run --token-file "$T/token")" 0 "dry run: exit status 0"
b1=$(relay_bytes)
is "$(jq_repo "$T/dry.json" acme/gated 'j["to_fetch"]["paths"]')" "['weights.bin']" \
	"dry run: names what it would fetch"
DRY_FILES=$(jq_sum "$T/dry.json" to_fetch files)
DRY_BYTES=$(jq_sum "$T/dry.json" to_fetch bytes)
check "dry run: fetched no file ($((b1 - b0)) bytes of metadata)" test $((b1 - b0)) -lt 65536
is "$(find "$S/partial" -type f 2>/dev/null | wc -l)" 0 "dry run: nothing under partial/"

b0=$(relay_bytes)
: >"$T/relay/cdn_log"
is "$(HF_TOKEN=hf_good run_sync run1 -m "$T/sync.toml" --json --jobs 2)" 0 "with the token: exit status 0"
b1=$(relay_bytes)
is "$(jq_sum "$T/run1.json" fetched files)" "$DRY_FILES" "the run fetched the files the dry run listed"
is "$(jq_sum "$T/run1.json" fetched bytes)" "$DRY_BYTES" "the run fetched the bytes the dry run counted ($DRY_BYTES)"
check "the upstream sent about that ($((b1 - b0)) bytes)" \
	test $((b1 - b0)) -ge "$DRY_BYTES" -a $((b1 - b0)) -lt $((DRY_BYTES + 262144))
is "$(jq_repo "$T/run1.json" acme/gated 'j["status"], j["fetched"]["files"]')" "ok 1" \
	"gated: its file fetched with the token"
check "gated: its LFS object is in the store" test -f "$(obj "$(lfs_sha "$UP/gated/weights.bin")")"
is "$(jq_repo "$T/run1.json" acme/priv 'j["status"], j["present"]["files"] + j["fetched"]["files"]')" "ok 1" \
	"private: read with the token"
check "private: marked private in the store" grep -qx private "$S/meta/models/acme/priv/access"
like "$(grep 'acme/gated/resolve' "$T/relay/cdn_log")" "noauth" \
	"gated: the CDN got the file's request without the token"
check "the token is in no output" sh -c "! grep -q hf_good '$T'/*.err '$T'/*.json"
is "$(jq_repo "$T/run1.json" acme/tiny 'j["revisions"][2]["commit"]')" "$DEV" \
	"a commit id revision resolves to itself"

# ---- what the rules deny ---------------------------------------------------------------
is "$(jq_repo "$T/run1.json" acme/denied 'j["status"]')" skipped "cache rules: the repo is skipped"
like "$(jq_repo "$T/run1.json" acme/denied 'j["skipped"]["files"], j["skipped"]["why"]')" \
	"^6 .*cache rules" "cache rules: each of its files reported skipped, and why"
check "cache rules: nothing of it stored" test ! -e "$S/meta/models/acme/denied" -a \
	! -e "$(obj "$(lfs_sha "$UP/denied/weights.bin")")"
is "$(jq_repo "$T/run1.json" acme/hidden 'j["status"], j["skipped"]["why"]')" \
	"skipped the proxy rules ([[accessibility.proxy]]) deny it" "proxy rules: skipped, not asked for"
check "proxy rules: nothing of it stored" test ! -e "$S/meta/models/acme/hidden"

# ---- offline: every file, bytes and ids as upstream's; no connection ---------------------
printf '[hfmirror]\nallow-gated-offline = true\n' >"$T/off.toml"
start_server off proxy --offline -c "$T/off.toml" --repos-path "$S" --hf-scheme http \
	--hf-netloc "$RELAY" --access-log off || exit 1
c0=$(relay_conns)
npm_check "$off_URL" "$REF" acme/tiny main "*"
npm_check "$off_URL" "$REF" acme/tiny v1.0 "*"
npm_check "$off_URL" "$REF" acme/tiny "$DEV" "*"
npm_check "$off_URL" "$REF" acme/gated main "$(printf 'config.json\nweights.bin')" hf_good
is "$(curl -s -o /dev/null -w '%{http_code}' "$off_URL/api/models/acme/tiny")" 200 \
	"offline: info without a revision (HEAD)"
is "$(curl -s -o /dev/null -w '%{http_code}' "$off_URL/api/models/acme/tiny/refs")" 200 "offline: refs"
is "$(curl -s -o /dev/null -w '%{http_code}' "$off_URL/api/models/acme/tiny/revision/main?blobs=true")" 200 \
	"offline: info with blobs"
is "$(curl -s -o /dev/null -w '%{http_code}' "$off_URL/acme/gated/resolve/main/data/shard.bin")" 502 \
	"offline: an excluded file is listed but not there (502)"
is "$(curl -s -o "$T/pconf" -w '%{http_code}' "$off_URL/acme/priv/resolve/main/config.json")" 200 \
	"offline (allow-gated-offline): the private repo's file"
check "offline: its bytes" cmp "$T/pconf" "$UP/priv/config.json"
DSPR=$(git -C "$T/up/datasets/acme/ds" rev-parse refs/pr/1)
is "$(curl -s "$off_URL/api/datasets/acme/ds/revision/refs%2Fpr%2F1" |
	$PYTHON -c 'import json,sys; print(json.load(sys.stdin)["sha"])')" "$DSPR" \
	"offline: a dataset's refs/pr/1 resolves"
is "$(curl -s -o "$T/shard" -w '%{http_code}' "$off_URL/datasets/acme/ds/resolve/refs%2Fpr%2F1/data/shard.bin")" \
	200 "offline: the dataset's file"
check "offline: its bytes" cmp "$T/shard" "$T/up/datasets/acme/ds/data/shard.bin"
is "$(relay_conns)" "$c0" "offline: no connection to the upstream"
stop_server off

# ---- a new commit upstream: only its new objects ----------------------------------------
(
	cd "$UP/tiny" && rand weights.bin 2048 && rand new.bin 1024 &&
	git add -A && git commit -q -m 'second revision'
) >/dev/null
NEW=$(($(stat -c %s "$UP/tiny/weights.bin") + $(stat -c %s "$UP/tiny/new.bin")))
b0=$(relay_bytes)
is "$(HF_TOKEN=hf_good run_sync run2 -m "$T/sync.toml" --json)" 0 "new commit: exit status 0"
b1=$(relay_bytes)
is "$(jq_repo "$T/run2.json" acme/tiny 'j["revisions"][0]["commit"]')" "$(git -C "$UP/tiny" rev-parse main)" \
	"new commit: main resolves to it"
is "$(jq_repo "$T/run2.json" acme/tiny 'j["fetched"]["files"], j["fetched"]["bytes"]')" "2 $NEW" \
	"new commit: its two new objects fetched, nothing else"
is "$(jq_sum "$T/run2.json" fetched files)" 2 "new commit: no other repo fetched anything"
check "new commit: the upstream sent those and metadata ($((b1 - b0)) bytes for $NEW)" \
	test $((b1 - b0)) -ge "$NEW" -a $((b1 - b0)) -lt $((NEW + 262144))
b0=$(relay_bytes)
is "$(HF_TOKEN=hf_good run_sync run3 -m "$T/sync.toml" --json)" 0 "nothing new: exit status 0"
b1=$(relay_bytes)
is "$(jq_sum "$T/run3.json" fetched files)" 0 "nothing new: nothing fetched"
check "nothing new: only metadata from the upstream ($((b1 - b0)) bytes)" test $((b1 - b0)) -lt 65536

start_server off2 proxy --offline -c "$T/off.toml" --repos-path "$S" --hf-scheme http \
	--hf-netloc "$RELAY" --access-log off || exit 1
c0=$(relay_conns)
npm_check "$off2_URL" "$REF" acme/tiny main "*"
npm_check "$off2_URL" "$REF" acme/tiny v1.0 "*"
is "$(relay_conns)" "$c0" "offline after the new commit: no connection to the upstream"
stop_server off2

# ---- a revision the upstream lacks ---------------------------------------------------------
printf '[[repo]]\nid = "acme/tiny"\nrevisions = ["main", "no-such-branch"]\n' >"$T/miss.toml"
is "$(run_sync miss -m "$T/miss.toml")" 1 "a missing revision: exit status 1"
like "$(cat "$T/miss.json")" "no-such-branch +failed: " "a missing revision: named in the report"
like "$(cat "$T/miss.json")" "main +[0-9a-f]{40}" "a missing revision: the others are done"

# ---- the upstream cannot answer for branches the store maps ----------------------------------
# acme/tiny's API answers 500; acme/gated has a new commit, fetched all the same
TINY_MAIN=$(git -C "$UP/tiny" rev-parse main)
(cd "$UP/gated" && rand weights.bin 1024 && git add -A && git commit -q -m 'new weights') >/dev/null
echo /api/models/acme/tiny >"$T/relay/fail"
is "$(HF_TOKEN=hf_good run_sync stale -m "$T/sync.toml" --json)" 1 \
	"upstream unavailable for mapped branches: exit status 1"
like "$(cat "$T/stale.err")" \
	"sync: error: acme/tiny@main: the upstream could not answer; $TINY_MAIN is the store's commit" \
	"... an error names the repo and revision, and the commit kept"
like "$(cat "$T/stale.err")" "sync: error: acme/tiny@v1.0: " "... each revision"
like "$(cat "$T/stale.err")" "or pass --allow-stale" "... and says how to accept it"
is "$(jq_repo "$T/stale.json" acme/tiny 'j["status"], [v.get("stale", False) for v in j["revisions"]]')" \
	"failed [True, True, False]" "... the report marks them stale (not the commit id)"
is "$(jq_repo "$T/stale.json" acme/tiny 'j["revisions"][0]["commit"]')" "$TINY_MAIN" \
	"... with the store's commit"
is "$(jq_repo "$T/stale.json" acme/gated 'j["status"], j["fetched"]["files"]')" "ok 1" \
	"... the other repo's new commit is fetched all the same"
is "$(cat "$S/meta/models/acme/tiny/revs/main")" "$TINY_MAIN" "... the store maps main as before"
is "$(grep -c '"status":"failed"' "$T/stale.json")" 1 "... and no other repo failed"
is "$(HF_TOKEN=hf_good run_sync stale_ok -m "$T/sync.toml" --allow-stale)" 0 \
	"--allow-stale: exit status 0"
like "$(cat "$T/stale_ok.err")" "sync: warning: acme/tiny@main: the upstream could not answer" \
	"--allow-stale: a warning names the revision"
like "$(cat "$T/stale_ok.json")" "main +$TINY_MAIN .*upstream unavailable: the store's commit" \
	"--allow-stale: the report marks it"
rm -f "$T/relay/fail"
# an upstream nobody answers at (refused: held down, the cache logs nothing itself)
printf '[[repo]]\nid = "acme/tiny"\n' >"$T/tiny.toml"
is "$(run_sync dead -m "$T/tiny.toml" --hf-netloc 127.0.0.1:1)" 1 "upstream refusing: exit status 1"
like "$(cat "$T/dead.err")" "sync: error: acme/tiny@main: the upstream could not answer" \
	"upstream refusing: the error names the revision"

# ---- every object is what its name says ------------------------------------------------------
check "every object under objects/ hashes to its name" store_ok_all "$S"

sync_san_clean
done_testing
