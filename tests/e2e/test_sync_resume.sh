#!/bin/bash
# test_sync_resume.sh - `hfmirror sync` stopped in the middle of a 12 MiB
# file, by kill -9 and by Ctrl-C (SIGINT), then run again: the rerun
# resumes from the blocks already stored, and over both runs the upstream
# sends no more than one fresh sync would plus one block (the block under
# way) and the branch metadata asked again.  Bytes are counted at the relay
# (faultrelay.py) between sync and its upstream, an hfmirror serving a git
# clone; the relay slows the first run so that it is stopped mid-file.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_import.sh"
. "$(dirname "$0")/lib_sync.sh"

BLOCK=1048576
R=$T/up/models/acme/big
mkdir -p "$R"
(
	cd "$R" && git init -q . && git lfs track '*.bin' >/dev/null &&
	rm -f .git/hooks/post-checkout .git/hooks/post-commit .git/hooks/post-merge .git/hooks/pre-push &&
	head -c $((12 * BLOCK + 12345)) /dev/urandom >big.bin &&
	echo '{"model_type": "big"}' >config.json &&
	git add -A && git commit -q -m big
) >/dev/null
SIZE=$(stat -c %s "$R/big.bin")
OID=$(sha256sum <"$R/big.bin" | cut -c1-64)
start_git_hub || exit 1

printf '[[repo]]\nid = "acme/big"\n' >"$T/sync.toml"
# config STORE: the sync config for a store, STORE.toml
config() { sync_config "$1.toml" "$1"; }
obj_ok() {
	test "$(sha256sum <"$1/objects/$(echo "$OID" | cut -c1-2)/$OID" | cut -c1-64)" = "$OID"
}

# ---- what one sync from nothing costs ------------------------------------------
config "$T/fresh"
b0=$(relay_bytes)
is "$("$HFMIRROR" sync -c "$T/fresh.toml" -m "$T/sync.toml" -q >/dev/null 2>"$T/fresh1.err"; echo $?)" 0 "a sync from nothing"
FRESH=$(($(relay_bytes) - b0))
check "it stored the file" obj_ok "$T/fresh"
b0=$(relay_bytes)
"$HFMIRROR" sync -c "$T/fresh.toml" -m "$T/sync.toml" -q >/dev/null 2>"$T/fresh2.err"
AGAIN=$(($(relay_bytes) - b0))
check "a sync with nothing new asks only metadata ($AGAIN bytes)" test "$AGAIN" -lt 65536
diag "from nothing: $FRESH bytes from the upstream for a $SIZE-byte file; again: $AGAIN"

# stopped SIGNAL NAME: sync into a new store at ~2 MB/s, stopped with SIGNAL
# once a few blocks are stored, then run again at full speed; checks what
# both runs cost together
stopped() {
	sig=$1 n=$2 S=$T/$2
	config "$S"
	relay_mode slow 2000000
	b0=$(relay_bytes)
	"$HFMIRROR" sync -c "$S.toml" -m "$T/sync.toml" --json >"$T/$n.1.json" 2>"$T/$n.1.err" &
	pid=$!
	i=0
	while [ "$(map_blocks "$S/partial/$OID.map")" -lt 3 ] && [ $i -lt 600 ]; do sleep 0.05; i=$((i + 1)); done
	kill -"$sig" "$pid"
	wait "$pid"
	rc=$?
	relay_mode pass
	b1=$(relay_bytes)
	durable=$(map_blocks "$S/partial/$OID.map")
	check "$n: stopped mid-file ($((b1 - b0)) bytes sent, $durable blocks stored)" \
		test "$durable" -gt 0 -a $((b1 - b0)) -lt "$SIZE"
	check "$n: no object for the unfinished file" test ! -e "$S/objects/$(echo "$OID" | cut -c1-2)/$OID"
	if [ "$sig" = INT ]; then
		is "$rc" 1 "$n: exit status 1 (interrupted)"
		is "$(jq_repo "$T/$n.1.json" acme/big 'j["status"], j["not_fetched"]["files"]')" \
			"interrupted 1" "$n: the report says what was not fetched"
		like "$(cat "$T/$n.1.err")" "stopping" "$n: it says it is stopping"
	fi
	is "$("$HFMIRROR" sync -c "$S.toml" -m "$T/sync.toml" --json >"$T/$n.2.json" 2>"$T/$n.2.err"; echo $?)" 0 \
		"$n: the rerun succeeds"
	b2=$(relay_bytes)
	check "$n: the file is complete and correct" obj_ok "$S"
	is "$(jq_repo "$T/$n.2.json" acme/big 'j["fetched"]["files"]')" 1 "$n: the rerun fetched it"
	check "$n: the rerun resumed: $((b2 - b1)) bytes for a $SIZE-byte file" \
		test $((b2 - b1)) -lt $((SIZE - 2 * BLOCK))
	extra=$((b2 - b0 - FRESH))
	diag "$n: both runs $((b2 - b0)) bytes, one fresh sync $FRESH: $extra more"
	check "$n: no byte fetched twice beyond one block (and the branch metadata asked again)" \
		test "$extra" -le $((BLOCK + AGAIN + 32768))
}

stopped 9 kill9
stopped INT sigint

sync_san_clean
done_testing
