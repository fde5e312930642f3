#!/bin/sh
# deps.sh [build|test|bench|fuzz|all] - install what hfmirror needs from Debian.
# Runs apt-get through sudo when not root.  Safe to run again.
set -e
what=${1:-all}
# libcmark-dev: the web UI renders READMEs (CommonMark, raw HTML off).
# libsystemd-dev: sd_notify(3), so that the systemd unit (dist/systemd) is
# Type=notify: started once the port answers, reloads and stops reported.
build="meson ninja-build pkg-config gcc g++ libmicrohttpd-dev libgit2-dev libssl-dev
 libcjson-dev libpcre2-dev libcurl4-openssl-dev libtomlplusplus-dev libsystemd-dev zlib1g-dev libcmark-dev"
# test_install_*: systemd-analyze (systemd), man and groff for the pages,
# strace for the unit's system-call filter.  test_metrics_scrape: promtool
# (prometheus; its service is not started where policy-rc.d forbids it,
# and nothing needs it running).  chromium: the web UI's test
# (test_ui_browser) drives it headless.  haproxy: test_scale_* (several nodes
# on one store behind a balancer).
test="curl git git-lfs python3 nodejs npm openssl procps systemd man-db groff-base strace
 prometheus chromium haproxy"
# bench/run, bench/cache: the server to compare with, the load tools and
# the counting relay (python3), the SHA-256 reference (openssl);
# bench/git/run: git's http-backend behind nginx through fcgiwrap, measured
# with GNU time.
bench="nginx wrk curl procps git git-lfs python3 openssl fcgiwrap time"
# scripts/fuzz: clang and its runtimes (libFuzzer, ASan, UBSan); the
# unversioned packages follow Debian's default clang.
fuzz="clang libclang-rt-dev"
case $what in
build) pkgs=$build ;;
test) pkgs=$test ;;
bench) pkgs=$bench ;;
fuzz) pkgs=$fuzz ;;
all) pkgs="$build $test $fuzz" ;;
*) echo "usage: $0 [build|test|bench|fuzz|all]" >&2; exit 2 ;;
esac
# installed PKG: true when PKG (or what it provides) is already here.
# Node from nodesource bundles npm and conflicts with Debian's npm package,
# so node and npm count as present when their commands are.
installed() {
	case $1 in
	nodejs) command -v node >/dev/null 2>&1 && return 0 ;;
	npm) command -v npm >/dev/null 2>&1 && return 0 ;;
	esac
	dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"
}
missing=""
for p in $pkgs; do
	installed "$p" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO=sudo
echo "deps.sh: installing$missing" >&2
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq
# shellcheck disable=SC2086
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $missing >/dev/null
