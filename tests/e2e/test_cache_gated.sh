#!/bin/sh
# test_cache_gated.sh - gated and private repos through the online cache.
# The relay (faultrelay.py, STATE/gated) plays the Hub's gating in front of
# an upstream hfmirror: acme/g is gated, acme/p private, both readable with
# "Bearer hf_good" only.  Cached content must reach only requests whose
# token the upstream accepted, and offline only if the operator allows it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fixtures.sh"

R=$T/root
printf '{"model_type": "gated"}\n' | mk "$R/acme/g/config.json"
det_bytes gw $((3 * 1024 * 1024 + 5)) | mk "$R/acme/g/w.bin"
printf '{"model_type": "private"}\n' | mk "$R/acme/p/config.json"
det_bytes pw $((2 * 1024 * 1024 + 1)) | mk "$R/acme/p/w.bin"
printf '{"model_type": "open"}\n' | mk "$R/acme/o/config.json"

start_server up model-bin --path "$R" || exit 1
start_relay "${up_URL##*:}"
printf 'gated acme/g hf_good\nprivate acme/p hf_good\n' >"$T/relay/gated"

cat >"$T/cache.toml" <<EOF
[basic]
cache-block-size = "1M"
[hfmirror]
access-check-ttl = 300
EOF
start_server cache proxy -c "$T/cache.toml" --hf-scheme http --hf-netloc "$RELAY" \
	--repos-path "$T/store" --wait-timeout 30 || exit 1
C=$cache_URL
GOOD="Authorization: Bearer hf_good"
BAD="Authorization: Bearer hf_bad"

# req URL [HEADER]: body to $T/body, headers to $T/h, prints the status
req() {
	if [ $# -gt 1 ]; then
		curl -s -D "$T/h" -o "$T/body" -w '%{http_code}' --max-time 60 -H "$2" "$1"
	else
		curl -s -D "$T/h" -o "$T/body" -w '%{http_code}' --max-time 60 "$1"
	fi
}
code() { hdr "$T/h" X-Error-Code; }

# ---- gated: metadata is public, files need the token ---------------------
is "$(req "$C/api/models/acme/g")" 200 "gated: info without a token is 200 (as on the Hub)"
like "$(cat "$T/body")" '"gated":"manual"' "gated: info says gated"
is "$(req "$C/acme/g/resolve/main/w.bin")" 401 "gated, cold, no token: 401"
is "$(code)" GatedRepo "gated, cold, no token: X-Error-Code GatedRepo"
is "$(req "$C/acme/g/resolve/main/w.bin" "$BAD")" 403 "gated, cold, wrong token: 403"
is "$(code)" GatedRepo "gated, cold, wrong token: GatedRepo"
is "$(req "$C/acme/g/resolve/main/w.bin" "$GOOD")" 200 "gated, cold, good token: 200"
check "gated, cold, good token: same bytes" cmp "$T/body" "$R/acme/g/w.bin"
check "gated: the blob is in the store" wait_for test -f "$(store_object "$T/store" "$(sha256 "$R/acme/g/w.bin")")"
check "gated: the repo is marked gated in the store" grep -qx gated "$T/store/meta/models/acme/g/access"

# now cached: the cache must still ask for every token it has not seen
b0=$(relay_bytes)
is "$(req "$C/acme/g/resolve/main/w.bin")" 401 "gated, cached, no token: still 401"
is "$(code)" GatedRepo "gated, cached, no token: GatedRepo"
is "$(req "$C/acme/g/resolve/main/w.bin" "$BAD")" 403 "gated, cached, wrong token: still 403"
is "$(curl -s -o /dev/null -w '%{http_code}' -I "$C/acme/g/resolve/main/w.bin")" 401 \
	"gated, cached, HEAD without a token: 401"
is "$(curl -s -o /dev/null -w '%{http_code}' -H 'Range: bytes=0-9' "$C/acme/g/resolve/main/w.bin")" \
	401 "gated, cached, Range without a token: 401"
is "$(curl -s -o /dev/null -w '%{http_code}' "$C/acme/g/raw/main/w.bin")" 401 \
	"gated, cached, raw pointer without a token: 401"
n0=$(relay_authchecks)
is "$(req "$C/acme/g/resolve/main/w.bin" "$GOOD")" 200 "gated, cached, good token: 200"
check "gated, cached, good token: same bytes" cmp "$T/body" "$R/acme/g/w.bin"
is "$(req "$C/acme/g/resolve/main/config.json" "$GOOD")" 200 "gated, good token, another file: 200"
is "$(relay_authchecks)" "$n0" "gated: an accepted token is not checked again within access-check-ttl"
is "$(req "$C/api/models/acme/g/auth-check" "$GOOD")" 200 "auth-check with the good token: 200"
is "$(req "$C/api/models/acme/g/auth-check")" 401 "auth-check without a token: 401"
is "$(code)" GatedRepo "auth-check without a token: GatedRepo"
is "$(req "$C/api/models/acme/o/auth-check")" 200 "auth-check of an open repo: 200"
b1=$(relay_bytes)
like "$((b1 - b0))" '^[0-9]{1,5}$' "gated, cached: no file bytes fetched again ($((b1 - b0)) bytes of checks)"

# ---- private: everything needs the token ------------------------------------
is "$(req "$C/api/models/acme/p")" 404 "private, cold, no token: info 404"
is "$(code)" RepoNotFound "private, cold, no token: RepoNotFound"
is "$(req "$C/api/models/acme/p" "$GOOD")" 200 "private, good token: info 200"
like "$(cat "$T/body")" '"private":true' "private: info says private"
is "$(req "$C/acme/p/resolve/main/w.bin" "$GOOD")" 200 "private, good token: file 200"
check "private, good token: same bytes" cmp "$T/body" "$R/acme/p/w.bin"
is "$(req "$C/api/models/acme/p/tree/main" "$GOOD")" 200 "private, good token: tree 200"
for what in "api/models/acme/p" "api/models/acme/p/revision/main" "api/models/acme/p/tree/main" \
	"api/models/acme/p/refs" "acme/p/resolve/main/w.bin" "acme/p/resolve/main/config.json"; do
	is "$(req "$C/$what")" 404 "private, cached, no token: /$what 404"
	is "$(code)" RepoNotFound "private, cached, no token: /$what RepoNotFound"
	is "$(req "$C/$what" "$BAD")" 404 "private, cached, wrong token: /$what 404"
done
is "$(curl -s -o /dev/null -w '%{http_code}' -X POST -d 'paths=config.json' \
	"$C/api/models/acme/p/paths-info/main")" 404 "private, cached, no token: paths-info 404"
is "$(req "$C/acme/p/resolve/main/config.json" "$GOOD")" 200 "private, cached, good token: 200"

# ---- the upstream gone: no new token gets in ------------------------------------
relay_mode err500
is "$(req "$C/acme/g/resolve/main/w.bin" "$GOOD")" 200 \
	"upstream failing: a token accepted recently still reads the cache"
st=$(req "$C/acme/g/resolve/main/w.bin" "Authorization: Bearer hf_other")
like "$st" '^50[234]$' "upstream failing: an unchecked token gets 5xx ($st), not the file"
relay_mode pass

# ---- offline -----------------------------------------------------------------------
stop_server cache
start_server off proxy --offline --hf-scheme http --hf-netloc "$RELAY" --repos-path "$T/store" ||
	exit 1
n0=$(relay_authchecks)
is "$(req "$off_URL/acme/g/resolve/main/w.bin" "$GOOD")" 403 \
	"offline, allow-gated-offline off: gated file refused even with a token"
is "$(code)" GatedRepo "offline: GatedRepo"
like "$(hdr "$T/h" X-Error-Message)" 'offline' "offline: the message says why"
is "$(req "$off_URL/api/models/acme/p" "$GOOD")" 404 "offline: private info refused"
is "$(req "$off_URL/acme/o/resolve/main/config.json")" 404 "offline: an uncached open file is a miss"
is "$(relay_authchecks)" "$n0" "offline: no token check reached the upstream"
stop_server off

printf '[hfmirror]\nallow-gated-offline = true\n' >"$T/allow.toml"
start_server offa proxy -c "$T/allow.toml" --offline --hf-scheme http --hf-netloc "$RELAY" \
	--repos-path "$T/store" || exit 1
is "$(req "$offa_URL/acme/g/resolve/main/w.bin")" 200 "offline, allow-gated-offline on: gated file served"
check "offline, allowed: same bytes" cmp "$T/body" "$R/acme/g/w.bin"
is "$(req "$offa_URL/api/models/acme/p")" 200 "offline, allowed: private info served"

# tokens are forwarded, never written down
for f in "$T"/cache.out "$T"/cache.log "$T"/off.out "$T"/off.log "$T"/offa.out "$T"/offa.log; do
	[ -f "$f" ] || continue
	check "no token in $(basename "$f")" sh -c "! grep -q hf_good '$f'"
done
check "no token in the store" sh -c "! grep -rq hf_good '$T/store'"

check_servers
done_testing
