/* gitproto.c - pkt-lines and upload-pack requests (see gitproto.h). */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "hfm/gitproto.h"
#include "hfm/hash.h"

/* ---- writing ------------------------------------------------------------ */

static int put_len(struct hfm_buf *b, size_t n)
{
	char hdr[5];

	snprintf(hdr, sizeof(hdr), "%04zx", n);
	return hfm_buf_put(b, hdr, 4);
}

int hfm_pkt_put(struct hfm_buf *b, const void *data, size_t n)
{
	if (n > HFM_PKT_PAYLOAD_MAX)
		return hfm_error_set(HFM_ETOOBIG, "pkt-line of %zu bytes", n);
	put_len(b, n + 4);
	return hfm_buf_put(b, data, n);
}

int hfm_pkt_printf(struct hfm_buf *b, const char *fmt, ...)
{
	char tmp[1024], *p = tmp;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0)
		return hfm_error_set(HFM_EINVAL, "bad format");
	if ((size_t)n >= sizeof(tmp)) {
		p = hfm_malloc((size_t)n + 1);
		va_start(ap, fmt);
		vsnprintf(p, (size_t)n + 1, fmt, ap);
		va_end(ap);
	}
	int rc = hfm_pkt_put(b, p, (size_t)n);
	if (p != tmp)
		free(p);
	return rc;
}

int hfm_pkt_flush(struct hfm_buf *b)
{
	return hfm_buf_put(b, "0000", 4);
}

int hfm_pkt_delim(struct hfm_buf *b)
{
	return hfm_buf_put(b, "0001", 4);
}

int hfm_pkt_band(struct hfm_buf *b, int band, const void *data, size_t n, size_t max_payload)
{
	const char *p = data;
	char c = (char)band;

	if (max_payload < 2 || max_payload > HFM_PKT_PAYLOAD_MAX - 1)
		max_payload = HFM_PKT_PAYLOAD_MAX - 1;
	while (n) {
		size_t k = HFM_MIN(n, max_payload);

		put_len(b, k + 5);
		hfm_buf_put(b, &c, 1);
		hfm_buf_put(b, p, k);
		p += k;
		n -= k;
	}
	return b->err;
}

/* ---- reading ------------------------------------------------------------ */

int hfm_pkt_read(enum hfm_pkt *kind, const char **line, size_t *len, struct hfm_pkt_reader *r)
{
	unsigned char hdr[2];
	size_t n;

	*line = NULL;
	*len = 0;
	if (!r->left) {
		*kind = HFM_PKT_EOF;
		return 0;
	}
	if (r->left < 4)
		return hfm_error_set(HFM_EINVAL, "protocol error: a pkt-line cut short");
	if (hfm_unhex(hdr, r->p, 2))
		return hfm_error_set(HFM_EINVAL, "protocol error: bad pkt-line length '%.4s'", r->p);
	n = (size_t)hdr[0] << 8 | hdr[1];
	if (n < 4) {
		*kind = n == 0 ? HFM_PKT_FLUSH : n == 1 ? HFM_PKT_DELIM : n == 2 ? HFM_PKT_END : 0;
		if (!*kind)
			return hfm_error_set(HFM_EINVAL, "protocol error: bad pkt-line length 0003");
		r->p += 4;
		r->left -= 4;
		return 0;
	}
	if (n > r->left)
		return hfm_error_set(HFM_EINVAL, "protocol error: a pkt-line cut short");
	*kind = HFM_PKT_DATA;
	*line = r->p + 4;
	*len = n - 4;
	if (*len && (*line)[*len - 1] == '\n')
		(*len)--;
	r->p += n;
	r->left -= n;
	return 0;
}

/* ---- ids ------------------------------------------------------------------ */

void hfm_oidv_push(struct hfm_oidv *o, const struct hfm_git_oid *id)
{
	if (o->n == o->cap) {
		o->cap = o->cap ? o->cap * 2 : 16;
		o->v = hfm_realloc(o->v, o->cap * sizeof(*o->v));
	}
	o->v[o->n++] = *id;
}

void hfm_oidv_dispose(struct hfm_oidv *o)
{
	free(o->v);
	memset(o, 0, sizeof(*o));
}

int hfm_git_oid_parse(struct hfm_git_oid *out, const char *hex, size_t n)
{
	if (n != 40 || hfm_unhex(out->id, hex, 20) != 0)
		return hfm_error_set(HFM_EINVAL, "protocol error: expected an object id, got '%.*s'",
				     (int)HFM_MIN(n, (size_t)80), hex);
	return 0;
}

/* ---- requests ------------------------------------------------------------- */

/* Does `line` (n bytes) start with `prefix`?  *rest is what follows. */
static int starts(const char *line, size_t n, const char *prefix, const char **rest,
		  size_t *rest_n)
{
	size_t k = strlen(prefix);

	if (n < k || memcmp(line, prefix, k))
		return 0;
	*rest = line + k;
	*rest_n = n - k;
	return 1;
}

static int is_exact(const char *line, size_t n, const char *word)
{
	return n == strlen(word) && !memcmp(line, word, n);
}

/* Is `word` one of the space-separated words of [s, s+n)? */
static int has_word(const char *s, size_t n, const char *word)
{
	size_t k = strlen(word);
	const char *end = s + n;

	while (s < end) {
		const char *sp = memchr(s, ' ', (size_t)(end - s));
		const char *we = sp ? sp : end;

		if ((size_t)(we - s) == k && !memcmp(s, word, k))
			return 1;
		s = we + 1;
	}
	return 0;
}

static int push_oid(struct hfm_oidv *v, const char *hex, size_t n, const char *what)
{
	struct hfm_git_oid id;
	int rc;

	if ((rc = hfm_git_oid_parse(&id, hex, n)))
		return rc;
	if (v->n >= HFM_GIT_OIDS_MAX)
		return hfm_error_set(HFM_ETOOBIG, "too many %s lines (more than %d)", what,
				     HFM_GIT_OIDS_MAX);
	hfm_oidv_push(v, &id);
	return 0;
}

/* A decimal in [0, max]; HFM_EINVAL otherwise. */
static int parse_num(int64_t *out, const char *s, size_t n, int64_t max, const char *what)
{
	int64_t v = 0;
	size_t i;

	if (!n || n > 19)
		goto bad;
	for (i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			goto bad;
		v = v * 10 + (s[i] - '0');
	}
	if (v > max)
		goto bad;
	*out = v;
	return 0;
bad:
	return hfm_error_set(HFM_EINVAL, "protocol error: bad %s '%.*s'", what,
			     (int)HFM_MIN(n, (size_t)40), s);
}

/* The deepen family, shared by v0 and v2.  1 if the line was one of them. */
static int deepen_line(struct hfm_upload_req *q, const char *line, size_t n, int *rc)
{
	const char *a;
	size_t an;
	int64_t v = 0;

	*rc = 0;
	if (starts(line, n, "deepen ", &a, &an)) {
		if (!(*rc = parse_num(&v, a, an, 0x7fffffff, "depth"))) {
			if (v == 0)
				*rc = hfm_error_set(HFM_EINVAL, "protocol error: deepen 0");
			q->depth = (int)v;
		}
		return 1;
	}
	if (starts(line, n, "deepen-since ", &a, &an)) {
		if (!(*rc = parse_num(&v, a, an, INT64_MAX, "deepen-since")))
			q->deepen_since = v ? v : 1;
		return 1;
	}
	if (starts(line, n, "deepen-not ", &a, &an)) {
		q->deepen_not = 1;
		return 1;
	}
	if (is_exact(line, n, "deepen-relative")) {
		q->deepen_relative = 1;
		return 1;
	}
	return 0;
}

static void v0_features(struct hfm_upload_req *q, const char *f, size_t n)
{
	if (has_word(f, n, "multi_ack_detailed"))
		q->multi_ack = 2;
	else if (has_word(f, n, "multi_ack"))
		q->multi_ack = 1;
	if (has_word(f, n, "side-band-64k"))
		q->sideband = 2;
	else if (has_word(f, n, "side-band"))
		q->sideband = 1;
	q->no_done |= has_word(f, n, "no-done");
	q->no_progress |= has_word(f, n, "no-progress");
	q->ofs_delta |= has_word(f, n, "ofs-delta");
	q->thin_pack |= has_word(f, n, "thin-pack");
	q->include_tag |= has_word(f, n, "include-tag");
	q->deepen_relative |= has_word(f, n, "deepen-relative");
}

/*
 * v0/v1 (stateless): want lines (the first with capabilities), shallow and
 * deepen lines, a flush; then, when negotiating, have lines ending in a
 * flush or "done".
 */
static int parse_v0(struct hfm_upload_req *q, struct hfm_pkt_reader *rd)
{
	enum hfm_pkt k;
	const char *line, *a;
	size_t n, an;
	int rc, first = 1;

	q->cmd = HFM_GIT_CMD_UPLOAD;
	for (;;) {
		if ((rc = hfm_pkt_read(&k, &line, &n, rd)))
			return rc;
		if (k == HFM_PKT_FLUSH)
			break;
		if (k == HFM_PKT_EOF) {
			if (first)
				return 0;        /* an empty body: nothing wanted */
			return hfm_error_set(HFM_EINVAL, "protocol error: want list not ended by a flush");
		}
		if (k != HFM_PKT_DATA)
			return hfm_error_set(HFM_EINVAL, "protocol error: unexpected special packet");
		if (starts(line, n, "want ", &a, &an)) {
			if (an < 40)
				return hfm_error_set(HFM_EINVAL, "protocol error: bad want line");
			if (first && an > 40) {
				if (a[40] != ' ')
					return hfm_error_set(HFM_EINVAL, "protocol error: bad want line");
				v0_features(q, a + 41, an - 41);
			} else if (an != 40) {
				return hfm_error_set(HFM_EINVAL, "protocol error: bad want line");
			}
			if ((rc = push_oid(&q->wants, a, 40, "want")))
				return rc;
			first = 0;
		} else if (starts(line, n, "shallow ", &a, &an)) {
			if ((rc = push_oid(&q->shallows, a, an, "shallow")))
				return rc;
		} else if (deepen_line(q, line, n, &rc)) {
			if (rc)
				return rc;
		} else if (starts(line, n, "filter ", &a, &an)) {
			return hfm_error_set(HFM_EINVAL, "filtering capability not negotiated");
		} else {
			return hfm_error_set(HFM_EINVAL, "protocol error: expected want, got '%.*s'",
					     (int)HFM_MIN(n, (size_t)80), line);
		}
	}
	for (;;) {
		if ((rc = hfm_pkt_read(&k, &line, &n, rd)))
			return rc;
		if (k == HFM_PKT_EOF)
			return 0;
		q->negotiating = 1;
		if (k == HFM_PKT_FLUSH)
			continue;            /* the end of one round of haves */
		if (k != HFM_PKT_DATA)
			return hfm_error_set(HFM_EINVAL, "protocol error: unexpected special packet");
		if (starts(line, n, "have ", &a, &an)) {
			if ((rc = push_oid(&q->haves, a, an, "have")))
				return rc;
		} else if (is_exact(line, n, "done")) {
			q->done = 1;
			return 0;            /* git reads nothing after done */
		} else {
			return hfm_error_set(HFM_EINVAL, "protocol error: expected have or done, got "
					     "'%.*s'", (int)HFM_MIN(n, (size_t)80), line);
		}
	}
}

static int fetch_arg(struct hfm_upload_req *q, const char *line, size_t n)
{
	const char *a;
	size_t an;
	int rc;

	if (starts(line, n, "want ", &a, &an))
		return push_oid(&q->wants, a, an, "want");
	if (starts(line, n, "have ", &a, &an))
		return push_oid(&q->haves, a, an, "have");
	if (starts(line, n, "shallow ", &a, &an))
		return push_oid(&q->shallows, a, an, "shallow");
	if (deepen_line(q, line, n, &rc))
		return rc;
	if (is_exact(line, n, "done"))
		q->done = 1;
	else if (is_exact(line, n, "thin-pack"))
		q->thin_pack = 1;
	else if (is_exact(line, n, "no-progress"))
		q->no_progress = 1;
	else if (is_exact(line, n, "include-tag"))
		q->include_tag = 1;
	else if (is_exact(line, n, "ofs-delta"))
		q->ofs_delta = 1;
	else if (is_exact(line, n, "wait-for-done"))
		q->wait_for_done = 1;
	else
		return hfm_error_set(HFM_EINVAL, "fetch: unexpected argument: '%.*s'",
				     (int)HFM_MIN(n, (size_t)80), line);
	return 0;
}

static int ls_refs_arg(struct hfm_upload_req *q, const char *line, size_t n)
{
	const char *a;
	size_t an;

	if (is_exact(line, n, "symrefs"))
		q->symrefs = 1;
	else if (is_exact(line, n, "peel"))
		q->peel = 1;
	else if (is_exact(line, n, "unborn"))
		q->unborn = 1;
	else if (starts(line, n, "ref-prefix ", &a, &an)) {
		size_t i;

		if (q->all_refs)
			return 0;
		/* past the bound, prefixes only narrow the answer: show everything */
		if (q->nprefixes == HFM_GIT_PREFIXES_MAX) {
			for (i = 0; i < q->nprefixes; i++)
				free(q->prefixes[i]);
			free(q->prefixes);
			q->prefixes = NULL;
			q->nprefixes = 0;
			q->all_refs = 1;
			return 0;
		}
		q->prefixes = hfm_realloc(q->prefixes, (q->nprefixes + 1) * sizeof(*q->prefixes));
		q->prefixes[q->nprefixes++] = hfm_strndup(a, an);
	} else {
		return hfm_error_set(HFM_EINVAL, "ls-refs: unexpected argument: '%.*s'",
				     (int)HFM_MIN(n, (size_t)80), line);
	}
	return 0;
}

/* v2: command=X, capabilities, a delim, arguments, a flush. */
static int parse_v2(struct hfm_upload_req *q, struct hfm_pkt_reader *rd)
{
	enum hfm_pkt k;
	const char *line, *a;
	size_t n, an;
	int rc, args = 0;

	if ((rc = hfm_pkt_read(&k, &line, &n, rd)))
		return rc;
	if (k == HFM_PKT_FLUSH || k == HFM_PKT_EOF) {
		q->cmd = HFM_GIT_CMD_NONE;
		return 0;
	}
	if (k != HFM_PKT_DATA || !starts(line, n, "command=", &a, &an))
		return hfm_error_set(HFM_EINVAL, "protocol error: expected a command");
	if (is_exact(a, an, "ls-refs"))
		q->cmd = HFM_GIT_CMD_LS_REFS;
	else if (is_exact(a, an, "fetch"))
		q->cmd = HFM_GIT_CMD_FETCH;
	else
		return hfm_error_set(HFM_EINVAL, "invalid command '%.*s'",
				     (int)HFM_MIN(an, (size_t)80), a);
	for (;;) {
		if ((rc = hfm_pkt_read(&k, &line, &n, rd)))
			return rc;
		if (k == HFM_PKT_FLUSH)
			return 0;
		if (k == HFM_PKT_EOF)
			return hfm_error_set(HFM_EINVAL, "protocol error: request not ended by a flush");
		if (k == HFM_PKT_DELIM) {
			if (args)
				return hfm_error_set(HFM_EINVAL, "protocol error: two delimiters");
			args = 1;
			continue;
		}
		if (k != HFM_PKT_DATA)
			return hfm_error_set(HFM_EINVAL, "protocol error: unexpected special packet");
		if (!args) {
			if (starts(line, n, "object-format=", &a, &an) && !is_exact(a, an, "sha1"))
				return hfm_error_set(HFM_EINVAL, "mismatched object format: this server "
						     "speaks sha1");
			continue;        /* agent=, server-option=, session-id=, and the unknown */
		}
		rc = q->cmd == HFM_GIT_CMD_FETCH ? fetch_arg(q, line, n) : ls_refs_arg(q, line, n);
		if (rc)
			return rc;
	}
}

int hfm_upload_req_parse(struct hfm_upload_req *out, const char *body, size_t n, int version)
{
	struct hfm_pkt_reader rd = { body, n };
	int rc;

	memset(out, 0, sizeof(*out));
	out->version = version == 2 ? 2 : 0;
	if (out->version == 2) {
		out->sideband = 2;
		rc = parse_v2(out, &rd);
	} else {
		rc = parse_v0(out, &rd);
	}
	if (!rc && out->deepen_not)
		rc = hfm_error_set(HFM_EINVAL, "deepen-not is not supported by this server");
	if (!rc && out->depth && out->deepen_since)
		rc = hfm_error_set(HFM_EINVAL, "deepen and deepen-since cannot be used together");
	return rc;
}

void hfm_upload_req_dispose(struct hfm_upload_req *r)
{
	size_t i;

	hfm_oidv_dispose(&r->wants);
	hfm_oidv_dispose(&r->haves);
	hfm_oidv_dispose(&r->shallows);
	for (i = 0; i < r->nprefixes; i++)
		free(r->prefixes[i]);
	free(r->prefixes);
	r->prefixes = NULL;
	r->nprefixes = 0;
}

/* ---- bodies and headers ------------------------------------------------- */

int hfm_git_gunzip(struct hfm_buf *out, const void *in, size_t n)
{
	z_stream z;
	char tmp[16384];
	int zr, rc = 0;

	memset(&z, 0, sizeof(z));
	if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK)
		return hfm_error_set(HFM_EIO, "zlib: cannot start");
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	do {
		z.next_out = (Bytef *)tmp;
		z.avail_out = sizeof(tmp);
		zr = inflate(&z, Z_NO_FLUSH);
		if (zr != Z_OK && zr != Z_STREAM_END) {
			rc = hfm_error_set(HFM_EINVAL, "the gzip request body is corrupt");
			break;
		}
		if (hfm_buf_put(out, tmp, sizeof(tmp) - z.avail_out)) {
			rc = hfm_error_set(HFM_ETOOBIG, "the request is larger than %zu bytes "
					   "inflated", out->max);
			break;
		}
		if (zr == Z_OK && z.avail_in == 0 && z.avail_out != 0) {
			rc = hfm_error_set(HFM_EINVAL, "the gzip request body is cut short");
			break;
		}
	} while (zr != Z_STREAM_END);
	inflateEnd(&z);
	return rc;
}

int hfm_git_protocol_version(const char *h)
{
	const char *p = h;

	while (p && *p) {
		size_t n = strcspn(p, ":");

		if (n == 9 && !memcmp(p, "version=2", 9))
			return 2;
		p += n;
		if (*p == ':')
			p++;
	}
	return 0;
}
