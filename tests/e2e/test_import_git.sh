#!/bin/sh
# test_import_git.sh - hfmirror-import from git clones: smudged,
# GIT_LFS_SKIP_SMUDGE, bare, only a working tree, corrupt LFS objects;
# re-runs; name inference.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_import.sh"

UP=$T/up/acme/tiny
make_upstream "$UP"
HUB=https://huggingface.co/acme/tiny

# the refs the Hub would show, as "oid name" lines
want_refs=$(git --git-dir="$UP/.git" for-each-ref --format='%(objectname) %(refname)' \
	refs/heads refs/tags refs/pr)
want_oids=$(oids_of "$UP/.git" --all)
n_oids=$(echo "$want_oids" | wc -l)

refs_of() {
	git --git-dir="$1" for-each-ref --format='%(objectname) %(refname)'
}
store_oids() {
	ls "$1/objects"/*/ 2>/dev/null | grep -E '^[0-9a-f]{64}$' | sort
}
# import ARGS...: runs the importer with --json, leaves $T/out.json, $T/err, $rc
import() {
	"$HFMIRROR_IMPORT" --json "$@" >"$T/out.json" 2>"$T/err"
	rc=$?
}

# --- a clone with every LFS object fetched ------------------------------
git clone -q "file://$UP" "$T/clone" 2>/dev/null
(
	cd "$T/clone" &&
	git fetch -q origin 'refs/pr/*:refs/pr/*' &&
	git lfs fetch --all origin >/dev/null 2>&1 &&
	git remote set-url origin "$HUB"
)
S=$T/store
M=$S/mirrors/models/acme/tiny.git
import --store "$S" "$T/clone"
is "$rc" 0 "smudged clone: exit 0"
is "$(json_get "$T/out.json" 'j["repo"] + " " + j["type"]')" "acme/tiny model" \
	"name and type inferred from the remote URL"
is "$(json_get "$T/out.json" 'j["complete"]')" True "complete"
is "$(json_get "$T/out.json" 'j["mirror"]')" "$M" "mirror path"
is "$(refs_of "$M")" "$want_refs" "mirror has every branch, tag and refs/pr/1"
is "$(git --git-dir="$M" symbolic-ref HEAD)" refs/heads/main "HEAD is main"
check "mirror passes git fsck" git --git-dir="$M" fsck --strict --no-progress
is "$(git --git-dir="$M" cat-file -p 'main:sub dir/nested/file with spaces.txt')" hello \
	"file with spaces in nested dirs"
is "$(git --git-dir="$M" cat-file -t v1.0)" tag "annotated tag kept"
is "$(store_oids "$S")" "$want_oids" "store holds every LFS object of every ref"
check "every object hashes to its name" store_ok "$S"
is "$(json_get "$T/out.json" 'j["objects_linked"]')" "$n_oids" "all linked (same filesystem)"
some=$(echo "$want_oids" | head -n 1)
is "$(stat -c %i "$S/objects/$(echo "$some" | cut -c1-2)/$some")" \
	"$(stat -c %i "$T/clone/.git/lfs/objects/$(echo "$some" | cut -c1-2)/$(echo "$some" | cut -c3-4)/$some")" \
	"a linked object shares the inode of git-lfs's file"
like "$(cat "$T/err")" "acme/tiny \(model\) -> " "text summary on stderr"

# --- re-run: nothing new --------------------------------------------------
packs_before=$(ls "$M/objects/pack" | wc -l)
import --store "$S" "$T/clone"
is "$rc" 0 "re-run: exit 0"
is "$(json_get "$T/out.json" '(j["objects_linked"], j["objects_copied"], j["objects_present"], j["git_objects"], j["refs_new"], j["refs_moved"])')" \
	"(0, 0, $n_oids, 0, 0, 0)" "re-run adds nothing"
is "$(ls "$M/objects/pack" | wc -l)" "$packs_before" "re-run writes no pack"

# --- upstream moves on: only the new commit and object come in --------------
(cd "$UP" && rand weights.bin 1024 && git commit -q -am 'newer weights') >/dev/null
(
	cd "$T/clone" &&
	git remote set-url origin "file://$UP" &&
	git pull -q 2>/dev/null &&
	git remote set-url origin "$HUB"
)
import --store "$S" "$T/clone"
is "$rc" 0 "after a pull: exit 0"
is "$(json_get "$T/out.json" '(j["objects_linked"], j["objects_present"], j["refs_moved"])')" \
	"(1, $n_oids, 1)" "after a pull: one new object, main moved"
is "$(git --git-dir="$M" rev-parse main)" "$(git -C "$UP" rev-parse main)" "main is the new commit"
want_oids=$(oids_of "$UP/.git" --all)
n_oids=$(echo "$want_oids" | wc -l)

# --- GIT_LFS_SKIP_SMUDGE=1: pointers only, objects missing ------------------
GIT_LFS_SKIP_SMUDGE=1 git clone -q "file://$UP" "$T/skip" 2>/dev/null
(cd "$T/skip" && git fetch -q origin 'refs/pr/*:refs/pr/*' && git remote set-url origin "$HUB")
S2=$T/store2
import --store "$S2" "$T/skip"
is "$rc" 2 "skip-smudge clone: exit 2 (incomplete)"
is "$(json_get "$T/out.json" 'j["complete"]')" False "not complete"
is "$(json_get "$T/out.json" '"\n".join(sorted(m["oid"] for m in j["missing"]))')" \
	"$want_oids" "every missing object is listed"
for o in $want_oids; do
	grep -q "$o" "$T/err" || not_ok "missing $o not in the text summary"
done
like "$(cat "$T/err")" "git lfs fetch --all" "says how to get them"
like "$(json_get "$T/out.json" 'j["missing"][0]["path"]')" "^refs/heads/main:" \
	"missing objects say where they are"
is "$(refs_of "$S2/mirrors/models/acme/tiny.git" | grep -c .)" 4 "refs imported anyway"
is "$(store_oids "$S2")" "" "nothing in the store"
# fetch the objects afterwards and run again
(
	cd "$T/skip" && git remote set-url origin "file://$UP" &&
	git lfs fetch --all origin >/dev/null 2>&1 && git remote set-url origin "$HUB"
)
import --store "$S2" "$T/skip"
is "$rc" 0 "after git lfs fetch --all: exit 0"
is "$(json_get "$T/out.json" 'j["objects_linked"]')" "$n_oids" "the fetched objects come in"

# --- a bare clone, named as a dataset by its remote ----------------------------
git clone -q --bare "file://$UP" "$T/bare.git" 2>/dev/null
(
	cd "$T/bare.git" && git fetch -q origin 'refs/pr/*:refs/pr/*' &&
	git lfs fetch --all origin >/dev/null 2>&1 &&
	git remote set-url origin https://huggingface.co/datasets/acme/tiny-ds.git
)
S3=$T/store3
import --store "$S3" "$T/bare.git"
is "$rc" 0 "bare clone: exit 0"
is "$(json_get "$T/out.json" 'j["repo"] + " " + j["type"]')" "acme/tiny-ds dataset" \
	"dataset inferred from /datasets/ in the URL"
want_refs=$(git --git-dir="$UP/.git" for-each-ref --format='%(objectname) %(refname)' \
	refs/heads refs/tags refs/pr)
is "$(refs_of "$S3/mirrors/datasets/acme/tiny-ds.git")" "$want_refs" "bare clone: every ref"
is "$(store_oids "$S3")" "$want_oids" "bare clone: every object"

# --- only the working tree has the content -------------------------------------
cp -a "$T/clone" "$T/wt"
rm -rf "$T/wt/.git/lfs/objects"
S4=$T/store4
import --store "$S4" --copy --name acme/wt "$T/wt"
is "$rc" 2 "working tree only: exit 2 (old versions missing)"
head_oids=$(git -C "$T/wt" lfs ls-files -l | cut -d' ' -f1 | sort)
is "$(store_oids "$S4")" "$head_oids" "checked-out LFS files imported from the working tree"
is "$(json_get "$T/out.json" 'j["objects_copied"]')" "$(echo "$head_oids" | wc -l)" \
	"--copy copies"
some=$(echo "$head_oids" | head -n 1)
f=$(git -C "$T/wt" lfs ls-files -l -n | head -n 1)
[ "$(stat -c %i "$S4/objects/$(echo "$some" | cut -c1-2)/$some")" != "$(stat -c %i "$T/wt/$f")" ] &&
	ok "--copy: own inode" || not_ok "--copy: own inode"
check "working tree import: every object hashes to its name" store_ok "$S4"

# --- corrupt LFS objects --------------------------------------------------------
cp -a "$T/bare.git" "$T/corrupt.git"
bad=$(echo "$want_oids" | head -n 1)
short=$(echo "$want_oids" | sed -n 2p)
badf=$T/corrupt.git/lfs/objects/$(echo "$bad" | cut -c1-2)/$(echo "$bad" | cut -c3-4)/$bad
shortf=$T/corrupt.git/lfs/objects/$(echo "$short" | cut -c1-2)/$(echo "$short" | cut -c3-4)/$short
# same size, one byte flipped; and one truncated
flip_byte "$badf" 1000
truncate -s 1000 "$shortf"
S5=$T/store5
import --store "$S5" --name acme/corrupt "$T/corrupt.git"
is "$rc" 2 "corrupt objects: exit 2"
is "$(json_get "$T/out.json" '" ".join(sorted(c["oid"] for c in j["corrupt"]))')" \
	"$(printf '%s\n%s\n' "$bad" "$short" | sort | tr '\n' ' ' | sed 's/ $//')" \
	"both corrupt files reported"
like "$(json_get "$T/out.json" '[c["reason"] for c in j["corrupt"] if c["oid"] == "'"$short"'"][0]')" \
	"1000 bytes" "truncated file: size reported"
is "$(json_get "$T/out.json" '" ".join(sorted(m["oid"] for m in j["missing"]))')" \
	"$(printf '%s\n%s\n' "$bad" "$short" | sort | tr '\n' ' ' | sed 's/ $//')" \
	"corrupt objects are missing"
[ ! -e "$S5/objects/$(echo "$bad" | cut -c1-2)/$bad" ] && ok "corrupt object not imported" ||
	not_ok "corrupt object not imported"
check "corrupt run: every object hashes to its name" store_ok "$S5"
like "$(cat "$T/err")" "corrupt" "corruption is said on stderr"

# --- a shallow clone: the mirror is shallow in the same place --------------------
git clone -q --depth 1 "file://$UP" "$T/shallow" 2>/dev/null
import --store "$T/store7" --name acme/shallow "$T/shallow"
is "$rc" 0 "shallow clone: exit 0 (the tip's objects are there)"
SM=$T/store7/mirrors/models/acme/shallow.git
is "$(cat "$SM/shallow")" "$(git -C "$UP" rev-parse main)" "the mirror lists the cut"
is "$(git --git-dir="$SM" rev-list --count main)" 1 "history ends at the cut"
check "shallow mirror passes git fsck" git --git-dir="$SM" fsck --no-progress

# --- names that cannot be inferred ----------------------------------------------
git clone -q --no-checkout "file://$UP" "$T/local" 2>/dev/null
git -C "$T/local" remote set-url origin /nowhere/acme/tiny
"$HFMIRROR_IMPORT" --store "$S" "$T/local" >/dev/null 2>"$T/err"
is "$?" 1 "remote that names no repo: exit 1"
like "$(cat "$T/err")" "remote \"origin\" is /nowhere/acme/tiny" "says what it found"
like "$(cat "$T/err")" "pass --name org/name" "says what to pass"
git -C "$T/local" remote set-url origin "file://$T/clone"
"$HFMIRROR_IMPORT" --store "$T/store6" --json "$T/local" >"$T/out.json" 2>"$T/err"
is "$(json_get "$T/out.json" 'j["repo"]')" acme/tiny "a clone of a clone: name from the first clone"
"$HFMIRROR_IMPORT" --store "$S" --type nonsense "$T/clone" >/dev/null 2>"$T/err"
is "$?" 1 "bad --type: exit 1"
"$HFMIRROR_IMPORT" >/dev/null 2>"$T/err"
is "$?" 1 "no SOURCE: exit 1"
like "$("$HFMIRROR_IMPORT" --help)" "Exit status" "--help"

done_testing
