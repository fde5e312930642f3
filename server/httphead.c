/*
 * httphead.c - the request head rules (see httphead.h).
 *
 * The raw scanner and the parsed-field check feed every field through one
 * accumulator (struct fields), so a rule means the same on both paths.
 */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "hfm/httphead.h"

/* ---- field rules ------------------------------------------------------------ */

/* RFC 9110 §5.6.2 tchar */
static int is_tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
	       (c && strchr("!#$%&'*+-.^_`|~", c));
}

static int is_ows(char c)
{
	return c == ' ' || c == '\t';
}

/* uri-host [":" port] (RFC 3986 reg-name, IP-literal, IPv4): no delimiters
 * that would change what an absolute URL built from it points at. */
static int host_value_ok(const char *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)v[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      (c && strchr("-._~!$&'()*+,;=:[]%", c))))
			return 0;
	}
	return 1;
}

struct fields {
	unsigned status;             /* the first problem found, 0 if none */
	const char *why;
	unsigned host, cl, te;
	const char *host_v, *cl_v, *te_v;
	size_t host_n, cl_n, te_n;
};

static void problem(struct fields *f, unsigned status, const char *why)
{
	if (!f->status) {
		f->status = status;
		f->why = why;
	}
}

static void trim(const char **v, size_t *n)
{
	while (*n && is_ows(**v)) {
		(*v)++;
		(*n)--;
	}
	while (*n && is_ows((*v)[*n - 1]))
		(*n)--;
}

static int name_is(const char *name, size_t n, const char *want)
{
	return strlen(want) == n && hfm_strnieq(name, want, n);
}

static void field(struct fields *f, const char *name, size_t nl, const char *v, size_t vl)
{
	if (!nl) {
		problem(f, 400, "Empty header name");
		return;
	}
	for (size_t i = 0; i < nl; i++) {
		if (is_ows(name[i])) {
			problem(f, 400, "Whitespace between a header name and its colon");
			return;
		}
		if (!is_tchar((unsigned char)name[i])) {
			problem(f, 400, "Invalid byte in a header name");
			return;
		}
	}
	for (size_t i = 0; i < vl; i++) {
		unsigned char c = (unsigned char)v[i];
		if (c == 0) {
			problem(f, 400, "NUL byte in a header value");
			return;
		}
		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			problem(f, 400, "Control byte in a header value");
			return;
		}
	}
	trim(&v, &vl);
	if (name_is(name, nl, "Host")) {
		f->host++;
		f->host_v = v;
		f->host_n = vl;
	} else if (name_is(name, nl, "Content-Length")) {
		f->cl++;
		f->cl_v = v;
		f->cl_n = vl;
	} else if (name_is(name, nl, "Transfer-Encoding")) {
		f->te++;
		f->te_v = v;
		f->te_n = vl;
	}
}

/* The verdict once every field was seen (RFC 9112 §3.2, §6.1, §6.3). */
static unsigned verdict(struct fields *f, int http11, uint64_t max_body, const char **why)
{
	if (!f->status) {
		if (http11 && !f->host)
			problem(f, 400, "HTTP/1.1 request without a Host header");
		else if (f->host > 1)
			problem(f, 400, "More than one Host header");
		else if (f->host && !host_value_ok(f->host_v, f->host_n))
			problem(f, 400, "Invalid Host header");
		else if (f->cl > 1)
			problem(f, 400, "More than one Content-Length header");
		else if (f->te && f->cl)
			problem(f, 400, "Transfer-Encoding together with Content-Length");
		else if (f->te > 1)
			problem(f, 400, "More than one Transfer-Encoding header");
		else if (f->te && !http11)
			problem(f, 400, "Transfer-Encoding in an HTTP/1.0 request");
		else if (f->te && !(f->te_n == 7 && hfm_strnieq(f->te_v, "chunked", 7)))
			problem(f, 400, "Transfer-Encoding other than chunked");
		else if (f->te)
			problem(f, 411, "Chunked request bodies are not accepted: send Content-Length");
	}
	if (!f->status && f->cl) {
		uint64_t v = 0;
		size_t i;
		for (i = 0; i < f->cl_n && f->cl_v[i] >= '0' && f->cl_v[i] <= '9'; i++)
			if (v <= max_body)
				v = v * 10 + (uint64_t)(f->cl_v[i] - '0');
		if (!f->cl_n || i < f->cl_n)
			problem(f, 400, "Invalid Content-Length");
		else if (v > max_body)
			problem(f, 413, "Request body too large");
	}
	*why = f->why;
	return f->status;
}

unsigned hfm_head_check_fields(const struct hfm_head_field *fl, size_t n, int http11,
			       uint64_t max_body, const char **why)
{
	struct fields f;
	memset(&f, 0, sizeof(f));
	for (size_t i = 0; i < n; i++)
		field(&f, fl[i].name, fl[i].name_len, fl[i].value, fl[i].value_len);
	return verdict(&f, http11, max_body, why);
}

size_t hfm_head_cost(const struct hfm_head_cost *c)
{
	return c->head_len + c->records * HFM_HEAD_FIELD_COST + c->cookie_len;
}

static size_t count_of(const char *s, size_t n, const char *set)
{
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strchr(set, s[i]))
			k++;
	return k;
}

/* ---- the request line ------------------------------------------------------------ */

int hfm_head_absolute(const char *t, size_t len, size_t *auth_off, size_t *auth_len,
		      size_t *rest_off)
{
	size_t s;
	if (len >= 7 && hfm_strnieq(t, "http://", 7))
		s = 7;
	else if (len >= 8 && hfm_strnieq(t, "https://", 8))
		s = 8;
	else
		return 0;
	size_t e = s;
	while (e < len && t[e] != '/' && t[e] != '?' && t[e] != '#')
		e++;
	if (e == s)
		return 0;                     /* "http:///x": no authority */
	*auth_off = s;
	*auth_len = e - s;
	*rest_off = e;
	return 1;
}

/*
 * The line starting at `pos`: 1 with its end (before CR LF or LF) and where
 * the next starts, 0 if it is not complete within buf[0, n), -1 for a CR
 * that does not end the line.
 */
static int line_at(const char *buf, size_t n, size_t pos, size_t *end, size_t *next)
{
	for (size_t i = pos; i < n; i++) {
		if (buf[i] == '\n') {
			*end = i;
			*next = i + 1;
			return 1;
		}
		if (buf[i] == '\r') {
			if (i + 1 == n)
				return 0;
			if (buf[i + 1] != '\n')
				return -1;
			*end = i;
			*next = i + 2;
			return 1;
		}
	}
	return 0;
}

static int done(struct hfm_head *out, unsigned status, const char *why)
{
	out->status = status;
	out->why = why;
	return 1;
}

/* method SP request-target SP HTTP-version: 0 with *http11, or the status. */
static unsigned request_line(struct hfm_head *out, const char *buf, size_t b, size_t e,
			     int *http11, const char **why)
{
	const char *sp1 = memchr(buf + b, ' ', e - b);
	*why = "Malformed request line";
	if (!sp1 || sp1 == buf + b || sp1 - (buf + b) > 32)
		return 400;
	for (const char *p = buf + b; p < sp1; p++)
		if (!is_tchar((unsigned char)*p))
			return 400;
	const char *t = sp1 + 1;
	const char *sp2 = memchr(t, ' ', (size_t)(buf + e - t));
	if (!sp2 || sp2 == t)
		return 400;
	out->method_off = b;
	out->method_len = (size_t)(sp1 - (buf + b));
	out->target_off = (size_t)(t - buf);
	out->target_len = (size_t)(sp2 - t);
	const char *v = sp2 + 1;
	size_t vl = (size_t)(buf + e - v);
	if (vl != 8 || memcmp(v, "HTTP/", 5) || v[6] != '.' || v[5] < '0' || v[5] > '9' ||
	    v[7] < '0' || v[7] > '9')
		return 400;
	if (v[5] != '1') {
		*why = "Only HTTP/1.0 and HTTP/1.1 are spoken here";
		return 505;
	}
	*http11 = v[7] >= '1';
	for (const char *p = t; p < sp2; p++) {
		unsigned char c = (unsigned char)*p;
		if (c <= 0x20 || c == 0x7f) {
			*why = "Invalid byte in the request target";
			return 400;
		}
	}
	size_t tl = out->target_len, ao, al, ro;
	if (t[0] == '/')
		return 0;
	if (tl == 1 && t[0] == '*' && out->method_len == 7 && !memcmp(buf + b, "OPTIONS", 7))
		return 0;
	if (hfm_head_absolute(t, tl, &ao, &al, &ro) && host_value_ok(t + ao, al))
		return 0;
	*why = "Request target is neither a path nor an absolute http(s) URL";
	return 400;
}

int hfm_head_scan(struct hfm_head *out, const char *buf, size_t n, size_t budget,
		  uint64_t max_body)
{
	struct fields f;
	struct hfm_head_cost cost = { 0, 0, 0 };
	size_t pos = 0, end, next;
	int http11 = 0, r;
	const char *why;

	memset(out, 0, sizeof(*out));
	memset(&f, 0, sizeof(f));
	/* Empty lines before the request line are ignored (RFC 9112 §2.2). */
	while ((r = line_at(buf, n, pos, &end, &next)) == 1 && end == pos)
		pos = next;
	if (r < 0)
		return done(out, 400, "Bare CR in the request head");
	if (r == 0)
		return n > budget ? done(out, 414, "Request line too long") : 0;

	unsigned st = request_line(out, buf, pos, end, &http11, &why);
	if (st)
		return done(out, st, why);
	const char *target = buf + out->target_off;
	const char *q = memchr(target, '?', out->target_len);
	if (q)
		cost.records += 1 + count_of(q, (size_t)(target + out->target_len - q), "&");
	cost.head_len = next;
	if (hfm_head_cost(&cost) > budget)
		return done(out, 414, "Request line too long");

	for (pos = next;;) {
		r = line_at(buf, n, pos, &end, &next);
		if (r < 0)
			return done(out, 400, "Bare CR in the request head");
		if (r == 0)
			return n > budget ? done(out, 431, "Request header fields too large") : 0;
		if (end == pos)
			break;
		if (is_ows(buf[pos]))
			return done(out, 400, "Header line folded onto the next (obs-fold)");
		const char *colon = memchr(buf + pos, ':', end - pos);
		if (!colon)
			return done(out, 400, "Header line without a colon");
		size_t nl = (size_t)(colon - (buf + pos));
		const char *v = colon + 1;
		size_t vl = (size_t)(buf + end - v);
		field(&f, buf + pos, nl, v, vl);
		if (f.status)
			return done(out, f.status, f.why);
		cost.records++;
		if (nl == 6 && hfm_strnieq(buf + pos, "Cookie", 6) && !cost.cookie_len) {
			cost.records += 1 + count_of(v, vl, ";,");
			cost.cookie_len = vl + 1;
		}
		pos = next;
	}
	out->len = next;
	cost.head_len = next;
	if (hfm_head_cost(&cost) > budget)
		return done(out, 431, "Request header fields too large");
	st = verdict(&f, http11, max_body, &why);
	if (st)
		return done(out, st, why);
	return 1;
}

/* ---- answers ------------------------------------------------------------------ */

const char *hfm_head_reason(unsigned status)
{
	switch (status) {
	case 400: return "Bad Request";
	case 408: return "Request Timeout";
	case 411: return "Length Required";
	case 413: return "Content Too Large";
	case 414: return "URI Too Long";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 503: return "Service Unavailable";
	case 505: return "HTTP Version Not Supported";
	}
	return "Error";
}

void hfm_head_error_body(struct hfm_buf *out, const char *why)
{
	hfm_buf_puts(out, "{\"error\":");
	hfm_buf_json_str(out, why);
	hfm_buf_puts(out, "}");
}

size_t hfm_head_canned(struct hfm_buf *out, unsigned status, const char *why)
{
	struct hfm_buf body = HFM_BUF_INIT(1024);
	char date[64];
	time_t now = time(NULL);
	struct tm tm;
	gmtime_r(&now, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
	hfm_head_error_body(&body, why);
	hfm_buf_printf(out,
		       "HTTP/1.1 %u %s\r\nDate: %s\r\nContent-Type: application/json; charset=utf-8\r\n"
		       "X-Error-Message: %s\r\n%sConnection: close\r\nContent-Length: %zu\r\n\r\n",
		       status, hfm_head_reason(status), date, why,
		       status == 503 ? "Retry-After: 5\r\n" : "", body.len);
	hfm_buf_put(out, body.ptr, body.len);
	size_t n = body.len;
	hfm_buf_dispose(&body);
	return n;
}
