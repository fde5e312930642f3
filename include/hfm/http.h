/*
 * http.h - the HTTP server (libmicrohttpd) and the request interface that
 * handlers use.
 *
 * The server owns one libmicrohttpd daemon with an epoll thread pool.
 * Every request goes through the router (route.h) to a handler (handlers.h).
 * A handler answers with one of the hfm_reply_*() functions (reply.h, the
 * Hub's rules on top of hfm_req_respond*() here), or returns
 * HFM_EAGAIN after a source armed the request's waiter: the connection is
 * then suspended (no thread is held, nothing polls) and the handler runs
 * again from the top when the waiter fires.  A request that waits longer
 * than its deadline is answered 503 with Retry-After.
 *
 * Limits: request headers (MHD connection memory), URL length, body size
 * (HFM_MAX_BODY), per-connection idle timeout, total connections.
 */
#ifndef HFM_HTTP_H
#define HFM_HTTP_H

#include <stdint.h>
#include "buf.h"
#include "route.h"
#include "source.h"

#define HFM_MAX_BODY (1u << 20)        /* POST bodies (paths-info) */

enum hfm_body_io { HFM_IO_PREAD = 0, HFM_IO_SENDFILE = 1 };

struct hfm_server_opts {
	const char *host;                /* name or address to bind */
	int port;                        /* 0 = any free port */
	const char *ssl_key;             /* PEM files, both or neither */
	const char *ssl_cert;
	int threads;                     /* 0 = one per CPU */
	enum hfm_body_io body_io;
	int access_log_fd;               /* -1 = off */
	const char *public_url;          /* "https://mirror.example" or NULL: from Host */
	unsigned max_connections;        /* 0 = default (4096) */
	unsigned idle_timeout;           /* seconds, 0 = default (120) */
	unsigned wait_timeout;           /* seconds a request may wait, 0 = 600 */
	const struct hfm_catalog *catalog; /* what handlers serve; borrowed */
	const char *mode_label;          /* "model-bin", "mirror", ... for the web page */
};

struct hfm_server;
struct hfm_catalog;

int hfm_server_start(struct hfm_server **out, const struct hfm_server_opts *o);
/* The port actually bound (useful with port 0). */
int hfm_server_port(const struct hfm_server *s);
/* The public base URL ("http://127.0.0.1:8090"), for logs. */
const char *hfm_server_url(const struct hfm_server *s);
/* Resume every waiting request, stop accepting, join the threads. */
void hfm_server_stop(struct hfm_server *s);

/* ---- what handlers see -------------------------------------------------- */

enum hfm_method { HFM_M_GET, HFM_M_HEAD, HFM_M_POST, HFM_M_OPTIONS, HFM_M_OTHER };

struct hfm_req;

enum hfm_method hfm_req_method(const struct hfm_req *r);
const struct hfm_route *hfm_req_route(const struct hfm_req *r);
const char *hfm_req_header(struct hfm_req *r, const char *name);
/* The raw query string (after '?'), "" if none. */
const char *hfm_req_query(const struct hfm_req *r);
/* Query argument, percent- and '+'-decoded; NULL if absent. Owned by r. */
const char *hfm_req_arg(struct hfm_req *r, const char *name);
const struct hfm_buf *hfm_req_body(const struct hfm_req *r);
struct hfm_ctx *hfm_req_ctx(struct hfm_req *r);
struct hfm_server *hfm_req_server(struct hfm_req *r);
/* "http://host:port" as the client reached us (or the configured public URL). */
const char *hfm_req_base_url(struct hfm_req *r);
/* Note which source answered, for the access log. */
void hfm_req_set_source(struct hfm_req *r, const char *kind);

/* Headers added to whatever reply follows (copied). */
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
int hfm_req_replied(const struct hfm_req *r);

/*
 * Split an application/x-www-form-urlencoded string (a query or a POST
 * body) and call cb with each decoded key and value (malloc'd; cb owns
 * them).  Pairs with bad escapes are skipped.
 */
void hfm_form_parse(const char *s, size_t n, void (*cb)(void *cls, char *key, char *val),
		    void *cls);

/* The catalog and counters for handlers and /metrics. */
const struct hfm_catalog *hfm_server_catalog(const struct hfm_server *s);
const char *hfm_server_mode(const struct hfm_server *s);
void hfm_server_metrics(struct hfm_server *s, struct hfm_buf *out);

#endif
