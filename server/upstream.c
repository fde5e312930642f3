/* upstream.c - one libcurl multi loop thread that runs every upstream transfer. */
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "hfm/upstream.h"

#define HEADER_BYTES_MAX (64u * 1024)    /* all headers of one response */
#define HEADERS_MAX 256
#define RETRY_CAP_MS 5000
#define HOLD_DOWN_MS 30000

enum cmd_kind { CMD_START, CMD_RESUME, CMD_CANCEL };

struct cmd {
	struct cmd *next;
	enum cmd_kind kind;
	struct hfm_up_xfer *x;           /* reference held by the command */
};

struct hfm_upstream {
	CURLM *multi;
	pthread_t thread;
	pthread_mutex_t lock;            /* cmds, stopping */
	struct cmd *cmd_head, *cmd_tail;
	int stopping;
	atomic_int offline;
	/*
	 * Reachability (upstream.h): hfm_mono_ns() until which the upstream
	 * counts as unreachable (0: reachable).  `down` is the state last
	 * logged, so that only changes are.
	 */
	atomic_uint_fast64_t unreachable_until;
	atomic_int down;
	uint64_t hold_down_ns;

	/* loop thread only */
	struct hfm_up_xfer *active;      /* added to the multi handle */
	struct hfm_up_xfer *waiting;     /* waiting for a retry */
	uint64_t rand_state;

	/* copied options */
	long connect_timeout_ms, low_speed_limit, low_speed_time, max_redirects;
	char *user_agent;
	char *ca_file;
	struct curl_slist *resolve;
	hfm_log_fn log;
	void *log_cls;

	atomic_uint_fast64_t n_started, n_retried, n_sockets, n_bytes, n_running;
	atomic_uint_fast64_t n_unreachable;
};

struct hfm_up_xfer {
	atomic_int refs;
	atomic_int cancelled;
	struct hfm_upstream *u;

	/* the request (immutable after start) */
	enum hfm_up_method method;
	char *url;
	char *log_url;                   /* without query or userinfo */
	struct curl_slist *headers;      /* includes Authorization */
	char *body;                      /* POST */
	size_t body_len;
	char range[48];
	int follow, max_attempts;
	long retry_base_ms;
	enum hfm_m_upkind kind;
	int (*on_headers)(void *cls, const struct hfm_up_response *r);
	int (*on_data)(void *cls, const void *data, size_t n);
	void (*on_done)(void *cls, int result);
	void *cls;

	/* loop thread only */
	CURL *easy;
	struct hfm_up_xfer *next;        /* in u->active or u->waiting */
	int attempt;
	int delivered;                   /* on_headers was called */
	int discard;                     /* a retryable answer: swallow the body */
	int stopped;                     /* a callback said HFM_UP_STOP */
	int cb_rc;                       /* a callback aborted with this code */
	int done;
	uint64_t due_ns;                 /* retry time */
	uint64_t started_ns;
	uint64_t body_bytes;
	struct hfm_buf hbuf;             /* "name\0value\0" per header */
	size_t nh;
	struct hfm_up_header *hv;
	char errbuf[CURL_ERROR_SIZE];
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* ---- small helpers ------------------------------------------------------ */

const char *hfm_up_header_find(const struct hfm_up_header *h, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (hfm_strieq(h[i].name, name))
			return h[i].value;
	return NULL;
}

/* The URL as logs may show it: no userinfo, no query, no fragment. */
static char *url_for_log(const char *url)
{
	const char *p = strstr(url, "://"), *host, *at, *end;
	struct hfm_buf b = HFM_BUF_INIT(4096);

	host = p ? p + 3 : url;
	end = host + strcspn(host, "/?#");
	at = memchr(host, '@', (size_t)(end - host));
	hfm_buf_put(&b, url, (size_t)(host - url));
	if (at)
		host = at + 1;
	hfm_buf_put(&b, host, strcspn(host, "?#"));
	if (b.err || !b.ptr)
		return hfm_strdup("(url)");
	return hfm_buf_detach(&b);
}

static const char *method_name(enum hfm_up_method m)
{
	return m == HFM_UP_HEAD ? "HEAD" : m == HFM_UP_POST ? "POST" : "GET";
}

static int status_retryable(long s)
{
	return s == 408 || s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

static int curl_retryable(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
		return 1;
	default:
		return 0;
	}
}

static int curl_to_hfm(CURLcode cc)
{
	switch (cc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
		return HFM_ETIMEOUT;
	default:
		return HFM_EUPSTREAM;
	}
}

/* ---- reachability -------------------------------------------------------- */

/* The failures that say the upstream cannot be reached at all. */
static int curl_unreachable(CURLcode cc)
{
	return cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_CONNECT;
}

/* "scheme://host[:port]" of a log URL, for the state-change lines. */
static void url_origin(char *out, size_t n, const char *url)
{
	const char *p = strstr(url, "://");
	size_t len = p ? (size_t)(p + 3 - url) + strcspn(p + 3, "/") : strlen(url);

	snprintf(out, n, "%.*s", (int)len, url);
}

static void mark_unreachable(struct hfm_upstream *u, const char *url, const char *why)
{
	char origin[256];

	atomic_store(&u->unreachable_until, hfm_mono_ns() + u->hold_down_ns);
	if (atomic_exchange(&u->down, 1))
		return;
	atomic_fetch_add(&u->n_unreachable, 1);
	hfm_metrics_inc(HFM_M_UP_UNREACHABLE);
	url_origin(origin, sizeof(origin), url);
	hfm_log(u->log, u->log_cls, HFM_LOG_WARN,
		"upstream %s unreachable (%s): answering from what is stored, trying again "
		"in %llu s", origin, why, (unsigned long long)(u->hold_down_ns / 1000000000ull));
}

static void mark_reachable(struct hfm_upstream *u, const char *url)
{
	char origin[256];

	atomic_store(&u->unreachable_until, 0);
	if (!atomic_exchange(&u->down, 0))
		return;
	url_origin(origin, sizeof(origin), url);
	hfm_log(u->log, u->log_cls, HFM_LOG_WARN, "upstream %s reachable again", origin);
}

int hfm_up_unreachable(struct hfm_upstream *u)
{
	uint64_t until = atomic_load(&u->unreachable_until);

	return until && hfm_mono_ns() < until;
}

/* ---- transfers: creation and references --------------------------------- */

static struct hfm_up_xfer *xfer_ref(struct hfm_up_xfer *x)
{
	atomic_fetch_add(&x->refs, 1);
	return x;
}

static void xfer_unref(struct hfm_up_xfer *x)
{
	if (!x || atomic_fetch_sub(&x->refs, 1) != 1)
		return;
	if (x->easy)
		curl_easy_cleanup(x->easy);
	curl_slist_free_all(x->headers);
	hfm_buf_dispose(&x->hbuf);
	free(x->hv);
	free(x->url);
	free(x->log_url);
	free(x->body);
	free(x);
}

void hfm_up_release(struct hfm_up_xfer *x)
{
	xfer_unref(x);
}

static int append_header(struct curl_slist **l, const char *line)
{
	struct curl_slist *n = curl_slist_append(*l, line);

	if (!n)
		return hfm_error_set(HFM_ERROR, "out of memory building request headers");
	*l = n;
	return 0;
}

static int build_headers(struct hfm_up_xfer *x, const struct hfm_up_request *req)
{
	const char *const *h;
	int rc = 0;

	if (req->authorization) {
		char *line;

		if (strpbrk(req->authorization, "\r\n"))
			return hfm_error_set(HFM_EINVAL, "authorization contains a line break");
		line = hfm_asprintf("Authorization: %s", req->authorization);
		rc = append_header(&x->headers, line);
		free(line);
		if (rc)
			return rc;
	}
	for (h = req->headers; h && *h; h++) {
		if (strpbrk(*h, "\r\n") || !strchr(*h, ':'))
			return hfm_error_set(HFM_EINVAL, "bad request header line");
		if ((rc = append_header(&x->headers, *h)))
			return rc;
	}
	return 0;
}

static void cmd_push(struct hfm_upstream *u, enum cmd_kind kind, struct hfm_up_xfer *x)
{
	struct cmd *c = hfm_malloc(sizeof(*c));

	c->next = NULL;
	c->kind = kind;
	c->x = xfer_ref(x);
	pthread_mutex_lock(&u->lock);
	if (u->cmd_tail)
		u->cmd_tail->next = c;
	else
		u->cmd_head = c;
	u->cmd_tail = c;
	pthread_mutex_unlock(&u->lock);
	curl_multi_wakeup(u->multi);
}

int hfm_up_start(struct hfm_up_xfer **out, struct hfm_upstream *u,
		 const struct hfm_up_request *req)
{
	struct hfm_up_xfer *x;
	int rc;

	if (out)
		*out = NULL;
	if (atomic_load(&u->offline))
		return hfm_error_set(HFM_EOFFLINE, "offline: not contacting upstream");
	if (hfm_up_unreachable(u))
		return hfm_error_set(HFM_EOFFLINE, "the upstream is unreachable");
	if (!req->url || !req->on_done ||
	    (strncmp(req->url, "http://", 7) && strncmp(req->url, "https://", 8)))
		return hfm_error_set(HFM_EINVAL, "upstream request needs an http(s) URL and on_done");
	if (req->method != HFM_UP_GET && req->method != HFM_UP_HEAD && req->method != HFM_UP_POST)
		return hfm_error_set(HFM_EINVAL, "upstream method must be GET, HEAD or POST");

	x = hfm_calloc(1, sizeof(*x));
	atomic_init(&x->refs, 1);
	x->u = u;
	x->method = req->method;
	x->url = hfm_strdup(req->url);
	if (req->method == HFM_UP_POST) {
		x->body = hfm_malloc(req->body_len ? req->body_len : 1);
		if (req->body_len)
			memcpy(x->body, req->body, req->body_len);
		x->body_len = req->body_len;
	}
	x->log_url = url_for_log(req->url);
	x->follow = req->follow_redirects;
	x->max_attempts = req->max_attempts > 1 ? req->max_attempts : 1;
	x->retry_base_ms = req->retry_base_ms > 0 ? req->retry_base_ms : 250;
	x->kind = (unsigned)req->kind < HFM_UPK__N ? req->kind : HFM_UPK_OTHER;
	x->on_headers = req->on_headers;
	x->on_data = req->on_data;
	x->on_done = req->on_done;
	x->cls = req->cls;
	hfm_buf_init(&x->hbuf, HEADER_BYTES_MAX);
	if (req->has_range) {
		if (req->range_len)
			snprintf(x->range, sizeof(x->range), "%llu-%llu",
				 (unsigned long long)req->range_start,
				 (unsigned long long)(req->range_start + req->range_len - 1));
		else
			snprintf(x->range, sizeof(x->range), "%llu-",
				 (unsigned long long)req->range_start);
	}
	if ((rc = build_headers(x, req)))
		goto fail;

	atomic_fetch_add(&u->n_started, 1);
	atomic_fetch_add(&u->n_running, 1);
	hfm_metrics_inc(HFM_M_UP_REQUESTS + x->kind);
	hfm_metrics_inc(HFM_M_UP_IN_FLIGHT + x->kind);
	if (out)
		*out = xfer_ref(x);
	/* the reference we were created with is the loop's, dropped by finish() */
	cmd_push(u, CMD_START, x);
	return 0;
fail:
	xfer_unref(x);
	return rc;
}

void hfm_up_resume(struct hfm_up_xfer *x)
{
	cmd_push(x->u, CMD_RESUME, x);
}

void hfm_up_cancel(struct hfm_up_xfer *x)
{
	atomic_store(&x->cancelled, 1);
	cmd_push(x->u, CMD_CANCEL, x);
}

/* ---- curl callbacks (loop thread) --------------------------------------- */

static size_t on_header_line(char *p, size_t sz, size_t nm, void *ud)
{
	struct hfm_up_xfer *x = ud;
	size_t n = sz * nm, len = n, nlen;
	const char *colon, *v, *vend;

	if (n >= 5 && memcmp(p, "HTTP/", 5) == 0) {
		/* a new response (redirect hop, 1xx): forget the previous headers */
		hfm_buf_reset(&x->hbuf);
		x->nh = 0;
		return n;
	}
	while (len && (p[len - 1] == '\n' || p[len - 1] == '\r'))
		len--;
	colon = memchr(p, ':', len);
	if (!len || !colon || p[0] == ' ' || p[0] == '\t')
		return n;                /* end of headers, folding, junk */
	nlen = (size_t)(colon - p);
	v = colon + 1;
	vend = p + len;
	while (v < vend && (*v == ' ' || *v == '\t'))
		v++;
	while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
		vend--;
	hfm_buf_put(&x->hbuf, p, nlen);
	hfm_buf_putc(&x->hbuf, '\0');
	hfm_buf_put(&x->hbuf, v, (size_t)(vend - v));
	hfm_buf_putc(&x->hbuf, '\0');
	if (x->hbuf.err || ++x->nh > HEADERS_MAX) {
		x->cb_rc = hfm_error_set(HFM_EUPSTREAM, "%s: response headers too large",
					 x->log_url);
		return 0;
	}
	return n;
}

static long response_status(struct hfm_up_xfer *x)
{
	long status = 0;

	curl_easy_getinfo(x->easy, CURLINFO_RESPONSE_CODE, &status);
	return status;
}

/* Fill `r` from the current response; pointers stay valid until the next hop. */
static void make_response(struct hfm_up_xfer *x, struct hfm_up_response *r)
{
	const char *p = x->hbuf.ptr;
	curl_off_t cl = -1;
	char *s = NULL;
	size_t i;

	free(x->hv);
	x->hv = hfm_calloc(x->nh ? x->nh : 1, sizeof(*x->hv));
	for (i = 0; i < x->nh; i++) {
		x->hv[i].name = p;
		p += strlen(p) + 1;
		x->hv[i].value = p;
		p += strlen(p) + 1;
	}
	memset(r, 0, sizeof(*r));
	r->status = response_status(x);
	r->nheaders = x->nh;
	r->headers = x->hv;
	curl_easy_getinfo(x->easy, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &cl);
	r->content_length = cl;
	curl_easy_getinfo(x->easy, CURLINFO_EFFECTIVE_URL, &s);
	r->url = s ? s : x->url;
	s = NULL;
	curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_URL, &s);
	r->redirect_url = s;
}

static int deliver_headers(struct hfm_up_xfer *x)
{
	struct hfm_up_response r;

	mark_reachable(x->u, x->log_url);
	x->delivered = 1;
	if (!x->on_headers)
		return HFM_UP_CONTINUE;
	make_response(x, &r);
	return x->on_headers(x->cls, &r);
}

/* Whether this attempt's answer should be retried instead of delivered. */
static int want_retry_status(struct hfm_up_xfer *x)
{
	return !x->delivered && x->attempt < x->max_attempts &&
	       status_retryable(response_status(x));
}

static size_t on_body(char *p, size_t sz, size_t nm, void *ud)
{
	struct hfm_up_xfer *x = ud;
	size_t n = sz * nm;
	int rc;

	if (x->discard)
		return n;
	if (atomic_load(&x->cancelled)) {
		x->cb_rc = hfm_error_set(HFM_ERROR, "cancelled");
		return 0;
	}
	if (!x->delivered) {
		if (want_retry_status(x)) {
			x->discard = 1;
			return n;
		}
		rc = deliver_headers(x);
		if (rc == HFM_UP_STOP) {
			x->stopped = 1;
			return 0;
		}
		if (rc < 0) {
			x->cb_rc = rc;
			return 0;
		}
	}
	rc = x->on_data ? x->on_data(x->cls, p, n) : HFM_UP_CONTINUE;
	if (rc == HFM_UP_PAUSE)
		return CURL_WRITEFUNC_PAUSE;
	if (rc < 0) {
		x->cb_rc = rc;
		return 0;
	}
	x->body_bytes += n;
	atomic_fetch_add(&x->u->n_bytes, n);
	hfm_metrics_add(HFM_M_UP_BYTES + x->kind, n);
	if (rc == HFM_UP_STOP) {
		x->stopped = 1;
		return 0;
	}
	return n;
}

static curl_socket_t open_socket(void *cls, curlsocktype purpose, struct curl_sockaddr *a)
{
	struct hfm_upstream *u = cls;
	curl_socket_t s = socket(a->family, a->socktype | SOCK_CLOEXEC, a->protocol);

	if (s != CURL_SOCKET_BAD) {
		atomic_fetch_add(&u->n_sockets, 1);
		hfm_metrics_inc(HFM_M_UP_CONNECTIONS);
	}
	return s;
}

/* ---- the loop ----------------------------------------------------------- */

static int setup_easy(struct hfm_up_xfer *x)
{
	struct hfm_upstream *u = x->u;
	CURL *e = curl_easy_init();

	if (!e)
		return hfm_error_set(HFM_ERROR, "curl_easy_init failed");
	x->easy = e;
	curl_easy_setopt(e, CURLOPT_URL, x->url);
	curl_easy_setopt(e, CURLOPT_PRIVATE, x);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header_line);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, x);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, open_socket);
	curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, u);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
	curl_easy_setopt(e, CURLOPT_USERAGENT, u->user_agent);
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, x->follow ? 1L : 0L);
	curl_easy_setopt(e, CURLOPT_MAXREDIRS, u->max_redirects);
	/* Deliberately not set: CURLOPT_UNRESTRICTED_AUTH (the token must not
	 * follow a redirect to the CDN), CURLOPT_PROXY/NOPROXY (the environment
	 * decides), CURLOPT_ACCEPT_ENCODING (Range offsets are identity bytes). */
#if CURL_AT_LEAST_VERSION(7, 85, 0)
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
#else
	curl_easy_setopt(e, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
	curl_easy_setopt(e, CURLOPT_REDIR_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
	if (u->ca_file)
		curl_easy_setopt(e, CURLOPT_CAINFO, u->ca_file);
	if (u->resolve)
		curl_easy_setopt(e, CURLOPT_RESOLVE, u->resolve);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, u->connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, u->low_speed_limit);
	curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, u->low_speed_time);
	curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
	/*
	 * libcurl hands the body on in pieces of 16 KiB whatever this says, but
	 * reads the socket in pieces of this size: 512 KiB (the most libcurl
	 * 7.88 takes) halves the receive's CPU per GiB against 64 KiB
	 * (docs/performance.md, "Online cache").
	 */
	curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 512L * 1024);
	if (x->method == HFM_UP_HEAD)
		curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
	if (x->method == HFM_UP_POST) {
		curl_easy_setopt(e, CURLOPT_POST, 1L);
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)x->body_len);
	}
	if (x->range[0])
		curl_easy_setopt(e, CURLOPT_RANGE, x->range);
	return 0;
}

static void list_remove(struct hfm_up_xfer **head, struct hfm_up_xfer *x)
{
	while (*head && *head != x)
		head = &(*head)->next;
	if (*head)
		*head = x->next;
	x->next = NULL;
}

/*
 * A transfer's end in the metrics: a failure by why.  A 429 or 5xx answer
 * is one whether the consumer took it (rc 0) or refused it (its code);
 * cancelling is none.
 */
static void count_done(struct hfm_up_xfer *x, int rc)
{
	long st = x->easy ? response_status(x) : 0;
	enum hfm_m_uperr why = rc == HFM_ETIMEOUT ? HFM_UPE_TIMEOUT
			     : rc == HFM_EUPSTREAM ? HFM_UPE_TRANSFER : HFM_UPE_OTHER;

	hfm_metrics_sub(HFM_M_UP_IN_FLIGHT + x->kind, 1);
	if (rc == HFM_ERROR)
		return;
	if (st == 429 || st >= 500)
		why = HFM_UPE_STATUS;
	else if (rc == 0)
		return;
	hfm_metrics_inc(hfm_m_up_error(x->kind, why));
}

/* Report the end of a transfer and drop the loop's reference. */
static void finish(struct hfm_upstream *u, struct hfm_up_xfer *x, int rc)
{
	uint64_t ms = (hfm_mono_ns() - x->started_ns) / 1000000;

	x->done = 1;
	count_done(x, rc);                   /* before the status goes with the handle */
	if (x->easy) {
		curl_easy_cleanup(x->easy);
		x->easy = NULL;
	}
	if (rc && rc != HFM_ERROR)
		hfm_log(u->log, u->log_cls, HFM_LOG_WARN, "upstream %s %s failed after %llu ms: %s",
			method_name(x->method), x->log_url, (unsigned long long)ms,
			hfm_error_last());
	else
		hfm_log(u->log, u->log_cls, HFM_LOG_DEBUG, "upstream %s %s: %llu bytes, %llu ms%s",
			method_name(x->method), x->log_url, (unsigned long long)x->body_bytes,
			(unsigned long long)ms, rc ? " (cancelled)" : "");
	atomic_fetch_sub(&u->n_running, 1);
	x->on_done(x->cls, rc);
	xfer_unref(x);
}

static void attach(struct hfm_upstream *u, struct hfm_up_xfer *x)
{
	CURLMcode mc;

	x->attempt++;
	x->delivered = x->discard = x->stopped = 0;
	x->cb_rc = 0;
	x->body_bytes = 0;
	x->errbuf[0] = '\0';
	hfm_buf_reset(&x->hbuf);
	x->nh = 0;
	mc = curl_multi_add_handle(u->multi, x->easy);
	if (mc != CURLM_OK) {
		finish(u, x, hfm_error_set(HFM_ERROR, "curl_multi_add_handle: %s",
					   curl_multi_strerror(mc)));
		return;
	}
	x->next = u->active;
	u->active = x;
}

static void start(struct hfm_upstream *u, struct hfm_up_xfer *x)
{
	int rc;

	x->started_ns = hfm_mono_ns();
	if (atomic_load(&x->cancelled)) {
		finish(u, x, hfm_error_set(HFM_ERROR, "cancelled"));
		return;
	}
	if ((rc = setup_easy(x))) {
		finish(u, x, rc);
		return;
	}
	attach(u, x);
}

static uint64_t backoff_ns(struct hfm_upstream *u, struct hfm_up_xfer *x)
{
	uint64_t ms = (uint64_t)x->retry_base_ms << (x->attempt - 1 < 16 ? x->attempt - 1 : 16);
	uint64_t r;

	if (ms > RETRY_CAP_MS)
		ms = RETRY_CAP_MS;
	/* xorshift jitter in [75%, 125%) so retries of many transfers spread out */
	u->rand_state ^= u->rand_state << 13;
	u->rand_state ^= u->rand_state >> 7;
	u->rand_state ^= u->rand_state << 17;
	r = u->rand_state % 500;
	return ms * (750 + r) * 1000;
}

static void schedule_retry(struct hfm_upstream *u, struct hfm_up_xfer *x, const char *why)
{
	x->due_ns = hfm_mono_ns() + backoff_ns(u, x);
	hfm_log(u->log, u->log_cls, HFM_LOG_INFO, "upstream %s %s: %s, attempt %d of %d again",
		method_name(x->method), x->log_url, why, x->attempt + 1, x->max_attempts);
	atomic_fetch_add(&u->n_retried, 1);
	hfm_metrics_inc(HFM_M_UP_RETRIES + x->kind);
	x->next = u->waiting;
	u->waiting = x;
}

static void completed(struct hfm_upstream *u, struct hfm_up_xfer *x, CURLcode cc)
{
	char why[64];
	int rc = 0;

	list_remove(&u->active, x);
	curl_multi_remove_handle(u->multi, x->easy);
	if (atomic_load(&x->cancelled)) {
		finish(u, x, hfm_error_set(HFM_ERROR, "cancelled"));
		return;
	}
	if (x->stopped) {
		finish(u, x, 0);
		return;
	}
	if (x->cb_rc) {
		finish(u, x, x->cb_rc);
		return;
	}
	if (cc == CURLE_OK) {
		mark_reachable(u, x->log_url);
		if (x->discard || want_retry_status(x)) {
			snprintf(why, sizeof(why), "status %ld", response_status(x));
			schedule_retry(u, x, why);
			return;
		}
		if (!x->delivered) {
			rc = deliver_headers(x);
			if (rc == HFM_UP_STOP || rc > 0)
				rc = 0;
		}
		finish(u, x, rc);
		return;
	}
	long hops = 0;
	curl_easy_getinfo(x->easy, CURLINFO_REDIRECT_COUNT, &hops);
	if (curl_unreachable(cc) && hops == 0 && !x->delivered) {
		/* no retry: the hold-down decides when the upstream is asked again */
		mark_unreachable(u, x->log_url, curl_easy_strerror(cc));
	} else if (!x->delivered && x->attempt < x->max_attempts && curl_retryable(cc)) {
		schedule_retry(u, x, curl_easy_strerror(cc));
		return;
	}
	rc = hfm_error_set(curl_to_hfm(cc), "%s %s: %s", method_name(x->method), x->log_url,
			   x->errbuf[0] ? x->errbuf : curl_easy_strerror(cc));
	finish(u, x, rc);
}

static void run_cmd(struct hfm_upstream *u, struct cmd *c)
{
	struct hfm_up_xfer *x = c->x;

	switch (c->kind) {
	case CMD_START:
		if (u->stopping)
			finish(u, x, hfm_error_set(HFM_ERROR, "shutting down"));
		else
			start(u, x);
		break;
	case CMD_RESUME:
		if (!x->done && x->easy)
			curl_easy_pause(x->easy, CURLPAUSE_CONT);
		break;
	case CMD_CANCEL:
		if (x->done || !x->easy)
			break;
		/* in the multi handle, or waiting for a retry */
		if (x->attempt && !x->due_ns) {
			list_remove(&u->active, x);
			curl_multi_remove_handle(u->multi, x->easy);
		} else {
			list_remove(&u->waiting, x);
		}
		finish(u, x, hfm_error_set(HFM_ERROR, "cancelled"));
		break;
	}
	xfer_unref(x);
	free(c);
}

/* Run queued commands; returns 1 when asked to stop. */
static int run_cmds(struct hfm_upstream *u)
{
	struct cmd *c;
	int stopping;

	pthread_mutex_lock(&u->lock);
	c = u->cmd_head;
	u->cmd_head = u->cmd_tail = NULL;
	stopping = u->stopping;
	pthread_mutex_unlock(&u->lock);
	while (c) {
		struct cmd *next = c->next;
		run_cmd(u, c);
		c = next;
	}
	return stopping;
}

/* Re-attach transfers whose backoff expired; returns ms until the next one. */
static int run_retries(struct hfm_upstream *u)
{
	uint64_t now = hfm_mono_ns(), next = UINT64_MAX;
	struct hfm_up_xfer **pp = &u->waiting;

	while (*pp) {
		struct hfm_up_xfer *x = *pp;
		if (x->due_ns <= now) {
			*pp = x->next;
			x->next = NULL;
			x->due_ns = 0;
			attach(u, x);
			continue;
		}
		if (x->due_ns < next)
			next = x->due_ns;
		pp = &x->next;
	}
	if (next == UINT64_MAX)
		return 1000;
	return (int)((next - now) / 1000000 + 1);
}

static void *loop(void *arg)
{
	struct hfm_upstream *u = arg;
	int running = 0, timeout;

	pthread_setname_np(pthread_self(), "hfm-upstream");   /* per-thread CPU in top, perf, bench */
	for (;;) {
		CURLMsg *m;
		int left;

		if (run_cmds(u))
			break;
		curl_multi_perform(u->multi, &running);
		while ((m = curl_multi_info_read(u->multi, &left))) {
			struct hfm_up_xfer *x = NULL;
			if (m->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
			completed(u, x, m->data.result);
		}
		/* after completions, which may have scheduled retries */
		timeout = run_retries(u);
		curl_multi_poll(u->multi, NULL, 0, timeout, NULL);
	}
	/* shutting down: everything still running ends now */
	while (u->active) {
		struct hfm_up_xfer *x = u->active;
		u->active = x->next;
		curl_multi_remove_handle(u->multi, x->easy);
		finish(u, x, hfm_error_set(HFM_ERROR, "shutting down"));
	}
	while (u->waiting) {
		struct hfm_up_xfer *x = u->waiting;
		u->waiting = x->next;
		finish(u, x, hfm_error_set(HFM_ERROR, "shutting down"));
	}
	run_cmds(u);
	return NULL;
}

/* ---- the engine --------------------------------------------------------- */

/* Free what hfm_up_new allocated; the thread is not running. */
static void up_dispose(struct hfm_upstream *u)
{
	if (u->multi)
		curl_multi_cleanup(u->multi);
	curl_slist_free_all(u->resolve);
	free(u->user_agent);
	free(u->ca_file);
	pthread_mutex_destroy(&u->lock);
	free(u);
}

int hfm_up_new(struct hfm_upstream **out, const struct hfm_up_opts *o)
{
	static const struct hfm_up_opts none;
	struct hfm_upstream *u;
	const char *const *r;
	int rc;

	if (!o)
		o = &none;
	pthread_once(&curl_once, curl_init_once);
	u = hfm_calloc(1, sizeof(*u));
	pthread_mutex_init(&u->lock, NULL);
	atomic_init(&u->offline, o->offline ? 1 : 0);
	u->connect_timeout_ms = o->connect_timeout_ms > 0 ? o->connect_timeout_ms : 10000;
	u->low_speed_limit = o->low_speed_limit > 0 ? o->low_speed_limit : 1024;
	u->low_speed_time = o->low_speed_time > 0 ? o->low_speed_time : 30;
	u->max_redirects = o->max_redirects > 0 ? o->max_redirects : 5;
	u->hold_down_ns = (uint64_t)(o->hold_down_ms ? o->hold_down_ms : HOLD_DOWN_MS) * 1000000ull;
	u->user_agent = o->user_agent ? hfm_strdup(o->user_agent)
				      : hfm_strdup("hfmirror/" HFM_VERSION);
	u->ca_file = o->ca_file ? hfm_strdup(o->ca_file) : NULL;
	u->log = o->log;
	u->log_cls = o->log_cls;
	u->rand_state = hfm_mono_ns() | 1;
	for (r = o->resolve; r && *r; r++)
		if ((rc = append_header(&u->resolve, *r)))
			goto fail;
	u->multi = curl_multi_init();
	if (!u->multi) {
		rc = hfm_error_set(HFM_ERROR, "curl_multi_init failed");
		goto fail;
	}
	curl_multi_setopt(u->multi, CURLMOPT_MAX_HOST_CONNECTIONS,
			  o->max_host_connections > 0 ? o->max_host_connections : 8L);
	curl_multi_setopt(u->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
			  o->max_total_connections > 0 ? o->max_total_connections : 64L);
	curl_multi_setopt(u->multi, CURLMOPT_MAXCONNECTS,
			  o->max_total_connections > 0 ? o->max_total_connections : 64L);
	if ((errno = pthread_create(&u->thread, NULL, loop, u))) {
		rc = hfm_error_set(HFM_ERROR, "upstream thread: %s", strerror(errno));
		goto fail;
	}
	*out = u;
	return 0;
fail:
	up_dispose(u);
	return rc;
}

void hfm_up_free(struct hfm_upstream *u)
{
	if (!u)
		return;
	pthread_mutex_lock(&u->lock);
	u->stopping = 1;
	pthread_mutex_unlock(&u->lock);
	curl_multi_wakeup(u->multi);
	pthread_join(u->thread, NULL);
	up_dispose(u);
}

void hfm_up_set_offline(struct hfm_upstream *u, int offline)
{
	atomic_store(&u->offline, offline ? 1 : 0);
}

int hfm_up_is_offline(struct hfm_upstream *u)
{
	return atomic_load(&u->offline);
}

void hfm_up_stats(struct hfm_up_stats *out, struct hfm_upstream *u)
{
	out->started = atomic_load(&u->n_started);
	out->retried = atomic_load(&u->n_retried);
	out->sockets = atomic_load(&u->n_sockets);
	out->bytes = atomic_load(&u->n_bytes);
	out->running = atomic_load(&u->n_running);
	out->unreachable = atomic_load(&u->n_unreachable);
}

/* ---- blocking wrapper --------------------------------------------------- */

struct sync_state {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int done, rc;
	struct hfm_up_result *out;
};

static int sync_headers(void *cls, const struct hfm_up_response *r)
{
	struct sync_state *s = cls;
	struct hfm_up_result *out = s->out;
	size_t i, bytes = 0;
	char *p;

	for (i = 0; i < r->nheaders; i++)
		bytes += strlen(r->headers[i].name) + strlen(r->headers[i].value) + 2;
	/* one allocation: the array, then the strings */
	out->headers = hfm_malloc(r->nheaders * sizeof(*out->headers) + bytes + 1);
	p = (char *)(out->headers + r->nheaders);
	for (i = 0; i < r->nheaders; i++) {
		size_t nl = strlen(r->headers[i].name) + 1, vl = strlen(r->headers[i].value) + 1;
		memcpy(p, r->headers[i].name, nl);
		out->headers[i].name = p;
		p += nl;
		memcpy(p, r->headers[i].value, vl);
		out->headers[i].value = p;
		p += vl;
	}
	out->nheaders = r->nheaders;
	out->status = r->status;
	out->content_length = r->content_length;
	out->redirect_url = r->redirect_url ? hfm_strdup(r->redirect_url) : NULL;
	return HFM_UP_CONTINUE;
}

static int sync_data(void *cls, const void *data, size_t n)
{
	struct sync_state *s = cls;

	if (hfm_buf_put(&s->out->body, data, n))
		return hfm_error_set(HFM_ETOOBIG, "upstream body larger than %zu bytes",
				     s->out->body.max);
	return HFM_UP_CONTINUE;
}

static void sync_done(void *cls, int rc)
{
	struct sync_state *s = cls;

	pthread_mutex_lock(&s->lock);
	s->rc = rc;
	s->done = 1;
	pthread_cond_signal(&s->cv);
	pthread_mutex_unlock(&s->lock);
}

int hfm_up_fetch(struct hfm_up_result *out, struct hfm_upstream *u,
		 const struct hfm_up_request *req, size_t body_max)
{
	struct hfm_up_request r = *req;
	struct sync_state s;
	int rc;

	memset(out, 0, sizeof(*out));
	out->content_length = -1;
	hfm_buf_init(&out->body, body_max);
	if (pthread_equal(pthread_self(), u->thread))
		return hfm_error_set(HFM_EINVAL, "hfm_up_fetch on the upstream thread");
	memset(&s, 0, sizeof(s));
	pthread_mutex_init(&s.lock, NULL);
	pthread_cond_init(&s.cv, NULL);
	s.out = out;
	r.on_headers = sync_headers;
	r.on_data = sync_data;
	r.on_done = sync_done;
	r.cls = &s;
	rc = hfm_up_start(NULL, u, &r);
	if (rc == 0) {
		pthread_mutex_lock(&s.lock);
		while (!s.done)
			pthread_cond_wait(&s.cv, &s.lock);
		pthread_mutex_unlock(&s.lock);
		rc = s.rc;
	}
	pthread_cond_destroy(&s.cv);
	pthread_mutex_destroy(&s.lock);
	return rc;
}

void hfm_up_result_dispose(struct hfm_up_result *r)
{
	free(r->headers);
	free(r->redirect_url);
	hfm_buf_dispose(&r->body);
	r->headers = NULL;
	r->redirect_url = NULL;
	r->nheaders = 0;
}
