/*
 * ui.c - the web UI's pages: the repos of every source at `/` (search by
 * name, filter by type and source: a GET form, so it works without
 * JavaScript), a repo at `/{repo}` and `/{repo}/tree/{rev}/{dir}` (README,
 * branches and tags, files with sizes, LFS marks and download links, the
 * commands that fetch it), and `/-/status`.  Pages are built with ui.h's
 * builders, which escape every name; the listing is repolist.h's, the same
 * the API answers, so a repo the caller may not see is on no page either.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "hfm/handlers.h"
#include "hfm/repolist.h"
#include "hfm/metrics.h"
#include "hfm/ui.h"

#define README_MAX (4u << 20)

static int reply_page(struct hfm_req *r, struct hfm_buf *b)
{
	if (b->err) {
		hfm_buf_dispose(b);
		return hfm_reply_error(r, HFM_ETOOBIG, "The page is too large", NULL);
	}
	return hfm_reply_html(r, 200, b);
}

/* The kinds of the sources set in `bits` ("model-bin, cache"). */
static void put_sources(struct hfm_buf *b, const struct hfm_catalog *c, unsigned bits)
{
	int first = 1;
	for (size_t i = 0; i < c->nsources && i < 32; i++) {
		if (!(bits & (1u << i)))
			continue;
		if (!first)
			hfm_buf_puts(b, ", ");
		first = 0;
		hfm_ui_text(b, c->sources[i]->ops->kind);
	}
}

/* ---- home --------------------------------------------------------------------------- */

static const char *req_arg_n(void *r, const char *name, size_t n)
{
	return hfm_req_arg_n(r, name, n);
}

static int home_page(struct hfm_call *c)
{
	struct hfm_req *r = c->req;
	const struct hfm_catalog *cat = c->app->catalog;
	const char *qs = hfm_req_arg(r, "q");
	const char *ts = hfm_req_arg(r, "type");
	const char *ss = hfm_req_arg(r, "source");
	struct hfm_rl_query q;
	int only = -1, rc = 0;
	long src = -1;
	enum hfm_repo_type ty;

	hfm_rl_query_parse(&q, req_arg_n, r);     /* sort, direction as the API takes them */
	q.search = qs && *qs ? qs : NULL;
	q.want |= HFM_RL_SIZE;
	q.has_cursor = 0;
	if (ts && *ts && !hfm_repo_type_parse(&ty, ts))
		only = (int)ty;
	if (ss && *ss) {
		char *end;
		src = strtol(ss, &end, 10);
		if (*end || src < 0 || (size_t)src >= cat->nsources || src >= 32)
			src = -1;
	}
	q.sources = src >= 0 ? 1u << src : 0;

	struct hfm_rl_page pages[HFM_REPO_TYPES];
	memset(pages, 0, sizeof(pages));
	for (int t = 0; t < HFM_REPO_TYPES; t++)
		if ((only < 0 || only == t) &&
		    (rc = hfm_rl_run(&pages[t], cat, (enum hfm_repo_type)t, &q, &c->ctx)))
			goto cleanup;

	struct hfm_buf b = HFM_BUF_INIT(HFM_UI_PAGE_MAX);
	hfm_ui_begin(&b, "Repositories", "");
	hfm_buf_puts(&b, "<h1>Repositories</h1><p class=\"mute\">A Hugging Face Hub mirror (");
	hfm_ui_text(&b, c->app->mode_label);
	hfm_buf_puts(&b, "). Point clients at it with <code>HF_ENDPOINT=");
	hfm_ui_text(&b, hfm_req_base_url(r));
	hfm_buf_puts(&b, "</code>.</p>");

	hfm_buf_puts(&b, "<form class=\"search\" method=\"get\" action=\"/\" role=\"search\">"
			 "<input type=\"search\" name=\"q\" placeholder=\"Search by name\" "
			 "aria-label=\"Search by name\" value=\"");
	hfm_ui_text(&b, qs);
	hfm_buf_puts(&b, "\"><select name=\"type\" aria-label=\"Type\"><option value=\"\">All types</option>");
	for (int t = 0; t < HFM_REPO_TYPES; t++) {
		hfm_buf_printf(&b, "<option value=\"%s\"%s>%s</option>",
			       hfm_repo_type_plural((enum hfm_repo_type)t), only == t ? " selected" : "",
			       hfm_repo_type_plural((enum hfm_repo_type)t));
	}
	hfm_buf_puts(&b, "</select><select name=\"source\" aria-label=\"Source\">"
			 "<option value=\"\">All sources</option>");
	for (size_t i = 0; i < cat->nsources && i < 32; i++) {
		hfm_buf_printf(&b, "<option value=\"%zu\"%s>", i, (long)i == src ? " selected" : "");
		hfm_ui_text(&b, cat->sources[i]->ops->kind);
		hfm_buf_puts(&b, "</option>");
	}
	hfm_buf_puts(&b, "</select><button type=\"submit\">Search</button></form>");

	size_t shown = 0;
	for (int t = 0; t < HFM_REPO_TYPES; t++)
		shown += pages[t].n;
	hfm_buf_printf(&b, "<table id=\"repos\"><thead><tr><th>Name</th><th>Type</th><th>Source</th>"
			   "<th class=\"n\">Size</th><th class=\"n\">Last modified</th></tr></thead><tbody>");
	for (int t = 0; t < HFM_REPO_TYPES; t++) {
		for (size_t i = 0; i < pages[t].n; i++) {
			const struct hfm_rl_item *it = &pages[t].v[i];
			hfm_buf_puts(&b, "<tr class=\"repo\"><td class=\"name\"><a");
			hfm_ui_repo_href(&b, it->type, it->name, NULL, NULL, NULL);
			hfm_buf_puts(&b, ">");
			hfm_ui_text(&b, it->name);
			hfm_buf_puts(&b, "</a>");
			if (it->gated)
				hfm_buf_puts(&b, " <span class=\"badge gated\" title=\"downloads need a token the "
						 "upstream accepts\">gated</span>");
			for (size_t k = 0; k < it->ntags && k < 6; k++) {
				hfm_buf_puts(&b, " <span class=\"tag\">");
				hfm_ui_text(&b, it->tags[k]);
				hfm_buf_puts(&b, "</span>");
			}
			hfm_buf_printf(&b, "</td><td>%s</td><td>", hfm_repo_type_name(it->type));
			put_sources(&b, cat, it->sources);
			hfm_buf_puts(&b, "</td><td class=\"n\">");
			if (it->commit[0])
				hfm_ui_size(&b, it->size);
			else
				hfm_buf_puts(&b, "&mdash;");
			hfm_buf_puts(&b, "</td><td class=\"n\">");
			hfm_ui_date(&b, it->modified_ms);
			hfm_buf_puts(&b, "</td></tr>");
		}
		if (pages[t].more)
			hfm_buf_printf(&b, "<tr><td colspan=\"5\" class=\"mute\">%zu more %s: narrow the "
				       "search</td></tr>", pages[t].total - pages[t].n,
				       hfm_repo_type_plural((enum hfm_repo_type)t));
	}
	if (!shown)
		hfm_buf_puts(&b, "<tr><td colspan=\"5\" class=\"mute\" id=\"none\">No repository matches."
				 "</td></tr>");
	hfm_buf_puts(&b, "</tbody></table>");
	hfm_ui_end(&b);
	rc = reply_page(r, &b);
cleanup:
	for (int t = 0; t < HFM_REPO_TYPES; t++)
		hfm_rl_page_dispose(&pages[t]);
	return rc;
}

/* ---- a repo ---------------------------------------------------------------------------- */

static void put_refs(struct hfm_buf *b, const struct hfm_refs *refs, enum hfm_repo_type t,
		     const char *name, const char *current)
{
	static const char *const what[] = { "Branches", "Tags" };
	for (int k = HFM_REFS_BRANCH; k <= HFM_REFS_TAG; k++) {
		if (!refs || !refs->n[k])
			continue;
		hfm_buf_printf(b, "<p class=\"refs\"><span class=\"mute\">%s:</span> ", what[k]);
		for (size_t i = 0; i < refs->n[k]; i++) {
			const char *rn = refs->v[k][i].name;
			hfm_buf_puts(b, "<a");
			hfm_ui_repo_href(b, t, name, "tree", rn, NULL);
			if (!strcmp(rn, current))
				hfm_buf_puts(b, " class=\"on\" aria-current=\"page\"");
			hfm_buf_putc(b, '>');
			hfm_ui_text(b, rn);
			hfm_buf_puts(b, "</a>");
		}
		hfm_buf_puts(b, "</p>");
	}
}

static void put_commands(struct hfm_buf *b, struct hfm_req *r, enum hfm_repo_type t,
			 const char *name, const char *rev, int rev_given)
{
	const char *base = hfm_req_base_url(r);
	const char *type_flag = t == HFM_DATASET ? " --repo-type dataset" :
				t == HFM_SPACE ? " --repo-type space" : "";
	char *revf = rev_given ? hfm_asprintf(" --revision %s", rev) : hfm_strdup("");
	char *s;

	hfm_buf_puts(b, "<h2>Download</h2><dl class=\"cmds\">");
	s = hfm_asprintf("HF_ENDPOINT=%s hf download %s%s%s", base, name, type_flag, revf);
	hfm_ui_command(b, "hf (huggingface_hub 1.x)", s);
	free(s);
	s = hfm_asprintf("HF_ENDPOINT=%s huggingface-cli download %s%s%s", base, name, type_flag, revf);
	hfm_ui_command(b, "huggingface-cli (older huggingface_hub)", s);
	free(s);
	s = rev_given ? hfm_asprintf("git clone --branch %s %s/%s%s", rev, base, hfm_repo_type_prefix(t), name)
		      : hfm_asprintf("git clone %s/%s%s", base, hfm_repo_type_prefix(t), name);
	hfm_ui_command(b, "git (with git-lfs for large files)", s);
	free(s);
	free(revf);
	hfm_buf_puts(b, "</dl>");
}

static int repo_page(struct hfm_call *c)
{
	struct hfm_req *r = c->req;
	const struct hfm_route *rt = &c->route;
	const struct hfm_catalog *cat = c->app->catalog;
	const char *rev = rt->rev ? rt->rev : "HEAD";
	struct hfm_found f;
	struct hfm_list *l = NULL;
	struct hfm_refs *refs = NULL;
	struct hfm_buf readme = HFM_BUF_INIT(README_MAX + 1);
	int rc, have_readme = 0;

	if ((rc = hfm_catalog_find(&f, cat, &rt->repo, rev, &c->ctx)))
		return rc;
	const struct hfm_source_ops *ops = f.repo->src->ops;
	hfm_req_set_source(r, ops->kind);
	const char *dir = rt->path ? rt->path : "";
	rc = ops->list(&l, f.repo, f.rc.commit, dir, HFM_LIST_IDS, &c->ctx);   /* LFS marks */
	if (rc == HFM_ENOENT) {
		rc = hfm_reply_error(r, HFM_ENOENT, NULL, f.rc.commit);
		goto cleanup;
	}
	if (rc)
		goto cleanup;
	if (ops->refs && (rc = ops->refs(&refs, f.repo, &c->ctx))) {
		if (rc == HFM_EAGAIN)
			goto cleanup;
		refs = NULL;             /* the page without its branches */
	}
	if (!*dir) {
		rc = hfm_catalog_read(&readme, cat, &f, "README.md", README_MAX, &c->ctx);
		if (rc == HFM_EAGAIN)
			goto cleanup;
		have_readme = rc == 0;
	}

	/* the default branch's name, for links that stay on it */
	const char *shown_rev = rt->rev;
	if (!shown_rev) {
		shown_rev = "main";
		for (size_t i = 0; refs && i < refs->n[HFM_REFS_BRANCH]; i++)
			if (!strcmp(refs->v[HFM_REFS_BRANCH][i].target, f.rc.commit))
				shown_rev = refs->v[HFM_REFS_BRANCH][i].name;
		for (size_t i = 0; refs && i < refs->n[HFM_REFS_BRANCH]; i++)
			if (!strcmp(refs->v[HFM_REFS_BRANCH][i].name, "main") &&
			    !strcmp(refs->v[HFM_REFS_BRANCH][i].target, f.rc.commit))
				shown_rev = "main";
	}
	enum hfm_repo_type t = rt->repo.type;
	const char *name = rt->repo.name;
	struct hfm_buf b = HFM_BUF_INIT(HFM_UI_PAGE_MAX);
	hfm_ui_begin(&b, name, "repo");
	hfm_buf_printf(&b, "<p class=\"mute\">%s</p><h1><a", hfm_repo_type_name(t));
	hfm_ui_repo_href(&b, t, name, NULL, NULL, NULL);
	hfm_buf_putc(&b, '>');
	hfm_ui_text(&b, name);
	hfm_buf_puts(&b, "</a></h1><p class=\"mute\">from ");
	hfm_ui_text(&b, ops->kind);
	hfm_buf_puts(&b, " &middot; revision <code>");
	hfm_ui_text(&b, shown_rev);
	hfm_buf_puts(&b, "</code> &middot; commit <code>");
	hfm_buf_puts(&b, f.rc.commit);
	hfm_buf_puts(&b, "</code> &middot; ");
	hfm_ui_date(&b, f.rc.date_ms);
	hfm_buf_puts(&b, "</p>");
	put_refs(&b, refs, t, name, shown_rev);

	/* breadcrumbs: each parent directory links to its tree */
	hfm_buf_puts(&b, "<h2 class=\"crumbs\" id=\"files\"><a");
	hfm_ui_repo_href(&b, t, name, "tree", shown_rev, NULL);
	hfm_buf_puts(&b, ">Files</a>");
	if (*dir) {
		char *d = hfm_strdup(dir);
		for (char *p = d;; p++) {
			char ch = *p;
			if (ch != '/' && ch != '\0')
				continue;
			*p = '\0';
			const char *seg = strrchr(d, '/');
			hfm_buf_puts(&b, " / <a");
			hfm_ui_repo_href(&b, t, name, "tree", shown_rev, d);
			hfm_buf_putc(&b, '>');
			hfm_ui_text(&b, seg ? seg + 1 : d);
			hfm_buf_puts(&b, "</a>");
			*p = ch;
			if (!ch)
				break;
		}
		free(d);
	}
	hfm_buf_puts(&b, "</h2><table id=\"tree\"><thead><tr><th>Name</th><th class=\"n\">Size</th>"
			 "<th></th></tr></thead><tbody>");
	for (size_t i = 0; i < l->n; i++) {
		const struct hfm_entry *e = l->items[i];
		const char *base = strrchr(e->path, '/');
		base = base ? base + 1 : e->path;
		hfm_buf_printf(&b, "<tr class=\"%s\"><td class=\"name\"><a", e->is_dir ? "dir" : "file");
		hfm_ui_repo_href(&b, t, name, e->is_dir ? "tree" : "resolve", shown_rev, e->path);
		hfm_buf_putc(&b, '>');
		hfm_ui_text(&b, base);
		if (e->is_dir)
			hfm_buf_putc(&b, '/');
		hfm_buf_puts(&b, "</a>");
		if (e->is_lfs)
			hfm_buf_puts(&b, " <span class=\"badge lfs\" title=\"stored with Git LFS\">LFS</span>");
		hfm_buf_puts(&b, "</td><td class=\"n\">");
		if (!e->is_dir)
			hfm_ui_size(&b, e->size);
		hfm_buf_puts(&b, "</td><td class=\"n\">");
		if (!e->is_dir) {
			hfm_buf_puts(&b, "<a download");
			hfm_ui_repo_href(&b, t, name, "resolve", shown_rev, e->path);
			hfm_buf_puts(&b, ">download</a>");
		}
		hfm_buf_puts(&b, "</td></tr>");
	}
	if (!l->n)
		hfm_buf_puts(&b, "<tr><td colspan=\"3\" class=\"mute\">Empty.</td></tr>");
	hfm_buf_puts(&b, "</tbody></table>");
	put_commands(&b, r, t, name, shown_rev, rt->rev_given);
	if (have_readme) {
		hfm_buf_puts(&b, "<h2>README.md</h2><article class=\"readme\">");
		hfm_ui_markdown(&b, readme.ptr, readme.len);
		hfm_buf_puts(&b, "</article>");
	}
	hfm_ui_end(&b);
	rc = reply_page(r, &b);

cleanup:
	hfm_buf_dispose(&readme);
	if (refs)
		hfm_refs_free(refs);
	if (l)
		hfm_list_free(l);
	hfm_found_dispose(&f);
	return rc;
}

/* ---- status ------------------------------------------------------------------------------- */

/* The sum of the n series from `first` whose index modulo `mod` is `rem` (mod 0: all). */
static double metric_sum(enum hfm_metric first, unsigned n, unsigned mod, unsigned rem)
{
	double v = 0;

	for (unsigned i = 0; i < n; i++)
		if (!mod || i % mod == rem)
			v += (double)hfm_metrics_get((enum hfm_metric)(first + i));
	return v;
}

/* Bytes and objects under <store>/objects, counted up to a bound. */
static void store_usage(const char *root, uint64_t *bytes, uint64_t *objects, int *partial)
{
	char p[4096];
	*bytes = *objects = 0;
	*partial = 0;
	for (int i = 0; i < 256; i++) {
		snprintf(p, sizeof(p), "%s/objects/%02x", root, i);
		DIR *d = opendir(p);
		struct dirent *de;
		while (d && (de = readdir(d))) {
			struct stat st;
			if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, 0) ||
			    !S_ISREG(st.st_mode))
				continue;
			*bytes += (uint64_t)st.st_blocks * 512;
			if (++*objects >= 1000000) {
				*partial = 1;
				closedir(d);
				return;
			}
		}
		if (d)
			closedir(d);
	}
}

static int status_page(struct hfm_call *c)
{
	struct hfm_req *r = c->req;
	const struct hfm_catalog *cat = c->app->catalog;
	struct hfm_buf b = HFM_BUF_INIT(HFM_UI_PAGE_MAX);
	double v, hit, all;

	hfm_ui_begin(&b, "Status", "status");
	hfm_buf_puts(&b, "<h1>Status</h1><h2>Server</h2><dl class=\"kv\"><dt>Mode</dt><dd>");
	hfm_ui_text(&b, c->app->mode_label);
	hfm_buf_puts(&b, "</dd><dt>Endpoint</dt><dd><code>");
	hfm_ui_text(&b, hfm_req_base_url(r));
	hfm_buf_puts(&b, "</code></dd>");
	/* the metrics module's series (metrics.h), the figures /metrics shows */
	v = (double)hfm_metrics_get(HFM_M_START_TIME);
	if (v > 0)
		hfm_buf_printf(&b, "<dt>Uptime</dt><dd>%.0f s</dd>", (double)time(NULL) - v);
	const unsigned nreq = HFM_MR__N * HFM_MS__N * HFM_MC__N;
	hfm_buf_printf(&b, "<dt>Requests</dt><dd>%.0f (%.0f answered 5xx)</dd>",
		       metric_sum(HFM_M_REQUESTS, nreq, 0, 0),
		       metric_sum(HFM_M_REQUESTS, nreq, HFM_MC__N, HFM_MC_5XX));
	hfm_buf_puts(&b, "<dt>Cache hit ratio</dt><dd id=\"hit-ratio\">");
	/* hits over all file answers the cache gave */
	hit = (double)hfm_metrics_get((enum hfm_metric)(HFM_M_CACHE_ANSWERS + HFM_MCACHE_HIT - 1));
	all = metric_sum(HFM_M_CACHE_ANSWERS, HFM_MCACHE__N - 1, 0, 0);
	if (all > 0)
		hfm_buf_printf(&b, "%.1f%% (%.0f of %.0f answers from the store)", 100 * hit / all, hit, all);
	else
		hfm_buf_puts(&b, "<span class=\"mute\">no cache answers yet</span>");
	hfm_buf_puts(&b, "</dd></dl>");

	hfm_buf_puts(&b, "<h2>Sources</h2><table id=\"sources\"><thead><tr><th>#</th><th>Kind</th>"
			 "<th>Reads from</th><th>Upstream</th></tr></thead><tbody>");
	for (size_t i = 0; i < cat->nsources; i++) {
		struct hfm_source *s = cat->sources[i];
		struct hfm_source_status st = { 0 };
		if (s->ops->status)
			s->ops->status(s, &st);
		hfm_buf_printf(&b, "<tr><td>%zu</td><td>", i + 1);
		hfm_ui_text(&b, s->ops->kind);
		hfm_buf_puts(&b, "</td><td><code>");
		hfm_ui_text(&b, s->label);
		hfm_buf_puts(&b, "</code></td><td>");
		if (st.upstream) {
			static const char *const states[] = { "", "<span class=\"ok\">reachable</span>",
				"<span class=\"bad\">unreachable (held down)</span>",
				"<span class=\"mute\">offline</span>" };
			hfm_ui_text(&b, st.upstream);
			hfm_buf_printf(&b, ": <span class=\"upstream-state\">%s</span>", states[st.state]);
			hfm_buf_printf(&b, "<br><span class=\"mute\">%llu requests, ",
				       (unsigned long long)st.upstream_requests);
			hfm_ui_size(&b, st.upstream_bytes);
			hfm_buf_printf(&b, ", unreachable %llu times</span>",
				       (unsigned long long)st.upstream_unreachable);
		} else {
			hfm_buf_puts(&b, "<span class=\"mute\">none</span>");
		}
		hfm_buf_puts(&b, "</td></tr>");
	}
	hfm_buf_puts(&b, "</tbody></table>");

	for (size_t i = 0; i < cat->nsources; i++) {
		struct hfm_source *s = cat->sources[i];
		struct hfm_source_status st = { 0 };
		if (!s->ops->status)
			continue;
		s->ops->status(s, &st);
		if (!st.store)
			continue;
		uint64_t bytes, objects;
		int partial;
		struct statvfs fs;
		store_usage(st.store, &bytes, &objects, &partial);
		hfm_buf_puts(&b, "<h2>Store</h2><dl class=\"kv\" id=\"store\"><dt>Path</dt><dd><code>");
		hfm_ui_text(&b, st.store);
		hfm_buf_printf(&b, "</code></dd><dt>Objects</dt><dd>%s%llu, ", partial ? "at least " : "",
			       (unsigned long long)objects);
		hfm_ui_size(&b, bytes);
		hfm_buf_puts(&b, "</dd>");
		if (!statvfs(st.store, &fs)) {
			hfm_buf_puts(&b, "<dt>Filesystem</dt><dd>");
			hfm_ui_size(&b, (uint64_t)fs.f_bavail * fs.f_frsize);
			hfm_buf_puts(&b, " free of ");
			hfm_ui_size(&b, (uint64_t)fs.f_blocks * fs.f_frsize);
			hfm_buf_puts(&b, "</dd>");
		}
		hfm_buf_printf(&b, "<dt>Fills</dt><dd>%llu started, %llu failed, %llu blobs verified, ",
			       (unsigned long long)st.fills, (unsigned long long)st.fill_failures,
			       (unsigned long long)st.verified);
		hfm_ui_size(&b, st.bytes_written);
		hfm_buf_printf(&b, " written; %llu blobs open now</dd></dl>",
			       (unsigned long long)st.open_blobs);
		break;                   /* one store per server */
	}
	hfm_ui_end(&b);
	return reply_page(r, &b);
}

static int css(struct hfm_req *r)
{
	struct hfm_buf b = HFM_BUF_INIT(1u << 16);
	hfm_buf_puts(&b, hfm_ui_css);
	hfm_req_add_header(r, "Cache-Control", "public, max-age=3600");
	return hfm_reply_text(r, 200, "text/css; charset=utf-8", &b);
}

int hfm_h_ui(struct hfm_call *c)
{
	switch (c->route.kind) {
	case HFM_R_UI_INDEX:
		return home_page(c);
	case HFM_R_UI_STATUS:
		return status_page(c);
	case HFM_R_UI_CSS:
		return css(c->req);
	default:
		return repo_page(c);
	}
}
