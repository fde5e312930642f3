/*
 * buf.h - growable byte buffers with a hard size cap.
 *
 * Modelled on curl's dynbuf: every buffer is created with a maximum size,
 * chosen by the caller for what the buffer holds (a header line, a JSON page,
 * a request body).  Growing past the cap fails with HFM_ETOOBIG instead of
 * eating memory, which is what keeps a hostile request bounded.
 *
 * Invariants:
 *  - `ptr` is NULL until the first append; afterwards it is always
 *    NUL-terminated (`ptr[len] == '\0'`), so it can be used as a C string when
 *    the content has no NUL bytes.
 *  - `len <= max` always.
 *  - Errors are sticky: once an append fails, `err` holds the code and every
 *    later append is a no-op returning the same code.  Writers that produce a
 *    lot of output (JSON renderers) append freely and check `err` once.
 *  - The buffer owns `ptr`.  hfm_buf_dispose() frees it and returns the buffer
 *    to the empty state with the same cap; hfm_buf_detach() hands `ptr` to the
 *    caller (free() it) and resets the buffer.
 */
#ifndef HFM_BUF_H
#define HFM_BUF_H

#include <stddef.h>
#include <stdint.h>
#include "common.h"

struct hfm_buf {
	char *ptr;
	size_t len;
	size_t cap;    /* allocated bytes (including the NUL) */
	size_t max;    /* hard cap on len */
	int err;       /* sticky error, 0 if none */
};

#define HFM_BUF_INIT(maxlen) { NULL, 0, 0, (maxlen), 0 }

void hfm_buf_init(struct hfm_buf *b, size_t max);
void hfm_buf_dispose(struct hfm_buf *b);
char *hfm_buf_detach(struct hfm_buf *b);
/* Empty the buffer but keep its memory and clear the sticky error. */
void hfm_buf_reset(struct hfm_buf *b);

int hfm_buf_put(struct hfm_buf *b, const void *data, size_t n);
int hfm_buf_puts(struct hfm_buf *b, const char *s);
int hfm_buf_putc(struct hfm_buf *b, char c);
int hfm_buf_printf(struct hfm_buf *b, const char *fmt, ...) HFM_PRINTF(2, 3);
int hfm_buf_vprintf(struct hfm_buf *b, const char *fmt, va_list ap);
int hfm_buf_put_u64(struct hfm_buf *b, uint64_t v);
/* Make room for `n` more bytes; returns a pointer to write them or NULL. */
char *hfm_buf_reserve(struct hfm_buf *b, size_t n);
/* Shrink to `len` bytes (len <= b->len). */
void hfm_buf_truncate(struct hfm_buf *b, size_t len);

/* The content, or "" for an untouched buffer. */
static inline const char *hfm_buf_cstr(const struct hfm_buf *b)
{
	return b->ptr ? b->ptr : "";
}

/*
 * JSON output helpers (the server writes JSON with these rather than building
 * cJSON trees, to keep large listings cheap).
 *  - hfm_buf_json_str() appends a quoted, escaped JSON string.  Bytes that are
 *    not valid UTF-8 are replaced by U+FFFD so the output is always valid.
 */
int hfm_buf_json_str(struct hfm_buf *b, const char *s);
int hfm_buf_json_strn(struct hfm_buf *b, const char *s, size_t n);

/* HTML-escape text (&, <, >, ", ') for the web page. */
int hfm_buf_html(struct hfm_buf *b, const char *s);

/*
 * Percent-encode for a URL.  `keep_slash` leaves '/' as is (file paths);
 * otherwise '/' becomes %2F (revisions, query values).
 */
int hfm_buf_urlenc(struct hfm_buf *b, const char *s, int keep_slash);

/*
 * Append the bytes that base64 text [s, s+n) encodes (the standard and the
 * URL-safe alphabet, padding optional).  HFM_EINVAL for anything else.
 */
int hfm_buf_b64_decode(struct hfm_buf *b, const char *s, size_t n);

/*
 * A fixed ring of bytes between a producer and a consumer (who lock it
 * themselves): [head, head + len) modulo cap holds the data.
 */
struct hfm_ring {
	char *buf;
	size_t cap, head, len;
};
void hfm_ring_init(struct hfm_ring *r, size_t cap);
void hfm_ring_dispose(struct hfm_ring *r);
/* Copy min(n, free room) bytes in; returns how many. */
size_t hfm_ring_put(struct hfm_ring *r, const void *p, size_t n);
/* Copy min(n, len) bytes out; returns how many. */
size_t hfm_ring_get(struct hfm_ring *r, void *p, size_t n);

/*
 * base64url without padding (the Hub's pagination cursors), and the text
 * hfm_buf_b64_decode() makes of one as a malloc'd string: NULL if `s` is
 * not base64 or decodes to a NUL byte.
 */
int hfm_buf_b64url(struct hfm_buf *b, const char *s);
char *hfm_b64url_decode(const char *s);

#endif
