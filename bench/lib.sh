# shellcheck shell=bash
# bench/lib.sh - what bench/run and bench/cache share (sourced, not run).
#
# The sourcing script sets `keep` (1: leave the temp dir) before anything
# starts, `threads` before start_nginx, and defines metric_info and the
# list `cases` before summary_table.  Everything started through this file
# is stopped on exit, however the script ends.

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build=${HFM_BENCH_BUILD:-$top/build-bench}
hfm_given=""

say() { printf 'bench: [%4ds] %s\n' "$SECONDS" "$*" >&2; }
die() { printf 'bench: error: %s\n' "$*" >&2; exit 1; }

# ---- everything we start is stopped here -----------------------------------

declare -a started=()   # pids of servers and clients we launched
tmp=""

cleanup() {
	local pid
	for pid in "${started[@]}"; do
		kill "$pid" 2>/dev/null || true
	done
	for pid in "${started[@]}"; do
		wait "$pid" 2>/dev/null || true
	done
	if [ -n "$tmp" ] && [ "${keep:-0}" = 0 ]; then
		rm -rf "$tmp"
	elif [ -n "$tmp" ]; then
		say "kept $tmp"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# The temp dir every run works in (data, stores, logs); removed on exit.
make_tmp() {
	tmp=$(mktemp -d "${TMPDIR:-/tmp}/hfm-bench.XXXXXX")
	# nginx's workers may run as another user.
	chmod 755 "$tmp"
}

# ---- install and build -------------------------------------------------------

setup() {
	"$top/scripts/deps.sh" build
	"$top/scripts/deps.sh" bench
	if [ ! -f "$build/build.ninja" ]; then
		meson setup "$build" "$top" -Dbuildtype=release >/dev/null
	fi
	meson compile -C "$build" hfmirror bench-stream bench-loop test_resp >/dev/null
	hfm=${hfm_given:-$build/server/hfmirror}
	stream=$build/bench/bench-stream
	loop=$build/bench/bench-loop
	# The numbers are only as good as the clients' response parser.
	"$build/bench/test_resp" >/dev/null || die "bench client parser test failed"
}

# ---- data --------------------------------------------------------------------

# $data/bench/big/model.safetensors: $big_mib MiB of random bytes (so: an
# LFS file, named by its sha256).  Sets big_size and big_label.
make_big() {
	mkdir -p "$data/bench/big"
	say "writing a $big_mib MiB file"
	head -c "$((big_mib << 20))" /dev/urandom >"$data/bench/big/model.safetensors"
	big_size=$((big_mib << 20))
	big_label=$([ "$big_mib" -ge 1024 ] && echo "$((big_mib / 1024)) GiB" || echo "$big_mib MiB")
}

# ---- servers -----------------------------------------------------------------

declare -A port=() main_pid=() kind=()

# A TCP port nobody listens on now (a race is caught by the start check).
free_port() {
	local p hex
	while :; do
		p=$((20000 + RANDOM % 40000))
		hex=$(printf '%04X' "$p")
		grep -q ":$hex 00000000:0000 0A" /proc/net/tcp || { echo "$p"; return; }
	done
}

# Wait until pid listens on port; fail if it died first.
wait_listening() {
	local pid=$1 p=$2 i
	for i in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || return 1
		(: </dev/tcp/127.0.0.1/"$p") 2>/dev/null && return 0
		sleep 0.05
	done
	return 1
}

# start_hfm NAME WHAT ARGS...: "$hfm ARGS" on 127.0.0.1 with a port the
# kernel picks; sets port[NAME], main_pid[NAME] and kind[NAME]=WHAT.  Its
# stderr is $tmp/NAME/stderr.
start_hfm() {
	local name=$1 what=$2 dir=$tmp/$1 pid p="" i
	shift 2
	mkdir -p "$dir"
	# Made before the server starts: the loop below may read it before the
	# child's redirection has created it (and sed failing ends the run).
	: >"$dir/stderr"
	"$hfm" "$@" --host 127.0.0.1 --port 0 >"$dir/stdout" 2>"$dir/stderr" &
	pid=$!
	started+=("$pid")
	for i in $(seq 600); do
		p=$(sed -n 's|.*listening on http://127\.0\.0\.1:\([0-9]*\).*|\1|p' "$dir/stderr" | head -1)
		[ -n "$p" ] && break
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	if [ -z "$p" ]; then
		cat "$dir/stderr" >&2
		die "hfmirror $name did not start (no 'listening on' line)"
	fi
	port[$name]=$p main_pid[$name]=$pid kind[$name]=$what
}

# The top of every nginx.conf: one master in the foreground, $threads
# workers, every path under DIR, no access log.  The caller adds the rest of
# the http block (servers) and its closing brace.
nginx_head() {
	local dir=$1
	cat <<EOF
worker_processes $threads;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log warn;
events { worker_connections 4096; }
http {
	access_log off;
	keepalive_timeout 600s;
	keepalive_requests 10000000;
	client_body_temp_path $dir/client_body;
	proxy_temp_path $dir/proxy;
	fastcgi_temp_path $dir/fastcgi;
	uwsgi_temp_path $dir/uwsgi;
	scgi_temp_path $dir/scgi;
EOF
}

# start_nginx NAME WHAT CONF_FN ARGS...: nginx with the config that
# "CONF_FN DIR PORT ARGS..." prints, DIR being $tmp/NAME; sets port[NAME],
# main_pid[NAME] (the master) and kind[NAME]=WHAT.
start_nginx() {
	local name=$1 what=$2 conf_fn=$3 dir=$tmp/$1 p pid try
	shift 3
	mkdir -p "$dir"
	for try in 1 2 3 4 5; do
		p=$(free_port)
		"$conf_fn" "$dir" "$p" "$@" >"$dir/nginx.conf"
		nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" >/dev/null 2>>"$dir/stderr" &
		pid=$!
		started+=("$pid")
		if wait_listening "$pid" "$p"; then
			port[$name]=$p main_pid[$name]=$pid kind[$name]=$what
			return 0
		fi
		kill "$pid" 2>/dev/null || true
	done
	cat "$dir/error.log" "$dir/stderr" >&2 2>/dev/null || true
	die "nginx $name did not start"
}

# Stop a server started above and forget it (its pid may be reused).
stop_server() {
	local name=$1 pid=${main_pid[$1]:-} i
	[ -n "$pid" ] || return 0
	kill "$pid" 2>/dev/null || true
	wait "$pid" 2>/dev/null || true
	for i in "${!started[@]}"; do
		[ "${started[$i]}" = "$pid" ] && unset 'started[i]'
	done
	unset 'main_pid[$name]' 'port[$name]'
}

base() { echo "http://127.0.0.1:${port[$1]}"; }

# Every process of a server: nginx's master and workers, hfmirror's one.
server_pids() {
	local m=${main_pid[$1]}
	echo "$m"
	pgrep -P "$m" || true
}

# Sum of a /proc status field (VmRSS, VmHWM) over a server's processes, MiB.
server_mem() {
	local s=$1 field=$2 pid kb=0 v
	for pid in $(server_pids "$s"); do
		v=$(awk -v f="$field:" '$1 == f { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
		kb=$((kb + ${v:-0}))
	done
	awk -v k="$kb" 'BEGIN { printf "%.2f", k / 1024 }'
}

# CPU seconds (user + system) a server's processes have used so far.
server_cpu() {
	local pid ticks=0 v
	for pid in $(server_pids "$1"); do
		# Fields 14 and 15 of /proc/PID/stat, counted after the command
		# name, which may hold spaces.
		v=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | awk '{ print $12 + $13 }' || true)
		ticks=$((ticks + ${v:-0}))
	done
	awk -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.3f", t / hz }'
}

# Forget the peak so VmHWM covers only what follows (clear_refs "5").
reset_peak() {
	local pid
	for pid in $(server_pids "$1"); do
		echo 5 >"/proc/$pid/clear_refs" 2>/dev/null || true
	done
}

# bench-loop's and bench-stream's "key=value" line -> value of key.
kv() { tr ' ' '\n' | sed -n "s/^$1=//p"; }

# ---- the table -----------------------------------------------------------------
#
# results.tsv holds one measurement a line: metric, pair, side (A: hfmirror,
# B: the reference), round, value.  metric_info METRIC (the script's) says
# "label|unit|printf format|hi or lo (which is better)|targets", targets
# being a comma-separated list of
#   ratio>=X ratio<=X ratio<X   on hfmirror/reference of the medians
#   <X <=X                      on hfmirror's median
# each optionally prefixed "PAIR:" to hold for that pair only.
#
# summary_table RESULTS PAIRS REF [by-pair]: the markdown table, one row per
# metric and pair (in the order of `cases`, then PAIRS), REF naming side B in
# the header; with by-pair, a ratio target names the pair instead (when each
# pair has its own reference).
summary_table() {
	local results=$1 pairs=$2 ref=$3 by_pair=${4:-} order c key
	order=$(mktemp "$tmp/order.XXXXXX")
	for c in $cases; do
		for key in $(cut -f1 "$results" | grep "^$c\." | awk '!seen[$0]++'); do
			printf '%s\t%s\n' "$key" "$(metric_info "$key")"
		done
	done >"$order"
	awk -F'\t' -v order="$order" -v pairs="$pairs" -v ref="$ref" -v by_pair="$by_pair" '
	function med(a, n) { return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2 }
	function cell(fmt, a, n) {
		return sprintf(fmt " [" fmt "–" fmt "]", med(a, n), a[1], a[n])
	}
	function sort_(a, n,   i, j, t) {
		for (i = 2; i <= n; i++)
			for (j = i; j > 1 && a[j - 1] > a[j]; j--) { t = a[j]; a[j] = a[j - 1]; a[j - 1] = t }
	}
	# One target against hfmirror median ma and reference median mb (named who).
	function verdict(t, ma, mb, u, who,   rel, op, want, v, ok) {
		rel = t ~ /^ratio/
		if (rel) {
			if (!mb) return ""
			t = substr(t, 6); v = ma / mb
		} else v = ma
		match(t, /^[<>]=?/); op = substr(t, 1, RLENGTH); want = substr(t, RLENGTH + 1) + 0
		ok = op == ">=" ? v >= want : op == "<=" ? v <= want : op == "<" ? v < want : v > want
		sub(/>=/, "≥", op); sub(/<=/, "≤", op)
		return (rel ? sprintf("%s%s× %s", op, want, who) : sprintf("%s %s %s", op, want, u)) \
			": " (ok ? "met" : "MISSED")
	}
	BEGIN {
		while ((getline line < order) > 0) {
			split(line, f, "\t"); split(f[2], m, "|")
			nk++; keys[nk] = f[1]; label[f[1]] = m[1]; unit[f[1]] = m[2]
			fmt[f[1]] = m[3]; better[f[1]] = m[4]; target[f[1]] = m[5]
		}
		np = split(pairs, pl, " ")
	}
	{ k = $1 SUBSEP $2 SUBSEP $3; n[k]++; v[k, n[k]] = $5 + 0; seen[$1, $2] = 1 }
	END {
		print "| case | unit | hfmirror median [min–max] | " ref " median [min–max] | hfmirror/" ref " | target |"
		print "|---|---|---|---|---|---|"
		for (i = 1; i <= nk; i++) {
			key = keys[i]
			for (p = 1; p <= np; p++) {
				pair = pl[p]
				if (!((key, pair) in seen)) continue
				ka = key SUBSEP pair SUBSEP "A"; kb = key SUBSEP pair SUBSEP "B"
				na = n[ka]; nb = n[kb]
				for (j = 1; j <= na; j++) a[j] = v[ka, j]
				for (j = 1; j <= nb; j++) b[j] = v[kb, j]
				sort_(a, na); sort_(b, nb)
				ma = med(a, na); mb = med(b, nb)
				ratio = mb ? sprintf("%.2f", ma / mb) : "–"
				nt = split(target[key], ts, ","); out = ""
				for (t = 1; t <= nt; t++) {
					tt = ts[t]
					if (match(tt, /^[a-z0-9-]+:/)) {
						if (substr(tt, 1, RLENGTH - 1) != pair) continue
						tt = substr(tt, RLENGTH + 1)
					}
					out = out (out != "" ? "; " : "") verdict(tt, ma, mb, unit[key], by_pair ? pair : ref)
				}
				printf "| %s [%s] | %s | %s | %s | %s | %s |\n", label[key], pair, unit[key],
					cell(fmt[key], a, na), cell(fmt[key], b, nb), ratio, out
			}
		}
	}' "$results"
	rm -f "$order"
}

# ---- the upstream and the counting relay ---------------------------------------

# start_upstream: hfmirror model-bin on $tmp/data (the big file; with
# with_many=1 also bench/many), its first sha256 done; sets sha, big_path.
start_upstream() {
	data=$tmp/data
	make_big
	[ "${with_many:-0}" = 0 ] || make_many
	chmod -R a+rX "$data"
	# Its access log shows what the caches asked for (kept in the output).
	start_hfm up "hfmirror model-bin (the upstream)" model-bin --path "$data" \
		--threads "${threads:-1}" --access-log "$tmp/up/access.log" \
		--index "$tmp/hashindex.bin"
	say "upstream: ${kind[up]} on port ${port[up]} (pid ${main_pid[up]})"
	# The first request for a large file's id waits for its sha256; the
	# cases measure transfers, not that one-time cost.
	local i
	for i in $(seq 600); do
		curl -sS -m 600 -I "$(base up)/bench/big/resolve/main/model.safetensors" |
			grep -qi '^etag:' && break
		sleep 1
	done
	sha=$(commit_of bench/big)
	big_path=/bench/big/resolve/$sha/model.safetensors
}

# commit_of REPO: the upstream's commit of REPO's main.
commit_of() {
	local c
	c=$(curl -sS -f "$(base up)/api/models/$1/revision/main" |
		sed -n 's/.*"sha":"\([0-9a-f]\{40\}\)".*/\1/p')
	[ -n "$c" ] || die "upstream: no commit for $1"
	echo "$c"
}

# $data/bench/many: 1000 files of 1 KiB (random: git blob ids, not LFS) in
# 10 directories, as a repo of many small files.
make_many() {
	local d
	for d in $(seq -w 0 9); do
		mkdir -p "$data/bench/many/d$d"
		head -c $((100 * 1024)) /dev/urandom |
			(cd "$data/bench/many/d$d" && split -b 1024 -a 2 -d - f)
	done
}

# start_relay: tests/e2e/faultrelay.py in front of the upstream, counting
# the bytes it relays (relay_bytes); port[relay].
start_relay() {
	local d=$tmp/relay i
	mkdir -p "$d"
	echo pass >"$d/mode"
	"${python:-python3}" "$top/tests/e2e/faultrelay.py" "$d/port" "${port[up]}" "$d" 2>"$d/stderr" &
	main_pid[relay]=$!
	started+=("$!")
	for i in $(seq 200); do
		[ -s "$d/port" ] && break
		sleep 0.05
	done
	[ -s "$d/port" ] || die "the counting relay did not start"
	port[relay]=$(cat "$d/port")
}

relay_bytes() { cat "$tmp/relay/bytes" 2>/dev/null || echo 0; }
