#!/bin/sh
# test_cache_evict.sh - cache-size-limit with evict-interval = 1: a set of
# files several times the limit downloaded (some at once) through the cache,
# every byte right, the cache's own bytes back under the limit afterwards, a
# file a slow client reads kept (leased) while the next oldest goes, and
# delivered whole; evicted files fetched again, and imported objects never
# touched.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fixtures.sh"

MIB=1048576
LIMIT=$((20 * MIB))
FSIZE=$((8 * MIB + 13))
touch "$T/xattr-probe"
if ! $PYTHON -c 'import os,sys; os.setxattr(sys.argv[1], "user.hfmirror.probe", b"1")' \
	"$T/xattr-probe" 2>/dev/null; then
	# without user xattrs the cache marks nothing: only partial/ is evicted
	echo "1..0 # SKIP $T has no user extended attributes"
	exit 0
fi

# Upstream: eight 8 MiB LFS files, 64 MiB against a 20 MiB limit.
E=$T/root/acme/ev
printf '*.bin filter=lfs diff=lfs merge=lfs -text\n' | mk "$E/.gitattributes"
for k in 0 1 2 3 4 5 6 7; do
	det_bytes "evict-$k" $FSIZE | mk "$E/f$k.bin"
done

# Imported into the same store before the cache starts: one object
# hard-linked (two links), one copied (no cache mark).  Their mtimes are
# the oldest in the store, so FIFO would take them first if it saw them.
{ printf 'IMP\000'; det_bytes imp-link $((4 * MIB)); } | mk "$T/imp1/a.bin"
{ printf 'IMP\000'; det_bytes imp-copy $((4 * MIB)); } | mk "$T/imp2/b.bin"
check "import (hard link)" "$HFMIRROR_IMPORT" -q --store "$T/store" --name acme/imp1 "$T/imp1"
check "import (copy)" "$HFMIRROR_IMPORT" -q --store "$T/store" --name acme/imp2 --copy "$T/imp2"
IMP1=$(store_object "$T/store" "$(sha256 "$T/imp1/a.bin")")
IMP2=$(store_object "$T/store" "$(sha256 "$T/imp2/b.bin")")
is "$(stat -c %h "$IMP1" 2>/dev/null)" 2 "the hard-linked import is an object with two links"
check "the copied import is an object" test -f "$IMP2"

start_server up model-bin --path "$T/root" || exit 1
start_relay "${up_URL##*:}"
# FIFO: the oldest blob goes first, unless someone reads it (LRU would spare
# the file the slow client keeps reading anyway).
cat >"$T/cache.toml" <<EOF
[basic]
cache-block-size = "1M"
cache-size-limit = "20M"
cache-clean-strategy = "FIFO"
[hfmirror]
evict-interval = 1
EOF
start_server cache proxy -c "$T/cache.toml" --hf-scheme http --hf-netloc "$RELAY" \
	--repos-path "$T/store" --wait-timeout 60 || exit 1
C=$cache_URL

# fetch K [TAG]: download f$K.bin through the cache; "ok" when 200 and right
fetch() {
	st=$(get "$C/acme/ev/resolve/main/f$1.bin" "$T/got.$1${2:-}")
	if [ "$st" = 200 ] && cmp -s "$T/got.$1${2:-}" "$E/f$1.bin"; then echo ok; else echo "$st bad"; fi
}
# cache_bytes: what the cache wrote and keeps, counted independently of
# evict.c: allocated bytes of marked single-link objects plus partial/.
cache_bytes() {
	$PYTHON - "$T/store" <<'EOF'
import os, sys
root, total = sys.argv[1], 0
for d, _, names in os.walk(os.path.join(root, "objects")):
    for n in names:
        p = os.path.join(d, n)
        st = os.lstat(p)
        try:
            os.getxattr(p, "user.hfmirror.cache", follow_symlinks=False)
        except OSError:
            continue
        if st.st_nlink == 1:
            total += st.st_blocks * 512
for d, _, names in os.walk(os.path.join(root, "partial")):
    for n in names:
        total += os.lstat(os.path.join(d, n)).st_blocks * 512
print(total)
EOF
}
under_limit() { [ "$(cache_bytes)" -le $LIMIT ]; }
F0=$(store_object "$T/store" "$(sha256 "$E/f0.bin")")
F1=$(store_object "$T/store" "$(sha256 "$E/f1.bin")")

is "$(get "$C/acme/imp1/resolve/main/a.bin" "$T/imp1.got")" 200 "imported file served"
check "imported file: same bytes" cmp "$T/imp1.got" "$T/imp1/a.bin"

# ---- fill to just under the limit, then read f0 slowly while f2 pushes it out ----
is "$(fetch 0)" ok "f0: 200 and right"
is "$(fetch 1)" ok "f1: 200 and right"
check "f0 and f1 are published" wait_for test -f "$F0" -a -f "$F1"
slow_read "$C/acme/ev/resolve/main/f0.bin" "$T/slow0" "$T/go" >"$T/slow0.st" &
SLOW=$!
check "a slow client has read the start of f0" wait_for test -s "$T/slow0"
is "$(fetch 2)" ok "f2 (now over the limit): 200 and right"
check "f1 is evicted while that client waits" wait_for test ! -e "$F1"
check "f0 (the oldest, being read) is not" test -e "$F0"
touch "$T/go"
wait $SLOW
is "$(cat "$T/slow0.st")" 200 "the slow client of f0: 200"
check "the slow reader of f0 got every byte right" cmp "$T/slow0" "$E/f0.bin"

# ---- the rest: three at once, then two in a row -----------------------------------
pids=""
for k in 3 4 5; do
	fetch $k >"$T/res.$k" &
	pids="$pids $!"
done
wait $pids
for k in 3 4 5; do
	is "$(cat "$T/res.$k")" ok "f$k (concurrently with two others): 200 and right"
done
is "$(fetch 6)" ok "f6: 200 and right"
is "$(fetch 7)" ok "f7: 200 and right"

check "the cache's bytes drop to the limit" wait_for under_limit
diag "cache-written bytes: $(cache_bytes) (limit $LIMIT) after $((8 * FSIZE)) downloaded"

# ---- evicted files come back ----------------------------------------------------------
check "f0 is still evicted" test ! -e "$F0"
b0=$(relay_bytes)
is "$(fetch 0 again)" ok "evicted f0 fetched again: 200 and right"
check "evicted f0 came from upstream again ($(($(relay_bytes) - b0)) bytes)" \
	test $(($(relay_bytes) - b0)) -ge $FSIZE
is "$(fetch 1 again)" ok "f1 again: 200 and right"
check "the cache's bytes drop to the limit again" wait_for under_limit

# ---- imported objects never go --------------------------------------------------------
check "the hard-linked import is still there" test -f "$IMP1"
check "the copied import is still there" test -f "$IMP2"
is "$(sha256 "$IMP1"):$(sha256 "$IMP2")" "$(sha256 "$T/imp1/a.bin"):$(sha256 "$T/imp2/b.bin")" \
	"imported objects unchanged"
is "$(get "$C/acme/imp2/resolve/main/b.bin" "$T/imp2.got")" 200 "imported (copied) file served"
check "imported (copied) file: same bytes" cmp "$T/imp2.got" "$T/imp2/b.bin"

done_testing
