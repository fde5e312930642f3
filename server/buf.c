/* buf.c - bounded growable buffers and the escapers built on them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hfm/buf.h"

void hfm_buf_init(struct hfm_buf *b, size_t max)
{
	b->ptr = NULL;
	b->len = b->cap = 0;
	b->max = max;
	b->err = 0;
}

void hfm_buf_dispose(struct hfm_buf *b)
{
	free(b->ptr);
	hfm_buf_init(b, b->max);
}

char *hfm_buf_detach(struct hfm_buf *b)
{
	char *p = b->ptr;

	if (!p)
		p = hfm_strdup("");
	hfm_buf_init(b, b->max);
	return p;
}

void hfm_buf_reset(struct hfm_buf *b)
{
	b->len = 0;
	b->err = 0;
	if (b->ptr)
		b->ptr[0] = '\0';
}

char *hfm_buf_reserve(struct hfm_buf *b, size_t n)
{
	size_t need, ncap;

	if (b->err)
		return NULL;
	if (n > b->max - b->len) {
		b->err = HFM_ETOOBIG;
		return NULL;
	}
	need = b->len + n + 1;
	if (need > b->cap) {
		ncap = b->cap ? b->cap : 64;
		while (ncap < need)
			ncap *= 2;
		if (ncap > b->max + 1)
			ncap = b->max + 1;
		b->ptr = hfm_realloc(b->ptr, ncap);
		b->cap = ncap;
	}
	return b->ptr + b->len;
}

int hfm_buf_put(struct hfm_buf *b, const void *data, size_t n)
{
	char *dst = hfm_buf_reserve(b, n);

	if (!dst)
		return b->err;
	if (n)
		memcpy(dst, data, n);
	b->len += n;
	b->ptr[b->len] = '\0';
	return 0;
}

int hfm_buf_puts(struct hfm_buf *b, const char *s)
{
	return hfm_buf_put(b, s, strlen(s));
}

int hfm_buf_putc(struct hfm_buf *b, char c)
{
	return hfm_buf_put(b, &c, 1);
}

int hfm_buf_vprintf(struct hfm_buf *b, const char *fmt, va_list ap)
{
	char small[256];
	va_list ap2;
	int n;
	char *dst;

	va_copy(ap2, ap);
	n = vsnprintf(small, sizeof(small), fmt, ap2);
	va_end(ap2);
	if (n < 0)
		return b->err = HFM_ERROR;
	if ((size_t)n < sizeof(small))
		return hfm_buf_put(b, small, (size_t)n);
	dst = hfm_buf_reserve(b, (size_t)n);
	if (!dst)
		return b->err;
	vsnprintf(dst, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
	return 0;
}

int hfm_buf_printf(struct hfm_buf *b, const char *fmt, ...)
{
	va_list ap;
	int r;

	va_start(ap, fmt);
	r = hfm_buf_vprintf(b, fmt, ap);
	va_end(ap);
	return r;
}

int hfm_buf_put_u64(struct hfm_buf *b, uint64_t v)
{
	char tmp[24];
	char *p = tmp + sizeof(tmp);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	return hfm_buf_put(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

void hfm_buf_truncate(struct hfm_buf *b, size_t len)
{
	if (len < b->len) {
		b->len = len;
		b->ptr[len] = '\0';
	}
}

int hfm_buf_json_strn(struct hfm_buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *p = (const unsigned char *)s;
	size_t i = 0, run = 0;

	hfm_buf_putc(b, '"');
	while (i < n) {
		unsigned char c = p[i];
		size_t seq;

		if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
			run++;
			i++;
			continue;
		}
		if (run)
			hfm_buf_put(b, p + i - run, run);
		run = 0;
		if (c >= 0x80) {
			seq = hfm_utf8_next(NULL, s + i, n - i);
			if (seq) {
				hfm_buf_put(b, p + i, seq);
				i += seq;
			} else {
				hfm_buf_puts(b, "\\ufffd");
				i++;
			}
			continue;
		}
		switch (c) {
		case '"': hfm_buf_puts(b, "\\\""); break;
		case '\\': hfm_buf_puts(b, "\\\\"); break;
		case '\n': hfm_buf_puts(b, "\\n"); break;
		case '\r': hfm_buf_puts(b, "\\r"); break;
		case '\t': hfm_buf_puts(b, "\\t"); break;
		default: {
			char esc[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 15] };
			hfm_buf_put(b, esc, 6);
		}
		}
		i++;
	}
	if (run)
		hfm_buf_put(b, p + i - run, run);
	return hfm_buf_putc(b, '"');
}

int hfm_buf_json_str(struct hfm_buf *b, const char *s)
{
	return hfm_buf_json_strn(b, s, strlen(s));
}

int hfm_buf_html(struct hfm_buf *b, const char *s)
{
	for (; *s; s++) {
		switch (*s) {
		case '&': hfm_buf_puts(b, "&amp;"); break;
		case '<': hfm_buf_puts(b, "&lt;"); break;
		case '>': hfm_buf_puts(b, "&gt;"); break;
		case '"': hfm_buf_puts(b, "&quot;"); break;
		case '\'': hfm_buf_puts(b, "&#39;"); break;
		default: hfm_buf_putc(b, *s);
		}
	}
	return b->err;
}

int hfm_buf_urlenc(struct hfm_buf *b, const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		    (c >= '0' && c <= '9') || c == '-' || c == '_' || c == '.' ||
		    c == '~' || (c == '/' && keep_slash)) {
			hfm_buf_putc(b, (char)c);
		} else {
			char esc[3] = { '%', hex[c >> 4], hex[c & 15] };
			hfm_buf_put(b, esc, 3);
		}
	}
	return b->err;
}

static int b64_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

int hfm_buf_b64_decode(struct hfm_buf *b, const char *s, size_t n)
{
	unsigned acc = 0;
	int bits = 0;
	size_t i;

	while (n && s[n - 1] == '=')
		n--;
	for (i = 0; i < n; i++) {
		int v = b64_value(s[i]);

		if (v < 0)
			return HFM_EINVAL;
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			hfm_buf_putc(b, (char)((acc >> bits) & 0xff));
		}
	}
	return b->err;
}

void hfm_ring_init(struct hfm_ring *r, size_t cap)
{
	r->buf = hfm_malloc(cap);
	r->cap = cap;
	r->head = r->len = 0;
}

void hfm_ring_dispose(struct hfm_ring *r)
{
	free(r->buf);
	r->buf = NULL;
	r->cap = r->head = r->len = 0;
}

size_t hfm_ring_put(struct hfm_ring *r, const void *p, size_t n)
{
	size_t at = (r->head + r->len) % r->cap, first;

	n = HFM_MIN(n, r->cap - r->len);
	first = HFM_MIN(n, r->cap - at);
	memcpy(r->buf + at, p, first);
	memcpy(r->buf, (const char *)p + first, n - first);
	r->len += n;
	return n;
}

size_t hfm_ring_get(struct hfm_ring *r, void *p, size_t n)
{
	size_t first;

	n = HFM_MIN(n, r->len);
	first = HFM_MIN(n, r->cap - r->head);
	memcpy(p, r->buf + r->head, first);
	memcpy((char *)p + first, r->buf, n - first);
	r->head = (r->head + n) % r->cap;
	r->len -= n;
	return n;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int hfm_buf_b64url(struct hfm_buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);
	for (size_t i = 0; i < n; i += 3) {
		unsigned v = (unsigned)p[i] << 16;
		if (i + 1 < n)
			v |= (unsigned)p[i + 1] << 8;
		if (i + 2 < n)
			v |= p[i + 2];
		hfm_buf_putc(b, b64url[(v >> 18) & 63]);
		hfm_buf_putc(b, b64url[(v >> 12) & 63]);
		if (i + 1 < n)
			hfm_buf_putc(b, b64url[(v >> 6) & 63]);
		if (i + 2 < n)
			hfm_buf_putc(b, b64url[v & 63]);
	}
	return b->err;
}

char *hfm_b64url_decode(const char *s)
{
	struct hfm_buf b = HFM_BUF_INIT(strlen(s) + 1);
	if (hfm_buf_b64_decode(&b, s, strlen(s)) || memchr(b.ptr ? b.ptr : "", '\0', b.len)) {
		hfm_buf_dispose(&b);
		return NULL;
	}
	return hfm_buf_detach(&b);
}
