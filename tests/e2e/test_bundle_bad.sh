#!/bin/bash
# test_bundle_bad.sh - bundles that must be refused: a flipped byte in one object, a
# missing volume, a manifest edited to point main at another commit (under --trust), an
# unsigned bundle under --trust, a truncated tar stream, an incremental bundle for a store
# that lacks its base.  Each is exit status 1 with a message that names what is wrong, and
# the store is unchanged (every file but the staging area tmp/, byte for byte).  Then the
# intact bundle imports, reusing what the refused attempts verified.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_fixtures.sh"
. "$(dirname "$0")/lib_bundle.sh"
hfjs_ready

fixture_upstream || exit 1
ed25519_key site
fill_outside "$OUT"
V1=$(cat "$OUT/meta/models/acme/tiny/revs/main")
check "a first bundle imports" sh -c "'$HFMIRROR' export -q --repos-path '$OUT' -o - --repo acme/tiny \
	--sign '$T/site.pem' | '$HFMIRROR_IMPORT' -q --store '$IN' --trust '$T/site.pub' -"

# a second revision, exported whole (in 1 MiB volumes) and since the inside's receipt
det_bytes weights-v2 $((3 * 1024 * 1024 + 5)) >"$T/root/acme/tiny/weights.bin"
fill_outside "$OUT"
V2=$(cat "$OUT/meta/models/acme/tiny/revs/main")
NEW_W=$(sha256 "$T/root/acme/tiny/weights.bin")
"$HFMIRROR" receipt -q --repos-path "$IN" -o "$T/receipt"
check "export the second revision" "$HFMIRROR" export -q --repos-path "$OUT" -o "$T/b2" \
	--repo acme/tiny --split 1M --sign "$T/site.pem"
check "and an incremental bundle of it" "$HFMIRROR" export -q --repos-path "$OUT" -o "$T/b2i.tar" \
	--repo acme/tiny --since "$T/receipt"
store_listing "$IN" >"$T/before"

# flip BUNDLE OID WHERE: flip one byte of object OID in the directory bundle BUNDLE, wherever
# its volume is: WHERE is "data" (100000 bytes into its data) or "pad" (its first padding
# byte); prints the volume
flip() {
	local vol off
	read -r vol off <<EOF
$(cd "$1" && $PYTHON - "$2" "$3" <<'PY'
import sys, tarfile, io
vols = [l.split()[1] for l in open("manifest") if l.startswith("volume ")]
sizes = [int(l.split()[2]) for l in open("manifest") if l.startswith("volume ")]
data = b"".join(open(v, "rb").read() for v in vols)
t = tarfile.open(fileobj=io.BytesIO(data))
m = t.getmember("objects/" + sys.argv[1])
if sys.argv[2] == "pad":
    assert m.size % 512, "the object needs padding"
    at = m.offset_data + m.size
else:
    at = m.offset_data + 100000
for v, s in zip(vols, sizes):
    if at < s:
        print(v, at)
        break
    at -= s
PY
)
EOF
	flip_byte "$1/$vol" "$off"
	echo "$vol"
}

# 1. one flipped byte inside the new weights object, wherever its volume is
cp -r "$T/b2" "$T/flip"
vol=$(flip "$T/flip" "$NEW_W" data)
refused "$T/flip" "objects/$NEW_W: its content hashes to" "a flipped byte" --trust "$T/site.pub"
like "$(cat "$T/refused.out")" "$vol \(volume [0-9]+ of [0-9]+\)" "a flipped byte: the message names its volume, $vol"

# 1b. one flipped byte in the framing, the padding after the weights object: no entry's id
# covers it, its volume's framing digest does (format 2)
cp -r "$T/b2" "$T/pad"
vol=$(flip "$T/pad" "$NEW_W" pad)
refused "$T/pad" "$vol \(volume [0-9]+ of [0-9]+\) hashes to" "a flipped padding byte" --trust "$T/site.pub"

# 1c. a bundle of format 1 (no framing digests: its whole volumes are hashed) still imports
cp -r "$T/b2" "$T/v1"
sed -i -e 's/^hfmirror-bundle 2$/hfmirror-bundle 1/' \
	-e 's/^\(volume [^ ]* [0-9]* [0-9a-f]*\) [0-9a-f]*$/\1/' "$T/v1/manifest"
rm -f "$T/v1/manifest.sig"
like "$(grep -m1 '^volume ' "$T/v1/manifest")" '^volume payload\.000 [0-9]+ [0-9a-f]{64}$' \
	"format 1: a volume record without the framing digest"
flip_byte "$T/v1/payload.000" 700
mkdir -p "$T/v1-store"
store_listing "$T/v1-store" >"$T/v1-before"
BEFORE=$T/v1-before STORE=$T/v1-store refused "$T/v1" 'payload\.000 \(volume 1 of [0-9]+\) hashes to' \
	"format 1: a flipped byte in a header"
cp "$T/b2/payload.000" "$T/v1/payload.000"
check "format 1: the intact bundle imports (into a new store)" \
	"$HFMIRROR_IMPORT" -q --store "$T/v1-store" "$T/v1"
is "$(cat "$T/v1-store/meta/models/acme/tiny/revs/main")" "$V2" "format 1: main is the second revision"

# 2. a missing volume
cp -r "$T/b2" "$T/missing"
rm "$T/missing/payload.001"
refused "$T/missing" 'payload.001 \(volume 2 of [0-9]+\) is missing' "a missing volume"

# 3. main pointed at another commit (the bundle describes both): the signature no longer holds
cp -r "$T/b2" "$T/edited"
sed -i "s/^rev main $V2\$/rev main $V1/" "$T/edited/manifest"
grep -q "^rev main $V1\$" "$T/edited/manifest" && ok "the manifest now points main at $V1" ||
	not_ok "the manifest now points main at $V1"
refused "$T/edited" 'does not verify with key [0-9a-f]{16}: the manifest was changed after it was signed' \
	"an edited manifest under --trust" --trust "$T/site.pub"
# without --trust an edit is taken as the sender's word, but must still hold together
ELSE=0123456789abcdef0123456789abcdef01234567
sed -i "s/^rev main $V1\$/rev main $ELSE/" "$T/edited/manifest"
refused "$T/edited" "names commit $ELSE, which it does not describe" "main pointed at an unknown commit"
refused "$T/b2i.tar" 'not signed, and --trust asks for a signature' "an unsigned bundle under --trust" \
	--trust "$T/site.pub"

# 4. a truncated tar stream
"$HFMIRROR" export -q --repos-path "$OUT" -o - --repo acme/tiny | head -c 2000000 >"$T/cut.tar"
refused - 'the bundle ends inside .*: it is truncated' "a truncated stream" <"$T/cut.tar"

# 5. an incremental bundle for a store that lacks its base
new_store "$T/fresh"
store_listing "$T/fresh" >"$T/fresh.before"
STORE=$T/fresh BEFORE=$T/fresh.before refused "$T/b2i.tar" \
	"incremental \\(made since receipt [0-9a-f]{32}\\) and relies on [0-9]+ files this store lacks" \
	"a bundle whose base the store lacks"

# the intact bundle goes in, reusing what the refused attempts verified
check "the intact bundle imports" "$HFMIRROR_IMPORT" --store "$IN" --trust "$T/site.pub" "$T/b2"
like "$(cat "$T/.check.out")" 'entries verified by an earlier run' "reusing what was verified before"
is "$(cat "$IN/meta/models/acme/tiny/revs/main")" "$V2" "main is the second revision"
is "$(sha256 "$(store_object "$IN" "$NEW_W")")" "$NEW_W" "its new object is in the store"
done_testing
