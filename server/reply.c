/*
 * reply.c - the Hub's reply rules (see reply.h).
 *
 * The rules are the pure functions at the top; the hfm_reply_*() functions
 * below only turn their decisions into headers and a body for the
 * transport.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hfm/range.h"
#include "hfm/reply.h"

/* ---- the rules ------------------------------------------------------------ */

struct err_map {
	int code;
	unsigned status;
	const char *hub_code;        /* X-Error-Code or NULL */
	const char *dflt;
};

static const struct err_map err_maps[] = {
	{ HFM_ENOREPO, 404, "RepoNotFound", "Repository not found" },
	{ HFM_EDENIED, 404, "RepoNotFound", "Repository not found" },
	{ HFM_ENOREV, 404, "RevisionNotFound", "Invalid rev id" },
	{ HFM_ENOENT, 404, "EntryNotFound", "Entry not found" },
	/* not EntryNotFound: clients would record the listed file as absent */
	{ HFM_EUNAVAIL, 502, NULL, "The content of this file is not in this mirror" },
	{ HFM_EGATED, 401, "GatedRepo", "Access to this repository is restricted" },
	{ HFM_EINVAL, 400, NULL, "Bad request" },
	{ HFM_ETOOBIG, 413, NULL, "Request too large" },
	{ HFM_EUPSTREAM, 502, NULL, "Upstream hub error" },
	{ HFM_ETIMEOUT, 504, NULL, "Upstream hub timed out" },
	{ HFM_EOFFLINE, 503, NULL, "This mirror is offline" },
	{ HFM_EAGAIN, 503, NULL, "The request waited too long; retry later" },
	{ HFM_ECORRUPT, 500, NULL, "Stored content is corrupt" },
	/* the Hub's words for a missing or bad token */
	{ HFM_EAUTH, 401, NULL, "Invalid credentials in Authorization header" },
	{ HFM_ERATE, 429, NULL, "Too many failed token checks from this address; retry later" },
};

void hfm_error_rule(struct hfm_error_rule *out, int code, int authorized)
{
	out->status = 500;
	out->hub_code = NULL;
	out->dflt = "Internal error";
	for (size_t i = 0; i < HFM_ARRAY_SIZE(err_maps); i++)
		if (err_maps[i].code == code) {
			out->status = err_maps[i].status;
			out->hub_code = err_maps[i].hub_code;
			out->dflt = err_maps[i].dflt;
		}
	if (code == HFM_EGATED && authorized)
		out->status = 403;
}

int hfm_etag_matches(const char *hdr, const char *etag)
{
	if (!hdr)
		return 0;
	size_t el = strlen(etag);
	const char *p = hdr;
	while (*p) {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (*p == '*')
			return 1;
		if (p[0] == 'W' && p[1] == '/')
			p += 2;
		int q = *p == '"';
		if (q)
			p++;
		const char *s = p;
		while (*p && *p != ',' && (q ? *p != '"' : *p != ' '))
			p++;
		if ((size_t)(p - s) == el && !memcmp(s, etag, el))
			return 1;
		if (q && *p == '"')
			p++;
		while (*p && *p != ',')
			p++;
	}
	return 0;
}

int hfm_if_range_keeps(const char *hdr, const char *etag, int64_t mtime_ms)
{
	if (!hdr)
		return 0;
	const char *b = hdr, *e = hdr + strlen(hdr);
	while (b < e && (*b == ' ' || *b == '\t'))
		b++;
	while (e > b && (e[-1] == ' ' || e[-1] == '\t'))
		e--;
	size_t n = (size_t)(e - b), el = strlen(etag);
	if (n && *b == '"')          /* one strong entity-tag, compared strongly */
		return n == el + 2 && b[n - 1] == '"' && !memcmp(b + 1, etag, el);
	if (mtime_ms <= 0)
		return 0;
	/* A date is the file's time exactly, as IMF-fixdate (what a
	 * Last-Modified of it would say); a weak or other validator is not. */
	char date[64];
	time_t t = (time_t)(mtime_ms / 1000);
	struct tm tm;
	gmtime_r(&t, &tm);
	size_t dl = strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	return dl && n == dl && !memcmp(b, date, dl);
}

const char *hfm_content_type_for(const char *path)
{
	const char *slash = strrchr(path, '/');
	const char *base = slash ? slash + 1 : path;
	const char *dot = strrchr(base, '.');
	if (!dot)
		return "application/octet-stream";
	dot++;
	static const struct { const char *ext, *type; } types[] = {
		{ "json", "application/json" },
		{ "txt", "text/plain; charset=utf-8" },
		{ "md", "text/plain; charset=utf-8" },
		{ "py", "text/plain; charset=utf-8" },
		{ "csv", "text/csv; charset=utf-8" },
		{ "yaml", "text/plain; charset=utf-8" },
		{ "yml", "text/plain; charset=utf-8" },
		/* Never let a repo's HTML or SVG run in a browser on our origin. */
		{ "html", "text/plain; charset=utf-8" },
		{ "htm", "text/plain; charset=utf-8" },
		{ "svg", "text/plain; charset=utf-8" },
		{ "png", "image/png" },
		{ "jpg", "image/jpeg" },
		{ "jpeg", "image/jpeg" },
	};
	for (size_t i = 0; i < HFM_ARRAY_SIZE(types); i++)
		if (hfm_strieq(dot, types[i].ext))
			return types[i].type;
	return "application/octet-stream";
}

void hfm_file_decide(struct hfm_file_decision *out, const struct hfm_entry *e, uint64_t size,
		     int raw, const char *if_none_match, const char *range, const char *if_range)
{
	const char *etag = e->is_lfs && !raw ? e->lfs_oid : e->oid;

	memset(out, 0, sizeof(*out));
	out->linked = e->is_lfs && !raw;
	out->size = size;
	snprintf(out->etag, sizeof(out->etag), "\"%s\"", etag);

	if (hfm_etag_matches(if_none_match, etag)) {
		out->status = 304;
		return;
	}
	if (range && if_range && !hfm_if_range_keeps(if_range, etag, e->mtime_ms))
		range = NULL;                /* not known to be the same: send it whole */
	out->status = 200;
	out->start = 0;
	out->len = size;
	switch (hfm_range_parse(range, size, &out->start, &out->len)) {
	case HFM_RANGE_NONE:
		break;
	case HFM_RANGE_PARTIAL:
		snprintf(out->content_range, sizeof(out->content_range), "bytes %llu-%llu/%llu",
			 (unsigned long long)out->start, (unsigned long long)(out->start + out->len - 1),
			 (unsigned long long)size);
		out->status = 206;
		break;
	case HFM_RANGE_UNSATISFIABLE:
		snprintf(out->content_range, sizeof(out->content_range), "bytes */%llu",
			 (unsigned long long)size);
		out->status = 416;
		out->start = out->len = 0;
		return;
	case HFM_RANGE_EMPTY_FILE:
		snprintf(out->content_range, sizeof(out->content_range), "bytes */0");
		break;
	}
	out->content_type = hfm_content_type_for(e->path);
}

/* ---- replies ---------------------------------------------------------------- */

/* What every answer carries: CORS for browser clients (@huggingface/hub),
 * and the Hub's echo of a trace id as X-Request-Id. */
static void common_headers(struct hfm_req *r)
{
	hfm_req_add_header(r, "Access-Control-Allow-Origin", "*");
	hfm_req_add_header(r, "Access-Control-Expose-Headers",
		"X-Repo-Commit,X-Linked-Etag,X-Linked-Size,ETag,Content-Range,"
		"Accept-Ranges,Content-Length,Link,X-Error-Code,X-Error-Message,X-Request-Id");
	const char *trace = hfm_req_header(r, "X-Amzn-Trace-Id");
	if (trace && strlen(trace) < 200 && !strpbrk(trace, "\r\n"))
		hfm_req_add_header(r, "X-Request-Id", trace);
}

int hfm_reply_text(struct hfm_req *r, unsigned status, const char *content_type,
		   struct hfm_buf *body)
{
	common_headers(r);
	if (content_type)
		hfm_req_add_header(r, "Content-Type", content_type);
	return hfm_req_respond(r, status, body);
}

int hfm_reply_json(struct hfm_req *r, unsigned status, struct hfm_buf *body)
{
	return hfm_reply_text(r, status, "application/json; charset=utf-8", body);
}

int hfm_reply_html(struct hfm_req *r, unsigned status, struct hfm_buf *body)
{
	return hfm_reply_text(r, status, "text/html; charset=utf-8", body);
}

int hfm_reply_not_found(struct hfm_req *r)
{
	struct hfm_buf b = HFM_BUF_INIT(256);
	hfm_buf_puts(&b, "{\"error\":\"Not Found\"}");
	return hfm_reply_json(r, 404, &b);
}

int hfm_reply_error(struct hfm_req *r, int code, const char *message, const char *commit)
{
	struct hfm_error_rule rule;
	hfm_error_rule(&rule, code, hfm_req_header(r, "Authorization") != NULL);
	if (!message || !*message) {
		const char *last = hfm_error_last();
		message = last && *last ? last : rule.dflt;
	}
	/* Header values must be one line of printable bytes. */
	char hmsg[512];
	size_t k = 0;
	for (const char *p = message; *p && k < sizeof(hmsg) - 1; p++)
		hmsg[k++] = ((unsigned char)*p < 0x20 || *p == 0x7f) ? ' ' : *p;
	hmsg[k] = '\0';

	struct hfm_buf b = HFM_BUF_INIT(4096);
	hfm_buf_puts(&b, "{\"error\":");
	hfm_buf_json_str(&b, message);
	hfm_buf_puts(&b, "}");
	if (rule.hub_code)
		hfm_req_add_header(r, "X-Error-Code", rule.hub_code);
	hfm_req_add_header(r, "X-Error-Message", hmsg);
	if (commit && *commit)
		hfm_req_add_header(r, "X-Repo-Commit", commit);
	if (rule.status == 503)
		hfm_req_add_header(r, "Retry-After", "5");
	return hfm_reply_json(r, rule.status, &b);
}

int hfm_reply_file(struct hfm_req *r, const struct hfm_entry *e, struct hfm_body *body,
		   const char *commit, int raw)
{
	struct hfm_file_decision d;
	hfm_file_decide(&d, e, body->size, raw, hfm_req_header(r, "If-None-Match"),
			hfm_req_header(r, "Range"), hfm_req_header(r, "If-Range"));
	if (body->source_kind)
		hfm_req_set_source(r, body->source_kind);
	hfm_req_set_cache(r, body->cache);

	common_headers(r);
	hfm_req_add_header(r, "X-Repo-Commit", commit);
	hfm_req_add_header(r, "ETag", d.etag);
	if (d.linked) {
		char num[32];
		snprintf(num, sizeof(num), "%llu", (unsigned long long)d.size);
		hfm_req_add_header(r, "X-Linked-Etag", d.etag);
		hfm_req_add_header(r, "X-Linked-Size", num);
	}
	hfm_req_add_header(r, "Accept-Ranges", "bytes");
	if (d.content_range[0])
		hfm_req_add_header(r, "Content-Range", d.content_range);
	if (!d.content_type) {               /* 304, 416: headers only */
		hfm_body_dispose(body);
		return hfm_req_respond(r, d.status, NULL);
	}
	hfm_req_add_header(r, "Content-Type", d.content_type);
	hfm_req_add_header(r, "X-Content-Type-Options", "nosniff");
	int rc = hfm_req_respond_body(r, d.status, body, d.start, d.len);
	if (rc && rc != HFM_EAGAIN && !hfm_req_replied(r))
		rc = hfm_reply_error(r, rc, NULL, commit);
	return rc;
}
