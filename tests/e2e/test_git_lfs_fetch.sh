#!/bin/sh
# test_git_lfs_fetch.sh - a git mirror cloned without its LFS objects
# (GIT_LFS_SKIP_SMUDGE=1) gets them through the online cache: the upstream is
# a second hfmirror serving the full clone (with LFS objects), reached through
# faultrelay.py, which counts connections.  Also: the object lands in the
# store and is then served by the git source with the upstream gone; Range;
# offline; a commit upstream lacks; a repo the cache rules deny; a gated repo
# (the relay plays the Hub's gating): its object reaches accepted tokens only.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_import.sh"

UP=$T/up/models/acme/tiny
NC=$T/up/models/acme/nocache
GA=$T/up/models/acme/gated
make_upstream "$UP"
make_upstream "$NC"
make_upstream "$GA"
start_server up mirror -m "$T/up" --offline --repos-path "$T/upstore" || exit 1
start_relay "${up_URL##*:}"

# the local mirror: clones that have every commit and no LFS object
MIR=$T/mirrors/models/acme
GIT_LFS_SKIP_SMUDGE=1 git clone -q "file://$UP" "$MIR/tiny" 2>/dev/null
GIT_LFS_SKIP_SMUDGE=1 git clone -q "file://$NC" "$MIR/nocache" 2>/dev/null
GIT_LFS_SKIP_SMUDGE=1 git clone -q "file://$GA" "$MIR/gated" 2>/dev/null
echo "gated acme/gated hf_good" >"$T/relay/gated"
is "$(find "$MIR" -path '*/lfs/objects/*' -type f | wc -l)" 0 \
	"the local clones hold no LFS object"

# serve_config FILE STORE OFFLINE: a config with a git mirror, a store and an
# upstream; the cache rules deny acme/nocache
serve_config() {
	cat >"$1" <<EOF
[basic]
repos-path = "$2"
mirrors-path = ["$T/mirrors"]
hf-scheme = "http"
hf-netloc = "$RELAY"
cache-block-size = "1M"

[accessibility]
offline = $3

[[accessibility.cache]]
repo = "*"
allow = true

[[accessibility.cache]]
repo = "acme/nocache"
allow = false
EOF
}
S=$T/store
serve_config "$T/local.toml" "$S" false
start_server local serve -c "$T/local.toml" || exit 1
L=$local_URL

# get URL OUT [curl args]: download, headers to OUT.h; print the status
get() {
	u=$1 o=$2
	shift 2
	curl -s -D "$o.h" -o "$o" -w '%{http_code}' --max-time 60 "$@" "$u"
}
obj() { echo "$S/objects/$(echo "$1" | cut -c1-2)/$1"; }
# wait_obj OID: the blob is published under objects/ (verification runs as
# the last bytes arrive, so it may land just after the response ends)
wait_obj() {
	i=0
	while [ ! -f "$(obj "$1")" ] && [ $i -lt 100 ]; do sleep 0.1; i=$((i + 1)); done
	test -f "$(obj "$1")"
}
# last_src: the source that answered the last request (access log)
last_src() { tail -n 1 "$T/local.out" | sed -n 's/.*"src":"\([^"]*\)".*/\1/p'; }
# download_ok WHAT URL FILE SHA SRC: URL is 200 with FILE's bytes, ETag SHA,
# answered by source SRC
download_ok() {
	is "$(get "$2" "$T/dl")" 200 "$1: 200"
	check "$1: the right bytes" cmp "$T/dl" "$3"
	is "$(hdr "$T/dl.h" ETag)" "\"$4\"" "$1: ETag is the sha256"
	is "$(last_src)" "$5" "$1: answered by the $5 source"
}
# range_ok WHAT URL FILE FROM TO: bytes FROM-TO of URL are 206 and FILE's
range_ok() {
	is "$(get "$2" "$T/rg" -r "$4-$5")" 206 "$1: 206"
	is "$(hdr "$T/rg.h" Content-Range)" "bytes $4-$5/$(stat -c %s "$3")" "$1: Content-Range"
	tail -c +$(($4 + 1)) "$3" | head -c $(($5 - $4 + 1)) >"$T/rg.want"
	check "$1: the right bytes" cmp "$T/rg" "$T/rg.want"
}

commit=$(git -C "$UP" rev-parse main)
sha=$(sha256sum <"$UP/weights.bin" | cut -c1-64)
size=$(stat -c %s "$UP/weights.bin")

# ---- the missing object comes through the cache ----------------------------
curl -s -I -o "$T/head" "$L/acme/tiny/resolve/main/weights.bin"
is "$(status "$T/head")" 200 "HEAD of a missing LFS object: 200"
is "$(hdr "$T/head" X-Repo-Commit)" "$commit" "HEAD: the mirror's commit"
is "$(hdr "$T/head" X-Linked-Etag)" "\"$sha\"" "HEAD: X-Linked-Etag is the sha256"
is "$(hdr "$T/head" X-Linked-Size)" "$size" "HEAD: X-Linked-Size"
c0=$(relay_conns)
download_ok "GET of a missing LFS object" "$L/acme/tiny/resolve/main/weights.bin" \
	"$UP/weights.bin" "$sha" cache
check "GET: fetched from the upstream" test "$(relay_conns)" -gt "$c0"
check "the object is published in the store's objects/" wait_obj "$sha"
is "$(sha256sum <"$(obj "$sha")" | cut -c1-64)" "$sha" "the stored object hashes to its name"

# ---- Range on an object nobody has fetched yet --------------------------------
range_ok "Range on a missing object" "$L/acme/tiny/resolve/main/data/shard.bin" \
	"$UP/data/shard.bin" 1000 1999
is "$(hdr "$T/rg.h" ETag)" "\"$(sha256sum <"$UP/data/shard.bin" | cut -c1-64)\"" \
	"Range: ETag is the sha256"

# ---- a gated repo: no token rides along on someone else's download -------------
# A slow fetch with the accepted token is under way when a request without a
# token asks for the same object: it must be refused, not join the transfer.
gsha=$(sha256sum <"$GA/weights.bin" | cut -c1-64)
relay_mode slow 1000000
get "$L/acme/gated/resolve/main/weights.bin" "$T/ga" -H "Authorization: Bearer hf_good" \
	>"$T/ga.st" &
ga_pid=$!
check "gated: the accepted download is under way" wait_for test -e "$S/partial/$gsha"
is "$(get "$L/acme/gated/resolve/main/weights.bin" "$T/gb")" 401 \
	"gated: a request without a token meanwhile is 401"
is "$(hdr "$T/gb.h" X-Error-Code)" GatedRepo "gated: GatedRepo"
wait "$ga_pid"
relay_mode pass
is "$(cat "$T/ga.st")" 200 "gated: the accepted token's download is 200"
check "gated: the accepted token gets the right bytes" cmp "$T/ga" "$GA/weights.bin"

# ---- a commit the upstream does not have ---------------------------------------
# A local commit (made with plumbing, so that no LFS filter runs) adds an LFS
# pointer whose object exists nowhere.
printf 'only here\n' >"$T/local.dat"
lsha=$(sha256sum <"$T/local.dat" | cut -c1-64)
lcommit=$(
	cd "$MIR/tiny" &&
	blob=$(printf 'version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %s\n' \
		"$lsha" "$(stat -c %s "$T/local.dat")" | git hash-object -w --stdin) &&
	tree=$({ git ls-tree main; printf '100644 blob %s\tlocal.dat\n' "$blob"; } | git mktree) &&
	git commit-tree -p main -m 'local only' "$tree"
)
is "$(get "$L/acme/tiny/resolve/$lcommit/local.dat" "$T/l1")" 502 \
	"a commit upstream lacks: 502"
like "$(hdr "$T/l1.h" X-Error-Message)" "$lsha.*has no commit $lcommit" \
	"the error names the object and the commit"
is "$(hdr "$T/l1.h" X-Error-Code)" "" "no X-Error-Code: the file exists, it is not EntryNotFound"
curl -s -I -o "$T/l2" "$L/acme/tiny/resolve/$lcommit/local.dat"
is "$(status "$T/l2")" 502 "a commit upstream lacks: HEAD 502 too"

# ---- a repo the cache rules deny: relayed, not stored ---------------------------
nsha=$(sha256sum <"$NC/weights.bin" | cut -c1-64)
n0=$(find "$S/objects" "$S/partial" -type f 2>/dev/null | wc -l)
download_ok "cache rules deny" "$L/acme/nocache/resolve/main/weights.bin" \
	"$NC/weights.bin" "$nsha" cache
range_ok "cache rules deny, Range" "$L/acme/nocache/resolve/main/weights.bin" \
	"$NC/weights.bin" 0 99
is "$(find "$S/objects" "$S/partial" -type f 2>/dev/null | wc -l)" "$n0" \
	"cache rules deny: nothing stored"
check "cache rules deny: no metadata stored" test ! -e "$S/meta/models/acme/nocache"

# ---- offline with a fresh store: the documented 502 ------------------------------
serve_config "$T/off.toml" "$T/store-off" true
start_server off serve -c "$T/off.toml" || exit 1
c2=$(relay_conns)
is "$(get "$off_URL/acme/tiny/resolve/main/weights.bin" "$T/o1")" 502 "offline, fresh store: 502"
like "$(hdr "$T/o1.h" X-Error-Message)" "LFS object $sha of weights.bin is missing.*offline" \
	"offline: the error names the object and says offline"
is "$(hdr "$T/o1.h" X-Error-Code)" "" "offline: no X-Error-Code"
is "$(hdr "$T/o1.h" X-Repo-Commit)" "$commit" "offline: X-Repo-Commit"
curl -s -I -o "$T/o2" "$off_URL/acme/tiny/resolve/main/weights.bin"
is "$(status "$T/o2")" 502 "offline: HEAD 502 too"
is "$(get "$off_URL/acme/tiny/raw/main/weights.bin" "$T/o3")" 200 "offline: /raw/ still serves the pointer"
is "$(relay_conns)" "$c2" "offline: no upstream connection"
is "$(find "$T/store-off/objects" -type f 2>/dev/null | wc -l)" 0 "offline: nothing stored"

# ---- the upstream gone: the git source serves the stored object ---------------------
stop_server up
c1=$(relay_conns)
download_ok "upstream stopped, from the store" "$L/acme/tiny/resolve/main/weights.bin" \
	"$UP/weights.bin" "$sha" git
range_ok "upstream stopped, Range" "$L/acme/tiny/resolve/main/weights.bin" \
	"$UP/weights.bin" 100 199
is "$(relay_conns)" "$c1" "upstream stopped: no upstream connection"
# an object never fetched cannot come now: upstream trouble, a 5xx (the
# relay stopped too, or it would hold the connection like a stalled upstream)
kill "$RELAY_PID" && wait "$RELAY_PID" 2>/dev/null
like "$(get "$L/acme/tiny/resolve/dev/dev.bin" "$T/x1")" '^50[24]$' \
	"upstream stopped, object never fetched: 502/504"
# (with the upstream unreachable the cache answers as offline does; how
# lookup.c words that depends on which request found it unreachable)
like "$(hdr "$T/x1.h" X-Error-Message)" "dev.bin is missing from this mirror[;,] " \
	"upstream stopped: the error says what is missing and why"

done_testing
