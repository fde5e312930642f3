#!/bin/bash
# test_ui_browser.sh - the web UI in headless Chromium (Debian's chromium,
# driven by puppeteer-core from tests/hfjs): every repo of every source on
# the home page, search and filters through the form (also with JavaScript
# off), every page and every link crawled (no 4xx/5xx, no console error, no
# script from a repo), each page's HTML scanned for names sent unescaped,
# the README rendered without raw HTML, refs, LFS marks, commands, status.
# Screenshots go to $BUILD_ROOT/ui-screenshots (docs/ui.md shows copies:
# UI_SHOTS_TO_DOCS=1 copies them into docs/ui/).
#
# Skipped (TAP skip) only when chromium is not installed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fixtures.sh"
. "$(dirname "$0")/lib_ui.sh"

CHROMIUM=${CHROMIUM:-$(command -v chromium || command -v chromium-browser || true)}
if [ -z "$CHROMIUM" ]; then
	echo "1..0 # SKIP chromium is not installed (scripts/deps.sh test installs it)"
	exit 0
fi
hfjs_ready
SHOT_DIR=${BUILD_ROOT:-$SRCDIR/build}/ui-screenshots

make_ui_sources || exit 1
start_server ui serve -c "$T/ui.toml" --index "$T/idx" || exit 1
U=$ui_URL
check "the cache learns up/cached-only" warm_cache_only "$U"
models=$(curl -s "$U/api/models" | $PYTHON -c 'import json,sys; [print(x["id"]) for x in json.load(sys.stdin)]')
like "$models" "up/cached-only" "the API lists the cache-only repo (the page must too)"

hostile=$(printf '%s\n' "$HOSTILE_FILE" "$HOSTILE_DIR" "$HOSTILE_IN_DIR" "$HOSTILE_DIR/$HOSTILE_IN_DIR" "$GIT_HOSTILE")
(cd "$HFJS" && HFM_URL=$U HFM_MODELS=$models HFM_HIDDEN=$(printf 'acme/secret\nup/priv') HFM_HOSTILE=$hostile \
	CHROMIUM=$CHROMIUM SHOT_DIR=$SHOT_DIR timeout 900 node ui_browser.mjs) >"$T/ui.out" 2>"$T/ui.err"
rc=$?
node_tap browser $rc "$T/ui.out" "$T/ui.err"
n=$(grep -c '^ok - ' "$T/ui.out")
if [ "$n" -ge 30 ]; then ok "browser: $n checks passed"; else not_ok "browser: only $n checks passed"; fi
for s in home search repo repo-odd repo-git status; do
	check "screenshot $s.png saved" test -s "$SHOT_DIR/$s.png"
done
if [ -n "${UI_SHOTS_TO_DOCS:-}" ]; then
	mkdir -p "$SRCDIR/docs/ui" && cp "$SHOT_DIR"/*.png "$SRCDIR/docs/ui/"
fi

done_testing
