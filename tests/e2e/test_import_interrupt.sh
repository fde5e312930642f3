#!/bin/sh
# test_import_interrupt.sh - hfmirror-import killed with SIGKILL in the
# middle of copying an object: the store stays consistent and a re-run
# completes the import.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_import.sh"

UP=$T/up/acme/tiny
make_upstream "$UP"
(cd "$UP" && rand big.bin 8192 && git add big.bin && git commit -q -m 'a big file') >/dev/null
big=$(git -C "$UP" lfs ls-files -l | awk '$3 == "big.bin" { print $1 }')
S=$T/store
M=$S/mirrors/models/acme/tiny.git

# HFMIRROR_IMPORT_STALL stops the importer for good after 4 MiB of an object
HFMIRROR_IMPORT_STALL=4194304 "$HFMIRROR_IMPORT" --store "$S" --copy --name acme/tiny "$UP" \
	2>"$T/err" >/dev/null &
pid=$!
i=0
while ! grep -q stalled "$T/err" && [ $i -lt 600 ] && kill -0 $pid 2>/dev/null; do
	sleep 0.1
	i=$((i + 1))
done
like "$(cat "$T/err")" "stalled after" "the import stalls in the middle of an object"
staged=$(find "$S/tmp" -type f -size +4095k | head -n 1)
check "a partial copy is staged under tmp/" test -n "$staged"
kill -9 $pid
wait $pid 2>/dev/null

check "no partial object under objects/" test ! -e "$S/objects/$(echo "$big" | cut -c1-2)/$big"
check "every object under objects/ hashes to its name" store_ok "$S"
is "$(git --git-dir="$M" for-each-ref | grep -c .)" 0 "no mirror ref moved before the objects were in"

"$HFMIRROR_IMPORT" --store "$S" --copy --name acme/tiny --json "$UP" >"$T/out.json" 2>"$T/err"
is "$?" 0 "re-run: exit 0"
is "$(json_get "$T/out.json" 'j["complete"]')" True "re-run completes the import"
check "the big object is there now" test -f "$S/objects/$(echo "$big" | cut -c1-2)/$big"
check "every object hashes to its name" store_ok "$S"
is "$(ls "$S"/objects/*/ | grep -E '^[0-9a-f]{64}$' | sort)" "$(oids_of "$UP/.git" --all)" \
	"every LFS object of every ref"
is "$(git --git-dir="$M" for-each-ref --format='%(objectname) %(refname)')" \
	"$(git -C "$UP" for-each-ref --format='%(objectname) %(refname)' refs/heads refs/tags refs/pr)" \
	"refs are set"
check "mirror passes git fsck" git --git-dir="$M" fsck --strict --no-progress

done_testing
