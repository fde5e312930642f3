#!/bin/sh
# test_access_rules.sh - a repo the proxy rules deny is not served by any
# route, under any spelling of its name, from any source, nor through a
# symlink or a folder of another repo.
#
# One server (`hfmirror serve`) holds a model-bin tree, git mirrors and the
# online cache; its upstream (another hfmirror behind hubcase.py) looks repo
# ids up case-insensitively, as the Hub does.  The rules deny acme/secret
# (model-bin), acme/gsecret (a bare git mirror gsecret.git), acme/usecret
# (only upstream has it) and the canonical repo canon2.  Every route
# (resolve, raw, info, revision, tree, paths-info, refs, commits, auth-check,
# the web page, the listings, git's info/refs and upload-pack, the LFS batch
# API and its objects) is asked for every spelling of those names:
# upper and mixed case, %-escaped letters, %2f between org and name, a
# leading //, a trailing .git.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fixtures.sh"
git_identity "$T/home"

# ---- the model-bin tree -------------------------------------------------------------
R=$T/root
put "$R/acme/open/a.txt" "open a"
put "$R/acme/secret/s.txt" "XYZZY-MB"
put "$R/datasets/acme/secret/s.txt" "XYZZY-DS"
put "$R/canon2/c.txt" "XYZZY-CANON"
put "$R/canon2/sub/d.txt" "XYZZY-SUB"
put "$R/canon3/x.txt" "canon3 x"
put "$R/.store/v3/w.txt" "versioned w"
# symlinks that stay in their repo
ln -s a.txt "$R/acme/open/same.txt"
mkdir -p "$R/acme/open/sub"
ln -s ../a.txt "$R/acme/open/sub/up.txt"
ln -s "$R/acme/open/a.txt" "$R/acme/open/abs-same.txt"
# symlinks from an allowed repo into a denied one
ln -s ../secret/s.txt "$R/acme/open/leak.txt"
ln -s "$R/acme/secret/s.txt" "$R/acme/open/abs-leak.txt"
ln -s ../secret "$R/acme/open/leakdir"
ln -s ../canon2/c.txt "$R/canon3/leak.txt"
ln -s ../canon2/sub "$R/canon3/leaksub"
# repo folders that are symlinks: into a denied repo, an org through another
# name, and (allowed) into storage that is no repo
ln -s secret "$R/acme/alias"
ln -s acme "$R/aliasorg"
ln -s ../.store/v3 "$R/acme/versioned"

# ---- git mirrors ------------------------------------------------------------------------
SRC=$T/src
mkdir -p "$SRC"
(cd "$SRC" && git init -q -b main . && echo "XYZZY-GIT" >g.txt && git add g.txt &&
	git commit -q -m first) || not_ok "make the git repo"
MIR=$T/mirrors
git clone -q --bare "$SRC" "$MIR/models/acme/gsecret.git"
git clone -q --bare "$SRC" "$MIR/models/acme/gopen.git"

# ---- the upstream: case-insensitive, as the Hub --------------------------------------------
put "$T/up/acme/usecret/u.txt" "XYZZY-UP"
put "$T/up/acme/uopen/u.txt" "upstream open"
start_server up model-bin --path "$T/up" --index "$T/up.idx" || exit 1
$PYTHON "$SRCDIR/tests/e2e/hubcase.py" "$T/hubcase.port" "${up_URL##*:}" &
SERVER_PIDS="$SERVER_PIDS $!"
wait_for test -s "$T/hubcase.port"
HUB=127.0.0.1:$(cat "$T/hubcase.port")

serve_toml "$T/store" "$MIR" "$HUB" "$R" +'*' +'*/*' -acme/secret -acme/gsecret -acme/usecret \
	-canon2 >"$T/s.toml"
start_server s serve -c "$T/s.toml" --index "$T/idx" || exit 1
S=$s_URL

# ---- helpers ----------------------------------------------------------------------------------
# ask METHOD URL [curl args]: "STATUS CODE" (CODE: X-Error-Code or -); body in
# $T/b.  POST sends a paths-info form: paths=FILE with FILE from $PATHS;
# RAW is a POST of what the curl args say.
ask() {
	m=$1 u=$2
	shift 2
	rm -f "$T/h" "$T/b"
	case $m in
	HEAD) curl -s -I -o /dev/null -D "$T/h" --max-time 60 --path-as-is "$@" "$u" ;;
	POST) curl -s -o "$T/b" -D "$T/h" --max-time 60 --path-as-is -d "paths=${PATHS:-a.txt}" \
		"$@" "$u" ;;
	RAW) curl -s -o "$T/b" -D "$T/h" --max-time 60 --path-as-is -X POST "$@" "$u" ;;
	*) curl -s -o "$T/b" -D "$T/h" --max-time 60 --path-as-is "$@" "$u" ;;
	esac
	c=$(hdr "$T/h" X-Error-Code 2>/dev/null)
	echo "$(status "$T/h" 2>/dev/null) ${c:--}"
}
# The files of denied repos hold this word; no answer may.
no_secret() { ! grep -q XYZZY "$T/b" 2>/dev/null; }

# denied NAME FILE [PREFIX]: every route for the repo spelled NAME (as it goes
# in a URL) is a miss and shows nothing of it; PREFIX is "" or "datasets/"
denied() {
	v=$1 f=$2 p=${3:-}
	api=/api/models
	[ "$p" = datasets/ ] && api=/api/datasets
	# a leading // belongs before the whole path
	lead=
	case $v in //*) lead=/ v=${v#//} ;; esac
	for q in "HEAD $lead/$p$v/resolve/main/$f" "GET $lead/$p$v/resolve/main/$f" \
		"HEAD $lead/$p$v/raw/main/$f" "GET $lead/$p$v/raw/main/$f" \
		"GET $lead$api/$v" "GET $lead$api/$v/revision/main" \
		"GET $lead$api/$v/tree/main" "GET $lead$api/$v/tree/main?recursive=true" \
		"POST $lead$api/$v/paths-info/main" "GET $lead$api/$v/refs" \
		"GET $lead$api/$v/commits/main" "GET $lead$api/$v/auth-check" \
		"GET $lead/$p$v" "GET $lead/$p$v/tree/main"; do
		got=$(PATHS=$f ask ${q%% *} "$S${q#* }")
		case $v in
		*%2[fF]*) like "$got" "^4[0-9][0-9] " "$q: refused" ;;
		*) is "$got" "404 RepoNotFound" "$q: RepoNotFound" ;;
		esac
		check "$q: nothing of the repo in the answer" no_secret
	done
	# git clients: "not found" (git's own wording follows from the 404)
	for q in "GET $lead/$p$v/info/refs?service=git-upload-pack" \
		"GET $lead/$p$v/info/refs?service=git-receive-pack" \
		"POST $lead/$p$v/git-upload-pack" \
		"POST $lead/$p$v/info/lfs/objects/batch" \
		"GET $lead/$p$v/info/lfs/objects/$LFSOBJ"; do
		case $q in
		*/batch) got=$(ask RAW "$S${q#* }" -H "Content-Type: application/vnd.git-lfs+json" \
			--data-binary "$LFSBATCH") ;;
		POST*) got=$(ask RAW "$S${q#* }" -H "Git-Protocol: version=2" \
			-H "Content-Type: application/x-git-upload-pack-request" \
			--data-binary "$UPLOADREQ") ;;
		*) got=$(ask GET "$S${q#* }") ;;
		esac
		case $q in
		*receive-pack) like "$got" "^4[0-9][0-9] " "$q: refused" ;;
		*) case $v in
			*%2[fF]*) like "$got" "^4[0-9][0-9] " "$q: refused" ;;
			*) like "$got" "^404 " "$q: not found" ;;
			esac ;;
		esac
		check "$q: nothing of the repo in the answer" no_secret
	done
}
# what the git routes get: a v2 ls-refs, an LFS batch and object of any id
UPLOADREQ=$(printf '0014command=ls-refs\n0001000bsymrefs0000')
LFSOBJ=$(printf '%064d' 0)/5
LFSBATCH='{"operation":"download","objects":[{"oid":"'"$(printf '%064d' 0)"'","size":5}]}'

# variants ORG NAME: the spellings of ORG/NAME a client could send
variants() {
	o=$1 n=$2
	first=$(printf %s "$o" | cut -c1)
	hex=$(printf %s "$first" | od -An -tx1 | tr -d ' \n')
	echo "$o/$n"
	echo "$(echo "$o" | tr a-z A-Z)/$n"
	echo "$o/$(echo "$n" | tr a-z A-Z)"
	echo "$(echo "$first" | tr a-z A-Z)$(echo "$o" | cut -c2-)/$n"
	echo "%$hex$(echo "$o" | cut -c2-)/$n"
	echo "$o/%$(printf %s "$n" | cut -c1 | od -An -tx1 | tr -d ' \n')$(echo "$n" | cut -c2-)"
	echo "$o%2f$n"
	echo "$o%2F$n"
	echo "//$o/$n"
	echo "$o/$n.git"
	echo "$(echo "$o" | tr a-z A-Z)/$n.git"
}

# ---- the controls: what is allowed is served ---------------------------------------------
for q in /acme/open/resolve/main/a.txt /acme/gopen/resolve/main/g.txt \
	/acme/uopen/resolve/main/u.txt /canon3/resolve/main/x.txt /api/models/acme/open \
	/acme/open.git/resolve/main/a.txt /%61cme/open/resolve/main/a.txt \
	//acme/open/resolve/main/a.txt /acme/versioned/resolve/main/w.txt; do
	is "$(ask GET "$S$q")" "200 -" "allowed: GET $q: 200"
done
like "$(ask GET "$S/api/models/acme/open.git")" "^200 " "allowed: /api/models/acme/open.git: 200"
like "$(cat "$T/b")" '"id":"acme/open"' "... its id is acme/open, without .git"
like "$(ask GET "$S/api/models/acme/gopen.git")" "^200 " "allowed: a bare mirror named gopen.git as acme/gopen.git"
like "$(cat "$T/b")" '"id":"acme/gopen"' "... its id is acme/gopen"
for q in /acme/open/info/refs?service=git-upload-pack /acme/gopen.git/info/refs?service=git-upload-pack \
	/%61cme/gopen/info/refs?service=git-upload-pack; do
	like "$(ask GET "$S$q")" "^200 " "allowed: git: GET $q: 200"
done
like "$(ask RAW "$S/acme/gopen/git-upload-pack" -H "Git-Protocol: version=2" \
	-H "Content-Type: application/x-git-upload-pack-request" --data-binary "$UPLOADREQ")" "^200 " \
	"allowed: git: ls-refs of acme/gopen: 200"
like "$(cat "$T/b")" "refs/heads/main" "... lists its main"

# ---- every route, every spelling ----------------------------------------------------------
for v in $(variants acme secret); do denied "$v" s.txt; done
for v in $(variants acme secret); do denied "$v" s.txt datasets/; done
for v in $(variants acme gsecret); do denied "$v" g.txt; done
for v in $(variants acme usecret); do denied "$v" u.txt; done
for v in canon2 CANON2 Canon2 %63anon2 //canon2 canon2.git CANON2.git; do denied "$v" c.txt; done

# ---- folders of a canonical repo are not repos --------------------------------------------
for v in canon2/sub CANON2/sub canon2/SUB %63anon2/sub //canon2/sub canon2/sub.git; do
	denied "$v" d.txt
done
is "$(ask GET "$S/canon3/sub/resolve/main/x.txt")" "404 RepoNotFound" \
	"a folder of an allowed canonical repo is no repo either"

# ---- symlinks ----------------------------------------------------------------------------------
for f in same.txt sub/up.txt abs-same.txt; do
	is "$(ask GET "$S/acme/open/resolve/main/$f")" "200 -" "symlink within its repo: $f: 200"
	is "$(cat "$T/b")" "open a" "... the target's content"
done
for q in acme/open/resolve/main/leak.txt acme/open/resolve/main/abs-leak.txt \
	acme/open/resolve/main/leakdir/s.txt acme/open/raw/main/leak.txt \
	canon3/resolve/main/leak.txt canon3/resolve/main/leaksub/d.txt; do
	is "$(ask GET "$S/$q")" "404 EntryNotFound" "symlink into a denied repo: /$q: EntryNotFound"
	check "... nothing of it in the answer" no_secret
done
for q in "/api/models/acme/open/tree/main?recursive=true" "/api/models/canon3/tree/main?recursive=true" \
	/api/models/acme/open /api/models/canon3; do
	ask GET "$S$q" >/dev/null
	check "$q: lists no symlink into another repo" sh -c "! grep -q leak '$T/b'"
done
PATHS=leak.txt ask POST "$S/api/models/acme/open/paths-info/main" -d paths=leakdir >/dev/null
is "$(cat "$T/b")" "[]" "paths-info: symlinks into another repo are not there"
for v in acme/alias aliasorg/secret ALIASORG/secret; do denied "$v" s.txt; done

# ---- listings ------------------------------------------------------------------------------------
ask GET "$S/api/models" >/dev/null
ids=$($PYTHON -c 'import json,sys; print(" ".join(sorted(m["id"] for m in json.load(open(sys.argv[1])))))' "$T/b")
# acme/uopen came through the cache above: a cache-only repo, listed as the others
is "$ids" "acme/gopen acme/open acme/uopen acme/versioned canon3" "/api/models lists exactly the allowed repos"
ask GET "$S/api/datasets" >/dev/null
is "$(cat "$T/b")" "[]" "/api/datasets: the denied dataset is not listed"
ask GET "$S/api/models?search=secret" >/dev/null
is "$(cat "$T/b")" "[]" "/api/models?search=secret: nothing"
ask GET "$S/" >/dev/null
check "the web page lists no denied repo, alias or folder" \
	sh -c "! grep -qiE 'secret|canon2|alias' '$T/b'"

done_testing
