# lib_fixtures.sh - the model-bin tree the end-to-end tests serve (sourced).
#
# Everything is generated at test time (no binaries in the repository) and
# is deterministic, so a failure can be reproduced byte for byte.  Sizes are
# the smallest that still exercise a rule: one file just over the 10 MiB LFS
# threshold, one ~5 MiB text file (hashed off the request path, but not LFS),
# and one repo with more than 1000 entries for tree pagination.

# det_bytes SEED N: N pseudo-random bytes that depend only on SEED.
# AES-CTR over zeros is a fast seeded generator that every test machine has.
det_bytes() {
	key=$(printf '%s' "$1" | sha256sum | cut -c1-64)
	openssl enc -aes-256-ctr -K "$key" -iv 00000000000000000000000000000000 \
		-in /dev/zero 2>/dev/null | head -c "$2"
}

# det_text SEED N: N bytes of printable lines (no NUL), so the file stays a
# plain git blob unless its size makes it LFS.
det_text() {
	det_bytes "$1" "$(($2 * 2))" | od -An -v -tx1 | tr -d ' \n' |
		fold -w 63 | sed 's/$/ /' | head -c "$2"
}

# mk FILE: create FILE's parent directories and write stdin to it.
mk() {
	mkdir -p "$(dirname "$1")"
	cat >"$1"
}

# put FILE TEXT: write TEXT and a newline to FILE, making its folders.
put() {
	echo "$2" | mk "$1"
}

# make_fixture_tree ROOT OUTSIDE: the served tree under ROOT, and a secret
# under OUTSIDE (a sibling of ROOT) that symlinks try to reach.
make_fixture_tree() {
	root=$1
	outside=$2
	mkdir -p "$root" "$outside"
	echo "TOP-SECRET-OUTSIDE-THE-ROOT" >"$outside/secret.txt"

	t="$root/acme/tiny"
	# .gitattributes makes *.safetensors LFS even when small and textual
	printf '*.safetensors filter=lfs diff=lfs merge=lfs -text\n' | mk "$t/.gitattributes"
	printf '{"model_type": "tiny", "hidden_size": 8}\n' | mk "$t/config.json"
	printf -- '---\nlicense: mit\n---\n# tiny\nA test model.\n' | mk "$t/README.md"
	: | mk "$t/empty.txt"
	# exactly 1000 bytes, so Range arithmetic in the tests is readable
	det_text digits 1000 | mk "$t/digits.txt"
	det_text tokenizer $((5 * 1024 * 1024 + 17)) | mk "$t/tokenizer.json"
	printf 'not really safetensors, but LFS by .gitattributes\n' | mk "$t/model.safetensors"
	det_bytes weights $((12 * 1024 * 1024 + 3)) | mk "$t/weights.bin"
	# a NUL in the first 8 KiB makes a small file LFS ("binary")
	{ printf 'BIN\000'; det_bytes small 4092; } | mk "$t/small.bin"
	printf 'nested with a space\n' | mk "$t/sub/dir/nested file.txt"
	printf 'deep\n' | mk "$t/sub/deep/a/b/c.txt"
	# symlinks: inside their repo they are served, outside they do not exist
	ln -s config.json "$t/link-inside.json"
	ln -s "$t/config.json" "$t/link-abs-inside.json"
	ln -s ../../../outside/secret.txt "$t/link-outside.txt"
	ln -s "$outside" "$t/dirlink-outside"

	m="$root/acme/many"
	mkdir -p "$m/f"
	# one awk process instead of 1100 shell redirections
	awk -v d="$m/f" 'BEGIN { for (i = 0; i < 1100; i++) {
		f = sprintf("%s/%04d.txt", d, i); print "file " i > f; close(f) } }'
	printf -- '---\nlicense: mit\n---\n# many\n' | mk "$m/README.md"

	d="$root/datasets/acme/ds"
	printf -- '---\nlicense: cc0-1.0\n---\n# ds\n' | mk "$d/README.md"
	printf 'id,text\n1,hello\n2,world\n' | mk "$d/data/train.csv"
	{ printf 'PAR1\000'; det_bytes parquet 2000; printf 'PAR1'; } | mk "$d/data/train.parquet"

	printf 'print("hello")\n' | mk "$root/spaces/acme/space/app.py"

	# a canonical repo (no org), like gpt2
	printf '{"model_type": "canon"}\n' | mk "$root/canon/config.json"
}

# fixture_files DIR: the repo-relative paths a client should see in DIR,
# sorted: regular files and symlinks that stay inside the repo.
fixture_files() {
	(cd "$1" && find . \( -type f -o -type l \) ! -name 'link-outside.txt' \
		! -path './dirlink-outside*' ! -path './.git/*' | sed 's|^\./||' | LC_ALL=C sort)
}

# git_blob_id FILE: the id git (and the Hub) gives the file's content.
git_blob_id() {
	git hash-object --no-filters -- "$1"
}

# lfs_pointer FILE: the LFS pointer text for FILE's content.
lfs_pointer() {
	printf 'version https://git-lfs.github.com/spec/v1\noid sha256:%s\nsize %s\n' \
		"$(sha256sum <"$1" | cut -c1-64)" "$(stat -c %s "$1")"
}
