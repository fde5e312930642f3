/* catalog.c - the sources and rules handlers consult (see catalog.h). */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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
	struct hfm_listed *v;
	size_t n;
	unsigned bit;                    /* the source listing now */
};

static void names_add(void *cls, const char *name)
{
	struct names *ns = cls;
	if (ns->n >= 1000000)            /* bound what a listing can make us keep */
		return;
	ns->v = hfm_realloc(ns->v, (ns->n + 1) * sizeof(*ns->v));
	ns->v[ns->n].name = hfm_strdup(name);
	ns->v[ns->n++].sources = ns->bit;
}

static int cmp_name(const void *a, const void *b)
{
	const struct hfm_listed *x = a, *y = b;
	int d = strcmp(x->name, y->name);
	return d ? d : (x->sources < y->sources ? -1 : x->sources > y->sources);
}

void hfm_catalog_repos(struct hfm_listed **out, size_t *n, const struct hfm_catalog *c,
		       enum hfm_repo_type t, const struct hfm_ctx *ctx)
{
	struct names ns = { 0 };
	for (size_t i = 0; i < c->nsources; i++) {
		ns.bit = i < 32 ? 1u << i : 0;
		if (c->sources[i]->ops->list_repos)
			c->sources[i]->ops->list_repos(c->sources[i], t, names_add, &ns);
	}
	if (ns.n)
		qsort(ns.v, ns.n, sizeof(*ns.v), cmp_name);
	size_t k = 0;
	for (size_t i = 0; i < ns.n; i++) {
		struct hfm_repo_id id = { .type = t };
		int hidden = strlen(ns.v[i].name) > HFM_REPO_NAME_MAX;
		if (!hidden) {
			memcpy(id.name, ns.v[i].name, strlen(ns.v[i].name) + 1);
			hidden = !hfm_catalog_may_see(c, &id, ctx->who);
		}
		if (hidden) {            /* what the caller may not read is not listed */
			free(ns.v[i].name);
		} else if (k && !strcmp(ns.v[k - 1].name, ns.v[i].name)) {
			ns.v[k - 1].sources |= ns.v[i].sources;
			free(ns.v[i].name);
		} else {
			ns.v[k++] = ns.v[i];
		}
	}
	if (!k) {
		free(ns.v);
		ns.v = NULL;
	}
	*out = ns.v;
	*n = k;
}

void hfm_listed_free(struct hfm_listed *v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(v[i].name);
	free(v);
}

int hfm_catalog_read(struct hfm_buf *out, const struct hfm_catalog *c, const struct hfm_found *f,
		     const char *path, size_t max, struct hfm_ctx *ctx)
{
	const struct hfm_source_ops *ops = f->repo->src->ops;
	struct hfm_list *l = NULL;
	struct hfm_body body = { 0 };
	int opened = 0, rc;

	if ((rc = ops->stat(&l, f->repo, f->rc.commit, &path, 1, 0, ctx)))
		goto cleanup;
	if (l->n != 1 || l->items[0]->is_dir) {
		rc = HFM_ENOENT;
		goto cleanup;
	}
	if (l->items[0]->size > max) {
		rc = hfm_error_set(HFM_ETOOBIG, "%s is over %zu bytes", path, max);
		goto cleanup;
	}
	if ((rc = hfm_catalog_open(&body, c, f, l->items[0], 0, ctx)))
		goto cleanup;
	opened = 1;
	size_t n = (size_t)body.size;
	char *p = hfm_buf_reserve(out, n);
	if (!p) {
		rc = hfm_error_set(HFM_ETOOBIG, "%s does not fit", path);
		goto cleanup;
	}
	if (body.kind == HFM_BODY_MEM) {
		memcpy(p, body.mem, n);
	} else if (body.kind == HFM_BODY_FD) {
		for (size_t got = 0; got < n;) {
			ssize_t k = pread(body.fd, p + got, n - got, (off_t)(body.offset + got));
			if (k <= 0) {
				rc = hfm_error_set(HFM_EIO, "cannot read %s", path);
				goto cleanup;
			}
			got += (size_t)k;
		}
	} else if (n) {
		if ((rc = hfm_stream_prime(body.stream, 0, n, ctx->waiter)))
			goto cleanup;
		for (size_t got = 0; got < n;) {
			ssize_t k = hfm_stream_read(body.stream, got, n, p + got, n - got, ctx->waiter);
			if (k < 0) {
				rc = (int)k;
				goto cleanup;
			}
			got += (size_t)k;
		}
	}
	out->len += n;
	out->ptr[out->len] = '\0';
cleanup:
	if (opened)
		hfm_body_dispose(&body);
	if (l)
		hfm_list_free(l);
	return rc;
}
