/*
 * httphead.h - what a request head must look like before anything acts on it
 * (RFC 9112 framing, the Host rule, and what fits libmicrohttpd's connection
 * buffer).
 *
 * Two views of one set of rules:
 *  - hfm_head_scan() reads the raw bytes of a head as they arrive.  The edge
 *    (edge.h) holds a new plain-HTTP connection until its head is complete
 *    and answers a bad one itself, so that libmicrohttpd never parses it:
 *    libmicrohttpd 0.9.75 sends its own error answers for some of these
 *    with their headers twice, answers others never, and silently cuts a
 *    header value at a NUL.
 *  - hfm_head_check_fields() checks the fields libmicrohttpd parsed, for the
 *    requests it reads itself (HTTPS, and later requests on a kept-alive
 *    connection): the same framing and Host rules, minus what only the raw
 *    bytes show (see docs/operator-guide.md, "Limits and abuse").
 * Both give the status to answer (0 = fine) and a static reason that is safe
 * in a header.  Every rejected request is answered and its connection
 * closed: after a framing error nothing that follows can be trusted.
 *
 * The buffer budget: libmicrohttpd keeps a request's head, one record per
 * parsed header field, query argument and cookie, and the answer's headers
 * in one fixed pool per connection (HFM_HEAD_POOL).  A head is admitted only
 * if its cost (hfm_head_cost) leaves HFM_HEAD_REPLY_RESERVE bytes for the
 * answer, so every admitted request can be answered.
 *
 * Pure functions: no sockets, no allocation, any thread.
 */
#ifndef HFM_HTTPHEAD_H
#define HFM_HTTPHEAD_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define HFM_HEAD_POOL (8u * 1024)           /* libmicrohttpd's per-connection pool */
#define HFM_HEAD_REPLY_RESERVE (2u * 1024)  /* kept for the answer's headers */
#define HFM_HEAD_BUDGET (HFM_HEAD_POOL - HFM_HEAD_REPLY_RESERVE)
/* What libmicrohttpd's pool spends on one parsed field, argument or cookie
 * (a 56-byte record, rounded up for alignment). */
#define HFM_HEAD_FIELD_COST 64u

/* What a head costs in the connection's pool. */
struct hfm_head_cost {
	size_t head_len;         /* request line, fields and the blank line */
	size_t records;          /* header fields + query arguments + cookies */
	size_t cookie_len;       /* libmicrohttpd copies the Cookie value to split it */
};
size_t hfm_head_cost(const struct hfm_head_cost *c);

/* A scanned head (hfm_head_scan). */
struct hfm_head {
	unsigned status;         /* 0 = fine, else the answer: 400 411 413 414 431 505 */
	const char *why;         /* static, for X-Error-Message; NULL when fine */
	size_t len;              /* bytes of the head up to its blank line, when complete */
	/* The request line's parts as offsets into the scanned bytes (for the
	 * access log), when it was read; lengths 0 otherwise. */
	size_t method_off, method_len;
	size_t target_off, target_len;
};

/*
 * Scan the head at the start of buf[0, n).  Returns 0 while more bytes are
 * needed, 1 when the head is complete and fine (out->len says how long) or
 * already known to be wrong (out->status).  `budget` bounds the cost
 * (HFM_HEAD_BUDGET); `max_body` bounds Content-Length.
 */
int hfm_head_scan(struct hfm_head *out, const char *buf, size_t n, size_t budget,
		  uint64_t max_body);

/* One parsed header field (not NUL-terminated). */
struct hfm_head_field {
	const char *name;
	size_t name_len;
	const char *value;
	size_t value_len;
};

/*
 * Check parsed fields: names are tokens (no whitespace before a colon),
 * values have no control bytes, HTTP/1.1 has exactly one valid Host (1.0 at
 * most one), at most one Content-Length and it is digits and at most
 * `max_body` (else 413), no Transfer-Encoding but exactly "chunked" alone in
 * HTTP/1.1 -- which is 411: request bodies must have a Content-Length.
 * Returns 0 or the status, with *why.
 */
unsigned hfm_head_check_fields(const struct hfm_head_field *f, size_t n, int http11,
			       uint64_t max_body, const char **why);

/*
 * A request target in absolute form ("http://host:port/path?q", RFC 9112
 * §3.2.2): its authority, and the origin-form rest ("/path?q", or "" for
 * "http://host").  Returns 1 for an absolute http(s) target, else 0.
 */
int hfm_head_absolute(const char *target, size_t len, size_t *auth_off, size_t *auth_len,
		      size_t *rest_off);

/* The reason phrase of a status the transport answers itself. */
const char *hfm_head_reason(unsigned status);

/*
 * A whole answer for a request refused before it reached the application:
 * status line, Content-Type, X-Error-Message, Connection: close,
 * Content-Length and {"error": why}; Retry-After for 503.  Appended to `out`;
 * returns the body's length.
 */
size_t hfm_head_canned(struct hfm_buf *out, unsigned status, const char *why);
/* Only its body: {"error": why}. */
void hfm_head_error_body(struct hfm_buf *out, const char *why);

#endif
