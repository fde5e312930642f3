#!/bin/bash
# test_ui_listing.sh - GET /api/{models,datasets,spaces}: every source's
# repos (model-bin, a git mirror, a repo only the cache knows), search,
# author, filter, sort, direction, limit, cursor pages joined by Link, full,
# bad arguments answered 400 in the Hub's shape, a repo the rules hide left
# out -- with curl, and with the npm client (tests/hfjs/list_check.mjs).
# huggingface_hub (Python) is not a Debian package: its list_models follows
# the same Link header and sends the same arguments.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fixtures.sh"
. "$(dirname "$0")/lib_ui.sh"

hfjs_ready
make_ui_sources || exit 1
start_server ui serve -c "$T/ui.toml" --index "$T/idx" || exit 1
U=$ui_URL

# ids URL: the ids of a listing, one a line
ids() { curl -s --max-time 60 "$1" | $PYTHON -c 'import json,sys; [print(x["id"]) for x in json.load(sys.stdin)]'; }
# pages URL: the ids of every page, following Link rel="next"; the number
# of pages in $T/npages
pages() {
	url=$1 n=0
	: >"$T/pages"
	while [ -n "$url" ] && [ $n -lt 100 ]; do
		curl -s -D "$T/ph" -o "$T/pb" --max-time 60 "$url"
		$PYTHON -c 'import json,sys; [print(x["id"]) for x in json.load(open(sys.argv[1]))]' "$T/pb" >>"$T/pages"
		url=$(hdr "$T/ph" Link | sed -n 's/^<\(.*\)>; rel="next"$/\1/p')
		n=$((n + 1))
	done
	echo $n >"$T/npages"
	cat "$T/pages"
}
lines() { printf '%s\n' "$@"; }

# ---- every source, cache-only repos once the cache has them ---------------------------
LOCAL="acme/gitrepo acme/many acme/odd.Name-1_x acme/tiny canon"
is "$(ids "$U/api/models" | tr '\n' ' ')" "$LOCAL " \
	"models: model-bin's and the git mirror's, by id; the hidden acme/secret left out"
check "the cache learns up/cached-only" warm_cache_only "$U"
is "$(ids "$U/api/models" | tr '\n' ' ')" "$LOCAL up/cached-only up/gated " \
	"models: cache-only repos are listed once the cache holds their metadata; not the private one"
is "$(curl -s -H 'Authorization: Bearer hf_good' "$U/api/models?author=up" | $PYTHON -c 'import json,sys; [print(x["id"]) for x in json.load(sys.stdin)]' | tr '\n' ' ')" \
	"up/cached-only up/gated up/priv " "with the token the upstream accepts, the private repo is listed too"
is "$(curl -s -H 'Authorization: Bearer hf_bad' "$U/api/models?author=up" | $PYTHON -c 'import json,sys; [print(x["id"]) for x in json.load(sys.stdin)]' | tr '\n' ' ')" \
	"up/cached-only up/gated " "with a token it refuses, not"
curl -s "$U/api/models?search=up/gated" >"$T/g.json"
is "$($PYTHON -c 'import json,sys; print(json.load(open(sys.argv[1]))[0]["gated"])' "$T/g.json")" "auto" \
	"a gated repo is listed, marked gated"
is "$(ids "$U/api/models?search=never")" "" "a repo the cache never saw is not listed"
is "$(ids "$U/api/datasets")" "acme/ds" "datasets"
is "$(ids "$U/api/spaces")" "acme/space" "spaces"
curl -s "$U/api/models?search=cached-only" >"$T/co.json"
is "$($PYTHON -c 'import json,sys; j=json.load(open(sys.argv[1]))[0]; print(len(j["sha"]), j["lastModified"][-1], j["author"])' "$T/co.json")" \
	"40 Z up" "the cache-only repo: sha, lastModified, author"

# ---- search, author, filter -----------------------------------------------------------
is "$(ids "$U/api/models?search=TINY")" "acme/tiny" "search: a substring, any case"
is "$(ids "$U/api/models?search=.name-1_")" "acme/odd.Name-1_x" "search: dots, dashes and underscores are plain"
is "$(ids "$U/api/models?author=ACME" | tr '\n' ' ')" "acme/gitrepo acme/many acme/odd.Name-1_x acme/tiny " \
	"author: the owner, any case; canonical repos have none"
is "$(ids "$U/api/models?author=acm")" "" "author: the whole owner, not a prefix"
is "$(ids "$U/api/models?filter=license:mit" | tr '\n' ' ')" "acme/many acme/tiny " \
	"filter: a tag of the model card (license:x)"
is "$(ids "$U/api/models?filter=license:apache-2.0&filter=ui-test")" "acme/odd.Name-1_x" \
	"filter twice: both tags"
is "$(ids "$U/api/models?filter=license:mit&filter=ui-test")" "" "filter twice: no repo has both"
is "$(ids "$U/api/models?pipeline_tag=text-generation")" "acme/odd.Name-1_x" "pipeline_tag"

# ---- sort, direction, pages -------------------------------------------------------------
ALL=$(ids "$U/api/models")
is "$(ids "$U/api/models?sort=id&direction=-1")" "$(echo "$ALL" | LC_ALL=C sort -r)" "sort=id direction=-1: reversed"
curl -s "$U/api/models?sort=lastModified" >"$T/bydate.json"
check "sort=lastModified: newest first" $PYTHON -c '
import json,sys; d=[x["lastModified"] for x in json.load(open(sys.argv[1]))]
sys.exit(d != sorted(d, reverse=True))' "$T/bydate.json"
curl -s "$U/api/models?sort=lastModified&direction=1" >"$T/bydate1.json"
check "sort=lastModified direction=1: oldest first" $PYTHON -c '
import json,sys; d=[x["lastModified"] for x in json.load(open(sys.argv[1]))]
sys.exit(d != sorted(d))' "$T/bydate1.json"
for q in "" "sort=lastModified" "sort=id&direction=-1" "sort=lastModified&direction=1&author=acme"; do
	whole=$(ids "$U/api/models?$q")
	paged=$(pages "$U/api/models?$q&limit=2")
	is "$paged" "$whole" "pages of 2 ($q): the same repos in the same order, each once"
	is "$(cat "$T/npages")" "$(( ($(echo "$whole" | wc -l) + 1) / 2 ))" "pages of 2 ($q): as many pages as needed"
done
curl -s -D "$T/h" -o /dev/null "$U/api/models?limit=2&search=acme&expand=sha"
link=$(hdr "$T/h" Link)
like "$link" "^<$U/api/models\?limit=2&search=acme&expand=sha&cursor=[A-Za-z0-9_%-]+>; rel=\"next\"$" \
	"Link: absolute, the client's arguments kept, a cursor added"
curl -s -D "$T/h" -o /dev/null "$U/api/models?limit=100"
is "$(hdr "$T/h" Link)" "" "the last page has no Link"
is "$(ids "$U/api/models?limit=1000000" | wc -l)" "$(echo "$ALL" | wc -l)" "a huge limit is one full page"

# ---- full ---------------------------------------------------------------------------------
curl -s "$U/api/models?full=true&search=odd" >"$T/full.json"
check "full=true: siblings with the odd file names as they are" $PYTHON -c '
import json,sys; j=json.load(open(sys.argv[1]))[0]; f=[s["rfilename"] for s in j["siblings"]]
sys.exit(not (sys.argv[2] in f and sys.argv[3] + "/" + sys.argv[4] in f and "README.md" in f))' \
	"$T/full.json" "$HOSTILE_FILE" "$HOSTILE_DIR" "$HOSTILE_IN_DIR"
curl -s "$U/api/models" >"$T/plain.json"
check "without full: no siblings" $PYTHON -c '
import json,sys; sys.exit(any("siblings" in x for x in json.load(open(sys.argv[1]))))' "$T/plain.json"

# ---- bad arguments: 400, the Hub's error shape ------------------------------------------------
for q in "sort=size" "direction=2" "direction=up" "limit=0" "limit=-1" "limit=ten" "cursor=%21%21" "cursor=YWJj"; do
	code=$(curl -s -D "$T/h" -o "$T/b" -w '%{http_code}' "$U/api/models?$q")
	is "$code" 400 "$q: 400"
	check "$q: JSON {\"error\"} and X-Error-Message" $PYTHON -c '
import json,sys; e=json.load(open(sys.argv[1]))["error"]; sys.exit(not e or e != sys.argv[2])' \
		"$T/b" "$(hdr "$T/h" X-Error-Message)"
done

# ---- the npm client ------------------------------------------------------------------------------
BULK_N=520
awk -v d="$T/bulk" 'BEGIN { for (i = 0; i < 520; i++) {
	dir = sprintf("%s/bulk/r%04d", d, i); system("mkdir -p " dir)
	f = dir "/a.txt"; print "repo " i > f; close(f) } }'
start_server bulk model-bin --path "$T/bulk" --index "$T/bulk.idx" || exit 1
is "$(ids "$bulk_URL/api/models" | wc -l)" 520 "a mirror with 520 models lists them all on pages of 1000"
(cd "$HFJS" && HFM_URL=$U HFM_MODELS=$(ids "$U/api/models") HFM_GIT_FILE=$GIT_HOSTILE \
	HFM_BULK_URL=$bulk_URL HFM_BULK_N=$BULK_N node list_check.mjs) >"$T/npm.out" 2>"$T/npm.err"
rc=$?
node_tap npm $rc "$T/npm.out" "$T/npm.err"
is "$(grep -c '^ok - ' "$T/npm.out")" 14 "npm: every check ran"

# ---- the upstream gone: the cache-only repo is still listed ----------------------------------
stop_server up
like "$(ids "$U/api/models" | tr '\n' ' ')" "up/cached-only up/gated $" \
	"upstream stopped: the cache-only repo is still listed, from the store"

done_testing
