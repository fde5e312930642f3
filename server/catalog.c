/* catalog.c - the sources and rules handlers consult (see catalog.h). */
#include <stdlib.h>
#include <string.h>

#include "hfm/catalog.h"

int hfm_catalog_may_see(const struct hfm_catalog *c, const struct hfm_repo_id *id,
			const struct hfm_ident *who)
{
	return !c->proxy_rules || hfm_rules_allow_for(c->proxy_rules, id->name, who);
}

int hfm_catalog_find(struct hfm_found *out, const struct hfm_catalog *c,
		     const struct hfm_repo_id *id, const char *rev, struct hfm_ctx *ctx)
{
	if (!hfm_catalog_may_see(c, id, ctx->who)) {
		memset(out, 0, sizeof(*out));
		return hfm_error_set(HFM_EDENIED, "Repository not found: %s", id->name);
	}
	return hfm_lookup(out, c->sources, c->nsources, id, rev, ctx);
}

int hfm_catalog_whoami(struct hfm_buf *name, const struct hfm_catalog *c, struct hfm_ctx *ctx)
{
	for (size_t i = 0; i < c->nsources; i++)
		if (c->sources[i]->ops->whoami)
			return c->sources[i]->ops->whoami(name, c->sources[i], ctx);
	return hfm_error_set(HFM_EOFFLINE, "no upstream to ask whose token it is");
}

int hfm_catalog_open(struct hfm_body *out, const struct hfm_catalog *c, const struct hfm_found *f,
		     const struct hfm_entry *e, unsigned flags, struct hfm_ctx *ctx)
{
	return hfm_lookup_open(out, c->sources, c->nsources, f, e, flags, ctx);
}

struct names {
	char **v;
	size_t n;
};

static void names_add(void *cls, const char *name)
{
	struct names *ns = cls;
	if (ns->n >= 1000000)            /* bound what a listing can make us keep */
		return;
	ns->v = hfm_realloc(ns->v, (ns->n + 1) * sizeof(*ns->v));
	ns->v[ns->n++] = hfm_strdup(name);
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

void hfm_catalog_repo_names(char ***out, size_t *n, const struct hfm_catalog *c,
			    enum hfm_repo_type t)
{
	hfm_catalog_repo_names_for(out, n, c, t, NULL);
}

void hfm_catalog_repo_names_for(char ***out, size_t *n, const struct hfm_catalog *c,
				enum hfm_repo_type t, const struct hfm_ident *who)
{
	struct names ns = { 0 };
	for (size_t i = 0; i < c->nsources; i++)
		if (c->sources[i]->ops->list_repos)
			c->sources[i]->ops->list_repos(c->sources[i], t, names_add, &ns);
	if (c->proxy_rules) {            /* what the rules hide is not listed either */
		size_t k = 0;
		for (size_t i = 0; i < ns.n; i++) {
			if (hfm_rules_allow_for(c->proxy_rules, ns.v[i], who))
				ns.v[k++] = ns.v[i];
			else
				free(ns.v[i]);
		}
		ns.n = k;
	}
	if (ns.n)
		qsort(ns.v, ns.n, sizeof(*ns.v), cmp_str);
	size_t k = 0;
	for (size_t i = 0; i < ns.n; i++) {
		if (k && !strcmp(ns.v[k - 1], ns.v[i]))
			free(ns.v[i]);
		else
			ns.v[k++] = ns.v[i];
	}
	if (!k) {
		free(ns.v);
		ns.v = NULL;
	}
	*out = ns.v;
	*n = k;
}
