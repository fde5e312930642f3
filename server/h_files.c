/*
 * h_files.c - /{repo}/resolve/{rev}/{path} and /{repo}/raw/{rev}/{path}.
 *
 * Both answer the file at the resolved commit; /resolve/ answers an LFS
 * file's content (etag = sha256, X-Linked-*), /raw/ its git blob (the
 * pointer).  Bytes come from the source's body (an fd for zero-copy), or
 * from the online cache when the answering source lacks an LFS object
 * (hfm_catalog_open).  Content that is known but cannot be had is
 * HFM_EUNAVAIL: a 502, not EntryNotFound, since the file does exist
 * (docs/git-mirrors.md says why).
 */
#include "hfm/handlers.h"

int hfm_h_file(struct hfm_call *c)
{
	struct hfm_req *r = c->req;
	const struct hfm_route *rt = &c->route;
	struct hfm_ctx *ctx = &c->ctx;
	int raw = rt->kind == HFM_R_RAW;
	struct hfm_found f;
	struct hfm_list *l = NULL;
	struct hfm_body body = { .fd = -1 };
	const struct hfm_catalog *cat = c->app->catalog;
	int rc;

	if ((rc = hfm_catalog_find(&f, cat, &rt->repo, rt->rev, ctx)))
		return rc;
	const struct hfm_source_ops *ops = f.repo->src->ops;
	hfm_req_set_source(r, ops->kind);
	const char *path = rt->path;
	rc = ops->stat(&l, f.repo, f.rc.commit, &path, 1, HFM_LIST_IDS, ctx);
	if (rc == HFM_ENOENT || (!rc && (l->n == 0 || l->items[0]->is_dir))) {
		rc = hfm_reply_error(r, HFM_ENOENT, "Entry not found", f.rc.commit);
		goto cleanup;
	}
	if (rc)
		goto cleanup;
	const struct hfm_entry *e = l->items[0];
	rc = hfm_catalog_open(&body, cat, &f, e, raw ? HFM_OPEN_RAW : 0, ctx);
	if (rc == HFM_ENOENT || rc == HFM_EUNAVAIL) {
		rc = hfm_reply_error(r, rc, NULL, f.rc.commit);
		goto cleanup;
	}
	if (rc)
		goto cleanup;
	rc = hfm_reply_file(r, e, &body, f.rc.commit, raw);
	if (!rc)
		hfm_call_audit(c, &rt->repo, rt->rev, f.rc.commit, rt->path);

cleanup:
	if (l)
		hfm_list_free(l);
	hfm_found_dispose(&f);
	return rc;
}
