/* lookup.c - see lookup.h */
#include <stdio.h>
#include <string.h>

#include "hfm/lookup.h"

int hfm_lookup(struct hfm_found *out, struct hfm_source *const *srcs, size_t n,
	       const struct hfm_repo_id *id, const char *rev, struct hfm_ctx *ctx)
{
	int seen_repo = 0, opened;
	char msg[512] = "", later[512] = "", norepo[512] = "";

	memset(out, 0, sizeof(*out));
	for (size_t i = 0; i < n; i++) {
		struct hfm_repo *repo = NULL;
		int rc;

		hfm_error_clear();           /* a bare error code must not bring an old message */
		rc = srcs[i]->ops->repo_open(&repo, srcs[i], id, ctx);
		opened = rc == 0;
		if (rc == 0) {
			rc = srcs[i]->ops->resolve(&out->rc, repo, rev, ctx);
			if (rc == 0) {
				out->repo = repo;
				return 0;
			}
			srcs[i]->ops->repo_close(repo);
		}
		if (rc == HFM_ENOREV) {
			if (!seen_repo)
				snprintf(msg, sizeof(msg), "%s", hfm_error_last());
			seen_repo = 1;
			continue;
		}
		if (rc == HFM_ENOREPO) {
			/* the cache says why it has no such repo (offline, upstream's answer) */
			if (opened && !norepo[0])
				snprintf(norepo, sizeof(norepo), "%s", hfm_error_last());
			continue;
		}
		/*
		 * Once a source has the repo, the others are asked only whether
		 * they have the revision too: one that cannot tell (offline, an
		 * upstream down, a disk error) does not turn the miss into a 5xx.
		 * A request that must wait, and a gated repo (a token may open the
		 * revision), are still this source's answer.
		 */
		if (!seen_repo || rc == HFM_EAGAIN || rc == HFM_EGATED)
			return rc;
		if (!later[0])
			snprintf(later, sizeof(later), "%s", hfm_error_last()[0] ? hfm_error_last()
								   : hfm_strerror(rc));
	}
	if (seen_repo) {
		if (!msg[0])
			snprintf(msg, sizeof(msg), "Invalid rev id: %s", rev);
		if (later[0])
			return hfm_error_set(HFM_ENOREV, "%s (a later source failed: %s)", msg, later);
		return hfm_error_set(HFM_ENOREV, "%s", msg);
	}
	if (norepo[0])
		return hfm_error_set(HFM_ENOREPO, "%s", norepo);
	return hfm_error_set(HFM_ENOREPO, "Repository not found: %s", id->name);
}

void hfm_found_dispose(struct hfm_found *f)
{
	if (f->repo)
		f->repo->src->ops->repo_close(f->repo);
	f->repo = NULL;
}

/* The source that may open an entry another source found but cannot open. */
static struct hfm_source *foreign_opener(struct hfm_source *const *srcs, size_t n,
					 const struct hfm_source *not)
{
	for (size_t i = 0; i < n; i++)
		if (srcs[i] != not && srcs[i]->ops->opens_foreign)
			return srcs[i];
	return NULL;
}

/* e through c (the online cache); `why` says what f's own source lacks. */
static int open_via_cache(struct hfm_body *out, struct hfm_source *c, const struct hfm_found *f,
			  const struct hfm_entry *e, unsigned flags, struct hfm_ctx *ctx,
			  const char *why)
{
	const char *commit = f->rc.commit;
	struct hfm_repo *repo = NULL;
	struct hfm_resolved up;
	int rc;

	if ((rc = c->ops->repo_open(&repo, c, &f->repo->id, ctx)))
		return rc == HFM_ENOREPO ? hfm_error_set(HFM_EUNAVAIL, "%s", why) : rc;
	rc = c->ops->open(out, repo, commit, e, flags, ctx);
	if (rc == HFM_EUNAVAIL) {
		rc = hfm_error_set(HFM_EUNAVAIL, "%s, and this mirror is offline", why);
		goto cleanup;
	}
	if (rc || out->kind != HFM_BODY_STREAM)
		goto cleanup;                /* an error, or the store has it by now */
	/*
	 * Nothing is fetched before the first read, so ask now whether upstream
	 * has this very commit (a clone of a Hub repo has the Hub's ids): a HEAD
	 * is not primed, and an upstream 404 mid-download would name nothing.
	 */
	rc = c->ops->resolve(&up, repo, commit, ctx);
	if (rc == HFM_ENOREV || rc == HFM_ENOREPO || (!rc && strcmp(up.commit, commit))) {
		rc = hfm_error_set(HFM_EUNAVAIL, "%s, and the upstream hub has no commit %s of %s",
				   why, commit, f->repo->id.name);
	} else if (rc && rc != HFM_EAGAIN) {
		char msg[512];
		snprintf(msg, sizeof(msg), "%s", hfm_error_last());
		rc = hfm_error_set(rc, "%s; fetching it: %s", why, msg);
	} else if (!rc && c->ops->access) {
		/*
		 * Only now does the cache know whether upstream gates the repo (open
		 * came before resolve): check this request's token before its stream
		 * can join a transfer someone else's token started.
		 */
		rc = c->ops->access(repo, ctx);
	}
	if (rc)
		hfm_body_dispose(out);
cleanup:
	c->ops->repo_close(repo);
	return rc;
}

int hfm_lookup_open(struct hfm_body *out, struct hfm_source *const *srcs, size_t n,
		    const struct hfm_found *f, const struct hfm_entry *e, unsigned flags,
		    struct hfm_ctx *ctx)
{
	struct hfm_source *own = f->repo->src, *c;
	char why[512];
	int rc = own->ops->open(out, f->repo, f->rc.commit, e, flags, ctx);

	if (rc != HFM_EUNAVAIL || !e->is_lfs || (flags & HFM_OPEN_RAW) ||
	    !(c = foreign_opener(srcs, n, own)))
		return rc;
	snprintf(why, sizeof(why), "%s", hfm_error_last());
	return open_via_cache(out, c, f, e, flags, ctx, why);
}
