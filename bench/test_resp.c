/*
 * test_resp.c - the clients' response parser against hand-made answers.
 *
 * The numbers the benchmark prints are only as good as the parser that
 * decides when a response is complete, so it gets its own test: every case
 * is fed whole, byte by byte, and in two pieces at every split point.
 * Prints TAP; exits 1 on any failure.  bench/run runs it before measuring.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

struct tcase {
	const char *name;
	const char *text;
	int is_head;
	int want;               /* 1 complete, 0 needs more, -1 malformed */
	int status;
	int keep_alive;
	unsigned long long body;
	size_t rest;            /* bytes after the response (pipelined junk) */
};

static const struct tcase cases[] = {
	{ "sized body", "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
	  0, 1, 200, 1, 5, 0 },
	{ "HEAD has a length but no body",
	  "HTTP/1.1 200 OK\r\nContent-Length: 1073741824\r\nETag: \"x\"\r\n\r\n",
	  1, 1, 200, 1, 0, 0 },
	{ "HEAD answer followed by stray bytes",
	  "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc", 1, 1, 200, 1, 0, 3 },
	{ "chunked with extension and trailer",
	  "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "4;x=y\r\nwiki\r\n5\r\npedia\r\n0\r\nX-T: 1\r\n\r\n",
	  0, 1, 200, 1, 9, 0 },
	{ "chunked wins over Content-Length",
	  "HTTP/1.1 200 OK\r\nContent-Length: 99\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "3\r\nabc\r\n0\r\n\r\n", 0, 1, 200, 1, 3, 0 },
	{ "206 range", "HTTP/1.1 206 Partial Content\r\nContent-Range: bytes 0-1/10\r\n"
	  "content-length: 2\r\n\r\nab", 0, 1, 206, 1, 2, 0 },
	{ "Connection: close", "HTTP/1.1 404 Not Found\r\nConnection: close\r\n"
	  "Content-Length: 0\r\n\r\n", 0, 1, 404, 0, 0, 0 },
	{ "HTTP/1.0 closes by default", "HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\nx",
	  0, 1, 200, 0, 1, 0 },
	{ "HTTP/1.0 keep-alive", "HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\n"
	  "Content-Length: 1\r\n\r\nx", 0, 1, 200, 1, 1, 0 },
	{ "304 has no body", "HTTP/1.1 304 Not Modified\r\nContent-Length: 7\r\n\r\n",
	  0, 1, 304, 1, 0, 0 },
	{ "interim 100 then 200", "HTTP/1.1 100 Continue\r\n\r\n"
	  "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0, 1, 200, 1, 2, 0 },
	{ "body until close is incomplete without EOF",
	  "HTTP/1.1 200 OK\r\n\r\nabc", 0, 0, 200, 0, 3, 0 },
	{ "truncated body", "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc",
	  0, 0, 200, 1, 3, 0 },
	{ "bad status line", "HTTP/2 200\r\n\r\n", 0, -1, 0, 0, 0, 0 },
	{ "conflicting lengths", "HTTP/1.1 200 OK\r\nContent-Length: 1\r\n"
	  "Content-Length: 2\r\n\r\nx", 0, -1, 0, 0, 0, 0 },
	{ "chunk longer than its size", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
	  "2\r\nabc\r\n0\r\n\r\n", 0, -1, 0, 0, 0, 0 },
};

static int tap_n, tap_failed;

static void ok(int cond, const char *name, const char *how)
{
	tap_n++;
	if (!cond)
		tap_failed++;
	printf("%sok %d - %s (%s)\n", cond ? "" : "not ", tap_n, name, how);
}

/* Feed `text` in pieces of at most `step` bytes, split once at `split`. */
static int run(const struct tcase *t, struct bench_resp *r, size_t step,
	       size_t split, size_t *consumed)
{
	const char *p = t->text;
	size_t len = strlen(t->text), off = 0;

	bench_resp_reset(r, t->is_head);
	*consumed = 0;
	while (off < len) {
		size_t end = off + step < len ? off + step : len;
		size_t used;
		int rc;

		if (split > off && split < end)
			end = split;
		rc = bench_resp_feed(r, p + off, end - off, &used);
		off += used;
		if (rc != 0) {
			*consumed = off;
			return rc;
		}
	}
	*consumed = off;
	return 0;
}

static int matches(const struct tcase *t, const struct bench_resp *r, int rc,
		   size_t consumed)
{
	if (rc != t->want)
		return 0;
	if (rc < 0)
		return 1;
	if (r->status != t->status || r->body_bytes != t->body)
		return 0;
	if (rc == 1 && (r->keep_alive != t->keep_alive ||
			strlen(t->text) - consumed != t->rest))
		return 0;
	return 1;
}

int main(void)
{
	static struct bench_resp r;
	size_t i;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct tcase *t = &cases[i];
		size_t len = strlen(t->text), consumed, s;
		int rc, all = 1;

		rc = run(t, &r, len, 0, &consumed);
		ok(matches(t, &r, rc, consumed), t->name, "whole");
		rc = run(t, &r, 1, 0, &consumed);
		ok(matches(t, &r, rc, consumed), t->name, "byte by byte");
		for (s = 1; s < len; s++) {
			rc = run(t, &r, len, s, &consumed);
			all &= matches(t, &r, rc, consumed);
		}
		ok(all, t->name, "every split point");
	}
	bench_resp_reset(&r, 0);
	{
		size_t used;
		const char *t = "HTTP/1.1 200 OK\r\n\r\nabc";
		bench_resp_feed(&r, t, strlen(t), &used);
		ok(bench_resp_eof(&r) == 1 && r.body_bytes == 3, "body until close",
		   "EOF completes it");
	}
	printf("1..%d\n", tap_n);
	return tap_failed ? 1 : 0;
}
