/* bench.c - helpers shared by the benchmark clients. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"

static const char *prog = "bench";

void bench_set_prog(const char *name)
{
	const char *slash = strrchr(name, '/');
	prog = slash ? slash + 1 : name;
}

void bench_die(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(2);
}

void *bench_xmalloc(size_t n)
{
	void *p = malloc(n ? n : 1);
	if (!p)
		bench_die("out of memory (%zu bytes)", n);
	return p;
}

void *bench_xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n ? n : 1);
	if (!q)
		bench_die("out of memory (%zu bytes)", n);
	return q;
}

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* ---- URLs and sockets ---------------------------------------------------- */

int bench_url_parse(struct bench_url *u, const char *s)
{
	const char *host, *colon, *slash;
	size_t hlen;
	char *end;
	long port;

	if (strncmp(s, "http://", 7) != 0)
		return -1;
	host = s + 7;
	slash = strchr(host, '/');
	if (!slash)
		slash = host + strlen(host);
	colon = memchr(host, ':', (size_t)(slash - host));
	if (!colon)
		return -1; /* no default port: the harness always picks one */
	hlen = (size_t)(colon - host);
	if (hlen == 0 || hlen >= sizeof(u->host))
		return -1;
	memcpy(u->host, host, hlen);
	u->host[hlen] = '\0';
	port = strtol(colon + 1, &end, 10);
	if (end != slash || port <= 0 || port > 65535)
		return -1;
	u->port = (int)port;
	if (*slash == '\0')
		strcpy(u->path, "/");
	else if (strlen(slash) < sizeof(u->path))
		strcpy(u->path, slash);
	else
		return -1;
	return 0;
}

int bench_connect(const struct bench_url *u)
{
	struct sockaddr_in sa;
	int fd, one = 1;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_port = htons((uint16_t)u->port);
	if (inet_pton(AF_INET, u->host, &sa.sin_addr) != 1) {
		errno = EINVAL;
		return -1;
	}
	fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	/* Requests are one small write each; never let Nagle hold them. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int e = errno;
		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

void bench_headers_add(struct bench_headers *h, char *line)
{
	if (h->n == BENCH_MAX_HEADERS)
		bench_die("too many -H (at most %d)", BENCH_MAX_HEADERS);
	h->v[h->n++] = line;
}

char *bench_request(const char *method, const struct bench_url *u,
		    const struct bench_headers *h, size_t *len_out)
{
	size_t cap = strlen(method) + strlen(u->path) + strlen(u->host) + 128;
	size_t len;
	char *req;
	int i;

	for (i = 0; i < h->n; i++)
		cap += strlen(h->v[i]) + 2;
	req = bench_xmalloc(cap);
	len = (size_t)snprintf(req, cap, "%s %s HTTP/1.1\r\nHost: %s:%d\r\n"
			       "User-Agent: hfm-bench\r\nAccept: */*\r\n",
			       method, u->path, u->host, u->port);
	for (i = 0; i < h->n; i++)
		len += (size_t)snprintf(req + len, cap - len, "%s\r\n", h->v[i]);
	len += (size_t)snprintf(req + len, cap - len, "\r\n");
	*len_out = len;
	return req;
}

int bench_send_all(int fd, const char *p, size_t len)
{
	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* ---- response parser ----------------------------------------------------- */

void bench_resp_reset(struct bench_resp *r, int is_head)
{
	r->state = BENCH_RESP_HEAD;
	r->is_head = is_head;
	r->status = 0;
	r->keep_alive = 1;
	r->chunked = 0;
	r->has_length = 0;
	r->content_length = 0;
	r->remaining = 0;
	r->body_bytes = 0;
	r->head_len = 0;
	r->line_len = 0;
	r->error = NULL;
}

static int fail(struct bench_resp *r, const char *why)
{
	r->error = why;
	return -1;
}

/* Does the comma-separated header value [v, end) contain `token`? */
static int has_token(const char *v, const char *end, const char *token)
{
	size_t tl = strlen(token);

	while (v < end) {
		const char *comma = memchr(v, ',', (size_t)(end - v));
		const char *e = comma ? comma : end;
		const char *te = e;

		while (v < te && (*v == ' ' || *v == '\t'))
			v++;
		while (te > v && (te[-1] == ' ' || te[-1] == '\t'))
			te--;
		if ((size_t)(te - v) == tl && strncasecmp(v, token, tl) == 0)
			return 1;
		v = comma ? comma + 1 : end;
	}
	return 0;
}

static int parse_length(struct bench_resp *r, const char *v, const char *end)
{
	uint64_t n = 0;

	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	if (v == end || *v < '0' || *v > '9')
		return fail(r, "bad Content-Length");
	while (v < end && *v >= '0' && *v <= '9') {
		if (n > (UINT64_MAX - 9) / 10)
			return fail(r, "Content-Length overflows");
		n = n * 10 + (uint64_t)(*v - '0');
		v++;
	}
	while (v < end && (*v == ' ' || *v == '\t'))
		v++;
	if (v != end)
		return fail(r, "bad Content-Length");
	/* Two different lengths would let a proxy and a client disagree. */
	if (r->has_length && r->content_length != n)
		return fail(r, "conflicting Content-Length headers");
	r->has_length = 1;
	r->content_length = n;
	return 0;
}

/* One "Name: value" line [p, end) without its CRLF. */
static int parse_header(struct bench_resp *r, const char *p, const char *end)
{
	const char *colon = memchr(p, ':', (size_t)(end - p));
	size_t nlen;

	if (!colon)
		return fail(r, "header line without a colon");
	nlen = (size_t)(colon - p);
	if (nlen == 14 && strncasecmp(p, "content-length", 14) == 0)
		return parse_length(r, colon + 1, end);
	if (nlen == 17 && strncasecmp(p, "transfer-encoding", 17) == 0) {
		if (has_token(colon + 1, end, "chunked"))
			r->chunked = 1;
		return 0;
	}
	if (nlen == 10 && strncasecmp(p, "connection", 10) == 0) {
		if (has_token(colon + 1, end, "close"))
			r->keep_alive = 0;
		else if (has_token(colon + 1, end, "keep-alive"))
			r->keep_alive = 1;
	}
	return 0;
}

static int parse_status_line(struct bench_resp *r, const char *p, const char *end)
{
	if (end - p < 12 || strncmp(p, "HTTP/1.", 7) != 0 ||
	    (p[7] != '0' && p[7] != '1') || p[8] != ' ')
		return fail(r, "bad status line");
	if (p[9] < '1' || p[9] > '5' || p[10] < '0' || p[10] > '9' ||
	    p[11] < '0' || p[11] > '9')
		return fail(r, "bad status code");
	r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
	/* HTTP/1.0 closes unless it says otherwise; a header may change it. */
	r->keep_alive = p[7] == '1';
	return 0;
}

/* The header block is head[0, head_len) and ends with CRLF CRLF. */
static int parse_head(struct bench_resp *r)
{
	const char *p = r->head;
	const char *end = r->head + r->head_len - 2; /* before the last CRLF */
	const char *eol;

	eol = memchr(p, '\r', (size_t)(end - p));
	if (!eol || parse_status_line(r, p, eol) < 0)
		return r->error ? -1 : fail(r, "bad status line");
	p = eol + 2;
	while (p < end) {
		eol = memchr(p, '\r', (size_t)(end - p));
		if (!eol || eol[1] != '\n')
			return fail(r, "header line without CRLF");
		if (parse_header(r, p, eol) < 0)
			return -1;
		p = eol + 2;
	}
	return 0;
}

/* Pick the body state once the headers are known (RFC 9112 §6.3). */
static void start_body(struct bench_resp *r)
{
	if (r->is_head || r->status == 204 || r->status == 304) {
		r->state = BENCH_RESP_DONE;
	} else if (r->chunked) {
		r->state = BENCH_RESP_CHUNK_SIZE;
	} else if (r->has_length) {
		r->remaining = r->content_length;
		r->state = r->remaining ? BENCH_RESP_BODY_LEN : BENCH_RESP_DONE;
	} else {
		r->state = BENCH_RESP_BODY_EOF;
		r->keep_alive = 0;
	}
}

static int feed_head(struct bench_resp *r, const char *data, size_t len,
		     size_t *used)
{
	size_t old = r->head_len;
	size_t room = BENCH_RESP_HEAD_MAX - old;
	size_t n = len < room ? len : room;
	size_t from = old >= 3 ? old - 3 : 0;
	char *hit;

	memcpy(r->head + old, data, n);
	r->head_len = old + n;
	hit = memmem(r->head + from, r->head_len - from, "\r\n\r\n", 4);
	if (!hit) {
		if (r->head_len == BENCH_RESP_HEAD_MAX)
			return fail(r, "header block too large");
		*used = n;
		return 0;
	}
	r->head_len = (size_t)(hit + 4 - r->head);
	*used = r->head_len - old;
	if (parse_head(r) < 0)
		return -1;
	if (r->status >= 100 && r->status < 200) {
		/* Interim response: the real one follows on the same stream. */
		int is_head = r->is_head;
		bench_resp_reset(r, is_head);
		return 0;
	}
	start_body(r);
	return 0;
}

/* Gather one line (through '\n') into r->line; 1 when complete. */
static int feed_line(struct bench_resp *r, const char *data, size_t len,
		     size_t *used)
{
	const char *nl = memchr(data, '\n', len);
	size_t n = nl ? (size_t)(nl - data) + 1 : len;

	if (r->line_len + n >= sizeof(r->line))
		return fail(r, "chunk line too long");
	memcpy(r->line + r->line_len, data, n);
	r->line_len += n;
	r->line[r->line_len] = '\0';
	*used = n;
	return nl ? 1 : 0;
}

static int is_empty_line(const struct bench_resp *r)
{
	return strcmp(r->line, "\r\n") == 0;
}

static int parse_chunk_size(struct bench_resp *r)
{
	uint64_t n = 0;
	const char *p = r->line;
	int digits = 0;

	for (;; p++, digits++) {
		int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else if (*p >= 'A' && *p <= 'F')
			d = *p - 'A' + 10;
		else
			break;
		if (digits >= 15)
			return fail(r, "chunk size too large");
		n = n * 16 + (uint64_t)d;
	}
	if (digits == 0 || (*p != '\r' && *p != ';' && *p != ' ' && *p != '\t'))
		return fail(r, "bad chunk size");
	r->remaining = n;
	r->line_len = 0;
	r->state = n ? BENCH_RESP_CHUNK_DATA : BENCH_RESP_TRAILER;
	return 0;
}

/* Count body bytes of a sized body or a chunk. */
static size_t take_body(struct bench_resp *r, size_t len)
{
	size_t n = r->remaining < len ? (size_t)r->remaining : len;

	r->remaining -= n;
	r->body_bytes += n;
	return n;
}

int bench_resp_feed(struct bench_resp *r, const char *data, size_t len,
		    size_t *used)
{
	size_t off = 0;

	while (off < len && r->state != BENCH_RESP_DONE) {
		size_t n = 0;
		int line;

		switch (r->state) {
		case BENCH_RESP_HEAD:
			if (feed_head(r, data + off, len - off, &n) < 0)
				return -1;
			break;
		case BENCH_RESP_BODY_LEN:
			n = take_body(r, len - off);
			if (!r->remaining)
				r->state = BENCH_RESP_DONE;
			break;
		case BENCH_RESP_CHUNK_DATA:
			n = take_body(r, len - off);
			if (!r->remaining)
				r->state = BENCH_RESP_CHUNK_END;
			break;
		case BENCH_RESP_BODY_EOF:
			n = len - off;
			r->body_bytes += n;
			break;
		case BENCH_RESP_CHUNK_SIZE:
		case BENCH_RESP_CHUNK_END:
		case BENCH_RESP_TRAILER:
			line = feed_line(r, data + off, len - off, &n);
			if (line < 0)
				return -1;
			if (!line)
				break;
			if (r->state == BENCH_RESP_CHUNK_SIZE) {
				if (parse_chunk_size(r) < 0)
					return -1;
			} else if (r->state == BENCH_RESP_CHUNK_END) {
				if (!is_empty_line(r))
					return fail(r, "chunk data longer than its size");
				r->line_len = 0;
				r->state = BENCH_RESP_CHUNK_SIZE;
			} else {
				if (is_empty_line(r))
					r->state = BENCH_RESP_DONE;
				r->line_len = 0;
			}
			break;
		case BENCH_RESP_DONE:
			break;
		}
		off += n;
	}
	*used = off;
	return r->state == BENCH_RESP_DONE ? 1 : 0;
}

int bench_resp_eof(struct bench_resp *r)
{
	if (r->state == BENCH_RESP_BODY_EOF) {
		r->state = BENCH_RESP_DONE;
		return 1;
	}
	if (r->state == BENCH_RESP_DONE)
		return 1;
	return fail(r, r->state == BENCH_RESP_HEAD && r->head_len == 0
		       ? "connection closed before a response"
		       : "connection closed mid-response");
}

/* ---- latency samples ----------------------------------------------------- */

void bench_lat_add(struct bench_lat *l, uint64_t ns)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4096;
		l->v = bench_xrealloc(l->v, l->cap * sizeof(*l->v));
	}
	l->v[l->n++] = ns;
}

void bench_lat_merge(struct bench_lat *dst, const struct bench_lat *src)
{
	size_t i;

	for (i = 0; i < src->n; i++)
		bench_lat_add(dst, src->v[i]);
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
	return x < y ? -1 : x > y;
}

void bench_lat_sort(struct bench_lat *l)
{
	if (l->n)
		qsort(l->v, l->n, sizeof(*l->v), cmp_u64);
}

uint64_t bench_lat_pct(const struct bench_lat *l, double p)
{
	size_t rank;

	if (!l->n)
		return 0;
	/* Nearest rank: the smallest sample with at least p% at or below it. */
	rank = (size_t)((p / 100.0) * (double)l->n + 0.999999);
	if (rank < 1)
		rank = 1;
	if (rank > l->n)
		rank = l->n;
	return l->v[rank - 1];
}

void bench_lat_free(struct bench_lat *l)
{
	free(l->v);
	l->v = NULL;
	l->n = l->cap = 0;
}
