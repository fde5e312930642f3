/* lookup.c - see lookup.h */
#include <stdio.h>
#include <string.h>

#include "hfm/lookup.h"

int hfm_lookup(struct hfm_found *out, struct hfm_source *const *srcs, size_t n,
	       const struct hfm_repo_id *id, const char *rev, struct hfm_ctx *ctx)
{
	int seen_repo = 0, last = HFM_ENOREPO;
	char msg[512] = "";

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		struct hfm_repo *repo = NULL;
		int rc = srcs[i]->ops->repo_open(&repo, srcs[i], id, ctx);
		if (rc == HFM_ENOREPO)
			continue;
		if (rc)
			return rc;
		rc = srcs[i]->ops->resolve(&out->rc, repo, rev, ctx);
		if (rc == 0) {
			out->repo = repo;
			return 0;
		}
		srcs[i]->ops->repo_close(repo);
		if (rc != HFM_ENOREV)
			return rc;
		seen_repo = 1;
		last = rc;
		snprintf(msg, sizeof(msg), "%s", hfm_error_last());
	}
	if (seen_repo) {
		if (msg[0])
			return hfm_error_set(last, "%s", msg);
		return hfm_error_set(HFM_ENOREV, "Invalid rev id: %s", rev);
	}
	return hfm_error_set(HFM_ENOREPO, "Repository not found: %s", id->name);
}

void hfm_found_dispose(struct hfm_found *f)
{
	if (f->repo)
		f->repo->src->ops->repo_close(f->repo);
	f->repo = NULL;
}
