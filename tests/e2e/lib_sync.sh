# lib_sync.sh - what the `hfmirror sync` tests share (sourced after lib.sh
# and lib_import.sh): the npm client's checks and JSON reports.

HFJS="$SRCDIR/tests/hfjs"

# start_git_hub [LINE...]: the upstream hub the sync tests fetch from: the git
# repos under $T/up (make_upstream's), served by `hfmirror mirror --offline` (up_URL),
# behind the relay (RELAY) that plays the Hub; each LINE a line of its gated/private
# list ("gated acme/gated hf_good").
start_git_hub() {
	start_server up mirror -m "$T/up" --offline --repos-path "$T/upstore" --access-log off ||
		return 1
	start_relay "${up_URL##*:}"
	[ $# -eq 0 ] || printf '%s\n' "$@" >"$T/relay/gated"
}

# sync_config FILE STORE: the config of a sync (or a server on its store)
# that fetches from the hub start_git_hub started into STORE, in 1 MiB
# blocks; more sections may be appended to FILE
sync_config() {
	printf '[basic]\nrepos-path = "%s"\nhf-scheme = "http"\nhf-netloc = "%s"\ncache-block-size = "1M"\n' \
		"$2" "$RELAY" >"$1"
}

# hfjs_ready: node_modules as package-lock.json pins it (scripts/test runs
# npm ci; a developer running one test gets it here once).  lib.sh may
# have one already; then that one is used.
if ! type hfjs_ready >/dev/null 2>&1; then
	hfjs_ready() {
		[ -d "$HFJS/node_modules/@huggingface/hub" ] && return 0
		(cd "$HFJS" && npm ci --no-audit --no-fund) >"$T/npm.log" 2>&1 && return 0
		diag "npm ci in tests/hfjs failed:"
		diag "$(tail -n 20 "$T/npm.log")"
		return 1
	}
fi

# npm_check OFFLINE_URL REF_URL REPO REVISION FILES [TOKEN]: sync_check.mjs's
# lines folded into our TAP (FILES "*" = every file, else one path a line).
npm_check() {
	(cd "$HFJS" && HFM_URL=$1 HFM_REF=$2 HFM_REPO=$3 HFM_REVISION=$4 HFM_FILES=$5 \
		HFM_TOKEN=${6:-} node sync_check.mjs) >"$T/npm.out" 2>"$T/npm.err"
	node_tap npm $? "$T/npm.out" "$T/npm.err"
}

# run_sync NAME [args]: `hfmirror sync -c $T/config.toml args`; stdout (the
# report, or JSON lines) to $T/NAME.json, stderr to $T/NAME.err; prints the
# exit status
run_sync() {
	n=$1
	shift
	"$HFMIRROR" sync -c "$T/config.toml" "$@" >"$T/$n.json" 2>"$T/$n.err"
	echo $?
}

# jq_repo FILE REPO EXPR: a Python expression over repo REPO's JSON line
# (`j`) in FILE, printed (a tuple's items separated by spaces)
jq_repo() {
	$PYTHON - "$1" "$2" "$3" <<'EOP'
import json, sys
for line in open(sys.argv[1]):
    j = json.loads(line)
    if j["repo"] == sys.argv[2]:
        v = eval(sys.argv[3])
        print(" ".join(map(str, v)) if isinstance(v, tuple) else v)
        break
else:
    print("NO-SUCH-REPO")
EOP
}

# jq_sum FILE KEY FIELD: the sum over the JSON lines in FILE of j[KEY][FIELD]
jq_sum() {
	$PYTHON -c 'import json,sys; print(sum(json.loads(l)[sys.argv[2]][sys.argv[3]] for l in open(sys.argv[1])))' \
		"$1" "$2" "$3"
}

# store_ok_all STORE: every object under objects/ hashes to its name (sha256
# for LFS content, git's blob sha1 otherwise)
store_ok_all() {
	find "$1/objects" -type f | $PYTHON -c '
import hashlib, os, sys
bad = 0
for p in sys.stdin.read().split("\n"):
    if not p:
        continue
    name, data = os.path.basename(p), open(p, "rb").read()
    got = hashlib.sha256(data).hexdigest() if len(name) == 64 else \
        hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    if got != name:
        print("bad object", name)
        bad = 1
sys.exit(bad)'
}

# sync_san_clean: no sanitizer report in the stderr of any sync run ($T/*.err;
# the servers' logs are check_servers' business)
sync_san_clean() {
	if grep -lE "$SAN_PATTERN" "$T"/*.err >/dev/null 2>&1; then
		not_ok "sync runs: no sanitizer report"
		diag "$(grep -hE -A 30 "$SAN_PATTERN" "$T"/*.err | head -n 60)"
	else
		ok "sync runs: no sanitizer report"
	fi
}
