/*
 * catalog.h - what this mirror serves: its sources in answering order and
 * the proxy rules over them.  Handlers ask the catalog, never the sources
 * one by one and never the HTTP server.
 *
 * A catalog is a view: it borrows the sources and the rules (the CLI owns
 * them and keeps them alive while the server runs) and holds no state of
 * its own, so any number of threads may use one at once.
 */
#ifndef HFM_CATALOG_H
#define HFM_CATALOG_H

#include "lookup.h"
#include "rules.h"
#include "source.h"

struct hfm_catalog {
	struct hfm_source *const *sources;   /* in answering order; borrowed */
	size_t nsources;
	/* Olah's [[accessibility.proxy]] rules: a repo they deny is
	 * RepoNotFound whatever source holds it.  NULL = allow all.  Borrowed.
	 * Rules may be about users and groups (rules.h): they are applied
	 * for the caller, ctx->who. */
	const struct hfm_rules *proxy_rules;
};

/*
 * May `who` (NULL: anonymous) see repo `id` at all?  The one access check
 * every route makes (hfm_catalog_find() calls it with ctx->who): a repo it
 * denies is RepoNotFound, exactly as one that does not exist.  Routes that
 * do not go through hfm_catalog_find() (git smart HTTP, pages) call it.
 */
int hfm_catalog_may_see(const struct hfm_catalog *c, const struct hfm_repo_id *id,
			const struct hfm_ident *who);

/*
 * hfm_lookup() over the catalog's sources, after the proxy rules for
 * ctx->who: a repo they deny is HFM_EDENIED (answered RepoNotFound) and no
 * source is asked.  On error *out is zeroed (hfm_found_dispose() is then a
 * no-op).
 */
int hfm_catalog_find(struct hfm_found *out, const struct hfm_catalog *c,
		     const struct hfm_repo_id *id, const char *rev, struct hfm_ctx *ctx);

/*
 * The upstream's name for ctx->authorization: the first source with a
 * whoami op answers (see source.h); HFM_EOFFLINE when none can.
 */
int hfm_catalog_whoami(struct hfm_buf *name, const struct hfm_catalog *c, struct hfm_ctx *ctx);

/* hfm_lookup_open() over the catalog's sources (see lookup.h). */
int hfm_catalog_open(struct hfm_body *out, const struct hfm_catalog *c, const struct hfm_found *f,
		     const struct hfm_entry *e, unsigned flags, struct hfm_ctx *ctx);

/*
 * The whole content of file `path` of f (found by hfm_catalog_find) into
 * `out`, for files a page shows (a README): HFM_ENOENT if the commit has
 * no such file, HFM_ETOOBIG if it has more than `max` bytes, HFM_EAGAIN
 * (ctx->waiter armed) while a cache fetches it.
 */
int hfm_catalog_read(struct hfm_buf *out, const struct hfm_catalog *c, const struct hfm_found *f,
		     const char *path, size_t max, struct hfm_ctx *ctx);

/* One listed repo: its name and which sources list it. */
struct hfm_listed {
	char *name;                      /* owned */
	unsigned sources;                /* bit i: c->sources[i] lists it (the first 32) */
};

/*
 * Every repo of type t across the sources that can list theirs (the
 * cache lists those it holds metadata for), without those
 * hfm_catalog_may_see() hides from ctx->who, sorted in byte order, each
 * once.  Free with hfm_listed_free() (NULL when *n is 0).
 */
void hfm_catalog_repos(struct hfm_listed **out, size_t *n, const struct hfm_catalog *c,
		       enum hfm_repo_type t, const struct hfm_ctx *ctx);
void hfm_listed_free(struct hfm_listed *v, size_t n);

#endif
