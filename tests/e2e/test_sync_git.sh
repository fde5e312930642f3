#!/bin/bash
# test_sync_git.sh - `git = true` in a sync manifest: `hfmirror sync` fetches
# the repo's git history (libgit2, from the upstream's smart HTTP) into the
# store's mirrors/, and `hfmirror proxy --offline` on that store then serves
# `git clone` (full and --depth 1) and `git lfs pull` of it with the
# upstream's commit ids, branches, tags and refs/pr/1, opening no upstream
# connection.  A second run after a new commit upstream adds it (and git
# fetch of an offline clone receives only the new objects).  A dry run
# makes no mirror; a repo without git = true gets none; a gated repo's git
# is refused (a git mirror has no gating), its files still synced; a repo
# the upstream lacks fails.  git fsck on every clone.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/lib_import.sh"
. "$(dirname "$0")/lib_sync.sh"

export GIT_TERMINAL_PROMPT=0 GIT_ASKPASS=/bin/false SSH_ASKPASS=/bin/false

UP=$T/up/models/acme
for r in tiny nogit gated; do make_upstream "$UP/$r"; done
make_upstream "$T/up/datasets/acme/ds"
start_git_hub 'gated acme/gated hf_good' || exit 1

S=$T/store
sync_config "$T/config.toml" "$S"
cat >"$T/sync.toml" <<EOF
[[repo]]
id = "acme/tiny"
revisions = ["main", "v1.0"]
git = true

[[repo]]
id = "acme/nogit"

[[repo]]
id = "acme/gated"
git = true

[[repo]]
id = "acme/ds"
type = "dataset"
git = true
EOF

# refs_of GITDIR: the refs a mirror serves, "id name" sorted
refs_of() {
	git --git-dir="$1" for-each-ref --format='%(objectname) %(refname)' \
		refs/heads refs/tags refs/pr refs/convert | sort
}
fsck_ok() { check "$2: git fsck" git -C "$1" fsck --no-progress; }
MT=$S/mirrors/models/acme/tiny.git

# ---- the manifest key --------------------------------------------------------------------
printf '[[repo]]\nid = "acme/tiny"\ngit = "yes"\n' >"$T/bad.toml"
is "$(run_sync bad -m "$T/bad.toml")" 2 "git = \"yes\": exit status 2"
like "$(cat "$T/bad.err")" "bad.toml:3: repo\\[0\\].git: " "... named FILE:LINE: key"

# ---- a dry run makes no mirror ---------------------------------------------------------------
is "$(run_sync dry -m "$T/sync.toml" --json --dry-run)" 0 "dry run: exit status 0"
check "dry run: no mirror" test ! -e "$MT"

# ---- the run ---------------------------------------------------------------------------------
is "$(HF_TOKEN=hf_good run_sync run1 -m "$T/sync.toml" --json)" 1 \
	"run (with the gated repo's token): exit status 1 (its git)"
is "$(jq_repo "$T/run1.json" acme/tiny 'j["status"], j["git"]["refs"]')" "ok 4" \
	"acme/tiny: ok, its 4 refs (main, dev, v1.0, refs/pr/1)"
is "$(jq_repo "$T/run1.json" acme/tiny 'j["git"]["mirror"]')" "$MT" "... into mirrors/"
like "$(cat "$T/run1.err")" "acme/tiny: git: 4 refs, [0-9]+ objects received" "... and says so"
check "acme/tiny: the mirror is bare" test -f "$MT/HEAD" -a -d "$MT/objects"
is "$(refs_of "$MT")" "$(refs_of "$UP/tiny/.git")" "acme/tiny: refs and ids are upstream's"
is "$(git --git-dir="$MT" symbolic-ref HEAD)" refs/heads/main "acme/tiny: HEAD is main"
is "$(git --git-dir="$MT" cat-file -t v1.0)" tag "acme/tiny: v1.0 is the annotated tag"
check "acme/tiny: nothing left under tmp/" sh -c "! ls '$S/tmp' | grep -q gitfetch"
check "acme/nogit: no mirror (no git = true)" test ! -e "$S/mirrors/models/acme/nogit.git"
is "$(jq_repo "$T/run1.json" acme/nogit '"git" in j')" False "acme/nogit: no git in its report"
is "$(jq_repo "$T/run1.json" acme/ds 'j["status"], j["git"]["refs"]')" "ok 4" "a dataset: ok"
check "a dataset: its mirror under datasets/" test -f "$S/mirrors/datasets/acme/ds.git/HEAD"
like "$(jq_repo "$T/run1.json" acme/gated 'j["git"]["error"]')" "refused for a gated or private repo" \
	"acme/gated: git refused, and why"
is "$(jq_repo "$T/run1.json" acme/gated 'j["fetched"]["files"], j["failed"]["files"]')" "2 0" \
	"acme/gated: its files are synced as usual"
check "acme/gated: no mirror" test ! -e "$S/mirrors/models/acme/gated.git"

# ---- offline: clone ------------------------------------------------------------------------------
start_server off proxy --offline --repos-path "$S" --hf-scheme http --hf-netloc "$RELAY" \
	--access-log off || exit 1
O=$off_URL
c0=$(relay_conns)
for v in 2 0; do
	C=$T/c$v
	check "offline, protocol v$v: git clone" git -c protocol.version=$v clone -q "$O/acme/tiny" "$C"
	is "$(git -C "$C" rev-parse HEAD)" "$(git -C "$UP/tiny" rev-parse main)" "v$v: upstream's main"
	is "$(git -C "$C" rev-parse origin/dev)" "$(git -C "$UP/tiny" rev-parse dev)" "v$v: branch dev"
	is "$(git -C "$C" rev-parse v1.0)" "$(git -C "$UP/tiny" rev-parse v1.0)" "v$v: tag v1.0"
	check "v$v: weights.bin smudged from the synced LFS object" cmp "$C/weights.bin" "$UP/tiny/weights.bin"
	check "v$v: data/shard.bin too" cmp "$C/data/shard.bin" "$UP/tiny/data/shard.bin"
	fsck_ok "$C" "v$v clone"
done
is "$(git -C "$T/c2" ls-remote origin refs/pr/1 | cut -f1)" "$(git -C "$UP/tiny" rev-parse refs/pr/1)" \
	"offline: refs/pr/1"
check "offline: clone --depth 1" git clone -q --depth 1 "$O/acme/tiny" "$T/s1"
is "$(git -C "$T/s1" rev-list --count HEAD)" 1 "... one commit"
fsck_ok "$T/s1" "shallow clone"
L=$T/skip
check "offline: GIT_LFS_SKIP_SMUDGE=1 clone" env GIT_LFS_SKIP_SMUDGE=1 git clone -q "$O/acme/tiny" "$L"
check "offline: git lfs pull" git -C "$L" lfs pull
check "... weights.bin" cmp "$L/weights.bin" "$UP/tiny/weights.bin"
fsck_ok "$L" "skip-smudge clone"
check "offline: a dataset clones" git clone -q "$O/datasets/acme/ds" "$T/ds"
fsck_ok "$T/ds" "dataset clone"
git clone -q "$O/acme/nogit" "$T/nogit" >"$T/nogit.out" 2>&1
like "$(cat "$T/nogit.out")" "no git history on this mirror" \
	"offline: a repo synced without git = true has no history to clone"
is "$(relay_conns)" "$c0" "offline: no connection to the upstream"

# ---- a new commit upstream: the next run adds it; git fetch gets only it -----------------------
old=$(git -C "$UP/tiny" rev-parse main)
(cd "$UP/tiny" && echo "changed" >"sub dir/nested/file with spaces.txt" && git commit -qam change)
new=$(git -C "$UP/tiny" rev-parse main)
want=$(git -C "$UP/tiny" rev-list --objects "$new" "^$old" | wc -l)
printf '[[repo]]\nid = "acme/tiny"\ngit = true\n' >"$T/tiny.toml"
is "$(run_sync run2 -m "$T/tiny.toml" --json)" 0 "second run: exit status 0"
is "$(jq_repo "$T/run2.json" acme/tiny 'j["git"]["objects"]')" "$want" \
	"second run: the $want new objects received, no more"
is "$(git --git-dir="$MT" rev-parse main)" "$new" "second run: main moved"
before=$(git -C "$T/c2" count-objects -v | sed -n 's/^count: //p')
check "offline: git fetch" git -c fetch.unpackLimit=100000 -C "$T/c2" fetch -q
after=$(git -C "$T/c2" count-objects -v | sed -n 's/^count: //p')
is "$((after - before))" "$want" "offline: fetch received the $want new objects only"
fsck_ok "$T/c2" "clone after fetch"

# ---- a branch deleted upstream is pruned -----------------------------------------------------------
git -C "$UP/tiny" branch -q -D dev
is "$(run_sync run3 -m "$T/tiny.toml" --json)" 0 "third run: exit status 0"
is "$(refs_of "$MT")" "$(refs_of "$UP/tiny/.git")" "third run: dev is gone from the mirror too"

# ---- a repo the upstream lacks ------------------------------------------------------------------------
printf '[[repo]]\nid = "acme/nope"\ngit = true\n' >"$T/nope.toml"
is "$(run_sync nope -m "$T/nope.toml" --json)" 1 "a missing repo: exit status 1"
check "a missing repo: no mirror" test ! -e "$S/mirrors/models/acme/nope.git"

sync_san_clean
done_testing
