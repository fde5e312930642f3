#!/bin/sh
# test_cache_faults.sh - the online cache against an upstream that behaves
# like the Hub (LFS files 302 to a CDN on another host) or badly (stalls,
# trickles, drops metadata answers), through faultrelay.py.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fixtures.sh"

make_fixture_tree "$T/root" "$T/outside"
TINY=$T/root/acme/tiny
# Cold files of their own for each case: a file the cache has seen is warm.
F=$T/root/acme/faults
printf '*.bin filter=lfs diff=lfs merge=lfs -text\n' | mk "$F/.gitattributes"
det_bytes faults-range $((6 * 1024 * 1024 + 5)) | mk "$F/range.bin"
det_bytes faults-stall $((3 * 1024 * 1024 + 7)) | mk "$F/stall.bin"
det_bytes faults-slow $((3 * 1024 * 1024 + 11)) | mk "$F/slow.bin"
det_bytes faults-small 3001 | mk "$F/small.bin"
M=$T/root/acme/meta
printf '{"model_type": "meta"}\n' | mk "$M/config.json"
printf 'x\n' | mk "$M/sub/a.txt"

start_server up model-bin --path "$T/root" || exit 1
start_relay "${up_URL##*:}"
R=http://$RELAY

# Small blocks, so several MiB take several Range requests; a stalled
# upstream fails after 2 s instead of 30.
cat >"$T/cache.toml" <<EOF
[basic]
cache-block-size = "1M"
[hfmirror]
upstream-timeout = 2
EOF
start_server cache proxy -c "$T/cache.toml" --hf-scheme http --hf-netloc "$RELAY" \
	--repos-path "$T/store" --wait-timeout 30 || exit 1
C=$cache_URL

size() { stat -c %s "$1" 2>/dev/null || echo 0; }
logged() { grep -q "$2" "$T/$1.log"; }
# until_200 URL OUT: GET until 200, past the cache's short negative cache
# (10 tries, 1 s apart): $st the last status, $tries how many.
until_200() {
	tries=0
	while [ $tries -lt 10 ]; do
		tries=$((tries + 1))
		st=$(get "$1" "$2")
		[ "$st" = 200 ] && break
		sleep 1
	done
}

# ---- CDN redirect: the Hub's 302 to another host ---------------------------------
relay_mode redirect
curl -s -I "$R/acme/tiny/resolve/main/weights.bin" | tr -d '\r' >"$T/h302"
is "$(status "$T/h302")" 302 "relay, redirect mode: an LFS file is 302"
like "$(hdr "$T/h302" Location)" "^http://$RELAY_CDN/acme/tiny/resolve/main/weights.bin\$" \
	"relay, redirect mode: Location on the CDN host"
is "$(hdr "$T/h302" X-Linked-Size)" "$(size "$TINY/weights.bin")" "relay, redirect mode: X-Linked-Size"
is "$(hdr "$T/h302" ETag)" "\"$(lfs_pointer "$TINY/weights.bin" | git hash-object --stdin)\"" \
	"relay, redirect mode: ETag is the pointer's blob id, as the Hub's"
is "$(curl -s -o /dev/null -w '%{http_code}' "$R/acme/tiny/resolve/main/config.json")" 200 \
	"relay, redirect mode: a small git file is served directly"
: >"$T/relay/cdn_log"

is "$(get "$C/acme/tiny/resolve/main/weights.bin" "$T/w1" -H 'Authorization: Bearer hf_x')" 200 \
	"CDN: cold LFS download with a token: 200"
check "CDN: cold LFS download: same bytes" cmp "$T/w1" "$TINY/weights.bin"
curl -s -D "$T/h" -o "$T/r1" --max-time 60 -r 2000000-2999999 -H 'Authorization: Bearer hf_x' \
	"$C/acme/faults/resolve/main/range.bin"
is "$(status "$T/h")" 206 "CDN: range of a cold file: 206"
dd if="$F/range.bin" bs=1000000 skip=2 count=1 2>/dev/null >"$T/r1.want"
check "CDN: range of a cold file: bytes" cmp "$T/r1" "$T/r1.want"
diag "$(cat "$T/relay/cdn_log")"
like "$(grep -c 'weights.bin' "$T/relay/cdn_log")" '^[1-9]' "CDN: weights.bin came from the CDN"
like "$(grep -c 'range.bin' "$T/relay/cdn_log")" '^[1-9]' "CDN: range.bin came from the CDN"
is "$(awk '$3 !~ /^bytes=[0-9]+-[0-9]*$/' "$T/relay/cdn_log")" "" \
	"CDN: every CDN request carried a Range header"
is "$(awk '$4 != "noauth"' "$T/relay/cdn_log")" "" "CDN: no Authorization ever sent to the CDN"
relay_mode err500
is "$(get "$C/acme/tiny/resolve/main/weights.bin" "$T/w2")" 200 "CDN: warm with upstream failing: 200"
check "CDN: warm with upstream failing: same bytes" cmp "$T/w2" "$TINY/weights.bin"
relay_mode pass

# ---- stall: an upstream that accepts and never answers ------------------------------
# Metadata first (a HEAD fetches no body), so that the stall hits the file.
is "$(curl -s -I -o /dev/null -w '%{http_code}' "$C/acme/faults/resolve/main/stall.bin")" 200 \
	"stall: HEAD before the stall: 200"
relay_mode stall
st=$(get "$C/acme/faults/resolve/main/stall.bin" "$T/s1")
rc=$?
diag "stall: status $st, curl exit $rc, $(size "$T/s1") of $(size "$F/stall.bin") bytes"
check "stall: the cache ended the request, not curl's 60 s guard (exit $rc)" test "$rc" -ne 28
if [ "$st" = 200 ] && [ "$rc" -eq 0 ] && [ "$(size "$T/s1")" = "$(size "$F/stall.bin")" ]; then
	not_ok "stall: an error or a short body"
	cmp -s "$T/s1" "$F/stall.bin" || diag "and its bytes are wrong"
else
	ok "stall: an error or a short body"
fi
# 504 when upstream-timeout ends the fetch; a 503 would be the cache giving
# up on waiting (wait-timeout), which means the failure never reached it.
like "$st" '^50[24]$' "stall: the upstream's failure is the answer: 502/504 ($st)"
check "stall: no object stored for it" \
	test ! -e "$(store_object "$T/store" "$(sha256 "$F/stall.bin")")"
relay_mode pass
# A client retries a 5xx; the cache's short negative cache may answer the
# first retry, so allow a few.
until_200 "$C/acme/faults/resolve/main/stall.bin" "$T/s2"
diag "after the stall: $tries attempt(s)"
is "$st" 200 "after the stall: 200"
check "after the stall: same bytes" cmp "$T/s2" "$F/stall.bin"

# ---- a lying upstream for a small file (one block: verified in memory) --------------
is "$(curl -s -I -o /dev/null -w '%{http_code}' "$C/acme/faults/resolve/main/small.bin")" 200 \
	"small, lying: HEAD first (the metadata): 200"
relay_mode flip 100
st=$(get "$C/acme/faults/resolve/main/small.bin" "$T/sm1")
like "$st" '^50[24]$' "small, lying: the answer is an error before any byte: 502/504 ($st)"
if cmp -s "$T/sm1" "$F/small.bin" || [ "$(size "$T/sm1")" = "$(size "$F/small.bin")" ]; then
	not_ok "small, lying: not the file, right or wrong"
else
	ok "small, lying: not the file, right or wrong"
fi
small_oid=$(sha256 "$F/small.bin")
check "small, lying: the discard is logged with the blob id" logged cache "$small_oid discarded"
check "small, lying: nothing published" test ! -e "$(store_object "$T/store" "$small_oid")"
check "small, lying: nothing under partial/" test ! -e "$T/store/partial/$small_oid"
relay_mode pass
until_200 "$C/acme/faults/resolve/main/small.bin" "$T/sm2"
is "$st" 200 "small, upstream honest again: 200"
check "small, upstream honest again: same bytes" cmp "$T/sm2" "$F/small.bin"
wait_for test -e "$(store_object "$T/store" "$small_oid")"
check "small, upstream honest again: published" cmp "$(store_object "$T/store" "$small_oid")" \
	"$F/small.bin"

# ---- slow trickle, four clients on one cold file ------------------------------------
relay_mode slow 1000000
b0=$(relay_bytes)
pids=""
for k in 1 2 3 4; do
	get "$C/acme/faults/resolve/main/slow.bin" "$T/slow.$k" --max-time 120 >"$T/slow.$k.st" &
	pids="$pids $!"
done
wait $pids
relay_mode pass
same=0
for k in 1 2 3 4; do
	[ "$(cat "$T/slow.$k.st")" = 200 ] && cmp -s "$T/slow.$k" "$F/slow.bin" && same=$((same + 1))
done
is "$same" 4 "slow upstream: 4 concurrent cold downloads all 200 and right"
diag "slow upstream: $(($(relay_bytes) - b0)) bytes relayed for a $(size "$F/slow.bin")-byte file"

# ---- metadata under faults ----------------------------------------------------------
# Upstream's header block, so that a drop can land in the headers or the body.
hlen=$(curl -s -D - -o /dev/null "$up_URL/api/models/acme/meta/revision/main" | wc -c)
for n in 0 100 $((hlen + 20)); do
	relay_mode drop $n
	st=$(get "$C/api/models/acme/meta/revision/main" "$T/m.$n")
	like "$st" '^50[24]$' "cold info, upstream drops after $n bytes: 502/504 ($st)"
	st=$(get "$C/api/models/acme/meta/tree/main?recursive=true" "$T/t.$n")
	like "$st" '^50[24]$' "cold tree, upstream drops after $n bytes: 502/504 ($st)"
done
relay_mode pass
until_200 "$C/api/models/acme/meta/revision/main" "$T/m1"
is "$st" 200 "info once upstream is back: 200"
is "$(get "$C/api/models/acme/meta/tree/main?recursive=true" "$T/t1")" 200 "tree once upstream is back: 200"
msha=$($PYTHON -c 'import json,sys; print(json.load(open(sys.argv[1]))["sha"])' "$T/m1")
is "$(get "$C/api/models/acme/meta/revision/$msha" "$T/m1s")" 200 "info by commit: 200"
relay_mode drop 100
is "$(get "$C/api/models/acme/meta/revision/main" "$T/m2")" 200 "warm info, upstream dropping: 200"
check "warm info, upstream dropping: the cached answer" cmp "$T/m2" "$T/m1"
is "$(get "$C/api/models/acme/meta/revision/$msha" "$T/m2s")" 200 "warm info by commit, upstream dropping: 200"
check "warm info by commit: the cached answer" cmp "$T/m2s" "$T/m1s"
is "$(get "$C/api/models/acme/meta/tree/main?recursive=true" "$T/t2")" 200 "warm tree, upstream dropping: 200"
check "warm tree, upstream dropping: the cached answer" cmp "$T/t2" "$T/t1"
relay_mode pass

# ---- the relay's gated/private emulation (what the gated-repo tests rely on) ---------
printf 'gated acme/tiny hf_good\nprivate datasets/acme/ds hf_ds\n' >"$T/relay/gated"
# rq ARGS...: "status:X-Error-Code" of a request to the relay
rq() {
	curl -s -D "$T/hg" -o "$T/bg" --max-time 60 "$@" >/dev/null
	echo "$(status "$T/hg"):$(hdr "$T/hg" X-Error-Code)"
}
a0=$(relay_authchecks)
is "$(rq "$R/api/models/acme/tiny/auth-check")" 401:GatedRepo "relay: gated auth-check, no token: 401"
is "$(rq -H 'Authorization: Bearer hf_bad' "$R/api/models/acme/tiny/auth-check")" 403:GatedRepo \
	"relay: gated auth-check, wrong token: 403"
is "$(rq -H 'Authorization: Bearer hf_good' "$R/api/models/acme/tiny/auth-check")" 200: \
	"relay: gated auth-check, right token: 200"
is "$(rq "$R/acme/tiny/resolve/main/config.json")" 401:GatedRepo "relay: gated file, no token: 401"
is "$(rq -H 'Authorization: Bearer hf_good' "$R/acme/tiny/resolve/main/config.json")" 200: \
	"relay: gated file, right token: 200"
rq "$R/api/models/acme/tiny" >/dev/null
is "$($PYTHON -c 'import json,sys; print(json.load(open(sys.argv[1]))["gated"])' "$T/bg")" manual \
	"relay: gated info says gated: manual"
is "$(rq -H 'Authorization: Bearer hf_bad' "$R/api/datasets/acme/ds/revision/main")" 404:RepoNotFound \
	"relay: private info, wrong token: 404"
is "$(rq "$R/api/datasets/acme/ds/tree/main")" 401:RepoNotFound "relay: private tree, no token: 401"
rq -H 'Authorization: Bearer hf_ds' "$R/api/datasets/acme/ds/revision/main" >/dev/null
is "$($PYTHON -c 'import json,sys; print(json.load(open(sys.argv[1]))["private"])' "$T/bg")" True \
	"relay: private info, right token: private: true"
is "$(($(relay_authchecks) - a0))" 3 "relay: auth-checks counted"
: >"$T/relay/gated"

done_testing
