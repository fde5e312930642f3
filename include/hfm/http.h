/*
 * http.h - the HTTP transport (libmicrohttpd) and the request interface an
 * application answers through.
 *
 * The server owns one libmicrohttpd daemon with an epoll thread pool.  It
 * knows nothing of the Hub: it reads a request (raw path and query, headers,
 * a POST body up to HFM_MAX_BODY) and calls the application's
 * `handle(req, app)` (hfm_server_opts), which answers through the
 * hfm_req_*() functions below -- hfm_reply_*() (reply.h) are the Hub's
 * rules on top of them.  A handle that returns HFM_EAGAIN has armed the
 * request's waiter (hfm_req_waiter): the connection is then suspended (no
 * thread is held, nothing polls) and handle runs again from the top when
 * the waiter fires.  A request that waits longer than its deadline, or is
 * still waiting when the server stops, runs once more with
 * hfm_req_refused() saying so, and must then answer at once.
 *
 * Threading: handle runs on the server's threads, for different requests at
 * once; the runs of one request never overlap.  The hfm_req_*() functions
 * may only be called from a run of that request.
 *
 * Connections: the edge (edge.h) accepts them, holds each until its first
 * request head is complete and checked (httphead.h), and closes those that
 * miss the head deadline or must make room at the connection cap.
 *
 * Limits: the request head (httphead.h: HFM_HEAD_BUDGET of the 8 KiB
 * connection pool), body size (HFM_MAX_BODY, Content-Length only), headers
 * per reply, the head deadline, the idle timeout of kept-alive connections,
 * total connections.  docs/operator-guide.md, "Limits and abuse".
 */
#ifndef HFM_HTTP_H
#define HFM_HTTP_H

#include <stdint.h>
#include "buf.h"
#include "metrics.h"
#include "wait.h"

#define HFM_MAX_BODY (1u << 20)        /* POST bodies (paths-info) */

enum hfm_body_io { HFM_IO_PREAD = 0, HFM_IO_SENDFILE = 1 };

struct hfm_req;
struct hfm_body;                       /* source.h: bytes from an fd, memory or a stream */

struct hfm_server_opts {
	const char *host;                /* name or address to bind */
	int port;                        /* 0 = any free port */
	const char *ssl_key;             /* PEM files, both or neither */
	const char *ssl_cert;
	int threads;                     /* 0 = one per CPU */
	enum hfm_body_io body_io;
	int access_log_fd;               /* -1 = off */
	const char *public_url;          /* "https://mirror.example" or NULL: from Host */
	unsigned max_connections;        /* 0 = default (16384), lowered to fit RLIMIT_NOFILE */
	unsigned idle_timeout;           /* seconds a kept-alive connection may idle, 0 = 120 */
	unsigned head_timeout;           /* seconds for a request's head (and body), 0 = 10 */
	unsigned wait_timeout;           /* seconds a request may wait, 0 = 600 */
	/*
	 * The application.  handle answers `r` (one hfm_req_respond*() call)
	 * and returns 0, or returns HFM_EAGAIN with the waiter armed; a run
	 * that neither replies nor waits gets a bare 500.  `app` is passed
	 * through untouched and must outlive the server.
	 */
	int (*handle)(struct hfm_req *r, void *app);
	void *app;
};

struct hfm_server;

int hfm_server_start(struct hfm_server **out, const struct hfm_server_opts *o);
/* The base URL it listens on ("http://127.0.0.1:8090", the port bound), for logs. */
const char *hfm_server_url(const struct hfm_server *s);
/* Stop accepting, answer every waiting request (refused), join the threads. */
void hfm_server_stop(struct hfm_server *s);
/*
 * The transport's counts go to metrics.h: requests by route, source and
 * status class with their durations, body bytes by source, waits, and
 * (through a probe, while the server runs) the edge's connection counts.
 */
/*
 * Drain before a stop (SIGTERM behind a load balancer): stop accepting, then
 * wait up to `timeout_ms` for the requests in flight (waiting ones and bodies
 * being sent included) to end; replies from now on carry Connection: close.
 * Returns how many were still in flight.  From the thread that stops.
 */
int hfm_server_drain(struct hfm_server *s, unsigned timeout_ms);
/* 1 once hfm_server_drain() began (/readyz answers 503); any thread. */
int hfm_server_draining(struct hfm_server *s);

/* ---- a request, as the application sees it ---------------------------- */

enum hfm_method { HFM_M_GET, HFM_M_HEAD, HFM_M_POST, HFM_M_OPTIONS, HFM_M_OTHER };

enum hfm_method hfm_req_method(const struct hfm_req *r);
/* The path as sent, without the query: still percent-encoded. */
const char *hfm_req_path(const struct hfm_req *r);
const char *hfm_req_header(struct hfm_req *r, const char *name);
/* Query argument, percent- and '+'-decoded; NULL if absent. Owned by r. */
const char *hfm_req_arg(struct hfm_req *r, const char *name);
/* The n-th (from 0) value of a repeated argument (filter=a&filter=b); NULL past the last. */
const char *hfm_req_arg_n(struct hfm_req *r, const char *name, size_t n);
/* The query as sent (after '?', still encoded), "" if none. */
const char *hfm_req_query(const struct hfm_req *r);
const struct hfm_buf *hfm_req_body(const struct hfm_req *r);
/*
 * This run's waiter: arm it on a wait queue and return HFM_EAGAIN to be run
 * again once it fires.  A new one each run.
 */
struct hfm_waiter *hfm_req_waiter(struct hfm_req *r);
/* hfm_mono_ns() when the request came: the same in every run of it. */
uint64_t hfm_req_arrived_ns(const struct hfm_req *r);
/*
 * Why the transport will not let this request run: 0, or HFM_ETOOBIG (the
 * body is over HFM_MAX_BODY) or HFM_EAGAIN (it waited past its deadline,
 * or the server is stopping), with *why a message or NULL.  A refused
 * request must be answered in this run.
 */
int hfm_req_refused(const struct hfm_req *r, const char **why);
struct hfm_server *hfm_req_server(struct hfm_req *r);
/* "http://host:port" as the client reached us (or the configured public URL). */
const char *hfm_req_base_url(struct hfm_req *r);
/* Note which source answered, for the access log and the metrics' `source`. */
void hfm_req_set_source(struct hfm_req *r, const char *kind);
/* Note the route class, the metrics' `route` (default HFM_MR_OTHER). */
void hfm_req_set_route(struct hfm_req *r, enum hfm_m_route route);
/*
 * Note what the cache did for this answer (hfmirror_cache_answers_total,
 * counted once the request ends with a 200 or 206 body).  Over a
 * request's runs the larger value stays: a run that started a fetch makes
 * it a miss even when a later run finds the blob complete.
 */
void hfm_req_set_cache(struct hfm_req *r, enum hfm_m_cache what);
/* The client's address ("127.0.0.1", "::1"; "-" if unknown), owned by r. */
const char *hfm_req_remote(struct hfm_req *r);

/* What became of a request, told to its end hook. */
struct hfm_req_end {
	unsigned status;
	uint64_t bytes;                  /* body bytes sent */
	int complete;                    /* the answer went out whole */
	const char *remote;              /* hfm_req_remote() */
};
/*
 * Call fn(cls, end) once when the request is over (after its access-log
 * line, on a server thread); fn owns cls.  A later call replaces the hook
 * without calling the earlier fn: set it once the reply is queued.
 */
void hfm_req_on_end(struct hfm_req *r, void (*fn)(void *cls, const struct hfm_req_end *e),
		    void *cls);

/* Headers added to whatever reply follows (copied; at most 24). */
void hfm_req_add_header(struct hfm_req *r, const char *name, const char *value);
/*
 * Send the reply: `status`, the headers added so far, and `body` (taken
 * over; NULL = empty).  A HEAD request gets the headers with the body's
 * Content-Length.  Returns 0, or HFM_EIO if the connection would not take
 * it.  Once per run; hfm_req_replied() tells whether it happened.
 */
int hfm_req_respond(struct hfm_req *r, unsigned status, struct hfm_buf *body);
/*
 * Send bytes [start, start+len) of `body` (taken over) with `status`:
 * files as fd ranges (pread or sendfile, --body-io), streams as they
 * arrive, suspending the connection while bytes are on their way.  A
 * stream is primed first so a dead upstream is an error answer, not a 200
 * that breaks off: then nothing is sent, the headers added so far are
 * dropped, and its error (HFM_EAGAIN with the request's waiter armed, or
 * the upstream's) is returned for the caller to answer; likewise HFM_EIO
 * for a file that changed while it was read.
 */
int hfm_req_respond_body(struct hfm_req *r, unsigned status, struct hfm_body *body,
			 uint64_t start, uint64_t len);
/*
 * `len` for a stream whose length is not known before it ends (a git pack
 * being built): it is sent chunked, and ends when the stream's read
 * returns 0.
 */
#define HFM_LEN_UNKNOWN UINT64_MAX
int hfm_req_replied(const struct hfm_req *r);

/*
 * Split an application/x-www-form-urlencoded string (a query or a POST
 * body) and call cb with each decoded key and value (malloc'd; cb owns
 * them).  Pairs with bad escapes are skipped.
 */
void hfm_form_parse(const char *s, size_t n, void (*cb)(void *cls, char *key, char *val),
		    void *cls);

#endif
