/*
 * loop.c - bench-loop: request rate and latency over keep-alive connections.
 *
 *   bench-loop [-m GET|HEAD] [-c CONNS] [-t THREADS] [-d SECONDS]
 *              [-s STATUS] [-H 'Name: value']... URL
 *   bench-loop -i HOLD [-m ...] [-c CONNS] [-H ...] URL
 *
 * CONNS connections are spread over THREADS threads; each thread drives its
 * connections with epoll.  A connection has one request in flight at a time
 * (no pipelining, as real HTTP clients do): send, parse the whole response,
 * record the latency, send the next.  After SECONDS it prints one line:
 *
 *   requests=N seconds=D rps=X p50_us=.. p90_us=.. p99_us=.. max_us=.. errors=E reconnects=R body_bytes=B
 *
 * Latency is from the first byte of the request written to the last byte of
 * the response read.  With CONNS > 1 it includes time queued behind the other
 * connections, as wrk's does; use -c 1 for the service time of one request.
 *
 * Why not wrk: it cannot send HEAD correctly (it would wait for a body that
 * never comes), and this client checks every answer: the status (STATUS, or
 * any 2xx), a body of exactly Content-Length bytes (or well-formed chunks),
 * no body after HEAD.  A failed check counts as an error, not a request.
 *
 * -i HOLD is the idle-connection mode: open CONNS connections, do one request
 * on each, print "ready conns=N", then keep them all open and idle for HOLD
 * seconds (or until killed).  The harness reads the server's RSS meanwhile.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define RECV_BUF (256u << 10)

struct opts {
	struct bench_url url;
	const char *method;
	int is_head;
	int conns;
	int threads;
	double seconds;
	int hold;           /* -i: idle mode, seconds to hold */
	int status;         /* 0: any 2xx */
	struct bench_headers headers;
	char *req;
	size_t req_len;
};

struct conn {
	int fd;
	size_t sent;        /* bytes of the current request written */
	uint64_t t_start;
	struct bench_resp resp;
};

struct worker {
	pthread_t tid;
	const struct opts *o;
	pthread_barrier_t *start;
	struct conn *conns;
	int nconns;
	int live;           /* connections still usable */
	int epfd;
	uint64_t deadline;
	struct bench_lat lat;
	uint64_t requests, errors, reconnects, body_bytes;
	char first_error[256];
};

static void usage(void)
{
	fprintf(stderr, "usage: bench-loop [-m GET|HEAD] [-c CONNS] [-t THREADS] "
		"[-d SECONDS] [-s STATUS] [-i HOLD] [-H 'Name: value']... "
		"http://HOST:PORT/PATH\n");
	exit(2);
}

static void note_error(struct worker *w, const char *what, const char *detail)
{
	w->errors++;
	if (!w->first_error[0])
		snprintf(w->first_error, sizeof(w->first_error), "%s%s%s", what,
			 detail ? ": " : "", detail ? detail : "");
}

/* Is a complete response the one we asked for? NULL if so, else why not. */
static const char *check_response(const struct opts *o, const struct bench_resp *r)
{
	static __thread char why[96];

	if (o->status ? r->status != o->status : r->status / 100 != 2) {
		snprintf(why, sizeof(why), "unexpected status %d", r->status);
		return why;
	}
	if (!r->is_head && r->has_length && !r->chunked &&
	    r->body_bytes != r->content_length)
		return "body shorter than Content-Length";
	return NULL;
}

/* ---- the epoll loop ------------------------------------------------------ */

static int conn_open(struct worker *w, struct conn *c)
{
	struct epoll_event ev;

	c->fd = bench_connect(&w->o->url);
	if (c->fd < 0) {
		note_error(w, "connect", strerror(errno));
		return -1;
	}
	fcntl(c->fd, F_SETFL, fcntl(c->fd, F_GETFL) | O_NONBLOCK);
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(w->epfd, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		bench_die("epoll_ctl: %s", strerror(errno));
	c->sent = 0;
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd); /* also removes it from the epoll set */
	c->fd = -1;
}

static void set_want_write(struct worker *w, struct conn *c, int on)
{
	struct epoll_event ev;

	ev.events = EPOLLIN | (on ? EPOLLOUT : 0);
	ev.data.ptr = c;
	epoll_ctl(w->epfd, EPOLL_CTL_MOD, c->fd, &ev);
}

static void conn_send(struct worker *w, struct conn *c);

/* Replace a broken or closed connection and start the next request on it. */
static void conn_reopen(struct worker *w, struct conn *c)
{
	conn_close(c);
	w->reconnects++;
	if (conn_open(w, c) < 0) {
		w->live--; /* give up on this one rather than spin on connect */
		return;
	}
	conn_send(w, c);
}

static void conn_send(struct worker *w, struct conn *c)
{
	const struct opts *o = w->o;

	if (c->sent == 0) {
		bench_resp_reset(&c->resp, o->is_head);
		c->t_start = bench_now_ns();
	}
	while (c->sent < o->req_len) {
		ssize_t n = send(c->fd, o->req + c->sent, o->req_len - c->sent,
				 MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			set_want_write(w, c, 1);
			return;
		}
		if (n <= 0) {
			note_error(w, "send", strerror(errno));
			conn_reopen(w, c);
			return;
		}
		c->sent += (size_t)n;
	}
}

static void on_complete(struct worker *w, struct conn *c)
{
	uint64_t now = bench_now_ns();
	const char *why = check_response(w->o, &c->resp);

	if (why) {
		note_error(w, "response", why);
	} else if (now <= w->deadline) {
		bench_lat_add(&w->lat, now - c->t_start);
		w->requests++;
		w->body_bytes += c->resp.body_bytes;
	}
	c->sent = 0;
	if (!c->resp.keep_alive) {
		conn_reopen(w, c);
		return;
	}
	if (now < w->deadline)
		conn_send(w, c);
}

static void on_readable(struct worker *w, struct conn *c, char *buf)
{
	for (;;) {
		ssize_t n = recv(c->fd, buf, RECV_BUF, 0);
		size_t used = 0;
		int done;

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) {
			note_error(w, "recv", strerror(errno));
			conn_reopen(w, c);
			return;
		}
		if (n == 0)
			done = bench_resp_eof(&c->resp);
		else
			done = bench_resp_feed(&c->resp, buf, (size_t)n, &used);
		if (done < 0) {
			note_error(w, "response", c->resp.error);
			conn_reopen(w, c);
			return;
		}
		if (done && n > 0 && used != (size_t)n) {
			/* Unasked-for bytes: a HEAD answer with a body, say. */
			note_error(w, "response", "bytes after the end of the response");
			conn_reopen(w, c);
			return;
		}
		if (done) {
			if (n == 0)
				c->resp.keep_alive = 0;
			on_complete(w, c);
			return;
		}
	}
}

static void on_writable(struct worker *w, struct conn *c)
{
	set_want_write(w, c, 0);
	conn_send(w, c);
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct epoll_event evs[64];
	char *buf = bench_xmalloc(RECV_BUF);
	int i;

	w->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (w->epfd < 0)
		bench_die("epoll_create1: %s", strerror(errno));
	/* Connect before the clock starts: we measure requests, not handshakes. */
	for (i = 0; i < w->nconns; i++)
		if (conn_open(w, &w->conns[i]) == 0)
			w->live++;
	pthread_barrier_wait(w->start);
	w->deadline = bench_now_ns() + (uint64_t)(w->o->seconds * 1e9);
	for (i = 0; i < w->nconns; i++)
		if (w->conns[i].fd >= 0)
			conn_send(w, &w->conns[i]);
	while (w->live > 0) {
		uint64_t now = bench_now_ns();
		int n, timeout_ms;

		if (now >= w->deadline)
			break;
		timeout_ms = (int)((w->deadline - now) / 1000000) + 1;
		n = epoll_wait(w->epfd, evs, 64, timeout_ms);
		if (n < 0 && errno != EINTR)
			bench_die("epoll_wait: %s", strerror(errno));
		for (i = 0; i < n; i++) {
			struct conn *c = evs[i].data.ptr;
			if (c->fd < 0)
				continue;
			if (evs[i].events & EPOLLOUT)
				on_writable(w, c);
			else
				on_readable(w, c, buf);
		}
	}
	for (i = 0; i < w->nconns; i++)
		conn_close(&w->conns[i]);
	close(w->epfd);
	free(buf);
	return NULL;
}

/* ---- idle mode ----------------------------------------------------------- */

/* One blocking request on fd; 0 if it got a good answer. */
static int one_request(const struct opts *o, int fd, struct bench_resp *r, char *buf)
{
	if (bench_send_all(fd, o->req, o->req_len) < 0)
		return -1;
	bench_resp_reset(r, o->is_head);
	for (;;) {
		ssize_t n = recv(fd, buf, RECV_BUF, 0);
		size_t used;
		int done;

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1; /* closed before a complete answer, or worse */
		done = bench_resp_feed(r, buf, (size_t)n, &used);
		if (done < 0 || (done && used != (size_t)n))
			return -1;
		if (done)
			return check_response(o, r) || !r->keep_alive ? -1 : 0;
	}
}

static int run_idle(const struct opts *o)
{
	struct bench_resp *r = bench_xmalloc(sizeof(*r));
	char *buf = bench_xmalloc(RECV_BUF);
	int *fds = bench_xmalloc((size_t)o->conns * sizeof(int));
	int i;

	for (i = 0; i < o->conns; i++) {
		fds[i] = bench_connect(&o->url);
		if (fds[i] < 0)
			bench_die("connection %d: connect: %s", i, strerror(errno));
		if (one_request(o, fds[i], r, buf) < 0)
			bench_die("connection %d: no good keep-alive answer (%s)", i,
				  r->error ? r->error : "status, length or close");
	}
	printf("ready conns=%d\n", o->conns);
	fflush(stdout);
	sleep((unsigned)o->hold);
	for (i = 0; i < o->conns; i++)
		close(fds[i]);
	free(fds);
	free(buf);
	free(r);
	return 0;
}

/* ---- main ---------------------------------------------------------------- */

static void parse_args(struct opts *o, int argc, char **argv)
{
	int c;

	o->method = "GET";
	o->conns = 1;
	o->threads = 1;
	o->seconds = 5;
	while ((c = getopt(argc, argv, "m:c:t:d:s:i:H:")) != -1) {
		switch (c) {
		case 'm': o->method = optarg; break;
		case 'c': o->conns = atoi(optarg); break;
		case 't': o->threads = atoi(optarg); break;
		case 'd': o->seconds = atof(optarg); break;
		case 's': o->status = atoi(optarg); break;
		case 'i': o->hold = atoi(optarg); break;
		case 'H': bench_headers_add(&o->headers, optarg); break;
		default: usage();
		}
	}
	if (optind != argc - 1 || o->conns < 1 || o->threads < 1 ||
	    o->seconds <= 0 || o->hold < 0)
		usage();
	if (o->threads > o->conns)
		o->threads = o->conns;
	if (strcmp(o->method, "GET") != 0 && strcmp(o->method, "HEAD") != 0)
		bench_die("method must be GET or HEAD");
	o->is_head = strcmp(o->method, "HEAD") == 0;
	if (bench_url_parse(&o->url, argv[optind]) < 0)
		bench_die("bad URL (want http://IPv4:PORT/PATH): %s", argv[optind]);
	o->req = bench_request(o->method, &o->url, &o->headers, &o->req_len);
}

static void report(const struct opts *o, struct worker *w)
{
	struct bench_lat all = { 0 };
	uint64_t requests = 0, errors = 0, reconnects = 0, bytes = 0;
	int i;

	for (i = 0; i < o->threads; i++) {
		bench_lat_merge(&all, &w[i].lat);
		requests += w[i].requests;
		errors += w[i].errors;
		reconnects += w[i].reconnects;
		bytes += w[i].body_bytes;
		if (w[i].first_error[0])
			fprintf(stderr, "bench-loop: thread %d: %llu errors, first: %s\n",
				i, (unsigned long long)w[i].errors, w[i].first_error);
	}
	bench_lat_sort(&all);
	printf("requests=%llu seconds=%.3f rps=%.1f p50_us=%.1f p90_us=%.1f "
	       "p99_us=%.1f max_us=%.1f errors=%llu reconnects=%llu body_bytes=%llu\n",
	       (unsigned long long)requests, o->seconds, (double)requests / o->seconds,
	       bench_lat_pct(&all, 50) / 1e3, bench_lat_pct(&all, 90) / 1e3,
	       bench_lat_pct(&all, 99) / 1e3, bench_lat_pct(&all, 100) / 1e3,
	       (unsigned long long)errors, (unsigned long long)reconnects,
	       (unsigned long long)(requests ? bytes / requests : 0));
	bench_lat_free(&all);
}

int main(int argc, char **argv)
{
	static struct opts o;
	struct worker *w;
	pthread_barrier_t start;
	uint64_t errors = 0;
	int i;

	bench_set_prog(argv[0]);
	parse_args(&o, argc, argv);
	if (o.hold)
		return run_idle(&o);

	w = calloc((size_t)o.threads, sizeof(*w));
	if (!w)
		bench_die("out of memory");
	pthread_barrier_init(&start, NULL, (unsigned)o.threads);
	for (i = 0; i < o.threads; i++) {
		/* Spread connections as evenly as they divide. */
		int n = o.conns / o.threads + (i < o.conns % o.threads);
		int j;

		w[i].o = &o;
		w[i].start = &start;
		w[i].nconns = n;
		w[i].conns = calloc((size_t)n, sizeof(struct conn));
		if (!w[i].conns)
			bench_die("out of memory");
		for (j = 0; j < n; j++)
			w[i].conns[j].fd = -1;
	}
	for (i = 0; i < o.threads; i++)
		if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0)
			bench_die("pthread_create failed");
	for (i = 0; i < o.threads; i++) {
		pthread_join(w[i].tid, NULL);
		errors += w[i].errors;
	}
	report(&o, w);
	return errors ? 1 : 0;
}
