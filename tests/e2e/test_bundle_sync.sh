#!/bin/bash
# test_bundle_sync.sh - the air gap as docs/airgap.md tells a new user to cross it (issue 13.3).
# Outside: `hfmirror proxy` online on a store, against a local upstream (git clones served by
# hfmirror behind faultrelay.py, which plays the Hub: acme/gated is gated, token hf_good);
# `hfmirror sync -m sync.toml` fetches two repos into that store (the gated one with the
# token, part of its files by include/exclude); `hfmirror export -m sync.toml` writes a
# signed bundle in volumes of what the manifest names.  Inside: `hfmirror-import --trust`
# into a fresh store; `hfmirror serve --offline` on it, its upstream the relay, which must
# see no connection; the npm client downloads every file of every revision, bytes and ids
# equal to the upstream's; the excluded files are listed but absent (502).  Then a second
# revision upstream: receipt inside, sync and `export -m --since` outside: the incremental
# bundle carries exactly the new objects and is at most 1.01x the new content; imported
# from a pipe into the running inside, both revisions resolve.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_import.sh"
. "$(dirname "$0")/lib_sync.sh"
. "$(dirname "$0")/lib_bundle.sh"

hfjs_ready || { not_ok "npm dependencies of tests/hfjs are installed"; done_testing; exit 1; }

UP=$T/up/models/acme
make_upstream "$UP/tiny"
make_upstream "$UP/gated"
start_git_hub 'gated acme/gated hf_good' || exit 1
relay_mode redirect
REF=$up_URL

# ---- outside: a proxy online, sync fills its store --------------------------------------
cat >"$T/outside.toml" <<EOF
[basic]
repos-path = "$OUT"
hf-scheme = "http"
hf-netloc = "$RELAY"

[hfmirror]
# the second sync comes seconds after the first: ask for main again, as a sync a day later would
metadata-ttl = 0
EOF
cat >"$T/sync.toml" <<EOF
# what the site asked for
[[repo]]
id = "acme/tiny"
revisions = ["main", "v1.0"]

[[repo]]
id = "acme/gated"
include = ["*.bin", "*.json"]
exclude = ["data/"]
EOF
start_server outside proxy -c "$T/outside.toml" --access-log off || exit 1
echo hf_good >"$T/token"
is "$("$HFMIRROR" sync -c "$T/outside.toml" -m "$T/sync.toml" --token-file "$T/token" --json \
	>"$T/sync1.json" 2>"$T/sync1.err"; echo $?)" 0 "outside: sync of two repos, one gated, exit status 0"
is "$(jq_repo "$T/sync1.json" acme/gated 'j["status"], j["fetched"]["files"]')" "ok 1" \
	"outside: the gated repo's wanted file fetched with the token"
is "$(curl -s "$outside_URL/acme/tiny/resolve/main/weights.bin" | sha256sum | cut -c1-64)" \
	"$(sha256 "$UP/tiny/weights.bin")" "outside: the proxy serves what sync stored"
stop_server outside
V1=$(git -C "$UP/tiny" rev-parse main)
V1_WEIGHTS=$(sha256 "$UP/tiny/weights.bin")

# ---- export -m: a manifest with a mistake is exit 2 with FILE:LINE ---------------------------
printf '[[repo]]\nid = "acme/tiny"\nrevision = "main"\n' >"$T/bad.toml"
is "$("$HFMIRROR" export --repos-path "$OUT" -o "$T/nothing" -m "$T/bad.toml" 2>"$T/bad.err"; echo $?)" 2 \
	"export -m with a bad manifest: exit status 2"
like "$(cat "$T/bad.err")" "bad.toml:3: repo\[0\]\.revision: unknown key" \
	"export -m with a bad manifest: FILE:LINE: key: why (the sync manifest's parser)"
check "export -m with a bad manifest: nothing written" test ! -e "$T/nothing"

ed25519_key site
check "export -m sync.toml: a signed bundle in 2 MiB volumes" \
	"$HFMIRROR" export --repos-path "$OUT" -o "$T/b1" -m "$T/sync.toml" --split 2M --sign "$T/site.pem"
like "$(grep -c '^volume ' "$T/b1/manifest")" '^([3-9]|[1-9][0-9]+)$' "the bundle is in several volumes"
is "$(awk '$1 == "repo" { print $2, $3, $4 }' "$T/b1/manifest" | LC_ALL=C sort | tr '\n' ';')" \
	"model acme/gated cache;model acme/tiny cache;" "it holds the manifest's two repos"
like "$(awk '$1 == "rev" { print $2 }' "$T/b1/manifest" | LC_ALL=C sort | tr '\n' ' ')" \
	"^main main v1.0 $" "and their revisions"
GATED_SHARD=$(sha256 "$UP/gated/data/shard.bin")
check "the gated repo's excluded file is not carried" sh -c "! grep -q '^object $GATED_SHARD ' '$T/b1/manifest'"

# ---- inside: a fresh store, import, serve --offline -------------------------------------
check "inside: hfmirror-import --trust of the bundle into a fresh store" \
	"$HFMIRROR_IMPORT" --store "$IN" --trust "$T/site.pub" "$T/b1"
like "$(cat "$T/.check.out")" 'acme/gated \(model, cache\): 1 revision' "the import names each repo"
cat >"$T/inside.toml" <<EOF
[basic]
repos-path = "$IN"
hf-scheme = "http"
hf-netloc = "$RELAY"

[accessibility]
offline = true

[hfmirror]
allow-gated-offline = true
EOF
c0=$(relay_conns)
start_server inside serve -c "$T/inside.toml" --access-log off || exit 1
npm_check "$inside_URL" "$REF" acme/tiny main "*"
npm_check "$inside_URL" "$REF" acme/tiny v1.0 "*"
npm_check "$inside_URL" "$REF" acme/gated main "$(printf 'config.json\nweights.bin')" hf_good
is "$(curl -s -o /dev/null -w '%{http_code}' "$inside_URL/acme/gated/resolve/main/data/shard.bin")" 502 \
	"inside: a file the manifest excludes is listed but not there (502)"
is "$(relay_conns)" "$c0" "inside: no connection to the upstream"

# ---- a second revision: receipt inside, sync + export --since outside -------------------------
(
	cd "$UP/tiny" && rand weights.bin 2048 && rand new.bin 1024 &&
	git add -A && git commit -q -m 'second revision'
) >/dev/null
V2=$(git -C "$UP/tiny" rev-parse main)
NEW_W=$(sha256 "$UP/tiny/weights.bin")
NEW_N=$(sha256 "$UP/tiny/new.bin")
NEW=$(($(stat -c %s "$UP/tiny/weights.bin") + $(stat -c %s "$UP/tiny/new.bin")))
# the upstream (a git mirror) re-reads a ref at most once a second; its
# answer of a moment ago may still be the first revision
up_main() { curl -s "$up_URL/api/models/acme/tiny/revision/main" | grep -q "\"$V2\""; }
check "the upstream serves the second revision" wait_for up_main

check "inside: receipt" "$HFMIRROR" receipt --repos-path "$IN" -o "$T/receipt"
is "$("$HFMIRROR" sync -c "$T/outside.toml" -m "$T/sync.toml" --token-file "$T/token" --json \
	>"$T/sync2.json" 2>"$T/sync2.err"; echo $?)" 0 "outside: sync again, exit status 0"
is "$(jq_repo "$T/sync2.json" acme/tiny 'j["fetched"]["files"], j["fetched"]["bytes"]')" "2 $NEW" \
	"outside: sync fetched the two new objects"
check "outside: export -m sync.toml --since the receipt" \
	"$HFMIRROR" export --repos-path "$OUT" -o "$T/b2.tar" -m "$T/sync.toml" --since "$T/receipt" \
	--sign "$T/site.pem"
c1=$(relay_conns)   # the outside's sync used the relay; the inside is idle meanwhile
tar -xOf "$T/b2.tar" manifest >"$T/b2.manifest"
is "$(manifest_objects "$T/b2.manifest" | tr '\n' ' ')" \
	"$(printf '%s\n%s\n' "$NEW_W" "$NEW_N" | LC_ALL=C sort | tr '\n' ' ')" \
	"the incremental bundle carries exactly the two new objects"
b2=$(stat -c %s "$T/b2.tar")
meta=$(awk '$1 == "meta" { s += $3 } END { print s + 0 }' "$T/b2.manifest")
diag "incremental bundle: $b2 bytes; new objects $NEW bytes, new metadata $meta bytes"
check "its size is at most 1.01x the new content (objects and metadata): $b2 <= 1.01 x $((NEW + meta))" \
	test $((b2 * 100)) -le $(((NEW + meta) * 101))
check "the inside imports it from a pipe while it serves" \
	sh -c "'$HFMIRROR_IMPORT' --store '$IN' --trust '$T/site.pub' - <'$T/b2.tar'"
like "$(cat "$T/.check.out")" 'objects: 2 new' "two new objects"
npm_check "$inside_URL" "$REF" acme/tiny main "*"
npm_check "$inside_URL" "$REF" acme/tiny "$V1" "*"
is "$(curl -s "$inside_URL/api/models/acme/tiny/revision/main" |
	$PYTHON -c 'import json,sys; print(json.load(sys.stdin)["sha"])')" "$V2" "inside: main is the second revision"
is "$(curl -s "$inside_URL/acme/tiny/resolve/$V1/weights.bin" | sha256sum | cut -c1-64)" "$V1_WEIGHTS" \
	"inside: the first revision still resolves, by its commit"
is "$(relay_conns)" "$c1" "inside, after the update: no connection to the upstream"
stop_server inside

check "every object of the inside hashes to its name" store_ok_all "$IN"
sync_san_clean
done_testing
