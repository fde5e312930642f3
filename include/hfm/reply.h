/*
 * reply.h - the Hub's reply rules: how an answer looks to Hub clients.
 *
 * Handlers answer with one hfm_reply_*() call.  This module decides what
 * the Hub would send -- the status and X-Error-Code for an error, ETag and
 * X-Linked-* for a file, Range (206/416), If-None-Match (304), If-Range,
 * the Content-Type of a repo file, CORS -- and hands the result to the
 * transport (http.h: hfm_req_add_header, hfm_req_respond*), which only
 * sends it.
 *
 * The decisions are pure functions (hfm_error_rule, hfm_file_decide,
 * hfm_etag_matches, hfm_content_type_for): no request, no socket, so the
 * rules are unit-tested on their own (tests/unit/test_reply.c).
 *
 * Every hfm_reply_*() returns 0 once the reply is queued (or the
 * transport's error), takes over the body it is given, and may be called
 * once per run of a request.  hfm_reply_file() may also return HFM_EAGAIN
 * (a streamed body's first bytes are on their way; the request's waiter is
 * armed): nothing was sent and the request runs again.
 */
#ifndef HFM_REPLY_H
#define HFM_REPLY_H

#include <stdint.h>

#include "buf.h"
#include "http.h"
#include "source.h"

/* ---- the rules ------------------------------------------------------------ */

/* How the Hub answers an error code (HFM_E*). */
struct hfm_error_rule {
	unsigned status;
	const char *hub_code;            /* X-Error-Code, or NULL: none */
	const char *dflt;                /* the message when nothing better is known */
};

/*
 * The rule for `code`; unknown codes are 500 "Internal error".  A gated
 * repo is 401 for an anonymous request and 403 when it sent Authorization
 * (`authorized`), as the Hub.
 */
void hfm_error_rule(struct hfm_error_rule *out, int code, int authorized);

/* Does an If-None-Match value name `etag` (unquoted)?  "*" does. */
int hfm_etag_matches(const char *header, const char *etag);

/*
 * Does If-Range value `header` keep the Range (RFC 9110 §13.1.5)?  Only a
 * strong validator that matches: one quoted ETag equal to `etag` (unquoted),
 * or an IMF-fixdate equal to `mtime_ms` (0: unknown, no date matches).  A
 * weak, unquoted or listed ETag, "*", or any other date does not.
 */
int hfm_if_range_keeps(const char *header, const char *etag, int64_t mtime_ms);

/*
 * The Content-Type of a repo file, from its name.  A repo's HTML and SVG
 * are text/plain: they must never run in a browser on our origin.
 */
const char *hfm_content_type_for(const char *path);

/* What to send for a file request. */
struct hfm_file_decision {
	unsigned status;                 /* 200, 206, 304 or 416 */
	uint64_t start, len;             /* the slice of the body to send (len 0: none) */
	char etag[HFM_SHA256_HEX + 3];   /* quoted: ETag (and X-Linked-Etag) */
	int linked;                      /* the LFS view: X-Linked-Etag, X-Linked-Size */
	uint64_t size;                   /* X-Linked-Size */
	char content_range[80];          /* "" = no Content-Range header */
	const char *content_type;        /* NULL when there is no body (304, 416) */
};

/*
 * Decide the answer for entry `e` whose body has `size` bytes, given the
 * request's If-None-Match, Range and If-Range headers (each may be NULL).
 * `raw` selects the git blob view (/raw/: the pointer of an LFS file, its
 * blob id as ETag) over the LFS view (/resolve/: the content, its sha256).
 */
void hfm_file_decide(struct hfm_file_decision *out, const struct hfm_entry *e, uint64_t size,
		     int raw, const char *if_none_match, const char *range, const char *if_range);

/* ---- replies ---------------------------------------------------------------- */

int hfm_reply_json(struct hfm_req *r, unsigned status, struct hfm_buf *body);
int hfm_reply_html(struct hfm_req *r, unsigned status, struct hfm_buf *body);
/* content_type NULL: no Content-Type (204). */
int hfm_reply_text(struct hfm_req *r, unsigned status, const char *content_type,
		   struct hfm_buf *body);
/*
 * The Hub's error: status and X-Error-Code from `code` (hfm_error_rule),
 * X-Error-Message (`message`, or the thread's last error, or the rule's
 * default), JSON {"error": …}, Retry-After on 503.  `commit` (may be NULL)
 * is sent as X-Repo-Commit (EntryNotFound needs it).
 */
int hfm_reply_error(struct hfm_req *r, int code, const char *message, const char *commit);
/* A plain 404 for unknown routes (no X-Error-Code, as the Hub). */
int hfm_reply_not_found(struct hfm_req *r);
/*
 * A file answer for /resolve/ and /raw/ (hfm_file_decide) with
 * X-Repo-Commit; `body` is taken over.  A body that cannot be sent after
 * all (a stream whose upstream failed, a file that changed) is answered
 * with the Hub's error for what went wrong.
 */
int hfm_reply_file(struct hfm_req *r, const struct hfm_entry *e, struct hfm_body *body,
		   const char *commit, int raw);

#endif
