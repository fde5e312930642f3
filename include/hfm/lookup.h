/*
 * lookup.h - find which source answers for a repo and revision.
 *
 * Sources are asked in the server's order (the CLI builds it: local sources
 * before the online cache).  The first source that has the repo *and* the
 * revision answers; a source that has the repo but not the revision defers
 * to the next one, so a git mirror with branch `main` does not hide a
 * `refs/pr/7` the cache could fetch.  When nobody answers, the error is
 * RevisionNotFound if some source had the repo, else RepoNotFound.
 *
 * Once a source has had the repo, what later sources say cannot make the
 * answer worse than RevisionNotFound: a later RepoNotFound (the upstream
 * lacks the repo, the cache is offline) or a failure (the upstream is down:
 * 502/504, a disk error) only adds to the message.  Only HFM_EAGAIN (wait
 * and ask again) and HFM_EGATED (the upstream has the repo behind a token)
 * from a later source are returned as they are.
 *
 * A file is opened by the source that answered, with one exception: an LFS
 * file whose object that source lacks is opened by a source whose ops say
 * opens_foreign -- the online cache, which fetches it (hfm_lookup_open).
 */
#ifndef HFM_LOOKUP_H
#define HFM_LOOKUP_H

#include "source.h"

struct hfm_found {
	struct hfm_repo *repo;           /* open; hfm_found_dispose() closes it */
	struct hfm_resolved rc;          /* the resolved commit (when rev given) */
};

/*
 * Open repo `id` at revision `rev` ("HEAD" for the default branch) across
 * `srcs`.  0, HFM_ENOREPO, HFM_ENOREV, HFM_EAGAIN (ctx->waiter armed),
 * HFM_EGATED, or a source's error (transport, I/O) when no source before it
 * had the repo.
 */
int hfm_lookup(struct hfm_found *out, struct hfm_source *const *srcs, size_t n,
	       const struct hfm_repo_id *id, const char *rev, struct hfm_ctx *ctx);
void hfm_found_dispose(struct hfm_found *f);

/*
 * Open entry `e` (from f->repo's stat or list at f->rc.commit) as
 * f->repo's ops->open does, flags included.  When that source knows an LFS
 * file but lacks its object (HFM_EUNAVAIL: a git mirror where `git lfs
 * fetch` never ran), the same entry -- same repo id, commit, path, LFS oid
 * and size -- is opened through the first other source of `srcs` whose
 * ops have opens_foreign (the online cache) instead: it fetches
 * {upstream}/{repo}/resolve/{commit}/{path} into the store under the oid,
 * or relays it unstored when its cache rules deny the repo.  Before that
 * the cache resolves the commit upstream, so an upstream without that
 * commit is an error naming it rather than a download that breaks off.  Only
 * such a source may take over another source's entry: it opens an entry by
 * its ids alone, never through e->priv.  Proxy rules are the caller's
 * (hfm_find).
 *
 * Returns 0 with *out filled (the caller owns it: hfm_body_dispose(), or
 * hand it to hfm_reply_file(); it needs no repo handle), HFM_EAGAIN
 * (ctx->waiter armed: re-run from the top), HFM_EUNAVAIL with a message that
 * names the object and why it cannot be had (no such source in `srcs`, the
 * cache is offline, upstream lacks the commit), or another source error
 * (HFM_EGATED, transport errors).  The cache's repo handle is closed before
 * returning.
 */
int hfm_lookup_open(struct hfm_body *out, struct hfm_source *const *srcs, size_t n,
		    const struct hfm_found *f, const struct hfm_entry *e, unsigned flags,
		    struct hfm_ctx *ctx);

#endif
