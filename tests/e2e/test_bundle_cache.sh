#!/bin/bash
# test_bundle_cache.sh - an air-gapped round trip (docs/airgap.md): the outside fills its
# store from an upstream through `hfmirror proxy`, exports a signed bundle in volumes;
# the inside imports it under --trust and serves it with `proxy --offline`, its upstream
# a counting relay that must see no connection; the npm client downloads every file and
# the bytes and ids equal the upstream's.  Then a second revision upstream: receipt
# inside, fill and `export --since` outside, a bundle that holds only the new objects,
# streamed through a pipe into the running inside: both revisions resolve.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fixtures.sh"
. "$(dirname "$0")/lib_bundle.sh"
hfjs_ready

fixture_upstream || exit 1
up_port=${up_URL##*:}

fill_outside "$OUT"
ed25519_key site
check "export a signed bundle in 4 MiB volumes" \
	"$HFMIRROR" export --repos-path "$OUT" -o "$T/b1" --repo acme/tiny --split 4M --sign "$T/site.pem"
nvol=$(ls "$T/b1" | grep -c '^payload\.')
like "$nvol" '^([4-9]|[1-9][0-9]+)$' "the bundle has several volumes ($nvol)"
like "$(head -n 1 "$T/b1/manifest")" '^hfmirror-bundle 2$' "its manifest is a bundle manifest (version 2)"

check "hfmirror-import --trust imports it" \
	"$HFMIRROR_IMPORT" --store "$IN" --trust "$T/site.pub" "$T/b1"
like "$(cat "$T/.check.out")" 'signed by key [0-9a-f]{16} \(trusted' "and says who signed it"
is "$(ls "$IN/tmp")" "" "the staging area is gone after the publish"

# the inside: offline, its upstream a relay that counts what reaches it
start_relay "$up_port"
start_server inside proxy --offline --repos-path "$IN" --hf-scheme http --hf-netloc "$RELAY" || exit 1
FILES=$(repo_files "$up_URL" acme/tiny)
hfjs_snapshot "inside, first revision" "$inside_URL" "$T/root/acme/tiny" "$FILES"
is "$(repo_ids "$inside_URL" acme/tiny)" "$(repo_ids "$up_URL" acme/tiny)" \
	"every file's path, size, git id and LFS id as the upstream's"
V1=$(curl -s "$up_URL/api/models/acme/tiny/revision/main" | $PYTHON -c 'import json,sys; print(json.load(sys.stdin)["sha"])')
is "$(curl -s "$inside_URL/api/models/acme/tiny/revision/main" | $PYTHON -c 'import json,sys; print(json.load(sys.stdin)["sha"])')" \
	"$V1" "main is the upstream's commit"
cp -r "$T/root/acme/tiny" "$T/v1"

# a second revision upstream: new weights, a new file
det_bytes weights-v2 $((3 * 1024 * 1024 + 5)) >"$T/root/acme/tiny/weights.bin"
printf 'added in v2\n' >"$T/root/acme/tiny/new.txt"
V2=$(curl -s "$up_URL/api/models/acme/tiny/revision/main" | $PYTHON -c 'import json,sys; print(json.load(sys.stdin)["sha"])')
like "$V2" '^[0-9a-f]{40}$' "upstream has a new main"
[ "$V2" != "$V1" ] && ok "which is another commit" || not_ok "which is another commit"

check "receipt of the inside" "$HFMIRROR" receipt --repos-path "$IN" -o "$T/receipt1"
like "$(cat "$T/.check.out")" 'receipt [0-9a-f]{32}, 1 repos, [0-9]+ objects' "it says what it holds"
fill_outside "$OUT"
check "export --since the receipt" \
	"$HFMIRROR" export --repos-path "$OUT" -o "$T/b2.tar" --repo acme/tiny --since "$T/receipt1" --sign "$T/site.pem"

# what the bundle carries: the two new objects, nothing else
NEW_W=$(sha256 "$T/root/acme/tiny/weights.bin")
NEW_T=$(git_blob_id "$T/root/acme/tiny/new.txt")
tar -xOf "$T/b2.tar" manifest >"$T/b2.manifest"
is "$(manifest_objects "$T/b2.manifest" | tr '\n' ' ')" "$(printf '%s\n%s\n' "$NEW_W" "$NEW_T" | LC_ALL=C sort | tr '\n' ' ')" \
	"the incremental bundle carries exactly the new objects"
is "$(awk '$1 == "commit" { print $2 }' "$T/b2.manifest")" "$V2" \
	"it describes only the new commit (the inside has the first one: its receipt says so)"
new_bytes=$(($(stat -c %s "$T/root/acme/tiny/weights.bin") + $(stat -c %s "$T/root/acme/tiny/new.txt")))
b2_bytes=$(stat -c %s "$T/b2.tar")
meta_bytes=$(awk '$1 == "meta" { s += $3 } END { print s + 0 }' "$T/b2.manifest")
diag "incremental bundle: $b2_bytes bytes for $new_bytes bytes of new content and $meta_bytes of metadata"
[ "$b2_bytes" -le $((new_bytes + meta_bytes + 64 * 1024)) ] &&
	ok "its size is the new content and metadata, plus at most 64 KiB" ||
	not_ok "its size is the new content and metadata, plus at most 64 KiB"

# one-way: the tar through a pipe into the running inside
check "import the incremental bundle from a pipe" \
	sh -c "cat '$T/b2.tar' | '$HFMIRROR_IMPORT' --store '$IN' --trust '$T/site.pub' -"
like "$(cat "$T/.check.out")" 'objects: 2 new' "two new objects"
cp -r "$T/root/acme/tiny" "$T/v2"
hfjs_snapshot "inside, second revision" "$inside_URL" "$T/v2" "$(repo_files "$up_URL" acme/tiny)"
is "$(repo_ids "$inside_URL" acme/tiny)" "$(repo_ids "$up_URL" acme/tiny)" "the new revision's ids as the upstream's"
is "$(curl -s "$inside_URL/acme/tiny/resolve/$V1/weights.bin" | sha256sum | cut -c1-64)" \
	"$(sha256 "$T/v1/weights.bin")" "the first revision still resolves (by its commit)"
is "$(curl -s "$inside_URL/acme/tiny/resolve/main/weights.bin" | sha256sum | cut -c1-64)" "$NEW_W" \
	"main is the second revision"
is "$(relay_conns)" 0 "the inside opened no connection to the upstream"
done_testing
