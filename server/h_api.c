/*
 * h_api.c - the Hub's JSON API: info/revision, tree, paths-info, refs,
 * commits, repo listing (whoami: h_whoami.c).
 *
 * Shapes follow hub-contract.md §3-§7.  JSON is written straight into a
 * capped hfm_buf (no cJSON tree for listings); the paths-info body is
 * parsed by paths_body.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfm/handlers.h"
#include "hfm/paths_body.h"
#include "hfm/repolist.h"

#define JSON_MAX (256u << 20)            /* one answer: 100k-file repos fit */
#define TREE_PAGE 1000                   /* the Hub's page size */
#define TREE_PAGE_EXPAND 100             /* lastCommit is costly: smaller pages */
#define TREE_PAGE_MAX 10000
#define COMMITS_PAGE 50
#define COMMITS_PAGE_MAX 1000

/* ---- small helpers ---------------------------------------------------- */

static void put_date(struct hfm_buf *b, int64_t ms)
{
	char d[HFM_ISO_DATE_LEN + 1];
	hfm_iso_date(d, ms);
	hfm_buf_putc(b, '"');
	hfm_buf_puts(b, d);
	hfm_buf_putc(b, '"');
}

static int arg_bool(struct hfm_req *r, const char *name)
{
	return hfm_parse_bool(hfm_req_arg(r, name), 0);
}

static long arg_long(struct hfm_req *r, const char *name, long dflt, long min, long max)
{
	const char *s = hfm_req_arg(r, name);
	if (!s || !*s)
		return dflt;
	char *end;
	long v = strtol(s, &end, 10);
	if (*end)
		return dflt;
	return v < min ? min : v > max ? max : v;
}

/*
 * `{"_id":…,"id":…[,"modelId":…][,"author":…]`: how info and the listing
 * both begin a repo.  The Hub's _id is a 24-hex object id: ours is stable,
 * from the type and name.
 */
static void put_repo_ids(struct hfm_buf *b, enum hfm_repo_type t, const char *name)
{
	char idhex[HFM_SHA1_HEX + 1], seed[HFM_REPO_NAME_MAX + 16];
	const char *slash = strchr(name, '/');

	snprintf(seed, sizeof(seed), "%s/%s", hfm_repo_type_plural(t), name);
	hfm_sha1_hex(idhex, seed, strlen(seed));
	idhex[24] = '\0';
	hfm_buf_puts(b, "{\"_id\":\"");
	hfm_buf_puts(b, idhex);
	hfm_buf_puts(b, "\",\"id\":");
	hfm_buf_json_str(b, name);
	if (t == HFM_MODEL) {
		hfm_buf_puts(b, ",\"modelId\":");
		hfm_buf_json_str(b, name);
	}
	if (slash) {
		hfm_buf_puts(b, ",\"author\":");
		hfm_buf_json_strn(b, name, (size_t)(slash - name));
	}
}

/* The /api/T/name prefix of this repo, absolute. */
static void api_base(struct hfm_buf *b, struct hfm_req *r, const struct hfm_repo_id *id)
{
	hfm_buf_puts(b, hfm_req_base_url(r));
	hfm_buf_puts(b, "/api/");
	hfm_buf_puts(b, hfm_repo_type_plural(id->type));
	hfm_buf_putc(b, '/');
	hfm_buf_puts(b, id->name);
}

/* ---- one tree / paths-info item --------------------------------------- */

static void put_entry(struct hfm_buf *b, const struct hfm_entry *e, int expand)
{
	if (e->is_dir) {
		hfm_buf_puts(b, "{\"type\":\"directory\",\"oid\":\"");
		hfm_buf_puts(b, e->oid);
		hfm_buf_puts(b, "\",\"size\":0,\"path\":");
		hfm_buf_json_str(b, e->path);
	} else {
		hfm_buf_puts(b, "{\"type\":\"file\",\"oid\":\"");
		hfm_buf_puts(b, e->oid);
		hfm_buf_puts(b, "\",\"size\":");
		hfm_buf_put_u64(b, e->size);
		hfm_buf_puts(b, ",\"path\":");
		hfm_buf_json_str(b, e->path);
		if (e->is_lfs) {
			hfm_buf_puts(b, ",\"lfs\":{\"oid\":\"");
			hfm_buf_puts(b, e->lfs_oid);
			hfm_buf_puts(b, "\",\"size\":");
			hfm_buf_put_u64(b, e->size);
			hfm_buf_puts(b, ",\"pointerSize\":");
			hfm_buf_put_u64(b, e->pointer_size);
			hfm_buf_putc(b, '}');
		}
	}
	if (expand && e->last_commit) {
		hfm_buf_puts(b, ",\"lastCommit\":{\"id\":\"");
		hfm_buf_puts(b, e->last_commit->id);
		hfm_buf_puts(b, "\",\"title\":");
		hfm_buf_json_str(b, e->last_commit->title ? e->last_commit->title : "");
		hfm_buf_puts(b, ",\"date\":");
		put_date(b, e->last_commit->date_ms);
		hfm_buf_putc(b, '}');
	}
	hfm_buf_putc(b, '}');
}

static int reply_json_buf(struct hfm_req *r, struct hfm_buf *b)
{
	if (b->err) {
		hfm_buf_dispose(b);
		return hfm_reply_error(r, HFM_ETOOBIG, "The answer is too large", NULL);
	}
	return hfm_reply_json(r, 200, b);
}

/* ---- info / revision ------------------------------------------------------- */

static int h_info(struct hfm_call *c, struct hfm_found *f)
{
	struct hfm_req *r = c->req;
	const struct hfm_route *rt = &c->route;
	const struct hfm_source_ops *ops = f->repo->src->ops;
	struct hfm_ctx *ctx = &c->ctx;
	const char *bs = hfm_req_arg(r, "blobs");
	int blobs = hfm_parse_bool(bs, 0);
	struct hfm_buf b = HFM_BUF_INIT(JSON_MAX);
	struct hfm_list *l = NULL;
	int rc;

	if (ops->info) {
		rc = ops->info(&b, f->repo, &f->rc, blobs ? HFM_INFO_BLOBS : 0, ctx);
		if (rc) {
			hfm_buf_dispose(&b);
			return rc;
		}
		return reply_json_buf(r, &b);
	}
	rc = ops->list(&l, f->repo, f->rc.commit, "", HFM_LIST_RECURSIVE | (blobs ? HFM_LIST_IDS : 0),
		       ctx);
	if (rc)
		return rc;

	const struct hfm_repo_id *id = &rt->repo;
	put_repo_ids(&b, id->type, id->name);
	hfm_buf_puts(&b, ",\"sha\":\"");
	hfm_buf_puts(&b, f->rc.commit);
	hfm_buf_puts(&b, "\",\"lastModified\":");
	put_date(&b, f->rc.date_ms);
	hfm_buf_puts(&b, ",\"createdAt\":");
	put_date(&b, f->rc.created_ms ? f->rc.created_ms : f->rc.date_ms);
	hfm_buf_puts(&b, ",\"private\":false,\"gated\":false,\"disabled\":false,"
			 "\"downloads\":0,\"likes\":0,\"tags\":[]");
	if (id->type == HFM_SPACE)
		hfm_buf_puts(&b, ",\"sdk\":\"static\",\"runtime\":{\"stage\":\"STOPPED\"}");
	hfm_buf_puts(&b, ",\"siblings\":[");
	int first = 1;
	uint64_t used = 0;
	for (size_t i = 0; i < l->n; i++) {
		const struct hfm_entry *e = l->items[i];
		if (e->is_dir)
			continue;
		if (!first)
			hfm_buf_putc(&b, ',');
		first = 0;
		hfm_buf_puts(&b, "{\"rfilename\":");
		hfm_buf_json_str(&b, e->path);
		if (blobs) {
			hfm_buf_puts(&b, ",\"size\":");
			hfm_buf_put_u64(&b, e->size);
			hfm_buf_puts(&b, ",\"blobId\":\"");
			hfm_buf_puts(&b, e->oid);
			hfm_buf_putc(&b, '"');
			if (e->is_lfs) {
				hfm_buf_puts(&b, ",\"lfs\":{\"sha256\":\"");
				hfm_buf_puts(&b, e->lfs_oid);
				hfm_buf_puts(&b, "\",\"size\":");
				hfm_buf_put_u64(&b, e->size);
				hfm_buf_puts(&b, ",\"pointerSize\":");
				hfm_buf_put_u64(&b, e->pointer_size);
				hfm_buf_putc(&b, '}');
			}
		}
		hfm_buf_putc(&b, '}');
		used += e->size;
	}
	hfm_buf_puts(&b, "]");
	hfm_buf_puts(&b, ",\"usedStorage\":");
	hfm_buf_put_u64(&b, used);
	hfm_buf_puts(&b, "}");
	hfm_list_free(l);
	return reply_json_buf(r, &b);
}

/* ---- tree ------------------------------------------------------------------- */

/* First index whose path sorts after `after` (items are in byte order). */
static size_t first_after(const struct hfm_list *l, const char *after)
{
	size_t lo = 0, hi = l->n;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		if (strcmp(l->items[mid]->path, after) <= 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static int h_tree(struct hfm_call *c, struct hfm_found *f)
{
	struct hfm_req *r = c->req;
	const struct hfm_route *rt = &c->route;
	const struct hfm_source_ops *ops = f->repo->src->ops;
	int recursive = arg_bool(r, "recursive");
	int expand = arg_bool(r, "expand");
	long limit = arg_long(r, "limit", expand ? TREE_PAGE_EXPAND : TREE_PAGE, 1, TREE_PAGE_MAX);
	const char *cursor = hfm_req_arg(r, "cursor");
	char *after = NULL;
	struct hfm_list *l = NULL;
	int rc;

	if (cursor && *cursor && !(after = hfm_b64url_decode(cursor)))
		return hfm_error_set(HFM_EINVAL, "Invalid cursor");
	unsigned flags = HFM_LIST_IDS | (recursive ? HFM_LIST_RECURSIVE : 0) |
			 (expand ? HFM_LIST_EXPAND : 0);
	rc = ops->list(&l, f->repo, f->rc.commit, rt->path, flags, &c->ctx);
	if (rc == HFM_ENOENT) {
		free(after);
		return hfm_reply_error(r, HFM_ENOENT, NULL, f->rc.commit);
	}
	if (rc) {
		free(after);
		return rc;
	}
	size_t from = after ? first_after(l, after) : 0;
	size_t to = from + (size_t)limit < l->n ? from + (size_t)limit : l->n;
	free(after);

	struct hfm_buf b = HFM_BUF_INIT(JSON_MAX);
	hfm_buf_putc(&b, '[');
	for (size_t i = from; i < to; i++) {
		if (i > from)
			hfm_buf_putc(&b, ',');
		put_entry(&b, l->items[i], expand);
	}
	hfm_buf_putc(&b, ']');

	if (to < l->n) {
		struct hfm_buf link = HFM_BUF_INIT(HFM_PATH_MAX * 4);
		hfm_buf_putc(&link, '<');
		api_base(&link, r, &rt->repo);
		hfm_buf_puts(&link, "/tree/");
		hfm_buf_urlenc(&link, rt->rev, 0);
		if (rt->path[0]) {
			hfm_buf_putc(&link, '/');
			hfm_buf_urlenc(&link, rt->path, 1);
		}
		hfm_buf_printf(&link, "?recursive=%s&expand=%s&limit=%ld&cursor=",
			       recursive ? "true" : "false", expand ? "true" : "false", limit);
		hfm_buf_b64url(&link, l->items[to - 1]->path);
		hfm_buf_puts(&link, ">; rel=\"next\"");
		if (!link.err)
			hfm_req_add_header(r, "Link", link.ptr);
		hfm_buf_dispose(&link);
	}
	hfm_list_free(l);
	return reply_json_buf(r, &b);
}

/* ---- paths-info ------------------------------------------------------------ */

static int h_paths_info(struct hfm_call *c, struct hfm_found *f)
{
	struct hfm_req *r = c->req;
	const struct hfm_source_ops *ops = f->repo->src->ops;
	const struct hfm_buf *body = hfm_req_body(r);
	struct hfm_paths_body p;
	struct hfm_list *l = NULL;
	int rc;

	rc = hfm_paths_body_parse(&p, hfm_req_header(r, "Content-Type"), hfm_buf_cstr(body),
				  body->len);
	if (rc)
		goto cleanup;
	rc = ops->stat(&l, f->repo, f->rc.commit, (const char *const *)p.v, p.n,
		       HFM_LIST_IDS | (p.expand ? HFM_LIST_EXPAND : 0), &c->ctx);
	if (rc)
		goto cleanup;
	struct hfm_buf b = HFM_BUF_INIT(JSON_MAX);
	hfm_buf_putc(&b, '[');
	for (size_t i = 0; i < l->n; i++) {
		if (i)
			hfm_buf_putc(&b, ',');
		put_entry(&b, l->items[i], p.expand);
	}
	hfm_buf_putc(&b, ']');
	rc = reply_json_buf(r, &b);

cleanup:
	if (l)
		hfm_list_free(l);
	hfm_paths_body_dispose(&p);
	return rc;
}

/* ---- refs ------------------------------------------------------------------- */

static void put_refs(struct hfm_buf *b, const struct hfm_refs *refs, int kind)
{
	hfm_buf_putc(b, '[');
	for (size_t i = 0; i < refs->n[kind]; i++) {
		const struct hfm_ref *x = &refs->v[kind][i];
		if (i)
			hfm_buf_putc(b, ',');
		hfm_buf_puts(b, "{\"name\":");
		hfm_buf_json_str(b, x->name);
		hfm_buf_puts(b, ",\"ref\":");
		hfm_buf_json_str(b, x->ref);
		hfm_buf_puts(b, ",\"targetCommit\":\"");
		hfm_buf_puts(b, x->target);
		hfm_buf_puts(b, "\"}");
	}
	hfm_buf_putc(b, ']');
}

static int h_refs(struct hfm_call *c, struct hfm_found *f)
{
	struct hfm_req *r = c->req;
	struct hfm_refs *refs = NULL;
	int rc = f->repo->src->ops->refs(&refs, f->repo, &c->ctx);
	if (rc)
		return rc;
	struct hfm_buf b = HFM_BUF_INIT(JSON_MAX);
	hfm_buf_puts(&b, "{\"branches\":");
	put_refs(&b, refs, HFM_REFS_BRANCH);
	hfm_buf_puts(&b, ",\"converts\":");
	put_refs(&b, refs, HFM_REFS_CONVERT);
	hfm_buf_puts(&b, ",\"tags\":");
	put_refs(&b, refs, HFM_REFS_TAG);
	if (arg_bool(r, "include_prs")) {
		hfm_buf_puts(&b, ",\"pullRequests\":");
		put_refs(&b, refs, HFM_REFS_PR);
	}
	hfm_buf_putc(&b, '}');
	hfm_refs_free(refs);
	return reply_json_buf(r, &b);
}

/* ---- commits ----------------------------------------------------------------- */

static int h_commits(struct hfm_call *c, struct hfm_found *f)
{
	struct hfm_req *r = c->req;
	const struct hfm_route *rt = &c->route;
	long limit = arg_long(r, "limit", COMMITS_PAGE, 1, COMMITS_PAGE_MAX);
	long page = arg_long(r, "p", 0, 0, 1000000);
	struct hfm_commits *cs = NULL;
	int rc = f->repo->src->ops->commits(&cs, f->repo, f->rc.commit, (size_t)(page * limit),
					    (size_t)limit, &c->ctx);
	if (rc)
		return rc;
	struct hfm_buf b = HFM_BUF_INIT(JSON_MAX);
	hfm_buf_putc(&b, '[');
	for (size_t i = 0; i < cs->n; i++) {
		const struct hfm_commit *x = &cs->v[i];
		if (i)
			hfm_buf_putc(&b, ',');
		hfm_buf_puts(&b, "{\"id\":\"");
		hfm_buf_puts(&b, x->id);
		hfm_buf_puts(&b, "\",\"title\":");
		hfm_buf_json_str(&b, x->title ? x->title : "");
		hfm_buf_puts(&b, ",\"message\":");
		hfm_buf_json_str(&b, x->message ? x->message : "");
		hfm_buf_puts(&b, ",\"date\":");
		put_date(&b, x->date_ms);
		hfm_buf_puts(&b, ",\"authors\":[");
		if (x->author) {
			hfm_buf_puts(&b, "{\"user\":");
			hfm_buf_json_str(&b, x->author);
			hfm_buf_putc(&b, '}');
		}
		hfm_buf_puts(&b, "]}");
	}
	hfm_buf_putc(&b, ']');
	if (cs->more) {
		struct hfm_buf link = HFM_BUF_INIT(4096);
		hfm_buf_putc(&link, '<');
		api_base(&link, r, &rt->repo);
		hfm_buf_puts(&link, "/commits/");
		hfm_buf_urlenc(&link, rt->rev, 0);
		hfm_buf_printf(&link, "?limit=%ld&p=%ld>; rel=\"next\"", limit, page + 1);
		if (!link.err)
			hfm_req_add_header(r, "Link", link.ptr);
		hfm_buf_dispose(&link);
	}
	hfm_commits_free(cs);
	return reply_json_buf(r, &b);
}

/* ---- repo listing -------------------------------------------------------------- */

static const char *req_arg_n(void *r, const char *name, size_t n)
{
	return hfm_req_arg_n(r, name, n);
}

static void put_listed(struct hfm_buf *b, const struct hfm_rl_item *it, const struct hfm_rl_query *q)
{
	put_repo_ids(b, it->type, it->name);
	hfm_buf_printf(b, ",\"private\":false,\"gated\":%s,\"disabled\":false,"
		       "\"downloads\":0,\"likes\":0,\"trendingScore\":0,\"tags\":[",
		       it->gated ? "\"auto\"" : "false");
	for (size_t i = 0; i < it->ntags; i++) {
		if (i)
			hfm_buf_putc(b, ',');
		hfm_buf_json_str(b, it->tags[i]);
	}
	hfm_buf_putc(b, ']');
	if (it->commit[0]) {
		hfm_buf_puts(b, ",\"sha\":\"");
		hfm_buf_puts(b, it->commit);
		hfm_buf_puts(b, "\",\"lastModified\":");
		put_date(b, it->modified_ms);
		hfm_buf_puts(b, ",\"createdAt\":");
		put_date(b, it->created_ms);
	}
	if (q->want & HFM_RL_FILES) {
		hfm_buf_puts(b, ",\"siblings\":[");
		for (size_t i = 0; i < it->nfiles; i++) {
			if (i)
				hfm_buf_putc(b, ',');
			hfm_buf_puts(b, "{\"rfilename\":");
			hfm_buf_json_str(b, it->files[i]);
			hfm_buf_putc(b, '}');
		}
		hfm_buf_putc(b, ']');
	}
	hfm_buf_putc(b, '}');
}

/*
 * The Link to the next page: this request's query with the cursor
 * replaced, so every other argument (search, filter, expand...) carries
 * over as the client sent it.
 */
static void next_link(struct hfm_req *r, enum hfm_repo_type t, const struct hfm_rl_query *q,
		      const struct hfm_rl_item *last)
{
	struct hfm_buf link = HFM_BUF_INIT(16384);
	const char *qs = hfm_req_query(r);

	hfm_buf_printf(&link, "<%s/api/%s?", hfm_req_base_url(r), hfm_repo_type_plural(t));
	while (*qs) {
		const char *amp = strchr(qs, '&');
		size_t n = amp ? (size_t)(amp - qs) : strlen(qs);
		if (n && strncmp(qs, "cursor=", 7) && !(n == 6 && !strncmp(qs, "cursor", 6))) {
			hfm_buf_put(&link, qs, n);
			hfm_buf_putc(&link, '&');
		}
		qs += n + (amp ? 1 : 0);
	}
	struct hfm_buf cur = HFM_BUF_INIT(HFM_REPO_NAME_MAX * 2 + 64);
	hfm_rl_cursor(&cur, q, last);
	hfm_buf_puts(&link, "cursor=");
	hfm_buf_urlenc(&link, hfm_buf_cstr(&cur), 0);
	hfm_buf_puts(&link, ">; rel=\"next\"");
	if (!link.err && !cur.err)
		hfm_req_add_header(r, "Link", link.ptr);
	hfm_buf_dispose(&cur);
	hfm_buf_dispose(&link);
}

static int h_list(struct hfm_call *c)
{
	struct hfm_req *r = c->req;
	enum hfm_repo_type t = c->route.repo.type;
	struct hfm_rl_query q;
	struct hfm_rl_page page;
	int rc;

	if (hfm_rl_query_parse(&q, req_arg_n, r))
		return hfm_reply_error(r, HFM_EINVAL, hfm_error_last(), NULL);
	if ((rc = hfm_rl_run(&page, c->app->catalog, t, &q, &c->ctx)))
		return rc;
	struct hfm_buf b = HFM_BUF_INIT(JSON_MAX);
	hfm_buf_putc(&b, '[');
	for (size_t i = 0; i < page.n; i++) {
		if (i)
			hfm_buf_putc(&b, ',');
		put_listed(&b, &page.v[i], &q);
	}
	hfm_buf_putc(&b, ']');
	if (page.more)
		next_link(r, t, &q, &page.v[page.n - 1]);
	hfm_rl_page_dispose(&page);
	return reply_json_buf(r, &b);
}

/*
 * May the caller read the repo's files?  The Hub's answer for huggingface_hub
 * auth_check(): 200, or the repo's error (401/403 GatedRepo, 404).  A cache
 * of a gated repo asks its upstream (and so may a mirror chained to us).
 */
static int h_auth_check(struct hfm_call *c, struct hfm_found *f)
{
	struct hfm_req *r = c->req;
	const struct hfm_source_ops *ops = f->repo->src->ops;
	int rc = ops->access ? ops->access(f->repo, &c->ctx) : 0;

	if (rc)
		return rc == HFM_EAGAIN ? rc : hfm_reply_error(r, rc, NULL, f->rc.commit);
	struct hfm_buf b = HFM_BUF_INIT(64);
	hfm_buf_puts(&b, "{}");
	return hfm_reply_json(r, 200, &b);
}

/* ---- dispatch ---------------------------------------------------------------------- */

int hfm_h_api(struct hfm_call *c)
{
	struct hfm_req *r = c->req;
	const struct hfm_route *rt = &c->route;
	struct hfm_found f;
	int rc;

	switch (rt->kind) {
	case HFM_R_API_LIST:
		return h_list(c);
	default:
		break;
	}
	/* refs has no revision: any source holding the repo answers. */
	const char *rev = rt->rev ? rt->rev : "HEAD";
	if ((rc = hfm_catalog_find(&f, c->app->catalog, &rt->repo, rev, &c->ctx)))
		return rc;
	hfm_req_set_source(r, f.repo->src->ops->kind);
	switch (rt->kind) {
	case HFM_R_API_INFO:
	case HFM_R_API_REVISION:
		rc = h_info(c, &f);
		break;
	case HFM_R_API_TREE:
		rc = h_tree(c, &f);
		break;
	case HFM_R_API_PATHS_INFO:
		rc = h_paths_info(c, &f);
		break;
	case HFM_R_API_REFS:
		rc = h_refs(c, &f);
		break;
	case HFM_R_API_COMMITS:
		rc = h_commits(c, &f);
		break;
	case HFM_R_API_AUTH_CHECK:
		rc = h_auth_check(c, &f);
		break;
	default:
		rc = hfm_reply_not_found(r);
		break;
	}
	hfm_found_dispose(&f);
	return rc;
}
