/*
 * http.c - the transport: the libmicrohttpd daemon, the request lifecycle,
 * sending replies, suspend/resume, the access log and the counters.  The
 * application is a callback (hfm_server_opts.handle); nothing here knows
 * the Hub.
 *
 * Lifecycle of a request (struct hfm_req):
 *  - MHD's URI log callback allocates it with the raw request URI, before
 *    MHD decodes anything, so the app can route on that raw string.
 *  - The access handler reads the body (POST, capped at HFM_MAX_BODY), then
 *    runs the app.  An app that returns HFM_EAGAIN has armed the request's
 *    waiter: the connection is suspended (no thread is held).
 *  - The waiter's callback resumes the connection; MHD calls the access
 *    handler again and the app runs from the top.
 *  - A deadline thread resumes requests that waited longer than
 *    wait_timeout; the app then answers them refused (503, Retry-After).
 *  - MHD's completion callback writes the access-log line and frees it.
 *
 * `slock` (one per server) serialises the suspend/resume handshake: a wake
 * that arrives before the request managed to suspend sets `woken`, and the
 * request then retries at once instead of suspending.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "hfm/http.h"
#include "hfm/source.h"
#include "hfm/stream.h"

#define SMALL_BODY (64u * 1024)          /* copied into the response */
/* pread+send block: 1 MiB measured 3.0-3.6 GB/s vs 2.1-2.6 at 256 KiB
 * (bench/run, docs/performance.md); held only while a body is sent. */
#define PREAD_BLOCK (1024u * 1024)
#define MAX_HEADERS 24

struct hfm_server {
	struct MHD_Daemon *d;
	struct hfm_server_opts o;
	int port;
	int tls;
	char url[300];
	char *key_pem, *cert_pem;

	pthread_mutex_t slock;               /* suspend/resume handshake, list */
	struct hfm_req *suspended;           /* doubly linked */
	int stopping;
	pthread_t timer;
	pthread_cond_t timer_cond;
	int timer_started;

	atomic_ullong n_requests, n_bytes, n_waits, n_timeouts;
	atomic_ullong n_status[6];           /* 1xx..5xx, [0] other */
	atomic_uint inflight;
	uint64_t started_ns;
};

struct arg {
	char *key, *val;
};

struct hfm_req {
	struct hfm_server *srv;
	struct MHD_Connection *conn;
	char *uri;                           /* raw, as sent */
	char *path;                          /* raw path, no query */
	const char *query;                   /* raw query after '?', or "" */
	enum hfm_method method;
	const char *method_str;
	int started;
	struct hfm_buf body;
	int body_too_big;
	struct hfm_waiter *waiter;           /* this run's (or this read's) */

	/* under srv->slock */
	int suspended, woken, timed_out;
	uint64_t deadline_ns;
	struct hfm_req *prev, *next;

	struct arg *args;
	size_t nargs;
	int args_parsed;
	struct arg hdrs[MAX_HEADERS];
	size_t nhdrs;
	char *base_url;

	int replied;
	unsigned status;
	uint64_t bytes;
	const char *src_kind;
	uint64_t t0_ns;
	uint64_t wait_ns;
	uint64_t susp_ns;                    /* when it was last suspended */
};

/* ---- small helpers ------------------------------------------------------- */

static enum hfm_method method_of(const char *m)
{
	if (!strcmp(m, "GET"))
		return HFM_M_GET;
	if (!strcmp(m, "HEAD"))
		return HFM_M_HEAD;
	if (!strcmp(m, "POST"))
		return HFM_M_POST;
	if (!strcmp(m, "OPTIONS"))
		return HFM_M_OPTIONS;
	return HFM_M_OTHER;
}

enum hfm_method hfm_req_method(const struct hfm_req *r) { return r->method; }
const char *hfm_req_path(const struct hfm_req *r) { return r->path; }
const struct hfm_buf *hfm_req_body(const struct hfm_req *r) { return &r->body; }
struct hfm_waiter *hfm_req_waiter(struct hfm_req *r) { return r->waiter; }
uint64_t hfm_req_arrived_ns(const struct hfm_req *r) { return r->t0_ns; }
struct hfm_server *hfm_req_server(struct hfm_req *r) { return r->srv; }
void hfm_req_set_source(struct hfm_req *r, const char *kind) { r->src_kind = kind; }
int hfm_req_replied(const struct hfm_req *r) { return r->replied; }

int hfm_req_refused(const struct hfm_req *r, const char **why)
{
	*why = NULL;
	if (r->body_too_big) {
		*why = "Request body too large";
		return HFM_ETOOBIG;
	}
	if (r->timed_out) {
		if (r->srv->stopping)
			*why = "The server is stopping";
		return HFM_EAGAIN;
	}
	return 0;
}

const char *hfm_req_header(struct hfm_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, name);
}

void hfm_form_parse(const char *s, size_t n, void (*cb)(void *cls, char *key, char *val),
		    void *cls)
{
	const char *end = s + n;
	while (s < end) {
		const char *amp = memchr(s, '&', (size_t)(end - s));
		const char *e = amp ? amp : end;
		const char *eq = memchr(s, '=', (size_t)(e - s));
		const char *ke = eq ? eq : e;
		if (ke > s) {
			char *k = hfm_malloc((size_t)(ke - s) + 1);
			long kl = hfm_pct_decode(k, s, (size_t)(ke - s), 1);
			const char *vs = eq ? eq + 1 : e;
			char *v = hfm_malloc((size_t)(e - vs) + 1);
			long vl = hfm_pct_decode(v, vs, (size_t)(e - vs), 1);
			if (kl < 0 || vl < 0) {
				free(k);
				free(v);
			} else {
				cb(cls, k, v);
			}
		}
		s = e + 1;
	}
}

static void add_arg(void *cls, char *key, char *val)
{
	struct hfm_req *r = cls;
	if (r->nargs >= 64) {                /* bound what a query can make us keep */
		free(key);
		free(val);
		return;
	}
	r->args = hfm_realloc(r->args, (r->nargs + 1) * sizeof(*r->args));
	r->args[r->nargs].key = key;
	r->args[r->nargs].val = val;
	r->nargs++;
}

const char *hfm_req_arg(struct hfm_req *r, const char *name)
{
	if (!r->args_parsed) {
		r->args_parsed = 1;
		hfm_form_parse(r->query, strlen(r->query), add_arg, r);
	}
	for (size_t i = 0; i < r->nargs; i++)
		if (!strcmp(r->args[i].key, name))
			return r->args[i].val;
	return NULL;
}

void hfm_req_add_header(struct hfm_req *r, const char *name, const char *value)
{
	if (r->nhdrs >= MAX_HEADERS)
		return;
	r->hdrs[r->nhdrs].key = hfm_strdup(name);
	r->hdrs[r->nhdrs].val = hfm_strdup(value);
	r->nhdrs++;
}

/* Forget the headers added so far (a reply that will not be sent now). */
static void drop_headers(struct hfm_req *r)
{
	for (size_t i = 0; i < r->nhdrs; i++) {
		free(r->hdrs[i].key);
		free(r->hdrs[i].val);
	}
	r->nhdrs = 0;
}

/* A Host header we are willing to echo into absolute URLs. */
static int host_ok(const char *h)
{
	size_t n = strlen(h);
	if (n == 0 || n > 255)
		return 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)h[i];
		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
		    !strchr(".-:[]_", c))
			return 0;
	}
	return 1;
}

const char *hfm_req_base_url(struct hfm_req *r)
{
	if (r->base_url)
		return r->base_url;
	if (r->srv->o.public_url) {
		r->base_url = hfm_strdup(r->srv->o.public_url);
		size_t n = strlen(r->base_url);
		while (n > 0 && r->base_url[n - 1] == '/')
			r->base_url[--n] = '\0';
	} else {
		const char *h = hfm_req_header(r, "Host");
		if (h && host_ok(h))
			r->base_url = hfm_asprintf("%s://%s", r->srv->tls ? "https" : "http", h);
		else
			r->base_url = hfm_strdup(r->srv->url);
	}
	return r->base_url;
}

/* ---- replies ------------------------------------------------------------- */

static void queue_headers(struct hfm_req *r, struct MHD_Response *resp)
{
	for (size_t i = 0; i < r->nhdrs; i++)
		MHD_add_response_header(resp, r->hdrs[i].key, r->hdrs[i].val);
}

static int queue(struct hfm_req *r, unsigned status, struct MHD_Response *resp, uint64_t bytes)
{
	if (!resp) {
		r->replied = 1;
		r->status = 500;
		return HFM_EIO;
	}
	queue_headers(r, resp);
	enum MHD_Result ok = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	r->replied = 1;
	r->status = status;
	r->bytes = r->method == HFM_M_HEAD ? 0 : bytes;
	return ok == MHD_YES ? 0 : HFM_EIO;
}

static struct MHD_Response *buf_response(struct hfm_buf *b)
{
	size_t len = b ? b->len : 0;
	char *p = b ? hfm_buf_detach(b) : NULL;
	if (!p)
		return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	return MHD_create_response_from_buffer(len, p, MHD_RESPMEM_MUST_FREE);
}

int hfm_req_respond(struct hfm_req *r, unsigned status, struct hfm_buf *body)
{
	size_t len = body ? body->len : 0;
	return queue(r, status, buf_response(body), len);
}

/* ---- file replies --------------------------------------------------------- */

struct pread_cls {
	int fd;
	uint64_t base;
	uint64_t len;
	struct hfm_req *r;
};

static ssize_t pread_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct pread_cls *c = cls;
	if (pos >= c->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	size_t want = (size_t)HFM_MIN((uint64_t)max, c->len - pos);
	ssize_t n;
	do {
		n = pread(c->fd, buf, want, (off_t)(c->base + pos));
	} while (n < 0 && errno == EINTR);
	if (n <= 0)           /* the file shrank or broke: end the response early */
		return MHD_CONTENT_READER_END_WITH_ERROR;
	return n;
}

static void pread_free(void *cls)
{
	struct pread_cls *c = cls;
	close(c->fd);
	free(c);
}

/* Streamed bodies (online cache): see the waiting section below. */
#define STREAM_BLOCK (64u * 1024)
struct stream_cls {
	struct hfm_stream *s;
	uint64_t base;
	uint64_t len;
	struct hfm_req *r;
};
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max);

static void stream_free(void *cls)
{
	struct stream_cls *c = cls;
	hfm_stream_free(c->s);
	free(c);
}

static ssize_t never_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	(void)cls; (void)pos; (void)buf; (void)max;
	return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* A body slice [start, start+len) as an MHD response; takes over b. */
static struct MHD_Response *body_response(struct hfm_req *r, struct hfm_body *b,
					  uint64_t start, uint64_t len)
{
	struct MHD_Response *resp = NULL;
	if (r->method == HFM_M_HEAD) {
		/* MHD sends the headers (with this Content-Length) and no body. */
		resp = MHD_create_response_from_callback(len, 1024, never_reader, NULL, NULL);
		hfm_body_dispose(b);
		return resp;
	}
	switch (b->kind) {
	case HFM_BODY_MEM:
		resp = MHD_create_response_from_buffer((size_t)len, (void *)(b->mem + start),
						       MHD_RESPMEM_MUST_COPY);
		hfm_body_dispose(b);
		return resp;
	case HFM_BODY_FD:
		if (len <= SMALL_BODY) {
			char *p = hfm_malloc(len ? len : 1);
			ssize_t n = pread(b->fd, p, len, (off_t)(b->offset + start));
			hfm_body_dispose(b);
			if (n < 0 || (uint64_t)n != len) {
				free(p);
				hfm_error_set(HFM_EIO, "the file changed while it was read");
				return NULL;
			}
			return MHD_create_response_from_buffer(len, p, MHD_RESPMEM_MUST_FREE);
		}
		if (r->srv->o.body_io == HFM_IO_SENDFILE) {
			resp = MHD_create_response_from_fd_at_offset64(len, b->fd, b->offset + start);
			if (resp)
				b->fd = -1;          /* MHD closes it */
			hfm_body_dispose(b);
			return resp;
		} else {
			struct pread_cls *c = hfm_malloc(sizeof(*c));
			c->fd = b->fd;
			c->base = b->offset + start;
			c->len = len;
			c->r = r;
			b->fd = -1;
			hfm_body_dispose(b);
			resp = MHD_create_response_from_callback(len, PREAD_BLOCK, pread_reader, c,
								 pread_free);
			if (!resp)
				pread_free(c);
			return resp;
		}
	case HFM_BODY_STREAM: {
		struct stream_cls *c = hfm_malloc(sizeof(*c));
		c->s = b->stream;
		c->base = start;
		c->len = len;
		c->r = r;
		b->stream = NULL;
		hfm_body_dispose(b);
		resp = MHD_create_response_from_callback(len, STREAM_BLOCK, stream_reader, c,
							 stream_free);
		if (!resp)
			stream_free(c);
		return resp;
	}
	}
	hfm_body_dispose(b);
	hfm_error_set(HFM_EIO, "streamed bodies are not supported here");
	return NULL;
}

int hfm_req_respond_body(struct hfm_req *r, unsigned status, struct hfm_body *body,
			 uint64_t start, uint64_t len)
{
	if (body->kind == HFM_BODY_STREAM && r->method != HFM_M_HEAD && len) {
		/* Know that upstream delivers before promising a 200/206. */
		int rc = hfm_stream_prime(body->stream, start, start + len, r->waiter);
		if (rc) {
			hfm_body_dispose(body);
			drop_headers(r);
			return rc;
		}
	}
	struct MHD_Response *resp = body_response(r, body, start, len);
	if (!resp) {
		drop_headers(r);
		return HFM_EIO;
	}
	return queue(r, status, resp, len);
}

/* ---- waiting ------------------------------------------------------------- */

static void list_remove(struct hfm_server *s, struct hfm_req *r)
{
	if (r->prev)
		r->prev->next = r->next;
	else
		s->suspended = r->next;
	if (r->next)
		r->next->prev = r->prev;
	r->prev = r->next = NULL;
}

/*
 * Take a suspended request off the list and let MHD run it again; with
 * `timed_out` it will be answered 503.  Under s->slock.
 */
static void resume_locked(struct hfm_server *s, struct hfm_req *r, int timed_out)
{
	r->suspended = 0;
	if (timed_out)
		r->timed_out = 1;
	list_remove(s, r);
	MHD_resume_connection(r->conn);
}

/* Resume every waiting request as timed out (stopping).  Under s->slock;
 * returns whether there were any. */
static int resume_all_locked(struct hfm_server *s)
{
	int any = s->suspended != NULL;
	while (s->suspended)
		resume_locked(s, s->suspended, 1);
	return any;
}

static void req_wake(void *cls)
{
	struct hfm_req *r = cls;
	struct hfm_server *s = r->srv;
	pthread_mutex_lock(&s->slock);
	if (r->suspended) {
		resume_locked(s, r, 0);
	} else {
		r->woken = 1;
	}
	pthread_mutex_unlock(&s->slock);
}

static void *timer_main(void *arg)
{
	struct hfm_server *s = arg;
	pthread_mutex_lock(&s->slock);
	while (!s->stopping) {
		struct timespec ts;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&s->timer_cond, &s->slock, &ts);
		uint64_t now = hfm_mono_ns();
		struct hfm_req *r = s->suspended;
		while (r) {
			struct hfm_req *next = r->next;
			if (s->stopping || r->deadline_ns <= now) {
				resume_locked(s, r, 1);
				atomic_fetch_add(&s->n_timeouts, 1);
			}
			r = next;
		}
	}
	/* Stopping: let every waiting request finish with 503. */
	resume_all_locked(s);
	pthread_mutex_unlock(&s->slock);
	return NULL;
}

static void drop_waiter(struct hfm_req *r)
{
	if (r->waiter) {
		hfm_waiter_cancel(r->waiter);   /* waits out a callback in progress */
		hfm_waiter_unref(r->waiter);
		r->waiter = NULL;
	}
}

/* Count the time a request spent suspended, once it runs again. */
static void account_wait(struct hfm_req *r)
{
	if (r->susp_ns) {
		r->wait_ns += hfm_mono_ns() - r->susp_ns;
		r->susp_ns = 0;
	}
}

/* A fresh waiter for the next try: from now on its wake resumes r, or,
 * before r is suspended, sets `woken`. */
static void arm(struct hfm_req *r)
{
	struct hfm_server *s = r->srv;
	r->waiter = hfm_waiter_new(req_wake, r);
	pthread_mutex_lock(&s->slock);
	r->woken = 0;
	pthread_mutex_unlock(&s->slock);
}

enum park { PARK_SUSPENDED, PARK_RETRY, PARK_STOPPING };

/*
 * The suspend handshake, after a try returned HFM_EAGAIN with r's waiter
 * armed: PARK_RETRY when the waiter fired already (try again at once),
 * PARK_STOPPING when the server is stopping (nothing would resume r), else
 * the connection is suspended until the waiter fires or r's deadline
 * passes.  `each_wait`: the deadline counts from this wait (a streamed
 * body waits many times); otherwise from the request's first wait.
 */
static enum park park(struct hfm_req *r, int each_wait)
{
	struct hfm_server *s = r->srv;
	pthread_mutex_lock(&s->slock);
	if (r->woken || s->stopping) {
		int woken = r->woken;
		pthread_mutex_unlock(&s->slock);
		return woken ? PARK_RETRY : PARK_STOPPING;
	}
	if (each_wait || !r->deadline_ns) {
		unsigned t = s->o.wait_timeout ? s->o.wait_timeout : 600;
		r->deadline_ns = hfm_mono_ns() + (uint64_t)t * 1000000000ull;
	}
	MHD_suspend_connection(r->conn);
	r->suspended = 1;
	r->susp_ns = hfm_mono_ns();
	r->next = s->suspended;
	r->prev = NULL;
	if (s->suspended)
		s->suspended->prev = r;
	s->suspended = r;
	pthread_mutex_unlock(&s->slock);
	atomic_fetch_add(&s->n_waits, 1);
	return PARK_SUSPENDED;
}

/*
 * MHD's reader for a streamed body.  Returning 0 from a reader in MHD's
 * internal polling mode makes it call again at once (a busy loop), so when
 * no bytes are there the reader suspends the connection itself (allowed
 * from a content reader, microhttpd.h) and returns 0; the stream's wake
 * resumes it and MHD asks again for the same position.  Each wait has its
 * own deadline; a request that times out, or any stream error, ends the
 * body early (MHD closes the connection, so the client sees a short read).
 */
static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream_cls *c = cls;
	struct hfm_req *r = c->r;

	if (pos >= c->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	account_wait(r);
	size_t want = (size_t)HFM_MIN((uint64_t)max, c->len - pos);
	for (;;) {
		if (r->waiter && hfm_waiter_fired(r->waiter))
			drop_waiter(r);
		if (r->timed_out)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (!r->waiter)
			arm(r);
		ssize_t n = hfm_stream_read(c->s, c->base + pos, c->base + c->len, buf, want,
					    r->waiter);
		if (n > 0)
			return n;
		if (n != HFM_EAGAIN)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		switch (park(r, 1)) {
		case PARK_SUSPENDED:
			return 0;
		case PARK_STOPPING:
			return MHD_CONTENT_READER_END_WITH_ERROR;
		case PARK_RETRY:              /* the bytes came already */
			drop_waiter(r);
			break;
		}
	}
}

/* The app did not answer: never leave a client without a reply. */
static void reply_bare_500(struct hfm_req *r)
{
	drop_headers(r);
	hfm_req_respond(r, 500, NULL);
}

/* Run the app; suspend on HFM_EAGAIN.  Returns MHD_YES/NO. */
static enum MHD_Result run(struct hfm_req *r)
{
	struct hfm_server *s = r->srv;
	account_wait(r);
	for (;;) {
		drop_waiter(r);
		drop_headers(r);                  /* what an unanswered run added */
		const char *why;
		int refused = hfm_req_refused(r, &why);
		if (!refused)
			arm(r);
		hfm_error_clear();
		int rc = s->o.handle(r, s->o.app);
		if (r->replied)
			break;
		if (rc != HFM_EAGAIN || refused) {
			reply_bare_500(r);
			break;
		}
		enum park p = park(r, 0);
		if (p == PARK_SUSPENDED)
			return MHD_YES;
		if (p == PARK_STOPPING)
			r->timed_out = 1;         /* answered refused on the next turn */
	}
	drop_waiter(r);
	return MHD_YES;
}

/* ---- MHD callbacks --------------------------------------------------------- */

static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
	struct hfm_req *r = hfm_calloc(1, sizeof(*r));
	r->srv = cls;
	r->conn = conn;
	r->uri = hfm_strdup(uri ? uri : "");
	char *q = strchr(r->uri, '?');
	if (q) {
		r->path = hfm_strndup(r->uri, (size_t)(q - r->uri));
		r->query = q + 1;
	} else {
		r->path = hfm_strdup(r->uri);
		r->query = "";
	}
	hfm_buf_init(&r->body, HFM_MAX_BODY);
	r->t0_ns = hfm_mono_ns();
	atomic_fetch_add(&r->srv->inflight, 1);
	return r;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
				  const char *method, const char *version,
				  const char *upload_data, size_t *upload_data_size, void **con_cls)
{
	struct hfm_server *s = cls;
	struct hfm_req *r = *con_cls;
	(void)url; (void)version;
	if (!r) {                             /* no URI callback: should not happen */
		r = on_uri(s, url, conn);
		*con_cls = r;
	}
	if (!r->started) {
		r->started = 1;
		r->conn = conn;
		r->method = method_of(method);
		r->method_str = method;
		if (r->method == HFM_M_POST) {
			const char *cl = hfm_req_header(r, "Content-Length");
			if (cl && strtoull(cl, NULL, 10) > HFM_MAX_BODY) {
				r->body_too_big = 1;     /* refused before reading it */
				return run(r);
			}
		}
		/*
		 * Answer on the next call, once MHD has the whole request: a
		 * response queued while MHD still expects a body makes it close
		 * the connection, and keep-alive matters more than one call.
		 */
		return MHD_YES;
	}
	if (*upload_data_size) {
		if (!r->body_too_big && hfm_buf_put(&r->body, upload_data, *upload_data_size))
			r->body_too_big = 1;
		*upload_data_size = 0;
		return MHD_YES;
	}
	if (r->replied)
		return MHD_YES;
	return run(r);
}

static void log_line(struct hfm_server *s, struct hfm_req *r, enum MHD_RequestTerminationCode toe)
{
	char ts[HFM_ISO_DATE_LEN + 1];
	hfm_iso_date(ts, hfm_now_ms());
	char addr[INET6_ADDRSTRLEN] = "-";
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		const struct sockaddr *sa = ci->client_addr;
		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, addr, sizeof(addr));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, addr, sizeof(addr));
	}
	struct hfm_buf b = HFM_BUF_INIT(16384);
	hfm_buf_puts(&b, "{\"ts\":\"");
	hfm_buf_puts(&b, ts);
	hfm_buf_puts(&b, "\",\"remote\":\"");
	hfm_buf_puts(&b, addr);
	hfm_buf_puts(&b, "\",\"method\":");
	hfm_buf_json_str(&b, r->method_str ? r->method_str : "-");
	hfm_buf_puts(&b, ",\"url\":");
	hfm_buf_json_strn(&b, r->uri, HFM_MIN(strlen(r->uri), (size_t)4096));
	hfm_buf_printf(&b, ",\"status\":%u,\"bytes\":%llu,\"ms\":%.3f,\"wait_ms\":%.3f",
		       r->status, (unsigned long long)r->bytes,
		       (double)(hfm_mono_ns() - r->t0_ns) / 1e6, (double)r->wait_ns / 1e6);
	hfm_buf_printf(&b, ",\"complete\":%s", toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? "true" : "false");
	if (r->src_kind) {
		hfm_buf_puts(&b, ",\"src\":");
		hfm_buf_json_str(&b, r->src_kind);
	}
	const char *ua = r->started ? hfm_req_header(r, "User-Agent") : NULL;
	if (ua) {
		hfm_buf_puts(&b, ",\"ua\":");
		hfm_buf_json_strn(&b, ua, HFM_MIN(strlen(ua), (size_t)512));
	}
	const char *trace = r->started ? hfm_req_header(r, "X-Amzn-Trace-Id") : NULL;
	if (trace) {
		hfm_buf_puts(&b, ",\"trace\":");
		hfm_buf_json_strn(&b, trace, HFM_MIN(strlen(trace), (size_t)200));
	}
	hfm_buf_puts(&b, "}\n");
	if (!b.err) {
		/* One write per line: O_APPEND keeps lines whole across threads. */
		ssize_t n = write(s->o.access_log_fd, b.ptr, b.len);
		(void)n;
	}
	hfm_buf_dispose(&b);
}

static void req_free(struct hfm_req *r)
{
	drop_waiter(r);
	hfm_buf_dispose(&r->body);
	for (size_t i = 0; i < r->nargs; i++) {
		free(r->args[i].key);
		free(r->args[i].val);
	}
	free(r->args);
	for (size_t i = 0; i < r->nhdrs; i++) {
		free(r->hdrs[i].key);
		free(r->hdrs[i].val);
	}
	free(r->base_url);
	free(r->path);
	free(r->uri);
	free(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct hfm_server *s = cls;
	struct hfm_req *r = *con_cls;
	(void)conn;
	if (!r)
		return;
	*con_cls = NULL;
	atomic_fetch_add(&s->n_requests, 1);
	atomic_fetch_add(&s->n_bytes, r->bytes);
	unsigned cls_i = r->status >= 100 && r->status < 600 ? r->status / 100 : 0;
	atomic_fetch_add(&s->n_status[cls_i], 1);
	atomic_fetch_sub(&s->inflight, 1);
	if (s->o.access_log_fd >= 0)
		log_line(s, r, toe);
	req_free(r);
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	(void)cls;
	/* MHD logs every client that hangs up mid-response; keep stderr useful. */
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	if (strstr(line, "closed connection") || strstr(line, "Connection reset") ||
	    strstr(line, "Broken pipe") || strstr(line, "timed out"))
		return;
	fprintf(stderr, "hfmirror: http: %s", line);
	size_t n = strlen(line);
	if (n == 0 || line[n - 1] != '\n')
		fputc('\n', stderr);
}

/* ---- start / stop ----------------------------------------------------------- */

static int read_file(char **out, const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return hfm_error_set(HFM_EIO, "%s: %s", path, strerror(errno));
	struct hfm_buf b = HFM_BUF_INIT(1u << 20);
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof(tmp), f)) > 0)
		hfm_buf_put(&b, tmp, n);
	int err = ferror(f);
	fclose(f);
	if (err || b.err || b.len == 0) {
		hfm_buf_dispose(&b);
		return hfm_error_set(HFM_EIO, "%s: cannot read (empty, unreadable or over 1 MiB)", path);
	}
	*out = hfm_buf_detach(&b);
	return 0;
}

static int resolve_bind(struct sockaddr_storage *ss, socklen_t *len, const char *host, int port)
{
	struct addrinfo hints, *res = NULL, *ai, *pick = NULL;
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	char ps[16];
	snprintf(ps, sizeof(ps), "%d", port);
	const char *h = host;
	char stripped[256];
	size_t hl = strlen(host);
	if (hl > 2 && host[0] == '[' && host[hl - 1] == ']' && hl < sizeof(stripped)) {
		memcpy(stripped, host + 1, hl - 2);
		stripped[hl - 2] = '\0';
		h = stripped;
	}
	int rc = getaddrinfo(h, ps, &hints, &res);
	if (rc)
		return hfm_error_set(HFM_EINVAL, "cannot resolve --host %s: %s", host, gai_strerror(rc));
	/* "localhost" resolves to ::1 and 127.0.0.1; clients try 127.0.0.1 first. */
	for (ai = res; ai; ai = ai->ai_next)
		if (ai->ai_family == AF_INET) {
			pick = ai;
			break;
		}
	if (!pick)
		pick = res;
	memcpy(ss, pick->ai_addr, pick->ai_addrlen);
	*len = pick->ai_addrlen;
	freeaddrinfo(res);
	return 0;
}

int hfm_server_start(struct hfm_server **out, const struct hfm_server_opts *o)
{
	struct hfm_server *s = hfm_calloc(1, sizeof(*s));
	int rc = 0;
	s->o = *o;
	if (!s->o.host)
		s->o.host = "localhost";
	pthread_mutex_init(&s->slock, NULL);
	pthread_cond_init(&s->timer_cond, NULL);
	s->started_ns = hfm_mono_ns();

	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	if ((rc = resolve_bind(&ss, &sslen, s->o.host, o->port)))
		goto cleanup;

	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ERROR_LOG;
	if (ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	if (o->ssl_key || o->ssl_cert) {
		if (!o->ssl_key || !o->ssl_cert) {
			rc = hfm_error_set(HFM_EINVAL, "--ssl-key and --ssl-cert go together");
			goto cleanup;
		}
		if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
			rc = hfm_error_set(HFM_EINVAL, "this libmicrohttpd has no TLS support");
			goto cleanup;
		}
		if ((rc = read_file(&s->key_pem, o->ssl_key)) || (rc = read_file(&s->cert_pem, o->ssl_cert)))
			goto cleanup;
		flags |= MHD_USE_TLS;
		s->tls = 1;
	}
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = o->threads > 0 ? (unsigned)o->threads : (unsigned)(ncpu > 0 ? ncpu : 2);
	unsigned maxconn = o->max_connections ? o->max_connections : 4096;
	unsigned idle = o->idle_timeout ? o->idle_timeout : 120;

	struct MHD_OptionItem opts[16];
	size_t k = 0;
	opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, NULL };
	opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_SOCK_ADDR, 0, &ss };
	if (threads > 1)     /* MHD warns about a pool of 1: it is the default */
		opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE, threads, NULL };
	opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT, maxconn, NULL };
	opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, idle, NULL };
	/*
	 * Request line + headers must fit: this is the header size limit, and
	 * what an idle keep-alive connection costs once it served a request
	 * (MHD keeps the pool).  Hub clients send < 2 KiB of headers; 8 KiB
	 * (nginx's default header line limit) still fits a 3 KiB file path
	 * with a token and a long User-Agent, and saves ~2 MiB over 16 KiB at
	 * 256 idle connections (docs/performance.md).
	 */
	opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT, 8 * 1024, NULL };
	opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024, NULL };
	opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, s };
	opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s };
	if (s->tls) {
		opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, s->key_pem };
		opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert_pem };
	}
	opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };

	s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, opts,
				MHD_OPTION_END);
	if (!s->d) {
		rc = hfm_error_set(HFM_EIO, "cannot listen on %s:%d (address in use, bad TLS key/cert, "
				   "or not permitted)", s->o.host, o->port);
		goto cleanup;
	}
	const union MHD_DaemonInfo *di = MHD_get_daemon_info(s->d, MHD_DAEMON_INFO_BIND_PORT);
	s->port = di ? di->port : o->port;
	const char *h = s->o.host;
	int v6 = strchr(h, ':') && h[0] != '[';
	snprintf(s->url, sizeof(s->url), "%s://%s%s%s:%d", s->tls ? "https" : "http", v6 ? "[" : "", h,
		 v6 ? "]" : "", s->port);
	if (pthread_create(&s->timer, NULL, timer_main, s)) {
		rc = hfm_error_set(HFM_EIO, "cannot start the timer thread");
		goto cleanup;
	}
	s->timer_started = 1;
	*out = s;
	return 0;

cleanup:
	if (s->d)
		MHD_stop_daemon(s->d);
	free(s->key_pem);
	free(s->cert_pem);
	pthread_mutex_destroy(&s->slock);
	pthread_cond_destroy(&s->timer_cond);
	free(s);
	return rc;
}

const char *hfm_server_url(const struct hfm_server *s) { return s->url; }

void hfm_server_stop(struct hfm_server *s)
{
	if (!s)
		return;
	MHD_quiesce_daemon(s->d);             /* stop accepting */
	pthread_mutex_lock(&s->slock);
	s->stopping = 1;
	pthread_cond_signal(&s->timer_cond);
	pthread_mutex_unlock(&s->slock);
	if (s->timer_started)
		pthread_join(s->timer, NULL);     /* resumed every waiting request */
	/* Give resumed requests a moment to be answered before MHD closes them. */
	for (int i = 0; i < 50 && atomic_load(&s->inflight) > 0; i++) {
		pthread_mutex_lock(&s->slock);
		int waiting = resume_all_locked(s);
		pthread_mutex_unlock(&s->slock);
		if (!waiting)
			break;
		usleep(10000);
	}
	MHD_stop_daemon(s->d);
	free(s->key_pem);
	free(s->cert_pem);
	pthread_mutex_destroy(&s->slock);
	pthread_cond_destroy(&s->timer_cond);
	free(s);
}

void hfm_server_metrics(struct hfm_server *s, struct hfm_buf *out)
{
	hfm_buf_printf(out, "# TYPE hfmirror_requests_total counter\n");
	static const char *cls[] = { "other", "1xx", "2xx", "3xx", "4xx", "5xx" };
	for (int i = 0; i < 6; i++)
		hfm_buf_printf(out, "hfmirror_requests_total{class=\"%s\"} %llu\n", cls[i],
			       (unsigned long long)atomic_load(&s->n_status[i]));
	hfm_buf_printf(out, "# TYPE hfmirror_body_bytes_total counter\nhfmirror_body_bytes_total %llu\n",
		       (unsigned long long)atomic_load(&s->n_bytes));
	hfm_buf_printf(out, "# TYPE hfmirror_waits_total counter\nhfmirror_waits_total %llu\n",
		       (unsigned long long)atomic_load(&s->n_waits));
	hfm_buf_printf(out, "# TYPE hfmirror_wait_timeouts_total counter\nhfmirror_wait_timeouts_total %llu\n",
		       (unsigned long long)atomic_load(&s->n_timeouts));
	hfm_buf_printf(out, "# TYPE hfmirror_requests_in_flight gauge\nhfmirror_requests_in_flight %u\n",
		       atomic_load(&s->inflight));
	hfm_buf_printf(out, "# TYPE hfmirror_uptime_seconds gauge\nhfmirror_uptime_seconds %.0f\n",
		       (double)(hfm_mono_ns() - s->started_ns) / 1e9);
}
