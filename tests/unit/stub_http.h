/*
 * stub_http.h - a tiny HTTP/1.1 server for unit tests of upstream code.
 *
 * stub_start() listens on 127.0.0.1 (any free port) and serves canned
 * answers from a thread per connection, with keep-alive.  Every request is
 * logged (method, path, Authorization, Range, whether it came through as a
 * proxy request) so tests can check what the client really sent.
 *
 * Routes (N = a byte count, content byte i is stub_byte(i)):
 *   /bytes/N               200 or 206 for a single Range; HEAD: headers only
 *   /norange/N             200 with the whole body, Range ignored
 *   /badrange/N            206 with a Content-Range that is not the one asked
 *   /redirect/PORT/REST    302 to http://cdn.test:PORT/REST, X-Linked-Size/-Etag
 *   /relredirect/REST      302 to /REST on the same host
 *   /stall/N               Content-Length N, 1000 bytes, then silence
 *   /drop/N                Content-Length N, N/2 bytes, then the connection closes
 *   /status/CODE           that status, a short body
 *   /flaky/K/KEY           503 for the first K requests with this KEY, then /bytes/16
 *   /echo                  the request's header block as the body
 *   /hold/N                as /bytes/N, but the body waits while stub_hold() is on
 * Anything else is 404.
 *
 * Canned answers (stub_route) come before those routes: a request whose
 * target (path and query) is exactly a canned one gets that answer, after
 * waiting while stub_hold() is on.
 */
#ifndef HFM_STUB_HTTP_H
#define HFM_STUB_HTTP_H

#include <stddef.h>
#include <stdint.h>

struct stub;

struct stub_req {
	char method[8];
	char path[512];                /* origin-form path (proxy prefix removed) */
	char auth[256];                /* Authorization value, "" if none */
	char range[64];                /* Range value, "" if none */
	int proxied;                   /* the request line had an absolute URL */
};

static inline uint8_t stub_byte(uint64_t i)
{
	return (uint8_t)(i * 7 + i / 251 + (i >> 16));
}

struct stub *stub_start(void);
int stub_port(struct stub *s);
/* Stop accepting, close every connection, join the threads, free. */
void stub_stop(struct stub *s);

/* Connections accepted so far. */
int stub_connections(struct stub *s);
/* Requests served so far; stub_request() copies the i-th (0-based). */
int stub_requests(struct stub *s);
void stub_request(struct stub *s, int i, struct stub_req *out);

/* Fill buf with content bytes [off, off+n). */
void stub_fill(void *buf, uint64_t off, size_t n);

/*
 * Answer requests for exactly `target` with `status`, the header lines
 * `headers` ("Name: value\r\n" each, or NULL) and `body` (all copied).  A
 * later call for the same target replaces its answer.
 */
void stub_route(struct stub *s, const char *target, int status, const char *headers,
		const char *body);
/* Requests served so far whose target was exactly `target`. */
int stub_hits(struct stub *s, const char *target);
/* While on, canned answers and /hold/ bodies wait (so a client sees "not yet"). */
void stub_hold(struct stub *s, int on);

#endif
