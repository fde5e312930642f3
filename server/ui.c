/*
 * ui.c - a small read-only web page: the repos at `/`, a repo's files at
 * `/{repo}` and `/{repo}/tree/{rev}/{dir}`.  Every name is HTML-escaped and
 * every link percent-encoded; no scripts, no external assets.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfm/handlers.h"

#define PAGE_MAX (64u << 20)

static void head(struct hfm_buf *b, const char *title)
{
	hfm_buf_puts(b, "<!doctype html><html><head><meta charset=\"utf-8\"><title>");
	hfm_buf_html(b, title);
	hfm_buf_puts(b, "</title><style>body{font:14px system-ui,sans-serif;margin:2em auto;"
			"max-width:60em;padding:0 1em}table{border-collapse:collapse;width:100%}"
			"td{padding:.2em .6em;border-bottom:1px solid #eee}td.n{text-align:right;"
			"font-variant-numeric:tabular-nums}code{background:#f4f4f4;padding:.1em .3em}"
			"</style></head><body>");
}

static void human(struct hfm_buf *b, uint64_t n)
{
	static const char *u[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double v = (double)n;
	int i = 0;
	while (v >= 1024 && i < 4) {
		v /= 1024;
		i++;
	}
	if (i == 0)
		hfm_buf_printf(b, "%llu B", (unsigned long long)n);
	else
		hfm_buf_printf(b, "%.1f %s", v, u[i]);
}

static int index_page(struct hfm_call *c)
{
	struct hfm_req *r = c->req;
	struct hfm_buf b = HFM_BUF_INIT(PAGE_MAX);
	head(&b, "hfmirror");
	hfm_buf_puts(&b, "<h1>hfmirror</h1><p>A Hugging Face Hub mirror (");
	hfm_buf_html(&b, c->app->mode_label ? c->app->mode_label : "");
	hfm_buf_puts(&b, "). Point clients at it with <code>HF_ENDPOINT=");
	hfm_buf_html(&b, hfm_req_base_url(r));
	hfm_buf_puts(&b, "</code>.</p>");
	for (int t = 0; t < HFM_REPO_TYPES; t++) {
		char **names;
		size_t n;
		hfm_catalog_repo_names_for(&names, &n, c->app->catalog, (enum hfm_repo_type)t,
					   hfm_call_who(c));
		hfm_buf_printf(&b, "<h2>%s (%zu)</h2><ul>", hfm_repo_type_plural((enum hfm_repo_type)t), n);
		for (size_t i = 0; i < n; i++) {
			hfm_buf_puts(&b, "<li><a href=\"/");
			hfm_buf_puts(&b, hfm_repo_type_prefix((enum hfm_repo_type)t));
			hfm_buf_urlenc(&b, names[i], 1);
			hfm_buf_puts(&b, "\">");
			hfm_buf_html(&b, names[i]);
			hfm_buf_puts(&b, "</a></li>");
			free(names[i]);
		}
		free(names);
		hfm_buf_puts(&b, "</ul>");
	}
	hfm_buf_puts(&b, "</body></html>\n");
	return hfm_reply_html(r, 200, &b);
}

static int repo_page(struct hfm_call *c)
{
	struct hfm_req *r = c->req;
	const struct hfm_route *rt = &c->route;
	const char *rev = rt->rev ? rt->rev : "HEAD";
	struct hfm_found f;
	struct hfm_list *l = NULL;
	int rc;

	if ((rc = hfm_catalog_find(&f, c->app->catalog, &rt->repo, rev, &c->ctx)))
		return rc;
	const char *dir = rt->path ? rt->path : "";
	rc = f.repo->src->ops->list(&l, f.repo, f.rc.commit, dir, 0, &c->ctx);
	if (rc == HFM_ENOENT) {
		rc = hfm_reply_error(r, HFM_ENOENT, NULL, f.rc.commit);
		goto cleanup;
	}
	if (rc)
		goto cleanup;

	const char *prefix = hfm_repo_type_prefix(rt->repo.type);
	const char *shown_rev = rt->rev ? rt->rev : "main";
	struct hfm_buf b = HFM_BUF_INIT(PAGE_MAX);
	head(&b, rt->repo.name);
	hfm_buf_puts(&b, "<p><a href=\"/\">hfmirror</a></p><h1>");
	hfm_buf_html(&b, rt->repo.name);
	hfm_buf_puts(&b, "</h1><p>");
	hfm_buf_html(&b, hfm_repo_type_name(rt->repo.type));
	hfm_buf_puts(&b, " &middot; revision <code>");
	hfm_buf_html(&b, shown_rev);
	hfm_buf_puts(&b, "</code> &middot; commit <code>");
	hfm_buf_puts(&b, f.rc.commit);
	hfm_buf_puts(&b, "</code></p><h2>/");
	hfm_buf_html(&b, dir);
	hfm_buf_puts(&b, "</h2><table>");
	for (size_t i = 0; i < l->n; i++) {
		const struct hfm_entry *e = l->items[i];
		const char *base = strrchr(e->path, '/');
		base = base ? base + 1 : e->path;
		hfm_buf_puts(&b, "<tr><td><a href=\"/");
		hfm_buf_puts(&b, prefix);
		hfm_buf_urlenc(&b, rt->repo.name, 1);
		hfm_buf_puts(&b, e->is_dir ? "/tree/" : "/resolve/");
		hfm_buf_urlenc(&b, shown_rev, 0);
		hfm_buf_putc(&b, '/');
		hfm_buf_urlenc(&b, e->path, 1);
		hfm_buf_puts(&b, "\">");
		hfm_buf_html(&b, base);
		if (e->is_dir)
			hfm_buf_putc(&b, '/');
		hfm_buf_puts(&b, "</a></td><td class=\"n\">");
		if (!e->is_dir)
			human(&b, e->size);
		hfm_buf_puts(&b, "</td></tr>");
	}
	hfm_buf_puts(&b, "</table></body></html>\n");
	rc = hfm_reply_html(r, 200, &b);

cleanup:
	if (l)
		hfm_list_free(l);
	hfm_found_dispose(&f);
	return rc;
}

int hfm_h_ui(struct hfm_call *c)
{
	if (c->route.kind == HFM_R_UI_INDEX)
		return index_page(c);
	return repo_page(c);
}
