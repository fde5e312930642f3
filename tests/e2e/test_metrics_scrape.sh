#!/bin/sh
# test_metrics_scrape.sh - /metrics of the real server: requests of several
# kinds (a model-bin hit, a cache miss and then a hit through a local
# upstream, 404s, an upstream that fails, a bad head and a head deadline at
# the edge), a scrape with curl before and after, and the series that must
# have moved, checked by value; every scrape passes `promtool check
# metrics` (Debian's prometheus package), skipped only when promtool is
# missing.  The dashboard in examples/ parses as JSON and asks for series
# the server exposes.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fixtures.sh"

RAW="$SRCDIR/tests/e2e/rawhttp.py"
DASH="$SRCDIR/examples/grafana-dashboard.json"

make_fixture_tree "$T/root" "$T/outside"
TINY=$T/root/acme/tiny
WSIZE=$(stat -c %s "$TINY/weights.bin")

# The upstream is also the model-bin server whose hits are counted.
start_server up model-bin --path "$T/root" --index "$T/idx.bin" --head-timeout 1 || exit 1
start_relay "${up_URL##*:}"
cat >"$T/cache.toml" <<EOF
[basic]
cache-block-size = "1M"
[hfmirror]
evict-interval = 1
[[accessibility.cache]]
repo = "*"
allow = true
[[accessibility.cache]]
repo = "acme/many"
allow = false
EOF
start_server cache proxy -c "$T/cache.toml" --hf-scheme http --hf-netloc "$RELAY" \
	--repos-path "$T/store" --wait-timeout 30 || exit 1
C=$cache_URL

# promcheck FILE WHAT: promtool's lint of a scrape
promcheck() {
	if ! command -v promtool >/dev/null 2>&1; then
		echo "ok $((TAP_N = TAP_N + 1)) - # SKIP promtool check metrics ($2): no promtool" \
			"(apt-get install prometheus; scripts/deps.sh test)"
		return
	fi
	if out=$(promtool check metrics <"$1" 2>&1); then ok "promtool check metrics: $2"
	else not_ok "promtool check metrics: $2"; diag "$out"; fi
}
# moved FILE0 FILE1 NAME [LABEL...]: how much a sum of series grew between two scrapes
moved() {
	_a=$(metric_in "$1" "$3" "${4:-}" "${5:-}")
	_b=$(metric_in "$2" "$3" "${4:-}" "${5:-}")
	echo $((_b - _a))
}
scrape() { curl -s --max-time 30 "$1/metrics" >"$2"; }

# ---- the exposition itself --------------------------------------------------
curl -s -D "$T/h" -o "$T/c0" "$C/metrics"
is "$(status "$T/h")" 200 "GET /metrics: 200"
like "$(hdr "$T/h" Content-Type)" '^text/plain; version=0\.0\.4' "Content-Type: the text format 0.0.4"
like "$(cat "$T/c0")" '# TYPE hfmirror_request_duration_seconds histogram' "a histogram family"
like "$(grep -c '^# HELP' "$T/c0")" '^[3-9][0-9]$' "a HELP line for every family"
promcheck "$T/c0" "a fresh proxy"

# ---- the cache: a miss, then a hit -----------------------------------------
scrape "$C" "$T/c0"
is "$(get "$C/acme/tiny/resolve/main/weights.bin" "$T/w1")" 200 "cold download through the cache"
sha=$(sha256 "$TINY/weights.bin")
check "the blob is published" wait_for test -f "$(store_object "$T/store" "$sha")"
is "$(get "$C/acme/tiny/resolve/main/weights.bin" "$T/w2")" 200 "warm download"
check "warm download: same bytes" cmp "$T/w2" "$TINY/weights.bin"
curl -s -I -o /dev/null "$C/acme/tiny/resolve/main/weights.bin"
is "$(get "$C/acme/tiny/resolve/main/no-such-file" /dev/null)" 404 "a missing file: 404"
is "$(get "$C/api/models/acme/tiny" /dev/null)" 200 "the API"
scrape "$C" "$T/c1"

is "$(moved "$T/c0" "$T/c1" hfmirror_cache_answers_total 'result="miss"')" 1 "cache: one miss"
is "$(moved "$T/c0" "$T/c1" hfmirror_cache_answers_total 'result="hit"')" 1 \
	"cache: one hit (the HEAD is not an answer with a body)"
is "$(moved "$T/c0" "$T/c1" hfmirror_cache_answers_total 'result="relay"')" 0 "cache: no relay"
is "$(moved "$T/c0" "$T/c1" hfmirror_requests_total 'route="file"' 'code="2xx"')" 3 \
	"requests: 3 file answers 2xx (GET, GET, HEAD)"
is "$(moved "$T/c0" "$T/c1" hfmirror_requests_total 'source="cache"' 'code="2xx"')" 4 \
	"requests: 4 answered by the cache source (the files and the API)"
is "$(moved "$T/c0" "$T/c1" hfmirror_requests_total 'route="file"' 'code="4xx"')" 1 \
	"requests: the 404 by route and status class"
is "$(moved "$T/c0" "$T/c1" hfmirror_requests_total 'route="api"')" 1 "requests: the API call"
is "$(moved "$T/c0" "$T/c1" hfmirror_requests_total 'route="metrics"')" 1 \
	"requests: the scrape between them"
is "$(moved "$T/c0" "$T/c1" hfmirror_request_duration_seconds_count 'route="file"')" 4 \
	"duration histogram: one observation per file request"
b=$(moved "$T/c0" "$T/c1" hfmirror_body_bytes_total 'source="cache"')
check "body bytes by source: both downloads ($b >= $((2 * WSIZE)))" test "$b" -ge $((2 * WSIZE))
ub=$(moved "$T/c0" "$T/c1" hfmirror_upstream_bytes_total 'kind="blob"')
check "upstream bytes of blobs: the file, once ($ub)" test "$ub" -ge "$WSIZE" -a "$ub" -lt $((2 * WSIZE))
check "upstream requests for blobs" test "$(moved "$T/c0" "$T/c1" hfmirror_upstream_requests_total 'kind="blob"')" -ge 1
check "upstream requests for the API" test "$(moved "$T/c0" "$T/c1" hfmirror_upstream_requests_total 'kind="api"')" -ge 1
is "$(metric_in "$T/c1" hfmirror_cache_fills_in_flight)" 0 "no fill in flight once done"
is "$(metric_in "$T/c1" hfmirror_upstream_in_flight)" 0 "no upstream transfer in flight once done"
check "the blob counts as verified" test "$(metric_in "$T/c1" hfmirror_cache_verified_total)" -ge 1
is "$(metric_in "$T/c1" hfmirror_upstream_reachable)" 1 "the upstream is reachable"
is "$(metric_in "$T/c1" hfmirror_upstream_offline)" 0 "and not offline"
promcheck "$T/c1" "after a miss, a hit, a 404"

# A repo the cache rules keep out of the store: relayed.
is "$(get "$C/acme/many/resolve/main/f/0007.txt" "$T/rel")" 200 "a file of a repo not cached"
scrape "$C" "$T/c2"
is "$(moved "$T/c1" "$T/c2" hfmirror_cache_answers_total 'result="relay"')" 1 "cache: a relay"
check "upstream requests for relays" test "$(moved "$T/c1" "$T/c2" hfmirror_upstream_requests_total 'kind="relay"')" -ge 1

# The evictor's pass (every second here, no size limit) measures the store.
store_has() { scrape "$C" "$T/c2"; [ "$(metric_in "$T/c2" hfmirror_store_objects 'owner="cache"')" -ge 1 ]; }
check "store: the cache's object is counted by the evictor's pass" wait_for store_has
check "store: its bytes" test "$(metric_in "$T/c2" hfmirror_store_bytes 'owner="cache"')" -ge "$WSIZE"
is "$(metric_in "$T/c2" hfmirror_store_objects 'owner="imported"')" 0 "store: nothing imported"
check "store: when it was measured" test "$(metric_in "$T/c2" hfmirror_store_scan_timestamp_seconds)" -gt 1600000000

# ---- upstream failures ------------------------------------------------------
relay_mode err500
scrape "$C" "$T/c2"
st=$(get "$C/acme/tiny/resolve/main/digits.txt" /dev/null)
like "$st" '^5' "a cold file while upstream answers 500: a 5xx"
scrape "$C" "$T/c3"
relay_mode pass
check "upstream errors counted ($(moved "$T/c2" "$T/c3" hfmirror_upstream_errors_total 'reason="status"'))" \
	test "$(moved "$T/c2" "$T/c3" hfmirror_upstream_errors_total 'reason="status"')" -ge 1
check "upstream retries counted" test "$(moved "$T/c2" "$T/c3" hfmirror_upstream_retries_total)" -ge 1
is "$(moved "$T/c2" "$T/c3" hfmirror_requests_total 'route="file"' 'code="5xx"')" 1 \
	"requests: the 5xx answer"
promcheck "$T/c3" "after upstream failures"

# ---- model-bin, and the edge ------------------------------------------------
scrape "$up_URL" "$T/u0"
is "$(get "$up_URL/acme/tiny/resolve/main/config.json" "$T/cfg")" 200 "a model-bin hit"
is "$(get "$up_URL/acme/nothing/resolve/main/config.json" /dev/null)" 404 "a repo that is not there"
HP=${up_URL#http://}
$PYTHON "$RAW" "$HP" "b'GARBAGE\\r\\n\\r\\n'" --timeout 5 >"$T/bad.json"
like "$(cat "$T/bad.json")" '"status": 400' "a bad head is answered 400 at the edge"
# A head that never ends: closed at the head deadline (1 s).
$PYTHON "$RAW" "$HP" "b'GET / HTTP/1.1\\r\\nHost: x\\r\\n'" --timeout 20 >"$T/slow.json"
like "$(cat "$T/slow.json")" '"closed": true' "a head that never ends is closed"
scrape "$up_URL" "$T/u1"
is "$(moved "$T/u0" "$T/u1" hfmirror_requests_total 'route="file"' 'source="model-bin"')" 1 \
	"requests: the model-bin hit by source"
is "$(moved "$T/u0" "$T/u1" hfmirror_requests_total 'source="none"' 'code="4xx"')" 2 \
	"requests: the 404 and the bad head, with no source (a late head is closed, not answered)"
check "body bytes from model-bin" test "$(moved "$T/u0" "$T/u1" hfmirror_body_bytes_total 'source="model-bin"')" -ge \
	"$(stat -c %s "$TINY/config.json")"
is "$(moved "$T/u0" "$T/u1" hfmirror_requests_rejected_total)" 1 "edge: the bad head is rejected"
is "$(moved "$T/u0" "$T/u1" hfmirror_connections_closed_total 'reason="head_timeout"')" 1 \
	"edge: one connection closed at the head deadline"
# the server may see a client's close a moment after the client is gone
one_open() { scrape "$up_URL" "$T/u2"; [ "$(metric_in "$T/u2" hfmirror_connections_open)" = 1 ]; }
check "edge: one connection open (the scrape's)" wait_for one_open
check "the hash index has entries" test "$(metric_in "$T/u1" hfmirror_hashindex_entries)" -ge 1
check "model-bin serves no store: no store gauges" sh -c "! grep -q '^hfmirror_store_' '$T/u1'"
check "build info" grep -q '^hfmirror_build_info{version="[^"]*"} 1$' "$T/u1"
promcheck "$T/u1" "model-bin after edge refusals"

# ---- the dashboard ------------------------------------------------------------
check "examples/grafana-dashboard.json parses as JSON" $PYTHON -c 'import json,sys; json.load(open(sys.argv[1]))' "$DASH"
# Every hfmirror_ name a panel asks for is one the servers expose.
cat "$T/c3" "$T/u1" >"$T/all"
missing=$($PYTHON - "$DASH" "$T/all" <<'EOF'
import json, re, sys
dash = json.load(open(sys.argv[1]))
exposed = set()
for line in open(sys.argv[2]):
    m = re.match(r"# TYPE (\S+) (\S+)", line)
    if m:
        exposed.add(m.group(1))
        if m.group(2) == "histogram":
            exposed.update(m.group(1) + s for s in ("_bucket", "_sum", "_count"))
asked = set()
def walk(x):
    if isinstance(x, dict):
        for k, v in x.items():
            if k == "expr" and isinstance(v, str):
                asked.update(re.findall(r"hfmirror_[a-z_]+", v))
            walk(v)
    elif isinstance(x, list):
        for v in x:
            walk(v)
walk(dash)
if not asked:
    print("(no expressions)")
print(" ".join(sorted(asked - exposed)))
EOF
)
is "$missing" "" "every series the dashboard asks for exists"

check_servers
done_testing
