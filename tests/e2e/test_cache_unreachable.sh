#!/bin/bash
# test_cache_unreachable.sh - `hfmirror mirror -m DIR` (git clones, the cache
# behind them) on a machine whose upstream cannot be reached: a closed port,
# then a name that does not resolve.  What the mirror lacks is answered as
# --offline answers it, at once: 404 with the Hub's error code and a message
# that says the upstream is unreachable (so clients answer "does not exist"
# instead of retrying a 504); a file the store lists but lacks is still 502;
# what the store and the clones hold is served.  One log line says the
# upstream became unreachable, not one per request.  Checked with curl and
# the npm client.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fixtures.sh"
. "$(dirname "$0")/lib_import.sh"
. "$(dirname "$0")/lib_sync.sh"

hfjs_ready || { not_ok "npm dependencies of tests/hfjs are installed"; done_testing; exit 1; }

# ---- a store filled while the upstream was there ------------------------------
R=$T/root
printf '{"model_type": "tiny"}\n' | mk "$R/acme/tiny/config.json"
{ printf 'BIN\000'; det_bytes data 300000; } | mk "$R/acme/tiny/data.bin"
start_server up model-bin --path "$R" || exit 1
start_server fill proxy --hf-scheme http --hf-netloc "${up_URL#http://}" --repos-path "$T/store" ||
	exit 1
for u in api/models/acme/tiny api/models/acme/tiny/revision/main \
	"api/models/acme/tiny/tree/main?recursive=true" acme/tiny/resolve/main/config.json; do
	is "$(curl -s -o /dev/null -w '%{http_code}' "$fill_URL/$u")" 200 "filling the store: /$u"
done
stop_server fill
stop_server up

# a git clone beside it, as `mirror -m` serves
make_upstream "$T/mirrors/models/acme/git"

DEAD=$($PYTHON -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

# req URL [curl args]: headers to $T/h, body to $T/body; prints the status
req() {
	u=$1
	shift
	curl -s -D "$T/h" -o "$T/body" -w '%{http_code}' --max-time 60 "$@" "$u"
}
code() { hdr "$T/h" X-Error-Code; }
msg() { hdr "$T/h" X-Error-Message; }

# probe NAME CALL...: the npm client's answers, one "CALL => RESULT" line each
probe() {
	(cd "$HFJS" && HFM_URL=$1 node probe.mjs "${@:2}") 2>"$T/probe.err"
}

# unreachable_checks NAME URL WHY: what a mirror whose upstream is gone answers
unreachable_checks() {
	n=$1 M=$2
	is "$(req "$M/api/models/acme/nope")" 404 "$n: a repo not in the mirror: 404"
	is "$(code)" RepoNotFound "$n: RepoNotFound"
	is "$(msg)" "acme/nope is not in this mirror and the upstream is unreachable" \
		"$n: the message says why"
	is "$(req "$M/acme/nope/resolve/main/config.json" -I)" 404 "$n: HEAD of its file: 404"
	is "$(code)" RepoNotFound "$n: HEAD of its file: RepoNotFound"
	is "$(req "$M/api/models/acme/tiny/revision/nope")" 404 \
		"$n: a revision of a stored repo not in the mirror: 404"
	is "$(code)" RevisionNotFound "$n: RevisionNotFound"
	like "$(msg)" "upstream is unreachable" "$n: RevisionNotFound says why"
	is "$(req "$M/api/models/acme/tiny")" 200 "$n: the stored repo's info"
	is "$(req "$M/acme/tiny/resolve/main/config.json")" 200 "$n: a stored file"
	check "$n: its bytes" cmp "$T/body" "$R/acme/tiny/config.json"
	is "$(req "$M/acme/tiny/resolve/main/data.bin")" 502 \
		"$n: a file the store lists but lacks is still 502"
	is "$(msg)" "data.bin is not in this mirror and the upstream is unreachable" \
		"$n: the 502 says why"
	is "$(req "$M/api/models/acme/git/revision/v1.0")" 200 "$n: the git clone's tag"
	is "$(req "$M/acme/git/resolve/main/config.json")" 200 "$n: the git clone's file"

	probe "$M" "repoExists acme/nope" "repoExists acme/tiny" \
		"fileExists acme/nope main config.json" "fileExists acme/tiny nope config.json" \
		"fileExists acme/tiny main config.json" "modelInfo acme/tiny main" \
		"downloadFile acme/tiny main data.bin" >"$T/probe.out"
	p() { sed -n "s/^$1 => //p" "$T/probe.out"; }
	is "$(p 'repoExists acme\/nope')" false "$n: npm repoExists of a repo not in the mirror: false"
	is "$(p 'repoExists acme\/tiny')" true "$n: npm repoExists of a stored repo: true"
	is "$(p 'fileExists acme\/nope main config.json')" false "$n: npm fileExists, no such repo: false"
	is "$(p 'fileExists acme\/tiny nope config.json')" false \
		"$n: npm fileExists, no such revision: false"
	is "$(p 'fileExists acme\/tiny main config.json')" true "$n: npm fileExists of a stored file"
	like "$(p 'modelInfo acme\/tiny main')" '^"[0-9a-f]{40}"$' "$n: npm modelInfo of a stored repo"
	like "$(p 'downloadFile acme\/tiny main data.bin')" '^throws' \
		"$n: npm downloadFile of a file the store lacks fails"
	[ -s "$T/probe.err" ] && diag "$(tail -n 5 "$T/probe.err")"
}

# ---- the upstream is a closed port ----------------------------------------------
start_server closed mirror -m "$T/mirrors" --repos-path "$T/store" --hf-scheme http \
	--hf-netloc "127.0.0.1:$DEAD" --access-log off || exit 1
unreachable_checks "closed port" "$closed_URL"
is "$(grep -c 'unreachable (' "$T/closed.log")" 1 \
	"closed port: one log line for all those requests"
like "$(grep 'unreachable (' "$T/closed.log")" "http://127.0.0.1:$DEAD unreachable \(Could(n't| not) connect" \
	"closed port: the line names the upstream and why"

# ---- the upstream's name does not resolve ----------------------------------------
start_server noname mirror -m "$T/mirrors" --repos-path "$T/store" --hf-scheme http \
	--hf-netloc hf-upstream.invalid --access-log off || exit 1
unreachable_checks "unresolvable name" "$noname_URL"
is "$(grep -c 'unreachable (' "$T/noname.log")" 1 \
	"unresolvable name: one log line for all those requests"
like "$(grep 'unreachable (' "$T/noname.log")" "hf-upstream.invalid unreachable \(Could(n't| not) resolve" \
	"unresolvable name: the line says the name did not resolve"

done_testing
