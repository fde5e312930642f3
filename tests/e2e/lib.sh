# lib.sh - TAP helpers for end-to-end tests (sourced by tests/e2e/test_*.sh).
#
# Environment (set by meson, or by hand):
#   HFMIRROR         path to the hfmirror binary
#   HFMIRROR_IMPORT  path to hfmirror-import
#   SRCDIR           the source tree
# Every test gets a private $T (temp dir) that is removed on exit, and every
# server it starts listens on 127.0.0.1 with a kernel-chosen port and is
# stopped on exit.

set -u
: "${SRCDIR:=$(cd "$(dirname "$0")/../.." && pwd)}"
: "${HFMIRROR:=$SRCDIR/build/server/hfmirror}"
: "${HFMIRROR_IMPORT:=$SRCDIR/build/importer/hfmirror-import}"

# A version manager's python3 shim costs most of a second per call, and
# tests parse JSON with Python a few hundred times: prefer the system one
# (scripts/deps.sh installs it).
if [ -x /usr/bin/python3 ]; then PYTHON=/usr/bin/python3; else PYTHON=python3; fi

# flip_byte FILE OFFSET: inverts the byte at OFFSET, so it changes whatever it was
# (writing a fixed byte leaves random data as it was once in 256 runs).
flip_byte() {
	$PYTHON - "$1" "$2" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(int(sys.argv[2]))
    b = f.read(1)
    f.seek(int(sys.argv[2]))
    f.write(bytes([b[0] ^ 0xFF]))
PY
}

TAP_N=0
TAP_FAILED=0
T=$(mktemp -d "${TMPDIR:-/tmp}/hfm-e2e.XXXXXX")
SERVER_PIDS=""
SERVER_NAMES=""

cleanup() {
	for p in $SERVER_PIDS; do
		kill "$p" 2>/dev/null
	done
	for p in $SERVER_PIDS; do
		wait "$p" 2>/dev/null
	done
	[ -n "${KEEP_TMP:-}" ] || rm -rf "$T"
}
trap cleanup EXIT

ok() {
	TAP_N=$((TAP_N + 1))
	echo "ok $TAP_N - $*"
}

not_ok() {
	TAP_N=$((TAP_N + 1))
	TAP_FAILED=$((TAP_FAILED + 1))
	echo "not ok $TAP_N - $*"
}

diag() {
	echo "$*" | sed 's/^/#   /'
}

# check "description" command args...  (passes when the command succeeds)
check() {
	desc=$1
	shift
	if "$@" >"$T/.check.out" 2>&1; then
		ok "$desc"
	else
		not_ok "$desc"
		diag "command: $*"
		diag "$(tail -n 20 "$T/.check.out")"
	fi
}

# is "got" "want" "description"
is() {
	if [ "$1" = "$2" ]; then
		ok "$3"
	else
		not_ok "$3"
		diag "got:  '$1'"
		diag "want: '$2'"
	fi
}

# like "got" "extended-regex" "description"
like() {
	if printf '%s' "$1" | grep -Eq -- "$2"; then
		ok "$3"
	else
		not_ok "$3"
		diag "got:  '$1'"
		diag "want: /$2/"
	fi
}

# Sanitizer builds report memory errors on the server's stderr, which is only
# a file in $T: scan it, or a crash would show up as confusing client errors
# and its stack trace would be deleted with $T.
SAN_PATTERN='ERROR: (Address|Leak|Thread|Memory)Sanitizer|runtime error:'

# check_servers: every server started is still alive (unless the test
# stopped it), then stopped, and its log holds no sanitizer report.
check_servers() {
	for name in $SERVER_NAMES; do
		eval "pid=\${${name}_PID:-} stopped=\${${name}_STOPPED:-}"
		if [ -z "$stopped" ]; then
			if kill -0 "$pid" 2>/dev/null; then
				ok "server $name ran until the end"
			else
				not_ok "server $name ran until the end"
				diag "$(tail -n 40 "$T/$name.log")"
			fi
			stop_server "$name"
		fi
		if grep -qE "$SAN_PATTERN" "$T/$name.log"; then
			not_ok "server $name: no sanitizer report"
			diag "$(grep -E -A 40 "$SAN_PATTERN" "$T/$name.log" | head -n 80)"
		else
			ok "server $name: no sanitizer report"
		fi
	done
}

done_testing() {
	check_servers
	echo "1..$TAP_N"
	[ "$TAP_FAILED" -eq 0 ]
}

# start_relay UPSTREAM_PORT: the fault-injecting relay (faultrelay.py) in
# front of 127.0.0.1:UPSTREAM_PORT, state in $T/relay (mode, gated, bytes,
# conns, authchecks, cdn_log).  Sets RELAY (host:port), RELAY_CDN (its
# 127.0.0.2 side, the "CDN" of redirect mode) and RELAY_PID; stopped with
# the servers.
start_relay() {
	mkdir -p "$T/relay"
	echo pass >"$T/relay/mode"
	rm -f "$T/relay/port" "$T/relay/port.cdn"
	$PYTHON "$SRCDIR/tests/e2e/faultrelay.py" "$T/relay/port" "$1" "$T/relay" &
	RELAY_PID=$!
	SERVER_PIDS="$SERVER_PIDS $RELAY_PID"
	local i=0
	while [ ! -s "$T/relay/port" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
	RELAY=127.0.0.1:$(cat "$T/relay/port")
	RELAY_CDN=127.0.0.2:$(cat "$T/relay/port.cdn")
}
relay_mode() { echo "$*" >"$T/relay/mode"; }
relay_bytes() { cat "$T/relay/bytes" 2>/dev/null || echo 0; }
relay_conns() { cat "$T/relay/conns" 2>/dev/null || echo 0; }
relay_authchecks() { cat "$T/relay/authchecks" 2>/dev/null || echo 0; }

# start_server NAME args...: runs "$HFMIRROR args... --host 127.0.0.1 --port 0",
# waits until it listens, and sets ${NAME}_URL and ${NAME}_PID.  The server's
# stderr goes to $T/NAME.log, stdout (the access log by default) to
# $T/NAME.out: a test's own stdout is its TAP stream.
start_server() {
	name=$1
	shift
	log="$T/$name.log"
	: >"$log"
	"$HFMIRROR" "$@" --host 127.0.0.1 --port 0 >"$T/$name.out" 2>"$log" &
	pid=$!
	SERVER_PIDS="$SERVER_PIDS $pid"
	SERVER_NAMES="$SERVER_NAMES $name"
	eval "${name}_PID=\$pid ${name}_STOPPED="
	i=0
	while [ $i -lt 200 ]; do
		url=$(sed -n 's/.*listening on \(http[s]*:\/\/[0-9.:]*\).*/\1/p' "$log" | head -n 1)
		if [ -n "$url" ]; then
			eval "${name}_URL=\$url"
			eval "${name}_PID=\$pid"
			return 0
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			diag "server $name exited:"
			diag "$(cat "$log")"
			return 1
		fi
		sleep 0.05
		i=$((i + 1))
	done
	diag "server $name did not start:"
	diag "$(cat "$log")"
	return 1
}

stop_server() {
	eval "pid=\${${1}_PID:-}"
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null
	wait "$pid" 2>/dev/null
	eval "${1}_STOPPED=1"
	return 0
}

# get URL OUT [curl args...]: download URL to OUT and print the status (000
# on a transport error).  curl gives up after 60 s unless the args say more.
get() {
	_get_url=$1 _get_out=$2
	shift 2
	curl -s -o "$_get_out" -w '%{http_code}' --max-time 60 "$@" "$_get_url"
}

# sha256 FILE: the file's sha256 (hex), the name of an LFS object.
sha256() { sha256sum <"$1" | cut -c1-64; }

# store_object STORE OID: where the store keeps object OID.
store_object() { echo "$1/objects/$(echo "$2" | cut -c1-2)/$2"; }

# map_blocks MAP: how many blocks a partial blob's map (partial/OID.map)
# marks durable (0 if there is no map)
map_blocks() {
	$PYTHON - "$1" <<'EOP'
import sys
try:
    bits = open(sys.argv[1], "rb").read()[128:]
except OSError:
    bits = b""
print(sum(bin(b).count("1") for b in bits))
EOP
}

# slow_read URL OUT GO: GET URL with a small receive buffer, keep its first
# MiB in OUT, then stop reading until the file GO exists, and read the rest;
# prints the status.  curl --limit-rate is no good here: against a server
# that writes a whole file at once it let 8 MiB through at "1M" in 20 ms.
slow_read() {
	$PYTHON - "$@" <<'EOF'
import http.client, os, socket, sys, time, urllib.parse
url, out, go = sys.argv[1:4]
u = urllib.parse.urlsplit(url)
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.connect((u.hostname, u.port))
s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
           % (u.path, u.netloc)).encode())
r = http.client.HTTPResponse(s)
r.begin()
with open(out, "wb") as f:
    f.write(r.read(1 << 20))
    f.flush()
    for _ in range(1200):
        if os.path.exists(go):
            break
        time.sleep(0.05)
    while True:
        d = r.read(65536)
        if not d:
            break
        f.write(d)
print(r.status)
EOF
}
# wait_for CMD...: run CMD until it succeeds, for about 60 s at most, and
# return its last status.  The bound only keeps a broken server from
# hanging the suite: what a test checks is the outcome, not the time.
wait_for() {
	_wait_n=0
	while ! "$@" && [ $_wait_n -lt 600 ]; do sleep 0.1; _wait_n=$((_wait_n + 1)); done
	"$@"
}

# metric_in FILE NAME [LABEL...]: the sum of the series of metric NAME in a
# /metrics scrape saved in FILE whose labels include every LABEL (written as
# exposed: route="file"); 0 when there is none.
metric_in() {
	_m_file=$1 _m_name=$2
	shift 2
	awk -v n="$_m_name" -v want="$*" '
		{ k = $1; l = "" }
		k ~ /\{/ { l = substr(k, index(k, "{") + 1); k = substr(k, 1, index(k, "{") - 1) }
		k != n { next }
		{ c = split(want, w, " "); for (i = 1; i <= c; i++) if (index(l, w[i]) == 0) next; s += $NF }
		END { printf "%.0f\n", s }' "$_m_file"
}

# metric URL NAME [LABEL...]: the same, scraped from URL/metrics now.
metric() {
	_m_url=$1
	shift
	curl -s --max-time 30 "$_m_url/metrics" >"$T/.metrics"
	metric_in "$T/.metrics" "$@"
}

# hdr FILE NAME: the value of response header NAME in a curl -D dump.
hdr() {
	tr -d '\r' <"$1" | awk -v n="$(echo "$2" | tr 'A-Z' 'a-z')" -F': ' \
		'{ k = tolower($1) } k == n { sub(/^[^:]*: /, ""); v = $0 } END { print v }'
}

# status FILE: the status code of the last response in a curl -D dump.
status() {
	tr -d '\r' <"$1" | awk '/^HTTP\// { s = $2 } END { print s }'
}

# hfjs_ready: the npm client's node_modules in $HFJS (tests/hfjs), as its
# package-lock.json pins them (scripts/test runs npm ci; a test run alone
# gets it done here once).  If they cannot be had: a failing check, and the
# test ends there.
HFJS="$SRCDIR/tests/hfjs"
hfjs_ready() {
	# installed, and from the lock as it is now (npm ci writes node_modules/.package-lock.json)
	[ -d "$HFJS/node_modules/@huggingface/hub" ] &&
		[ ! "$HFJS/package-lock.json" -nt "$HFJS/node_modules/.package-lock.json" ] && return 0
	(cd "$HFJS" && npm ci --no-audit --no-fund) >"$T/npm.log" 2>&1 && return 0
	not_ok "npm dependencies of tests/hfjs are installed"
	diag "$(tail -n 20 "$T/npm.log")"
	done_testing
	exit 1
}

# node_tap LABEL RC OUT ERR: what a node script of tests/hfjs printed to OUT
# ("ok - ", "not ok - ", "# " lines) becomes our TAP, each test named
# "LABEL: ..."; a script that exited RC != 0 without a failing line fails
# with the tail of its stderr (ERR).
node_tap() {
	while IFS= read -r _nt_line; do
		case $_nt_line in
		"ok - "*) ok "$1: ${_nt_line#ok - }" ;;
		"not ok - "*) not_ok "$1: ${_nt_line#not ok - }" ;;
		"# "*) diag "$_nt_line" ;;
		esac
	done <"$3"
	if [ "$2" -ne 0 ] && ! grep -q "^not ok" "$3"; then
		not_ok "$1: node exited $2"
		diag "$(tail -n 20 "$4")"
	fi
}

# git_identity [HOME_DIR]: commits the test makes need no one's git config: a
# fixed author and committer, no system config; with HOME_DIR, HOME as well
# (made here), so that no ~/.gitconfig leaks in.
git_identity() {
	export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@example.com
	export GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@example.com
	export GIT_CONFIG_NOSYSTEM=1
	if [ $# -gt 0 ]; then
		export HOME="$1"
		mkdir -p "$HOME"
	fi
}

# proxy_rules RULE...: (stdout) [[accessibility.proxy]] tables in this order,
# +PATTERN allowing what it matches and -PATTERN denying it (the last match wins).
proxy_rules() {
	for _pr_rule in "$@"; do
		case $_pr_rule in
		+*) _pr_allow=true ;;
		-*) _pr_allow=false ;;
		*) echo "proxy_rules: '$_pr_rule' is not +PATTERN or -PATTERN" >&2; return 1 ;;
		esac
		printf '\n[[accessibility.proxy]]\nrepo = "%s"\nallow = %s\n' "${_pr_rule#?}" "$_pr_allow"
	done
}

# serve_toml STORE MIRRORS UPSTREAM MODELBIN RULE...: (stdout) an `hfmirror
# serve` config over every kind of source: the store, a folder of git mirrors,
# the upstream hub at UPSTREAM (host:port, over http), a model-bin tree; and
# proxy_rules' RULEs.
serve_toml() {
	printf '[basic]\nrepos-path = "%s"\nmirrors-path = ["%s"]\nhf-scheme = "http"\nhf-netloc = "%s"\n' \
		"$1" "$2" "$3"
	printf '\n[model-bin]\nenable = true\npath = "%s"\n' "$4"
	shift 4
	proxy_rules "$@"
}
