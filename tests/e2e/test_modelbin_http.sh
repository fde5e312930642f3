#!/bin/bash
# test_modelbin_http.sh - model-bin over HTTP, checked with curl against the
# client contract (shared hub-contract.md §0 and §12): the headers Python and
# npm clients read, Range, conditional requests, the Hub's error codes,
# revision spellings, traversal attempts, request limits, the JSON API with
# pagination, the web page, the access log, TLS, and ids that follow changes
# on disk.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fixtures.sh"

ROOT="$T/root"
TINY="$ROOT/acme/tiny"
make_fixture_tree "$ROOT" "$T/outside"

HEX40='^[0-9a-f]{40}$'
DATE_MS='^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z$'

# get NAME [curl args...]: one request; headers in $T/NAME.h, body in
# $T/NAME.b.  --path-as-is so curl sends dot segments untouched.
get() {
	n=$1
	shift
	rm -f "$T/$n.h" "$T/$n.b"
	curl -sS --path-as-is --max-time 60 -D "$T/$n.h" -o "$T/$n.b" "$@" 2>"$T/$n.err" ||
		diag "curl $*: $(cat "$T/$n.err")"
	touch "$T/$n.h" "$T/$n.b"
}

# head_req NAME [curl args...]: a HEAD request (curl -I); headers in
# $T/NAME.h (curl -I writes them to -o too, so the body file means nothing).
head_req() {
	get "$@" -I
}

# head_body_bytes PATH: send HEAD over a raw socket and count what follows
# the headers; curl cannot tell, since it never reads a body after a HEAD.
head_body_bytes() {
	"$PYTHON" - "$U" "$1" <<'EOF'
import socket, sys, urllib.parse
u = urllib.parse.urlsplit(sys.argv[1])
s = socket.create_connection((u.hostname, u.port), timeout=10)
s.sendall(("HEAD %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n"
           % (sys.argv[2], u.netloc)).encode())
data = b""
while True:
    chunk = s.recv(65536)
    if not chunk:
        break
    data += chunk
head, sep, rest = data.partition(b"\r\n\r\n")
print(len(rest) if sep else "no end of headers")
EOF
}

st() { status "$T/$1.h"; }
h() { hdr "$T/$1.h" "$2"; }

# jget FILE EXPR: evaluate a Python expression over the JSON in FILE (as d);
# strings print bare, anything else as JSON.  Prints "ERROR: ..." if the
# file is not JSON, so the assertion that uses it fails with a reason.
jget() {
	"$PYTHON" - "$1" "$2" <<'EOF'
import json, sys
try:
    d = json.load(open(sys.argv[1]))
    r = eval(sys.argv[2])
except Exception as e:
    print("ERROR: %s" % e)
    sys.exit(0)
print(r if isinstance(r, str) else json.dumps(r, sort_keys=True))
EOF
}

same_bytes() { cmp -s "$1" "$2"; }
sha256() { sha256sum <"$1" | cut -c1-64; }
size_of() { stat -L -c %s "$1"; }

# is_hub_error NAME STATUS_REGEX CODE WHAT: status, X-Error-Code, a message
# header, and for GET a JSON body {"error": ...}.
is_hub_error() {
	like "$(st "$1")" "$2" "$4: status"
	is "$(h "$1" X-Error-Code)" "$3" "$4: X-Error-Code"
	like "$(h "$1" X-Error-Message)" '.' "$4: X-Error-Message is set"
	if [ -s "$T/$1.b" ]; then
		like "$(jget "$T/$1.b" 'type(d["error"]).__name__')" '^str$' \
			"$4: JSON body with an error string"
	fi
}

start_server S model-bin --path "$ROOT" --index "$T/idx.bin" || {
	not_ok "server starts"
	done_testing
	exit 1
}
U=$S_URL

# ---- /resolve/ headers --------------------------------------------------

get cfg "$U/acme/tiny/resolve/main/config.json"
COMMIT=$(h cfg X-Repo-Commit)
is "$(st cfg)" 200 "resolve small file: 200"
like "$COMMIT" "$HEX40" "X-Repo-Commit is 40 hex"
is "$(h cfg ETag)" "\"$(git_blob_id "$TINY/config.json")\"" "small file: ETag is the quoted git blob id"
is "$(h cfg Content-Length)" "$(size_of "$TINY/config.json")" "small file: Content-Length"
is "$(h cfg Accept-Ranges)" bytes "Accept-Ranges: bytes"
check "small file: bytes equal the source" same_bytes "$T/cfg.b" "$TINY/config.json"

get w "$U/acme/tiny/resolve/main/weights.bin"
WSHA=$(sha256 "$TINY/weights.bin")
is "$(st w)" 200 "resolve >10 MiB file: 200"
is "$(h w ETag)" "\"$WSHA\"" "LFS by size: ETag is the quoted sha256"
is "$(h w X-Linked-Etag)" "\"$WSHA\"" "LFS by size: X-Linked-Etag"
is "$(h w X-Linked-Size)" "$(size_of "$TINY/weights.bin")" "LFS by size: X-Linked-Size"
is "$(h w Content-Length)" "$(size_of "$TINY/weights.bin")" "LFS by size: Content-Length"
is "$(h w X-Repo-Commit)" "$COMMIT" "LFS file: same X-Repo-Commit"
check "LFS by size: bytes equal the source" same_bytes "$T/w.b" "$TINY/weights.bin"

get tok "$U/acme/tiny/resolve/main/tokenizer.json"
is "$(h tok ETag)" "\"$(git_blob_id "$TINY/tokenizer.json")\"" "5 MiB text file: git blob id (not LFS)"
check "5 MiB text file: bytes equal the source" same_bytes "$T/tok.b" "$TINY/tokenizer.json"

get st "$U/acme/tiny/resolve/main/model.safetensors"
is "$(h st ETag)" "\"$(sha256 "$TINY/model.safetensors")\"" "LFS by .gitattributes: sha256 ETag"
is "$(h st X-Linked-Size)" "$(size_of "$TINY/model.safetensors")" "LFS by .gitattributes: X-Linked-Size"

get sb "$U/acme/tiny/resolve/main/small.bin"
is "$(h sb ETag)" "\"$(sha256 "$TINY/small.bin")\"" "LFS by NUL byte: sha256 ETag"
check "binary file: bytes equal the source" same_bytes "$T/sb.b" "$TINY/small.bin"

get gz "$U/acme/tiny/resolve/main/tokenizer.json" -H 'Accept-Encoding: gzip, deflate, br'
is "$(h gz Content-Encoding | sed 's/^identity$//')" "" "no compression on /resolve/ even when asked"
is "$(h gz Content-Length)" "$(size_of "$TINY/tokenizer.json")" "uncompressed Content-Length with Accept-Encoding: gzip"
is "$(grep -ci '^x-xet' "$T/w.h")" 0 "no X-Xet-* headers"

get nest "$U/acme/tiny/resolve/main/sub/dir/nested%20file.txt"
is "$(st nest)" 200 "nested path with a space: 200"
check "nested path with a space: bytes" same_bytes "$T/nest.b" "$TINY/sub/dir/nested file.txt"

get ds "$U/datasets/acme/ds/resolve/main/data/train.csv"
is "$(st ds)" 200 "dataset file: 200"
check "dataset file: bytes" same_bytes "$T/ds.b" "$ROOT/datasets/acme/ds/data/train.csv"
like "$(h ds X-Repo-Commit)" "$HEX40" "dataset file: X-Repo-Commit"
get sp "$U/spaces/acme/space/resolve/main/app.py"
is "$(st sp)" 200 "space file: 200"
check "space file: bytes" same_bytes "$T/sp.b" "$ROOT/spaces/acme/space/app.py"

get cn "$U/canon/resolve/main/config.json"
is "$(st cn)" 200 "canonical repo (no org) file: 200"
check "canonical repo file: bytes" same_bytes "$T/cn.b" "$ROOT/canon/config.json"

# ---- /raw/ ---------------------------------------------------------------

get rawc "$U/acme/tiny/raw/main/config.json"
is "$(st rawc)" 200 "raw small file: 200"
check "raw small file: same bytes as resolve" same_bytes "$T/rawc.b" "$TINY/config.json"
is "$(h rawc ETag)" "$(h cfg ETag)" "raw small file: same ETag as resolve"
lfs_pointer "$TINY/weights.bin" >"$T/w.pointer"
get raww "$U/acme/tiny/raw/main/weights.bin"
is "$(st raww)" 200 "raw LFS file: 200"
check "raw LFS file: the body is the LFS pointer" same_bytes "$T/raww.b" "$T/w.pointer"
is "$(h raww Content-Length)" "$(size_of "$T/w.pointer")" "raw LFS file: Content-Length is the pointer's"
is "$(h raww ETag)" "\"$(git_blob_id "$T/w.pointer")\"" "raw LFS file: ETag is the pointer's blob id"
head_req rawh "$U/acme/tiny/raw/main/config.json"
is "$(st rawh)" 200 "HEAD raw (npm fileExists): 200"
head_req rawn "$U/acme/tiny/raw/main/nope.json"
is "$(st rawn)" 404 "HEAD raw missing file (npm fileExists): 404"

# ---- HEAD vs GET ---------------------------------------------------------

for f in config.json weights.bin; do
	head_req hd "$U/acme/tiny/resolve/main/$f"
	get gt "$U/acme/tiny/resolve/main/$f"
	is "$(st hd)" 200 "HEAD $f: 200"
	for k in X-Repo-Commit ETag Content-Length X-Linked-Etag X-Linked-Size Accept-Ranges; do
		is "$(h hd $k)" "$(h gt $k)" "HEAD $f: $k as GET"
	done
	is "$(head_body_bytes "/acme/tiny/resolve/main/$f")" 0 "HEAD $f: no body"
done

# ---- Range ---------------------------------------------------------------
D="$TINY/digits.txt" # 1000 bytes

# range_ok NAME RANGE WANT_CONTENT_RANGE OFFSET LEN
range_ok() {
	get "$1" "$U/acme/tiny/resolve/main/digits.txt" -H "Range: $2"
	is "$(st "$1")" 206 "Range $2: 206"
	is "$(h "$1" Content-Range)" "$3" "Range $2: Content-Range"
	is "$(h "$1" Content-Length)" "$5" "Range $2: Content-Length"
	tail -c +$(($4 + 1)) "$D" | head -c "$5" >"$T/$1.want"
	check "Range $2: the right bytes" same_bytes "$T/$1.b" "$T/$1.want"
}
range_ok r1 'bytes=100-' 'bytes 100-999/1000' 100 900
range_ok r2 'bytes=10-19' 'bytes 10-19/1000' 10 10
range_ok r3 'bytes=-100' 'bytes 900-999/1000' 900 100
range_ok r4 'bytes=0-0' 'bytes 0-0/1000' 0 1
range_ok r5 'bytes=990-5000' 'bytes 990-999/1000' 990 10
range_ok r6 'bytes=999-999' 'bytes 999-999/1000' 999 1

get r7 "$U/acme/tiny/resolve/main/digits.txt" -H 'Range: bytes=1000-'
is "$(st r7)" 416 "Range past the end: 416"
is "$(h r7 Content-Range)" 'bytes */1000' "Range past the end: Content-Range bytes */N"

# ranges we do not honour are ignored: the whole file with 200
for r in 'bytes=5-2' 'bytes=0-1,5-6' 'items=0-1' 'bytes=abc' 'bytes='; do
	get r8 "$U/acme/tiny/resolve/main/digits.txt" -H "Range: $r"
	is "$(st r8)" 200 "Range '$r' is ignored: 200"
	check "Range '$r' is ignored: whole file" same_bytes "$T/r8.b" "$D"
done

# the zero-length rule from the contract (§10, §12.3): 200, Content-Length 0,
# Content-Range: bytes */0, so npm's bytes=0-0 probe learns the size
get r9 "$U/acme/tiny/resolve/main/empty.txt" -H 'Range: bytes=0-0'
is "$(st r9)" 200 "zero-length file with Range: 200"
is "$(h r9 Content-Length)" 0 "zero-length file with Range: Content-Length 0"
is "$(h r9 Content-Range)" 'bytes */0' "zero-length file with Range: Content-Range bytes */0"
get r10 "$U/acme/tiny/resolve/main/empty.txt"
is "$(st r10)" 200 "zero-length file: 200"
is "$(h r10 ETag)" '"e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"' "zero-length file: the empty blob id"

# Range on the LFS file reads at an offset of a large fd
W="$TINY/weights.bin"
WS=$(size_of "$W")
get r11 "$U/acme/tiny/resolve/main/weights.bin" -H "Range: bytes=$((WS - 1000))-"
is "$(st r11)" 206 "Range at the end of the LFS file: 206"
is "$(h r11 Content-Range)" "bytes $((WS - 1000))-$((WS - 1))/$WS" "Range on the LFS file: Content-Range"
tail -c 1000 "$W" >"$T/r11.want"
check "Range on the LFS file: bytes" same_bytes "$T/r11.b" "$T/r11.want"
get r12 "$U/acme/tiny/resolve/main/weights.bin" -H 'Range: bytes=1000-'
check "resume from 1000 (old Python clients): bytes" \
	sh -c "tail -c +1001 '$W' | cmp -s - '$T/r12.b'"

# ---- conditional requests ------------------------------------------------

E=$(h cfg ETag)
get c1 "$U/acme/tiny/resolve/main/config.json" -H "If-None-Match: $E"
is "$(st c1)" 304 "If-None-Match with the ETag: 304"
is "$(size_of "$T/c1.b")" 0 "304 has no body"
is "$(h c1 ETag)" "$E" "304 repeats the ETag"
get c2 "$U/acme/tiny/resolve/main/config.json" -H 'If-None-Match: "0000000000000000000000000000000000000000"'
is "$(st c2)" 200 "If-None-Match with another ETag: 200"
get c3 "$U/acme/tiny/resolve/main/weights.bin" -H "If-None-Match: \"$WSHA\""
is "$(st c3)" 304 "If-None-Match with the LFS sha256: 304"
get c4 "$U/acme/tiny/resolve/main/digits.txt" -H "If-Range: $(h r1 ETag)" -H 'Range: bytes=10-19'
is "$(st c4)" 206 "If-Range matching: 206"
is "$(h c4 Content-Range)" 'bytes 10-19/1000' "If-Range matching: the range"
get c5 "$U/acme/tiny/resolve/main/digits.txt" -H 'If-Range: "deadbeef"' -H 'Range: bytes=10-19'
is "$(st c5)" 200 "If-Range not matching: 200"
check "If-Range not matching: whole file" same_bytes "$T/c5.b" "$D"

# ---- errors --------------------------------------------------------------

get e1 "$U/acme/nope/resolve/main/config.json"
is_hub_error e1 '^(401|404)$' RepoNotFound "missing repo"
head_req e1h "$U/acme/nope/resolve/main/config.json"
is "$(h e1h X-Error-Code)" RepoNotFound "missing repo (HEAD): X-Error-Code"
get e2 "$U/acme/tiny/resolve/nope/config.json"
is_hub_error e2 '^404$' RevisionNotFound "missing revision"
get e3 "$U/acme/tiny/resolve/main/nope.json"
is_hub_error e3 '^404$' EntryNotFound "missing file"
is "$(h e3 X-Repo-Commit)" "$COMMIT" "EntryNotFound carries X-Repo-Commit"
head_req e3h "$U/acme/tiny/resolve/main/nope.json"
is "$(h e3h X-Error-Code)" EntryNotFound "missing file (HEAD, file_exists): EntryNotFound"
is "$(h e3h X-Repo-Commit)" "$COMMIT" "missing file (HEAD): X-Repo-Commit"
get e4 "$U/acme/tiny/resolve/main/sub"
is_hub_error e4 '^404$' EntryNotFound "a directory is not a file"
get e5 "$U/api/models/acme/nope"
is_hub_error e5 '^(401|404)$' RepoNotFound "API: missing repo"
get e6 "$U/api/models/acme/tiny/revision/nope"
is_hub_error e6 '^404$' RevisionNotFound "API: missing revision"
get e7 "$U/api/models/acme/tiny/tree/main/nope"
is_hub_error e7 '^404$' EntryNotFound "API: tree of a missing path"
get e8 "$U/datasets/acme/tiny/resolve/main/config.json"
is_hub_error e8 '^(401|404)$' RepoNotFound "a model is not a dataset"
get e9 "$U/api/agent-harnesses"
is "$(st e9)" 404 "/api/agent-harnesses: 404"

# ---- revision spellings --------------------------------------------------

for rev in main "$COMMIT" HEAD refs%2Fheads%2Fmain; do
	get rv "$U/acme/tiny/resolve/$rev/config.json"
	is "$(st rv)" 200 "revision $rev: 200"
	is "$(h rv X-Repo-Commit)" "$COMMIT" "revision $rev: X-Repo-Commit"
done
get rv2 "$U/acme/tiny/resolve/main/sub%2Fdir%2Fnested%20file.txt"
is "$(st rv2)" 200 "%2F inside the file path: 200"
check "%2F inside the file path: bytes" same_bytes "$T/rv2.b" "$TINY/sub/dir/nested file.txt"
get rv3 "$U/acme/tiny/resolve/refs%2Fpr%2F1/config.json"
is_hub_error rv3 '^404$' RevisionNotFound "refs%2Fpr%2F1 (no PRs in model-bin)"
get rv4 "$U/acme/tiny/resolve/0123456789abcdef0123456789abcdef01234567/config.json"
is_hub_error rv4 '^404$' RevisionNotFound "unknown commit sha"
get rv5 "${U}//acme/tiny/resolve/main/config.json"
is "$(st rv5)" 200 "leading // (old clients' trailing-slash endpoint): 200"

# ---- traversal and symlinks ----------------------------------------------

# not_served NAME URL: a 4xx, and never the secret's bytes
not_served() {
	get "$1" "$2"
	like "$(st "$1")" '^4[0-9][0-9]$' "not served: $2"
	if grep -q TOP-SECRET "$T/$1.b"; then
		not_ok "secret leaked by $2"
	else
		ok "no secret in the body: $2"
	fi
}
not_served tr1 "$U/acme/tiny/resolve/main/../../../outside/secret.txt"
not_served tr2 "$U/acme/tiny/resolve/main/%2e%2e/%2e%2e/%2e%2e/outside/secret.txt"
not_served tr3 "$U/acme/tiny/resolve/main/sub%2F..%2F..%2F..%2F..%2Foutside%2Fsecret.txt"
not_served tr4 "$U/acme/tiny/resolve/main/..%5C..%5C..%5Coutside%5Csecret.txt"
not_served tr5 "$U/acme/tiny/resolve/main/config.json%00.txt"
not_served tr6 "$U/acme/tiny/resolve/main/%2Fetc%2Fpasswd"
not_served tr7 "$U/acme/tiny/resolve/main//etc/passwd"
not_served tr8 "$U/acme/tiny/resolve/main/link-outside.txt"
not_served tr9 "$U/acme/tiny/resolve/main/dirlink-outside/secret.txt"
not_served tr10 "$U/acme/..%2F..%2Foutside/resolve/main/secret.txt"
not_served tr11 "$U/api/models/acme/tiny/tree/main/dirlink-outside"
get tr12 "$U/etc/passwd"
is "$(grep -c root: "$T/tr12.b")" 0 "/etc/passwd is not a repo"
get tr13 "$U/acme/tiny/resolve/main/link-outside.txt"
is "$(h tr13 X-Error-Code)" EntryNotFound "outside symlink: EntryNotFound (it does not exist)"
get sl1 "$U/acme/tiny/resolve/main/link-inside.json"
is "$(st sl1)" 200 "symlink inside the root: 200"
check "symlink inside the root: the target's bytes" same_bytes "$T/sl1.b" "$TINY/config.json"
get sl2 "$U/acme/tiny/resolve/main/link-abs-inside.json"
is "$(st sl2)" 200 "absolute symlink to a file inside the root: 200"
check "absolute symlink inside the root: bytes" same_bytes "$T/sl2.b" "$TINY/config.json"

# ---- request limits ------------------------------------------------------

big=$(head -c 65536 /dev/zero | tr '\0' a)
get lim1 "$U/acme/tiny/resolve/main/config.json" -H "X-Big: $big"
like "$(st lim1)" '^(400|431)$' "64 KiB header: 431 or 400"
get lim2 "$U/acme/tiny/resolve/main/$big"
like "$(st lim2)" '^4[0-9][0-9]$' "64 KiB URL: a 4xx"
get lim3 "$U/acme/tiny/resolve/main/config.json"
is "$(st lim3)" 200 "the server still answers after oversized requests"

# ---- API: info -----------------------------------------------------------

fixture_files "$TINY" >"$T/tiny.files"
get i1 "$U/api/models/acme/tiny"
is "$(st i1)" 200 "model info: 200"
is "$(jget "$T/i1.b" 'd["id"]')" acme/tiny "model info: id"
is "$(jget "$T/i1.b" 'd["sha"]')" "$COMMIT" "model info: sha is the X-Repo-Commit"
like "$(jget "$T/i1.b" 'd["lastModified"]')" "$DATE_MS" "model info: lastModified is .mmmZ"
like "$(jget "$T/i1.b" 'd.get("createdAt", "2000-01-01T00:00:00.000Z")')" "$DATE_MS" "model info: createdAt is .mmmZ"
is "$(jget "$T/i1.b" 'd["private"]')" false "model info: private false"
jget "$T/i1.b" '"\n".join(sorted(s["rfilename"] for s in d["siblings"]))' >"$T/i1.sib"
check "model info: siblings are exactly the files (outside symlinks left out)" \
	diff "$T/tiny.files" "$T/i1.sib"
is "$(grep -c xetHash "$T/i1.b")" 0 "model info: no xetHash"

get i2 "$U/api/models/acme/tiny?blobs=true"
is "$(jget "$T/i2.b" '[s for s in d["siblings"] if s["rfilename"] == "config.json"][0]["blobId"]')" \
	"$(git_blob_id "$TINY/config.json")" "blobs=true: blobId of a small file"
is "$(jget "$T/i2.b" '[s for s in d["siblings"] if s["rfilename"] == "config.json"][0]["size"]')" \
	"$(size_of "$TINY/config.json")" "blobs=true: size of a small file"
is "$(jget "$T/i2.b" '"lfs" in [s for s in d["siblings"] if s["rfilename"] == "config.json"][0]')" \
	false "blobs=true: no lfs key on a small file"
is "$(jget "$T/i2.b" '[s for s in d["siblings"] if s["rfilename"] == "weights.bin"][0]["lfs"]["sha256"]')" \
	"$WSHA" "blobs=true: lfs.sha256"
is "$(jget "$T/i2.b" '[s for s in d["siblings"] if s["rfilename"] == "weights.bin"][0]["lfs"]["size"]')" \
	"$WS" "blobs=true: lfs.size"
is "$(jget "$T/i2.b" '[s for s in d["siblings"] if s["rfilename"] == "weights.bin"][0]["lfs"]["pointerSize"]')" \
	"$(size_of "$T/w.pointer")" "blobs=true: lfs.pointerSize"
is "$(jget "$T/i2.b" '[s for s in d["siblings"] if s["rfilename"] == "weights.bin"][0]["size"]')" \
	"$WS" "blobs=true: size of an LFS file is the content size"
get i2b "$U/api/models/acme/tiny?blobs=True"
is "$(jget "$T/i2b.b" 'all("size" in s for s in d["siblings"])')" true "blobs=True (requests spelling) works too"

for rev in main "$COMMIT" HEAD refs%2Fheads%2Fmain; do
	get i3 "$U/api/models/acme/tiny/revision/$rev?expand=sha&expand=siblings&expand[]=likes"
	is "$(st i3)" 200 "info at revision $rev: 200"
	is "$(jget "$T/i3.b" 'd["sha"]')" "$COMMIT" "info at revision $rev: sha"
done
get i4 "$U/api/datasets/acme/ds"
is "$(jget "$T/i4.b" 'd["id"]')" acme/ds "dataset info: id"
is "$(jget "$T/i4.b" 'sorted(s["rfilename"] for s in d["siblings"])')" \
	'["README.md", "data/train.csv", "data/train.parquet"]' "dataset info: siblings"
get i4c "$U/api/models/canon"
is "$(jget "$T/i4c.b" '[d["id"], [s["rfilename"] for s in d["siblings"]]]')" '["canon", ["config.json"]]' \
	"canonical repo info"
get i5 "$U/api/spaces/acme/space"
is "$(jget "$T/i5.b" 'd["id"]')" acme/space "space info: id"

# ---- API: tree -----------------------------------------------------------

get t1 "$U/api/models/acme/tiny/tree/main"
is "$(st t1)" 200 "tree root: 200"
is "$(jget "$T/t1.b" 'sorted(e["path"] for e in d)')" \
	"$(jget "$T/i1.b" 'sorted(set(s["rfilename"].split("/")[0] for s in d["siblings"]))')" \
	"tree root (not recursive): top-level entries only"
is "$(jget "$T/t1.b" '[e["type"] for e in d if e["path"] == "sub"]')" '["directory"]' "tree: sub is a directory"
is "$(jget "$T/t1.b" 'sorted(set(e["type"] for e in d))')" '["directory", "file"]' "tree: types are file/directory"
is "$(jget "$T/t1.b" 'all(e["path"][0] != "/" for e in d)')" true "tree: no leading /"

get t2 "$U/api/models/acme/tiny/tree/main?recursive=True&expand=False"
jget "$T/t2.b" '"\n".join(sorted(e["path"] for e in d if e["type"] == "file"))' >"$T/t2.files"
check "recursive tree: exactly the files" diff "$T/tiny.files" "$T/t2.files"
is "$(jget "$T/t2.b" 'sorted(e["path"] for e in d if e["type"] == "directory")')" \
	'["sub", "sub/deep", "sub/deep/a", "sub/deep/a/b", "sub/dir"]' "recursive tree: the directories"
is "$(jget "$T/t2.b" '[e["oid"] for e in d if e["path"] == "config.json"][0]')" \
	"$(git_blob_id "$TINY/config.json")" "tree: oid of a small file"
is "$(jget "$T/t2.b" '[e for e in d if e["path"] == "weights.bin"][0]["lfs"]["oid"]')" "$WSHA" "tree: lfs.oid"
is "$(jget "$T/t2.b" '[e for e in d if e["path"] == "weights.bin"][0]["lfs"]["size"]')" "$WS" "tree: lfs.size"
is "$(jget "$T/t2.b" '[e for e in d if e["path"] == "weights.bin"][0]["lfs"]["pointerSize"]')" \
	"$(size_of "$T/w.pointer")" "tree: lfs.pointerSize"
is "$(jget "$T/t2.b" '[e for e in d if e["path"] == "weights.bin"][0]["oid"]')" \
	"$(git_blob_id "$T/w.pointer")" "tree: the oid of an LFS file is its pointer's blob id"
is "$(jget "$T/t2.b" '[e for e in d if e["path"] == "weights.bin"][0]["size"]')" "$WS" "tree: size of an LFS file"
is "$(jget "$T/t2.b" 'all(len(e["oid"]) == 40 for e in d)')" true "tree: every entry has a 40-hex oid"
is "$(grep -c xetHash "$T/t2.b")" 0 "tree: no xetHash"

get t3 "$U/api/models/acme/tiny/tree/main?recursive=true&expand=true"
is "$(jget "$T/t3.b" 'all(set(e["lastCommit"]) >= {"id", "title", "date"} for e in d if e["type"] == "file")')" \
	true "expand=true: lastCommit{id,title,date} on files"
like "$(jget "$T/t3.b" '[e for e in d if e["path"] == "config.json"][0]["lastCommit"]["date"]')" \
	"$DATE_MS" "expand=true: lastCommit.date is .mmmZ"
like "$(jget "$T/t3.b" '[e for e in d if e["path"] == "config.json"][0]["lastCommit"]["id"]')" \
	"$HEX40" "expand=true: lastCommit.id is 40 hex"

# Python encodes the path as one segment, npm sends it raw
for sub in 'sub%2Fdir?recursive=false' 'sub/dir'; do
	get t4 "$U/api/models/acme/tiny/tree/main/$sub"
	is "$(jget "$T/t4.b" '[e["path"] for e in d]')" '["sub/dir/nested file.txt"]' "tree of $sub"
done
get t6 "$U/api/models/acme/tiny/tree/$COMMIT/sub?recursive=1"
is "$(jget "$T/t6.b" 'len([e for e in d if e["type"] == "file"])')" 2 "tree at the commit sha, under sub"
get t7 "$U/api/models/acme/tiny/tree/refs%2Fpr%2F1"
is_hub_error t7 '^404$' RevisionNotFound "tree at refs%2Fpr%2F1"
get t8 "$U/api/models/acme/tiny/tree/refs/pr/1/sub"
is_hub_error t8 '^404$' RevisionNotFound "tree at refs/pr/1 (npm raw spelling)"
get t9 "$U/api/datasets/acme/ds/tree/main/data"
is "$(jget "$T/t9.b" 'sorted(e["path"] for e in d)')" '["data/train.csv", "data/train.parquet"]' "dataset tree"

# ---- API: tree pagination (more than 1000 entries) -----------------------

# next_link FILE: the rel="next" URL of a Link header, or nothing
next_link() {
	hdr "$1" Link | sed -n 's/.*<\([^>]*\)>;[ ]*rel="next".*/\1/p'
}

# walk_pages NAME URL: follow Link pages; all paths go to $T/NAME.paths,
# the page count to $T/NAME.pages, the first Link to $T/NAME.link
walk_pages() {
	: >"$T/$1.paths"
	: >"$T/$1.link"
	: >"$T/$1.first"
	url=$2
	pages=0
	while [ -n "$url" ] && [ $pages -lt 50 ]; do
		get pg "$url"
		if [ "$(st pg)" != 200 ]; then
			diag "page $pages of $2: status $(st pg)"
			break
		fi
		jget "$T/pg.b" '"\n".join(e["path"] for e in d)' >>"$T/$1.paths"
		pages=$((pages + 1))
		url=$(next_link "$T/pg.h")
		[ $pages -eq 1 ] && printf '%s' "$url" >"$T/$1.link"
		[ $pages -eq 1 ] && jget "$T/pg.b" 'len(d)' >"$T/$1.first"
	done
	echo $pages >"$T/$1.pages"
}

walk_pages many "$U/api/models/acme/many/tree/main?recursive=true&expand=false"
is "$(wc -l <"$T/many.paths")" 1102 "pagination: all 1102 entries come back (1100 files, f/, README.md)"
is "$(sort -u "$T/many.paths" | wc -l)" 1102 "pagination: no entry twice"
like "$(cat "$T/many.pages")" '^([2-9]|[1-4][0-9])$' "pagination: more than one page"
like "$(cat "$T/many.first")" '^([1-9][0-9]{0,2}|1000)$' "pagination: first page holds at most 1000"
like "$(cat "$T/many.link")" "^$U/api/models/acme/many/tree/" "pagination: Link is absolute, to this server"
is "$(hdr "$T/pg.h" Link | grep -c 'rel="next"')" 0 "pagination: the last page has no next link"
get p0 "$U/api/models/acme/many/tree/main?recursive=true"
like "$(hdr "$T/p0.h" Link)" '^<http://[^>]+>; rel="next"' "Link matches the npm regex (a space after ;)"

walk_pages manyf "$U/api/models/acme/many/tree/main/f"
is "$(wc -l <"$T/manyf.paths")" 1100 "pagination of a non-recursive directory listing"

get l1 "$U/api/models/acme/many/tree/main/f?limit=10"
is "$(jget "$T/l1.b" 'len(d)')" 10 "limit=10: ten entries"
L1NEXT=$(next_link "$T/l1.h")
like "$L1NEXT" "^$U/.*cursor=" "limit=10: a next link with a cursor"
get l2 "$L1NEXT"
is "$(jget "$T/l2.b" 'len(d)')" 10 "limit=10: the next page has ten more"
jget "$T/l1.b" '"\n".join(e["path"] for e in d)' >"$T/l1.paths"
jget "$T/l2.b" '"\n".join(e["path"] for e in d)' >"$T/l2.paths"
is "$(cat "$T/l1.paths" "$T/l2.paths" | sort -u | wc -l)" 20 "cursor: the second page does not repeat the first"
is "$(cat "$T/l1.paths" "$T/l2.paths" | LC_ALL=C sort | head -n 1)" f/0000.txt "cursor: pages start at the beginning"

# ---- API: paths-info -----------------------------------------------------

get pi1 "$U/api/models/acme/tiny/paths-info/main" \
	--data 'paths=config.json&paths=sub&paths=weights.bin&paths=nope&expand=False'
is "$(st pi1)" 200 "paths-info (form): 200"
is "$(jget "$T/pi1.b" 'sorted(e["path"] for e in d)')" '["config.json", "sub", "weights.bin"]' \
	"paths-info (form): missing paths left out"
is "$(jget "$T/pi1.b" '[e["type"] for e in d if e["path"] == "sub"]')" '["directory"]' "paths-info: directory type"
is "$(jget "$T/pi1.b" '[e for e in d if e["path"] == "weights.bin"][0]["lfs"]["oid"]')" "$WSHA" "paths-info: lfs.oid"
get pi2 "$U/api/models/acme/tiny/paths-info/$COMMIT" --data 'paths=sub%2Fdir%2Fnested+file.txt&expand=true'
is "$(jget "$T/pi2.b" '[e["path"] for e in d]')" '["sub/dir/nested file.txt"]' "paths-info (form): + and %2F decode"
like "$(jget "$T/pi2.b" 'd[0]["lastCommit"]["id"]')" "$HEX40" "paths-info (form) expand=true: lastCommit"
get pi3 "$U/api/models/acme/tiny/paths-info/main" -H 'Content-Type: application/json' \
	--data '{"paths":["config.json","sub/dir/nested file.txt","nope"],"expand":true}'
is "$(st pi3)" 200 "paths-info (JSON): 200"
is "$(jget "$T/pi3.b" 'sorted(e["path"] for e in d)')" '["config.json", "sub/dir/nested file.txt"]' \
	"paths-info (JSON): the existing paths"
is "$(jget "$T/pi3.b" '[e["oid"] for e in d if e["path"] == "config.json"][0]')" \
	"$(git_blob_id "$TINY/config.json")" "paths-info (JSON): oid"
like "$(jget "$T/pi3.b" 'd[0]["lastCommit"]["date"]')" "$DATE_MS" "paths-info (JSON) expand: lastCommit.date"
get pi4 "$U/api/datasets/acme/ds/paths-info/main" --data 'paths=data/train.csv'
is "$(jget "$T/pi4.b" '[e["size"] for e in d]')" "[$(size_of "$ROOT/datasets/acme/ds/data/train.csv")]" \
	"paths-info on a dataset"
get pi5 "$U/api/models/acme/tiny/paths-info/nope" --data 'paths=config.json'
is "$(h pi5 X-Error-Code)" RevisionNotFound "paths-info at a missing revision"

# ---- API: refs, commits, lists -------------------------------------------

get rf1 "$U/api/models/acme/tiny/refs"
is "$(jget "$T/rf1.b" 'd["branches"]')" \
	"[{\"name\": \"main\", \"ref\": \"refs/heads/main\", \"targetCommit\": \"$COMMIT\"}]" "refs: main -> the commit"
is "$(jget "$T/rf1.b" '[d["tags"], d["converts"]]')" '[[], []]' "refs: tags and converts present and empty"
get rf2 "$U/api/models/acme/tiny/refs?include_prs=1"
is "$(jget "$T/rf2.b" 'd["pullRequests"]')" '[]' "refs?include_prs=1: pullRequests present"

get cm1 "$U/api/models/acme/tiny/commits/main"
is "$(st cm1)" 200 "commits: 200"
is "$(jget "$T/cm1.b" 'd[0]["id"]')" "$COMMIT" "commits: the first is the commit"
like "$(jget "$T/cm1.b" 'd[0]["date"]')" "$DATE_MS" "commits: date is .mmmZ"
is "$(jget "$T/cm1.b" 'sorted(set(d[0]) & {"id", "title", "message", "date", "authors"})')" \
	'["authors", "date", "id", "message", "title"]' "commits: id,title,message,date,authors"
is "$(jget "$T/cm1.b" 'all("user" in a for a in d[0]["authors"])')" true "commits: authors have user"
get cm2 "$U/api/models/acme/tiny/commits/main?limit=100"
is "$(jget "$T/cm2.b" 'd[0]["id"]')" "$COMMIT" "commits?limit=100 (npm)"
get cm3 "$U/api/models/acme/tiny/commits/nope"
is "$(h cm3 X-Error-Code)" RevisionNotFound "commits at a missing revision"

get ls1 "$U/api/models"
is "$(st ls1)" 200 "/api/models: 200"
is "$(jget "$T/ls1.b" 'sorted(m["id"] for m in d)')" \
	'["acme/many", "acme/tiny", "canon"]' "/api/models lists the model repos (and only those)"
get ls2 "$U/api/datasets"
is "$(jget "$T/ls2.b" '[m["id"] for m in d]')" '["acme/ds"]' "/api/datasets lists the dataset repos"
get ls3 "$U/api/spaces"
is "$(jget "$T/ls3.b" '[m["id"] for m in d]')" '["acme/space"]' "/api/spaces lists the space repos"

get web "$U/"
is "$(st web)" 200 "web page: 200"
like "$(h web Content-Type)" '^text/html' "web page: HTML"
check "web page: lists acme/tiny" grep -q 'acme/tiny' "$T/web.b"
check "web page: lists the dataset" grep -q 'acme/ds' "$T/web.b"

# ---- access log ------------------------------------------------------------

start_server L model-bin --path "$ROOT" --index "$T/idx-l.bin" --access-log "$T/access.log" ||
	not_ok "server with --access-log starts"
get al1 "$L_URL/acme/tiny/resolve/main/config.json"
head_req al2 "$L_URL/acme/tiny/resolve/main/digits.txt"
get al3 "$L_URL/acme/tiny/resolve/main/nope.json"
i=0
while [ "$(wc -l <"$T/access.log" 2>/dev/null || echo 0)" -lt 3 ] && [ $i -lt 40 ]; do
	sleep 0.05
	i=$((i + 1))
done
is "$(wc -l <"$T/access.log")" 3 "access log: one line per request"
check "access log: every line is a JSON object" "$PYTHON" -c '
import json, sys
for line in open(sys.argv[1]):
    assert isinstance(json.loads(line), dict), line' "$T/access.log"
check "access log: lines carry the path and the status" "$PYTHON" -c '
import json, sys
want = [("/acme/tiny/resolve/main/config.json", 200),
        ("/acme/tiny/resolve/main/digits.txt", 200),
        ("/acme/tiny/resolve/main/nope.json", 404)]
lines = [json.loads(l) for l in open(sys.argv[1])]
for (path, code), rec in zip(want, lines):
    vals = [str(v) for v in rec.values()]
    assert any(path in v for v in vals), (path, rec)
    assert str(code) in vals, (code, rec)' "$T/access.log"
check "access log: the HEAD is logged as HEAD" grep -q '"HEAD"' "$T/access.log"
stop_server L

# ---- TLS -------------------------------------------------------------------

if openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 \
	-keyout "$T/key.pem" -out "$T/cert.pem" >/dev/null 2>&1; then
	if start_server TLS model-bin --path "$ROOT" --index "$T/idx-tls.bin" \
		--ssl-key "$T/key.pem" --ssl-cert "$T/cert.pem"; then
		like "$TLS_URL" '^https://' "TLS: the server says https"
		get tls1 -k "$TLS_URL/acme/tiny/resolve/main/config.json"
		is "$(st tls1)" 200 "TLS: 200"
		check "TLS: bytes" same_bytes "$T/tls1.b" "$TINY/config.json"
		get tls2 --cacert "$T/cert.pem" "$TLS_URL/acme/tiny/resolve/main/weights.bin" -H 'Range: bytes=5-9'
		is "$(h tls2 Content-Range)" "bytes 5-9/$WS" "TLS: Range on an LFS file, verified cert"
		stop_server TLS
	else
		not_ok "TLS server starts"
	fi
else
	not_ok "openssl makes a self-signed certificate"
fi

# ---- changes on disk ---------------------------------------------------------

# A private copy, so changing it does not disturb the server above.
R2="$T/root2"
mkdir -p "$R2/acme"
cp -r "$TINY" "$R2/acme/tiny"
rm -f "$R2/acme/tiny/link-outside.txt" "$R2/acme/tiny/dirlink-outside" "$R2/acme/tiny/link-abs-inside.json"
start_server C model-bin --path "$R2" --index "$T/idx-c.bin" --rescan-interval 1 ||
	not_ok "server with --rescan-interval starts"
get ch1 "$C_URL/api/models/acme/tiny/tree/main?recursive=true"
get ch0 "$C_URL/acme/tiny/resolve/main/config.json"
OLD=$(h ch0 X-Repo-Commit)
OLDCFG=$(h ch0 ETag)
get ch0w "$C_URL/acme/tiny/resolve/main/weights.bin"
OLDW=$(h ch0w ETag)
printf 'changed content\n' >>"$R2/acme/tiny/digits.txt"
printf 'brand new\n' >"$R2/acme/tiny/new.txt"
sleep 1.5 # past the rescan interval
get ch2 "$C_URL/acme/tiny/resolve/main/digits.txt"
NEW=$(h ch2 X-Repo-Commit)
like "$NEW" "$HEX40" "after a change: X-Repo-Commit is 40 hex"
if [ "$NEW" != "$OLD" ]; then ok "after a change: a new commit id"; else not_ok "after a change: a new commit id (still $OLD)"; fi
is "$(h ch2 ETag)" "\"$(git_blob_id "$R2/acme/tiny/digits.txt")\"" "changed file: its new blob id"
check "changed file: new bytes" same_bytes "$T/ch2.b" "$R2/acme/tiny/digits.txt"
get ch3 "$C_URL/acme/tiny/resolve/main/config.json"
is "$(h ch3 ETag)" "$OLDCFG" "untouched small file: same ETag"
get ch3w "$C_URL/acme/tiny/resolve/main/weights.bin" -I
is "$(h ch3w ETag)" "$OLDW" "untouched LFS file: same ETag"
get ch4 "$C_URL/api/models/acme/tiny/tree/main?recursive=true"
is "$(jget "$T/ch4.b" '[e["oid"] for e in d if e["path"] == "config.json"]')" \
	"$(jget "$T/ch1.b" '[e["oid"] for e in d if e["path"] == "config.json"]')" "untouched file: same tree oid"
is "$(jget "$T/ch4.b" '"new.txt" in [e["path"] for e in d]')" true "a new file is listed"
get ch5 "$C_URL/api/models/acme/tiny"
is "$(jget "$T/ch5.b" 'd["sha"]')" "$NEW" "info sha follows the change"
get ch6 "$C_URL/acme/tiny/resolve/$OLD/config.json"
is "$(st ch6)" 200 "the previous commit still serves an untouched file"
get ch7 "$C_URL/acme/tiny/resolve/main/config.json"
is "$(h ch7 X-Repo-Commit)" "$NEW" "without further changes the commit id stays"

done_testing
