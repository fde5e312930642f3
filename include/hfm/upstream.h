/*
 * upstream.h - HTTP(S) requests to the upstream hub, off the request path.
 *
 * One struct hfm_upstream owns one libcurl multi handle and one thread that
 * runs it (curl_multi_poll, woken by curl_multi_wakeup when work is queued).
 * Every transfer runs on that thread; callers on server threads only queue
 * work and return, so no server thread ever waits for the network.  The one
 * blocking call, hfm_up_fetch(), is a convenience for tests and tools that
 * run no server.
 *
 * Connections: the multi handle keeps a connection cache, so transfers to the
 * same host reuse keep-alive connections (and HTTP/2 multiplexing where the
 * server offers it).  At most `max_host_connections` run per host; further
 * transfers queue inside libcurl.
 *
 * Security, decided here once:
 *  - TLS peer and host verification are always on (`ca_file` adds a CA
 *    bundle; there is no switch to turn verification off).
 *  - Only http and https, also for redirect targets.
 *  - The client's Authorization is sent as given and never logged.  When a
 *    redirect is followed to another host (or port, or scheme) libcurl drops
 *    it (we never set CURLOPT_UNRESTRICTED_AUTH): the Hub's 302 to its CDN
 *    must not carry the user's token.
 *  - Proxies come from the environment (http_proxy, HTTPS_PROXY, NO_PROXY),
 *    as libcurl reads them by default; nothing here overrides that.
 *
 * Offline: while the offline flag is set, hfm_up_start() fails with
 * HFM_EOFFLINE before anything is allocated or any socket is opened.
 *
 * Reachability: a transfer whose first hop cannot resolve the upstream's
 * name or connect to it (no route out, DNS down, a closed port) marks the
 * upstream unreachable for `hold_down_ms`; it is not retried.  Meanwhile
 * hfm_up_start() fails at once with HFM_EOFFLINE (and hfm_up_unreachable()
 * says so), as when offline, so callers answer what they hold without
 * waiting on connects and retries.  After the hold-down the next transfer
 * is the probe: a failure holds down again, any response (whatever its
 * status) makes the upstream reachable.  Each change of state is logged
 * once (HFM_LOG_WARN), never once per request.  A failure after a redirect
 * (a CDN host) says nothing about the upstream and changes nothing.
 *
 * Threading: hfm_up_start/resume/cancel/release and hfm_up_set_offline may
 * be called from any thread, including from inside a callback.  Callbacks
 * run on the upstream thread, one at a time, so they must be quick: write to
 * a file, append to a bounded buffer, wake waiters (wait.h).  A callback must
 * never block on another transfer (hfm_up_fetch() from a callback fails with
 * HFM_EINVAL rather than deadlock).
 */
#ifndef HFM_UPSTREAM_H
#define HFM_UPSTREAM_H

#include <stddef.h>
#include <stdint.h>

#include "buf.h"
#include "log.h"
#include "metrics.h"

struct hfm_upstream;
struct hfm_up_xfer;

struct hfm_up_opts {
	long connect_timeout_ms;        /* 0 = 10000 */
	long low_speed_limit;           /* bytes/s; below it for low_speed_time fails; 0 = 1024 */
	long low_speed_time;            /* seconds; 0 = 30 */
	long max_host_connections;      /* per host; 0 = 8 */
	long max_total_connections;     /* 0 = 64 */
	long max_redirects;             /* when following; 0 = 5 */
	const char *user_agent;         /* NULL = "hfmirror/<version>" */
	const char *ca_file;            /* extra CA bundle (PEM), NULL = system's */
	/*
	 * "host:port:address" entries, as curl --resolve.  Pins names to
	 * addresses (split-horizon DNS, tests).  NULL-terminated; copied.
	 */
	const char *const *resolve;
	int offline;                    /* initial offline flag */
	unsigned hold_down_ms;          /* unreachable this long after a failed
					   resolve/connect; 0 = 30000 */
	hfm_log_fn log;                 /* one line per finished transfer, errors */
	void *log_cls;
};

int hfm_up_new(struct hfm_upstream **out, const struct hfm_up_opts *opts);
/*
 * Stop the thread.  Transfers still running are cancelled and get their
 * on_done (HFM_ERROR, "shutting down") before this returns.
 */
void hfm_up_free(struct hfm_upstream *u);

void hfm_up_set_offline(struct hfm_upstream *u, int offline);
int hfm_up_is_offline(struct hfm_upstream *u);
/* 1 during the hold-down after the upstream could not be reached. */
int hfm_up_unreachable(struct hfm_upstream *u);

/*
 * Counters, for tests.  /metrics gets the same by the transfer's kind
 * (hfm_up_request.kind) from hooks here (metrics.h: hfmirror_upstream_*).
 */
struct hfm_up_stats {
	uint64_t started;               /* transfers accepted by hfm_up_start */
	uint64_t retried;               /* attempts repeated by the retry policy */
	uint64_t sockets;               /* TCP connections opened (reuse keeps it low) */
	uint64_t bytes;                 /* body bytes delivered to on_data */
	uint64_t running;               /* transfers not yet done */
	uint64_t unreachable;           /* times the upstream became unreachable */
};
void hfm_up_stats(struct hfm_up_stats *out, struct hfm_upstream *u);

/* ---- one transfer ------------------------------------------------------- */

enum hfm_up_method { HFM_UP_GET, HFM_UP_HEAD, HFM_UP_POST };

/* What on_headers and on_data return. */
enum {
	HFM_UP_CONTINUE = 0,            /* keep going */
	HFM_UP_PAUSE = 1,               /* on_data only: the bytes were NOT taken;
					   they come again after hfm_up_resume() */
	HFM_UP_STOP = 2,                /* enough: end now, on_done gets 0 */
	/* a negative HFM_E* aborts the transfer; on_done gets that code */
};

struct hfm_up_header {
	const char *name;               /* as sent (compare case-insensitively) */
	const char *value;              /* leading and trailing blanks removed */
};

/*
 * The final response's status line and headers (the last response of a
 * redirect chain that was followed; the 3xx itself when not following).
 * Valid only during the callback.
 */
struct hfm_up_response {
	long status;
	size_t nheaders;
	const struct hfm_up_header *headers;
	int64_t content_length;         /* -1 if not sent */
	const char *url;                /* the URL this response came from */
	const char *redirect_url;       /* absolute Location of a 3xx, or NULL */
};
/* Value of the first header called `name` (any case), or NULL. */
const char *hfm_up_header_find(const struct hfm_up_header *h, size_t n, const char *name);
static inline const char *hfm_up_header(const struct hfm_up_response *r, const char *name)
{
	return hfm_up_header_find(r->headers, r->nheaders, name);
}

struct hfm_up_request {
	enum hfm_up_method method;
	const char *url;                /* absolute http(s) URL */
	const char *authorization;      /* whole header value ("Bearer hf_…"), or NULL */
	const char *const *headers;     /* more "Name: value" lines, NULL-terminated, or NULL */
	/* POST only: the request body (copied; sent with Content-Length) */
	const void *body;
	size_t body_len;
	/*
	 * A byte range: Range: bytes=range_start-(range_start+range_len-1), or
	 * bytes=range_start- when range_len is 0.  Only with has_range.  Sent
	 * again to every redirect target.
	 */
	int has_range;
	uint64_t range_start, range_len;
	/*
	 * Follow 3xx (GET of file content: the Hub sends large files to its CDN).
	 * When 0, a 3xx is the response: on_headers sees its status, its
	 * X-Repo-Commit and X-Linked-Etag/-Size headers and redirect_url (what
	 * huggingface_hub does for its metadata HEAD).
	 */
	int follow_redirects;
	/*
	 * Attempts for an idempotent request (0 or 1 = no retry).  A retry
	 * happens only before on_headers was called: after a connection failure
	 * or timeout, or a 408/429/500/502/503/504 answer, with exponential
	 * backoff from retry_base_ms (0 = 250) up to 5 s, with jitter.  Once the
	 * consumer has seen headers the transfer is never repeated behind its back.
	 */
	int max_attempts;
	long retry_base_ms;
	/* What it is for: the `kind` label of its metrics.  0 = other. */
	enum hfm_m_upkind kind;

	/*
	 * Callbacks, all on the upstream thread; cls is passed to each.
	 *  - on_headers (may be NULL): once, before the first on_data, or before
	 *    on_done when there is no body (HEAD, empty body).  Return
	 *    HFM_UP_CONTINUE, HFM_UP_STOP, or a negative code to abort.
	 *  - on_data (may be NULL = discard): body bytes in order.  Return
	 *    HFM_UP_CONTINUE when all n bytes were taken, HFM_UP_PAUSE when none
	 *    were (flow control: libcurl keeps them and stops reading the socket
	 *    until hfm_up_resume()), HFM_UP_STOP, or a negative code.  A paused
	 *    transfer is exempt from the low-speed limit.
	 *  - on_done: exactly once, last.  0 when the response was received
	 *    completely (whatever its status) or a callback returned HFM_UP_STOP;
	 *    else HFM_ETIMEOUT (connect failed or timed out, upstream too slow),
	 *    HFM_EUPSTREAM (protocol/TLS error, connection dropped, body shorter
	 *    than Content-Length), the code a callback returned, or HFM_ERROR
	 *    after hfm_up_cancel()/hfm_up_free().  hfm_error_last() on the
	 *    upstream thread holds the reason during the call.
	 */
	int (*on_headers)(void *cls, const struct hfm_up_response *r);
	int (*on_data)(void *cls, const void *data, size_t n);
	void (*on_done)(void *cls, int result);
	void *cls;
};

/*
 * Queue a transfer.  Strings in `req` are copied.  On success the transfer
 * will call on_done exactly once; *out (if out is not NULL) is a handle for
 * resume/cancel that the caller must hfm_up_release().  On failure
 * (HFM_EOFFLINE, HFM_EINVAL for a bad URL or method) no callback is ever
 * called.
 */
int hfm_up_start(struct hfm_up_xfer **out, struct hfm_upstream *u,
		 const struct hfm_up_request *req);
/* Undo an HFM_UP_PAUSE.  Harmless when not paused or already done. */
void hfm_up_resume(struct hfm_up_xfer *x);
/*
 * Stop the transfer soon; on_done follows (HFM_ERROR) unless it already ran.
 * This does not wait: a callback may be running on the upstream thread right
 * now, and on_done is the only point after which none will.  So state shared
 * with the callbacks is freed from on_done, never right after cancelling.
 */
void hfm_up_cancel(struct hfm_up_xfer *x);
/* Drop the handle from hfm_up_start (does not cancel). */
void hfm_up_release(struct hfm_up_xfer *x);

/* ---- blocking convenience (tests, tools; never on a server thread) ------ */

struct hfm_up_result {
	long status;                    /* 0 if no response */
	size_t nheaders;                /* the final response's headers */
	struct hfm_up_header *headers;  /* owned */
	int64_t content_length;
	char *redirect_url;             /* owned, or NULL */
	struct hfm_buf body;            /* capped by body_max */
};
/*
 * Run `req` (its callbacks are ignored) and wait.  Returns on_done's code;
 * a body longer than body_max fails with HFM_ETOOBIG.  `out` is always
 * initialised; release it with hfm_up_result_dispose().
 */
int hfm_up_fetch(struct hfm_up_result *out, struct hfm_upstream *u,
		 const struct hfm_up_request *req, size_t body_max);
void hfm_up_result_dispose(struct hfm_up_result *r);

#endif
