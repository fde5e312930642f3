# lib_bundle.sh - helpers for the bundle tests (sourced after lib.sh and lib_fixtures.sh).
#
# The outside fills its store from an upstream, exports a bundle; the inside imports it and
# serves it with no route to the upstream.  fill_outside fills the outside through `hfmirror
# proxy` and the npm client (test_bundle_sync.sh fills it with `hfmirror sync`).

# the outside's store and the inside's
OUT=$T/outside-store
IN=$T/inside-store

# fixture_upstream: `up` (up_URL), model-bin over the fixture tree $T/root (its secret
# outside in $T/secret), the upstream fill_outside fills from.
fixture_upstream() {
	make_fixture_tree "$T/root" "$T/secret"
	start_server up model-bin --path "$T/root" --rescan-interval 0
}

# repo_files URL REPO [REV]: the files URL lists for REPO, one path a line.
repo_files() {
	curl -s "$1/api/models/$2/tree/${3:-main}?recursive=true" |
		$PYTHON -c 'import json,sys; print("\n".join(e["path"] for e in json.load(sys.stdin) if e["type"] == "file"))'
}

# repo_ids URL REPO [REV]: path, git id, size and LFS id of every file, sorted: what a
# client checks downloads against.
repo_ids() {
	curl -s "$1/api/models/$2/tree/${3:-main}?recursive=true" |
		$PYTHON -c 'import json,sys
for e in sorted(json.load(sys.stdin), key=lambda e: e["path"]):
    if e["type"] == "file":
        print(e["path"], e["oid"], e["size"], (e.get("lfs") or {}).get("oid", "-"))'
}

# hfjs_snapshot LABEL URL SRCDIR FILES: snapshotDownload of acme/tiny from URL with the npm
# client, every file compared with SRCDIR; its lines become ours.
hfjs_snapshot() {
	(cd "$HFJS" && HFM_URL=$2 HFM_REPO=$3 HFM_FILES=$4 node snapshot.mjs) \
		>"$T/npm-$1.out" 2>"$T/npm-$1.err"
	node_tap "$1" $? "$T/npm-$1.out" "$T/npm-$1.err"
}

# fill_outside STORE: STORE holds acme/tiny's main (files, metadata, lastCommit listings)
# from the upstream at $up_URL, as a client downloading through `hfmirror proxy` leaves it.
fill_outside() {
	printf '[hfmirror]\nmetadata-ttl = 0\n' >"$T/outside.toml"
	start_server outside proxy -c "$T/outside.toml" --hf-scheme http \
		--hf-netloc "${up_URL#http://}" --repos-path "$1" --wait-timeout 30 || return 1
	hfjs_snapshot "fill the outside" "$outside_URL" "$T/root/acme/tiny" \
		"$(repo_files "$up_URL" acme/tiny)"
	stop_server outside
}

# store_listing STORE: every file of STORE but its staging area (tmp/), with its sha256:
# equal listings mean an unchanged store.
store_listing() {
	(cd "$1" && find . -path ./tmp -prune -o -type f -print | LC_ALL=C sort |
		while IFS= read -r f; do printf '%s %s\n' "$(sha256sum <"$f" | cut -c1-64)" "$f"; done)
}

# new_store DIR: an empty store (the layout include/hfm/store.h describes).
new_store() {
	mkdir -p "$1/objects" "$1/tmp" "$1/partial" "$1/meta" "$1/mirrors"
}

# ed25519_key NAME: $T/NAME.pem (private) and $T/NAME.pub (public).
ed25519_key() {
	openssl genpkey -algorithm ed25519 -out "$T/$1.pem" 2>/dev/null &&
		openssl pkey -in "$T/$1.pem" -pubout -out "$T/$1.pub"
}

# manifest_objects BUNDLE_MANIFEST: the oids the bundle carries, sorted.
manifest_objects() {
	awk '$1 == "object" { print $2 }' "$1" | LC_ALL=C sort
}

# refused BUNDLE WANT DESCRIPTION [import args...]: exit status 1, WANT in the message,
# the store unchanged: ${STORE:-$IN} (store_listing) as ${BEFORE:-$T/before} lists it
refused() {
	_b=$1 _want=$2 _what=$3
	shift 3
	"$HFMIRROR_IMPORT" -q --store "${STORE:-$IN}" "$@" "$_b" >"$T/refused.out" 2>&1
	is "$?" 1 "$_what: refused (exit status 1)"
	diag "$(cat "$T/refused.out")"
	like "$(cat "$T/refused.out")" "$_want" "$_what: the message says why"
	store_listing "${STORE:-$IN}" >"$T/after"
	if cmp -s "${BEFORE:-$T/before}" "$T/after"; then
		ok "$_what: the store is unchanged"
	else
		not_ok "$_what: the store is unchanged"
		diag "$(diff "${BEFORE:-$T/before}" "$T/after" | head -n 20)"
	fi
}
