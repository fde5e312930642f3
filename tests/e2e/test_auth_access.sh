#!/bin/bash
# test_auth_access.sh - local users (issue 14): tokens made by `hfmirror token`,
# whoami-v2 with the npm client and curl, a revoke in force at the next
# request, rules by group hiding a repo on every route and listing,
# anonymous off, gated repos offline by grant, the audit log, no token in
# any log, and the brute-force limit.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fixtures.sh"

hfjs_ready

R=$T/root
printf '{"team": "vision"}\n' | mk "$R/vision/cam/config.json"
det_bytes vw 300000 | mk "$R/vision/cam/w.bin"
printf '{"team": "nlp"}\n' | mk "$R/nlp/bert/config.json"
printf '{"team": "all"}\n' | mk "$R/acme/open/config.json"

TOK=$T/tokens.jsonl
"$HFMIRROR" token --tokens "$TOK" add alice --group vision --fullname "Alice A" >"$T/alice" 2>"$T/tok.err"
is "$?" 0 "token add alice"
"$HFMIRROR" token --tokens "$TOK" add bob --group nlp >"$T/bob" 2>>"$T/tok.err"
ALICE=$(cat "$T/alice") BOB=$(cat "$T/bob")
like "$ALICE" '^hf_[A-Za-z]{34}$' "a token is hf_ and 34 letters"
check "the tokens file holds no token" sh -c "! grep -q -e '$ALICE' -e '$BOB' '$TOK'"
like "$(stat -c %a "$TOK")" '^600$' "the tokens file is 0600"
ALICE_ID=$("$HFMIRROR" token --tokens "$TOK" list | sed -n 's/^  token \(tk_[0-9a-f]*\) .*/\1/p' | head -n 1)
like "$ALICE_ID" '^tk_[0-9a-f]{12}$' "token list shows alice's token id"
like "$("$HFMIRROR" token --tokens "$TOK" list)" 'user bob  groups: nlp' "token list shows users and groups"

cat >"$T/lab.toml" <<EOF
[[accessibility.proxy]]
repo = "*"
allow = true
[[accessibility.proxy]]
repo = "vision/*"
allow = false
[[accessibility.proxy]]
repo = "vision/*"
allow = true
groups = ["vision"]
[[accessibility.proxy]]
repo = "nlp/*"
allow = false
[[accessibility.proxy]]
repo = "nlp/*"
allow = true
groups = ["nlp"]
[auth]
tokens = "$TOK"
anonymous = false
audit-log = "$T/audit.log"
[hfmirror]
access-log = "$T/access.log"
EOF
start_server S model-bin -c "$T/lab.toml" --path "$R" --index "$T/idx.bin" || exit 1
U=$S_URL
AH="Authorization: Bearer $ALICE"
BH="Authorization: Bearer $BOB"

# req URL [curl args...]: body to $T/body, headers to $T/h, prints the status
req() {
	_u=$1
	shift
	curl -s -D "$T/h" -o "$T/body" -w '%{http_code}' --max-time 60 "$@" "$_u"
}
code() { hdr "$T/h" X-Error-Code; }
js_whoami() {
	(cd "$HFJS" && HFM_URL=$U HFM_TOKEN=$1 node whoami.mjs)
}

# ---- whoami ---------------------------------------------------------------------
out=$(js_whoami "$ALICE")
is "$?" 0 "npm whoAmI with alice's token works"
like "$out" '"name":"alice"' "whoAmI: name alice"
like "$out" '"orgs":\[\{[^]]*"name":"vision"' "whoAmI: orgs = her groups"
like "$out" '"role":"read"' "whoAmI: a read token"
like "$out" "\"displayName\":\"$ALICE_ID\"" "whoAmI: the token's id as its name"
is "$(req "$U/api/whoami-v2" -H "$BH")" 200 "curl whoami-v2 with bob's token: 200"
like "$(cat "$T/body")" '"type":"user".*"name":"bob".*"fullname":"bob"' "whoami-v2 shape: type, name, fullname"
is "$(req "$U/api/whoami-v2" -H "Authorization: Bearer hf_nope")" 401 "a wrong token: 401"
like "$(cat "$T/body")" '^\{"error":"Invalid credentials in Authorization header"\}$' "the Hub's error body"
out=$(js_whoami hf_nopeNopeNope)
like "$out" '^error 401' "npm whoAmI with a wrong token: 401"

# ---- anonymous = false ----------------------------------------------------------
is "$(req "$U/api/whoami-v2")" 401 "no token: whoami 401"
is "$(req "$U/acme/open/resolve/main/config.json")" 401 "no token: resolve 401"
like "$(hdr "$T/h" WWW-Authenticate)" 'Basic realm' "401 asks for Basic too (git)"
is "$(req "$U/api/models/acme/open")" 401 "no token: info 401"
is "$(req "$U/api/models")" 401 "no token: listing 401"
is "$(req "$U/")" 401 "no token: web page 401"
is "$(req "$U/healthz")" 200 "no token: /healthz still 200"
is "$(req "$U/readyz")" 200 "no token: /readyz 200 (a load balancer's health check has none)"
is "$(req "$U/acme/open/resolve/main/config.json" -u "git:$ALICE")" 200 "Basic with the token as password: 200"

# ---- rules by group: vision/cam is alice's, hidden from bob on every route -------
routes() {
	echo "resolve $U/vision/cam/resolve/main/config.json"
	echo "raw $U/vision/cam/raw/main/config.json"
	echo "info $U/api/models/vision/cam"
	echo "revision $U/api/models/vision/cam/revision/main"
	echo "tree $U/api/models/vision/cam/tree/main"
	echo "refs $U/api/models/vision/cam/refs"
	echo "commits $U/api/models/vision/cam/commits/main"
	echo "auth-check $U/api/models/vision/cam/auth-check"
	echo "page $U/vision/cam"
}
routes >"$T/routes"
while read -r what url; do
	is "$(req "$url" -H "$AH")" 200 "alice (vision): $what 200"
	is "$(req "$url" -H "$BH")" 404 "bob (nlp): $what 404"
	case $what in page) ;; *) is "$(code)" RepoNotFound "bob: $what is RepoNotFound" ;; esac
done <"$T/routes"
is "$(req "$U/api/models/vision/cam/paths-info/main" -H "$AH" -d paths=config.json)" 200 "alice: paths-info 200"
is "$(req "$U/api/models/vision/cam/paths-info/main" -H "$BH" -d paths=config.json)" 404 "bob: paths-info 404"
is "$(code)" RepoNotFound "bob: paths-info is RepoNotFound"
is "$(req "$U/api/models" -H "$AH")" 200 "alice: listing"
like "$(cat "$T/body")" '"id":"vision/cam"' "alice's listing has vision/cam"
check "alice's listing lacks nlp/bert" sh -c "! grep -q nlp/bert '$T/body'"
req "$U/api/models" -H "$BH" >/dev/null
check "bob's listing lacks vision/cam" sh -c "! grep -q vision/cam '$T/body'"
like "$(cat "$T/body")" '"id":"nlp/bert"' "bob's listing has nlp/bert"
req "$U/" -H "$BH" >/dev/null
check "bob's web page lacks vision/cam" sh -c "! grep -q vision/cam '$T/body'"
req "$U/" -H "$AH" >/dev/null
like "$(cat "$T/body")" 'vision/cam' "alice's web page has vision/cam"

# ---- the audit log --------------------------------------------------------------
is "$(req "$U/vision/cam/resolve/main/w.bin" -H "$AH")" 200 "alice downloads w.bin"
is "$(req "$U/nlp/bert/resolve/main/config.json" -u "x:$BOB")" 200 "bob downloads config.json (Basic)"
is "$(req "$U/vision/cam/resolve/main/w.bin" -H "$AH" -H 'Range: bytes=10-109')" 206 "alice: a Range of 100 bytes"
curl -s -I -H "$AH" "$U/vision/cam/resolve/main/w.bin" >/dev/null
audit() {
	$PYTHON - "$T/audit.log" <<'EOP'
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
got = [f"{l['user']} {l['repo']} {l['path']} {l['bytes']} {l['complete']} {l['revision']} {len(l['commit'])} {l['client']}"
       for l in lines if l['path'] == 'w.bin' or l['repo'] == 'models/nlp/bert']
print("\n".join(got))
EOP
}
wait_for grep -q '"bytes":100,' "$T/audit.log"
is "$(audit)" "alice models/vision/cam w.bin 300000 True main 40 127.0.0.1
bob models/nlp/bert config.json 16 True main 40 127.0.0.1
alice models/vision/cam w.bin 100 True main 40 127.0.0.1" "audit: one line per download, right user and bytes (HEAD is none)"

# ---- git clients: the same identities and group rules (HTTP Basic, token as password)
gurl() { echo "$U/$2" | sed "s|^http://|http://git:$1@|"; }
export GIT_TERMINAL_PROMPT=0 GIT_LFS_SKIP_SMUDGE=1
git ls-remote "$(gurl "$ALICE" vision/cam)" >"$T/ls" 2>"$T/ls.err"
is "$?" 0 "git: alice ls-remote vision/cam"
like "$(cat "$T/ls")" 'refs/heads/main' "git: ... lists main"
git ls-remote "$(gurl "$BOB" vision/cam)" >/dev/null 2>"$T/ls.err"
like "$?" '^[1-9][0-9]*$' "git: bob (nlp) cannot ls-remote vision/cam"
like "$(cat "$T/ls.err")" 'not found|404' "git: ... told the repository is not found"
git ls-remote "$U/vision/cam" >/dev/null 2>"$T/ls.err"
like "$?" '^[1-9][0-9]*$' "git: no token, anonymous off: refused"
git clone -q "$(gurl "$ALICE" vision/cam)" "$T/gclone" 2>"$T/clone.err"
is "$?" 0 "git: alice clones vision/cam"
check "git: ... and the clone is sound (fsck)" git -C "$T/gclone" fsck --no-progress
git clone -q "$(gurl "$BOB" vision/cam)" "$T/gclone2" 2>/dev/null
like "$?" '^[1-9][0-9]*$' "git: bob cannot clone vision/cam"

# ---- revoke: refused at the next request ----------------------------------------
"$HFMIRROR" token --tokens "$TOK" revoke "$ALICE_ID" 2>>"$T/tok.err"
is "$?" 0 "token revoke"
is "$(req "$U/api/whoami-v2" -H "$AH")" 401 "revoked: whoami 401 at once"
out=$(js_whoami "$ALICE")
like "$out" '^error 401' "revoked: npm whoAmI 401"
is "$(req "$U/vision/cam/resolve/main/config.json" -H "$AH")" 401 "revoked: resolve 401"
is "$(req "$U/api/whoami-v2" -H "$BH")" 200 "bob's token still works"
like "$("$HFMIRROR" token --tokens "$TOK" list)" 'token tk_[0-9a-f]+  created [-0-9T:.Z]+  last used ' "list shows created and last used"

# ---- brute force: from another address, bounded, all 401 or 429 -----------------
$PYTHON - "${U#http://}" >"$T/brute" <<'EOP'
import http.client, sys, collections
host, port = sys.argv[1].rsplit(":", 1)
counts = collections.Counter()
conn = None
for i in range(10000):
    if conn is None:
        conn = http.client.HTTPConnection(host, int(port), timeout=30, source_address=("127.0.0.2", 0))
    conn.request("GET", "/api/whoami-v2", headers={"Authorization": f"Bearer hf_guess{i:06d}xxxxxxxxxxxxxxxxxxxxxxxxx"})
    r = conn.getresponse()
    r.read()
    counts[r.status] += 1
    if (r.getheader("Connection") or "").lower() == "close":
        conn.close(); conn = None
print(" ".join(f"{k}:{v}" for k, v in sorted(counts.items())))
EOP
res=$(cat "$T/brute")
like "$res" '^401:[0-9]+ 429:[0-9]+$' "10000 wrong tokens: only 401 and 429 ($res)"
like "$res" '^401:20 ' "only fail-limit (20) of them were checked"
is "$(req "$U/healthz")" 200 "server healthy after the loop"
is "$(req "$U/api/whoami-v2" -H "$BH")" 200 "another address is not limited: bob still gets in"
is "$(curl -s -o /dev/null -w '%{http_code}' --interface 127.0.0.2 -H "$BH" "$U/api/whoami-v2")" 429 \
	"the guessing address gets 429 even for a good token, for the window"
is "$(curl -s -D - -o /dev/null --interface 127.0.0.2 -H "$BH" "$U/api/whoami-v2" | tr -d '\r' | sed -n 's/^Retry-After: //Ip')" 60 \
	"429 says Retry-After: 60"

# ---- gated repos: a grant kept online (upstream-tokens), and given by the admin -----
# The fake Hub (an hfmirror behind the relay) knows carol-hf by her Hub token;
# here she is local carol, whose record says so ("hub").
G=$T/groot
printf '{"model_type": "gated"}\n' | mk "$G/meta/llama/config.json"
det_bytes gw 200000 | mk "$G/meta/llama/w.bin"
"$HFMIRROR" token --tokens "$T/hub.jsonl" add carol-hf >"$T/hubtok" 2>>"$T/tok.err"
HUBTOK=$(cat "$T/hubtok")
"$HFMIRROR" token --tokens "$TOK" add carol --group nlp --hub carol-hf >"$T/carol" 2>>"$T/tok.err"
CAROL=$(cat "$T/carol")
like "$("$HFMIRROR" token --tokens "$TOK" list)" 'user carol hub:carol-hf  groups: nlp' "token add --hub"
start_server up model-bin --path "$G" --index "$T/idx2.bin" --tokens "$T/hub.jsonl" || exit 1
start_relay "${up_URL##*:}"
printf 'gated meta/llama %s\n' "$HUBTOK" >"$T/relay/gated"
start_server online proxy --hf-scheme http --hf-netloc "$RELAY" --repos-path "$T/store" \
	--tokens "$TOK" --upstream-tokens || exit 1
is "$(req "$online_URL/api/whoami-v2" -H "Authorization: Bearer $HUBTOK")" 200 \
	"upstream-tokens: carol's Hub token is local carol"
like "$(cat "$T/body")" '"name":"carol".*"orgs":\[\{[^]]*"name":"nlp"' "with her local groups"
is "$(req "$online_URL/meta/llama/resolve/main/w.bin" -H "Authorization: Bearer $HUBTOK")" 200 \
	"online: carol reads the gated repo with her Hub token"
check "online: the blob is stored" wait_for test -f "$(store_object "$T/store" "$(sha256 "$G/meta/llama/w.bin")")"
check "online: the upstream's yes is kept as carol's grant" \
	grep -q '"user":"carol","repo":"models/meta/llama","via":"upstream"' "$T/store/meta/grants.jsonl"
is "$(req "$online_URL/api/whoami-v2" -H "Authorization: Bearer hf_notAHubToken")" 401 \
	"upstream-tokens: a token the upstream refuses is 401 on whoami"
stop_server online
start_server off proxy --offline --repos-path "$T/store" --tokens "$TOK" --audit-log "$T/audit2.log" || exit 1
O=$off_URL
is "$(req "$O/meta/llama/resolve/main/w.bin" -H "Authorization: Bearer $CAROL")" 200 \
	"offline: carol, with her local token, reads it by the kept grant"
is "$(req "$O/meta/llama/resolve/main/w.bin" -H "$BH")" 403 "offline, bob without a grant: 403"
is "$(code)" GatedRepo "offline, no grant: GatedRepo"
"$HFMIRROR" grant --repos-path "$T/store" bob meta/llama 2>>"$T/tok.err"
is "$?" 0 "hfmirror grant bob meta/llama"
check "the grant is one file under the store's meta/" test -f "$T/store/meta/grants.jsonl"
like "$("$HFMIRROR" grant --repos-path "$T/store" --list)" '^bob models/meta/llama admin ' "grant --list"
is "$(req "$O/meta/llama/resolve/main/w.bin" -H "$BH")" 200 "offline, bob with a grant: 200"
check "offline, bob: same bytes" cmp "$T/body" "$G/meta/llama/w.bin"
is "$(req "$O/meta/llama/resolve/main/w.bin")" 401 "offline, anonymous: 401"
is "$(code)" GatedRepo "offline, anonymous: GatedRepo"
is "$(req "$O/meta/llama/resolve/main/w.bin" -H "Authorization: Bearer $HUBTOK")" 403 \
	"offline, a Hub token (nobody here can check it): 403"
"$HFMIRROR" grant --repos-path "$T/store" --revoke bob meta/llama 2>>"$T/tok.err"
is "$(req "$O/meta/llama/resolve/main/w.bin" -H "$BH")" 403 "grant revoked: 403 at once"
wait_for grep -q '"user":"bob"' "$T/audit2.log"
like "$(head -n 1 "$T/audit2.log")" '"user":"carol"' "offline audit: carol's download first"
like "$(cat "$T/audit2.log")" '"user":"bob","repo":"models/meta/llama","revision":"main".*"path":"w.bin","bytes":200000,"complete":true' \
	"offline audit: bob's download"

# ---- no token in any log --------------------------------------------------------
leaks=$(grep -l -e "$ALICE" -e "$BOB" -e "$CAROL" -e "$HUBTOK" "$T"/*.log "$T"/*.out "$T/audit.log" "$T/audit2.log" \
	"$TOK"* "$T/tok.err" "$T/store/meta/grants.jsonl" 2>/dev/null)
is "$leaks" "" "no log, tokens file or grant holds a token"
check "the access log was written" test -s "$T/access.log"

done_testing
