/*
 * src_git.h - git mirrors (bare or non-bare clones) served as a read-only Hub.
 *
 * Layout (Olah's mirrors-path), searched in the order the dirs were given,
 * then in the store:
 *
 *   DIR/{models,datasets,spaces}/<org>/<name>        non-bare (…/<name>/.git) or bare
 *   DIR/{models,datasets,spaces}/<org>/<name>.git    same, with the suffix
 *   DIR/{models,datasets,spaces}/<name>[.git]        canonical repos without an org
 *   <store>/mirrors/{models,datasets,spaces}/<org>/<name>.git   (hfm_store_mirror_path)
 *
 * The first candidate that libgit2 opens wins.  A repo is looked up when it
 * is first asked for, and on every request while it is not found, so clones
 * added while the server runs appear at once.  A found repo is kept, and
 * re-checked on disk (HEAD there, same git dir inode) at most once a second:
 * one that disappears or is replaced is noticed within 1 s.  A revision's
 * commit is kept per repo and re-resolved by libgit2 at most once a second
 * (full commit ids: never), so a push or fetch into a served mirror shows
 * within 1 s; failed lookups are not kept.  Snapshots are keyed by commit
 * and small blob contents (32 MiB in all) by blob id, so they never go
 * stale.  Between re-checks, resolve/stat/open of a small file touch no
 * file at all.
 *
 * Revisions: branch names, tags (peeled to their commit), full 40-hex commit
 * ids (short ids are refused, as on the Hub), "HEAD" (the HEAD symref, else
 * main, else master), and fully qualified refs ("refs/heads/x",
 * "refs/pr/1", "refs/convert/parquet").  In a non-bare clone the branches
 * that only exist as refs/remotes/origin/<x> resolve and are listed as
 * branches too (a plain `git clone` has just one local branch).
 *
 * Files: every blob of the commit's tree, symlinks included (their blob is
 * the link text, as on the Hub); submodules (gitlinks) are skipped; so are
 * names that are not valid repo paths (path.h).  A blob under 1024 bytes that
 * parses as an LFS pointer is an LFS file: size = the pointer's size, lfs_oid
 * = its sha256, oid = the pointer's blob id.  All ids come from git, so
 * has_ids is set when the snapshot is built; nothing is hashed.
 *
 * Bodies: a non-LFS blob (or, with HFM_OPEN_RAW, an LFS pointer) up to
 * `mem_max` bytes is copied out of git as HFM_BODY_MEM (blobs up to 1 MiB
 * are kept in a shared LRU, memlru.h, and the body holds a reference).  A larger one is
 * served from the store's objects/ when it holds the blob id, else inflated
 * once into an unlinked temp file (store tmp/, else $TMPDIR) that a small
 * cache keeps for the next requests (HFM_BODY_FD); blobs over 4 GiB are
 * refused with HFM_EUNAVAIL.  LFS content is opened, never read or hashed,
 * from <gitdir>/lfs/objects/aa/bb/<oid>, then the store's objects/; a file
 * whose size differs from the pointer's is skipped.  Missing everywhere:
 * HFM_EUNAVAIL with a message naming the oid.
 *
 * lastCommit (HFM_LIST_EXPAND): computed once per commit, on the first
 * request that asks, by walking first-parent history and comparing trees
 * (unchanged subtrees are skipped), for at most `lastcommit_max` commits
 * (default 10000).  Entries not settled within that bound get the oldest
 * commit examined, i.e. "changed at or before this commit".
 *
 * Threads: every op may run concurrently.  A libgit2 repository handle may
 * only be used by one thread at a time, so each repo keeps a small pool of
 * handles (opened lazily, at most 4, reused across requests; a fifth
 * concurrent user waits for one).  Snapshots (per repo, the 4 most recently
 * used commits) are built once; concurrent requests for the same commit wait
 * for that one build.  The git source never returns HFM_EAGAIN: everything it
 * needs is on local disk, so ops run to completion on the calling thread.
 *
 * libgit2 settings (process-wide): the constructor calls git_libgit2_init()
 * and turns off libgit2's "repository owned by another user" check, since
 * mirrors are commonly owned by the account that fetches them, not by the
 * daemon's; the source only reads.
 */
#ifndef HFM_SRC_GIT_H
#define HFM_SRC_GIT_H

#include <stddef.h>
#include <stdint.h>

#include "source.h"
#include "store.h"

/*
 * Create the source for the mirror directories `dirs` (each must exist; it
 * is canonicalised) and, when `store` is not NULL, the store's mirrors/.
 * The store is borrowed and must outlive the source.  HFM_EINVAL with no
 * dirs and no store, HFM_EIO with a message for a dir that is not one.
 */
int hfm_gitsrc_new(struct hfm_source **out, const char *const *dirs, size_t ndirs,
		   const struct hfm_store *store);

/*
 * Tuning (tests, operators): `mem_max` = largest blob answered from memory
 * (default 8 MiB); `lastcommit_max` = commits walked for lastCommit (default
 * 10000).  0 keeps the current value.  Call before the source is shared.
 */
void hfm_gitsrc_tune(struct hfm_source *src, uint64_t mem_max, unsigned lastcommit_max);

#endif
