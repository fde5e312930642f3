/* test_upstream.c - the libcurl multi loop against a local canned HTTP server. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hfm/upstream.h"
#include "stub_http.h"
#include "logcap.h"
#include "tap.h"

/* ---- a transfer's observations ------------------------------------------ */

struct obs {
	pthread_mutex_t lock;
	pthread_cond_t cv;
	int done, rc, nheaders_calls, ndata_calls;
	long status;
	int64_t clen;
	char xrepo[64], linked_size[32], content_range[64], redirect[256];
	uint64_t bytes;
	int content_ok;                  /* every byte matched stub_byte(offset) */
	uint64_t expect_off;             /* content offset of the first body byte */
	int cb_on_main;
	/* behaviour */
	int pause_after;                 /* pause once after this many data calls */
	int paused;
	int headers_rc;                  /* what on_headers returns */
	int data_rc;                     /* what on_data returns when nonzero */
	struct hfm_up_xfer *x;
};

static pthread_t main_thread;

static void obs_init(struct obs *o)
{
	memset(o, 0, sizeof(*o));
	pthread_mutex_init(&o->lock, NULL);
	pthread_cond_init(&o->cv, NULL);
	o->content_ok = 1;
	o->clen = -2;
}

static void obs_dispose(struct obs *o)
{
	if (o->x)
		hfm_up_release(o->x);
	pthread_cond_destroy(&o->cv);
	pthread_mutex_destroy(&o->lock);
}

static void copy_hdr(char *dst, size_t cap, const struct hfm_up_response *r, const char *name)
{
	const char *v = hfm_up_header(r, name);
	snprintf(dst, cap, "%s", v ? v : "");
}

static int cb_headers(void *cls, const struct hfm_up_response *r)
{
	struct obs *o = cls;

	pthread_mutex_lock(&o->lock);
	o->nheaders_calls++;
	o->status = r->status;
	o->clen = r->content_length;
	copy_hdr(o->xrepo, sizeof(o->xrepo), r, "x-repo-commit");
	copy_hdr(o->linked_size, sizeof(o->linked_size), r, "X-Linked-Size");
	copy_hdr(o->content_range, sizeof(o->content_range), r, "Content-Range");
	snprintf(o->redirect, sizeof(o->redirect), "%s", r->redirect_url ? r->redirect_url : "");
	if (pthread_equal(pthread_self(), main_thread))
		o->cb_on_main = 1;
	pthread_mutex_unlock(&o->lock);
	return o->headers_rc;
}

static int cb_data(void *cls, const void *data, size_t n)
{
	struct obs *o = cls;
	const uint8_t *p = data;
	size_t i;

	pthread_mutex_lock(&o->lock);
	if (o->pause_after && o->ndata_calls == o->pause_after && !o->paused) {
		o->paused = 1;
		pthread_cond_broadcast(&o->cv);
		pthread_mutex_unlock(&o->lock);
		return HFM_UP_PAUSE;
	}
	o->ndata_calls++;
	for (i = 0; i < n; i++)
		if (p[i] != stub_byte(o->expect_off + o->bytes + i))
			o->content_ok = 0;
	o->bytes += n;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->lock);
	return o->data_rc;
}

static void cb_done(void *cls, int rc)
{
	struct obs *o = cls;

	pthread_mutex_lock(&o->lock);
	o->rc = rc;
	o->done++;
	pthread_cond_broadcast(&o->cv);
	pthread_mutex_unlock(&o->lock);
}

static void wait_done(struct obs *o)
{
	pthread_mutex_lock(&o->lock);
	while (!o->done)
		pthread_cond_wait(&o->cv, &o->lock);
	pthread_mutex_unlock(&o->lock);
}

static struct hfm_up_request req_for(struct obs *o, enum hfm_up_method m, const char *url)
{
	struct hfm_up_request r;

	memset(&r, 0, sizeof(r));
	r.method = m;
	r.url = url;
	r.on_headers = cb_headers;
	r.on_data = cb_data;
	r.on_done = cb_done;
	r.cls = o;
	return r;
}

static int run(struct hfm_upstream *u, struct obs *o, const struct hfm_up_request *r)
{
	int rc = hfm_up_start(&o->x, u, r);

	if (rc == 0)
		wait_done(o);
	return rc;
}

/* ---- tests -------------------------------------------------------------- */

static char A[64], B[64];            /* "http://hub.test:PORT", "http://cdn.test:PORT" */
static int portA, portB;

static char *url(const char *base, const char *path)
{
	static char bufs[8][512];
	static int i;
	char *b = bufs[i++ % 8];

	snprintf(b, 512, "%s%s", base, path);
	return b;
}

static void test_basic(struct hfm_upstream *u)
{
	struct obs o;
	struct hfm_up_request r;

	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, url(A, "/bytes/100000"));
	TAP_IS_INT(run(u, &o, &r), 0, "GET starts");
	TAP_IS_INT(o.rc, 0, "GET done ok");
	TAP_IS_INT(o.done, 1, "on_done once");
	TAP_IS_INT(o.nheaders_calls, 1, "on_headers once");
	TAP_IS_INT(o.status, 200, "status 200");
	TAP_IS_INT(o.clen, 100000, "content length");
	TAP_IS_STR(o.xrepo, "0000000000000000000000000000000000000007", "headers visible");
	TAP_IS_INT(o.bytes, 100000, "all bytes");
	TAP_OK(o.content_ok, "bytes right");
	TAP_OK(!o.cb_on_main, "callbacks on the upstream thread");
	obs_dispose(&o);

	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, url(A, "/bytes/100000"));
	r.has_range = 1;
	r.range_start = 1000;
	r.range_len = 500;
	o.expect_off = 1000;
	run(u, &o, &r);
	TAP_IS_INT(o.status, 206, "range: 206");
	TAP_IS_STR(o.content_range, "bytes 1000-1499/100000", "range: Content-Range");
	TAP_OK(o.bytes == 500 && o.content_ok, "range: the right 500 bytes");
	obs_dispose(&o);

	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, url(A, "/bytes/100000"));
	r.has_range = 1;
	r.range_start = 99990;
	o.expect_off = 99990;
	run(u, &o, &r);
	TAP_OK(o.status == 206 && o.bytes == 10 && o.content_ok, "open range: the last 10 bytes");
	obs_dispose(&o);

	obs_init(&o);
	r = req_for(&o, HFM_UP_HEAD, url(A, "/bytes/5000"));
	run(u, &o, &r);
	TAP_OK(o.rc == 0 && o.status == 200 && o.clen == 5000 && o.bytes == 0 &&
	       o.nheaders_calls == 1, "HEAD: headers, no body");
	obs_dispose(&o);

	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, url(A, "/nope"));
	run(u, &o, &r);
	TAP_OK(o.rc == 0 && o.status == 404 && o.bytes == 9, "404 is a response, not an error");
	obs_dispose(&o);
}

static void test_redirects(struct hfm_upstream *u, struct stub *sa, struct stub *sb)
{
	struct stub_req q;
	struct obs o;
	struct hfm_up_request r;
	char path[128], want[128];
	int na = stub_requests(sa), nb = stub_requests(sb);

	/* GET, follow: the Hub's 302 to its CDN on another host */
	obs_init(&o);
	snprintf(path, sizeof(path), "/redirect/%d/bytes/3000", portB);
	r = req_for(&o, HFM_UP_GET, url(A, path));
	r.follow_redirects = 1;
	r.authorization = "Bearer hf_secret_token";
	r.has_range = 1;
	r.range_start = 100;
	r.range_len = 50;
	o.expect_off = 100;
	run(u, &o, &r);
	TAP_IS_INT(o.rc, 0, "follow: done ok");
	TAP_IS_INT(o.status, 206, "follow: final status from the CDN");
	TAP_OK(o.bytes == 50 && o.content_ok, "follow: ranged bytes from the CDN");
	TAP_IS_STR(o.redirect, "", "follow: no redirect_url on the final response");
	stub_request(sa, na, &q);
	TAP_IS_STR(q.auth, "Bearer hf_secret_token", "follow: origin got the token");
	TAP_IS_STR(q.range, "bytes=100-149", "follow: origin got the range");
	TAP_IS_INT(stub_requests(sb), nb + 1, "follow: one request to the CDN");
	stub_request(sb, nb, &q);
	TAP_IS_STR(q.auth, "", "follow: token NOT forwarded to another host");
	TAP_IS_STR(q.range, "bytes=100-149", "follow: range forwarded to the CDN");
	obs_dispose(&o);

	/* a same-host redirect keeps the token (as huggingface_hub does) */
	na = stub_requests(sa);
	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, url(A, "/relredirect/bytes/10"));
	r.follow_redirects = 1;
	r.authorization = "Bearer hf_secret_token";
	run(u, &o, &r);
	stub_request(sa, na + 1, &q);
	TAP_OK(o.status == 200 && o.bytes == 10, "relative redirect followed");
	TAP_IS_STR(q.path, "/bytes/10", "relative redirect: second request on the same host");
	TAP_IS_STR(q.auth, "Bearer hf_secret_token", "relative redirect: token kept");
	obs_dispose(&o);

	/* HEAD without following: the 3xx and its X-Linked-* are the answer */
	nb = stub_requests(sb);
	obs_init(&o);
	snprintf(path, sizeof(path), "/redirect/%d/bytes/10", portB);
	r = req_for(&o, HFM_UP_HEAD, url(A, path));
	run(u, &o, &r);
	snprintf(want, sizeof(want), "http://cdn.test:%d/bytes/10", portB);
	TAP_IS_INT(o.status, 302, "no-follow: 302 is the response");
	TAP_IS_STR(o.linked_size, "1234", "no-follow: X-Linked-Size readable");
	TAP_IS_STR(o.xrepo, "0000000000000000000000000000000000000007", "no-follow: X-Repo-Commit");
	TAP_IS_STR(o.redirect, want, "no-follow: redirect_url");
	TAP_IS_INT(stub_requests(sb), nb, "no-follow: CDN not contacted");
	obs_dispose(&o);

	/* GET without following: the redirect body is not mistaken for content */
	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, url(A, path));
	o.data_rc = 0;
	run(u, &o, &r);
	TAP_OK(o.status == 302 && o.rc == 0 && o.bytes == 8, "no-follow GET: 302 with its own body");
	obs_dispose(&o);
}

static void test_keepalive(struct hfm_upstream *u)
{
	struct hfm_up_stats s0, s1;
	int i, ok = 1;

	hfm_up_stats(&s0, u);
	for (i = 0; i < 5; i++) {
		struct obs o;
		struct hfm_up_request r;
		obs_init(&o);
		r = req_for(&o, HFM_UP_GET, url(A, "/bytes/1000"));
		run(u, &o, &r);
		ok &= o.rc == 0 && o.bytes == 1000;
		obs_dispose(&o);
	}
	hfm_up_stats(&s1, u);
	TAP_OK(ok, "5 sequential GETs");
	TAP_OK(s1.sockets - s0.sockets <= 1, "keep-alive: at most one new connection (%llu)",
	       (unsigned long long)(s1.sockets - s0.sockets));
}

/* Pause for longer than the low-speed window, alongside a transfer that stalls. */
static void test_flow(struct hfm_upstream *u)
{
	struct obs o, st;
	struct hfm_up_request r;
	uint64_t before;
	uint64_t t0;

	obs_init(&st);
	r = req_for(&st, HFM_UP_GET, url(A, "/stall/100000"));
	t0 = hfm_mono_ns();
	TAP_IS_INT(hfm_up_start(&st.x, u, &r), 0, "stall: started");

	obs_init(&o);
	o.pause_after = 2;
	r = req_for(&o, HFM_UP_GET, url(A, "/bytes/4000000"));
	TAP_IS_INT(hfm_up_start(&o.x, u, &r), 0, "pause: started");
	pthread_mutex_lock(&o.lock);
	while (!o.paused && !o.done)
		pthread_cond_wait(&o.cv, &o.lock);
	before = o.bytes;
	pthread_mutex_unlock(&o.lock);
	usleep(1500 * 1000);
	pthread_mutex_lock(&o.lock);
	TAP_OK(o.paused && o.bytes == before && !o.done, "pause: no data while paused (%llu bytes)",
	       (unsigned long long)o.bytes);
	pthread_mutex_unlock(&o.lock);
	hfm_up_resume(o.x);
	wait_done(&o);
	TAP_IS_INT(o.rc, 0, "pause: a paused transfer outlives the low-speed window");
	TAP_OK(o.bytes == 4000000 && o.content_ok, "pause: every byte once, in order");
	obs_dispose(&o);

	wait_done(&st);
	TAP_IS_INT(st.rc, HFM_ETIMEOUT, "stall: low-speed limit ends it with HFM_ETIMEOUT");
	TAP_OK(hfm_mono_ns() - t0 < 5000000000ull, "stall: within a few seconds");
	TAP_OK(st.nheaders_calls == 1 && st.bytes == 1000, "stall: got what was sent");
	obs_dispose(&st);
}

static void test_cancel_and_errors(struct hfm_upstream *u)
{
	struct obs o;
	struct hfm_up_request r;
	uint64_t t0;

	/* cancel while bytes are arriving */
	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, url(A, "/stall/100000"));
	hfm_up_start(&o.x, u, &r);
	pthread_mutex_lock(&o.lock);
	while (!o.bytes)
		pthread_cond_wait(&o.cv, &o.lock);
	pthread_mutex_unlock(&o.lock);
	t0 = hfm_mono_ns();
	hfm_up_cancel(o.x);
	wait_done(&o);
	TAP_IS_INT(o.rc, HFM_ERROR, "cancel: on_done with HFM_ERROR");
	TAP_OK(hfm_mono_ns() - t0 < 500000000ull, "cancel: promptly");
	hfm_up_cancel(o.x);          /* after done: harmless */
	hfm_up_resume(o.x);
	usleep(20000);
	TAP_IS_INT(o.done, 1, "cancel after done: no second on_done");
	obs_dispose(&o);

	/* dropped connection mid-body */
	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, url(A, "/drop/100000"));
	r.max_attempts = 3;
	run(u, &o, &r);
	TAP_IS_INT(o.rc, HFM_EUPSTREAM, "drop: HFM_EUPSTREAM");
	TAP_OK(o.bytes == 50000 && o.nheaders_calls == 1, "drop: half delivered, not retried");
	obs_dispose(&o);

	/* on_headers says stop */
	obs_init(&o);
	o.headers_rc = HFM_UP_STOP;
	r = req_for(&o, HFM_UP_GET, url(A, "/bytes/1000000"));
	run(u, &o, &r);
	TAP_OK(o.rc == 0 && o.bytes == 0 && o.status == 200, "on_headers STOP: done ok, no body");
	obs_dispose(&o);

	/* on_data aborts */
	obs_init(&o);
	o.data_rc = HFM_EIO;
	r = req_for(&o, HFM_UP_GET, url(A, "/bytes/1000000"));
	run(u, &o, &r);
	TAP_OK(o.rc == HFM_EIO && o.ndata_calls == 1, "on_data error: on_done gets its code");
	obs_dispose(&o);

	/* bad requests fail synchronously, no callback */
	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, "ftp://x/y");
	TAP_IS_INT(hfm_up_start(&o.x, u, &r), HFM_EINVAL, "non-http URL refused");
	r = req_for(&o, HFM_UP_GET, url(A, "/bytes/1"));
	r.authorization = "Bearer x\r\nX-Evil: 1";
	TAP_IS_INT(hfm_up_start(&o.x, u, &r), HFM_EINVAL, "header injection refused");
	TAP_OK(o.x == NULL && o.done == 0, "no handle, no callback");
	obs_dispose(&o);
}

static void test_retries(struct hfm_upstream *u, struct stub *sa)
{
	struct hfm_up_stats s0, s1;
	struct obs o;
	struct hfm_up_request r;
	int n0;

	hfm_up_stats(&s0, u);
	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, url(A, "/flaky/2/k1"));
	r.max_attempts = 3;
	r.retry_base_ms = 20;
	run(u, &o, &r);
	hfm_up_stats(&s1, u);
	TAP_OK(o.rc == 0 && o.status == 200 && o.bytes == 16, "retry: 503, 503, then 200");
	TAP_IS_INT(o.nheaders_calls, 1, "retry: consumer sees only the final answer");
	TAP_IS_INT(s1.retried - s0.retried, 2, "retry: two retries counted");
	obs_dispose(&o);

	n0 = stub_requests(sa);
	obs_init(&o);
	r = req_for(&o, HFM_UP_HEAD, url(A, "/status/503"));
	r.max_attempts = 2;
	r.retry_base_ms = 10;
	run(u, &o, &r);
	TAP_OK(o.rc == 0 && o.status == 503, "retry: exhausted, last answer delivered");
	TAP_IS_INT(stub_requests(sa) - n0, 2, "retry: bounded attempts");
	obs_dispose(&o);

	n0 = stub_requests(sa);
	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, url(A, "/status/500"));
	run(u, &o, &r);
	TAP_OK(o.rc == 0 && o.status == 500 && stub_requests(sa) - n0 == 1,
	       "no retry unless asked");
	obs_dispose(&o);
}

/* The metrics count by the transfer's kind: requests, bytes, retries, errors by why. */
static void test_metrics(struct hfm_upstream *u)
{
	struct obs o;
	struct hfm_up_request r;
	int64_t req0 = hfm_metrics_get(HFM_M_UP_REQUESTS + HFM_UPK_API);
	int64_t bytes0 = hfm_metrics_get(HFM_M_UP_BYTES + HFM_UPK_API);
	int64_t retry0 = hfm_metrics_get(HFM_M_UP_RETRIES + HFM_UPK_API);
	int64_t st0 = hfm_metrics_get(hfm_m_up_error(HFM_UPK_API, HFM_UPE_STATUS));
	int64_t tr0 = hfm_metrics_get(hfm_m_up_error(HFM_UPK_RELAY, HFM_UPE_TRANSFER));
	int64_t blob0 = hfm_metrics_get(HFM_M_UP_REQUESTS + HFM_UPK_BLOB);

	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, url(A, "/bytes/1234"));
	r.kind = HFM_UPK_API;
	run(u, &o, &r);
	obs_dispose(&o);
	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, url(A, "/status/503"));
	r.kind = HFM_UPK_API;
	r.max_attempts = 2;
	r.retry_base_ms = 10;
	run(u, &o, &r);
	obs_dispose(&o);
	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, url(A, "/drop/100000"));
	r.kind = HFM_UPK_RELAY;
	run(u, &o, &r);
	TAP_OK(o.rc == HFM_EUPSTREAM, "metrics: a dropped body fails");
	obs_dispose(&o);
	TAP_IS_INT(hfm_metrics_get(HFM_M_UP_REQUESTS + HFM_UPK_API) - req0, 2,
		   "metrics: transfers counted by kind, a retried one once");
	TAP_IS_INT(hfm_metrics_get(HFM_M_UP_REQUESTS + HFM_UPK_BLOB) - blob0, 0,
		   "metrics: other kinds untouched");
	TAP_OK(hfm_metrics_get(HFM_M_UP_BYTES + HFM_UPK_API) - bytes0 >= 1234,
	       "metrics: body bytes by kind");
	TAP_IS_INT(hfm_metrics_get(HFM_M_UP_RETRIES + HFM_UPK_API) - retry0, 1, "metrics: the retry");
	TAP_IS_INT(hfm_metrics_get(hfm_m_up_error(HFM_UPK_API, HFM_UPE_STATUS)) - st0, 1,
		   "metrics: a 503 after the retries is an error by status");
	TAP_IS_INT(hfm_metrics_get(hfm_m_up_error(HFM_UPK_RELAY, HFM_UPE_TRANSFER)) - tr0, 1,
		   "metrics: a cut body is an error of the transfer");
	TAP_IS_INT(hfm_metrics_get(HFM_M_UP_IN_FLIGHT + HFM_UPK_API) +
		   hfm_metrics_get(HFM_M_UP_IN_FLIGHT + HFM_UPK_RELAY), 0,
		   "metrics: nothing in flight once done");
}

/* A loopback port that was free a moment ago (nobody listens on it). */
static int free_port(void)
{
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in a;
	socklen_t al = sizeof(a);

	memset(&a, 0, sizeof(a));
	a.sin_family = AF_INET;
	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	bind(fd, (struct sockaddr *)&a, sizeof(a));
	getsockname(fd, (struct sockaddr *)&a, &al);
	close(fd);
	return ntohs(a.sin_port);
}

/* Count the log lines that contain `s`. */
static int logcap_count(const char *s)
{
	int n = 0;

	pthread_mutex_lock(&logcap_lock);
	for (const char *p = logcap_text; (p = strstr(p, s)); p += strlen(s))
		n++;
	pthread_mutex_unlock(&logcap_lock);
	return n;
}

/*
 * Reachability: a refused connect holds the upstream down (no retry, no
 * transfer starts, one log line), a failure behind a redirect does not,
 * and after the hold-down any answer makes it reachable again.
 */
static void test_unreachable(const char *const *resolve, struct stub *sa)
{
	struct hfm_up_opts opts;
	struct hfm_up_stats s0, s1;
	struct hfm_upstream *u;
	struct hfm_up_request r;
	struct obs o;
	char dead[64], path[64];
	int n0, i;

	memset(&opts, 0, sizeof(opts));
	opts.resolve = resolve;
	opts.connect_timeout_ms = 2000;
	opts.hold_down_ms = 300;
	opts.log = logcap;
	hfm_up_new(&u, &opts);
	snprintf(dead, sizeof(dead), "http://127.0.0.1:%d/x", free_port());
	TAP_OK(!hfm_up_unreachable(u), "reachability: reachable at first");

	/* a redirect to a name nobody resolves: the CDN's trouble, not the upstream's */
	snprintf(path, sizeof(path), "/redirect/%d/bytes/10", portB + 1);
	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, url(A, path));
	r.follow_redirects = 1;
	run(u, &o, &r);
	TAP_OK(o.rc != 0 && !hfm_up_unreachable(u), "reachability: a failed redirect target "
	       "does not make the upstream unreachable");
	obs_dispose(&o);

	hfm_up_stats(&s0, u);
	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, dead);
	r.max_attempts = 3;
	r.retry_base_ms = 10;
	run(u, &o, &r);
	hfm_up_stats(&s1, u);
	TAP_IS_INT(o.rc, HFM_ETIMEOUT, "refused: HFM_ETIMEOUT (upstream unreachable)");
	TAP_IS_INT(o.nheaders_calls, 0, "refused: no headers");
	TAP_IS_INT(s1.retried - s0.retried, 0, "refused: not retried");
	TAP_OK(hfm_up_unreachable(u), "refused: the upstream is unreachable now");
	TAP_IS_INT(s1.unreachable - s0.unreachable, 1, "refused: counted once");
	obs_dispose(&o);

	/* held down: nothing starts, not even to a server that is up */
	n0 = stub_connections(sa);
	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, url(A, "/bytes/10"));
	TAP_IS_INT(hfm_up_start(&o.x, u, &r), HFM_EOFFLINE, "held down: start fails at once");
	TAP_OK(o.x == NULL && o.done == 0, "held down: no handle, no callback");
	r = req_for(&o, HFM_UP_GET, dead);
	TAP_IS_INT(hfm_up_start(&o.x, u, &r), HFM_EOFFLINE, "held down: again");
	obs_dispose(&o);
	TAP_IS_INT(stub_connections(sa) - n0, 0, "held down: no connection opened");
	TAP_IS_INT(logcap_count("unreachable (Couldn't connect to server)"), 1,
		   "held down: one log line for the change, not one per request");

	/* after the hold-down the next transfer probes; an answer ends it */
	for (i = 0; hfm_up_unreachable(u) && i < 200; i++)
		usleep(10000);
	TAP_OK(!hfm_up_unreachable(u), "the hold-down ends");
	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, url(A, "/status/404"));
	run(u, &o, &r);
	TAP_OK(o.rc == 0 && o.status == 404, "probe: any answer goes through");
	TAP_OK(logcap_has("reachable again"), "probe: the change is logged");
	obs_dispose(&o);
	hfm_up_free(u);
}

static void test_offline(struct hfm_upstream *u, struct stub *sa)
{
	struct hfm_up_stats s0, s1;
	struct hfm_up_result res;
	struct obs o;
	struct hfm_up_request r;
	int n0 = stub_requests(sa), c0 = stub_connections(sa);

	hfm_up_stats(&s0, u);
	hfm_up_set_offline(u, 1);
	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, url(A, "/bytes/10"));
	TAP_IS_INT(hfm_up_start(&o.x, u, &r), HFM_EOFFLINE, "offline: start fails");
	TAP_IS_INT(hfm_up_fetch(&res, u, &r, 100), HFM_EOFFLINE, "offline: fetch fails");
	hfm_up_result_dispose(&res);
	usleep(50000);
	hfm_up_stats(&s1, u);
	TAP_OK(o.done == 0 && o.x == NULL, "offline: no callback, no handle");
	TAP_OK(s1.sockets == s0.sockets && s1.started == s0.started, "offline: no socket opened");
	TAP_OK(stub_requests(sa) == n0 && stub_connections(sa) == c0, "offline: server saw nothing");
	obs_dispose(&o);
	hfm_up_set_offline(u, 0);
	TAP_OK(!hfm_up_is_offline(u), "online again");
}

static void test_fetch(struct hfm_upstream *u)
{
	struct hfm_up_result res;
	struct hfm_up_request r;
	const char *v;

	memset(&r, 0, sizeof(r));
	r.method = HFM_UP_GET;
	r.url = url(A, "/bytes/1000");
	TAP_IS_INT(hfm_up_fetch(&res, u, &r, 4096), 0, "fetch: ok");
	v = hfm_up_header_find(res.headers, res.nheaders, "etag");
	TAP_OK(res.status == 200 && res.body.len == 1000 && (uint8_t)res.body.ptr[999] == stub_byte(999),
	       "fetch: status and body");
	TAP_IS_STR(v, "\"e1000\"", "fetch: headers kept");
	hfm_up_result_dispose(&res);
	TAP_IS_INT(hfm_up_fetch(&res, u, &r, 100), HFM_ETOOBIG, "fetch: body cap enforced");
	hfm_up_result_dispose(&res);
}

static void test_proxy_env(const char *const *resolve)
{
	struct stub *px = stub_start(), *direct;
	struct hfm_up_opts opts;
	struct hfm_upstream *u;
	struct hfm_up_result res;
	struct hfm_up_request r;
	struct stub_req q;
	char env[64];

	memset(&opts, 0, sizeof(opts));
	opts.resolve = resolve;
	snprintf(env, sizeof(env), "http://127.0.0.1:%d", stub_port(px));
	setenv("http_proxy", env, 1);
	hfm_up_new(&u, &opts);
	memset(&r, 0, sizeof(r));
	r.method = HFM_UP_GET;
	r.url = url(A, "/bytes/10");
	r.authorization = "Bearer hf_secret_token";
	hfm_up_fetch(&res, u, &r, 100);
	stub_request(px, 0, &q);
	TAP_OK(res.status == 200 && stub_requests(px) == 1 && q.proxied,
	       "http_proxy from the environment is used");
	hfm_up_result_dispose(&res);

	setenv("NO_PROXY", "hub.test", 1);
	direct = NULL;
	hfm_up_fetch(&res, u, &r, 100);
	TAP_OK(res.status == 200 && stub_requests(px) == 1, "NO_PROXY from the environment is used");
	hfm_up_result_dispose(&res);
	hfm_up_free(u);
	unsetenv("http_proxy");
	unsetenv("NO_PROXY");
	(void)direct;
	stub_stop(px);
}

/* TLS verification is on: a self-signed server fails unless its CA is given. */
static void test_tls(void)
{
	char dir[] = "/tmp/hfm-tls-XXXXXX", cmd[1024], crt[300], key[300], u1[128];
	struct hfm_up_opts opts;
	struct hfm_upstream *u;
	struct hfm_up_result res;
	struct hfm_up_request r;
	int port, rc, i;
	pid_t pid;

	if (system("openssl version >/dev/null 2>&1") != 0 || !mkdtemp(dir)) {
		TAP_OK(1, "# SKIP no openssl binary");
		return;
	}
	snprintf(crt, sizeof(crt), "%s/c.pem", dir);
	snprintf(key, sizeof(key), "%s/k.pem", dir);
	snprintf(cmd, sizeof(cmd),
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
		 "-keyout %s -out %s -days 1 -subj /CN=localhost "
		 "-addext subjectAltName=DNS:localhost >/dev/null 2>&1", key, crt);
	if (system(cmd) != 0) {
		TAP_OK(1, "# SKIP openssl cannot make a certificate");
		return;
	}
	port = free_port();
	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		char p[16];
		snprintf(p, sizeof(p), "%d", port);
		freopen("/dev/null", "w", stdout);
		freopen("/dev/null", "w", stderr);
		execlp("openssl", "openssl", "s_server", "-accept", p, "-cert", crt, "-key", key,
		       "-www", "-quiet", (char *)NULL);
		_exit(127);
	}
	/* wait until it listens */
	for (i = 0; i < 100; i++) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a;
		memset(&a, 0, sizeof(a));
		a.sin_family = AF_INET;
		a.sin_port = htons((uint16_t)port);
		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		rc = connect(fd, (struct sockaddr *)&a, sizeof(a));
		close(fd);
		if (rc == 0)
			break;
		usleep(20000);
	}
	snprintf(u1, sizeof(u1), "https://localhost:%d/", port);
	memset(&r, 0, sizeof(r));
	r.method = HFM_UP_GET;
	r.url = u1;
	memset(&opts, 0, sizeof(opts));
	hfm_up_new(&u, &opts);
	rc = hfm_up_fetch(&res, u, &r, 1 << 16);
	TAP_IS_INT(rc, HFM_EUPSTREAM, "TLS: self-signed certificate refused");
	hfm_up_result_dispose(&res);
	hfm_up_free(u);
	opts.ca_file = crt;
	hfm_up_new(&u, &opts);
	rc = hfm_up_fetch(&res, u, &r, 1 << 16);
	TAP_OK(rc == 0 && res.status == 200, "TLS: accepted with its CA as ca_file (rc %d)", rc);
	hfm_up_result_dispose(&res);
	hfm_up_free(u);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	if (system(cmd) != 0)
		TAP_OK(0, "cleanup");
}

static void test_shutdown(const char *const *resolve)
{
	struct hfm_up_opts opts;
	struct hfm_upstream *u;
	struct obs o;
	struct hfm_up_request r;

	memset(&opts, 0, sizeof(opts));
	opts.resolve = resolve;
	hfm_up_new(&u, &opts);
	obs_init(&o);
	r = req_for(&o, HFM_UP_GET, url(A, "/stall/100000"));
	hfm_up_start(&o.x, u, &r);
	pthread_mutex_lock(&o.lock);
	while (!o.bytes)
		pthread_cond_wait(&o.cv, &o.lock);
	pthread_mutex_unlock(&o.lock);
	hfm_up_free(u);
	TAP_OK(o.done == 1 && o.rc == HFM_ERROR, "free: running transfers end with on_done");
	hfm_up_release(o.x);
	o.x = NULL;
	obs_dispose(&o);
}

int main(void)
{
	static const char *unset[] = { "http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY",
				       "all_proxy", "ALL_PROXY", "no_proxy", "NO_PROXY" };
	struct stub *sa, *sb;
	struct hfm_upstream *u;
	struct hfm_up_opts opts;
	char r1[64], r2[64];
	const char *resolve[3];
	size_t i;

	signal(SIGPIPE, SIG_IGN);
	for (i = 0; i < HFM_ARRAY_SIZE(unset); i++)
		unsetenv(unset[i]);
	main_thread = pthread_self();
	sa = stub_start();
	sb = stub_start();
	portA = stub_port(sa);
	portB = stub_port(sb);
	snprintf(A, sizeof(A), "http://hub.test:%d", portA);
	snprintf(B, sizeof(B), "http://cdn.test:%d", portB);
	snprintf(r1, sizeof(r1), "hub.test:%d:127.0.0.1", portA);
	snprintf(r2, sizeof(r2), "cdn.test:%d:127.0.0.1", portB);
	resolve[0] = r1;
	resolve[1] = r2;
	resolve[2] = NULL;

	memset(&opts, 0, sizeof(opts));
	opts.resolve = resolve;
	opts.low_speed_limit = 1000;
	opts.low_speed_time = 1;
	opts.connect_timeout_ms = 2000;
	opts.log = logcap;
	TAP_IS_INT(hfm_up_new(&u, &opts), 0, "upstream engine starts");

	test_basic(u);
	test_redirects(u, sa, sb);
	test_keepalive(u);
	test_flow(u);
	test_cancel_and_errors(u);
	test_retries(u, sa);
	test_metrics(u);
	test_offline(u, sa);
	test_fetch(u);
	{
		/* a signed CDN query must not reach the log either */
		struct hfm_up_result res;
		struct hfm_up_request r;
		memset(&r, 0, sizeof(r));
		r.method = HFM_UP_GET;
		r.url = url(A, "/status/500?X-Amz-Signature=SIGSECRET");
		r.authorization = "Bearer hf_secret_token";
		hfm_up_fetch(&res, u, &r, 1024);
		hfm_up_result_dispose(&res);
	}
	hfm_up_free(u);
	TAP_OK(logcap_has("/stall/"), "log: failures are logged");
	TAP_OK(!logcap_has("hf_secret_token"), "log: no Authorization value");
	TAP_OK(!logcap_has("SIGSECRET"), "log: no query strings");

	test_unreachable(resolve, sa);
	test_proxy_env(resolve);
	test_shutdown(resolve);
	test_tls();

	stub_stop(sa);
	stub_stop(sb);
	return tap_done();
}
