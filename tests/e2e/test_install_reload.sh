#!/bin/bash
# test_install_reload.sh - what a service manager sees of the daemon: the
# sd_notify(3) messages (READY=1 only once the port answers, RELOADING=1 and
# READY=1 around a SIGHUP, STOPPING=1), and what SIGHUP does: the proxy
# rules reread from -c FILE and swapped while requests are in flight, a
# broken file kept out with FILE:LINE: key: why, the access log reopened
# after a rotation, a long download carried across a reload, and clients
# under load during twenty reloads that never see a dropped connection or an
# answer from neither rule list.  notifylisten.py plays systemd's end.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fixtures.sh"

TREE="$T/tree"
det_text keep 2000 | mk "$TREE/acme/keep/a.txt"
det_text toggle 2000 | mk "$TREE/acme/toggle/a.txt"
det_bytes big $((48 << 20)) | mk "$TREE/acme/big/model.bin"
BIG_SHA=$(sha256 "$TREE/acme/big/model.bin")
CFG="$T/c.toml"

# write_config HIDDEN [EXTRA]: a model-bin config whose proxy rules allow
# every repo but HIDDEN, plus the TOML text EXTRA.  Written beside $CFG and
# renamed over it, so a reload never reads half a file.
write_config() {
	cat >"$CFG.new" <<EOF
[model-bin]
enable = true
path = "$TREE"

[hfmirror]
access-log = "$T/access.log"
hash-index = "$T/hashindex.bin"

[[accessibility.proxy]]
repo = "*/*"
allow = true

[[accessibility.proxy]]
repo = "$1"
allow = false
${2:-}
EOF
	mv "$CFG.new" "$CFG"
}

# hup N: send SIGHUP and wait until N reloads (or refusals) were reported.
hup() {
	kill -HUP "$srv_PID"
	wait_for sh -c "[ \$(grep -c 'SIGHUP: .*: \(reloaded\|not reloaded\)' '$T/srv.log') -ge $1 ]"
}
code() { curl -s -o /dev/null -w '%{http_code}' --max-time 60 "$srv_URL$1"; }
KEEP=/acme/keep/resolve/main/a.txt
TOGGLE=/acme/toggle/resolve/main/a.txt
BIG=/acme/big/resolve/main/model.bin

# --- start: READY=1 once the port answers ----------------------------------
write_config acme/toggle
$PYTHON "$SRCDIR/tests/e2e/notifylisten.py" "$T/notify.sock" "$T/notify.log" &
LISTENER_PID=$!
SERVER_PIDS="$SERVER_PIDS $LISTENER_PID"
wait_for grep -qs '^listening' "$T/notify.log"
export NOTIFY_SOCKET="$T/notify.sock"
start_server srv model-bin -c "$CFG" || { echo "Bail out! server did not start"; exit 1; }
unset NOTIFY_SOCKET
wait_for grep -q 'READY=1' "$T/notify.log"
like "$(grep 'READY=1' "$T/notify.log" | head -n 1)" \
	"^READY=1 \| STATUS=listening on $srv_URL \| healthz=200\$" \
	"READY=1 with the URL in STATUS, and the port answered /healthz when it arrived"
is "$(grep -vc '^listening' "$T/notify.log")" 1 "nothing else was said before the first request"
is "$(code $KEEP)" 200 "acme/keep is served"
is "$(code $TOGGLE)" 404 "acme/toggle is hidden by the rules read at start"

# --- a reload: the new rules decide, the notify messages frame it ----------
write_config acme/nothing-hidden
hup 1
is "$(code $TOGGLE)" 200 "after SIGHUP the reread rules decide: acme/toggle is served"
like "$(grep 'SIGHUP' "$T/srv.log" | tail -n 1)" "^hfmirror: SIGHUP: $CFG: reloaded 2 proxy and 2 cache rules\$" \
	"the reload is reported with the number of rules"
wait_for sh -c "[ \$(grep -c READY=1 '$T/notify.log') -ge 2 ]"
is "$(sed -n '3p;4p' "$T/notify.log" | sed 's/MONOTONIC_USEC=[0-9][0-9]*/MONOTONIC_USEC=N/')" \
	"RELOADING=1 | MONOTONIC_USEC=N
READY=1 | STATUS=listening on $srv_URL | healthz=200" \
	"RELOADING=1 (with MONOTONIC_USEC) then READY=1 around the reload"

# --- a broken file is refused whole, the running rules stay ----------------
write_config acme/toggle '
[[accessibility.proxy]]
repo = "acme/(unclosed"
use_re = true
allow = false'
hup 2
line=$(grep -n 'acme/(unclosed' "$CFG" | cut -d: -f1)
like "$(cat "$T/srv.log")" \
	"$CFG:$line: accessibility\.proxy\[2\]\.repo: invalid regular expression \"acme/\(unclosed\" at offset" \
	"a bad regex on reload is reported as FILE:LINE: key: why"
like "$(grep 'SIGHUP' "$T/srv.log" | tail -n 1)" "SIGHUP: $CFG: not reloaded, the running rules stay\$" \
	"and the file is not applied"
is "$(code $TOGGLE)" 200 "nothing of the broken file applies: acme/toggle still served"
write_config acme/toggle '
[basic]
repos_path = "elsewhere"'
hup 3
like "$(grep 'SIGHUP' "$T/srv.log" | tail -n 1)" "not reloaded" "an unknown key is refused on reload too"
like "$(cat "$T/srv.log")" "$CFG:[0-9]+: basic\.repos_path: unknown key" "with its FILE:LINE: key"

# --- the access log is reopened: logrotate without copytruncate ------------
write_config acme/toggle
mv "$T/access.log" "$T/access.log.1"
hup 4
is "$(code "$KEEP?after-rotation")" 200 "a request after the rotation"
wait_for grep -q after-rotation "$T/access.log"
check "its access-log line is in the new access.log" grep -q after-rotation "$T/access.log"
check "and not in the rotated one" sh -c "! grep -q after-rotation '$T/access.log.1'"
check "the rotated file kept the lines from before" grep -q '"status":404' "$T/access.log.1"

# --- a long download in flight across a reload that hides its repo ---------
curl -s --max-time 120 --limit-rate 8M -o "$T/big.out" "$srv_URL$BIG" &
CURL_PID=$!
wait_for sh -c "[ -s '$T/big.out' ]"
write_config acme/big
hup 5
if kill -0 "$CURL_PID" 2>/dev/null; then
	ok "the download was still in flight when the reload was done"
else
	not_ok "the download was still in flight when the reload was done"
fi
is "$(code $BIG)" 404 "a new request for acme/big gets the new rules (404)"
wait "$CURL_PID"
is "$?" 0 "the download begun under the old rules ended cleanly"
is "$(sha256 "$T/big.out")" "$BIG_SHA" "every byte of it, right ($((48 << 20)) bytes)"

# --- twenty reloads under load ----------------------------------------------
# Four clients on kept-alive connections; acme/keep is allowed by both
# lists (anything but 200 is a dropped or broken request), acme/toggle by
# one of them (200 or 404, never anything else).  Bounded: each client
# stops at the stop file or after 5000 rounds.
$PYTHON - "$srv_URL" "$T/stop" >"$T/load.out" 2>&1 <<'EOF' &
import http.client, os, sys, threading, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
stop = sys.argv[2]
counts = {"keep200": 0, "keep_bad": 0, "toggle200": 0, "toggle404": 0, "toggle_bad": 0}
lock = threading.Lock()
def client():
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    local = dict.fromkeys(counts, 0)
    for _ in range(5000):
        if os.path.exists(stop):
            break
        for name, path in (("keep", "/acme/keep/resolve/main/a.txt"),
                           ("toggle", "/acme/toggle/resolve/main/a.txt")):
            try:
                c.request("GET", path)
                r = c.getresponse()
                r.read()
                s = r.status
            except Exception as e:
                print("error:", name, e)
                s = 0
                c.close()
                c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
            if name == "keep":
                local["keep200" if s == 200 else "keep_bad"] += 1
            elif s in (200, 404):
                local["toggle%d" % s] += 1
            else:
                local["toggle_bad"] += 1
    with lock:
        for k, v in local.items():
            counts[k] += v
ts = [threading.Thread(target=client) for _ in range(4)]
for t in ts:
    t.start()
for t in ts:
    t.join()
print(" ".join("%s=%d" % kv for kv in counts.items()))
EOF
LOAD_PID=$!
wait_for sh -c "[ \$(grep -c after-rotation '$T/access.log') -ge 1 ] && [ \$(wc -l <'$T/access.log') -ge 50 ]"
n=5
for i in $(seq 1 20); do
	if [ $((i % 2)) -eq 1 ]; then write_config acme/nothing-hidden; else write_config acme/toggle; fi
	n=$((n + 1))
	hup $n
done
touch "$T/stop"
wait "$LOAD_PID"
load=$(tail -n 1 "$T/load.out")
diag "load: $load"
like "$load" "keep200=[1-9][0-9]* keep_bad=0 " "acme/keep: every request answered 200 through 20 reloads"
like "$load" "toggle_bad=0\$" "acme/toggle: every answer 200 or 404, from one list or the other"
check "no client saw a connection error" sh -c "! grep -q '^error' '$T/load.out'"
is "$(grep -c 'SIGHUP: .*: reloaded' "$T/srv.log")" 23 "all 20 reloads applied (23 in all)"
is "$(code $TOGGLE)" 404 "the last list read decides: acme/toggle hidden"

# --- STOPPING=1 -------------------------------------------------------------
stop_server srv
wait_for grep -q STOPPING=1 "$T/notify.log"
like "$(tail -n 1 "$T/notify.log")" '^STOPPING=1 \| STATUS=stopping \(Terminated\)$' "STOPPING=1 on SIGTERM"
wait "$LISTENER_PID" 2>/dev/null

# --- without -c and without NOTIFY_SOCKET ---------------------------------------
start_server plain model-bin --path "$TREE" --access-log off ||
	{ echo "Bail out! server did not start"; exit 1; }
kill -HUP "$plain_PID"
wait_for grep -q 'SIGHUP' "$T/plain.log"
like "$(grep SIGHUP "$T/plain.log")" "no config file \(-c\) to reload" "SIGHUP without -c says there is nothing to reload"
is "$(curl -s -o /dev/null -w '%{http_code}' "$plain_URL$KEEP")" 200 \
	"and the server serves on (no NOTIFY_SOCKET: notifying was a no-op)"

done_testing
