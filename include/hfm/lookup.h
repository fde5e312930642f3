/*
 * lookup.h - find which source answers for a repo and revision.
 *
 * Sources are asked in the server's order (the CLI builds it: local sources
 * before the online cache).  The first source that has the repo *and* the
 * revision answers; a source that has the repo but not the revision defers
 * to the next one, so a git mirror with branch `main` does not hide a
 * `refs/pr/7` the cache could fetch.  When nobody answers, the error is
 * RevisionNotFound if some source had the repo, else RepoNotFound.
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
 * `srcs`.  0, HFM_ENOREPO, HFM_ENOREV, HFM_EAGAIN (ctx->waiter armed), or a
 * source's transport error.
 */
int hfm_lookup(struct hfm_found *out, struct hfm_source *const *srcs, size_t n,
	       const struct hfm_repo_id *id, const char *rev, struct hfm_ctx *ctx);
void hfm_found_dispose(struct hfm_found *f);

#endif
