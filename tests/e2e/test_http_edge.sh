#!/bin/bash
# test_http_edge.sh - the HTTP edge on the wire (docs/operator-guide.md,
# "Limits and abuse"): request smuggling and malformed heads answered 400
# (411, 413, 414, 431, 505) with the connection closed and nothing after them
# run; heads of every size answered; absolute-form targets; If-Range; the
# head deadline (plain, kept-alive, HTTPS) but not for idle kept-alive
# connections; the connection cap (room made, else 503); the bytes of an
# answer that ends early; no stderr line per aborted connection; start-up
# messages.  Requests are raw bytes from tests/e2e/rawhttp.py.
. "$(dirname "$0")/lib.sh"

RAW="$SRCDIR/tests/e2e/rawhttp.py"
ROOT="$T/root"
mkdir -p "$ROOT/acme/tiny" "$ROOT/acme/list"
printf '{"model_type": "tiny"}\n' >"$ROOT/acme/tiny/config.json"
head -c 1000 /dev/zero | tr '\0' 7 >"$ROOT/acme/tiny/digits.txt"
# large enough that no socket buffer holds its answer: a reader must stall
head -c $((96 * 1024 * 1024)) /dev/zero >"$ROOT/acme/tiny/big.bin"
for i in 1 2 3; do echo "$i" >"$ROOT/acme/list/f$i.txt"; done
BIG=$((96 * 1024 * 1024))

# raw NAME HOST:PORT REQUEST [rawhttp args]: send; the answer's JSON in $T/NAME.json
raw() {
	n=$1
	shift
	"$PYTHON" "$RAW" "$@" >"$T/$n.json" 2>"$T/$n.err" || echo '{}' >"$T/$n.json"
}
# jf NAME EXPR: a Python expression over the answer (as d)
jf() {
	"$PYTHON" -c 'import json,sys; d=json.load(open(sys.argv[1])); r=eval(sys.argv[2]); print(r if isinstance(r,str) else json.dumps(r))' \
		"$T/$1.json" "$2" 2>/dev/null || echo ERROR
}
# log_count SERVER REGEX: access-log lines of SERVER that match
log_count() { grep -cE -- "$2" "$T/$1.out" || true; }

start_server E model-bin --path "$ROOT" --index "$T/idx.bin" --idle-timeout 60 --no-prefetch || {
	not_ok "server starts"
	done_testing
	exit 1
}
HP=${E_URL#http://}
wait_for curl -sf -o /dev/null "$E_URL/healthz"

# ---- smuggling and malformed heads ---------------------------------------
# Each case: the status, one answer (a second would be a hidden request run,
# or headers sent twice), the connection closed, an answer well before the
# idle timeout (60 s), and no access-log line for what follows the head.

PI='POST /api/models/acme/tiny/paths-info/main HTTP/1.1\r\nHost: x\r\n'
HIDDEN='GET /hidden-second-request HTTP/1.1\r\nHost: x\r\n\r\n'

# bad NAME STATUS REQUEST-LITERAL WHAT [--then ...]: a case as above
bad() {
	n=$1 want=$2 req=$3 what=$4
	shift 4
	before=$(log_count E 'hidden-second-request')
	raw "$n" "$HP" "$req" --timeout 20 "$@"
	if [ $# -gt 0 ]; then
		is "$(jf "$n" 'd["statuses"][-1]')" "$want" "$what: $want"
		is "$(jf "$n" 'len(d["statuses"])')" 2 "$what: one answer to each request"
	else
		is "$(jf "$n" 'd["status"]')" "$want" "$what: $want"
		is "$(jf "$n" 'len(d["statuses"])')" 1 "$what: one answer"
	fi
	is "$(jf "$n" 'd["heads"]')" "$(($# > 0 ? 2 : 1))" "$what: headers sent once"
	is "$(jf "$n" 'd["closed"]')" true "$what: connection closed"
	[ $# -gt 0 ] || is "$(jf "$n" 'd["headers"].get("connection","")')" close "$what: Connection: close"
	is "$(log_count E 'hidden-second-request')" "$before" "$what: the bytes after it were not run"
}

bad s1 400 "b'${PI}Content-Length: 5\r\nContent-Length: 60\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\npaths' + b'$HIDDEN'" \
	"two different Content-Length"
bad s2 400 "b'${PI}Content-Length: 5\r\nContent-Length: 5\r\n\r\npaths' + b'$HIDDEN'" \
	"two equal Content-Length"
bad s3 400 "b'${PI}Content-Length: 5, 5\r\n\r\npaths' + b'$HIDDEN'" "Content-Length as a list"
bad s4 400 "b'GET /healthz HTTP/1.1\r\n\r\n$HIDDEN'" "HTTP/1.1 without Host"
bad s5 400 "b'GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n$HIDDEN'" "two Host headers"
bad s6 400 "b'GET /healthz HTTP/1.1\r\nHost: a/b\r\n\r\n$HIDDEN'" "a Host with a slash"
bad s7 400 "b'GET /healthz HTTP/1.1\r\nHost : a\r\n\r\n$HIDDEN'" "whitespace before the colon"
bad s8 400 "b'GET /healthz HTTP/1.1\r\nHost: a\r\nX-A: a\x00b\r\n\r\n$HIDDEN'" "NUL in a header value"
bad s9 400 "b'GET /healthz HTTP/1.1\r\nHost: a\r\nX-A: a\rb\r\n\r\n$HIDDEN'" "bare CR in a header value"
bad s10 400 "b'GET /healthz HTTP/1.1\r\nHost: a\r\nX-A: a\r\n b\r\n\r\n$HIDDEN'" "obs-fold"
bad s11 400 "b'${PI}Transfer-Encoding: gzip, chunked\r\n\r\n5\r\npaths\r\n0\r\n\r\n$HIDDEN'" \
	"Transfer-Encoding: gzip, chunked"
bad s12 400 "b'${PI}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\npaths\r\n0\r\n\r\n$HIDDEN'" \
	"chunked with Content-Length"
bad s13 400 "b'${PI}Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n$HIDDEN'" \
	"two Transfer-Encoding headers"
bad s14 411 "b'${PI}Transfer-Encoding: chunked\r\n\r\n5\r\npaths\r\n0\r\n\r\n$HIDDEN'" "a chunked body"
bad s15 411 "b'${PI}Transfer-Encoding: chunked\r\n\r\n5;' + b'e' * 100000 + b'\r\npaths\r\n0\r\n\r\n'" \
	"a 100 KB chunk extension"
bad s16 411 "b'${PI}Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\npaths\r\n0\r\n\r\n'" \
	"chunk size ffffffffffffffff"
bad s17 400 "b'${PI}Content-Length: -1\r\n\r\n$HIDDEN'" "Content-Length: -1"
bad s18 413 "b'${PI}Content-Length: 18446744073709551616\r\n\r\n$HIDDEN'" "Content-Length: 2^64"
bad s19 413 "b'${PI}Content-Length: 1048577\r\n\r\n'" "Content-Length over 1 MiB"
bad s20 400 "b'${PI}Content-Length: 0x10\r\n\r\n$HIDDEN'" "Content-Length in hex"
bad s21 505 "b'GET /healthz HTTP/2.0\r\nHost: a\r\n\r\n'" "HTTP/2.0 on HTTP/1 framing"
bad s22 400 "b'GET /healthz HTTP/1.1 x\r\nHost: a\r\n\r\n'" "a request line with four parts"
bad s23 400 "b'GET healthz HTTP/1.1\r\nHost: a\r\n\r\n'" "a target that is no path"
bad s24 400 "b'GET /a\x01b HTTP/1.1\r\nHost: a\r\n\r\n'" "a control byte in the target"
bad s25 400 "b'GET /healthz HTTP/1.1\r\nHost: a\r\nno colon here\r\n\r\n'" "a header line without a colon"
like "$(jf s1 'd["headers"].get("x-error-message","")')" 'Content-Length' "the reason is in X-Error-Message"
is "$(jf s1 'd["body"][:9]')" '{"error":' "the body is the Hub's JSON error"

# The same on a kept-alive connection: libmicrohttpd reads the second
# request itself, and the transport checks what it parsed.
GET_OK="b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'"
bad k1 400 "$GET_OK" "kept-alive: two different Content-Length" \
	--then "b'${PI}Content-Length: 5\r\nContent-Length: 60\r\n\r\npaths' + b'$HIDDEN'"
bad k2 400 "$GET_OK" "kept-alive: no Host" --then "b'GET /healthz HTTP/1.1\r\n\r\n$HIDDEN'"
bad k3 400 "$GET_OK" "kept-alive: two Host headers" \
	--then "b'GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n$HIDDEN'"
bad k4 400 "$GET_OK" "kept-alive: whitespace before the colon" \
	--then "b'GET /healthz HTTP/1.1\r\nHost : a\r\n\r\n$HIDDEN'"
bad k5 400 "$GET_OK" "kept-alive: Transfer-Encoding: gzip, chunked" \
	--then "b'${PI}Transfer-Encoding: gzip, chunked\r\n\r\n5\r\npaths\r\n0\r\n\r\n$HIDDEN'"
bad k6 400 "$GET_OK" "kept-alive: chunked with Content-Length" \
	--then "b'${PI}Transfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n5\r\npaths\r\n0\r\n\r\n'"
bad k7 411 "$GET_OK" "kept-alive: a 100 KB chunk extension" \
	--then "b'${PI}Transfer-Encoding: chunked\r\n\r\n5;' + b'e' * 100000 + b'\r\npaths\r\n0\r\n\r\n'"
bad k8 411 "$GET_OK" "kept-alive: chunk size ffffffffffffffff" \
	--then "b'${PI}Transfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\npaths\r\n0\r\n\r\n'"
bad k9 413 "$GET_OK" "kept-alive: Content-Length over 1 MiB" \
	--then "b'${PI}Content-Length: 1048577\r\n\r\n'"

# A good body still works, and so does a POST on a kept-alive connection.
raw p1 "$HP" "b'${PI}Content-Length: 15\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\npaths=config.json'" --timeout 3
is "$(jf p1 'd["status"]')" 200 "paths-info with Content-Length: 200"
raw p2 "$HP" "$GET_OK" --then "b'${PI}Content-Length: 17\r\nContent-Type: application/x-www-form-urlencoded\r\n\r\npaths=config.json'" --timeout 3
is "$(jf p2 'd["statuses"]')" '[200, 200]' "paths-info on a kept-alive connection: 200"

# ---- heads of every size are answered ------------------------------------
# The 8 KiB connection pool holds the head and the answer's headers: heads
# that do not leave room for the answer are refused 431, never dropped.

sizes_answered() {
	"$PYTHON" - "$HP" "$1" <<'EOF'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
keep = sys.argv[2] == "keep"
missing = []
for total in range(4000, 9000, 61):
    s = socket.create_connection((host, int(port)), timeout=10)
    if keep:
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        d = b""
        while not d.endswith(b"}"):
            d += s.recv(65536)
    base = (b"GET /acme/tiny/resolve/main/config.json HTTP/1.1\r\nHost: x\r\n"
            b"X-Amzn-Trace-Id: " + b"t" * 190 + b"\r\nX-Pad: ")
    s.sendall(base + b"a" * (total - len(base) - 4) + b"\r\n\r\n")
    d = b""
    try:
        while b"\r\n\r\n" not in d:
            c = s.recv(65536)
            if not c:
                break
            d += c
    except OSError:
        pass
    st = d[9:12].decode() if d.startswith(b"HTTP/1.1 ") else None
    if st not in ("200", "431"):
        missing.append((total, st))
    s.close()
print(missing if missing else "all answered")
EOF
}
is "$(sizes_answered first)" "all answered" "heads of 4,000-9,000 bytes: each answered 200 or 431"
is "$(sizes_answered keep)" "all answered" "the same on a kept-alive connection"
raw big1 "$HP" "b'GET /' + b'a' * 7000 + b' HTTP/1.1\r\nHost: a\r\n\r\n'" --timeout 10
is "$(jf big1 'd["status"]')" 414 "a 7,000-byte request line: 414"
raw big2 "$HP" "b'GET /healthz HTTP/1.1\r\nHost: a\r\n' + b'X-A: b\r\n' * 200 + b'\r\n'" --timeout 10
is "$(jf big2 'd["status"]')" 431 "200 header fields: 431"
is "$(curl -s -o /dev/null -w '%{http_code}' "$E_URL/healthz")" 200 "the server still answers"

# ---- absolute-form targets (RFC 9112 §3.2.2) ------------------------------

raw a1 "$HP" "b'GET http://$HP/acme/tiny/resolve/main/config.json HTTP/1.1\r\nHost: $HP\r\n\r\n'" --timeout 3
is "$(jf a1 'd["status"]')" 200 "GET http://host/path: 200"
like "$(jf a1 'd["body"]')" tiny "GET http://host/path: the file"
raw a2 "$HP" "b'GET http://mirror.example:8443/api/models/acme/list/tree/main?limit=1 HTTP/1.1\r\nHost: $HP\r\n\r\n'" --timeout 3
is "$(jf a2 'd["status"]')" 200 "absolute form, tree page: 200"
like "$(jf a2 'd["headers"].get("link","")')" '^<http://mirror\.example:8443/api/models/acme/list/tree/main' \
	"absolute form: links use the target's authority, not Host"
raw a3 "$HP" "b'GET http://$HP HTTP/1.1\r\nHost: $HP\r\n\r\n'" --timeout 3
is "$(jf a3 'd["status"]')" 200 "GET http://host (no path): the web page"

# ---- If-Range: only a strong validator that matches keeps the Range -------

etag=$(curl -sI "$E_URL/acme/tiny/resolve/main/digits.txt" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
ir() { curl -s -o /dev/null -w '%{http_code}' -H 'Range: bytes=10-19' -H "If-Range: $1" \
	"$E_URL/acme/tiny/resolve/main/digits.txt"; }
is "$(ir "$etag")" 206 "If-Range with the quoted ETag: 206"
is "$(ir "W/$etag")" 200 "If-Range with the weak ETag: 200"
is "$(ir "$(echo "$etag" | tr -d '"')")" 200 "If-Range with the ETag unquoted: 200"
is "$(ir '*')" 200 "If-Range: *: 200"
is "$(ir "\"x\", $etag")" 200 "If-Range with a list: 200"
mdate=$(TZ=GMT LC_ALL=C date -r "$ROOT/acme/tiny/digits.txt" '+%a, %d %b %Y %H:%M:%S GMT')
is "$(ir "$mdate")" 206 "If-Range with the file's exact date: 206"
is "$(ir 'Thu, 01 Jan 1970 00:00:00 GMT')" 200 "If-Range with another date: 200"

# ---- bytes of an answer that ends early ----------------------------------

# cut PORT PATH: GET PATH, read 2 MiB, close.  Waits for the log line.
cut_download() {
	"$PYTHON" - "$1" "$2" <<'EOF'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
s = socket.create_connection((host, int(port)), timeout=10)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\n\r\n" % sys.argv[2].encode())
got = 0
while got < 2 * 1024 * 1024:
    c = s.recv(65536)
    if not c:
        break
    got += len(c)
s.close()
EOF
}
m0=$(metric "$E_URL" hfmirror_body_bytes_total)
cut_download "$HP" /acme/tiny/resolve/main/big.bin
wait_for grep -q '"url":"/acme/tiny/resolve/main/big.bin".*"complete":false' "$T/E.out"
line=$(grep '"url":"/acme/tiny/resolve/main/big.bin".*"complete":false' "$T/E.out" | tail -n 1)
b=$(echo "$line" | sed 's/.*"bytes":\([0-9]*\).*/\1/')
diag "cut download (pread): bytes=$b of $BIG"
if [ "$b" -gt 0 ] && [ "$b" -lt "$BIG" ]; then ok "cut download: access-log bytes is what was sent, not the size"
else not_ok "cut download: access-log bytes is what was sent, not the size"; diag "$line"; fi
m1=$(metric "$E_URL" hfmirror_body_bytes_total)
d=$((m1 - m0))
if [ "$d" -lt "$BIG" ]; then ok "cut download: hfmirror_body_bytes_total grew by what was sent ($d)"
else not_ok "cut download: hfmirror_body_bytes_total grew by what was sent"; diag "grew by $d"; fi

# A server that fails to start leaves its URL empty: its checks fail, the rest run.
NOWHERE=http://127.0.0.1:9
start_server SF model-bin --path "$ROOT" --index "$T/idx2.bin" --body-io sendfile --no-prefetch
SF_URL=${SF_URL:-$NOWHERE}
SFHP=${SF_URL#http://}
cut_download "$SFHP" /acme/tiny/resolve/main/big.bin
wait_for grep -q '"complete":false' "$T/SF.out"
line=$(grep '"complete":false' "$T/SF.out" | tail -n 1)
b=$(echo "$line" | sed 's/.*"bytes":\([0-9]*\).*/\1/')
diag "cut download (sendfile): bytes=$b of $BIG"
if [ "$b" -lt "$BIG" ]; then ok "cut download with sendfile: bytes is not the size"
else not_ok "cut download with sendfile: bytes is not the size"; diag "$line"; fi
stop_server SF

# ---- the head deadline -----------------------------------------------------

start_server D model-bin --path "$ROOT" --index "$T/idx3.bin" --no-prefetch --head-timeout 2 \
	--idle-timeout 60
D_URL=${D_URL:-$NOWHERE}
DHP=${D_URL#http://}

# trickle HOST:PORT MODE: send a head one byte every 0.3 s (after one
# request first with MODE=keep, over TLS with MODE=tls); print how many
# seconds until the server closed, or "open" after 20 s.
trickle() {
	"$PYTHON" - "$1" "$2" <<'EOF'
import socket, ssl, sys, time
host, port = sys.argv[1].rsplit(":", 1)
mode = sys.argv[2]
s = socket.create_connection((host, int(port)), timeout=10)
if mode == "tls":
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    s = ctx.wrap_socket(s)
if mode == "keep":
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    d = b""
    while not d.endswith(b"}"):
        d += s.recv(65536)
head = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
t0 = time.monotonic()
s.settimeout(0.3)
for i in range(len(head)):
    if time.monotonic() - t0 > 20:
        print("open")
        sys.exit(0)
    try:
        s.sendall(head[i:i + 1])
        c = s.recv(4096)
        if not c or c.startswith(b"HTTP/1.1 408"):
            break
    except socket.timeout:
        continue
    except (OSError, ssl.SSLError):
        break
print("%.1f" % (time.monotonic() - t0))
EOF
}
# closed_in WHAT RESULT: closed at the deadline (2 s), well before the idle timeout (60 s)
closed_in() {
	case $2 in
	open|"") not_ok "$1: closed at the head deadline"; diag "still open after 20 s" ;;
	*) ok "$1: closed at the head deadline (after $2 s)" ;;
	esac
}
closed_in "a head sent one byte at a time" "$(trickle "$DHP" first)"
closed_in "a second head on a kept-alive connection, one byte at a time" "$(trickle "$DHP" keep)"

# An idle kept-alive connection is not a late head: it may wait longer
# than the head deadline and then send a request.
raw idle "$DHP" "$GET_OK" --then "$GET_OK" --pause 4 --timeout 5
is "$(jf idle 'd["statuses"]')" '[200, 200]' "a kept-alive connection idle past the head deadline still works"

if openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
	-keyout "$T/key.pem" -out "$T/cert.pem" >/dev/null 2>&1; then
	start_server TLS model-bin --path "$ROOT" --index "$T/idx4.bin" --no-prefetch --head-timeout 2 \
		--idle-timeout 60 --ssl-key "$T/key.pem" --ssl-cert "$T/cert.pem"
	TLS_URL=${TLS_URL:-$NOWHERE}
	THP=${TLS_URL#https://}
	THP=${THP#http://}
	closed_in "HTTPS: a head sent one byte at a time" "$(trickle "$THP" tls)"
	raw t1 "$THP" "b'GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'" --tls --timeout 5
	is "$(jf t1 'd["status"]')" 400 "HTTPS: two Host headers: 400"
	raw t2 "$THP" "b'GET /acme/tiny/resolve/main/config.json HTTP/1.1\r\nHost: a\r\nX-Pad: ' + b'a' * 7900 + b'\r\n\r\n'" --tls --timeout 5
	is "$(jf t2 'd["status"]')" 431 "HTTPS: a 7.9 KiB head: 431, not a dropped connection"
	stop_server TLS
else
	not_ok "openssl makes a self-signed certificate"
fi

# ---- the connection cap ------------------------------------------------------

start_server C model-bin --path "$ROOT" --index "$T/idx5.bin" --no-prefetch --max-connections 4 \
	--idle-timeout 60
C_URL=${C_URL:-$NOWHERE}
CHP=${C_URL#http://}
"$PYTHON" "$SRCDIR/tests/e2e/slowloris.py" attack "${CHP%:*}" "${CHP##*:}" --conns 6 --seconds 8 \
	--state "$T/cap.state" >/dev/null 2>&1 &
ATTACK=$!
wait_for test -s "$T/cap.state"
sleep 1
c=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "$C_URL/healthz")
is "$c" 200 "4-connection cap, 6 slow connections: a normal request is served"
kill "$ATTACK" 2>/dev/null
wait "$ATTACK" 2>/dev/null

# busy CONNS: open CONNS downloads of big.bin that read nothing; keep them
# until the file $T/busy.stop appears
rm -f "$T/busy.stop" "$T/busy.ready"
"$PYTHON" - "$CHP" 4 "$T/busy.ready" "$T/busy.stop" <<'EOF' &
import os, socket, sys, time
host, port = sys.argv[1].rsplit(":", 1)
socks = []
for i in range(int(sys.argv[2])):
    s = socket.create_connection((host, int(port)), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /acme/tiny/resolve/main/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(1)
    socks.append(s)
open(sys.argv[3], "w").close()
t0 = time.monotonic()
while not os.path.exists(sys.argv[4]) and time.monotonic() - t0 < 30:
    time.sleep(0.1)
EOF
BUSY=$!
wait_for test -e "$T/busy.ready"
raw cap1 "$CHP" "b'GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n'" --timeout 10
is "$(jf cap1 'd["status"]')" 503 "4 connections all answering: a new one gets 503 at once"
is "$(jf cap1 'd["headers"].get("retry-after","")')" 5 "503 at the cap: Retry-After"
is "$(jf cap1 'd["closed"]')" true "503 at the cap: closed"
touch "$T/busy.stop"
wait "$BUSY" 2>/dev/null
wait_for sh -c "[ \"\$(curl -s -o /dev/null -w '%{http_code}' $C_URL/healthz)\" = 200 ]"
is "$(curl -s -o /dev/null -w '%{http_code}' "$C_URL/healthz")" 200 "after they are gone: served again"
m=$(curl -s "$C_URL/metrics")
like "$m" 'hfmirror_connections_closed_total\{reason="evicted"\} [1-9]' "metrics: connections closed to make room"
like "$m" 'hfmirror_connections_closed_total\{reason="refused"\} [1-9]' "metrics: connections refused at the cap"
like "$(curl -s "$E_URL/metrics")" 'hfmirror_requests_rejected_total [1-9]' "metrics: rejected requests"
like "$(curl -s "$D_URL/metrics")" 'hfmirror_connections_closed_total\{reason="head_timeout"\} [1-9]' \
	"metrics: connections closed at the head deadline"

# ---- no stderr line per aborted connection ---------------------------------

n0=$(wc -l <"$T/E.log")
"$PYTHON" - "$HP" <<'EOF'
import socket, sys
host, port = sys.argv[1].rsplit(":", 1)
for i in range(300):
    s = socket.create_connection((host, int(port)), timeout=10)
    s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Partial: ")
    s.close()
for i in range(100):
    s = socket.create_connection((host, int(port)), timeout=10)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.sendall(b"GET /acme/tiny/resolve/main/big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    s.recv(1)
    s.close()
EOF
sleep 1
n1=$(wc -l <"$T/E.log")
if [ $((n1 - n0)) -le 2 ]; then ok "400 aborted connections: at most a summary line on stderr ($((n1 - n0)))"
else not_ok "400 aborted connections: at most a summary line on stderr"; diag "$(tail -n 5 "$T/E.log")"; fi

# ---- start-up messages -------------------------------------------------------

"$PYTHON" -c 'import socket,time,sys; s=socket.socket(); s.bind(("127.0.0.1",0)); s.listen(); print(s.getsockname()[1], flush=True); time.sleep(30)' >"$T/busy.port" &
HOLD=$!
wait_for test -s "$T/busy.port"
PORT=$(cat "$T/busy.port")
"$HFMIRROR" model-bin --path "$ROOT" --index "$T/idx6.bin" --host 127.0.0.1 --port "$PORT" >/dev/null 2>"$T/inuse.err"
kill "$HOLD" 2>/dev/null
wait "$HOLD" 2>/dev/null
like "$(cat "$T/inuse.err")" "cannot listen on 127\.0\.0\.1:$PORT: Address already in use" \
	"port in use: the message names the port and the reason"
is "$(grep -c 'port 0' "$T/inuse.err")" 0 "port in use: no 'port 0'"

"$HFMIRROR" proxy --hf-scheme ftp >/dev/null 2>"$T/scheme.err"
like "$(head -n 1 "$T/scheme.err")" "^hfmirror: --hf-scheme 'ftp': " "--hf-scheme ftp: the message names the flag"
"$HFMIRROR" model-bin --path "$ROOT" --ssl-key "$T/key.pem" >/dev/null 2>"$T/sslkey.err"
is "$(grep -vc '^hfmirror: ' "$T/sslkey.err")" 0 "--ssl-key alone: every line starts with 'hfmirror: '"
like "$(cat "$T/sslkey.err")" 'ssl-cert' "--ssl-key alone: says ssl-cert is missing"

done_testing
