/*
 * bench.h - helpers shared by the benchmark clients (bench-stream, bench-loop).
 *
 * The clients are standalone programs: they measure a server from the
 * outside and must not share code with it, so they link nothing from
 * server/.  They speak just enough HTTP/1.1 to be honest about it: every
 * response is parsed (status, Content-Length, chunked bodies, HEAD answers
 * that announce a length but carry no body, Connection: close), and a
 * response that does not add up is an error, never a silently counted
 * request.
 */
#ifndef BENCH_H
#define BENCH_H

#include <stddef.h>
#include <stdint.h>

#if defined(__GNUC__)
#define BENCH_PRINTF(f, a) __attribute__((format(printf, f, a)))
#define BENCH_NORETURN __attribute__((noreturn))
#else
#define BENCH_PRINTF(f, a)
#define BENCH_NORETURN
#endif

/* Print "PROG: message" to stderr and exit(2). */
BENCH_NORETURN void bench_die(const char *fmt, ...) BENCH_PRINTF(1, 2);
void bench_set_prog(const char *name);

void *bench_xmalloc(size_t n);
void *bench_xrealloc(void *p, size_t n);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t bench_now_ns(void);

/*
 * A parsed "http://host:port/path?query" URL.  Only numeric IPv4 hosts and
 * plain http: the benchmark runs on loopback and should not measure DNS.
 */
struct bench_url {
	char host[64];
	int port;
	char path[2048];   /* path and query, starting with '/' */
};

int bench_url_parse(struct bench_url *u, const char *s);

/* A connected, blocking TCP socket with TCP_NODELAY, or -1 (errno set). */
int bench_connect(const struct bench_url *u);

/* Extra request header lines from -H, each "Name: value" without CRLF. */
#define BENCH_MAX_HEADERS 16
struct bench_headers {
	char *v[BENCH_MAX_HEADERS];   /* borrowed (argv) */
	int n;
};

/* Append one line; dies when there are more than BENCH_MAX_HEADERS. */
void bench_headers_add(struct bench_headers *h, char *line);

/* Build the request for `method` on `u`.  Returns a malloc'd string. */
char *bench_request(const char *method, const struct bench_url *u,
		    const struct bench_headers *h, size_t *len_out);

/* send() all of [p, p+len) on a blocking socket; 0, or -1 (errno set). */
int bench_send_all(int fd, const char *p, size_t len);

/* ---- HTTP/1.1 response parser ------------------------------------------ */

enum bench_resp_state {
	BENCH_RESP_HEAD,        /* reading the status line and headers */
	BENCH_RESP_BODY_LEN,    /* reading `remaining` bytes of a sized body */
	BENCH_RESP_CHUNK_SIZE,  /* reading a chunk-size line */
	BENCH_RESP_CHUNK_DATA,  /* reading `remaining` bytes of chunk data */
	BENCH_RESP_CHUNK_END,   /* reading the CRLF after chunk data */
	BENCH_RESP_TRAILER,     /* reading trailer lines up to the empty one */
	BENCH_RESP_BODY_EOF,    /* body runs until the server closes */
	BENCH_RESP_DONE,
};

/* Big enough for any header block a file server sends. */
#define BENCH_RESP_HEAD_MAX 16384

/*
 * The parser is fed the bytes of one response as they arrive, in pieces of
 * any size.  Headers are copied (they must be looked at); body bytes are
 * only counted, so a multi-GiB body costs nothing here.
 *
 * Invariants: `head_len <= BENCH_RESP_HEAD_MAX`; once the state is
 * BENCH_RESP_DONE the fields describe the whole response and
 * bench_resp_reset() must be called before the next one.
 */
struct bench_resp {
	enum bench_resp_state state;
	int is_head;            /* answer to HEAD: never a body */
	int status;
	int keep_alive;         /* 0 when the server will close after this */
	int chunked;
	int has_length;
	uint64_t content_length;
	uint64_t remaining;     /* of a sized body or of the current chunk */
	uint64_t body_bytes;    /* body bytes seen (chunk payload only) */
	char head[BENCH_RESP_HEAD_MAX];
	size_t head_len;
	char line[128];         /* a chunk-size or trailer line */
	size_t line_len;
	const char *error;      /* set when bench_resp_feed() returns -1 */
};

/* Prepare for a new response; `is_head` is 1 if the request was HEAD. */
void bench_resp_reset(struct bench_resp *r, int is_head);

/*
 * Feed `len` bytes.  Returns 1 when the response is complete (`*used` bytes
 * of `data` belong to it; any rest belongs to whatever comes next), 0 when
 * more is needed (all bytes used), -1 on a malformed response (r->error says
 * why).
 */
int bench_resp_feed(struct bench_resp *r, const char *data, size_t len,
		    size_t *used);

/*
 * The server closed the connection.  Returns 1 if that completes the
 * response (a body delimited by close), -1 otherwise.
 */
int bench_resp_eof(struct bench_resp *r);

/* ---- latency samples ----------------------------------------------------- */

/* A growable array of latencies in nanoseconds. */
struct bench_lat {
	uint64_t *v;
	size_t n, cap;
};

void bench_lat_add(struct bench_lat *l, uint64_t ns);
/* Append all of `src` to `dst`. */
void bench_lat_merge(struct bench_lat *dst, const struct bench_lat *src);
/* Sort, then the p-th percentile (0 < p <= 100) by nearest rank; 0 if empty. */
void bench_lat_sort(struct bench_lat *l);
uint64_t bench_lat_pct(const struct bench_lat *l, double p);
void bench_lat_free(struct bench_lat *l);

#endif
