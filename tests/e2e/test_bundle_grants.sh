#!/bin/bash
# test_bundle_grants.sh - grants of gated repos cross the air gap (issue 14; bundle.h,
# grants.h, docs/sync.md).  Outside: `hfmirror sync` fills a store with a gated repo (the
# relay plays the Hub: acme/gated is gated, token hf_good); `hfmirror grant` grants it to
# alice, grants and revokes carol; export writes grant and revoke records of the repos it
# carries, and only of those.  Inside: a running `proxy --offline` with local tokens; the
# import merges the grants and the same server, not restarted, serves the gated file to
# alice (200), refuses bob (403 GatedRepo), anonymous (401) and carol, whose earlier inside
# grant the outside's later revoke took away.  A second import of the same bundle leaves
# the grants file as it was; an older bundle does not bring a revoked grant back;
# --grant-users maps names, --no-grants leaves them out; a bundle with a bad grant record,
# or a grant before any repo record, is refused with the line, and nothing is published.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_import.sh"
. "$(dirname "$0")/lib_sync.sh"
. "$(dirname "$0")/lib_bundle.sh"

UP=$T/up/models/acme
make_upstream "$UP/gated"
start_git_hub 'gated acme/gated hf_good' || exit 1
G=$IN/meta/grants.jsonl

# ---- outside: sync the gated repo with the token; grants by the admin -------------------
cat >"$T/outside.toml" <<EOF
[basic]
repos-path = "$OUT"
hf-scheme = "http"
hf-netloc = "$RELAY"
EOF
printf '[[repo]]\nid = "acme/gated"\n' >"$T/sync.toml"
echo hf_good >"$T/token"
start_server outside proxy -c "$T/outside.toml" --access-log off || exit 1
is "$("$HFMIRROR" sync -c "$T/outside.toml" -m "$T/sync.toml" --token-file "$T/token" \
	>"$T/sync.out" 2>"$T/sync.err"; echo $?)" 0 "outside: sync of the gated repo with the token"
stop_server outside
check "outside: the repo is marked gated" grep -q '^gated' "$OUT/meta/models/acme/gated/access"

# users inside; the inside's admin grants carol first (the outside revokes her later)
TOK=$T/tokens.jsonl
for u in alice bob carol ann; do
	"$HFMIRROR" token --tokens "$TOK" add "$u" >"$T/$u.tok" 2>>"$T/tok.err"
done
AH="Authorization: Bearer $(cat "$T/alice.tok")"
BH="Authorization: Bearer $(cat "$T/bob.tok")"
CH="Authorization: Bearer $(cat "$T/carol.tok")"
new_store "$IN"
check "inside: the admin grants carol" "$HFMIRROR" grant --repos-path "$IN" carol acme/gated

check "outside: grant alice" "$HFMIRROR" grant --repos-path "$OUT" alice acme/gated
check "outside: grant carol" "$HFMIRROR" grant --repos-path "$OUT" carol acme/gated
check "outside: revoke carol" "$HFMIRROR" grant --repos-path "$OUT" --revoke carol acme/gated
check "outside: grant dave a repo the bundle does not carry" \
	"$HFMIRROR" grant --repos-path "$OUT" dave acme/other
is "$("$HFMIRROR" grant --repos-path "$OUT" --list | cut -d' ' -f1-3 | tr '\n' ';')" \
	"alice models/acme/gated admin;dave models/acme/other admin;" "outside: --list shows the grants, not the revoke"
like "$(cat "$OUT/meta/grants.jsonl")" '"user":"carol","repo":"models/acme/gated","via":"admin","time":"[^"]*","revoked":true' \
	"outside: the revoke is kept as a record"

ed25519_key site
check "export a signed bundle of the gated repo" \
	"$HFMIRROR" export -q --repos-path "$OUT" -o "$T/b1" --repo acme/gated --sign "$T/site.pem"
like "$(grep -E '^(grant|revoke) ' "$T/b1/manifest" | cut -d' ' -f1-3 | tr '\n' ';')" \
	'^grant alice admin;revoke carol admin;$' "the manifest: alice's grant and carol's revoke"
like "$(awk '$1 == "repo" { r = $3 } $1 == "grant" || $1 == "revoke" { print r, $1, $2 }' "$T/b1/manifest" | tr '\n' ';')" \
	'^acme/gated grant alice;acme/gated revoke carol;$' "after the repo's record"
check "the manifest: no grant of a repo it does not carry" sh -c "! grep -q dave '$T/b1/manifest'"

# ---- inside: a running offline server; import; the same server sees the grants -----------
start_server inside proxy --offline --repos-path "$IN" --tokens "$TOK" --access-log off || exit 1
U=$inside_URL
F=acme/gated/resolve/main/config.json
check "inside: import under --trust" "$HFMIRROR_IMPORT" --store "$IN" --trust "$T/site.pub" "$T/b1"
like "$(cat "$T/.check.out")" 'grants: 2 records: 1 granted, 1 revoked, 0 already so' "the import says what the grants did"
is "$(curl -s -o "$T/body" -w '%{http_code}' -H "$AH" "$U/$F")" 200 "alice, granted outside: 200 (no restart)"
check "alice: the upstream's bytes" cmp "$T/body" "$UP/gated/config.json"
is "$(curl -s -D "$T/h" -o /dev/null -w '%{http_code}' -H "$BH" "$U/$F")" 403 "bob, no grant: 403"
is "$(hdr "$T/h" X-Error-Code)" GatedRepo "bob: GatedRepo"
is "$(curl -s -D "$T/h" -o /dev/null -w '%{http_code}' "$U/$F")" 401 "anonymous: 401"
is "$(hdr "$T/h" X-Error-Code)" GatedRepo "anonymous: GatedRepo"
is "$(curl -s -o /dev/null -w '%{http_code}' -H "$CH" "$U/$F")" 403 \
	"carol: her inside grant is gone, the outside's revoke is later"
is "$(grep -c '"user":"alice"' "$G")" 1 "the inside's grants file: alice once"
sum1=$(sha256sum <"$G")

check "the same bundle again" "$HFMIRROR_IMPORT" --store "$IN" --trust "$T/site.pub" "$T/b1"
like "$(cat "$T/.check.out")" 'grants: 2 records: 0 granted, 0 revoked, 2 already so' "again: nothing to do"
is "$(grep -c '"user":"alice"' "$G")" 1 "again: alice once"
is "$(sha256sum <"$G")" "$sum1" "again: the grants file unchanged"
like "$("$HFMIRROR" grant --repos-path "$IN" --list)" '^alice models/acme/gated admin [0-9T:.Z-]+$' \
	"inside: grant --list shows alice only"

# an older bundle after a newer one: the later record wins
check "outside: revoke alice" "$HFMIRROR" grant --repos-path "$OUT" --revoke alice acme/gated
check "export the revoke (incremental: grants still carried)" sh -c \
	"'$HFMIRROR' receipt -q --repos-path '$IN' -o '$T/receipt' &&
	 '$HFMIRROR' export -q --repos-path '$OUT' -o '$T/b2.tar' --repo acme/gated --since '$T/receipt'"
check "import it" "$HFMIRROR_IMPORT" --store "$IN" "$T/b2.tar"
is "$(curl -s -o /dev/null -w '%{http_code}' -H "$AH" "$U/$F")" 403 "alice revoked outside: 403 inside"
check "the older bundle again" "$HFMIRROR_IMPORT" --store "$IN" --trust "$T/site.pub" "$T/b1"
is "$(curl -s -o /dev/null -w '%{http_code}' -H "$AH" "$U/$F")" 403 "the older bundle does not bring alice back"
check "inside: the admin grants alice again" "$HFMIRROR" grant --repos-path "$IN" alice acme/gated
check "the revoke's bundle again" "$HFMIRROR_IMPORT" --store "$IN" "$T/b2.tar"
is "$(curl -s -o /dev/null -w '%{http_code}' -H "$AH" "$U/$F")" 200 "the inside's later grant stands"

# ---- names: --grant-users, --no-grants --------------------------------------------------
printf '# outside inside\nalice ann\n' >"$T/users.map"
check "--grant-users: alice outside is ann inside" \
	"$HFMIRROR_IMPORT" --store "$T/s2" --grant-users "$T/users.map" "$T/b1"
like "$(cat "$T/.check.out")" "carol of models/acme/gated is not merged: carol is not a user of --grant-users" \
	"--grant-users: a user it does not name is dropped, with a line"
is "$("$HFMIRROR" grant --repos-path "$T/s2" --list | cut -d' ' -f1,2)" "ann models/acme/gated" \
	"--grant-users: ann has the grant"
check "--no-grants" "$HFMIRROR_IMPORT" --store "$T/s3" --no-grants "$T/b1"
like "$(cat "$T/.check.out")" 'grants: 2 records left out \(--no-grants\)' "--no-grants: says so"
check "--no-grants: no grants file" test ! -e "$T/s3/meta/grants.jsonl"
printf 'alice\n' >"$T/bad.map"
"$HFMIRROR_IMPORT" --store "$T/s3" --grant-users "$T/bad.map" "$T/b1" 2>"$T/badmap.err"
is "$?" 1 "a bad --grant-users line: exit status 1"
like "$(cat "$T/badmap.err")" "--grant-users $T/bad.map:1: line: \"OUTSIDE INSIDE\" \(or \"OUTSIDE -\"\) is expected" \
	"a bad --grant-users line: FILE:LINE: why"

# ---- bad input: refused, nothing published ----------------------------------------------
check "an unsigned directory bundle" "$HFMIRROR" export -q --repos-path "$OUT" -o "$T/b3" --repo acme/gated
STORE=$T/s4
new_store "$STORE"
store_listing "$STORE" >"$T/before"
cp -r "$T/b3" "$T/badtime"
sed -i 's/^\(grant alice admin\) .*/\1 yesterday/; s/^\(revoke alice admin\) .*/\1 yesterday/' "$T/badtime/manifest"
refused "$T/badtime" "$T/badtime: manifest:[0-9]+: (grant|revoke): the time is not YYYY-MM-DDTHH:MM:SS.mmmZ or -" \
	"a grant record with a bad time"
cp -r "$T/b3" "$T/norepo"
sed -i 's/^source .*/&\ngrant alice admin -/' "$T/norepo/manifest"
refused "$T/norepo" "manifest:[0-9]+: grant before any repo record" "a grant of no repo in the bundle"
cp -r "$T/b3" "$T/badname"
sed -i 's/^revoke alice /revoke al%2Fice /' "$T/badname/manifest"
refused "$T/badname" "manifest:[0-9]+: revoke: al/ice is not a user name" "a grant to a bad user name"
printf '{"user":"x"\n' >"$STORE/meta/grants.jsonl"
store_listing "$STORE" >"$T/before"
refused "$T/b3" "$T/b3: its grants cannot be merged: .*grants.jsonl:1: record: not a JSON object" \
	"the store's grants file does not read"
unset STORE

done_testing
