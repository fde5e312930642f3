#!/bin/bash
# test_modelbin_hfjs.sh - the real npm client (@huggingface/hub, pinned in
# tests/hfjs/package.json) against `hfmirror model-bin` on the fixture tree.
#
# node's TAP is folded into this script's own TAP stream (one line per
# top-level node test, failures with node's diagnostics), so the plan stays
# ours and the server checks below can follow the client's results.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fixtures.sh"

MIN_TESTS=20 # the file has more; fewer means node did not run them all

# fold_node_tap FILE: re-emit node's top-level results through ok/not_ok;
# the indented lines after a failing test (its YAML block) become diagnostics.
fold_node_tap() {
	failing=""
	while IFS= read -r line; do
		case $line in
		"ok "*)
			failing=""
			ok "hfjs: ${line#ok * - }"
			;;
		"not ok "*)
			failing=1
			not_ok "hfjs: ${line#not ok * - }"
			;;
		" "*)
			[ -n "$failing" ] && diag "$line"
			;;
		esac
	done <"$1"
}

count_top_level() {
	grep -cE '^(not )?ok ' "$1"
}

hfjs_ready

ROOT="$T/root"
make_fixture_tree "$ROOT" "$T/outside"
if ! start_server S model-bin --path "$ROOT" --index "$T/idx.bin"; then
	not_ok "server starts"
	done_testing
	exit 1
fi

# The file is run directly rather than through `node --test`: node 18 nests a
# --test file's tests under one per-file test, node 20 does not; run
# directly, both print every test at the top level.
(cd "$HFJS" && HFM_URL=$S_URL HFM_ROOT=$ROOT \
	node --test-reporter=tap hub.test.mjs) \
	>"$T/node.tap" 2>"$T/node.err"
rc=$?
fold_node_tap "$T/node.tap"
n=$(count_top_level "$T/node.tap")
if [ "$n" -ge $MIN_TESTS ]; then
	ok "node ran $n tests"
else
	not_ok "node ran $n tests, expected at least $MIN_TESTS"
	diag "$(tail -n 30 "$T/node.tap")"
	diag "$(tail -n 30 "$T/node.err")"
fi
if [ $rc -eq 0 ] || [ "$TAP_FAILED" -gt 0 ]; then
	ok "node's exit status agrees with its results"
else
	not_ok "node exited $rc without a failing test"
	diag "$(tail -n 30 "$T/node.err")"
fi

done_testing
