#!/bin/sh
# test_scale_nodes.sh - three `hfmirror proxy` nodes on one store behind
# HAProxy (health checks on /readyz): a blob one node cached is served right
# by every node and through the balancer, many clients at once, with no
# more upstream bytes; a --read-only-store node serves the published blob
# and relays a miss without writing the store; SIGTERM drains a node: its
# /readyz turns 503 on a kept-alive connection, the balancer takes it out
# and sends every request elsewhere, its request in flight ends whole, then
# it exits.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fixtures.sh"
. "$(dirname "$0")/lib_scale.sh"

MIB=1048576
E=$T/root/acme/big
printf '*.bin filter=lfs diff=lfs merge=lfs -text\n' | mk "$E/.gitattributes"
det_bytes scale-big $((32 * MIB + 7)) | mk "$E/big.bin"
for k in 0 1 2; do
	det_bytes "scale-small-$k" $((2 * MIB + k)) | mk "$E/s$k.bin"
done
BIG=$(sha256 "$E/big.bin")
S0=$(sha256 "$E/s0.bin")
S1=$(sha256 "$E/s1.bin")

start_server up model-bin --path "$T/root" || exit 1
start_relay "${up_URL##*:}"
start_nodes 3 --repos-path "$T/store" --hf-scheme http --hf-netloc "$RELAY" \
	--wait-timeout 60 --drain-timeout 30 || exit 1

for n in $NODES; do
	u=$(node_url "$n")
	is "$(get "$u/healthz" /dev/null)" 200 "$n: /healthz 200"
	is "$(get "$u/readyz" "$T/ready.$n")" 200 "$n: /readyz 200 (store writable, upstream reachable)"
done
like "$(cat "$T/ready.n1")" '"status":"ready"' "/readyz says ready"
start_haproxy
check "HAProxy sees the three nodes up" haproxy_all_up

# ---- one node fills, every node and the balancer serve it ------------------------
b0=$(relay_bytes)
is "$(body_sha "$n1_URL/acme/big/resolve/main/big.bin")" "$BIG" "n1 fills big.bin: right bytes"
check "big.bin is published in the shared store" wait_for test -f "$(store_object "$T/store" "$BIG")"
b1=$(relay_bytes)
bad=$(crowd /acme/big/resolve/main/big.bin "$BIG" 24 4 warm)
is "$bad" 0 "36 warm clients (24 through HAProxy, 4 at each node): every body right"
b2=$(relay_bytes)
diag "upstream bytes: fill $((b1 - b0)), 36 warm clients $((b2 - b1)) (file $((32 * MIB + 7)))"
check "the warm clients cost the upstream no blob bytes ($((b2 - b1)))" test $((b2 - b1)) -lt $MIB

# ---- a read-only node ----------------------------------------------------------------
start_server ro proxy --read-only-store --repos-path "$T/store" --hf-scheme http \
	--hf-netloc "$RELAY" --wait-timeout 60 || exit 1
touch "$T/before-ro"
sleep 1                                   # mtimes of what follows are later
is "$(get "$ro_URL/readyz" /dev/null)" 200 "read-only node: /readyz 200"
is "$(body_sha "$ro_URL/acme/big/resolve/main/big.bin")" "$BIG" "read-only node: the published blob"
is "$(body_sha "$ro_URL/acme/big/resolve/main/s1.bin")" "$S1" "read-only node: a miss relayed, right bytes"
is "$(get "$ro_URL/api/models/acme/big/revision/main" /dev/null)" 200 "read-only node: the API"
is "$(find "$T/store" -newer "$T/before-ro" | wc -l)" 0 "read-only node: nothing in the store was written"
check "read-only node: s1 was not cached" test ! -e "$(store_object "$T/store" "$S1")"
like "$(cat "$T/ro.log")" "read-only store" "read-only node: says so at start"

# ---- SIGTERM drains n2 ---------------------------------------------------------------
# a kept-alive connection to n2 that asks /readyz before and after the
# signal (HAProxy's own checks open new connections: those are refused)
$PYTHON - "$n2_URL" "$T/termed" >"$T/keepalive.out" 2>&1 <<'EOF' &
import http.client, os, sys, time, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
c = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
c.request("GET", "/readyz")
r = c.getresponse()
r.read()
print(r.status, flush=True)
while not os.path.exists(sys.argv[2]):
    time.sleep(0.05)
c.request("GET", "/readyz")
r = c.getresponse()
body = r.read().decode()
print(r.status, r.getheader("Connection"), body, flush=True)
EOF
KA=$!
slow_read "$n2_URL/acme/big/resolve/main/big.bin" "$T/slow" "$T/go" >"$T/slow.st" &
SLOW=$!
check "a slow client has the start of big.bin from n2" wait_for test -s "$T/slow"
check "the kept-alive connection had /readyz 200" wait_for grep -q '^200' "$T/keepalive.out"
kill -TERM "$n2_PID"
check "n2 logs that it stops" wait_for grep -q "stopping" "$T/n2.log"
touch "$T/termed"
wait $KA
like "$(sed -n 2p "$T/keepalive.out")" '^503 close .*draining' \
	"draining n2: /readyz 503 with Connection: close"
check "HAProxy takes n2 out" wait_for haproxy_is n2 DOWN
check "n2 still runs while its request is in flight" kill -0 "$n2_PID"
bad=0
for i in $(seq 1 6); do
	[ "$(body_sha "http://$HAPROXY/acme/big/resolve/main/s0.bin")" = "$S0" ] || bad=$((bad + 1))
done
is "$bad" 0 "during the drain every request through HAProxy is answered right"
touch "$T/go"
wait $SLOW
is "$(cat "$T/slow.st")" 200 "the request in flight on n2: 200"
check "the request in flight on n2 got every byte" cmp "$T/slow" "$E/big.bin"
wait "$n2_PID"
is "$?" 0 "n2 exits 0 once drained"
n2_STOPPED=1
like "$(cat "$T/n2.log")" "drained" "n2 logs the drain"

done_testing
