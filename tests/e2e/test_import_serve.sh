#!/bin/sh
# test_import_serve.sh - what hfmirror-import writes is what
# 'hfmirror mirror --repos-path' serves: the source clone is deleted after
# the import, so every byte comes from the store.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_import.sh"

UP=$T/up/acme/tiny
make_upstream "$UP"
git clone -q --mirror "file://$UP" "$T/src.git" 2>/dev/null
(cd "$T/src.git" && git lfs fetch --all origin >/dev/null 2>&1 &&
	git remote set-url origin https://huggingface.co/acme/tiny)
S=$T/store
check "import" "$HFMIRROR_IMPORT" --store "$S" --quiet --copy "$T/src.git"
rm -rf "$T/src.git"

start_server hub mirror --repos-path "$S" || { not_ok "server starts"; done_testing; exit 1; }
refs=$(curl -s "$hub_URL/api/models/acme/tiny/refs?include_prs=1")
like "$refs" '"name":"dev"' "refs list the dev branch"
like "$refs" '"refs/pr/1"' "and the pull request"
like "$refs" '"v1.0"' "and the tag"

for rev_file in main:weights.bin dev:dev.bin 'refs%2Fpr%2F1:pr.bin'; do
	rev=${rev_file%%:*}
	f=${rev_file#*:}
	want=$(git -C "$UP" cat-file -p "$(echo "$rev" | sed 's/%2F/\//g'):$f" | sed -n 's/^oid sha256://p')
	got=$(curl -sf "$hub_URL/acme/tiny/resolve/$rev/$f" | sha256sum | cut -d' ' -f1)
	is "$got" "$want" "resolve $rev/$f from the store"
done
is "$(curl -sf "$hub_URL/acme/tiny/resolve/main/sub%20dir/nested/file%20with%20spaces.txt")" hello \
	"a small file from the mirror"
done_testing
