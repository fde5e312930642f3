#!/bin/sh
# test_import_dirs.sh - hfmirror-import from sources without git objects: a
# Hugging Face cache (one repo folder, and a whole cache) and a plain
# directory of files.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_import.sh"

UP=$T/up/acme/tiny
make_upstream "$UP"

# import ARGS...: runs the importer with --json, leaves $T/out.json, $T/err, $rc
import() {
	"$HFMIRROR_IMPORT" --json "$@" >"$T/out.json" 2>"$T/err"
	rc=$?
}
store_oids() {
	ls "$1/objects"/*/ 2>/dev/null | grep -E '^[0-9a-f]{64}$' | sort
}

# add_snapshot CACHEDIR REV REFFILE: lay out revision REV of the upstream as
# huggingface_hub does: blobs named by Hub id, snapshot symlinks, refs/<rev>
add_snapshot() {
	c=$1
	sha=$(git -C "$UP" rev-parse "$2^{commit}")
	mkdir -p "$c/blobs" "$c/snapshots/$sha" "$(dirname "$c/refs/$3")"
	printf '%s' "$sha" >"$c/refs/$3"
	git -C "$UP" ls-tree -r "$sha" | while read -r _ _ blob path; do
		oid=$(git -C "$UP" cat-file -p "$blob" | sed -n 's/^oid sha256://p')
		if [ -n "$oid" ]; then
			id=$oid
			cp "$UP/.git/lfs/objects/$(echo "$oid" | cut -c1-2)/$(echo "$oid" | cut -c3-4)/$oid" \
				"$c/blobs/$id"
		else
			id=$blob
			git -C "$UP" cat-file blob "$blob" >"$c/blobs/$id"
		fi
		mkdir -p "$(dirname "$c/snapshots/$sha/$path")"
		up=$(echo "$path" | sed 's|[^/]*/|../|g; s|[^/]*$||')
		ln -sf "../../${up}blobs/$id" "$c/snapshots/$sha/$path"
	done
}

# --- a Hugging Face cache --------------------------------------------------------
HUB=$T/hub
C=$HUB/models--acme--tiny
add_snapshot "$C" main main
add_snapshot "$C" refs/pr/1 refs/pr/1
main_sha=$(git -C "$UP" rev-parse main)
S=$T/store
M=$S/mirrors/models/acme/tiny.git
import --store "$S" "$C"
is "$rc" 0 "cache folder: exit 0"
is "$(json_get "$T/out.json" 'j["repo"] + " " + j["type"]')" "acme/tiny model" \
	"name and type from the folder name"
is "$(git --git-dir="$M" rev-parse 'main^{tree}')" "$(git -C "$UP" rev-parse 'main^{tree}')" \
	"main has the Hub's tree id (blob names decide LFS or not)"
is "$(git --git-dir="$M" rev-parse 'refs/pr/1^{tree}')" \
	"$(git -C "$UP" rev-parse 'refs/pr/1^{tree}')" "refs/refs/pr/1 becomes refs/pr/1"
is "$(git --git-dir="$M" rev-parse "refs/hfmirror/hub/$main_sha")" \
	"$(git --git-dir="$M" rev-parse main)" "the Hub commit id is kept as a ref"
like "$(git --git-dir="$M" log -1 --format=%B main)" "Hub-Commit: $main_sha" \
	"and in the commit message"
is "$(git --git-dir="$M" symbolic-ref HEAD)" refs/heads/main "HEAD is main"
check "cache mirror passes git fsck" git --git-dir="$M" fsck --strict --no-progress
is "$(store_oids "$S")" "$(oids_of "$UP/.git" --no-walk main refs/pr/1)" \
	"the LFS objects of both snapshots are in the store"
check "every object hashes to its name" store_ok "$S"
blob=$(ls "$C/blobs" | grep -E '^[0-9a-f]{64}$' | head -n 1)
is "$(stat -c %i "$S/objects/$(echo "$blob" | cut -c1-2)/$blob")" "$(stat -c %i "$C/blobs/$blob")" \
	"linked to the cache blob, not to its symlink"

# the server answers the Hub's commit id of an imported snapshot
start_server hub mirror --repos-path "$S" || exit 1
is "$(curl -s -o /dev/null -w '%{http_code}' "$hub_URL/api/models/acme/tiny/revision/$main_sha")" 200 \
	"the server resolves the Hub commit id of an imported snapshot"
is "$(curl -s "$hub_URL/acme/tiny/resolve/$main_sha/config.json" | git hash-object --stdin)" \
	"$(git -C "$UP" rev-parse main:config.json)" "and serves its files at that id"
stop_server hub

import --store "$S" "$C"
is "$rc" 0 "cache re-run: exit 0"
is "$(json_get "$T/out.json" '(j["objects_linked"], j["objects_copied"], j["refs_new"], j["refs_moved"])')" \
	"(0, 0, 0, 0)" "cache re-run adds nothing"

# a whole cache: every repo folder, and a damaged small blob
D=$HUB/datasets--acme--ds
add_snapshot "$D" main main
cfg=$(git -C "$UP" rev-parse main:config.json)
chmod u+w "$D/blobs/$cfg"
echo '{"tampered": true}' >"$D/blobs/$cfg"
import --store "$S" "$HUB"
is "$rc" 0 "whole cache: exit 0"
is "$(grep -c . "$T/out.json")" 2 "one JSON line per repo"
grep '"acme/ds"' "$T/out.json" >"$T/ds.json"
is "$(json_get "$T/ds.json" 'j["repo"] + " " + j["type"]')" "acme/ds dataset" \
	"datasets--org--name is a dataset"
is "$(json_get "$T/ds.json" '[c["oid"] for c in j["corrupt"]][0]')" "$cfg" \
	"a cache blob whose content is not its name is reported"
check "the damaged file is left out of the tree" \
	sh -c "! git --git-dir='$S/mirrors/datasets/acme/ds.git' cat-file -e main:config.json"

# --- a plain directory --------------------------------------------------------------
P=$T/plain
mkdir -p "$P"
(cd "$UP" && tar cf - --exclude=.git .) | (cd "$P" && tar xf -)
mkdir -p "$P/.cache/huggingface"
echo junk >"$P/.cache/huggingface/x"
"$HFMIRROR_IMPORT" --store "$S" "$P" >/dev/null 2>"$T/err"
is "$?" 1 "plain directory without --name: exit 1"
like "$(cat "$T/err")" "plain directory.*" "says it is a plain directory"
like "$(cat "$T/err")" "pass --name org/name" "and what to pass"
PM=$S/mirrors/models/acme/plain.git
import --store "$S" --name acme/plain "$P"
is "$rc" 0 "plain directory: exit 0"
is "$(git --git-dir="$PM" rev-parse 'main^{tree}')" "$(git -C "$UP" rev-parse 'main^{tree}')" \
	"same tree as git made (.gitattributes rule, blob ids)"
is "$(git --git-dir="$PM" rev-list --count main)" 1 "one commit"
check "plain mirror passes git fsck" git --git-dir="$PM" fsck --strict --no-progress
w=$(git -C "$UP" lfs ls-files -l | awk '$3 == "weights.bin" { print $1 }')
check "weights.bin is in the store" test -f "$S/objects/$(echo "$w" | cut -c1-2)/$w"
first=$(git --git-dir="$PM" rev-parse main)

import --store "$S" --name acme/plain "$P"
is "$(json_get "$T/out.json" '(j["refs_moved"], j["objects_linked"], j["objects_copied"])')" \
	"(0, 0, 0)" "plain re-run: nothing new"
is "$(git --git-dir="$PM" rev-parse main)" "$first" "same commit"
if grep -q hashing "$T/err"; then not_ok "re-run hashes nothing"; else ok "re-run hashes nothing"; fi

rand "$P/extra.dat" 256
echo changed >>"$P/README.md"
import --store "$S" --name acme/plain "$P"
is "$(json_get "$T/out.json" '(j["refs_moved"], j["objects_linked"])')" "(1, 1)" \
	"changed directory: main moves, one new object"
import --store "$S" --name acme/plain --type dataset "$P"
is "$(json_get "$T/out.json" 'j["type"] + " " + j["mirror"]')" \
	"dataset $S/mirrors/datasets/acme/plain.git" "--type dataset"
is "$(git --git-dir="$PM" rev-parse 'main^')" "$first" "the new commit's parent is the old one"
is "$(git --git-dir="$PM" cat-file -p main:extra.dat | head -n 1)" \
	"version https://git-lfs.github.com/spec/v1" "a binary file is an LFS pointer"

done_testing
