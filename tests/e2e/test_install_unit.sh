#!/bin/bash
# test_install_unit.sh - `meson install` as a new user does it, then the
# service: the installed files (binaries, the olah-cli link, man pages that
# `man` finds and groff renders without a warning, the config, the docs),
# a reinstall that keeps an edited config, `systemd-analyze verify` and
# `systemd-analyze security` on the installed units, and the installed
# binary run with the unit's own command line and environment the way
# systemd would: with no writable+executable memory (MemoryDenyWriteExecute,
# mdwe.py), its notify socket (notifylisten.py), and under strace, whose
# record unitcheck.py holds against the unit's SystemCallFilter=,
# RestrictAddressFamilies=, ProcSubset= and PrivateDevices=.
#
# No systemd runs as PID 1 here (CI is a container), so the install goes to
# a DESTDIR and the units are checked with their paths moved into it: the
# file that verify and security read is the installed unit with
# <prefix> replaced by DESTDIR/<prefix>, nothing else changed.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fixtures.sh"

: "${BUILD_ROOT:=$SRCDIR/build}"
DEST="$T/dest"

# opt NAME: a meson option of the build tree under test (prefix, bindir...).
opt() {
	meson introspect "$BUILD_ROOT" --buildoptions | $PYTHON -c "
import json, sys
print(next(o['value'] for o in json.load(sys.stdin) if o['name'] == sys.argv[1]))" "$1"
}
# abs DIR: an install directory option as the absolute path meson uses.
abs() { case $1 in /*) echo "$1" ;; *) echo "$PREFIX/$1" ;; esac; }

PREFIX=$(opt prefix)
BINDIR=$(abs "$(opt bindir)")
SYSCONFDIR=$(abs "$(opt sysconfdir)")
MANDIR=$(abs "$(opt mandir)")
DOCDIR=$(abs "$(opt datadir)")/doc/hfmirror

# --- meson install -----------------------------------------------------------
check "meson install --destdir (prefix $PREFIX)" \
	meson install -C "$BUILD_ROOT" --no-rebuild --destdir "$DEST"
for f in "$BINDIR/hfmirror" "$BINDIR/hfmirror-import"; do
	check "installed: $f" test -x "$DEST$f"
done
is "$(readlink "$DEST$BINDIR/olah-cli")" hfmirror "installed: olah-cli, a link to hfmirror"
for f in "$MANDIR/man1/hfmirror.1" "$MANDIR/man1/hfmirror-import.1" "$MANDIR/man5/hfmirror.toml.5" \
	"$SYSCONFDIR/hfmirror/hfmirror.toml" "$DOCDIR/cli.md" "$DOCDIR/examples/hfmirror.toml"; do
	check "installed: $f" test -s "$DEST$f"
done
is "$(readlink "$DEST$MANDIR/man1/olah-cli.1")" hfmirror.1 "installed: olah-cli.1, a link to hfmirror.1"
UNIT=$(find "$DEST" -name hfmirror.service | head -n 1)
UNITDIR=$(dirname "$UNIT")
for u in hfmirror.service hfmirror-sync.service hfmirror-sync.timer; do
	check "installed: ${UNITDIR#"$DEST"}/$u" test -s "$UNITDIR/$u"
done
like "$("$DEST$BINDIR/hfmirror" --version)" '^hfmirror [0-9]' "the installed hfmirror runs"
like "$("$DEST$BINDIR/olah-cli" --help)" '^usage: olah-cli ' "the installed olah-cli answers as olah-cli"
like "$("$DEST$BINDIR/hfmirror-import" --version 2>&1)" 'hfmirror' "the installed hfmirror-import runs"

# --- man pages ---------------------------------------------------------------
export MANPAGER=cat MANWIDTH=100
for page in man1/hfmirror.1 man1/hfmirror-import.1 man5/hfmirror.toml.5; do
	check "groff renders $page without a warning" \
		sh -c "[ -z \"\$(groff -man -Tutf8 -ww -z '$DEST$MANDIR/$page' 2>&1)\" ]"
	check "man -l $page" sh -c "man -l '$DEST$MANDIR/$page' | grep -q '^NAME'"
done
export MANPATH="$DEST$MANDIR"
is "$(man -w hfmirror)" "$DEST$MANDIR/man1/hfmirror.1" "man hfmirror finds the installed page (MANPATH=<prefix>/share/man)"
man hfmirror >"$T/man.txt" 2>&1
like "$(cat "$T/man.txt")" "hfmirror - a Hugging Face Hub mirror" "man hfmirror: its NAME line"
like "$(cat "$T/man.txt")" "--repos-path DIR" "man hfmirror: the options of docs/cli.md"
like "$(cat "$T/man.txt")" "SIGHUP" "man hfmirror: the signals"
like "$(man olah-cli 2>&1 | head -n 5)" "hfmirror - a Hugging Face Hub mirror" "man olah-cli shows hfmirror's page"
like "$(man 5 hfmirror.toml 2>&1)" "accessibility.proxy" "man 5 hfmirror.toml: the config keys"
like "$(man hfmirror-import 2>&1)" "--store DIR" "man hfmirror-import: its options"

# --- a reinstall keeps an edited config --------------------------------------
echo "# edited by the operator" >>"$DEST$SYSCONFDIR/hfmirror/hfmirror.toml"
meson install -C "$BUILD_ROOT" --no-rebuild --destdir "$DEST" >"$T/reinstall.log" 2>&1
is "$?" 0 "meson install again"
check "keeps the edited config" grep -q "edited by the operator" "$DEST$SYSCONFDIR/hfmirror/hfmirror.toml"

# --- systemd-analyze verify / security ---------------------------------------
mkdir -p "$T/units"
for u in hfmirror.service hfmirror-sync.service hfmirror-sync.timer; do
	sed -e "s|$BINDIR/|$DEST$BINDIR/|g" -e "s|$SYSCONFDIR/|$DEST$SYSCONFDIR/|g" \
		"$UNITDIR/$u" >"$T/units/$u"
done
U="$T/units/hfmirror.service"
if command -v systemd-analyze >/dev/null; then
	# MANPATH is set: verify also checks that Documentation=man:... pages exist.
	systemd-analyze verify "$U" "$T/units/hfmirror-sync.service" "$T/units/hfmirror-sync.timer" \
		>"$T/verify.log" 2>&1
	is "$?" 0 "systemd-analyze verify hfmirror.service hfmirror-sync.service hfmirror-sync.timer"
	is "$(cat "$T/verify.log")" "" "  with nothing to say"
	systemd-analyze security --offline=true --no-pager "$U" >"$T/security.log" 2>&1
	score=$(sed -n 's/.*Overall exposure level for hfmirror.service: \([0-9.]*\) \([A-Z]*\).*/\1 \2/p' \
		"$T/security.log")
	diag "systemd-analyze security --offline=true hfmirror.service: $score"
	diag "$(grep '✗' "$T/security.log")"
	like "$score" '^(0\.[0-9]|1\.[0-9]) ' "systemd-analyze security: exposure below 2.0 (got $score)"
else
	not_ok "systemd-analyze is installed (scripts/deps.sh test: systemd)"
fi
check "hfmirror.service is Type=notify (a build with libsystemd)" grep -qx 'Type=notify' "$U"
is "$(grep -c '^ExecStart=.*hfmirror sync -m .*/hfmirror/sync.toml --repos-path /var/lib/hfmirror$' \
	"$T/units/hfmirror-sync.service")" 1 "hfmirror-sync.service runs hfmirror sync -m sync.toml --repos-path STORE"
$PYTHON "$SRCDIR/tests/e2e/unitcheck.py" paths "$U" "$DEST$SYSCONFDIR/hfmirror/hfmirror.toml" >"$T/paths.log" 2>&1
is "$?" 0 "every path the installed config writes is writable under the unit's ProtectSystem=strict"
diag "$(cat "$T/paths.log")"
check "the sync unit writes the store the config names" \
	grep -q "^repos-path = \"/var/lib/hfmirror\"" "$DEST$SYSCONFDIR/hfmirror/hfmirror.toml"

# --- the installed binary, run with the unit's command line --------------------
mkdir -p "$T/up/acme/tiny"
det_bytes tiny-model $((3 << 20)) >"$T/up/acme/tiny/model.bin"
echo '{"model_type": "tiny"}' >"$T/up/acme/tiny/config.json"
start_server up model-bin --path "$T/up" --index "$T/up.idx" || { echo "Bail out! no upstream"; exit 1; }
UP=${up_URL#http://}

EXEC=() ENVS=()
while IFS= read -r a; do
	case $a in ENV\ *) ENVS+=("${a#ENV }") ;; *) EXEC+=("$a") ;; esac
done < <($PYTHON "$SRCDIR/tests/e2e/unitcheck.py" exec "$U")
is "${EXEC[*]:1}" "serve -c $DEST$SYSCONFDIR/hfmirror/hfmirror.toml" "the unit runs hfmirror serve -c <sysconfdir>/hfmirror/hfmirror.toml"
BIN=${EXEC[0]}
# What systemd would run, with the test's own address, store and upstream
# on top (flags win over the file), under the unit's constraints.
RUN=()
if $PYTHON "$SRCDIR/tests/e2e/mdwe.py" true 2>/dev/null; then
	RUN+=("$PYTHON" "$SRCDIR/tests/e2e/mdwe.py")
	MDWE=1
else
	MDWE=
	diag "no PR_SET_MDWE in this kernel: the daemon runs without MemoryDenyWriteExecute"
fi
TRACE=
if ldd "$BIN" | grep -q libasan; then
	diag "a sanitizer build: the system-call check runs on the plain build only"
elif command -v strace >/dev/null && strace -f -qq -o /dev/null true 2>/dev/null; then
	TRACE="$T/unit.trace"
	RUN+=(strace -f -qq -o "$TRACE")
else
	diag "strace cannot trace here: no system-call check"
fi
RUN+=("${EXEC[@]}" --host 127.0.0.1 --port 0 --repos-path "$T/store" --access-log "$T/access.log"
	--index "$T/hashindex.bin" --hf-scheme http --hf-netloc "$UP")
diag "running: ${ENVS[*]} ${RUN[*]}"

$PYTHON "$SRCDIR/tests/e2e/notifylisten.py" "$T/notify.sock" "$T/notify.log" &
SERVER_PIDS="$SERVER_PIDS $!"
wait_for grep -qs '^listening' "$T/notify.log"
env "${ENVS[@]}" NOTIFY_SOCKET="$T/notify.sock" "${RUN[@]}" >"$T/unit.out" 2>"$T/unit.log" &
RUN_PID=$!
SERVER_PIDS="$SERVER_PIDS $RUN_PID"
wait_for grep -q 'listening on' "$T/unit.log"
URL=$(sed -n 's/.*listening on \(http:\/\/[0-9.:]*\).*/\1/p' "$T/unit.log" | head -n 1)
DAEMON=$RUN_PID
[ -n "$TRACE" ] && DAEMON=$(pgrep -P "$RUN_PID" | head -n 1)
SERVER_PIDS="$SERVER_PIDS $DAEMON"
[ -n "$MDWE" ] && like "$(head -n 1 "$T/unit.log")" '^mdwe: on$' "the daemon runs with W+X memory refused"

wait_for grep -q READY=1 "$T/notify.log"
like "$(grep READY=1 "$T/notify.log" | head -n 1)" "STATUS=listening on $URL \| healthz=200\$" \
	"Type=notify: READY=1 came when /healthz already answered"
is "$(get "$URL/acme/tiny/resolve/main/model.bin" "$T/got.bin")" 200 "a download through the cache"
is "$(sha256 "$T/got.bin")" "$(sha256 "$T/up/acme/tiny/model.bin")" "the right bytes"
wait_for sh -c "ls '$T/store/objects/'*/* >/dev/null 2>&1"
check "the blob was stored" sh -c "ls '$T/store/objects/'*/* >/dev/null 2>&1"
kill -HUP "$DAEMON"
wait_for grep -q 'SIGHUP: .*reloaded' "$T/unit.log"
like "$(grep SIGHUP "$T/unit.log")" "SIGHUP: .*/hfmirror.toml: reloaded 2 proxy and 2 cache rules" \
	"systemctl reload (SIGHUP) rereads the installed config"
wait_for sh -c "[ \$(grep -c READY=1 '$T/notify.log') -ge 2 ]"
is "$(get "$URL/api/models/acme/tiny" "$T/info.json")" 200 "the API answers after the reload"
kill -TERM "$DAEMON"
wait "$RUN_PID"
is "$?" 0 "systemctl stop (SIGTERM): exit status 0"
like "$(tail -n 1 "$T/notify.log")" '^STOPPING=1' "STOPPING=1"
check "no sanitizer report from the unit's run" sh -c "! grep -qE '$SAN_PATTERN' '$T/unit.log'"

if [ -n "$TRACE" ]; then
	$PYTHON "$SRCDIR/tests/e2e/unitcheck.py" trace "$U" "$TRACE" >"$T/trace.log" 2>&1
	is "$?" 0 "every system call, socket family, /proc and /dev access is one the unit allows"
	diag "$(cat "$T/trace.log")"
fi

# --- regex rules with MemoryDenyWriteExecute: PCRE2 without JIT ---------------
if [ -n "$MDWE" ]; then
	cat >"$T/re.toml" <<EOF
[model-bin]
enable = true
path = "$T/up"

[[accessibility.proxy]]
repo = "acme/.*"
use_re = true
allow = true

[[accessibility.proxy]]
repo = "acme/t(iny|wo)\$"
use_re = true
allow = false
EOF
	mkdir -p "$T/up/acme/other"
	echo other >"$T/up/acme/other/a.txt"
	HFMIRROR="$PYTHON" start_server mdwe "$SRCDIR/tests/e2e/mdwe.py" "$DEST$BINDIR/hfmirror" \
		serve -c "$T/re.toml" --repos-path "$T/store2" --index "$T/re.idx" --access-log off
	like "$(head -n 1 "$T/mdwe.log")" '^mdwe: on$' "a server with W+X memory refused"
	is "$(get "$mdwe_URL/acme/other/resolve/main/a.txt" /dev/null)" 200 "regex rules without JIT: acme/other allowed"
	is "$(get "$mdwe_URL/acme/tiny/resolve/main/config.json" /dev/null)" 404 "regex rules without JIT: acme/tiny denied"
fi

done_testing
