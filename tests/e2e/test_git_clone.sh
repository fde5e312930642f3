#!/bin/sh
# test_git_clone.sh - git clients against the mirror: real git and git-lfs.
#
# A git mirror (bare, with LFS objects, branches, tags, refs/pr/1) cloned
# over protocol v2 and v0, full and --depth 1; `git fetch` after a new
# commit receives only the new objects; git lfs pull / fetch --all /
# GIT_LFS_SKIP_SMUDGE=1 clone + pull --include; an empty repository; a
# mirror that is a shallow clone (clones are shallow where it is); a
# model-bin repo cloned
# through its shadow repo (blob ids are the API's); push refused; a repo the
# rules deny, a missing one; a gated repo only the online cache has, relayed
# to its upstream: no token, a bad one, a good one; malformed and oversized
# requests, unknown capabilities; a client that hangs up mid-pack; a repo as
# a submodule.  git fsck on every clone.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_import.sh"

export GIT_TERMINAL_PROMPT=0 GIT_ASKPASS=/bin/false SSH_ASKPASS=/bin/false

UP=$T/up/acme/tiny
make_upstream "$UP"
git -C "$UP" tag lw HEAD~1
M=$T/mirrors/models/acme
mkdir -p "$M"
git clone -q --mirror "file://$UP" "$M/tiny.git" 2>/dev/null
(cd "$M/tiny.git" && git lfs fetch --all >/dev/null 2>&1)
git clone -q --mirror "file://$UP" "$M/secret.git" 2>/dev/null
git clone -q "file://$UP" "$M/plain" 2>/dev/null
GIT_LFS_SKIP_SMUDGE=1 git clone -q --bare "file://$UP" "$M/nolfs.git" 2>/dev/null
# a repo big enough that a pack outgrows the socket buffers and the 1 MiB ring
mkdir -p "$T/bigsrc" && (
	cd "$T/bigsrc" && git init -q . &&
	for i in 1 2 3 4 5 6 7 8 9 10 11 12; do rand "f$i.dat" 600; done &&
	git add -A && git commit -q -m big
) >/dev/null
git clone -q --bare "file://$T/bigsrc" "$M/big.git" 2>/dev/null
git init -q --bare "$M/empty.git"
# a mirror that is itself a shallow clone: two commits of main's history
git clone -q --bare --depth 2 "file://$UP" "$M/shallow.git" 2>/dev/null

cat >"$T/mir.toml" <<EOF
[basic]
repos-path = "$T/store"
mirrors-path = ["$T/mirrors"]

[accessibility]
offline = true
$(proxy_rules +'*' -acme/secret)
EOF
start_server mir serve -c "$T/mir.toml" || exit 1
U=$mir_URL

# fsck_ok DIR WHAT: git fsck of a clone passes
fsck_ok() { check "$2: git fsck" git -C "$1" fsck --no-progress; }
head_of() { git --git-dir="$M/tiny.git" rev-parse "$1"; }

# ---- clone, v2 and v0 ------------------------------------------------------------
for v in 2 0; do
	C=$T/c$v
	check "protocol v$v: clone" git -c protocol.version=$v clone -q "$U/acme/tiny" "$C"
	is "$(git -C "$C" rev-parse HEAD)" "$(head_of main)" "v$v: HEAD is the mirror's main"
	is "$(git -C "$C" rev-parse origin/dev)" "$(head_of dev)" "v$v: branch dev"
	is "$(git -C "$C" tag | tr '\n' ' ')" "lw v1.0 " "v$v: the tags"
	is "$(git -C "$C" cat-file -t v1.0)" tag "v$v: v1.0 is the annotated tag object"
	is "$(git -C "$C" rev-parse v1.0)" "$(head_of v1.0)" "v$v: with the mirror's id"
	check "v$v: weights.bin smudged to the LFS content" cmp "$C/weights.bin" "$UP/weights.bin"
	check "v$v: data/shard.bin too" cmp "$C/data/shard.bin" "$UP/data/shard.bin"
	fsck_ok "$C" "v$v clone"
done
is "$(git -C "$T/c2" ls-remote origin refs/pr/1 | cut -f1)" "$(head_of refs/pr/1)" \
	"ls-remote shows refs/pr/1"
is "$(git -c protocol.version=0 -C "$T/c0" ls-remote origin refs/tags/v1.0^{} | cut -f1)" \
	"$(head_of 'v1.0^{}')" "v0 advertisement peels v1.0"
check "the .git URL clones too" git clone -q "$U/acme/tiny.git" "$T/dotgit"
fsck_ok "$T/dotgit" ".git URL clone"
check "a repo as a submodule" git -C "$T/dotgit" submodule -q add \
	"$U/acme/tiny" pinned
is "$(git -C "$T/dotgit/pinned" rev-parse HEAD)" "$(head_of main)" "the submodule is at main"
fsck_ok "$T/dotgit/pinned" "submodule"
check "a non-bare mirror's remote branches are branches" \
	env GIT_LFS_SKIP_SMUDGE=1 git clone -q -b dev "$U/acme/plain" "$T/plain"
fsck_ok "$T/plain" "non-bare mirror clone"

# ---- shallow ------------------------------------------------------------------------
for v in 2 0; do
	C=$T/s$v
	check "v$v: clone --depth 1" git -c protocol.version=$v clone -q --depth 1 "$U/acme/tiny" "$C"
	is "$(git -C "$C" rev-list --count HEAD)" 1 "v$v: one commit"
	is "$(cat "$C/.git/shallow")" "$(head_of main)" "v$v: main is the shallow boundary"
	check "v$v: LFS content in a shallow clone" cmp "$C/weights.bin" "$UP/weights.bin"
	fsck_ok "$C" "v$v shallow clone"
done
check "deepen by one" git -C "$T/s2" fetch -q --deepen=1
is "$(git -C "$T/s2" rev-list --count HEAD)" 2 "two commits after --deepen=1"
check "unshallow (v0)" git -c protocol.version=0 -C "$T/s0" fetch -q --unshallow
is "$(git -C "$T/s0" rev-list --count HEAD)" "$(git --git-dir="$M/tiny.git" rev-list --count main)" \
	"all of main after --unshallow"
fsck_ok "$T/s0" "unshallowed clone"

# ---- a repository with no commit yet: cloned empty, as git does ---------------------------
for v in 2 0; do
	git -c protocol.version=$v clone "$U/acme/empty" "$T/empty$v" >"$T/empty.out" 2>&1
	is "$?" 0 "empty repository, v$v: clone"
	like "$(cat "$T/empty.out")" "cloned an empty repository" "v$v: git says it is empty"
	fsck_ok "$T/empty$v" "empty v$v clone"
done

# ---- a mirror that is a shallow clone: clones are shallow where it is -------------------
SH=$M/shallow.git
for v in 2 0; do
	C=$T/sh$v
	check "shallow mirror, v$v: clone" env GIT_LFS_SKIP_SMUDGE=1 git -c protocol.version=$v \
		clone -q "$U/acme/shallow" "$C"
	is "$(cat "$C/.git/shallow")" "$(cat "$SH/shallow")" "v$v: the mirror's shallow commit is the clone's"
	is "$(git -C "$C" rev-list --count HEAD)" 2 "v$v: the mirror's two commits"
	fsck_ok "$C" "shallow mirror v$v clone"
	check "shallow mirror, v$v: clone --depth 1" env GIT_LFS_SKIP_SMUDGE=1 \
		git -c protocol.version=$v clone -q --depth 1 "$U/acme/shallow" "$C-d1"
	check "v$v: then --unshallow" git -c protocol.version=$v -C "$C-d1" fetch -q --unshallow
	is "$(git -C "$C-d1" rev-list --count HEAD)" 2 "v$v: as deep as the mirror"
	is "$(cat "$C-d1/.git/shallow")" "$(cat "$SH/shallow")" "v$v: and shallow where it is"
	fsck_ok "$C-d1" "shallow mirror v$v unshallowed clone"
done

# ---- a new commit in the mirror: fetch gets only what is new -------------------------
old=$(head_of main)
(cd "$UP" && echo "changed" >"sub dir/nested/file with spaces.txt" && git commit -qam change)
git --git-dir="$M/tiny.git" fetch -q "file://$UP" main:main 2>/dev/null
new=$(head_of main)
want=$(git --git-dir="$M/tiny.git" rev-list --objects "$new" "^$old" | wc -l)
for v in 2 0; do
	C=$T/c$v
	before=$(git -C "$C" count-objects -v | sed -n 's/^count: //p')
	check "v$v: git fetch" git -c protocol.version=$v -c fetch.unpackLimit=100000 -C "$C" fetch -q
	after=$(git -C "$C" count-objects -v | sed -n 's/^count: //p')
	is "$((after - before))" "$want" "v$v: fetch received the $want new objects only"
	is "$(git -C "$C" rev-parse origin/main)" "$new" "v$v: origin/main moved"
	fsck_ok "$C" "v$v clone after fetch"
done
check "a shallow clone fetches the new commit" git -C "$T/s2" fetch -q
fsck_ok "$T/s2" "shallow clone after fetch"
git --git-dir="$SH" fetch -q "file://$UP" main:main 2>/dev/null
check "a clone of the shallow mirror fetches the new commit" git -C "$T/sh2" fetch -q
is "$(git -C "$T/sh2" rev-parse origin/main)" "$new" "... origin/main moved"
fsck_ok "$T/sh2" "shallow mirror clone after fetch"

# ---- LFS -------------------------------------------------------------------------------
L=$T/skip
check "GIT_LFS_SKIP_SMUDGE=1 clone" env GIT_LFS_SKIP_SMUDGE=1 git clone -q "$U/acme/tiny" "$L"
like "$(head -c 40 "$L/weights.bin")" "^version https://git-lfs" "weights.bin is a pointer"
check "git lfs pull --include=data/shard.bin" git -C "$L" lfs pull --include=data/shard.bin
check "shard.bin pulled" cmp "$L/data/shard.bin" "$UP/data/shard.bin"
like "$(head -c 40 "$L/weights.bin")" "^version https://git-lfs" "weights.bin still a pointer"
check "git lfs pull" git -C "$L" lfs pull
check "weights.bin pulled" cmp "$L/weights.bin" "$UP/weights.bin"
check "git lfs fetch --all" git -C "$T/c2" lfs fetch --all
is "$(find "$T/c2/.git/lfs/objects" -type f | wc -l)" \
	"$(oids_of "$M/tiny.git" --branches --tags | wc -l)" \
	"every LFS object of the branches' and tags' history arrived"
fsck_ok "$L" "skip-smudge clone"

batch() { # REPO JSON: the batch answer's body; status in $T/batch.status
	curl -s -o "$T/batch.out" -w '%{http_code}' -X POST \
		-H 'Accept: application/vnd.git-lfs+json' \
		-H 'Content-Type: application/vnd.git-lfs+json' \
		--data-binary "$2" "$U/$1.git/info/lfs/objects/batch" >"$T/batch.status"
	cat "$T/batch.out"
}
W=$(sha256 "$UP/weights.bin")
WS=$(stat -c %s "$UP/weights.bin")
out=$(batch acme/tiny '{"operation":"upload","objects":[{"oid":"'"$W"'","size":'"$WS"'}]}')
is "$(cat "$T/batch.status")" 403 "LFS upload is refused"
like "$out" "read-only" "with a message git-lfs shows"
NOPE=0000000000000000000000000000000000000000000000000000000000000000
out=$(batch acme/tiny '{"operation":"download","objects":[{"oid":"'"$NOPE"'","size":3},
	{"oid":"'"$W"'","size":'"$WS"'}]}')
is "$(cat "$T/batch.status")" 200 "a batch with an unknown object is answered"
like "$out" "\"oid\":\"$NOPE\",\"size\":3,\"error\":\\{\"code\":404" "it gets the per-object 404"
like "$out" "\"oid\":\"$W\".*\"href\":\"$U/acme/tiny.git/info/lfs/objects/$W/$WS" \
	"the known one an href on this server"
href=$(printf '%s' "$out" | sed -n 's/.*"href":"\([^"]*\)".*/\1/p')
check "the href serves the object" sh -c "curl -sf '$href' | cmp - '$UP/weights.bin'"
is "$(curl -s -o /dev/null -w '%{http_code}' -r 10-19 "$href")" 206 "with Range"
is "$(curl -s -D - -o /dev/null "$href" | tr -d '\r' | sed -n 's/^[Ee][Tt]ag: //p')" "\"$W\"" \
	"and the sha256 as ETag"
out=$(batch acme/nolfs '{"operation":"download","objects":[{"oid":"'"$W"'","size":'"$WS"'}]}')
like "$out" "\"error\":\\{\"code\":404,\"message\":\"the LFS object $W.*offline" \
	"an object the mirror lacks (offline): per-object 404 saying why"
out=$(batch acme/secret '{"operation":"download","objects":[{"oid":"'"$W"'","size":'"$WS"'}]}')
is "$(cat "$T/batch.status")" 404 "the batch API of a denied repo: 404"

# ---- refused and missing ---------------------------------------------------------------
(cd "$T/c2" && echo x >x.txt && git add x.txt && git commit -qm x)
git -C "$T/c2" push origin HEAD:main >"$T/push.out" 2>&1
is "$?" 128 "push fails"
like "$(cat "$T/push.out")" "remote: This is a read-only mirror" "git shows why"
git clone -q "$U/acme/secret" "$T/secret" >"$T/secret.out" 2>&1
like "$(cat "$T/secret.out")" "repository '$U/acme/secret/' not found" \
	"a repo the rules deny is 'not found' to git"
git clone -q "$U/acme/nope" "$T/nope" >"$T/nope.out" 2>&1
like "$(cat "$T/nope.out")" "repository '$U/acme/nope/' not found" "so is a missing one"

# ---- hostile requests --------------------------------------------------------------------
post() { # PATH BODY-FILE [curl args]: the answer's body; status in $T/post.status
	f=$2
	shift 2
	curl -s -o "$T/post.out" -w '%{http_code}' -X POST "$@" \
		-H 'Content-Type: application/x-git-upload-pack-request' \
		--data-binary "@$f" "$U/acme/tiny/git-upload-pack" >"$T/post.status"
	cat "$T/post.out"
}
printf 'zzzzgarbage' >"$T/garbage"
like "$(post x "$T/garbage")" "^[0-9a-f]{4}ERR protocol error: bad pkt-line length" \
	"a malformed pkt-line: an ERR line git shows"
printf '0032want 0123456789abcdef0123456789abcdef01234567\n00000009done\n' >"$T/notours"
like "$(post x "$T/notours")" "ERR upload-pack: not our ref 0123456789abcdef" \
	"a want of an unknown object: not our ref"
{
	l="want $(head_of main) side-band-64k ofs-delta frobnicate=3 no-such-capability agent=t/1"
	printf '%04x%s\n00000009done\n' $((${#l} + 5)) "$l"
} >"$T/unknowncap"
post x "$T/unknowncap" >/dev/null
is "$(cat "$T/post.status")" 200 "v0: unknown capabilities are ignored (as git does)"
check "... and the pack is sent" grep -q PACK "$T/post.out"
printf '0012command=fetch\n00010014want-ref refs/x\n0000' >"$T/unknownarg"
like "$(post x "$T/unknownarg" -H 'Git-Protocol: version=2')" "ERR fetch: unexpected argument" \
	"an unknown v2 argument: an error"
$PYTHON - "$T/wants.gz" <<'EOF'
import gzip, sys
lines = b"".join(b"%04xwant %040x\n" % (50, i) for i in range(150000)) + b"0000"
open(sys.argv[1], "wb").write(gzip.compress(lines))
EOF
like "$(post x "$T/wants.gz" -H 'Content-Encoding: gzip')" "ERR too many want lines" \
	"150000 wants (gzip): refused with a message"
head -c 9000000 /dev/zero | gzip >"$T/zeros.gz"
like "$(post x "$T/zeros.gz" -H 'Content-Encoding: gzip')" "ERR .*larger than" \
	"a gzip body that inflates past the bound: refused"
head -c $((2 * 1024 * 1024)) /dev/zero >"$T/huge"
post x "$T/huge" >/dev/null
is "$(cat "$T/post.status")" 413 "a 2 MiB request body: 413"

# a client that reads a little of a pack and hangs up; the server carries on
bigmain=$(git --git-dir="$M/big.git" rev-parse HEAD)
$PYTHON - "${U#http://}" "$bigmain" <<'EOF' >"$T/hangup.out" 2>&1
import socket, sys
host, port = sys.argv[1].split(":")
def pkt(s):
    return b"%04x" % (len(s) + 4) + s
body = pkt(b"command=fetch\n") + b"0001" + pkt(b"want %s\n" % sys.argv[2].encode()) + \
    pkt(b"done\n") + b"0000"
s = socket.create_connection((host, int(port)))
s.sendall(b"POST /acme/big/git-upload-pack HTTP/1.1\r\nHost: x\r\nGit-Protocol: version=2\r\n"
          b"Content-Type: application/x-git-upload-pack-request\r\n"
          b"Content-Length: %d\r\n\r\n" % len(body) + body)
got = 0
while got < 100000:
    d = s.recv(65536)
    if not d:
        break
    got += len(d)
s.close()
print("read", got)
EOF
like "$(cat "$T/hangup.out")" "^read 1[0-9]{5}" "a client read 100 kB of a pack and hung up"
whole() { curl -s "$U/metrics" | sed -n 's/^hfmirror_git_whole_packs_total //p'; }
w0=$(whole)
check "the next clone of that repo works" git clone -q "$U/acme/big" "$T/big"
fsck_ok "$T/big" "big clone"
# that repo is one pack of what a clone wants: sent as it is (tiny.git's
# refs/pr/1 is not cloned, so its clones were packed again)
is "$(($(whole) - w0))" 1 "a clone of a one-pack mirror sends the pack as it is"
check "that clone has the mirror's pack" cmp "$(ls "$T/big"/.git/objects/pack/*.pack)" \
	"$(ls "$M/big.git"/objects/pack/*.pack)"

# ---- model-bin: a clone of a plain directory -------------------------------------------------
MB=$T/mb/acme/files
mkdir -p "$MB/sub"
printf '*.bin filter=lfs diff=lfs merge=lfs -text\n' >"$MB/.gitattributes"
echo '{"model_type": "files"}' >"$MB/config.json"
echo nested >"$MB/sub/a.txt"
rand "$MB/weights.bin" 700
start_server mb model-bin --path "$T/mb" --index "$T/mbindex/idx.bin" --rescan-interval 1 || exit 1
check "model-bin: clone" git clone -q "$mb_URL/acme/files" "$T/mbc"
git -C "$T/mbc" ls-tree -r HEAD | awk '{ print $4, $3 }' | sort >"$T/git.ids"
curl -s "$mb_URL/api/models/acme/files/tree/main?recursive=true" |
	$PYTHON -c 'import json,sys; [print(e["path"], e["oid"]) for e in json.load(sys.stdin) if e["type"] == "file"]' |
	sort >"$T/api.ids"
check "model-bin: every blob id is the API's" cmp "$T/git.ids" "$T/api.ids"
is "$(wc -l <"$T/git.ids")" 4 "model-bin: the four files"
check "model-bin: LFS content" cmp "$T/mbc/weights.bin" "$MB/weights.bin"
fsck_ok "$T/mbc" "model-bin clone"
is "$(find "$T/mbindex/shadow" -name HEAD -path '*acme/files.git*' | wc -l)" 1 \
	"model-bin: the shadow is next to the hash index"
first=$(git -C "$T/mbc" rev-parse HEAD)
echo more >"$MB/sub/b.txt"
touch -d '+1 minute' "$MB/sub"
wait_for sh -c "curl -s '$mb_URL/api/models/acme/files/tree/main/sub' | grep -q b.txt"
check "model-bin: fetch after a change" git -C "$T/mbc" pull -q --ff-only
is "$(git -C "$T/mbc" rev-parse HEAD~1)" "$first" "model-bin: the new commit's parent is the old"
check "model-bin: the new file" test -f "$T/mbc/sub/b.txt"
fsck_ok "$T/mbc" "model-bin clone after the change"

# ---- a gated repo only the online cache has: relayed to the upstream --------------------------
G=$T/upmirrors/models/acme
mkdir -p "$G"
git clone -q --mirror "file://$UP" "$G/gated.git" 2>/dev/null
(cd "$G/gated.git" && git lfs fetch --all >/dev/null 2>&1)
start_server hub mirror -m "$T/upmirrors" --offline --repos-path "$T/hubstore" || exit 1
start_relay "${hub_URL##*:}"
echo "gated acme/gated hf_good" >"$T/relay/gated"
start_server px proxy --hf-scheme http --hf-netloc "$RELAY" --repos-path "$T/pxstore" || exit 1
P=${px_URL#http://}
git clone -q "http://$P/acme/gated" "$T/g0" >"$T/g0.out" 2>&1
like "$(cat "$T/g0.out")" "terminal prompts disabled|Authentication failed" \
	"gated, no token: git asks for credentials and fails"
git clone -q "http://user:hf_bad@$P/acme/gated" "$T/g1" >"$T/g1.out" 2>&1
like "$(cat "$T/g1.out")" "Authentication failed for" "gated, a bad token: Authentication failed"
check "gated, the good token: clone" git clone -q "http://user:hf_good@$P/acme/gated" "$T/g2"
is "$(git -C "$T/g2" rev-parse HEAD)" "$(git --git-dir="$G/gated.git" rev-parse main)" \
	"relayed: upstream's history"
check "relayed: LFS content through the cache" cmp "$T/g2/weights.bin" "$UP/weights.bin"
check "relayed: --depth 1 over v0" git -c protocol.version=0 clone -q --depth 1 \
	"http://user:hf_good@$P/acme/gated" "$T/g3"
# the LFS routes of the gated repo: HTTP Basic, the token as the password
GW=$(sha256 "$UP/weights.bin")
GB='{"operation":"download","objects":[{"oid":"'"$GW"'","size":'"$(stat -c %s "$UP/weights.bin")"'}]}'
gbatch() { # [curl args]: status; headers in $T/gb.h, body in $T/gb.out
	curl -s -o "$T/gb.out" -D "$T/gb.h" -w '%{http_code}' -X POST "$@" \
		-H 'Content-Type: application/vnd.git-lfs+json' --data-binary "$GB" \
		"http://$P/acme/gated.git/info/lfs/objects/batch"
}
is "$(gbatch)" 401 "gated LFS batch, no token: 401"
check "... with LFS-Authenticate, so git-lfs asks its credential helper" grep -qi '^LFS-Authenticate: Basic' "$T/gb.h"
like "$(gbatch -u user:hf_bad)" "^40[13]$" "gated LFS batch, a bad token: refused"
is "$(gbatch -u user:hf_good)" 200 "gated LFS batch, the good token: 200"
ghref=$(sed -n 's/.*"href":"\([^"]*\)".*/\1/p' "$T/gb.out")
like "$(curl -s -o /dev/null -w '%{http_code}' "$ghref")" "^40[134]$" "its href without the token: refused"
check "its href with the token: the bytes" sh -c "curl -sf -u user:hf_good '$ghref' | cmp - '$UP/weights.bin'"
is "$(curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Git-Protocol: version=2' \
	-H 'Content-Type: application/x-git-upload-pack-request' --data-binary @"$T/unknownarg" \
	"http://$P/acme/gated/git-upload-pack")" 401 "gated upload-pack, no token: 401"
fsck_ok "$T/g2" "relayed clone"
fsck_ok "$T/g3" "relayed shallow clone"

done_testing
