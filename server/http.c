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
 * Connections come from the edge (edge.c), which accepts them, holds each
 * until its first request head is complete and checked, and closes those
 * that miss the head deadline; MHD reports each connection's start, close
 * and request progress back to it (on_conn, on_uri, run, on_completed).
 * Every request MHD parses is checked again here (check_head): HTTPS and
 * later requests on a kept-alive connection never pass the edge's check.
 *
 * `slock` (one per server) serialises the suspend/resume handshake: a wake
 * that arrives before the request managed to suspend sets `woken`, and the
 * request then retries at once instead of suspending.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>
#ifdef HFM_HAVE_GNUTLS
#include <gnutls/gnutls.h>
#endif

#include "hfm/edge.h"
#include "hfm/http.h"
#include "hfm/httphead.h"
#include "hfm/metrics.h"
#include "hfm/source.h"
#include "hfm/stream.h"

#define SMALL_BODY (64u * 1024)          /* copied into the response */
/* pread+send block: 1 MiB measured 3.0-3.6 GB/s vs 2.1-2.6 at 256 KiB
 * (bench/run, docs/performance.md); held only while a body is sent. */
#define PREAD_BLOCK (1024u * 1024)
#define MAX_HEADERS 24
/* Descriptors kept for what is not a connection: files being sent (a
 * connection sending a file holds one more), the store, upstream sockets. */
#define FD_RESERVE 1024

struct hfm_server {
	struct MHD_Daemon *d;
	struct hfm_edge *edge;
	struct hfm_server_opts o;
	unsigned max_connections;            /* after RLIMIT_NOFILE */
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

	atomic_ullong n_rejected;            /* heads refused here (the edge counts its own) */
	atomic_uint inflight;
	atomic_int draining;                 /* hfm_server_drain() began: no new connections */
	struct hfm_metrics_probe probe;      /* the edge's counts and inflight, for /metrics */
};

struct arg {
	char *key, *val;
};

enum resp_kind { RESP_BUF, RESP_READER, RESP_SENDFILE };

struct hfm_req {
	struct hfm_server *srv;
	struct MHD_Connection *conn;
	struct hfm_edge_conn *econn;         /* the edge's record of the connection */
	char *uri;                           /* raw, as sent */
	char *path;                          /* raw path, no query */
	const char *query;                   /* raw query after '?', or "" */
	char *authority;                     /* of an absolute-form target, or NULL */
	enum hfm_method method;
	const char *method_str;
	int started;
	int busy;                            /* the whole request arrived */
	int raw_answer;                      /* answered past MHD (no room in its pool) */
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
	/* The body queued, and how much of it is known to be sent (what
	 * hfmirror_body_bytes_total has counted of it so far). */
	uint64_t body_len, bytes;
	enum resp_kind resp_kind;
	int64_t acked0;                      /* TCP bytes acked when queued, or -1 */
	size_t head_est;                     /* the answer's header bytes, about */
	size_t head_cost;                    /* what the request takes of MHD's pool */
	const char *src_kind;
	enum hfm_m_source src;               /* src_kind as a metrics label */
	enum hfm_m_route route;
	enum hfm_m_cache cache;
	uint64_t t0_ns;
	uint64_t wait_ns;
	uint64_t susp_ns;                    /* when it was last suspended */
	char remote[INET6_ADDRSTRLEN];       /* "" until asked */
	void (*end_fn)(void *cls, const struct hfm_req_end *e);
	void *end_cls;
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
void hfm_req_set_source(struct hfm_req *r, const char *kind)
{
	r->src_kind = kind;
	r->src = hfm_metrics_source_of(kind);
}
void hfm_req_set_route(struct hfm_req *r, enum hfm_m_route route) { r->route = route; }
void hfm_req_set_cache(struct hfm_req *r, enum hfm_m_cache what)
{
	if (what > r->cache)
		r->cache = what;
}
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

const char *hfm_req_arg_n(struct hfm_req *r, const char *name, size_t n)
{
	if (!r->args_parsed) {
		r->args_parsed = 1;
		hfm_form_parse(r->query, strlen(r->query), add_arg, r);
	}
	for (size_t i = 0; i < r->nargs; i++)
		if (!strcmp(r->args[i].key, name) && n-- == 0)
			return r->args[i].val;
	return NULL;
}

const char *hfm_req_arg(struct hfm_req *r, const char *name)
{
	return hfm_req_arg_n(r, name, 0);
}

const char *hfm_req_query(const struct hfm_req *r)
{
	return r->query;
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
		/* RFC 9112 §3.2.2: an absolute-form target's authority wins over Host. */
		const char *h = r->authority ? r->authority : hfm_req_header(r, "Host");
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
	/* a kept-alive client of a draining node reconnects, through the balancer, elsewhere */
	if (atomic_load(&r->srv->draining))
		MHD_add_response_header(resp, "Connection", "close");
}

static struct MHD_Response *buf_response(struct hfm_buf *b)
{
	size_t len = b ? b->len : 0;
	char *p = b ? hfm_buf_detach(b) : NULL;
	if (!p)
		return MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	return MHD_create_response_from_buffer(len, p, MHD_RESPMEM_MUST_FREE);
}

/* The connection's socket (valid while MHD runs one of our callbacks for it). */
static int conn_fd(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	return ci ? ci->connect_fd : -1;
}

/*
 * Count body bytes as they go out: MHD asks a reader for the bytes at `pos`
 * only once everything before it is written, so `pos` is sent.
 */
static void sent_so_far(struct hfm_req *r, uint64_t pos)
{
	if (pos > r->bytes) {
		hfm_metrics_add(HFM_M_BODY_BYTES + r->src, pos - r->bytes);
		r->bytes = pos;
	}
}

/* What MHD puts around our headers: status line, Date, Content-Length,
 * the blank line (and maybe a Connection header: a few bytes off). */
static size_t head_estimate(const struct hfm_req *r, unsigned status)
{
	size_t n = 9 + 4 + strlen(MHD_get_reason_phrase_for(status)) + 2 + 37 + 18 + 20 + 2;
	for (size_t i = 0; i < r->nhdrs; i++)
		n += strlen(r->hdrs[i].key) + 2 + strlen(r->hdrs[i].val) + 2;
	return n;
}

static int queue(struct hfm_req *r, unsigned status, struct MHD_Response *resp,
		 enum resp_kind kind, uint64_t len)
{
	if (!resp) {
		r->replied = 1;
		r->status = 500;
		return HFM_EIO;
	}
	size_t est = head_estimate(r, status);
	if (est > HFM_HEAD_REPLY_RESERVE && r->head_cost + est + 512 > HFM_HEAD_POOL) {
		/* MHD would close the connection without an answer ("failed to
		 * create response header"): its pool cannot hold these headers
		 * next to this request's head (a Link header with long paths). */
		MHD_destroy_response(resp);
		drop_headers(r);
		struct hfm_buf b = HFM_BUF_INIT(1024);
		const char *why = "The answer's headers do not fit this server's connection buffer";
		hfm_head_error_body(&b, why);
		hfm_req_add_header(r, "Content-Type", "application/json; charset=utf-8");
		hfm_req_add_header(r, "X-Error-Message", why);
		status = 500;
		kind = RESP_BUF;
		len = b.len;
		resp = buf_response(&b);
		if (!resp) {
			r->replied = 1;
			r->status = 500;
			return HFM_EIO;
		}
	}
	queue_headers(r, resp);
	r->replied = 1;
	r->status = status;
	r->resp_kind = kind;
	r->body_len = r->method == HFM_M_HEAD ? 0 : len;
	r->bytes = 0;
	r->acked0 = -1;
	/* Bodies MHD sends without asking us (buffers, sendfile): what the
	 * client's TCP acknowledged tells how much of one that ends early got
	 * there.  Small buffers go out in one write; not worth a syscall. */
	if (r->body_len && (kind == RESP_SENDFILE || (kind == RESP_BUF && len >= 16384))) {
		r->acked0 = hfm_sock_bytes_acked(conn_fd(r->conn));
		r->head_est = est;
	}
	enum MHD_Result ok = MHD_queue_response(r->conn, status, resp);
	MHD_destroy_response(resp);
	return ok == MHD_YES ? 0 : HFM_EIO;
}

/* The body bytes sent once the request is over. */
static void count_sent(struct hfm_req *r, enum MHD_RequestTerminationCode toe)
{
	uint64_t sent = r->bytes;
	if (toe == MHD_REQUEST_TERMINATED_COMPLETED_OK && r->body_len != HFM_LEN_UNKNOWN) {
		sent = r->body_len;
	} else if (r->acked0 >= 0) {
		int64_t a = hfm_sock_bytes_acked(conn_fd(r->conn));
		if (a > r->acked0 && (uint64_t)(a - r->acked0) > r->head_est)
			sent = HFM_MIN((uint64_t)(a - r->acked0) - r->head_est, r->body_len);
	}
	sent_so_far(r, sent);
}

int hfm_req_respond(struct hfm_req *r, unsigned status, struct hfm_buf *body)
{
	size_t len = body ? body->len : 0;
	return queue(r, status, buf_response(body), RESP_BUF, len);
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
	sent_so_far(c->r, pos);
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

/*
 * Streamed bodies (online cache): see the waiting section below.  The block
 * as for files (PREAD_BLOCK): at 64 KiB a cold 1 GiB GET spent 0.5 s of CPU
 * sending, at 1 MiB 0.35 s (docs/performance.md, "Online cache").  A
 * smaller body gets a block of its size: MHD allocates it up front.  A
 * body of unknown length (git's packs, made as they are sent) keeps the
 * 64 KiB it was measured with.
 */
#define STREAM_BLOCK PREAD_BLOCK
#define STREAM_BLOCK_UNKNOWN (64u * 1024)
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
		resp = MHD_create_response_from_callback(
			len == HFM_LEN_UNKNOWN ? MHD_SIZE_UNKNOWN : len,
			len == HFM_LEN_UNKNOWN ? STREAM_BLOCK_UNKNOWN :
			(size_t)HFM_MAX(HFM_MIN(len, (uint64_t)STREAM_BLOCK), (uint64_t)4096),
			stream_reader, c, stream_free);
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
	enum resp_kind kind = RESP_READER;
	if (body->kind == HFM_BODY_MEM || (body->kind == HFM_BODY_FD && len <= SMALL_BODY))
		kind = RESP_BUF;
	else if (body->kind == HFM_BODY_FD && r->srv->o.body_io == HFM_IO_SENDFILE)
		kind = RESP_SENDFILE;
	struct MHD_Response *resp = body_response(r, body, start, len);
	if (!resp) {
		drop_headers(r);
		return HFM_EIO;
	}
	return queue(r, status, resp, kind, len);
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
				hfm_metrics_inc(HFM_M_WAIT_TIMEOUTS);
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
	hfm_metrics_inc(HFM_M_WAITS);
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
	int unknown = c->len == HFM_LEN_UNKNOWN;

	sent_so_far(r, pos);
	if (!unknown && pos >= c->len)
		return MHD_CONTENT_READER_END_OF_STREAM;
	account_wait(r);
	size_t want = unknown ? max : (size_t)HFM_MIN((uint64_t)max, c->len - pos);
	for (;;) {
		if (r->waiter && hfm_waiter_fired(r->waiter))
			drop_waiter(r);
		if (r->timed_out)
			return MHD_CONTENT_READER_END_WITH_ERROR;
		if (!r->waiter)
			arm(r);
		ssize_t n = hfm_stream_read(c->s, c->base + pos,
					    unknown ? HFM_LEN_UNKNOWN : c->base + c->len, buf, want,
					    r->waiter);
		if (n > 0)
			return n;
		if (n == 0 && unknown)
			return MHD_CONTENT_READER_END_OF_STREAM;
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
	if (!r->busy) {                       /* the request is all here: no head deadline */
		r->busy = 1;
		hfm_edge_conn_busy(r->econn);
	}
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
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
	r->econn = ci ? ci->socket_context : NULL;
	hfm_edge_conn_head(r->econn);        /* a kept-alive connection's next head */
	r->uri = hfm_strdup(uri ? uri : "");
	/* Absolute form (RFC 9112 §3.2.2): route on the origin-form rest. */
	const char *rest = r->uri;
	size_t ao, al, ro;
	if (hfm_head_absolute(r->uri, strlen(r->uri), &ao, &al, &ro)) {
		r->authority = hfm_strndup(r->uri + ao, al);
		rest = r->uri + ro;
	}
	const char *q = strchr(rest, '?');
	if (q) {
		r->path = q == rest ? hfm_strdup("/") : hfm_strndup(rest, (size_t)(q - rest));
		r->query = q + 1;
	} else {
		r->path = hfm_strdup(*rest ? rest : "/");
		r->query = "";
	}
	hfm_buf_init(&r->body, HFM_MAX_BODY);
	r->t0_ns = hfm_mono_ns();
	atomic_fetch_add(&r->srv->inflight, 1);
	return r;
}

struct head_fields {
	struct hfm_head_field f[128];
	size_t n, records;
	int over;
};

static enum MHD_Result collect_field(void *cls, enum MHD_ValueKind kind, const char *key,
				     size_t key_size, const char *value, size_t value_size)
{
	struct head_fields *hf = cls;
	hf->records++;
	if (kind != MHD_HEADER_KIND)
		return MHD_YES;
	if (hf->n == HFM_ARRAY_SIZE(hf->f)) {
		hf->over = 1;
		return MHD_YES;
	}
	hf->f[hf->n++] = (struct hfm_head_field){ key, key_size, value ? value : "", value ? value_size : 0 };
	return MHD_YES;
}

/* The TLS session of r's connection, or NULL (plain, or no TLS library here). */
static void *tls_session(struct hfm_req *r)
{
#ifdef HFM_HAVE_GNUTLS
	if (r->srv->tls) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
		return ci ? ci->tls_session : NULL;
	}
#endif
	(void)r;
	return NULL;
}

/*
 * Send bytes on r's connection without MHD, in the first call for a request
 * (MHD has nothing of its own to send then); MHD must close the connection
 * right after.
 */
static void write_past_mhd(struct hfm_req *r, const char *p, size_t n)
{
#ifdef HFM_HAVE_GNUTLS
	gnutls_session_t ts = tls_session(r);
	if (ts) {
		for (int tries = 0; n && tries < 100; tries++) {
			ssize_t k = gnutls_record_send(ts, p, n);
			if (k == GNUTLS_E_AGAIN || k == GNUTLS_E_INTERRUPTED)
				continue;
			if (k <= 0)
				return;
			p += k;
			n -= (size_t)k;
		}
		return;
	}
#endif
	hfm_sock_send(conn_fd(r->conn), p, n);
}

/*
 * Refuse a request before it reaches the app: the error, Connection: close,
 * and the body (if any) left unread.  `room`: MHD's pool can still hold the
 * answer's headers; when it cannot, a plain connection gets the answer
 * written past MHD and is closed (MHD would close it without one).
 */
static enum MHD_Result reject(struct hfm_req *r, unsigned status, const char *why, int room)
{
	struct hfm_server *s = r->srv;
	atomic_fetch_add(&s->n_rejected, 1);
	drop_headers(r);
	if (!room && (!s->tls || tls_session(r))) {
		struct hfm_buf b = HFM_BUF_INIT(4096);
		uint64_t body = hfm_head_canned(&b, status, why);
		write_past_mhd(r, b.ptr, b.len);
		hfm_buf_dispose(&b);
		r->replied = r->raw_answer = 1;
		r->status = status;
		r->body_len = body;
		sent_so_far(r, body);
		return MHD_NO;                    /* MHD closes the connection */
	}
	struct hfm_buf b = HFM_BUF_INIT(1024);
	hfm_head_error_body(&b, why);
	hfm_req_add_header(r, "Content-Type", "application/json; charset=utf-8");
	hfm_req_add_header(r, "X-Error-Message", why);
	hfm_req_add_header(r, "Connection", "close");
	hfm_req_respond(r, status, &b);
	return MHD_YES;
}

/*
 * The head as MHD parsed it, by the edge's rules (httphead.h): framing,
 * Host, and what fits MHD's pool.  Returns 1 with *out set when the request
 * was refused.
 */
static int check_head(struct hfm_req *r, const char *version, enum MHD_Result *out)
{
	struct head_fields hf;
	hf.n = hf.records = 0;
	hf.over = 0;
	MHD_get_connection_values_n(r->conn, MHD_HEADER_KIND | MHD_GET_ARGUMENT_KIND | MHD_COOKIE_KIND,
				    collect_field, &hf);
	struct hfm_head_cost cost = { 0, hf.records, 0 };
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
	cost.head_len = ci ? ci->header_size : 0;
	const char *cookie;
	size_t cookie_len;
	if (MHD_lookup_connection_value_n(r->conn, MHD_HEADER_KIND, "Cookie", 6, &cookie,
					  &cookie_len) == MHD_YES)
		cost.cookie_len = cookie_len + 1;
	size_t c = hfm_head_cost(&cost);
	int room = c + 1024 <= HFM_HEAD_POOL;
	r->head_cost = c;
	if (hf.over || c > HFM_HEAD_BUDGET) {
		*out = reject(r, 431, "Request header fields too large", room);
		return 1;
	}
	const char *why;
	int http11 = !version || strcmp(version, "HTTP/1.0") != 0;
	unsigned st = hfm_head_check_fields(hf.f, hf.n, http11, HFM_MAX_BODY, &why);
	if (st) {
		*out = reject(r, st, why, room);
		return 1;
	}
	return 0;
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
		enum MHD_Result bad;
		if (check_head(r, version, &bad))
			return bad;                  /* answered before any body is read */
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

/* The address of sa as text, "-" if none. */
static void addr_str(char out[INET6_ADDRSTRLEN], const struct sockaddr *sa)
{
	strcpy(out, "-");
	if (sa && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, out, INET6_ADDRSTRLEN);
	else if (sa && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, out,
			  INET6_ADDRSTRLEN);
}

const char *hfm_req_remote(struct hfm_req *r)
{
	if (!r->remote[0]) {
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		addr_str(r->remote, ci ? ci->client_addr : NULL);
	}
	return r->remote;
}

void hfm_req_on_end(struct hfm_req *r, void (*fn)(void *cls, const struct hfm_req_end *e),
		    void *cls)
{
	r->end_fn = fn;
	r->end_cls = cls;
}

/* One access-log line; the request's own fields, or the edge's answer's. */
struct log_rec {
	const struct sockaddr *addr;
	const char *method;
	size_t method_len;
	const char *url;
	size_t url_len;
	unsigned status;
	uint64_t bytes;
	uint64_t ns, wait_ns;
	int complete;
	const char *src, *ua, *trace;
};

static void write_log(struct hfm_server *s, const struct log_rec *l)
{
	char ts[HFM_ISO_DATE_LEN + 1];
	hfm_iso_date(ts, hfm_now_ms());
	char addr[INET6_ADDRSTRLEN];
	addr_str(addr, l->addr);
	struct hfm_buf b = HFM_BUF_INIT(16384);
	hfm_buf_puts(&b, "{\"ts\":\"");
	hfm_buf_puts(&b, ts);
	hfm_buf_puts(&b, "\",\"remote\":\"");
	hfm_buf_puts(&b, addr);
	hfm_buf_puts(&b, "\",\"method\":");
	if (l->method)
		hfm_buf_json_strn(&b, l->method, l->method_len);
	else
		hfm_buf_json_str(&b, "-");
	hfm_buf_puts(&b, ",\"url\":");
	hfm_buf_json_strn(&b, l->url ? l->url : "", l->url ? HFM_MIN(l->url_len, (size_t)4096) : 0);
	hfm_buf_printf(&b, ",\"status\":%u,\"bytes\":%llu,\"ms\":%.3f,\"wait_ms\":%.3f", l->status,
		       (unsigned long long)l->bytes, (double)l->ns / 1e6, (double)l->wait_ns / 1e6);
	hfm_buf_printf(&b, ",\"complete\":%s", l->complete ? "true" : "false");
	if (l->src) {
		hfm_buf_puts(&b, ",\"src\":");
		hfm_buf_json_str(&b, l->src);
	}
	if (l->ua) {
		hfm_buf_puts(&b, ",\"ua\":");
		hfm_buf_json_strn(&b, l->ua, HFM_MIN(strlen(l->ua), (size_t)512));
	}
	if (l->trace) {
		hfm_buf_puts(&b, ",\"trace\":");
		hfm_buf_json_strn(&b, l->trace, HFM_MIN(strlen(l->trace), (size_t)200));
	}
	hfm_buf_puts(&b, "}\n");
	if (!b.err) {
		/* One write per line: O_APPEND keeps lines whole across threads. */
		ssize_t n = write(s->o.access_log_fd, b.ptr, b.len);
		(void)n;
	}
	hfm_buf_dispose(&b);
}

static void log_line(struct hfm_server *s, struct hfm_req *r, enum MHD_RequestTerminationCode toe)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(r->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	struct log_rec l = {
		.addr = ci ? ci->client_addr : NULL,
		.method = r->method_str,
		.method_len = r->method_str ? strlen(r->method_str) : 0,
		.url = r->uri,
		.url_len = strlen(r->uri),
		.status = r->status,
		.bytes = r->bytes,
		.ns = hfm_mono_ns() - r->t0_ns,
		.wait_ns = r->wait_ns,
		.complete = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK || r->raw_answer,
		.src = r->src_kind,
		.ua = r->started ? hfm_req_header(r, "User-Agent") : NULL,
		.trace = r->started ? hfm_req_header(r, "X-Amzn-Trace-Id") : NULL,
	};
	write_log(s, &l);
}

/* A request the edge answered itself (a bad head, 503 at the cap). */
static void on_edge_answer(void *cls, const struct hfm_edge_answer *a)
{
	struct hfm_server *s = cls;
	hfm_metrics_request(HFM_MR_OTHER, HFM_MS_NONE, a->status, a->ns);
	hfm_metrics_add(HFM_M_BODY_BYTES + HFM_MS_NONE, a->bytes);
	if (s->o.access_log_fd < 0)
		return;
	struct log_rec l = {
		.addr = a->addr,
		.method = a->method,
		.method_len = a->method_len,
		.url = a->target,
		.url_len = a->target_len,
		.status = a->status,
		.bytes = a->bytes,
		.ns = a->ns,
		.complete = 1,
	};
	write_log(s, &l);
}

static int on_edge_admit(void *cls, int fd, const struct sockaddr *sa, socklen_t salen)
{
	struct hfm_server *s = cls;
	return MHD_add_connection(s->d, fd, sa, salen) == MHD_YES ? 0 : -1;
}

/* MHD's view of connections, for the edge's deadlines and cap. */
static void on_conn(void *cls, struct MHD_Connection *conn, void **socket_context,
		    enum MHD_ConnectionNotificationCode code)
{
	struct hfm_server *s = cls;
	if (code == MHD_CONNECTION_NOTIFY_STARTED) {
		*socket_context = hfm_edge_conn_started(s->edge, conn_fd(conn));
	} else {
		hfm_edge_conn_closed(*socket_context);
		*socket_context = NULL;
	}
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
	free(r->authority);
	free(r->path);
	free(r->uri);
	free(r);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	struct hfm_server *s = cls;
	struct hfm_req *r = *con_cls;
	if (!r)
		return;
	*con_cls = NULL;
	if (!r->replied) {                    /* MHD answered it (an error of its own) */
		const union MHD_ConnectionInfo *ci =
			MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
		if (ci)
			r->status = ci->http_status;
	}
	count_sent(r, toe);
	hfm_metrics_request(r->route, r->src, r->status, hfm_mono_ns() - r->t0_ns);
	/* what clients got from the cache: not HEADs, 304s nor errors */
	if (r->cache && r->method != HFM_M_HEAD && (r->status == 200 || r->status == 206))
		hfm_metrics_inc(HFM_M_CACHE_ANSWERS + r->cache - 1);
	atomic_fetch_sub(&s->inflight, 1);
	if (s->o.access_log_fd >= 0)
		log_line(s, r, toe);
	if (r->end_fn) {
		struct hfm_req_end e = {
			.status = r->status,
			.bytes = r->bytes,
			.complete = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK || r->raw_answer,
			.remote = hfm_req_remote(r),
		};
		r->end_fn(r->end_cls, &e);
	}
	hfm_edge_conn_idle(r->econn);         /* kept alive: idle until the next byte */
	req_free(r);
}

/* What MHD logs for one connection that ended early or one bad request:
 * thousands a minute under a slow-client attack. */
static const char *const noise[] = {
	"closed connection", "Connection reset", "Broken pipe", "timed out",
	"Connection was closed by remote side", "Socket has been disconnected",
	"Connection socket is closed", "Failed to send", "Error processing request",
	"Application reported internal error", "incomplete upload processing",
	"Closing connection (application returned", "Not enough memory in pool",
	"Content-Length' header", "without `Host' header",
};

static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct hfm_server *s = cls;
	/* Count those for the edge's rate-limited summary; keep stderr useful. */
	char line[512];
	vsnprintf(line, sizeof(line), fmt, ap);
	for (size_t i = 0; i < HFM_ARRAY_SIZE(noise); i++)
		if (strstr(line, noise[i])) {
			if (s->edge)
				hfm_edge_note_abort(s->edge);
			return;
		}
	size_t n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	fprintf(stderr, "hfmirror: http: %s\n", line);
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

/*
 * Raise the open-file limit to its hard limit: each connection is a
 * descriptor.  Returns the connection cap that fits, lower than `want` (and
 * said on stderr) when the limit is too low for it.
 */
static unsigned fit_nofile(unsigned want)
{
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl))
		return want;
	if (rl.rlim_cur < rl.rlim_max) {
		rlim_t cur = rl.rlim_cur;
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl))
			rl.rlim_cur = cur;
	}
	if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (rlim_t)want + FD_RESERVE)
		return want;
	unsigned fit = rl.rlim_cur > 2 * FD_RESERVE ? (unsigned)(rl.rlim_cur - FD_RESERVE)
						    : (unsigned)(rl.rlim_cur / 2);
	fprintf(stderr, "hfmirror: the open-file limit (RLIMIT_NOFILE, hard %llu) is too low for "
		"%u connections: serving at most %u (raise LimitNOFILE or ulimit -Hn to %u)\n",
		(unsigned long long)rl.rlim_max, want, fit, want + FD_RESERVE);
	return fit;
}

/* Our own listening socket: the edge accepts, not MHD. */
static int listen_on(int *out, const struct sockaddr_storage *ss, socklen_t len, const char *host,
		     int port)
{
	int one = 1;
	int fd = socket(ss->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return hfm_error_set(HFM_EIO, "cannot listen on %s:%d: %s", host, port, strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (ss->ss_family == AF_INET6)
		setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
	if (bind(fd, (const struct sockaddr *)ss, len) || listen(fd, 4096)) {
		int err = errno;
		close(fd);
		return hfm_error_set(HFM_EIO, "cannot listen on %s:%d: %s", host, port, strerror(err));
	}
	*out = fd;
	return 0;
}

static int bound_port(int fd)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &len))
		return -1;
	if (ss.ss_family == AF_INET)
		return ntohs(((struct sockaddr_in *)&ss)->sin_port);
	if (ss.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	return -1;
}

/* The counts the edge and the server keep, copied for /metrics. */
static void server_probe(void *cls)
{
	struct hfm_server *s = cls;
	struct hfm_edge_stats es;

	hfm_edge_stats(s->edge, &es);
	hfm_metrics_set(HFM_M_CONNECTIONS_OPEN, (int64_t)es.open);
	hfm_metrics_set(HFM_M_CONNECTIONS, (int64_t)es.accepted);
	hfm_metrics_set(HFM_M_CONNECTIONS_CLOSED + HFM_MCL_HEAD_TIMEOUT, (int64_t)es.head_timeouts);
	hfm_metrics_set(HFM_M_CONNECTIONS_CLOSED + HFM_MCL_EVICTED, (int64_t)es.evicted);
	hfm_metrics_set(HFM_M_CONNECTIONS_CLOSED + HFM_MCL_REFUSED, (int64_t)es.refused);
	hfm_metrics_set(HFM_M_REQUESTS_REJECTED, (int64_t)(es.rejected + atomic_load(&s->n_rejected)));
	hfm_metrics_set(HFM_M_REQUESTS_IN_FLIGHT, (int64_t)atomic_load(&s->inflight));
}

int hfm_server_start(struct hfm_server **out, const struct hfm_server_opts *o)
{
	struct hfm_server *s = hfm_calloc(1, sizeof(*s));
	int rc = 0, lfd = -1;
	s->o = *o;
	if (!s->o.host)
		s->o.host = "localhost";
	pthread_mutex_init(&s->slock, NULL);
	pthread_cond_init(&s->timer_cond, NULL);

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
		s->tls = 1;
	}
	struct sockaddr_storage ss;
	socklen_t sslen = 0;
	if ((rc = resolve_bind(&ss, &sslen, s->o.host, o->port)) ||
	    (rc = listen_on(&lfd, &ss, sslen, s->o.host, o->port)))
		goto cleanup;
	s->port = bound_port(lfd);

	unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME |
			 MHD_USE_ERROR_LOG | MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
	if (s->tls)
		flags |= MHD_USE_TLS;
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	unsigned threads = o->threads > 0 ? (unsigned)o->threads : (unsigned)(ncpu > 0 ? ncpu : 2);
	s->max_connections = fit_nofile(o->max_connections ? o->max_connections : 16384);
	unsigned idle = o->idle_timeout ? o->idle_timeout : 120;

	struct MHD_OptionItem opts[16];
	size_t k = 0;
	opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_EXTERNAL_LOGGER, (intptr_t)on_mhd_log, s };
	if (threads > 1)     /* MHD warns about a pool of 1: it is the default */
		opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_THREAD_POOL_SIZE, threads, NULL };
	/* The edge enforces the cap; MHD's own limit only has to leave room
	 * for connections the edge shut down and MHD has not closed yet. */
	opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_LIMIT,
					     2 * s->max_connections + 64, NULL };
	opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_TIMEOUT, idle, NULL };
	/*
	 * One pool per connection holds the request head, MHD's records of its
	 * fields and the answer's headers; it is also what an idle keep-alive
	 * connection costs (MHD keeps it).  8 KiB keeps 256 idle connections
	 * under the RSS target (docs/performance.md); httphead.h admits only
	 * heads that leave room for the answer.
	 */
	opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_CONNECTION_MEMORY_LIMIT, HFM_HEAD_POOL, NULL };
	opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_URI_LOG_CALLBACK, (intptr_t)on_uri, s };
	opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_COMPLETED, (intptr_t)on_completed, s };
	opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_NOTIFY_CONNECTION, (intptr_t)on_conn, s };
	if (s->tls) {
		opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, s->key_pem };
		opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, s->cert_pem };
	}
	opts[k++] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };

	s->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, s, MHD_OPTION_ARRAY, opts,
				MHD_OPTION_END);
	if (!s->d) {
		rc = hfm_error_set(HFM_EIO, "cannot start the HTTP server%s",
				   s->tls ? " (is the TLS key or certificate bad?)" : "");
		goto cleanup;
	}
	const char *h = s->o.host;
	int v6 = strchr(h, ':') && h[0] != '[';
	snprintf(s->url, sizeof(s->url), "%s://%s%s%s:%d", s->tls ? "https" : "http", v6 ? "[" : "", h,
		 v6 ? "]" : "", s->port);
	if (pthread_create(&s->timer, NULL, timer_main, s)) {
		rc = hfm_error_set(HFM_EIO, "cannot start the timer thread");
		goto cleanup;
	}
	s->timer_started = 1;
	struct hfm_edge_opts eo = {
		.listen_fd = lfd,
		.tls = s->tls,
		.max_connections = s->max_connections,
		.head_timeout_ms = (o->head_timeout ? o->head_timeout : 10) * 1000u,
		.head_budget = HFM_HEAD_BUDGET,
		.max_body = HFM_MAX_BODY,
		.admit = on_edge_admit,
		.answered = on_edge_answer,
		.cls = s,
	};
	lfd = -1;                             /* the edge's now, even if it fails */
	if ((rc = hfm_edge_start(&s->edge, &eo)))
		goto cleanup;
	s->probe = (struct hfm_metrics_probe){ .read = server_probe, .cls = s };
	hfm_metrics_probe_add(&s->probe);
	hfm_metrics_set(HFM_M_START_TIME, (int64_t)(hfm_now_ms() / 1000));
	*out = s;
	return 0;

cleanup:
	if (lfd >= 0)
		close(lfd);
	if (s->timer_started) {
		pthread_mutex_lock(&s->slock);
		s->stopping = 1;
		pthread_cond_signal(&s->timer_cond);
		pthread_mutex_unlock(&s->slock);
		pthread_join(s->timer, NULL);
	}
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

int hfm_server_drain(struct hfm_server *s, unsigned timeout_ms)
{
	uint64_t until = hfm_mono_ns() + (uint64_t)timeout_ms * 1000000;
	unsigned left;

	if (!s)
		return 0;
	atomic_store(&s->draining, 1);
	hfm_edge_stop(s->edge);               /* stop accepting; close held heads */
	/* Requests in flight (also those waiting on the upstream, and bodies being
	 * sent) finish on the library's threads; nothing here needs waking. */
	while ((left = atomic_load(&s->inflight)) > 0 && hfm_mono_ns() < until)
		usleep(20000);
	return (int)left;
}

int hfm_server_draining(struct hfm_server *s)
{
	return s && atomic_load(&s->draining);
}

void hfm_server_stop(struct hfm_server *s)
{
	if (!s)
		return;
	hfm_metrics_probe_remove(&s->probe);
	hfm_edge_stop(s->edge);               /* stop accepting; close held heads */
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
	MHD_stop_daemon(s->d);                /* reports every connection closed */
	hfm_edge_free(s->edge);
	free(s->key_pem);
	free(s->cert_pem);
	pthread_mutex_destroy(&s->slock);
	pthread_cond_destroy(&s->timer_cond);
	free(s);
}
