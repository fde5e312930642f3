# lib_scale.sh - several hfmirror nodes on one store behind HAProxy (sourced
# after lib.sh and lib_fixtures.sh).
#
# start_nodes N ARGS...: nodes n1..nN, `hfmirror proxy ARGS...` each, all on
# $T/store; start_haproxy: HAProxy in front of them on a free loopback port
# (HAPROXY, host:port), health-checking /readyz every 200 ms, stopped with
# the servers.  The balancer is the Debian package (scripts/deps.sh test);
# without it, a test that sources this file is skipped whole.

if ! command -v haproxy >/dev/null 2>&1; then
	echo "1..0 # SKIP haproxy is not installed (scripts/deps.sh test)"
	exit 0
fi

# free_port: a port the kernel had free a moment ago (HAProxy cannot be told
# to pick its own and report it).
free_port() {
	$PYTHON -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start_nodes() {
	_n=$1
	shift
	NODES=""
	for _i in $(seq 1 "$_n"); do
		start_server "n$_i" proxy "$@" || return 1
		NODES="$NODES n$_i"
	done
}

# node_url NAME: the node's base URL
node_url() { eval "echo \${${1}_URL}"; }

# start_haproxy: round robin over $NODES; a node whose /readyz is not 200
# (or that refuses connections) is out after 2 checks, back after 1.  A
# connection refused by a node (stopped, draining) is redispatched.
start_haproxy() {
	HAPROXY_PORT=$(free_port)
	HAPROXY=127.0.0.1:$HAPROXY_PORT
	{
		cat <<EOF
global
	maxconn 1024
	stats socket $T/haproxy.sock mode 600 level admin
defaults
	mode http
	timeout connect 2s
	timeout client 120s
	timeout server 120s
	retries 3
	option redispatch
frontend mirror
	bind 127.0.0.1:$HAPROXY_PORT
	default_backend nodes
backend nodes
	balance roundrobin
	option httpchk GET /readyz
	http-check expect status 200
EOF
		for _n in $NODES; do
			_u=$(node_url "$_n")
			echo "	server $_n ${_u#http://} check inter 200ms fall 2 rise 1"
		done
	} >"$T/haproxy.cfg"
	: >"$T/haproxy.log"
	haproxy -db -f "$T/haproxy.cfg" >>"$T/haproxy.log" 2>&1 &
	HAPROXY_PID=$!
	SERVER_PIDS="$SERVER_PIDS $HAPROXY_PID"
	wait_for haproxy_all_up
}

# haproxy_state NODE: UP, DOWN, ... as HAProxy sees it (stats socket)
haproxy_state() {
	$PYTHON - "$T/haproxy.sock" "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect(sys.argv[1])
except OSError:
    sys.exit(0)
s.sendall(b"show stat\n")
data = b""
while True:
    d = s.recv(65536)
    if not d:
        break
    data += d
for line in data.decode().splitlines():
    f = line.split(",")
    if len(f) > 17 and f[0] == "nodes" and f[1] == sys.argv[2]:
        print(f[17].split(" ")[0])
EOF
}

# haproxy_is NODE STATE: HAProxy has NODE in STATE (for wait_for)
haproxy_is() { [ "$(haproxy_state "$1")" = "$2" ]; }

haproxy_all_up() {
	for _n in $NODES; do
		[ "$(haproxy_state "$_n")" = UP ] || return 1
	done
}

# sha256 of what URL answers, or "STATUS" when it is not 200
body_sha() {
	_o=$T/body.$$.$(date +%s%N)
	_s=$(get "$1" "$_o" --max-time 120)
	if [ "$_s" = 200 ]; then sha256 "$_o"; else echo "status $_s"; fi
	rm -f "$_o"
}

# crowd PATH SHA LB EACH TAG: LB clients through HAProxy and EACH at every
# node, all at once, GET PATH; prints how many bodies were not SHA (each
# one's outcome is in $T/TAG.*, and named in the diagnostics).
crowd() {
	_pids=""
	for _i in $(seq 1 "$3"); do
		body_sha "http://$HAPROXY$1" >"$T/$5.lb.$_i" &
		_pids="$_pids $!"
	done
	for _n in $NODES; do
		for _i in $(seq 1 "$4"); do
			body_sha "$(node_url "$_n")$1" >"$T/$5.$_n.$_i" &
			_pids="$_pids $!"
		done
	done
	wait $_pids
	_bad=0
	for _f in "$T/$5".*; do
		[ "$(cat "$_f")" = "$2" ] || { _bad=$((_bad + 1)); diag "$(basename "$_f"): $(cat "$_f")" >&2; }
	done
	echo "$_bad"
}
