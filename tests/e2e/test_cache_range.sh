#!/bin/sh
# test_cache_range.sh - Range requests on blobs the cache has not verified
# yet (docs/proxy-cache.md, "Range requests"): bytes stored but unverified
# are never served from the store to a later request, a Range on a cold
# blob fills the whole blob in the background (up to range-fill-max-size),
# a blob that fails verification is discarded and filled again cleanly, and
# verify-ranges = "strict" answers only verified bytes.  The upstream is a
# second hfmirror behind faultrelay.py, whose flipmid mode inverts the
# middle byte of every response body over 1 MiB.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fixtures.sh"

MIB=1048576
G=$T/root/acme/ranges
printf '*.safetensors filter=lfs diff=lfs merge=lfs -text\n' | mk "$G/.gitattributes"
# the issue's file: 40 MiB, read at 25165000-25166000
det_bytes range-big $((40 * MIB)) | mk "$G/big.safetensors"
det_bytes range-fill $((20 * MIB + 3)) | mk "$G/fill.safetensors"
det_bytes range-bound $((20 * MIB + 5)) | mk "$G/bound.safetensors"
det_bytes range-strict $((20 * MIB + 7)) | mk "$G/strict.safetensors"

start_server up model-bin --path "$T/root" || exit 1
start_relay "${up_URL##*:}"

# part FILE FIRST LAST: bytes FIRST..LAST (inclusive) of FILE
part() { tail -c +$(($2 + 1)) "$1" | head -c $(($3 - $2 + 1)); }
# range URL FIRST LAST OUT: a Range GET; prints "status:bytes received"
range() {
	_st=$(curl -s -o "$4" -w '%{http_code}' --max-time 120 -r "$2-$3" "$1")
	echo "$_st:$(stat -c %s "$4" 2>/dev/null || echo 0)"
}
object_is() { test -f "$(store_object "$1" "$2")"; }
logged() { grep -q "$2" "$T/$1.log"; }

# ---- the issue's reproduction: default configuration, empty store ----------------
start_server cache proxy --hf-scheme http --hf-netloc "$RELAY" \
	--repos-path "$T/store" --wait-timeout 60 || exit 1
C=$cache_URL
BIG=$G/big.safetensors
big_oid=$(sha256 "$BIG")
part "$BIG" 25165000 25166000 >"$T/want1"
is "$(curl -s -o /dev/null -w '%{http_code}' -I "$C/acme/ranges/resolve/main/big.safetensors")" 200 \
	"repro: metadata first (HEAD)"

relay_mode flipmid
is "$(range "$C/acme/ranges/resolve/main/big.safetensors" 25165000 25166000 "$T/r1")" 206:1001 \
	"repro: the first Range with the upstream flipping a byte: 206"
# Documented: the first answer is upstream's bytes as they arrive.
if cmp -s "$T/r1" "$T/want1"; then
	not_ok "repro: the first answer carries upstream's flipped byte (the relay works)"
else
	ok "repro: the first answer carries upstream's flipped byte (the relay works)"
fi
relay_mode pass
is "$(range "$C/acme/ranges/resolve/main/big.safetensors" 25165000 25166000 "$T/r2")" 206:1001 \
	"repro: the same Range, upstream healthy: 206"
check "repro: the same Range, upstream healthy: right bytes, not the stored wrong ones" \
	cmp "$T/r2" "$T/want1"
sleep 3
is "$(range "$C/acme/ranges/resolve/main/big.safetensors" 25165000 25166000 "$T/r3")" 206:1001 \
	"repro: 3 s later: 206"
check "repro: 3 s later: right bytes" cmp "$T/r3" "$T/want1"
# The Range started a fill of the whole blob; the block holding the flipped
# byte fails it, which discards the blob and is logged with its id.
wait_for logged cache "$big_oid discarded"
check "repro: the fill failed verification and was logged with the blob id" \
	logged cache "$big_oid discarded"
is "$(range "$C/acme/ranges/resolve/main/big.safetensors" 25165000 25166000 "$T/r4")" 206:1001 \
	"repro: after the discard: 206"
check "repro: after the discard: right bytes" cmp "$T/r4" "$T/want1"
# ... and the next request started a clean fill, which verifies.
wait_for object_is "$T/store" "$big_oid"
check "repro: a clean fill after the discard publishes the blob" \
	cmp "$(store_object "$T/store" "$big_oid")" "$BIG"
is "$(range "$C/acme/ranges/resolve/main/big.safetensors" 25165000 25166000 "$T/r5")" 206:1001 \
	"repro: from the verified blob: 206"
check "repro: from the verified blob: right bytes" cmp "$T/r5" "$T/want1"

# ---- a Range on a cold blob fills it in the background ------------------------------
FILL=$G/fill.safetensors
fill_oid=$(sha256 "$FILL")
b0=$(relay_bytes)
is "$(range "$C/acme/ranges/resolve/main/fill.safetensors" 1000 1999 "$T/f1")" 206:1000 \
	"fill: a 1000-byte Range on a cold blob: 206"
part "$FILL" 1000 1999 >"$T/f1.want"
check "fill: right bytes" cmp "$T/f1" "$T/f1.want"
wait_for object_is "$T/store" "$fill_oid"
check "fill: the whole blob is verified and published without a GET of all of it" \
	cmp "$(store_object "$T/store" "$fill_oid")" "$FILL"
used=$(($(relay_bytes) - b0))
size=$(stat -c %s "$FILL")
check "fill: upstream sent the blob about once ($used bytes for $size)" \
	test "$used" -ge "$size" -a "$used" -lt $((size + size / 20))
stop_server cache

# ---- range-fill-max-size: larger blobs are relayed, not stored ------------------------
cat >"$T/bound.toml" <<EOF
[hfmirror]
range-fill-max-size = "16M"
EOF
start_server bound proxy -c "$T/bound.toml" --hf-scheme http --hf-netloc "$RELAY" \
	--repos-path "$T/store2" --wait-timeout 60 || exit 1
BOUND=$G/bound.safetensors
bound_oid=$(sha256 "$BOUND")
is "$(range "$bound_URL/acme/ranges/resolve/main/bound.safetensors" 5000000 5999999 "$T/b1")" \
	206:1000000 "bound: a Range on a blob over range-fill-max-size: 206"
part "$BOUND" 5000000 5999999 >"$T/b1.want"
check "bound: right bytes" cmp "$T/b1" "$T/b1.want"
check "bound: nothing stored for it (no partial blob)" test ! -e "$T/store2/partial/$bound_oid"
check "bound: nothing stored for it (no object)" test ! -e "$(store_object "$T/store2" "$bound_oid")"
# A GET of the whole file is cached as always.
is "$(get "$bound_URL/acme/ranges/resolve/main/bound.safetensors" "$T/b2")" 200 \
	"bound: a whole GET of the same file: 200"
check "bound: a whole GET: right bytes" cmp "$T/b2" "$BOUND"
wait_for object_is "$T/store2" "$bound_oid"
check "bound: a whole GET is stored" object_is "$T/store2" "$bound_oid"
stop_server bound

# ---- verify-ranges = "strict": only verified bytes -----------------------------------
cat >"$T/strict.toml" <<EOF
[hfmirror]
verify-ranges = "strict"
EOF
start_server strict proxy -c "$T/strict.toml" --hf-scheme http --hf-netloc "$RELAY" \
	--repos-path "$T/store3" --wait-timeout 60 || exit 1
S=$G/strict.safetensors
strict_oid=$(sha256 "$S")
part "$S" 9000000 9000999 >"$T/s.want"
relay_mode flipmid
res=$(range "$strict_URL/acme/ranges/resolve/main/strict.safetensors" 9000000 9000999 "$T/s1")
diag "strict, upstream flipping: $res"
if [ "$res" = 206:1000 ] && ! cmp -s "$T/s1" "$T/s.want"; then
	not_ok "strict: a blob failing verification is never answered with its bytes"
else
	ok "strict: a blob failing verification is never answered with its bytes"
fi
check "strict: the discard is logged with the blob id" logged strict "$strict_oid discarded"
check "strict: nothing published" test ! -e "$(store_object "$T/store3" "$strict_oid")"
relay_mode pass
is "$(range "$strict_URL/acme/ranges/resolve/main/strict.safetensors" 9000000 9000999 "$T/s2")" \
	206:1000 "strict: upstream healthy again: 206"
check "strict: right bytes" cmp "$T/s2" "$T/s.want"
check "strict: the answer came from the verified blob (published before it)" \
	cmp "$(store_object "$T/store3" "$strict_oid")" "$S"

done_testing
