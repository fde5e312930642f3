# lib_import.sh - fixtures for the hfmirror-import tests (sourced after lib.sh).
#
# make_upstream DIR builds a non-bare repo with git and git-lfs that has
# what the importer must carry over: branches main and dev, an annotated
# tag v1.0, refs/pr/1, nested directories, a file name with spaces, small
# text files and LFS files of a few MB, and history (weights.bin changes).

git_identity "$T/home"
git config --global init.defaultBranch main
git config --global protocol.file.allow always
git lfs install --skip-repo >/dev/null

# rand FILE KiB: random content
rand() {
	head -c "$(($2 * 1024))" /dev/urandom >"$1"
}

make_upstream() {
	up=$1
	mkdir -p "$up"
	(
		cd "$up" || exit 1
		git init -q .
		git lfs track '*.bin' >/dev/null
		# git-lfs's hooks (locking) cost a process per commit and checkout
		rm -f .git/hooks/post-checkout .git/hooks/post-commit \
			.git/hooks/post-merge .git/hooks/pre-push
		echo '{"model_type": "tiny"}' >config.json
		printf '# tiny\n' >README.md
		mkdir -p "sub dir/nested"
		echo 'hello' >"sub dir/nested/file with spaces.txt"
		rand weights.bin 3072
		mkdir -p data
		rand data/shard.bin 2048
		git add -A && git commit -q -m 'first'
		rand weights.bin 3072
		git add -A && git commit -q -m 'new weights'
		git tag -a v1.0 -m 'release 1.0'
		git checkout -q -b dev
		rand dev.bin 1024
		git add -A && git commit -q -m 'dev work'
		git checkout -q -b pr main
		rand pr.bin 512
		git add -A && git commit -q -m 'a PR'
		git update-ref refs/pr/1 HEAD
		git checkout -q main
		git branch -q -D pr
	) >/dev/null
}

# oids_of GITDIR REF...: the LFS oids the refs' histories point to, sorted
oids_of() {
	d=$1
	shift
	git --git-dir="$d" rev-list --objects "$@" | cut -d' ' -f1 |
		git --git-dir="$d" cat-file --batch-check='%(objecttype) %(objectsize) %(objectname)' |
		awk '$1 == "blob" && $2 < 1024 { print $3 }' |
		git --git-dir="$d" cat-file --batch | sed -n 's/^oid sha256://p' | sort -u
}

# store_ok STORE: every object under objects/ hashes to its name
store_ok() {
	bad=0
	for f in "$1"/objects/*/*; do
		[ -e "$f" ] || continue
		n=$(basename "$f")
		[ "$(sha256sum <"$f" | cut -d' ' -f1)" = "$n" ] || { echo "bad object $n"; bad=1; }
	done
	return $bad
}

# json_get FILE EXPR: a value from the JSON line in FILE (python3 expression on `j`)
json_get() {
	python3 -c 'import json,sys; j=json.loads(open(sys.argv[1]).read().splitlines()[-1]); print(eval(sys.argv[2]))' "$1" "$2"
}
