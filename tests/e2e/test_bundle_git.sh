#!/bin/bash
# test_bundle_git.sh - git mirrors across the gap: a mirror imported with hfmirror-import
# outside goes through `hfmirror export -o - | hfmirror-import -` into a fresh store,
# which `hfmirror mirror --offline` serves with every branch, tag and PR ref; then a new
# commit upstream travels as an incremental bundle (only the new objects); and an import
# killed half way (kill -9) is finished by the next run without reading again what it
# had verified.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_import.sh"
. "$(dirname "$0")/lib_bundle.sh"

UP=$T/up/acme/tiny
make_upstream "$UP"
git clone -q --mirror "file://$UP" "$T/src.git" 2>/dev/null
(cd "$T/src.git" && git lfs fetch --all origin >/dev/null 2>&1 &&
	git remote set-url origin https://huggingface.co/acme/tiny)
check "the outside imports the clone" "$HFMIRROR_IMPORT" --store "$OUT" --quiet "$T/src.git"

check "export | import through a pipe" sh -c "'$HFMIRROR' export --repos-path '$OUT' -o - \
	--repo acme/tiny | '$HFMIRROR_IMPORT' --store '$IN' -"
like "$(cat "$T/.check.out")" 'acme/tiny \(model, git mirror\): 4 revisions \(4 new, 0 moved\)' \
	"four refs arrive"
M=$IN/mirrors/models/acme/tiny.git
check "the mirror passes git fsck" git --git-dir="$M" fsck --full
is "$(find "$M/refs" -type f | wc -l)" 0 "its refs are packed: they switch at once"
is "$(git --git-dir="$M" show-ref)" "$(git --git-dir="$OUT/mirrors/models/acme/tiny.git" show-ref)" \
	"every ref as outside"

start_server inside mirror --repos-path "$IN" --offline || { done_testing; exit 1; }
refs=$(curl -s "$inside_URL/api/models/acme/tiny/refs?include_prs=1")
like "$refs" '"name":"dev"' "refs list the dev branch"
like "$refs" '"refs/pr/1"' "and the pull request"
like "$refs" '"v1.0"' "and the tag"
for rev_file in main:weights.bin dev:dev.bin 'refs%2Fpr%2F1:pr.bin' v1.0:data/shard.bin; do
	rev=${rev_file%%:*}
	f=${rev_file#*:}
	want=$(git -C "$UP" cat-file -p "$(echo "$rev" | sed 's/%2F/\//g'):$f" | sed -n 's/^oid sha256://p')
	got=$(curl -sf "$inside_URL/acme/tiny/resolve/$rev/$f" | sha256sum | cut -d' ' -f1)
	is "$got" "$want" "resolve $rev/$f inside"
done
is "$(curl -sf "$inside_URL/acme/tiny/resolve/main/sub%20dir/nested/file%20with%20spaces.txt")" hello \
	"a small file from the pack"

# a new commit upstream, carried by an incremental bundle
OLD=$(git -C "$UP" rev-parse main)
(cd "$UP" && rand new.bin 1536 && git add -A && git commit -q -m 'new file') >/dev/null
NEWOID=$(sha256 "$UP/new.bin")
(cd "$T/src.git" && git fetch -q "file://$UP" '+refs/heads/*:refs/heads/*' 2>/dev/null &&
	git lfs fetch --all "file://$UP" >/dev/null 2>&1)
check "the outside imports the new commit" "$HFMIRROR_IMPORT" --store "$OUT" --quiet "$T/src.git"
check "receipt of the inside" "$HFMIRROR" receipt --repos-path "$IN" -o "$T/receipt"
check "export --since" "$HFMIRROR" export --repos-path "$OUT" -o "$T/inc" --repo acme/tiny --since "$T/receipt"
is "$(manifest_objects "$T/inc/manifest")" "$NEWOID" "the incremental bundle carries the one new LFS object"
like "$(cat "$T/.check.out")" '1 git pack \([1-9] git objects\)' "and a pack of a few git objects"
check "import it into the running inside" "$HFMIRROR_IMPORT" --store "$IN" "$T/inc"
like "$(cat "$T/.check.out")" '0 new, 1 moved' "main moved"
wait_for sh -c "curl -sf '$inside_URL/acme/tiny/resolve/main/new.bin' | sha256sum | grep -q '^$NEWOID'"
is "$(curl -sf "$inside_URL/acme/tiny/resolve/main/new.bin" | sha256sum | cut -d' ' -f1)" "$NEWOID" \
	"the new file resolves on main"
is "$(curl -s -o /dev/null -w '%{http_code}' "$inside_URL/acme/tiny/resolve/$OLD/new.bin")" 404 \
	"and not at the old commit"
is "$(curl -sf "$inside_URL/acme/tiny/resolve/$OLD/weights.bin" | sha256sum | cut -d' ' -f1)" \
	"$(git -C "$UP" cat-file -p "$OLD:weights.bin" | sed -n 's/^oid sha256://p')" \
	"the old commit still resolves"

# an import killed half way resumes
check "export a directory bundle" "$HFMIRROR" export -q --repos-path "$OUT" -o "$T/full" --repo acme/tiny
HFMIRROR_IMPORT_STALL=3000000 "$HFMIRROR_IMPORT" --store "$T/again" "$T/full" >"$T/stall.log" 2>&1 &
pid=$!
wait_for grep -q 'stalled after' "$T/stall.log"
kill -9 "$pid"
wait "$pid" 2>/dev/null
ok "an import killed after 3 MB"
is "$(ls "$T/again/mirrors" 2>/dev/null)" "" "nothing was published"
check "run again" "$HFMIRROR_IMPORT" --store "$T/again" "$T/full"
like "$(cat "$T/.check.out")" '[1-9][0-9]* entries verified by an earlier run' \
	"what was verified before is not read again"
is "$(git --git-dir="$T/again/mirrors/models/acme/tiny.git" show-ref)" \
	"$(git --git-dir="$OUT/mirrors/models/acme/tiny.git" show-ref)" "and the mirror is complete"
done_testing
