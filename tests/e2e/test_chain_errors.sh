#!/bin/sh
# test_chain_errors.sh - the Hub's error codes for a miss, whatever sources
# stand behind the one that has the repo.
#
# A repo a local source holds (model-bin, a git mirror, a mirror imported
# into the store) is asked for a revision and a file it lacks, alone and with
# the online cache behind it: offline, online when the upstream lacks the
# repo or has it, and online when the upstream fails or cannot be reached.
# A revision miss must be RevisionNotFound and a file miss EntryNotFound with
# X-Repo-Commit, never RepoNotFound nor a 5xx because of what a later source
# said; a repo nobody has is RepoNotFound (or a 5xx when the upstream that
# might have it cannot be asked).  curl checks X-Error-Code on every route,
# the npm client (tests/hfjs/errors.mjs) what a program makes of it.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fixtures.sh"
git_identity "$T/home"

hfjs_ready

# ---- the sources ----------------------------------------------------------------
# model-bin: acme/r, acme/both (the upstream has it too) and acme/m
MB=$T/modelbin
for r in r both m; do put "$MB/acme/$r/a.txt" "model-bin $r"; done

# a git repo with a.txt on main, cloned as git mirrors and imported into a store
SRC=$T/src
mkdir -p "$SRC"
(cd "$SRC" && git init -q -b main . && echo "git a" >a.txt && git add a.txt &&
	git commit -q -m first) || not_ok "make the git repo"
MIR=$T/mirrors
for r in r both g; do git clone -q "$SRC" "$MIR/models/acme/$r"; done
SI=$T/istore
for r in r both i; do
	"$HFMIRROR_IMPORT" --store "$SI" --quiet --name "acme/$r" "$SRC" ||
		not_ok "import $SRC as acme/$r"
done

# the upstream hub: acme/both (with a file no local source has) and acme/up
UP=$T/up
put "$UP/acme/both/a.txt" "upstream both"
put "$UP/acme/both/up-only.txt" "only upstream has this"
put "$UP/acme/up/a.txt" "upstream up"
start_server up model-bin --path "$UP" --index "$T/up.idx" || exit 1
start_relay "${up_URL##*:}"
# an upstream that cannot be reached: a port nothing listens on
DEAD=127.0.0.1:1

# ---- the checks ------------------------------------------------------------------
# ask METHOD URL: "STATUS CODE" of the answer (CODE: X-Error-Code, or -);
# headers in $T/h
ask() {
	case $1 in
	HEAD) curl -s -I -o /dev/null -D "$T/h" --max-time 60 "$2" ;;
	POST) curl -s -o "$T/b" -D "$T/h" --max-time 60 -d paths=a.txt "$2" ;;
	*) curl -s -o "$T/b" -D "$T/h" --max-time 60 "$2" ;;
	esac
	c=$(hdr "$T/h" X-Error-Code)
	echo "$(status "$T/h") ${c:--}"
}

MISS="^404 RepoNotFound$"
DOWN="^50[234] -$"

# misses NAME URL REPO NOREPO: the matrix for REPO (which has a.txt on main)
# on the server at URL; NOREPO is what a repo nobody has gets (a regex).  That
# repo's name is new for every call: the cache remembers upstream's answers.
NONE_N=0
misses() {
	n=$1 u=$2 r=$3 norepo=$4
	NONE_N=$((NONE_N + 1))
	none=acme/none$NONE_N
	is "$(ask GET "$u/$r/resolve/main/a.txt")" "200 -" "$n: GET /$r/resolve/main/a.txt: 200"
	commit=$(hdr "$T/h" X-Repo-Commit)
	for q in "HEAD /$r/resolve/nope/a.txt" "HEAD /$r/raw/nope/a.txt" \
		"GET /api/models/$r/revision/nope" "GET /api/models/$r/tree/nope" \
		"GET /api/models/$r/commits/nope" "POST /api/models/$r/paths-info/nope"; do
		is "$(ask ${q%% *} "$u${q#* }")" "404 RevisionNotFound" "$n: $q: RevisionNotFound"
	done
	is "$(ask HEAD "$u/$r/resolve/main/nope.txt")" "404 EntryNotFound" \
		"$n: HEAD /$r/resolve/main/nope.txt: EntryNotFound"
	is "$(hdr "$T/h" X-Repo-Commit)" "$commit" "$n: ... with X-Repo-Commit of main"
	is "$(ask GET "$u/api/models/$r/tree/main/nope")" "404 EntryNotFound" \
		"$n: GET /api/models/$r/tree/main/nope: EntryNotFound"
	like "$(ask HEAD "$u/$none/resolve/main/a.txt")" "$norepo" \
		"$n: HEAD /$none/resolve/main/a.txt"
	like "$(ask GET "$u/api/models/$none/revision/main")" "$norepo" \
		"$n: GET /api/models/$none/revision/main"
	npm_checks "$n" "$u" "$r" "$([ "$norepo" = "$MISS" ] && echo miss || echo down)" "$none"
}

# npm_checks NAME URL REPO NOREPO NONE: tests/hfjs/errors.mjs, folded into our TAP
npm_checks() {
	(cd "$HFJS" && HFM_URL=$2 HFM_REPO=$3 HFM_LABEL=$1 HFM_NOREPO=$4 HFM_NOREPO_NAME=$5 \
		node errors.mjs) \
		>"$T/npm.out" 2>"$T/npm.err"
	n_lines=0
	while IFS= read -r line; do
		case $line in
		"ok - "*) ok "${line#ok - }"; n_lines=$((n_lines + 1)) ;;
		"not ok - "*) not_ok "${line#not ok - }"; n_lines=$((n_lines + 1)) ;;
		"# "*) diag "${line#\# }" ;;
		esac
	done <"$T/npm.out"
	if [ "$n_lines" -lt 9 ]; then
		not_ok "$1: npm ran every check ($n_lines)"
		diag "$(tail -n 20 "$T/npm.err")"
	fi
}

# upstream_file NAME URL: a file of acme/both only the upstream has; the local
# source answers for main, so the file is not there (the answering source
# serves the files: docs/operator-guide.md, "Order of sources")
upstream_file() {
	is "$(ask HEAD "$2/acme/both/resolve/main/up-only.txt")" "404 EntryNotFound" \
		"$1: a file only the upstream has: EntryNotFound from the local source"
	is "$(ask HEAD "$2/acme/both/resolve/main/a.txt")" "200 -" "$1: acme/both/a.txt: 200"
	# a revision only the upstream has (its commit of main): the cache answers
	ask HEAD "$up_URL/acme/both/resolve/main/a.txt" >/dev/null
	upc=$(hdr "$T/h" X-Repo-Commit)
	is "$(ask GET "$2/acme/both/resolve/$upc/up-only.txt")" "200 -" \
		"$1: a revision only the upstream has: the cache answers"
	is "$(cat "$T/b")" "only upstream has this" "... with the upstream's file"
}

# serve_toml FILE OFFLINE NETLOC [model-bin] [mirrors]: a serve config
serve_toml() {
	f=$1 off=$2 net=$3
	shift 3
	{
		echo "[basic]"
		echo "repos-path = \"$SI\""
		echo "hf-scheme = \"http\""
		echo "hf-netloc = \"$net\""
		case " $* " in *" mirrors "*) echo "mirrors-path = [\"$MIR\"]" ;; esac
		echo "[accessibility]"
		echo "offline = $off"
		case " $* " in *" model-bin "*) printf '[model-bin]\nenable = true\npath = "%s"\n' "$MB" ;; esac
	} >"$f"
}

# ---- each source alone --------------------------------------------------------------
start_server mb model-bin --path "$MB" --index "$T/idx" || exit 1
misses "model-bin" "$mb_URL" acme/r "$MISS"
stop_server mb

start_server cache proxy --hf-scheme http --hf-netloc "$RELAY" --repos-path "$T/cstore" || exit 1
misses "cache online" "$cache_URL" acme/both "$MISS"
relay_mode err500
like "$(ask HEAD "$cache_URL/acme/never/resolve/main/a.txt")" "$DOWN" \
	"cache online, upstream failing: a repo it never saw is a 5xx"
relay_mode pass
# the offline run below serves a.txt from the store: it lands there once verified
check "cache online: a.txt is in the store" wait_for sh -c "find '$T/cstore/objects' -type f | grep -q ."
stop_server cache
start_server cacheoff proxy --offline --hf-scheme http --hf-netloc "$RELAY" --repos-path "$T/cstore" ||
	exit 1
misses "cache offline" "$cacheoff_URL" acme/both "$MISS"
stop_server cacheoff

# ---- a git mirror, then the cache ----------------------------------------------------
start_server goff mirror -m "$MIR" --offline --repos-path "$T/gstore" || exit 1
misses "git + cache offline" "$goff_URL" acme/r "$MISS"
stop_server goff
start_server gon mirror -m "$MIR" --hf-scheme http --hf-netloc "$RELAY" --repos-path "$T/gstore" ||
	exit 1
misses "git + cache (upstream lacks the repo)" "$gon_URL" acme/r "$MISS"
misses "git + cache (upstream has the repo)" "$gon_URL" acme/both "$MISS"
upstream_file "git + cache" "$gon_URL"
relay_mode err500
misses "git + cache (upstream failing)" "$gon_URL" acme/r "$DOWN"
relay_mode pass
stop_server gon
start_server gdead mirror -m "$MIR" --hf-scheme http --hf-netloc "$DEAD" --repos-path "$T/gstore" ||
	exit 1
# an unreachable upstream is not an error inside the gap: a miss is answered as offline
misses "git + cache (upstream unreachable)" "$gdead_URL" acme/r "$MISS"
stop_server gdead

# ---- a mirror imported into the store, then the cache ----------------------------------
start_server ioff mirror --repos-path "$SI" --offline || exit 1
misses "imported + cache offline" "$ioff_URL" acme/i "$MISS"
stop_server ioff
start_server ion mirror --repos-path "$SI" --hf-scheme http --hf-netloc "$RELAY" || exit 1
misses "imported + cache" "$ion_URL" acme/i "$MISS"
misses "imported + cache (upstream has the repo)" "$ion_URL" acme/both "$MISS"
stop_server ion

# ---- model-bin under serve, then the cache ---------------------------------------------
serve_toml "$T/mc.toml" false "$RELAY" model-bin
start_server mc serve -c "$T/mc.toml" --index "$T/idx" || exit 1
misses "model-bin + cache" "$mc_URL" acme/r "$MISS"
misses "model-bin + cache (upstream has the repo)" "$mc_URL" acme/both "$MISS"
upstream_file "model-bin + cache" "$mc_URL"
stop_server mc
serve_toml "$T/mcoff.toml" true "$RELAY" model-bin
start_server mcoff serve -c "$T/mcoff.toml" --index "$T/idx" || exit 1
misses "model-bin + cache offline" "$mcoff_URL" acme/r "$MISS"
stop_server mcoff
serve_toml "$T/mcdead.toml" false "$DEAD" model-bin
start_server mcdead serve -c "$T/mcdead.toml" --index "$T/idx" || exit 1
misses "model-bin + cache (upstream unreachable)" "$mcdead_URL" acme/r "$MISS"
stop_server mcdead

# ---- the whole chain: model-bin, git mirrors, the store's mirrors, the cache -------------
serve_toml "$T/all.toml" false "$RELAY" model-bin mirrors
start_server all serve -c "$T/all.toml" --index "$T/idx" || exit 1
misses "chain, first source" "$all_URL" acme/m "$MISS"
misses "chain, git mirror" "$all_URL" acme/g "$MISS"
misses "chain, imported" "$all_URL" acme/i "$MISS"
misses "chain (upstream has the repo)" "$all_URL" acme/both "$MISS"
is "$(ask HEAD "$all_URL/acme/up/resolve/main/a.txt")" "200 -" "chain: a repo only upstream has: 200"
relay_mode err500
misses "chain, git mirror (upstream failing)" "$all_URL" acme/g "$DOWN"
relay_mode pass
stop_server all
serve_toml "$T/alloff.toml" true "$RELAY" model-bin mirrors
start_server alloff serve -c "$T/alloff.toml" --index "$T/idx" || exit 1
misses "chain offline, git mirror" "$alloff_URL" acme/g "$MISS"
misses "chain offline, imported" "$alloff_URL" acme/i "$MISS"
stop_server alloff

done_testing
