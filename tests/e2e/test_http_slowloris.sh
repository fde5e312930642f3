#!/bin/bash
# test_http_slowloris.sh - 5,000 connections that send their request heads a
# byte at a time must not keep a normal client from being served (issue 19:
# 4,200 of them stopped all service).  The server runs with its defaults
# (connection cap, head deadline); tests/e2e/slowloris.py keeps 5,000 slow
# connections open on loopback for a bounded time while a normal client
# makes its requests.  Every request must succeed; the p99 is printed and
# bounded only loosely (1 s: shared CI machines are noisy) -- the precise
# measurement is bench/slowloris.
. "$(dirname "$0")/lib.sh"

CONNS=${SLOWLORIS_CONNS:-5000}
SLOW="$SRCDIR/tests/e2e/slowloris.py"
ROOT="$T/root"
mkdir -p "$ROOT/acme/tiny"
printf '{"model_type": "tiny"}\n' >"$ROOT/acme/tiny/config.json"

hard=$(ulimit -Hn)
if [ "$hard" != unlimited ] && [ "$hard" -lt $((CONNS + 1200)) ]; then
	echo "ok 1 # SKIP the open-file hard limit ($hard) is below $((CONNS + 1200))"
	echo "1..1"
	exit 0
fi

start_server S model-bin --path "$ROOT" --index "$T/idx.bin" --no-prefetch || {
	not_ok "server starts"
	done_testing
	exit 1
}
HP=${S_URL#http://}
wait_for curl -sf -o /dev/null "$S_URL/healthz"

"$PYTHON" "$SLOW" attack "${HP%:*}" "${HP##*:}" --conns "$CONNS" --seconds 40 --interval 1 \
	--state "$T/attack.state" >"$T/attack.out" 2>"$T/attack.err" &
ATTACK=$!
SERVER_PIDS="$SERVER_PIDS $ATTACK"
open_now() { "$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["open"])' "$T/attack.state" 2>/dev/null || echo 0; }
all_open() { [ "$(open_now)" -ge "$CONNS" ]; }
wait_for all_open
is "$(open_now)" "$CONNS" "$CONNS slow connections are open"

# client NAME WHAT: 400 normal requests; all must succeed, p99 under 1 s
client() {
	"$PYTHON" "$SLOW" client "${HP%:*}" "${HP##*:}" /acme/tiny/resolve/main/config.json --requests 400 \
		--timeout 5 >"$T/$1.json"
	diag "normal client $2: $(cat "$T/$1.json") with $(open_now) slow connections open"
	is "$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["ok"])' "$T/$1.json")" 400 \
		"$2: all 400 normal requests succeed (half on new connections)"
	p99=$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["p99_ms"])' "$T/$1.json")
	if "$PYTHON" -c "import sys; sys.exit(0 if $p99 < 1000 else 1)"; then
		ok "$2: p99 ${p99} ms is under the 1 s ceiling"
	else
		not_ok "$2: p99 ${p99} ms is under the 1 s ceiling"
	fi
}
client c1 "while $CONNS slow connections are open"

# The head deadline (10 s) closes them; the attacker opens them again.
closed() { "$PYTHON" -c 'import json,sys; sys.exit(0 if json.load(open(sys.argv[1]))["closed_by_server"] >= int(sys.argv[2]) else 1)' "$T/attack.state" "$CONNS" 2>/dev/null; }
wait_for closed
wait_for all_open
client c2 "after the deadline closed them and they came back"
like "$(curl -s "$S_URL/metrics")" 'hfmirror_connections_closed_total\{reason="head_timeout"\} [1-9]' \
	"the head deadline closed slow connections"

kill "$ATTACK" 2>/dev/null
wait "$ATTACK" 2>/dev/null
n=$(grep -vc -e 'listening on' -e 'serving ' -e 'connections so far' -e 'connections in the last' "$T/S.log")
is "$n" 0 "stderr: no line per slow connection"

done_testing
